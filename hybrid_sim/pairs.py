"""The input contract: every public entry point turns its input into pairs here.

Pairs come as two strings, two equal-length sequences, a DataFrame with two named
columns, or a two-column array (what scikit-learn passes between estimators).
Texts are normalised once (Unicode NFKC, whitespace collapsed) and never truncated.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from hybrid_sim.defaults import DEFAULT_COLUMNS

# Questionnaire items are a sentence or two; the longest in the DOXA data has 200-odd
# characters. Longer texts are refused per row: a 480k-character text took 28 s and
# 3.2 GB in spaCy's parse, and the encoder reads only its first 256 word pieces anyway.
MAX_TEXT_CHARS = 5_000
_SPACE = re.compile(r"\s+")
# letters, numbers, punctuation and symbols: zero-width, format and combining characters
# alone do not make a text a person can read
_VISIBLE = frozenset("LNPS")


def normalise_text(text: str) -> str:
    """Return ``text`` in NFKC form with runs of whitespace collapsed to one space.

    >>> normalise_text("  Felt\\u00a0 hopeless?\\n")
    'Felt hopeless?'
    """
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text)).strip()


def _describe(value: Any) -> str:
    if value is None:
        return "missing value (None)"
    if isinstance(value, float) and math.isnan(value):
        return "missing value (NaN)"
    if value is pd.NA or value is pd.NaT:
        return "missing value (NA)"
    return f"expected a string, got {type(value).__name__} {value!r:.40}"


def text_problem(value: Any) -> str | None:
    """Why ``value`` cannot be a questionnaire item, or ``None`` when it can.

    >>> text_problem("  "), text_problem(None), text_problem("I feel sad")
    ('text is empty or whitespace only', 'missing value (None)', None)
    >>> text_problem("\u200b\u0301")
    'text has no visible characters (only zero-width, combining or control ones)'
    """
    if not isinstance(value, str):
        return _describe(value)
    if len(value) > MAX_TEXT_CHARS:
        return f"text is {len(value):,} characters long; the limit is {MAX_TEXT_CHARS:,}"
    text = normalise_text(value)
    if not text:
        return "text is empty or whitespace only"
    if not any(unicodedata.category(c)[0] in _VISIBLE for c in text):
        return "text has no visible characters (only zero-width, combining or control ones)"
    return None


def check_texts(values: Sequence[Any], column: str) -> list[str]:
    """Validate and normalise one column of texts; raise ``ValueError`` naming row and column.

    >>> check_texts(["I feel sad ", "Felt\\thopeless"], "sentence_1")
    ['I feel sad', 'Felt hopeless']
    """
    values = list(values)
    try:
        # files repeat a few thousand items over millions of rows: check each text once
        distinct = list(dict.fromkeys(values))
    except TypeError:  # an unhashable value (a list, say): check row by row
        distinct = values
    mapping: dict[Any, str] = {}
    for value in distinct:
        problem = text_problem(value)
        if problem is not None:
            # a dict keeps the first of equal keys, so this is the value's first row
            row = next(i for i, v in enumerate(values) if v is value)
            raise ValueError(f"row {row}, column {column!r}: {problem}")
        mapping[value] = normalise_text(value)
    return [mapping[v] for v in values]


@dataclass(frozen=True)
class Pairs:
    """Pairs already checked and normalised: passing them on skips doing it again.

    >>> len(Pairs.of(["I feel sad"], ["I feel low"]))
    1
    """

    left: list[str]
    right: list[str]

    @classmethod
    def of(cls, a: Any, b: Any = None, *, columns: Sequence[str] = DEFAULT_COLUMNS) -> Pairs:
        return cls(*to_pairs(a, b, columns=columns))

    def __len__(self) -> int:
        return len(self.left)


def to_pairs(
    a: Any, b: Any = None, *, columns: Sequence[str] = DEFAULT_COLUMNS
) -> tuple[list[str], list[str]]:
    """Turn any accepted form of pair input into two lists of normalised texts.

    >>> to_pairs("I feel sad", "I feel down")
    (['I feel sad'], ['I feel down'])
    >>> to_pairs(pd.DataFrame({"sentence_1": ["a"], "sentence_2": ["b"]}))
    (['a'], ['b'])
    """
    if isinstance(a, Pairs) and b is None:
        return a.left, a.right
    if b is None:
        if a is None or isinstance(a, (str, Mapping, set, frozenset, bytes)):
            raise ValueError(f"got {_kind(a)} alone; {ACCEPTED}")
        left, right, names = _split_table(a, columns)
    else:
        for value in (a, b):
            if not isinstance(value, (str, list, tuple, np.ndarray, pd.Series, pd.Index)):
                raise ValueError(f"got {_kind(value)}; {ACCEPTED}")
        if isinstance(a, str) != isinstance(b, str):
            raise ValueError("pass two strings or two sequences of strings, not one of each")
        if isinstance(a, str):
            a, b = [a], [b]
        left, right = list(a), list(b)
        if len(left) != len(right):
            raise ValueError(
                f"the two sequences differ in length: {len(left)} and {len(right)} texts"
            )
        names = ("text_a", "text_b")
    return check_texts(left, names[0]), check_texts(right, names[1])


ACCEPTED = ("pass two strings, two equal-length lists of strings, a DataFrame with two text "
            "columns, or an (n, 2) array of strings")


def _kind(value: Any) -> str:
    if value is None:
        return "None"
    shown = repr(value)
    return f"{type(value).__name__} {shown[:40]}{'...' if len(shown) > 40 else ''}"


def _split_table(
    table: Any, columns: Sequence[str]
) -> tuple[list[Any], list[Any], tuple[str, str]]:
    if isinstance(table, pd.DataFrame):
        if len(columns) != 2:
            raise ValueError(f"expected two column names, got {list(columns)}")
        chosen = [c for c in columns if c in table.columns]
        if len(chosen) == 2:
            name_a, name_b = str(columns[0]), str(columns[1])
            return table[columns[0]].tolist(), table[columns[1]].tolist(), (name_a, name_b)
        if table.shape[1] == 2 and tuple(columns) == DEFAULT_COLUMNS:
            name_a, name_b = (str(c) for c in table.columns)
            return table.iloc[:, 0].tolist(), table.iloc[:, 1].tolist(), (name_a, name_b)
        missing = [c for c in columns if c not in table.columns]
        raise ValueError(
            f"column(s) {missing} not found; the table has {[str(c) for c in table.columns]}"
        )
    try:
        array = np.asarray(table, dtype=object)
    except ValueError:  # ragged nested sequences
        array = np.empty(0)
    if array.ndim != 2 or array.shape[1] != 2:
        raise ValueError(f"got {_kind(table)} (not n rows of 2 texts); {ACCEPTED}")
    return array[:, 0].tolist(), array[:, 1].tolist(), ("column 0", "column 1")


def check_target(y: Any, n: int) -> np.ndarray:
    """Ratings as floats in 0-100, one per pair; raise naming the first bad row.

    >>> check_target([10, 95.5], 2).tolist()
    [10.0, 95.5]
    """
    target = np.asarray(y, dtype=float).ravel()
    if target.shape != (n,):
        raise ValueError(f"expected {n} ratings, got {target.shape[0]}")
    bad = np.flatnonzero(~np.isfinite(target) | (target < 0) | (target > 100))
    if bad.size:
        raise ValueError(
            f"row {bad[0]}: rating {float(target[bad[0]])!r} is not a number in 0-100 "
            f"({bad.size} such rows)"
        )
    return target


def pair_key(a: str, b: str) -> str:
    """An order-free key for a pair, used to group repeated pairs in cross-validation.

    >>> pair_key("b", "a") == pair_key("a", "b")
    True
    """
    x, y = sorted((a, b))
    return f"{x}\x1f{y}"
