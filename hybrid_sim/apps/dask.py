"""Scoring Dask DataFrames: one model load per worker process, partitions scored in place.

    import dask.dataframe as dd
    from hybrid_sim.apps.dask import score
    ddf = dd.read_parquet("pairs/")            # columns sentence_1, sentence_2, ...
    score(ddf).to_parquet("scored/")           # adds a similarity column

For a real cluster, start a scheduler and workers that have hybrid_sim installed and can
read the model folder (the default one ships inside the package), then pass the
scheduler's address: ``hybrid-sim score in_dir -o out_dir --dask tcp://host:8786``.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hybrid_sim.defaults import DEFAULT_COLUMNS, SCORE_COLUMN
from hybrid_sim.outputs import atomic_directory, check_folder_target

_models: dict[str, Any] = {}
_lock = threading.Lock()


def _worker_model(path: str) -> Any:
    """The model at ``path``, loaded once per worker process and reused by every task."""
    with _lock:
        if path not in _models:
            from hybrid_sim.api import load

            _models[path] = load(path)
        return _models[path]


def _score_partition(part: pd.DataFrame, model_path: str, columns: Sequence[str]) -> pd.DataFrame:
    out = part.copy()
    if len(part):
        out[SCORE_COLUMN] = _worker_model(model_path).predict(part[list(columns)])
    else:
        out[SCORE_COLUMN] = np.array([], dtype=float)
    return out


def score(ddf: Any, columns: Sequence[str] = DEFAULT_COLUMNS, model: str | Path | None = None) -> Any:
    """Add a ``similarity`` column to a Dask DataFrame (lazily, via ``map_partitions``)."""
    from hybrid_sim.api import model_folder

    missing = [c for c in columns if c not in ddf.columns]
    if missing:
        raise ValueError(f"column(s) {missing} not found; the data has {list(ddf.columns)}")
    model_path = str(model_folder(model).resolve())
    meta = ddf._meta.assign(**{SCORE_COLUMN: np.float64()})
    return ddf.map_partitions(_score_partition, model_path, tuple(columns), meta=meta)


def _client(address: str) -> Any:
    from distributed import Client, LocalCluster

    if address == "local":
        return Client(LocalCluster(n_workers=2, threads_per_worker=1, processes=True))
    return Client(address)


def score_directory(
    source: str | Path,
    output: str | Path,
    address: str = "local",
    *,
    columns: Sequence[str] = DEFAULT_COLUMNS,
    model: str | Path | None = None,
) -> dict[str, Any]:
    """Score a Parquet or CSV file or directory on a Dask cluster into ``output`` (a folder).

    The folder appears only when every partition is written.
    """
    import dask.dataframe as dd

    source, output = Path(source), Path(output)
    check_folder_target(output, lambda _p: False, "scored output")
    if not source.exists():
        raise FileNotFoundError(f"{source}: no such file or folder")
    files = sorted(source.glob("*")) if source.is_dir() else [source]
    parquet = any(f.suffix == ".parquet" for f in files)
    if parquet:
        ddf = dd.read_parquet(str(source))
    else:
        csvs = [str(f) for f in files if f.suffix in (".csv", ".tsv")]
        if not csvs:
            raise ValueError(f"no .parquet, .csv or .tsv files in {source}")
        ddf = dd.read_csv(csvs, sep="\t" if csvs[0].endswith(".tsv") else ",", dtype=str,
                          keep_default_na=False, na_values=[""], blocksize="16MB")
    scored = score(ddf, columns, model)
    client = _client(address)
    try:
        with atomic_directory(output, what="scored output") as tmp:
            if parquet:
                scored.to_parquet(str(tmp), write_index=False)
            else:
                scored.to_csv(str(tmp / "part-*.csv"), index=False)
    finally:
        cluster = getattr(client, "cluster", None)
        client.close()
        if address == "local" and cluster is not None:
            cluster.close()
    return {"output": str(output), "partitions": scored.npartitions}
