"""The input contract: accepted forms, normalisation, and a clear error for each bad input."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from hybrid_sim.pairs import MAX_TEXT_CHARS, normalise_text, pair_key, to_pairs


def test_two_strings_become_one_pair() -> None:
    assert to_pairs("I feel sad", "I feel down") == (["I feel sad"], ["I feel down"])


def test_sequences_and_dataframes_agree() -> None:
    a, b = ["x y", "z"], ["p", "q  r"]
    frame = pd.DataFrame({"sentence_1": a, "sentence_2": b, "other": [1, 2]})
    assert to_pairs(a, b) == to_pairs(frame) == to_pairs(np.array([a, b]).T)
    assert to_pairs(a, b) == (["x y", "z"], ["p", "q r"])


def test_custom_columns() -> None:
    frame = pd.DataFrame({"q1": ["a"], "q2": ["b"], "q3": ["c"]})
    assert to_pairs(frame, columns=("q1", "q3")) == (["a"], ["c"])


def test_normalisation_is_nfkc_and_whitespace_but_never_truncates() -> None:
    assert normalise_text("\u2460 ﬁne\t\n day ") == "1 fine day"
    long = "word " * (MAX_TEXT_CHARS // 5)  # at the limit: kept whole
    assert len(to_pairs(long, "x")[0][0]) == len(long.strip())
    with pytest.raises(ValueError, match="the limit is 5,000"):  # over it: refused, not cut
        to_pairs(long + "x", "x")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "missing value (None)"),
        (math.nan, "missing value (NaN)"),
        (3, "expected a string, got int"),
        ("", "empty or whitespace only"),
        ("  \t\n", "empty or whitespace only"),
    ],
)
def test_bad_value_names_row_and_column(value: object, message: str) -> None:
    frame = pd.DataFrame({"sentence_1": ["ok", "fine", "good"], "sentence_2": ["a", "b", value]})
    with pytest.raises(ValueError, match=rf"row 2, column 'sentence_2': .*{message[:12]}"):
        to_pairs(frame)


def test_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match="differ in length: 2 and 1"):
        to_pairs(["a", "b"], ["c"])


def test_missing_column_lists_the_columns_present() -> None:
    frame = pd.DataFrame({"q1": ["a"], "q2": ["b"], "q3": ["c"]})
    expected = r"\['sentence_1', 'sentence_2'\] not found.*'q1', 'q2', 'q3'"
    with pytest.raises(ValueError, match=expected):
        to_pairs(frame)


def test_string_with_sequence_is_refused() -> None:
    with pytest.raises(ValueError, match="two strings or two sequences"):
        to_pairs("a", ["b"])


def test_pair_key_is_order_free() -> None:
    assert pair_key("a", "b") == pair_key("b", "a") != pair_key("a", "c")
