"""Accuracy on seen items and on new items, side by side, and on new questionnaires.

    python benchmarks/generalization.py

Three figures for every row:

- seen items: grouped 5-fold CV by unordered pair on the DOXA training data (each held-out
  pair's sentences are in training; the regime of the DOXA challenge's hidden test);
- new items: 5 folds of the distinct sentences; each fold's model trains on pairs with
  neither sentence held out and is tested on pairs with both held out ("both new") and,
  separately, with one held out ("one new");
- the new-questionnaire dev set (``mcelroy2020_child_dev.csv``, 245 child items, none in
  training): ROC AUC and Spearman of the score against the same-construct label.

Every cosine is put on the 0-100 scale by the monotone stacker (an L1 linear map, then a
strictly increasing one), cross-validated over the same folds on out-of-fold cosines.
Fine-tuned rows read the embeddings ``benchmarks/generalization_cv.py`` stored; "centred"
cosines subtract the mean embedding of the fold's training sentences first. The shipped
models' rows score the dev set with the models themselves; their seen-items figure is the
one in their manifest.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import write_results
from generalization_cv import OUT as EMBEDDINGS
from generalization_cv import SHARED, regime_train_masks

import hybrid_sim
from hybrid_sim.encoders.encoder import Encoder
from hybrid_sim.stacker.monotone import MonotoneStacker

RESULTS = Path(__file__).resolve().parent / "results"
N_SPLITS = 5


def cosines(emb: np.ndarray, a: np.ndarray, b: np.ndarray, centre: np.ndarray | None = None) -> np.ndarray:
    x = emb - centre if centre is not None else emb
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    return np.einsum("ij,ij->i", x[a], x[b])


class Data:
    """The DOXA rows as sentence indices, the fold masks of both regimes, and the dev set."""

    def __init__(self, data: Path, dev: Path) -> None:
        frame = pd.read_csv(data)
        left, right = frame["sentence_1"].tolist(), frame["sentence_2"].tolist()
        self.y = frame["human_similarity"].to_numpy(float)
        self.sentences = sorted(set(left) | set(right))
        index = {t: i for i, t in enumerate(self.sentences)}
        self.a = np.array([index[t] for t in left])
        self.b = np.array([index[t] for t in right])
        self.masks = regime_train_masks(left, right)
        dev_frame = pd.read_csv(dev)
        self.dev_items = sorted(set(dev_frame["sentence_1"]) | set(dev_frame["sentence_2"]))
        dev_index = {t: i for i, t in enumerate(self.dev_items)}
        self.dev_a = np.array([dev_index[t] for t in dev_frame["sentence_1"]])
        self.dev_b = np.array([dev_index[t] for t in dev_frame["sentence_2"]])
        self.dev_y = dev_frame["same_construct"].to_numpy()
        self.dev_pairs = dev_frame[["sentence_1", "sentence_2"]].to_numpy(object)

    def train_sentences(self, mask: np.ndarray) -> np.ndarray:
        return np.unique(np.r_[self.a[mask], self.b[mask]])


def out_of_fold(data: Data, regime: str, feature: Callable) -> np.ndarray:
    """Per row, the feature from the fold models that did not train on it (their mean)."""
    total, count = None, np.zeros(len(data.y))
    for k, mask in enumerate(data.masks[regime]):
        values = np.asarray(feature(regime, k, mask), dtype=float)
        total = np.zeros_like(values) if total is None else total
        total[~mask] += values[~mask]
        count[~mask] += 1
    assert total is not None
    return total / np.maximum(count, 1).reshape(-1, *([1] * (total.ndim - 1)))


def fold_maes(data: Data, regime: str, predict: Callable) -> dict[str, float]:
    """MAE over each fold's held-out rows; ``predict(mask, test)`` scores the rows ``test``
    with what it learns from the rows ``mask``. In the new-items regime rows with both
    sentences held out and rows with one held out are reported apart."""
    errors: dict[str, list[float]] = {"both": [], "one": []}
    for mask in data.masks[regime]:
        test = ~mask
        err = np.abs(predict(mask, test) - data.y[test])
        if regime == "seen":
            errors["both"].extend(err)
            continue
        known_ids = data.train_sentences(mask)
        known = np.isin(data.a[test], known_ids) | np.isin(data.b[test], known_ids)
        errors["one"].extend(err[known])
        errors["both"].extend(err[~known])
    out = {f"{regime}_mae": float(np.mean(errors["both"]))}
    if errors["one"]:
        out[f"{regime}_one_mae"] = float(np.mean(errors["one"]))
    return out


def median_row(data: Data) -> dict[str, float]:
    def median(mask: np.ndarray, test: np.ndarray) -> np.ndarray:
        return np.full(int(test.sum()), np.median(data.y[mask]))

    return {**fold_maes(data, "seen", median), **fold_maes(data, "new", median)}


def dev_figures(data: Data, score: np.ndarray) -> dict[str, float]:
    return {"dev_auc": float(roc_auc_score(data.dev_y, score)),
            "dev_spearman": float(spearmanr(data.dev_y, score)[0])}


def row(data: Data, label: str, feature: Callable, dev_score: np.ndarray) -> dict:
    """A cosine put on the 0-100 scale by the monotone stacker, fitted per fold."""
    out: dict = {"variant": label}
    for regime in ("seen", "new"):
        oof = out_of_fold(data, regime, feature)

        def calibrated(mask: np.ndarray, test: np.ndarray, oof: np.ndarray = oof) -> np.ndarray:
            model = MonotoneStacker(identity=((1.0,),)).fit(oof[mask, None], data.y[mask])
            return model.predict(oof[test, None])

        out.update(fold_maes(data, regime, calibrated))
    return {**out, **dev_figures(data, dev_score)}


def zero_shot_rows(data: Data, base: str, label: str) -> list[dict]:
    encoder = Encoder(base, method="none")
    train, dev = encoder.encode(data.sentences), encoder.encode(data.dev_items)
    mean = train.mean(axis=0)
    rows = []
    for centred in (False, True):
        def feature(regime: str, k: int, mask: np.ndarray, centred: bool = centred) -> np.ndarray:
            centre = train[data.train_sentences(mask)].mean(axis=0) if centred else None
            return cosines(train, data.a, data.b, centre)
        dev_score = cosines(dev, data.dev_a, data.dev_b, mean if centred else None)
        rows.append(row(data, f"{label} zero-shot cosine{', centred' if centred else ''}", feature,
                        dev_score))
    return rows


def tuned_rows(data: Data, names: list[str], label: str) -> list[dict]:
    """Rows for fine-tuned configurations; several names average their cosines (an ensemble)."""
    stores = [np.load(EMBEDDINGS / f"{n}.npz") for n in names]
    rows = []
    for centred in (False, True):
        def feature(regime: str, k: int, mask: np.ndarray, centred: bool = centred) -> np.ndarray:
            values = []
            for store in stores:
                emb = store[f"{regime}_{k}_m0_train"].astype(float)
                centre = emb[data.train_sentences(mask)].mean(axis=0) if centred else None
                values.append(cosines(emb, data.a, data.b, centre))
            return np.mean(values, axis=0)
        dev_values = []
        for store in stores:
            emb, dev = store["all_0_m0_train"].astype(float), store["all_0_m0_dev"].astype(float)
            dev_values.append(cosines(dev, data.dev_a, data.dev_b, emb.mean(axis=0) if centred else None))
        rows.append(row(data, f"{label} fine-tuned cosine{', centred' if centred else ''}", feature,
                        np.mean(dev_values, axis=0)))
    return rows


def novelty_head_row(data: Data, names: list[str], label: str) -> dict:
    """A stacker that knows what it has seen: centred tuned and zero-shot cosines and the
    pair's novelty (the lower of its items' highest zero-shot cosine to the training
    sentences: 1 for items seen in training), with their products, trained on out-of-fold
    rows of both regimes (never on the rows it is tested on)."""
    stores = [np.load(EMBEDDINGS / f"{n}.npz") for n in names]
    base = Encoder("all-MiniLM-L6-v2", method="none")
    base_train, base_dev = base.encode(data.sentences), base.encode(data.dev_items)

    def novelty(items: np.ndarray, train_ids: np.ndarray) -> np.ndarray:
        unit = base_train / np.linalg.norm(base_train, axis=1, keepdims=True)
        items = items / np.linalg.norm(items, axis=1, keepdims=True)
        return (items @ unit[train_ids].T).max(axis=1)

    def features(regime: str, k: int, mask: np.ndarray) -> np.ndarray:
        ids = data.train_sentences(mask)
        tuned = np.mean([cosines(s[f"{regime}_{k}_m0_train"].astype(float), data.a, data.b,
                                 s[f"{regime}_{k}_m0_train"].astype(float)[ids].mean(axis=0))
                         for s in stores], axis=0)
        zero = cosines(base_train, data.a, data.b, base_train[ids].mean(axis=0))
        nov = novelty(base_train, ids)
        near = np.minimum(nov[data.a], nov[data.b])
        return np.column_stack([tuned, zero, near, tuned * near, zero * near])

    oof = {regime: out_of_fold(data, regime, features) for regime in ("seen", "new")}
    identity = tuple((1.0, 1.0, n, n, n) for n in (0.3, 0.6, 1.0))
    out: dict = {"variant": label}
    for regime in ("seen", "new"):
        def both_regimes(mask: np.ndarray, test: np.ndarray, regime: str = regime) -> np.ndarray:
            X = np.vstack([oof["seen"][mask], oof["new"][mask]])
            model = MonotoneStacker(identity=identity).fit(X, np.r_[data.y[mask], data.y[mask]])
            return model.predict(oof[regime][test])

        out.update(fold_maes(data, regime, both_regimes))
    head = MonotoneStacker(identity=identity).fit(np.vstack([oof["seen"], oof["new"]]), np.r_[data.y, data.y])
    every = np.arange(len(data.sentences))
    tuned_dev = np.mean([cosines(s["all_0_m0_dev"].astype(float), data.dev_a, data.dev_b,
                                 s["all_0_m0_train"].astype(float).mean(axis=0)) for s in stores], axis=0)
    zero_dev = cosines(base_dev, data.dev_a, data.dev_b, base_train.mean(axis=0))
    nov = novelty(base_dev, every)
    near = np.minimum(nov[data.dev_a], nov[data.dev_b])
    dev_x = np.column_stack([tuned_dev, zero_dev, near, tuned_dev * near, zero_dev * near])
    out["weights"] = head.coef_.tolist()
    return {**out, **dev_figures(data, head.predict(dev_x))}


def shipped_rows(data: Data) -> list[dict]:
    rows = []
    for name in ("default", "accurate"):
        model = hybrid_sim.load(name)
        metrics = model.cv_metrics_
        rows.append({"variant": f"shipped `{name}` model", "seen_mae": metrics.get("mae", float("nan")),
                     **dev_figures(data, model.predict(data.dev_pairs))})
    return rows


def table(rows: list[dict], seconds: float) -> list[str]:
    def fmt(value: float | None, digits: int) -> str:
        return "-" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"

    lines = [
        "| variant | seen items MAE | new items MAE (both new) | new items MAE (one new) | dev ROC AUC "
        "| dev Spearman |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['variant']} | {fmt(r.get('seen_mae'), 2)} | {fmt(r.get('new_mae'), 2)} | "
                     f"{fmt(r.get('new_one_mae'), 2)} | {fmt(r.get('dev_auc'), 4)} | "
                     f"{fmt(r.get('dev_spearman'), 4)} |")
    lines += ["", f"`python benchmarks/generalization.py` ({seconds:.0f} s; fine-tuned rows from "
              "`benchmarks/generalization_cv.py`, whose commands are in the module docstring)."]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=SHARED / "doxa_train.csv")
    parser.add_argument("--dev", type=Path, default=SHARED / "mcelroy2020_child_dev.csv")
    parser.add_argument("--out", type=Path, default=RESULTS / "generalization")
    args = parser.parse_args()
    start = time.perf_counter()
    data = Data(args.data, args.dev)
    rows = [{"variant": "predict the median", **median_row(data), "dev_auc": 0.5}]
    rows += zero_shot_rows(data, "all-MiniLM-L6-v2", "MiniLM")
    rows += zero_shot_rows(data, "all-mpnet-base-v2", "mpnet")
    configs = [(["minilm_lora4"], "MiniLM LoRA (4 epochs)"), (["mpnet_top2"], "mpnet top-2 LoRA"),
               (["minilm_lora4", "mpnet_top2"], "MiniLM LoRA + mpnet top-2 LoRA, mean")]
    for names, label in configs:
        if all((EMBEDDINGS / f"{n}.npz").is_file() for n in names):
            rows += tuned_rows(data, names, label)
            rows.append(novelty_head_row(data, names, f"{label}: novelty-aware stacker, both regimes"))
    rows += shipped_rows(data)
    write_results(args.out, rows, table(rows, time.perf_counter() - start))


if __name__ == "__main__":
    main()
