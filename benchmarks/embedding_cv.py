"""Compare ways to fine-tune the embedding under grouped 5-fold CV on the DOXA data.

Each configuration's out-of-fold tuned cosine is calibrated by a LightGBM L1 regressor
(the same grouped folds) and scored by MAE. Results append to a JSON-lines file, so a
long run can be stopped and resumed; docs/embedding.md is written from that file.

    python benchmarks/embedding_cv.py --data ../shared/data/doxa_train.csv \
        --config lora:5e-4:4 --config top_layers:1e-4:4 --config full:2e-5:4

Distillation (``--teacher``): each fold's teachers are fine-tuned on that fold's training
pairs and label unrated pairs only, so no held-out rating reaches the student.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from hybrid_sim.apps.cli import ensemble_entry
from hybrid_sim.features.embedding import EmbeddingCosine
from hybrid_sim.model_selection import grouped_folds
from hybrid_sim.stacker.stacking import cv_predict, median_baseline, regression_metrics

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "doxa_train.csv"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--config", action="append", default=[],
                        help="method[@top_blocks]:lr:epochs[:loss[:base]], repeatable; "
                             "lora@2 puts LoRA in the top 2 blocks only")
    parser.add_argument("--soup", action="store_true",
                        help="with --n-seeds N: average the seeds' LoRA weights into one encoder "
                             "(a model soup) instead of averaging their cosines")
    parser.add_argument("--n-seeds", type=int, default=1,
                        help="average the tuned cosine over this many fine-tuning seeds")
    parser.add_argument("--teacher", action="append", default=[], type=ensemble_entry,
                        metavar="BASE[,KEY=VALUE...]",
                        help="distil from this fine-tuned model, as `hybrid-sim train --teacher` "
                             "(repeatable: the teachers' cosines are averaged)")
    parser.add_argument("--distill-pairs", type=int, default=10_000)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/embedding_cv.jsonl"))
    parser.add_argument("--table-only", action="store_true", help="only re-render the table")
    parser.add_argument("--recalibrate", action="store_true",
                        help="re-score every recorded variant's stored out-of-fold cosines with the "
                             "current stacker (no fine-tuning), keeping its time and size")
    args = parser.parse_args()
    if args.table_only:
        write_table(args.out, args.out.with_suffix(".md"))
        return
    data = pd.read_csv(args.data)
    X = data[["sentence_1", "sentence_2"]]
    y = data["human_similarity"].to_numpy(float)
    left, right = X.sentence_1.tolist(), X.sentence_2.tolist()
    folds = grouped_folds(left, right, n_splits=5, seed=0)
    args.out.parent.mkdir(parents=True, exist_ok=True)

    def record(row: dict) -> None:
        print(json.dumps(row))
        with args.out.open("a") as fh:
            fh.write(json.dumps(row) + "\n")

    if args.recalibrate:
        for row in latest_rows(args.out).values():
            oof = args.out.parent / f"oof_{oof_name(row['variant'])}.npy"
            if row["variant"] == "median":
                row = {**row, **regression_metrics(y, median_baseline(y, folds))}
            elif oof.is_file():
                pred = cv_predict(np.load(oof)[:, None], y, folds, ["cosine"])
                row = {**row, **regression_metrics(y, pred)}
            else:
                print(f"{row['variant']}: no {oof.name}, left as recorded")
                continue
            record({**row, "recalibrated": True})
        write_table(args.out, args.out.with_suffix(".md"))
        return

    record({"variant": "median", **regression_metrics(y, median_baseline(y, folds))})
    for spec in args.config:
        method, lr, epochs, *rest = spec.split(":")
        method, _, top = method.partition("@")
        lora_layers = int(top) if top else None
        loss = rest[0] if rest else "cosine"
        base = rest[1] if len(rest) > 1 else "all-MiniLM-L6-v2"
        if args.n_seeds > 1:
            spec = f"{spec}:{'soup' if args.soup else 'x'}{args.n_seeds}"
        if args.teacher:
            spec = f"{spec}:distil-{'+'.join(t['base_model'] for t in args.teacher)}"
        emb = EmbeddingCosine(base_model=base, method=method, lora_layers=lora_layers,
                              learning_rate=float(lr),
                              epochs=int(epochs), loss=loss, n_seeds=args.n_seeds,
                              soup=args.soup, teachers=tuple(args.teacher),
                              distill_pairs=args.distill_pairs, show_progress=False)
        start = time.perf_counter()
        if method == "none":
            cos = emb.fit(X).transform(X)[:, 0]
        else:
            crossfit = emb.cross_fit(X, y)
            cos = crossfit.oof
        seconds = time.perf_counter() - start
        pred = cv_predict(cos[:, None], y, folds, ["cosine"])
        size = None
        if method != "none":
            # an untrained delta has the same tensors, hence the same size, as a trained one
            with tempfile.TemporaryDirectory() as tmp:
                # a soup of n seeds is one adapter of n times the rank: the same bytes
                size = args.n_seeds * sum(f.stat().st_size for f in emb._new_encoder().save(tmp))
        record({"variant": spec, "base": base,
                "method": method + (f" (top {lora_layers} blocks)" if lora_layers else ""), "lr": float(lr),
                "epochs": int(epochs), "loss": loss, "n_seeds": args.n_seeds,
                **({"soup": True} if args.soup else {}),
                **({"teachers": args.teacher, "distill_pairs": args.distill_pairs} if args.teacher else {}),
                "cv_seconds": round(seconds, 1),
                "adapter_bytes": size, **regression_metrics(y, pred)})
        np.save(args.out.parent / f"oof_{oof_name(spec)}.npy", cos)
    write_table(args.out, args.out.with_suffix(".md"))


def oof_name(spec: str) -> str:
    """File-name form of a --config spec: lora@2:1e-3:2:cosine:all-mpnet-base-v2 ->
    lora_top2_1e-3_2_cosine_all-mpnet-base-v2."""
    return spec.replace("@", "_top").replace(":", "_").replace("/", "_")


def latest_rows(jsonl: Path) -> dict[str, dict]:
    """The last recorded row of each variant, in order of first appearance."""
    rows: dict[str, dict] = {}
    for line in jsonl.read_text().splitlines():
        row = json.loads(line)
        rows[row["variant"]] = row
    return rows


def write_table(jsonl: Path, markdown: Path) -> None:
    """Render every recorded run (latest per variant) as the table docs/embedding.md shows."""
    rows = latest_rows(jsonl)
    lines = ["| variant | base | method | lr | epochs | loss | adapter size | CV time (5 folds) "
             "| MAE | Pearson |", "|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows.values():
        size = f"{row['adapter_bytes'] / 1e6:.1f} MB" if row.get("adapter_bytes") else "-"
        secs = f"{row['cv_seconds'] / 60:.1f} min" if "cv_seconds" in row else "-"
        lines.append(
            f"| {row['variant']} | {row.get('base', '-')} | {row.get('method', '-')} | "
            f"{row.get('lr', '-')} | {row.get('epochs', '-')} | {row.get('loss', '-')} | {size} | "
            f"{secs} | {row['mae']:.2f} | {row['pearson']:.3f} |"
        )
    markdown.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
