"""Fine-tune one embedding configuration per fold of both CV regimes and keep the embeddings.

The slow half of ``benchmarks/generalization.py``: for every fold of

- "seen items": grouped 5-fold CV by unordered pair (the folds ``hybrid-sim train`` uses),
- "new items": 5 folds of the distinct sentences; fold k trains on the pairs with neither
  sentence in sentence-group k and is tested on the pairs with one or both in it,

and once on all rows, the configuration is fine-tuned and the embeddings of every
training sentence and every dev-set item are stored (float32, no text) in
``benchmarks/results/generalization/<name>.npz``. Any cosine, centred cosine or novelty
feature is then computed from them in seconds.

    python benchmarks/generalization_cv.py --name minilm_lora4 --set method=lora \
        --set learning_rate=5e-4 --set epochs=4
"""

from __future__ import annotations

import argparse
import hashlib
import time
from pathlib import Path

import numpy as np
import pandas as pd

from hybrid_sim.apps.cli import ensemble_entry
from hybrid_sim.features.embedding import EmbeddingCosine
from hybrid_sim.model_selection import grouped_folds

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
OUT = Path(__file__).resolve().parent / "results" / "generalization"
N_SPLITS, SEED = 5, 0


def sentence_folds(left: list[str], right: list[str], n_splits: int = N_SPLITS,
                   seed: int = SEED) -> tuple[list[str], np.ndarray]:
    """The distinct sentences (sorted) and each one's fold, drawn at random in equal shares."""
    sentences = sorted(set(left) | set(right))
    rng = np.random.default_rng(seed)
    groups = np.empty(len(sentences), dtype=int)
    groups[rng.permutation(len(sentences))] = np.arange(len(sentences)) % n_splits
    return sentences, groups


def regime_train_masks(left: list[str], right: list[str]) -> dict[str, list[np.ndarray]]:
    """Per regime, per fold: which rows the fold's model may train on."""
    n = len(left)
    seen = []
    for train, _ in grouped_folds(left, right, n_splits=N_SPLITS, seed=SEED):
        mask = np.zeros(n, dtype=bool)
        mask[train] = True
        seen.append(mask)
    sentences, groups = sentence_folds(left, right)
    group_of = dict(zip(sentences, groups))
    ga = np.array([group_of[t] for t in left])
    gb = np.array([group_of[t] for t in right])
    new = [(ga != k) & (gb != k) for k in range(N_SPLITS)]
    return {"seen": seen, "new": new}


def data_digest(frame: pd.DataFrame) -> str:
    return hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True)
    parser.add_argument("--base", default="all-MiniLM-L6-v2")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="an EmbeddingCosine setting (repeatable)")
    parser.add_argument("--data", type=Path, default=SHARED / "doxa_train.csv")
    parser.add_argument("--dev", type=Path, default=SHARED / "mcelroy2020_child_dev.csv")
    args = parser.parse_args()
    settings = ensemble_entry(",".join([args.base, *args.set]))
    data = pd.read_csv(args.data)
    dev = pd.read_csv(args.dev)
    left, right = data["sentence_1"].tolist(), data["sentence_2"].tolist()
    y = data["human_similarity"].to_numpy(float)
    sentences = sorted(set(left) | set(right))
    dev_items = sorted(set(dev["sentence_1"]) | set(dev["sentence_2"]))
    arrays: dict[str, np.ndarray] = {}
    started = time.perf_counter()
    runs = [(regime, k, mask) for regime, masks in regime_train_masks(left, right).items()
            for k, mask in enumerate(masks)] + [("all", 0, np.ones(len(y), dtype=bool))]
    for regime, k, mask in runs:
        t0 = time.perf_counter()
        group = EmbeddingCosine(**settings, base_cosine=False, cache=False, show_progress=False)
        rows = np.flatnonzero(mask)
        group.fit(data.iloc[rows][["sentence_1", "sentence_2"]], y[rows])
        encoders = [*group.encoders_, *(e for p in group.partners_ for e in p.encoders_)]
        for m, encoder in enumerate(encoders):
            arrays[f"{regime}_{k}_m{m}_train"] = encoder.encode(sentences).astype(np.float32)
            arrays[f"{regime}_{k}_m{m}_dev"] = encoder.encode(dev_items).astype(np.float32)
        print(f"{regime} fold {k}: {len(rows)} rows, {time.perf_counter() - t0:.0f}s", flush=True)
    arrays["settings"] = np.frombuffer(repr(sorted(settings.items())).encode(), dtype=np.uint8)
    arrays["data_sha256"] = np.frombuffer(data_digest(data).encode(), dtype=np.uint8)
    OUT.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT / f"{args.name}.npz", **arrays)
    print(f"{args.name}: {time.perf_counter() - started:.0f}s in all -> {OUT / args.name}.npz")


if __name__ == "__main__":
    main()
