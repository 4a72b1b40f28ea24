"""What a score means: the "same construct" threshold of each shipped model, chosen on data.

    python benchmarks/threshold.py

On the new-questionnaire dev set (``mcelroy2020_child_dev.csv``: 29,890 pairs of 245 child
items, 4.7% in one construct), the score at which the label "same construct" has the best
F1, with its precision and recall, and the precision and recall at a few round scores.
``hybrid_sim.apps.clustering.SAME_CONSTRUCT_THRESHOLD`` is the default model's value, rounded.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import precision_recall_curve

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import write_results

import hybrid_sim

DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "mcelroy2020_child_dev.csv"
OUT = Path(__file__).resolve().parent / "results" / "threshold"


def main() -> None:
    dev = pd.read_csv(DEV)
    y = dev["same_construct"].to_numpy()
    pairs = dev[["sentence_1", "sentence_2"]].to_numpy(object)
    lines = ["| model | best-F1 threshold | precision | recall | F1 | precision / recall at 40, 50, 60 |",
             "|---|---|---|---|---|---|"]
    payload = []
    for name in ("default", "accurate"):
        score = hybrid_sim.load(name).predict(pairs)
        precision, recall, cut = precision_recall_curve(y, score)
        f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
        best = int(np.argmax(f1[:-1]))
        at = []
        for t in (40, 50, 60):
            chosen = score >= t
            at.append(f"{y[chosen].mean():.2f} / {chosen[y == 1].mean():.2f}" if chosen.any() else "-")
        payload.append({"model": name, "threshold": float(cut[best]), "precision": float(precision[best]),
                        "recall": float(recall[best]), "f1": float(f1[best])})
        lines.append(f"| `{name}` | {cut[best]:.1f} | {precision[best]:.3f} | {recall[best]:.3f} | "
                     f"{f1[best]:.3f} | {'; '.join(at)} |")
    lines += ["", "`python benchmarks/threshold.py` on ../shared/data/mcelroy2020_child_dev.csv"]
    write_results(OUT, payload, lines)


if __name__ == "__main__":
    main()
