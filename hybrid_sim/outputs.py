"""Output that appears whole or not at all: tables, files and folders.

Outputs, by extension: ``.csv``, ``.tsv``, ``.parquet``, ``.xlsx``, ``.json`` (records); any
other extension is refused before any work. Every output is written to a temporary name
beside its target and renamed at the end; temporary names carry the writer's host and
process id, so a leftover from a killed run is recognised and removed by the next run
that writes there.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from hybrid_sim.io import TableError

# what each output extension writes; ``.tab`` and ``.pq`` are aliases
OUTPUT_FORMATS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".parquet": "parquet",
                  ".pq": "parquet", ".xlsx": "xlsx", ".json": "json"}
EXCEL_MAX_ROWS = 1_048_575  # a sheet's 1,048,576 rows, less the header
_TMP_TAG = "hybrid-sim"


def output_format(path: str | Path) -> str:
    """The format an output path's extension names; refuses an unknown one.

    >>> output_format("m.xlsx")
    'xlsx'
    >>> output_format("m.weird")
    Traceback (most recent call last):
    ...
    hybrid_sim.io.TableError: m.weird: unknown output extension '.weird'; use one of ...
    """
    suffix = Path(path).suffix.lower()
    if suffix not in OUTPUT_FORMATS:
        raise TableError(f"{path}: unknown output extension {suffix or '(none)'!r}; use one of "
                         ".csv, .tsv, .parquet, .xlsx, .json")
    return OUTPUT_FORMATS[suffix]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _tmp_prefix(path: Path) -> str:
    return f".{path.name}.{_TMP_TAG}.{socket.gethostname()}."


def _clean_leftovers(path: Path) -> None:
    """Remove temporary files or folders for ``path`` left by a run of this host that died."""
    prefix = _tmp_prefix(path)
    with contextlib.suppress(OSError):
        for entry in path.parent.iterdir():
            if not entry.name.startswith(prefix):
                continue
            pid = entry.name[len(prefix):].split(".", 1)[0]
            if pid.isdigit() and not _alive(int(pid)):
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    with contextlib.suppress(OSError):
                        entry.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def check_output_file(path: str | Path, inputs: Sequence[str | Path] = ()) -> str:
    """Refuse, before any work, an output that cannot or must not be written; return its format.

    Refused: an unknown extension, an existing folder, one of ``inputs`` (the input would
    be replaced), a folder that cannot be created or written.
    """
    path = Path(path)
    if path.is_dir():
        raise TableError(f"{path} is a folder; give a file name for the output")
    fmt = output_format(path)
    for source in map(Path, inputs):
        same = (os.path.samefile(source, path) if source.exists() and path.exists()
                else path.resolve() == source.resolve())
        if same:
            raise TableError(f"{path} is the input file; write the output to another file")
    parent = path.parent
    if parent.exists() and not parent.is_dir():
        raise TableError(f"{parent} is a file, so {path} cannot be created")
    return fmt


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    The file follows the user's umask (not ``mkstemp``'s private 0600).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _clean_leftovers(path)
        fd, tmp = tempfile.mkstemp(prefix=f"{_tmp_prefix(path)}{os.getpid()}.", suffix=".part",
                                   dir=path.parent)
    except OSError as exc:
        raise TableError(f"cannot write {path}: {exc.strerror or exc}") from None
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def check_folder_target(path: str | Path, is_own: Callable[[Path], bool], what: str,
                        overwrite: bool = False) -> None:
    """Refuse, before any work, to replace anything but an empty folder or one of ours.

    ``is_own`` recognises a folder this library wrote (a model by its manifest, a report
    by its files). Such a folder is replaced only with ``overwrite``; a file or a folder
    holding anything else is never replaced.
    """
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        if path.parent.exists() and not path.parent.is_dir():
            raise TableError(f"{path.parent} is a file, so {path} cannot be created")
        return
    if not path.is_dir() or path.is_symlink():
        raise TableError(f"{path} exists and is not a folder; refusing to replace it with a {what}")
    content = sorted(p.name for p in path.iterdir())
    if not content:
        return
    if is_own(path):
        if overwrite:
            return
        raise TableError(f"{path} already holds a {what}; pass --overwrite (overwrite=True) to "
                         "replace it, or choose another folder")
    shown = ", ".join(content[:3]) + (", ..." if len(content) > 3 else "")
    raise TableError(f"{path} already exists and holds files that are not a {what} ({shown}); "
                     "refusing to replace it: choose a new or empty folder")


@contextlib.contextmanager
def atomic_directory(path: str | Path, is_own: Callable[[Path], bool] | None = None,
                     what: str = "hybrid_sim folder", overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; it replaces ``path`` only on success.

    ``path`` is checked with :func:`check_folder_target` before and again at the swap: only
    an empty folder, or one ``is_own`` recognises (with ``overwrite``), is ever replaced.
    """
    path = Path(path)
    own = is_own or (lambda _p: False)
    check_folder_target(path, own, what, overwrite)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _clean_leftovers(path)
        tmp = Path(tempfile.mkdtemp(prefix=f"{_tmp_prefix(path)}{os.getpid()}.", dir=path.parent))
    except OSError as exc:
        raise TableError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        yield tmp
        tmp.chmod(0o777 & ~_umask())  # mkdtemp makes it private; model folders are shared
        check_folder_target(path, own, what, overwrite)
        if path.exists():
            backup = Path(tempfile.mkdtemp(prefix=f"{_tmp_prefix(path)}{os.getpid()}.",
                                           dir=path.parent))
            backup.rmdir()
            path.rename(backup)
            tmp.rename(path)
            shutil.rmtree(backup)
        else:
            tmp.rename(path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


class TableWriter:
    """Write a table chunk by chunk in the format ``fmt`` to the open path ``tmp``.

    >>> import tempfile, pathlib, json
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.json"
    >>> with TableWriter(p, "json") as w:
    ...     w.write(pd.DataFrame({"a": ["x"], "b": [1.5]}))
    ...     w.write(pd.DataFrame({"a": ["y"], "b": [float("nan")]}))
    >>> json.loads(p.read_text())
    [{'a': 'x', 'b': 1.5}, {'a': 'y', 'b': None}]
    """

    def __init__(self, tmp: Path, fmt: str, name: str | Path | None = None) -> None:
        self.tmp, self.fmt = Path(tmp), fmt
        self.name = str(name or tmp)  # the file the user asked for, named in errors
        self.rows = 0
        self._columns: list[str] | None = None
        self._parquet: Any = None
        self._schema: Any = None
        self._book: Any = None
        self._sheet: Any = None
        self._json: Any = None
        self._started = False

    def __enter__(self) -> TableWriter:
        return self

    def __exit__(self, kind: Any, *_: Any) -> None:
        if kind is None:
            self.close()
        elif self._json is not None:
            self._json.close()

    def write(self, frame: pd.DataFrame) -> None:
        if self._columns is None:
            self._columns = [str(c) for c in frame.columns]
        with self._disk_errors():
            getattr(self, f"_write_{self.fmt}")(frame)
        self.rows += len(frame)

    @contextlib.contextmanager
    def _disk_errors(self) -> Iterator[None]:
        """A failure of the disk (full, read-only, gone) as one line naming the output."""
        try:
            yield
        except OSError as exc:
            raise TableError(f"cannot write {self.name}: {exc.strerror or exc}") from None

    def _write_csv(self, frame: pd.DataFrame, sep: str = ",") -> None:
        # RFC 4180's CRLF line ends: Python's csv writer quotes a field only for the characters
        # of its line terminator, so with "\n" alone a lone "\r" in a text went out unquoted
        # and split its row when read back
        frame.to_csv(self.tmp, sep=sep, index=False, header=self.rows == 0 and not self._started,
                     mode="a" if self._started else "w", lineterminator="\r\n")
        self._started = True

    def _write_tsv(self, frame: pd.DataFrame) -> None:
        self._write_csv(frame, sep="\t")

    def _write_parquet(self, frame: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self._parquet is None:
            # a column that holds only missing values in the first chunk is text, not "null"
            schema = pa.Schema.from_pandas(frame, preserve_index=False)
            self._schema = pa.schema([f.with_type(pa.string()) if pa.types.is_null(f.type) else f
                                      for f in schema]).remove_metadata()
            self._parquet = pq.ParquetWriter(self.tmp, self._schema)
        table = pa.Table.from_pandas(frame, schema=self._schema, preserve_index=False)
        self._parquet.write_table(table)

    def _write_xlsx(self, frame: pd.DataFrame) -> None:
        from openpyxl import Workbook
        from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

        if self._book is None:
            self._book = Workbook(write_only=True)
            self._sheet = self._book.create_sheet("hybrid_sim")
            self._sheet.append(self._columns)
        if self.rows + len(frame) > EXCEL_MAX_ROWS:
            raise TableError(f"more than {EXCEL_MAX_ROWS:,} rows do not fit an Excel sheet; write "
                             ".csv or .parquet instead")
        for offset, row in enumerate(frame.itertuples(index=False, name=None)):
            values = [None if isinstance(v, float) and math.isnan(v) else v for v in row]
            for column, value in zip(self._columns or [], values):
                if isinstance(value, str) and ILLEGAL_CHARACTERS_RE.search(value):
                    raise TableError(f"row {self.rows + offset}, column {column!r}: a control "
                                     "character that Excel files cannot hold; write .csv instead")
            self._sheet.append(values)

    def _write_json(self, frame: pd.DataFrame) -> None:
        if self._json is None:
            self._json = open(self.tmp, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
            self._json.write("[")
        if len(frame):
            # one record per line, each written by pandas: a text holding "},{" stays as it is
            lines = frame.to_json(orient="records", lines=True, force_ascii=False,
                                  double_precision=15).strip().split("\n")
            self._json.write(("," if self.rows else "") + "\n" + ",\n".join(lines))

    def close(self) -> None:
        """Finish the file; an output with no rows still gets its header (or an empty list)."""
        with self._disk_errors():
            self._close()

    def _close(self) -> None:
        if self._columns is None:
            self._columns = []
        if self.fmt in ("csv", "tsv") and not self._started:
            self._write_csv(pd.DataFrame(columns=self._columns), "\t" if self.fmt == "tsv" else ",")
        elif self.fmt == "parquet":
            if self._parquet is None:
                self._write_parquet(pd.DataFrame({c: pd.Series(dtype=object) for c in self._columns}))
            self._parquet.close()
        elif self.fmt == "xlsx":
            if self._book is None:
                self._write_xlsx(pd.DataFrame(columns=self._columns))
            self._book.save(self.tmp)
        elif self.fmt == "json":
            if self._json is None:
                self._write_json(pd.DataFrame())
            self._json.write("\n]\n")
            self._json.close()


def write_table(frame: pd.DataFrame, path: str | Path, inputs: Sequence[str | Path] = ()) -> None:
    """Write a table atomically in the format its extension names (see ``OUTPUT_FORMATS``)."""
    fmt = check_output_file(path, inputs)
    with atomic_path(path) as tmp, TableWriter(tmp, fmt, name=path) as writer:
        writer.write(frame)


