"""Throughput: hybrid_sim against bare sentence-transformers cosine on the same base model.

Scores N pairs over M distinct synthetic questionnaire items, in one run, each contender
in its own subprocess (so peak memory is its own): bare = encode each distinct item once
with sentence-transformers and take dot products; hybrid = the shipped default model's
``predict`` (features + stacker), from cold caches, with its encoder on PyTorch (batches
spread over one thread per core, as shipped), on PyTorch with each batch split across the
cores instead (``HYBRID_SIM_ENCODE_WORKERS=1``, how it encoded before), and on ONNX Runtime
(the export is made during the untimed warm-up, as it is once per machine and model in real use).
Reports pairs/s, the time ratio against bare, the share of time per stage and peak RSS.
The timed hybrid run is ``predict`` itself, whose feature groups run in parallel threads;
the stage shares come from one more run of each hybrid that does the stages one after
another (parse, each group, stack).

    python benchmarks/throughput.py --sizes 100000:2000 1000000:10000 [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from _results import write_results  # benchmarks/ is on sys.path when a script runs

ROOT = Path(__file__).resolve().parents[1]
OPENERS = ["How often have you", "In the past two weeks, have you", "Do you often", "I",
           "My child", "Does the person", "Over the last month, how much have you"]
VERBS = ["felt", "worried about", "had trouble with", "enjoyed", "avoided", "thought about",
         "been bothered by", "talked about", "noticed", "struggled with"]
OBJECTS = ["sleeping", "your appetite", "being alone", "feeling hopeless", "school work",
           "meeting new people", "your health", "making decisions", "losing control",
           "getting angry", "crowded places", "the future", "concentrating", "your family",
           "feeling restless", "drinking alcohol", "being bullied", "their friends"]
TAILS = ["", " at night", " most days", " more than usual", " recently", " without reason",
         " at school", " at work", " every day", " lately"]


def make_items(m: int, seed: int = 0) -> list[str]:
    """m distinct item-like sentences."""
    rng = np.random.default_rng(seed)
    items: dict[str, None] = {}
    while len(items) < m:
        text = (f"{rng.choice(OPENERS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)}"
                f"{rng.choice(TAILS)}?")
        if len(items) >= len(OPENERS) * len(VERBS) * len(OBJECTS) * len(TAILS) // 2:
            text = f"{text[:-1]} (item {len(items)})?"
        items[text] = None
    return list(items)


def make_pairs(n: int, m: int, seed: int = 0) -> tuple[list[str], list[str]]:
    items = make_items(m, seed)
    rng = np.random.default_rng(seed + 1)
    a = rng.integers(0, m, n)
    b = rng.integers(0, m, n)
    return [items[i] for i in a], [items[i] for i in b]


# shipped model, encoder back-end, $HYBRID_SIM_ENCODE_WORKERS ("": as shipped) and contrast
# cap (on as shipped; off skips spaCy's parse, which only the cap's flags need) of each
# hybrid contender
HYBRIDS = {"hybrid_torch": ("default", "torch", "", True),
           "hybrid_torch_intra_op": ("default", "torch", "1", True),
           "hybrid_onnx": ("default", "onnx", "", True),
           "hybrid_torch_no_cap": ("default", "torch", "", False)}


def describe(kind: str) -> str:
    name, backend, workers, cap = HYBRIDS[kind]
    return (f"{name}, {backend}" + (", batch split across cores" if workers == "1" else "")
            + ("" if cap else ", contrast cap off (no parse)"))


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_bare(left: list[str], right: list[str]) -> dict:
    from sentence_transformers import SentenceTransformer

    from hybrid_sim.encoders.bases import resolve_base

    model = SentenceTransformer(resolve_base("all-MiniLM-L6-v2"), device="cpu")
    start = time.perf_counter()
    distinct = list(dict.fromkeys(left + right))
    index = {t: i for i, t in enumerate(distinct)}
    vectors = model.encode(distinct, batch_size=64, normalize_embeddings=True)
    li = np.fromiter((index[t] for t in left), np.int64, len(left))
    ri = np.fromiter((index[t] for t in right), np.int64, len(right))
    scores = np.einsum("ij,ij->i", vectors[li], vectors[ri])
    seconds = time.perf_counter() - start
    assert len(scores) == len(left)
    return {"seconds": seconds, "stages": {"embed+dot": seconds}}


def run_hybrid(left: list[str], right: list[str], chunk: int, name: str, backend: str,
               workers: str, cap: bool, staged: bool) -> dict:
    """``model.predict`` chunk by chunk (the timed path: groups run in parallel threads),
    or, when ``staged``, the same work one stage after another to time each stage."""
    import os

    os.environ["HYBRID_SIM_BACKEND"] = backend
    if workers:
        os.environ["HYBRID_SIM_ENCODE_WORKERS"] = workers
    import hybrid_sim
    from hybrid_sim.features._nlp import analyse
    from hybrid_sim.stacker.stacking import group_columns

    model = hybrid_sim.load(name)
    if not cap:
        model.set_params(role_reversal_cap=None)
    model.predict([["warm up", "the model"]])  # loads torch, spaCy; not part of the timing
    stages: dict[str, float] = {}
    start = time.perf_counter()
    for lo in range(0, len(left), chunk):
        X = np.column_stack([left[lo:lo + chunk], right[lo:lo + chunk]]).astype(object)
        if not staged:
            model.predict(X)
            continue
        groups = model._groups_in_use()  # what predict computes
        if set(groups) & {"bow", "negation"}:  # the groups that read spaCy's parse
            t = time.perf_counter()
            analyse(list(X[:, 0]) + list(X[:, 1]))
            stages["parse"] = stages.get("parse", 0.0) + time.perf_counter() - t
        matrix = np.full((len(X), len(model.feature_names_)), np.nan)
        for name, transformer in model.features_.transformer_list:
            if name not in groups:
                continue
            t = time.perf_counter()
            matrix[:, group_columns(model.feature_names_, [name])] = transformer.transform(X)
            key = {"embedding": "embed"}.get(name, name)
            stages[key] = stages.get(key, 0.0) + time.perf_counter() - t
        t = time.perf_counter()
        model.predict_features(matrix)
        stages["stack"] = stages.get("stack", 0.0) + time.perf_counter() - t
    return {"seconds": time.perf_counter() - start, "stages": stages}


def child(kind: str, n: int, m: int, chunk: int) -> None:
    left, right = make_pairs(n, m)
    staged = kind.endswith(":staged")
    kind = kind.removesuffix(":staged")
    result = (run_bare(left, right) if kind == "bare"
              else run_hybrid(left, right, chunk, *HYBRIDS[kind], staged=staged))
    print(json.dumps({**result, "peak_mb": peak_mb()}))


def run_child(kind: str, n: int, m: int, chunk: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", kind, str(n), str(m), "--chunk", str(chunk)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["100000:2000", "1000000:10000"],
                        help="N:M pairs over distinct items")
    parser.add_argument("--chunk", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=1,
                        help="run each contender this many times, interleaved, and keep its fastest run "
                             "(timings on a shared 2-core machine are noisy)")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "throughput")
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), int(args.child[2]), args.chunk)
        return
    rows = []
    for size in args.sizes:
        n, m = (int(x) for x in size.split(":"))
        result: dict[str, dict] = {}
        for _ in range(args.repeat):
            for kind in ("bare", *HYBRIDS):
                run = run_child(kind, n, m, args.chunk)
                if kind not in result or run["seconds"] < result[kind]["seconds"]:
                    result[kind] = run
        bare = result["bare"]
        for kind in HYBRIDS:
            hybrid = result[kind]
            staged = run_child(f"{kind}:staged", n, m, args.chunk)
            row = {"pairs": n, "items": m, "hybrid": kind,
                   "bare_pairs_per_s": n / bare["seconds"], "hybrid_pairs_per_s": n / hybrid["seconds"],
                   "time_ratio": hybrid["seconds"] / bare["seconds"],
                   "bare_peak_mb": bare["peak_mb"], "hybrid_peak_mb": hybrid["peak_mb"],
                   # shares of the one-stage-after-another run; the timed run overlaps them
                   "hybrid_stage_share": {k: v / staged["seconds"] for k, v in staged["stages"].items()},
                   "staged_seconds": staged["seconds"]}
            rows.append(row)
            print(json.dumps(row))
    lines = ["| pairs | distinct items | shipped model, encoder | bare ST pairs/s | hybrid pairs/s "
             "| time ratio | stage shares (hybrid, stages run in sequence) | peak MB bare / hybrid |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        shares = ", ".join(f"{k} {v:.0%}" for k, v in r["hybrid_stage_share"].items())
        lines.append(f"| {r['pairs']:,} | {r['items']:,} | {describe(r['hybrid'])} | "
                     f"{r['bare_pairs_per_s']:,.0f} | "
                     f"{r['hybrid_pairs_per_s']:,.0f} | {r['time_ratio']:.2f}x | {shares} | "
                     f"{r['bare_peak_mb']:.0f} / {r['hybrid_peak_mb']:.0f} |")
    write_results(args.out, rows, lines)


if __name__ == "__main__":
    main()
