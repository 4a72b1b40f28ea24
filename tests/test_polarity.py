"""Polarity: same construct in the same or the opposite direction, and role reversal.

The golden set (tests/data/polarity_golden.csv, 153 pairs written for this project) spans
first-person items, questions, adult symptom lists, child checklists, single words and
double negations. Its "held" third was kept out of development: its figures are reported,
and guarded here, but the rules were never tuned on it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import hybrid_sim
from hybrid_sim.apps.cli import main
from hybrid_sim.apps.polarity import polarity_of
from hybrid_sim.features._nlp import analyse

GOLDEN = Path(__file__).parent / "data" / "polarity_golden.csv"


def _predict(frame: pd.DataFrame) -> list[str]:
    parsed = analyse(list(set(frame["text_a"]) | set(frame["text_b"])))
    out = []
    for a, b in zip(frame["text_a"], frame["text_b"]):
        polarity, why = polarity_of(parsed[a], parsed[b])
        out.append("role" if why.startswith("role reversal") else polarity)
    return out


def per_label(frame: pd.DataFrame) -> dict[str, tuple[float, float]]:
    """Precision and recall of each label."""
    pred = np.array(_predict(frame))
    truth = frame["label"].to_numpy()
    return {label: (float(((pred == label) & (truth == label)).sum() / max((pred == label).sum(), 1)),
                    float(((pred == label) & (truth == label)).sum() / max((truth == label).sum(), 1)))
            for label in ("same", "reversed", "role")}


@pytest.mark.parametrize(("split", "floor"), [("dev", 0.93), ("held", 0.85)])
def test_the_golden_set_is_answered(split: str, floor: float) -> None:
    golden = pd.read_csv(GOLDEN)
    part = golden[golden["split"] == split]
    assert len(golden) >= 150 and set(golden["label"]) == {"same", "reversed", "role"}
    accuracy = float(np.mean(np.array(_predict(part)) == part["label"].to_numpy()))
    assert accuracy >= floor, per_label(part)


@pytest.mark.parametrize(("a", "b", "polarity", "reason"), [
    ("I feel sad", "I do not feel sad", "reversed", "negation: not"),
    ("I am not happy", "I am sad", "same", ""),
    ("I feel calm", "I feel anxious", "reversed", "antonyms: anxious / calm"),
    ("I have trouble sleeping", "I sleep very deeply", "reversed", "antonyms: deeply / trouble"),
    ("I don't have trouble sleeping", "I sleep well", "same", ""),
    ("Child bullies others", "Child is often bullied", "same", "role reversal: bully"),
])
def test_compare_says_the_direction_and_why(a: str, b: str, polarity: str, reason: str) -> None:
    row = hybrid_sim.compare(a, b).iloc[0]
    assert row["polarity"] == polarity
    assert row["contrast"].startswith(reason)
    assert row["signed_similarity"] == (-1 if polarity == "reversed" else 1) * row["similarity"]
    assert row["similarity"] == hybrid_sim.score(a, b)  # the same number score gives


def test_compare_is_symmetric_in_its_verdict() -> None:
    golden = pd.read_csv(GOLDEN).head(40)
    forward = hybrid_sim.compare(golden["text_a"].tolist(), golden["text_b"].tolist())
    backward = hybrid_sim.compare(golden["text_b"].tolist(), golden["text_a"].tolist())
    assert forward["polarity"].tolist() == backward["polarity"].tolist()
    np.testing.assert_array_equal(forward["similarity"], backward["similarity"])


def test_a_role_reversal_ranks_below_the_true_partner() -> None:
    table = hybrid_sim.compare(["Child bullies others"] * 2,
                               ["Often fights with other children or bullies them", "Child is often bullied"])
    assert table["similarity"][0] > table["similarity"][1]
    assert table["contrast"][1].startswith("role reversal")


def test_score_polarity_adds_three_columns(tmp_path: Path) -> None:
    pd.DataFrame({"sentence_1": ["I feel sad", "Child bullies others", " "],
                  "sentence_2": ["I do not feel sad", "Child is often bullied", "x"]}).to_csv(
        tmp_path / "in.csv", index=False)
    assert main(["score", str(tmp_path / "in.csv"), "-o", str(tmp_path / "o.csv"), "--polarity",
                 "--on-error", "skip", "--quiet"]) == 0
    got = pd.read_csv(tmp_path / "o.csv", keep_default_na=False)
    assert list(got.columns) == ["sentence_1", "sentence_2", "similarity", "polarity",
                                 "signed_similarity", "contrast", "error"]
    assert got["polarity"].tolist() == ["reversed", "same", ""]
    assert got["contrast"][1].startswith("role reversal")
