"""Scoring files: chunked, cached across chunks, atomic, with a per-row error policy."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hybrid_sim.defaults import DEFAULT_COLUMNS, SCORE_COLUMN
from hybrid_sim.io import check_input_file, iter_table, table_columns, table_format
from hybrid_sim.outputs import TableWriter, atomic_path, check_output_file
from hybrid_sim.pairs import text_problem
from hybrid_sim.scorer.estimator import HybridScorer
from hybrid_sim.stacker.stacking import feature_groups

ERROR_COLUMN = "error"
ON_ERROR = ("fail", "skip")


def _row_errors(frame: pd.DataFrame, columns: Sequence[str]) -> pd.Series:
    """Why each row cannot be scored ("" when it can)."""
    errors = pd.Series("", index=frame.index, dtype=object)
    for column in columns:
        problems = frame[column].map(text_problem, na_action=None)
        new = problems.notna() & (errors == "")
        errors[new] = f"column {column!r}: " + problems[new].astype(str)
    return errors


def score_frame(
    frame: pd.DataFrame,
    scorer: HybridScorer,
    columns: Sequence[str] = DEFAULT_COLUMNS,
    on_error: str = "fail",
    explain: bool = False,
    first_row: int = 0,
    polarity: bool = False,
) -> pd.DataFrame:
    """Add a ``similarity`` column; ``polarity`` adds ``polarity``, ``signed_similarity`` and
    ``contrast``; ``explain`` adds those, the contribution of each feature group the stacker
    reads (``contribution_<group>``, in points, or in the monotone stacker's signal), its
    ``bias`` and ``capped`` (the contrast cap lowered this score): what
    :meth:`HybridScorer.explain` shows, per group.

    With ``on_error="skip"``, rows with a missing or empty text get an empty similarity
    and an ``error`` column saying why; with ``"fail"`` the first such row raises,
    naming its row number (counted from ``first_row``) and column.
    """
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
    polarity = polarity or explain
    out = frame.copy()
    errors = _row_errors(frame, columns)
    bad = np.flatnonzero(errors.to_numpy() != "")
    if bad.size and on_error == "fail":
        raise ValueError(f"row {first_row + int(bad[0])}, {errors.iloc[bad[0]]}")
    good = errors.to_numpy() == ""
    pairs = frame.loc[good, list(columns)].to_numpy(dtype=object)
    scores = np.full(len(frame), np.nan)
    contrib: dict[str, np.ndarray] = {}
    if explain:
        contrib = _contributions(scorer, pairs, good, scores)
    elif good.any():
        scores[good] = scorer.predict(pairs)
    out[SCORE_COLUMN] = scores
    if polarity:
        for key, values in _polarity(pairs, good, scores).items():
            out[key] = values
    for name, values in contrib.items():
        out[name] = values
    if on_error == "skip":
        out[ERROR_COLUMN] = errors.to_numpy()
    return out


def _contributions(scorer: HybridScorer, pairs: np.ndarray, good: np.ndarray,
                   scores: np.ndarray) -> dict[str, np.ndarray]:
    """Fill ``scores`` for the good rows and return the explain columns, empty elsewhere."""
    # the groups the stacker uses: explain() has no contribution for a group kept only
    # for the role-reversal cap's flags
    groups = feature_groups(scorer.stacker_features_)
    n = len(good)
    contrib = {f"contribution_{g}": np.full(n, np.nan) for g in groups}
    contrib["bias"] = np.full(n, np.nan)
    contrib["capped"] = np.full(n, None, dtype=object)
    if good.any():
        table = scorer.explain(pairs)
        scores[good] = table["score"].to_numpy()
        for g in groups:
            contrib[f"contribution_{g}"][good] = table[f"group:{g}"].to_numpy()
        contrib["bias"][good] = table["bias"].to_numpy()
        contrib["capped"][good] = table["capped"].to_numpy()
    return contrib


def _polarity(pairs: np.ndarray, good: np.ndarray, scores: np.ndarray) -> dict[str, np.ndarray]:
    """The polarity columns of the good rows, empty elsewhere."""
    from hybrid_sim.apps.polarity import polarity_columns
    from hybrid_sim.pairs import normalise_text

    n = len(good)
    extra = {"polarity": np.full(n, None, dtype=object), "signed_similarity": np.full(n, np.nan),
             "contrast": np.full(n, None, dtype=object)}
    if good.any():
        texts = [[normalise_text(t) for t in column] for column in pairs.T]
        for key, values in polarity_columns(texts[0], texts[1], scores[good]).items():
            extra[key][good] = values
    return extra


class _Progress:
    """Progress, rate and time left on stderr, silent when ``quiet``: rows of a Parquet
    file (its metadata counts them), bytes of a CSV file (counting its rows would mean
    reading it twice)."""

    def __init__(self, path: Path, sep: str | None, quiet: bool) -> None:
        from tqdm.auto import tqdm

        self.rows = table_format(path, sep) == "parquet"
        self.read = 0
        if self.rows:
            import pyarrow.parquet as pq

            total, unit = int(pq.ParquetFile(path).metadata.num_rows), "rows"
        else:
            total, unit = path.stat().st_size, "B"
        self.bar = tqdm(total=total, unit=unit, unit_scale=not self.rows, disable=quiet,
                        file=sys.stderr, dynamic_ncols=True, desc="scoring")

    def bytes_read(self, n: int) -> None:
        self.read = n  # shown once the chunk read so far is scored

    def rows_done(self, n: int) -> None:
        self.bar.update(n if self.rows else self.read - self.bar.n)

    def close(self) -> None:
        self.bar.close()




def score_file(
    source: str | Path,
    output: str | Path,
    model: HybridScorer | str | Path | None = None,
    *,
    columns: Sequence[str] = DEFAULT_COLUMNS,
    on_error: str = "fail",
    explain: bool = False,
    chunk_rows: int = 50_000,
    sep: str | None = None,
    encoding: str = "utf-8",
    quiet: bool = False,
    polarity: bool = False,
) -> dict[str, Any]:
    """Score every row of ``source`` into ``output``, keeping all columns and the row order.

    The file is streamed in chunks, so memory stays flat; sentences are embedded and
    parsed once per run (the caches span chunks). ``output``'s extension picks its format
    (.csv, .tsv, .parquet, .xlsx, .json); it is checked, and its temporary file created,
    before the model loads, and it appears only when every chunk is written: a failed or
    interrupted run leaves no partial file and never replaces ``source``.

    >>> import tempfile, pathlib, pandas as pd
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> pd.DataFrame({"sentence_1": ["I feel sad"], "sentence_2": ["I feel low"]}).to_csv(
    ...     d / "in.csv", index=False)
    >>> score_file(d / "in.csv", d / "out.csv", quiet=True)["rows"]
    1
    """
    from hybrid_sim.api import _resolve

    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
    source, output = check_input_file(source), Path(output)
    out_format = check_output_file(output, inputs=[source])
    present = table_columns(source, sep, encoding)
    missing = [c for c in columns if c not in present]
    if missing:
        raise ValueError(f"column(s) {missing} not found in {source}; it has {present}")
    start = time.perf_counter()
    rows = skipped = 0
    with atomic_path(output) as tmp, TableWriter(tmp, out_format, name=output) as writer:
        scorer = _resolve(model)
        progress = _Progress(source, sep, quiet)
        try:
            for chunk in iter_table(source, chunk_rows, sep, encoding, progress.bytes_read):
                scored = score_frame(chunk, scorer, columns, on_error, explain, first_row=rows,
                                     polarity=polarity)
                if ERROR_COLUMN in scored:
                    skipped += int((scored[ERROR_COLUMN] != "").sum())
                writer.write(scored)
                rows += len(chunk)
                progress.rows_done(len(chunk))
        finally:
            progress.close()
    seconds = time.perf_counter() - start
    return {"rows": rows, "skipped": skipped, "seconds": seconds, "output": str(output)}
