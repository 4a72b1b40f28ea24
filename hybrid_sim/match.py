"""Questionnaire matching: every item of A against every item of B."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hybrid_sim.models.scorer import HybridScorer
from hybrid_sim.pairs import Pairs, check_texts


def match(
    items_a: Sequence[str],
    items_b: Sequence[str],
    model: HybridScorer | str | Path | None = None,
    *,
    top: int | None = None,
    min_score: float | None = None,
) -> pd.DataFrame:
    """Score all pairs of items; long output sorted by similarity, best first.

    ``top`` keeps the K best matches of each item of A; ``min_score`` drops weaker ones.

    >>> m = match(["I feel sad", "I sleep badly"], ["Felt down?", "Trouble sleeping?"], top=1)
    >>> list(m.columns), len(m)
    (['item_a', 'item_b', 'similarity'], 2)
    """
    from hybrid_sim.api import _resolve

    if top is not None and (isinstance(top, bool) or not isinstance(top, int) or top < 1):
        raise ValueError(f"top must be a whole number of at least 1, got {top!r}")
    if min_score is not None and not (0 <= float(min_score) <= 100):  # NaN fails both
        raise ValueError(f"min_score must be a number in 0-100, got {min_score!r}")
    a = list(dict.fromkeys(check_texts(list(items_a), "items_a")))
    b = list(dict.fromkeys(check_texts(list(items_b), "items_b")))
    grid_a = np.repeat(np.asarray(a, dtype=object), len(b))
    grid_b = np.tile(np.asarray(b, dtype=object), len(a))
    scores: Any = _resolve(model).predict(Pairs(list(grid_a), list(grid_b))) if len(grid_a) else []
    out = pd.DataFrame({"item_a": grid_a, "item_b": grid_b, "similarity": scores})
    if min_score is not None:
        out = out[out["similarity"] >= min_score]
    out = out.sort_values(["similarity", "item_a", "item_b"], ascending=[False, True, True],
                          kind="stable")
    if top is not None:
        out = out.groupby("item_a", sort=False).head(top)
    return out.reset_index(drop=True)


def read_items(path: str | Path, column: str | None = None, sep: str | None = None,
               encoding: str = "utf-8") -> list[str]:
    """Items from a file: a named column of a table, or one item per line of a text file."""
    from hybrid_sim.io import TableError, check_input_file, read_table

    path = check_input_file(path)
    if path.suffix.lower() in (".txt", ".text", ""):
        try:
            text = path.read_text(encoding=encoding)
        except UnicodeDecodeError as exc:
            raise TableError(f"{path}: not valid {encoding} text ({exc.reason}); pass "
                             "--encoding (e.g. --encoding latin-1)") from None
        lines = [line for line in text.splitlines() if line.strip()]
        return check_texts(lines, path.name)
    frame = read_table(path, sep=sep, encoding=encoding)
    if column is None:
        if frame.shape[1] != 1:
            raise ValueError(f"{path} has columns {list(frame.columns)}: name one with --column")
        column = str(frame.columns[0])
    if column not in frame.columns:
        raise ValueError(f"column {column!r} not found in {path}; it has {list(frame.columns)}")
    values: list[Any] = frame[column].tolist()
    return check_texts(values, column)
