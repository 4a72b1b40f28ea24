"""Write tests/data/pinned_scores.csv: the shipped models' scores on fixed pairs.

    python scripts/pin_scores.py

The pairs are every pair of the golden polarity set and the README's example items, both
orders mixed; a refactoring that changes any of these scores fails tests/test_pinned.py.
Re-run this script only when a change of scores is intended (and say so in the commit).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

import hybrid_sim

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "data" / "pinned_scores.csv"


def pairs() -> pd.DataFrame:
    golden = pd.read_csv(ROOT / "tests" / "data" / "polarity_golden.csv")[["text_a", "text_b"]]
    phq = pd.read_csv(ROOT / "examples" / "phq9.csv")["text"].tolist()
    survey = pd.read_csv(ROOT / "examples" / "survey.csv")["text"].tolist()
    cross = pd.DataFrame([(a, b) for a in survey for b in phq], columns=["text_a", "text_b"])
    return pd.concat([golden, cross], ignore_index=True)


def main() -> None:
    table = pairs()
    for name in hybrid_sim.api.SHIPPED_MODELS:
        table[name] = hybrid_sim.score(table["text_a"].tolist(), table["text_b"].tolist(), model=name)
    table.to_csv(OUT, index=False, float_format="%.17g")
    print(f"{len(table)} pairs -> {OUT}")


if __name__ == "__main__":
    main()
