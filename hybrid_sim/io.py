"""Reading tables, named files and hashes.

Inputs: CSV / TSV (read with Python's ``csv`` module, so that a row with more or fewer
fields than the header is an error naming its line instead of a silent shift) and
Parquet. Writing is :mod:`hybrid_sim.outputs`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd


class TableError(ValueError):
    """A table cannot be read or written; the message names the file and, where known, the line."""


def data_home() -> Path:
    """hybrid_sim's own folder for caches and optional models: $HYBRID_SIM_HOME, else
    ~/.cache/hybrid_sim (read on every call)."""
    return Path(os.environ.get("HYBRID_SIM_HOME", Path.home() / ".cache" / "hybrid_sim"))


def table_format(path: str | Path, sep: str | None = None) -> str:
    """"parquet", "tsv" or "csv" for an input, from ``sep`` if given, else from the extension.

    >>> table_format("a.tsv"), table_format("a.txt", sep=","), table_format("x.parquet")
    ('tsv', 'csv', 'parquet')
    """
    suffixes = [s.lower() for s in Path(path).suffixes]
    if ".parquet" in suffixes or ".pq" in suffixes:
        return "parquet"
    if sep is not None:
        return "tsv" if sep == "\t" else "csv"
    return "tsv" if {".tsv", ".tab"} & set(suffixes) else "csv"


def _sep(path: str | Path, sep: str | None) -> str:
    return sep if sep is not None else ("\t" if table_format(path) == "tsv" else ",")


def check_input_file(path: str | Path) -> Path:
    """``path`` as a readable file, or a one-line error saying what it is instead."""
    path = Path(path)
    if path.is_dir():
        raise TableError(f"{path} is a folder, not a file")
    if not path.exists():
        raise TableError(f"{path}: no such file")
    return path


def _decode_error(path: Path, encoding: str, exc: UnicodeDecodeError) -> TableError:
    """Name the first line that is not valid ``encoding`` (read again, line by line)."""
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            try:
                raw.decode(encoding)
            except UnicodeDecodeError as bad:
                return TableError(
                    f"{path}, line {number}: not valid {encoding} text ({bad.reason} at byte "
                    f"{bad.start} of the line); pass --encoding (e.g. --encoding latin-1)")
    return TableError(f"{path}: not valid {encoding} text ({exc.reason}); pass --encoding")


class _CountingReader(io.RawIOBase):
    """A binary file that counts the bytes read from it (for progress through a CSV file)."""

    def __init__(self, raw: Any) -> None:
        self.raw, self.count = raw, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self.raw.readinto(buffer) or 0
        self.count += n
        return n

    def close(self) -> None:
        self.raw.close()
        super().close()


def _csv_chunks(path: Path, sep: str, encoding: str, chunk_rows: int,
                progress: Callable[[int], None] | None = None) -> Iterator[pd.DataFrame]:
    # utf-8-sig reads plain UTF-8 too and drops a byte-order mark from the first header
    codec = "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # long texts are per-row errors, not fatal
    counter = _CountingReader(open(path, "rb"))  # noqa: SIM115 - closed with the text wrapper
    with io.TextIOWrapper(io.BufferedReader(counter), encoding=codec, newline="") as fh:
        reader = csv.reader(fh, delimiter=sep, strict=True)
        try:
            header = next(reader, None)
            if header is None:
                raise TableError(f"{path}: the file is empty (no header line)")
            dupes = sorted({c for c in header if header.count(c) > 1})
            if dupes:
                raise TableError(f"{path}, line 1: column name(s) {dupes} appear more than once")
            rows: list[list[str]] = []
            yielded = False
            for record in reader:
                if not record:  # a blank line, as pandas skips them
                    continue
                if len(record) != len(header):
                    raise TableError(
                        f"{path}, line {reader.line_num}: {len(record)} field(s), but the header "
                        f"has {len(header)}; quote texts that contain {sep!r}")
                rows.append(record)
                if len(rows) == chunk_rows:
                    if progress is not None:
                        progress(counter.count)
                    yield _frame(rows, header)
                    rows, yielded = [], True
            if progress is not None:
                progress(counter.count)
            if rows or not yielded:  # a file with a header and no rows gives one empty chunk
                yield _frame(rows, header)
        except UnicodeDecodeError as exc:
            raise _decode_error(path, encoding, exc) from None
        except csv.Error as exc:
            raise TableError(f"{path}, line {reader.line_num}: {exc}") from None


def _frame(rows: list[list[str]], header: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=header, dtype=object)
    # as pandas' na_values=[""]: an empty field is a missing value, every other one a string
    return frame.mask(frame == "") if len(frame) else frame


def iter_table(path: str | Path, chunk_rows: int, sep: str | None = None,
               encoding: str = "utf-8",
               progress: Callable[[int], None] | None = None) -> Iterator[pd.DataFrame]:
    """Read a table in chunks of ``chunk_rows`` rows, so memory stays flat.

    ``progress``, for CSV-like files, is called before each chunk with the bytes read so
    far (a CSV file's rows are not known without reading it twice).

    CSV text stays text (``"007"`` is not 7); an empty field is missing. A file with a
    header and no rows yields one empty chunk, so its columns are known.
    """
    path = check_input_file(path)
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")
    if table_format(path, sep) == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            source = pq.ParquetFile(path)
            empty = True
            for batch in source.iter_batches(batch_size=chunk_rows):
                empty = False
                yield batch.to_pandas()
            if empty:
                yield source.schema_arrow.empty_table().to_pandas()
        except (pa.ArrowException, OSError) as exc:
            raise TableError(f"{path} cannot be read as Parquet: {exc}") from None
        return
    yield from _csv_chunks(path, _sep(path, sep), encoding, chunk_rows, progress)


def read_table(path: str | Path, sep: str | None = None, encoding: str = "utf-8") -> pd.DataFrame:
    """Read a whole CSV / TSV / Parquet file; text columns stay strings, never numbers.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.tsv"
    >>> _ = p.write_text("a\\tb\\n007\\tyes\\n")
    >>> read_table(p)["a"].tolist()
    ['007']
    """
    chunks = list(iter_table(path, 1_000_000, sep, encoding))
    return pd.concat(chunks, ignore_index=True) if len(chunks) > 1 else chunks[0]


def table_columns(path: str | Path, sep: str | None = None, encoding: str = "utf-8") -> list[str]:
    """The column names of a table, read without loading its rows."""
    return list(next(iter_table(path, 1, sep, encoding)).columns)


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
