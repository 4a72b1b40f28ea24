"""Would a cross-encoder add to the tuned cosines? Grouped 5-fold CV on the DOXA data.

A cross-encoder reads both items at once ("[CLS] a [SEP] b"), so it can see a role swap or
a negation that two separate embeddings blur; but it must run once per pair, not once per
distinct sentence, which is what makes the bi-encoder cheap on large catalogues. This
measures it before building it into the package: all-MiniLM-L6-v2 with a one-output
regression head (transformers' AutoModelForSequenceClassification), every weight trained,
BCE-with-logits on rating / 100, each training pair in a random order each epoch, and the
mean of both orders at prediction (so it is symmetric). Folds, stacker and metrics are those of
benchmarks/embedding_cv.py; the row is appended to the same JSON-lines file and the
out-of-fold scores saved as benchmarks/results/oof_cross_encoder_<lr>_<epochs>.npy, so
`benchmarks/accuracy.py --ensemble-oof` can combine them.

    python benchmarks/cross_encoder_cv.py [--epochs 2] [--lr 3e-5]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from embedding_cv import oof_name  # benchmarks/ is on sys.path when a script runs

from hybrid_sim.encoders.bases import resolve_base
from hybrid_sim.encoders.training import warmup_linear_schedule
from hybrid_sim.model_selection import grouped_folds, out_of_fold
from hybrid_sim.stacker.stacking import cv_predict, regression_metrics

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "doxa_train.csv"
RESULTS = Path(__file__).resolve().parent / "results"


def fit_predict(left: list[str], right: list[str], y: np.ndarray, train: np.ndarray,
                test: np.ndarray, epochs: int, lr: float, batch_size: int = 16, seed: int = 0) -> np.ndarray:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(seed)
    path = resolve_base("all-MiniLM-L6-v2")
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1)
    a = [left[i] for i in train]
    b = [right[i] for i in train]
    target = torch.tensor(y[train] / 100.0, dtype=torch.float32)
    steps = epochs * -(-len(a) // batch_size)
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    scheduler = warmup_linear_schedule(optimiser, steps)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    rng = np.random.default_rng(seed)
    model.train()
    for _ in range(epochs):
        order = rng.permutation(len(a))
        for start in range(0, len(a), batch_size):
            idx = order[start:start + batch_size]
            # each pair in a random order each time: half the work of feeding both orders
            flip = rng.random(len(idx)) < 0.5
            first = [b[i] if f else a[i] for i, f in zip(idx, flip)]
            second = [a[i] if f else b[i] for i, f in zip(idx, flip)]
            batch = tokenizer(first, second, padding=True, truncation=True, max_length=256,
                              return_tensors="pt")
            loss = loss_fn(model(**batch).logits.squeeze(-1), target[idx])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            scheduler.step()
    model.eval()
    scores = []
    with torch.no_grad():
        for first, second in ((left, right), (right, left)):
            out = []
            for start in range(0, len(test), 64):
                idx = test[start:start + 64]
                batch = tokenizer([first[i] for i in idx], [second[i] for i in idx], padding=True,
                                  truncation=True, max_length=256, return_tensors="pt")
                out.append(torch.sigmoid(model(**batch).logits.squeeze(-1)).numpy())
            scores.append(np.concatenate(out))
    return np.mean(scores, axis=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--lr", type=float, default=3e-5)
    parser.add_argument("--out", type=Path, default=RESULTS / "embedding_cv.jsonl")
    args = parser.parse_args()
    data = pd.read_csv(args.data)
    left, right = data.sentence_1.tolist(), data.sentence_2.tolist()
    y = data.human_similarity.to_numpy(float)
    folds = grouped_folds(left, right, n_splits=5, seed=0)
    start = time.perf_counter()
    crossfit = out_of_fold(lambda tr, te: fit_predict(left, right, y, tr, te, args.epochs, args.lr),
                           left, right, folds)
    seconds = time.perf_counter() - start
    pred = cv_predict(crossfit.oof[:, None], y, folds, ["cosine"])
    variant = f"cross_encoder:{args.lr:g}:{args.epochs}"
    row = {"variant": variant, "base": "all-MiniLM-L6-v2", "method": "cross-encoder (full)",
           "lr": args.lr, "epochs": args.epochs, "loss": "bce", "n_seeds": 1,
           "cv_seconds": round(seconds, 1), "adapter_bytes": None, **regression_metrics(y, pred)}
    print(json.dumps(row))
    with args.out.open("a") as fh:
        fh.write(json.dumps(row) + "\n")
    # beside the JSON-lines file, where `embedding_cv.py --recalibrate` looks for it
    np.save(args.out.parent / f"oof_{oof_name(variant)}.npy", crossfit.oof)


if __name__ == "__main__":
    main()
