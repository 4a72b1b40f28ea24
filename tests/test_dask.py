"""Dask scoring on a 2-worker LocalCluster gives exactly the single-process results."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hybrid_sim.features import make_features
from hybrid_sim.scorer.estimator import HybridScorer
from tests.conftest import TINY_PAIRS

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    a, b, y = zip(*TINY_PAIRS)
    folder = tmp_path_factory.mktemp("m") / "model"
    HybridScorer(features=make_features(["bow", "fuzzy", "negation"]), cv=2,
                 params={"min_child_samples": 2, "n_estimators": 30}).fit(
        np.column_stack([a, b]).astype(object), y).save(folder)
    return folder


def _frame() -> pd.DataFrame:
    a, b, _ = zip(*TINY_PAIRS)
    return pd.DataFrame({"id": range(len(a) * 2), "sentence_1": list(a) * 2,
                         "sentence_2": list(b)[::-1] * 2})


@pytest.mark.filterwarnings("ignore")
def test_local_cluster_matches_single_process(model_dir: Path, tmp_path: Path) -> None:
    import hybrid_sim
    from hybrid_sim.apps.dask import score_directory

    frame = _frame()
    src = tmp_path / "in"
    src.mkdir()
    frame.iloc[:10].to_parquet(src / "a.parquet", index=False)
    frame.iloc[10:].to_parquet(src / "b.parquet", index=False)
    out = tmp_path / "out"
    score_directory(src, out, "local", model=model_dir)
    got = pd.read_parquet(out).sort_values("id").reset_index(drop=True)
    expected = hybrid_sim.score(frame, model=model_dir)
    np.testing.assert_array_equal(got["similarity"].to_numpy(), expected)
    assert got["sentence_1"].tolist() == frame["sentence_1"].tolist()


def test_map_partitions_is_lazy_and_typed(model_dir: Path) -> None:
    from hybrid_sim.apps.dask import score

    ddf = dd.from_pandas(_frame(), npartitions=3)
    lazy = score(ddf, model=model_dir)
    assert "similarity" in lazy.columns
    result = lazy.compute(scheduler="synchronous")
    assert len(result) == len(_frame()) and result["similarity"].between(0, 100).all()


def test_missing_column_is_named(model_dir: Path) -> None:
    from hybrid_sim.apps.dask import score

    ddf = dd.from_pandas(_frame().rename(columns={"sentence_2": "b"}), npartitions=1)
    with pytest.raises(ValueError, match=r"\['sentence_2'\] not found"):
        score(ddf, model=model_dir)
