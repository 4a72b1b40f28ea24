"""Reading and writing tables (CSV, TSV, Parquet) and atomic output."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd


def data_home() -> Path:
    """hybrid_sim's own folder for caches and optional models: $HYBRID_SIM_HOME, else
    ~/.cache/hybrid_sim."""
    return Path(os.environ.get("HYBRID_SIM_HOME", Path.home() / ".cache" / "hybrid_sim"))


def table_format(path: str | Path, sep: str | None = None) -> str:
    """"parquet", "tsv" or "csv", from ``sep`` if given, else from the file extension."""
    suffixes = [s.lower() for s in Path(path).suffixes]
    if ".parquet" in suffixes or ".pq" in suffixes:
        return "parquet"
    if sep is not None:
        return "tsv" if sep == "\t" else "csv"
    return "tsv" if {".tsv", ".tab"} & set(suffixes) else "csv"


def _sep(path: str | Path, sep: str | None) -> str:
    return sep if sep is not None else ("\t" if table_format(path) == "tsv" else ",")


def read_table(path: str | Path, sep: str | None = None) -> pd.DataFrame:
    """Read a whole CSV / TSV / Parquet file; text columns stay strings, never numbers.

    >>> import io, tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.tsv"
    >>> _ = p.write_text("a\\tb\\n007\\tyes\\n")
    >>> read_table(p)["a"].tolist()
    ['007']
    """
    if table_format(path, sep) == "parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path, sep=_sep(path, sep), dtype=str, keep_default_na=False,
                       na_values=[""])


def iter_table(path: str | Path, chunk_rows: int, sep: str | None = None) -> Iterator[pd.DataFrame]:
    """Read a table in chunks of ``chunk_rows`` rows, so memory stays flat."""
    if table_format(path, sep) == "parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows):
            yield batch.to_pandas()
        return
    yield from pd.read_csv(path, sep=_sep(path, sep), dtype=str, keep_default_na=False,
                           na_values=[""], chunksize=chunk_rows)


def table_columns(path: str | Path, sep: str | None = None) -> list[str]:
    """The column names of a table, read without loading its rows."""
    if table_format(path, sep) == "parquet":
        import pyarrow.parquet as pq

        return list(pq.ParquetFile(path).schema_arrow.names)
    return list(pd.read_csv(path, sep=_sep(path, sep), nrows=0).columns)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; it replaces ``path`` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        yield tmp
        tmp.chmod(0o755)  # mkdtemp makes it private; outputs and model folders are shared
        if path.exists():
            backup = path.with_name(f".{path.name}.old")
            shutil.rmtree(backup, ignore_errors=True)
            path.rename(backup)
            tmp.rename(path)
            shutil.rmtree(backup)
        else:
            tmp.rename(path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_table(frame: pd.DataFrame, path: str | Path, sep: str | None = None) -> None:
    """Write a table atomically, in the format its extension (or ``sep``) names."""
    with atomic_path(path) as tmp:
        if table_format(path, sep) == "parquet":
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, sep=_sep(path, sep), index=False)


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
