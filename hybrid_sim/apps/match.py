"""Questionnaire matching: every item of A against every item of B, as a crosswalk.

The long output is grouped by item of A, in A's order, with each item's matches ranked
(rank 1 the best; ties, if any, broken by the unrounded score, then by B's order).
Item ids, when given, travel with their items.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hybrid_sim.apps.polarity import polarity_columns
from hybrid_sim.defaults import SCORE_COLUMN as SCORE
from hybrid_sim.pairs import Pairs, check_texts
from hybrid_sim.scorer.estimator import HybridScorer


def _check_options(top: int | None, min_score: float | None) -> None:
    if top is not None and (isinstance(top, bool) or not isinstance(top, (int, np.integer)) or top < 1):
        raise ValueError(f"top must be a whole number of at least 1, got {top!r}")
    if min_score is not None and not (0 <= float(min_score) <= 100):  # NaN fails both
        raise ValueError(f"min_score must be a number in 0-100, got {min_score!r}")


def _ids(ids: Sequence[Any] | None, n: int, name: str) -> list[Any] | None:
    if ids is None:
        return None
    ids = list(ids)
    if len(ids) != n:
        raise ValueError(f"{name} has {len(ids)} ids for {n} items")
    return ids


def similarity_matrix(
    items_a: Sequence[str], items_b: Sequence[str], model: HybridScorer | str | Path | None = None
) -> np.ndarray:
    """Scores of every item of A (rows) against every item of B (columns).

    >>> similarity_matrix(["I feel sad"], ["Felt down?", "Do you smoke?"]).shape
    (1, 2)
    """
    from hybrid_sim.api import _resolve

    a = check_texts(list(items_a), "items_a")
    b = check_texts(list(items_b), "items_b")
    if not a or not b:
        return np.zeros((len(a), len(b)))
    grid_a = np.repeat(np.asarray(a, dtype=object), len(b))
    grid_b = np.tile(np.asarray(b, dtype=object), len(a))
    return np.asarray(_resolve(model).predict(Pairs(list(grid_a), list(grid_b)))).reshape(len(a), len(b))


def match(
    items_a: Sequence[str],
    items_b: Sequence[str],
    model: HybridScorer | str | Path | None = None,
    *,
    top: int | None = None,
    min_score: float | None = None,
    one_to_one: bool = False,
    ids_a: Sequence[Any] | None = None,
    ids_b: Sequence[Any] | None = None,
) -> pd.DataFrame:
    """A crosswalk from A to B: per item of A (in A's order) its matches in B, ranked.

    ``top`` keeps the K best of each item of A; ``min_score`` drops weaker matches;
    ``one_to_one`` pairs each item with at most one of the other questionnaire, choosing
    the pairing of highest total similarity (``scipy.optimize.linear_sum_assignment``).
    ``ids_a`` / ``ids_b`` add ``id_a`` / ``id_b`` columns; ``polarity``,
    ``signed_similarity`` and ``contrast`` say whether a match is keyed in the opposite
    direction (see :func:`hybrid_sim.apps.polarity.compare`).

    >>> m = match(["I feel sad", "I sleep badly"], ["Felt down?", "Trouble sleeping?"], top=1)
    >>> list(m.columns), m["rank"].tolist()
    (['item_a', 'rank', 'item_b', 'similarity', 'polarity', 'signed_similarity', 'contrast'], [1, 1])
    """
    _check_options(top, min_score)
    ids_a, ids_b = _ids(ids_a, len(items_a), "ids_a"), _ids(ids_b, len(items_b), "ids_b")
    scores = similarity_matrix(items_a, items_b, model)
    n_a, n_b = scores.shape
    rows_a, rows_b = np.repeat(np.arange(n_a), n_b), np.tile(np.arange(n_b), n_a)
    keep = np.ones(n_a * n_b, dtype=bool)
    if one_to_one and scores.size:
        from scipy.optimize import linear_sum_assignment

        chosen_a, chosen_b = linear_sum_assignment(scores, maximize=True)
        keep[:] = False
        keep[chosen_a * n_b + chosen_b] = True
    out = pd.DataFrame({"_a": rows_a, "_b": rows_b, SCORE: scores.ravel()})[keep]
    # rank within each item of A: best first, the unrounded score breaking ties, then B's order
    out = out.sort_values(["_a", SCORE, "_b"], ascending=[True, False, True], kind="stable")
    out["rank"] = out.groupby("_a").cumcount() + 1
    if min_score is not None:
        out = out[out[SCORE] >= min_score]
    if top is not None:
        out = out[out["rank"] <= top]
    table: dict[str, Any] = {}
    if ids_a is not None:
        table["id_a"] = [ids_a[i] for i in out["_a"]]
    table["item_a"] = [items_a[i] for i in out["_a"]]
    table["rank"] = out["rank"].to_numpy()
    if ids_b is not None:
        table["id_b"] = [ids_b[i] for i in out["_b"]]
    table["item_b"] = [items_b[i] for i in out["_b"]]
    table[SCORE] = out[SCORE].to_numpy()
    texts_a = check_texts([items_a[i] for i in out["_a"]], "items_a")
    texts_b = check_texts([items_b[i] for i in out["_b"]], "items_b")
    table.update(polarity_columns(texts_a, texts_b, table[SCORE]))
    return pd.DataFrame(table)


def match_wide(items_a: Sequence[str], items_b: Sequence[str],
               model: HybridScorer | str | Path | None = None, *,
               ids_a: Sequence[Any] | None = None, ids_b: Sequence[Any] | None = None) -> pd.DataFrame:
    """The crosswalk as a matrix: one row per item of A, one column per item of B.

    >>> match_wide(["I feel sad"], ["Felt down?", "Do you smoke?"]).shape
    (1, 3)
    """
    scores = similarity_matrix(items_a, items_b, model)
    labels_b = list(ids_b) if ids_b is not None else list(items_b)
    if len(set(map(str, labels_b))) != len(labels_b):
        raise ValueError("items of B repeat: give --id-column (ids_b) to name the columns")
    frame = pd.DataFrame(scores, columns=[str(x) for x in labels_b])
    frame.insert(0, "item_a", list(items_a))
    if ids_a is not None:
        frame.insert(0, "id_a", list(ids_a))
    return frame


def read_items(path: str | Path, column: str | None = None, sep: str | None = None,
               encoding: str = "utf-8", id_column: str | None = None) -> tuple[list[str], list[Any] | None]:
    """Items (and their ids, when ``id_column`` names them) from a file: a text file with
    one item per line, or a table with a text column."""
    from hybrid_sim.io import TableError, check_input_file, read_table

    path = check_input_file(path)
    if path.suffix.lower() in (".txt", ".text", ""):
        if id_column is not None:
            raise ValueError(f"{path} is a text file (one item per line): it has no id column")
        try:
            text = path.read_text(encoding=encoding)
        except UnicodeDecodeError as exc:
            raise TableError(f"{path}: not valid {encoding} text ({exc.reason}); pass "
                             "--encoding (e.g. --encoding latin-1)") from None
        lines = [line for line in text.splitlines() if line.strip()]
        return check_texts(lines, path.name), None
    frame = read_table(path, sep=sep, encoding=encoding)
    if column is None:
        rest = [c for c in frame.columns if c != id_column]
        if len(rest) != 1:
            raise ValueError(f"{path} has columns {list(frame.columns)}: name the items' column with "
                             "--text-column")
        column = str(rest[0])
    for name in (column, id_column):
        if name is not None and name not in frame.columns:
            raise ValueError(f"column {name!r} not found in {path}; it has {list(frame.columns)}")
    texts = check_texts(frame[column].tolist(), column)
    ids = frame[id_column].tolist() if id_column is not None else None
    return texts, ids


def match_files(
    a: str | Path,
    b: str | Path,
    output: str | Path,
    model: HybridScorer | str | Path | None = None,
    *,
    column: str | None = None,
    id_column: str | None = None,
    encoding: str = "utf-8",
    top: int | None = None,
    min_score: float | None = None,
    one_to_one: bool = False,
    wide: bool = False,
) -> int:
    """``match`` (or, with ``wide``, ``match_wide``) of the items of two files, written to
    ``output`` atomically in the format its extension names; returns the rows written.
    The output is checked before any work, so a bad target costs nothing."""
    from hybrid_sim.outputs import check_output_file, write_table

    if wide and (top or min_score is not None or one_to_one):
        raise ValueError("--wide writes every score: --top, --min-score and --one-to-one do not apply")
    check_output_file(output, inputs=[a, b])
    items_a, ids_a = read_items(a, column, encoding=encoding, id_column=id_column)
    items_b, ids_b = read_items(b, column, encoding=encoding, id_column=id_column)
    if wide:
        table = match_wide(items_a, items_b, model, ids_a=ids_a, ids_b=ids_b)
    else:
        table = match(items_a, items_b, model, top=top, min_score=min_score,
                      one_to_one=one_to_one, ids_a=ids_a, ids_b=ids_b)
    write_table(table, output, inputs=[a, b])
    return len(table)
