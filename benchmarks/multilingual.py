"""Multilingual check: ROC AUC of "same item" over tests/data/multilingual_items.csv.

16 items written for this check (mood, sleep, worry, child behaviour; no GAD-7 or PHQ-9
item) in 10 languages (English, Spanish, Portuguese, French, German, Italian, Chinese,
Japanese, Russian, Arabic): every pair of two different strings, labelled 1 when they are
the same item in two languages. Rows: the shipped models, and the zero-shot cosines of
their English base and of multilingual-e5-small. Also per language against English, and
a Portuguese-English crosswalk (`match --top 1`: how many of 16 found).

    python benchmarks/multilingual.py [--models default accurate]

Writes benchmarks/results/multilingual.md.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from hybrid_sim.api import load
from hybrid_sim.encoders.encoder import Encoder

ROOT = Path(__file__).resolve().parents[1]
ITEMS = ROOT / "tests" / "data" / "multilingual_items.csv"
OUT = ROOT / "benchmarks" / "results" / "multilingual.md"


def pairs_of(items: pd.DataFrame) -> pd.DataFrame:
    rows = [(a.text, b.text, a.language, b.language, int(a.item == b.item))
            for a, b in itertools.combinations(items.itertuples(), 2)]
    return pd.DataFrame(rows, columns=["left", "right", "lang_a", "lang_b", "same"])


def report(name: str, score: np.ndarray, pairs: pd.DataFrame) -> dict[str, object]:
    cross = (pairs.lang_a != pairs.lang_b).to_numpy()
    row: dict[str, object] = {"scorer": name, "all pairs": roc_auc_score(pairs.same, score),
                              "cross-lingual": roc_auc_score(pairs.same[cross], score[cross])}
    for lang in sorted(set(pairs.lang_a) - {"en"}):
        mask = (((pairs.lang_a == "en") & (pairs.lang_b == lang)) |
                ((pairs.lang_b == "en") & (pairs.lang_a == lang))).to_numpy()
        row[f"en-{lang}"] = roc_auc_score(pairs.same[mask], score[mask])
    en = pairs[((pairs.lang_a == "en") & (pairs.lang_b == "pt"))]
    best = pd.DataFrame({"a": en.left, "b": en.right, "same": en.same, "s": score[en.index]})
    top = best.loc[best.groupby("a")["s"].idxmax()]
    row["pt->en top-1"] = f"{int(top.same.sum())}/{len(top)}"
    return row


def markdown(table: pd.DataFrame) -> str:
    cells = [[f"{v:.3f}" if isinstance(v, float) else str(v) for v in row] for row in table.to_numpy()]
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["default"])
    args = parser.parse_args()
    pairs = pairs_of(pd.read_csv(ITEMS))
    rows = []
    for base in ("all-MiniLM-L6-v2", "multilingual-e5-small"):
        cos = Encoder(base, method="none").cosine(pairs.left.tolist(), pairs.right.tolist())
        rows.append(report(f"zero-shot {base}", cos, pairs))
    for name in args.models:
        model = load(name)
        rows.append(report(f"shipped {name}", model.predict(pairs[["left", "right"]].to_numpy()), pairs))
    table = pd.DataFrame(rows)
    text = (f"# Multilingual check ({len(pairs)} pairs, {int(pairs.same.sum())} same-item)\n\n"
            "ROC AUC of the score for \"same item\" (`python benchmarks/multilingual.py`)\n\n"
            + markdown(table) + "\n")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
