"""Polarity by rule or by a small learned classifier: measured on the golden set.

    python benchmarks/polarity.py

The rule is ``hybrid_sim.apps.polarity.polarity_of``. The classifier (logistic regression) reads
the same parse (each item's direction, negation cues, valence words, antonym and role-swap
flags) plus the zero-shot MiniLM cosine of the pair and of the pair with negation words
removed. It is trained on the golden set's development pairs and, like the rule, scored on
the held-out third, label by label.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import write_results

from hybrid_sim.apps.polarity import _direction, _role_swaps, polarity_of
from hybrid_sim.encoders.encoder import Encoder
from hybrid_sim.features._nlp import analyse
from hybrid_sim.features.negation import antonyms_between

GOLDEN = Path(__file__).resolve().parents[1] / "tests" / "data" / "polarity_golden.csv"
OUT = Path(__file__).resolve().parent / "results" / "polarity"
LABELS = ("same", "reversed", "role")


def rule(frame: pd.DataFrame, parsed: dict) -> np.ndarray:
    out = []
    for a, b in zip(frame["text_a"], frame["text_b"]):
        polarity, why = polarity_of(parsed[a], parsed[b])
        out.append("role" if why.startswith("role reversal") else polarity)
    return np.array(out)


def features(frame: pd.DataFrame, parsed: dict, encoder: Encoder) -> np.ndarray:
    rows = []
    for a, b in zip(frame["text_a"], frame["text_b"]):
        pa, pb = parsed[a], parsed[b]
        (sa, fa, va), (sb, fb, vb) = _direction(pa), _direction(pb)
        rows.append([sa != sb, len(pa.negation_cues) % 2 != len(pb.negation_cues) % 2,
                     bool(antonyms_between(pa, pb)), va, vb, bool(_role_swaps(pa, pb)),
                     len(pa.content_lemmas & pb.content_lemmas), len(fa), len(fb)])
    cosine = encoder.cosine(frame["text_a"].tolist(), frame["text_b"].tolist())
    return np.column_stack([np.asarray(rows, dtype=float), cosine])


def per_label(truth: np.ndarray, pred: np.ndarray) -> dict[str, tuple[float, float, int]]:
    return {label: (float(((pred == label) & (truth == label)).sum() / max((pred == label).sum(), 1)),
                    float(((pred == label) & (truth == label)).sum() / max((truth == label).sum(), 1)),
                    int((truth == label).sum())) for label in LABELS}


def main() -> None:
    golden = pd.read_csv(GOLDEN)
    parsed = analyse(list(set(golden["text_a"]) | set(golden["text_b"])))
    encoder = Encoder("all-MiniLM-L6-v2", method="none")
    dev, held = golden[golden["split"] == "dev"], golden[golden["split"] == "held"]
    learned = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0))
    learned.fit(features(dev, parsed, encoder), dev["label"])
    results = {"rule": rule(held, parsed), "learned": learned.predict(features(held, parsed, encoder))}
    truth = held["label"].to_numpy()
    lines = ["| method | held-out pairs right | same P / R | reversed P / R | role reversal P / R |",
             "|---|---|---|---|---|"]
    payload = {}
    for name, pred in results.items():
        labels = per_label(truth, pred)
        payload[name] = {"right": int((pred == truth).sum()), "n": len(truth), **labels}
        cells = " | ".join(f"{p:.2f} / {r:.2f}" for p, r, _ in labels.values())
        lines.append(f"| {name} | {(pred == truth).sum()} of {len(truth)} | {cells} |")
    dev_right = int((rule(dev, parsed) == dev["label"].to_numpy()).sum())
    lines += ["", f"Rule on the {len(dev)} development pairs: {dev_right} right. The classifier is trained "
              f"on those {len(dev)} pairs. `python benchmarks/polarity.py`"]
    write_results(OUT, payload, lines)


if __name__ == "__main__":
    main()
