"""The public face: ``score``, ``load``, ``train`` and ``evaluate``."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hybrid_sim.models.scorer import HybridScorer
from hybrid_sim.pairs import DEFAULT_COLUMNS, Pairs, check_target, to_pairs

TARGET = "human_similarity"
_default: HybridScorer | None = None
_default_lock = threading.Lock()


def default_model_path() -> Path:
    """Where the shipped default model lives inside the installed package."""
    return Path(str(resources.files("hybrid_sim.models") / "default"))


def load(path: str | Path | None = None, base_model: str | None = None) -> HybridScorer:
    """Load a model folder (``None``: the shipped default). Fails clearly if damaged.

    >>> model = load()
    >>> sorted(g for g, _ in model.features_.transformer_list)
    ['bow', 'embedding', 'fuzzy', 'negation']
    """
    from hybrid_sim.models.persistence import load_scorer

    return load_scorer(default_model_path() if path is None else path, base_model=base_model)


def _resolve(model: HybridScorer | str | Path | None) -> HybridScorer:
    global _default
    if isinstance(model, HybridScorer):
        return model
    if model is not None:
        return load(model)
    with _default_lock:
        if _default is None:
            _default = load()
        return _default


def score(
    a: Any,
    b: Any = None,
    *,
    model: HybridScorer | str | Path | None = None,
    columns: Sequence[str] = DEFAULT_COLUMNS,
) -> float | np.ndarray:
    """Similarity on the 0-100 scale of human raters.

    Two strings give a float; two sequences (or a DataFrame with ``columns``) give an
    array. ``model`` is a folder or a loaded scorer; by default the shipped model is
    loaded once, lazily.

    >>> s = score("Felt hopeless?", "Feeling down, depressed, or hopeless?")
    >>> 0.0 <= s <= 100.0
    True
    >>> score(["I feel sad"], ["I feel down"]).shape
    (1,)
    """
    scorer = _resolve(model)
    pred = scorer.predict(Pairs.of(a, b, columns=columns))
    if isinstance(a, str):
        return float(pred[0])
    return pred


def _read_frame(
    data: str | Path | pd.DataFrame, columns: Sequence[str], target: str, sep: str | None
) -> pd.DataFrame:
    """A table from a file or DataFrame, with the text and target columns checked present."""
    from hybrid_sim.io import read_table

    frame = read_table(data, sep=sep) if not isinstance(data, pd.DataFrame) else data
    missing = [c for c in (*columns, target) if c not in frame.columns]
    if missing:
        raise ValueError(f"column(s) {missing} not found; the data has {list(frame.columns)}")
    return frame


def read_labelled(
    data: str | Path | pd.DataFrame,
    columns: Sequence[str] = DEFAULT_COLUMNS,
    target: str = TARGET,
    sep: str | None = None,
) -> tuple[pd.DataFrame, np.ndarray, dict[str, Any]]:
    """Load rated pairs from a file or DataFrame: (pairs, ratings, provenance)."""
    frame = _read_frame(data, columns, target, sep)
    left, right = to_pairs(frame, columns=columns)
    ratings = pd.to_numeric(frame[target], errors="coerce").to_numpy(float)
    y = check_target(ratings, len(frame))
    pairs = pd.DataFrame({DEFAULT_COLUMNS[0]: left, DEFAULT_COLUMNS[1]: right})
    digest = hashlib.sha256(
        pd.util.hash_pandas_object(frame[[*columns, target]], index=False).to_numpy().tobytes()
    ).hexdigest()
    info = {
        "data_name": Path(data).name if not isinstance(data, pd.DataFrame) else "DataFrame",
        "n_rows": len(frame),
        "data_sha256": digest,
        "columns": list(columns),
        "target": target,
    }
    return pairs, y, info


def train(
    data: str | Path | pd.DataFrame,
    output: str | Path | None = None,
    *,
    columns: Sequence[str] = DEFAULT_COLUMNS,
    target: str = TARGET,
    groups: Sequence[str] | None = None,
    base_model: str = "all-MiniLM-L6-v2",
    method: str = "lora",
    epochs: int = 4,
    learning_rate: float | None = None,
    extra_bases: Sequence[str] = (),
    base_cosine: bool = True,
    n_seeds: int = 1,
    select_groups: bool = True,
    cv: int = 5,
    seed: int = 0,
    show_progress: bool = True,
    sep: str | None = None,
) -> HybridScorer:
    """Train a scorer on rated pairs; save it to ``output`` when given.

    The stacker keeps the feature groups that lower its grouped-CV MAE
    (``select_groups``; see :class:`HybridScorer`).

    >>> import pandas as pd
    >>> pairs = pd.DataFrame({"sentence_1": ["I feel sad", "I sleep well"] * 3,
    ...                       "sentence_2": ["I feel down", "I drink"] * 3,
    ...                       "human_similarity": [80, 5] * 3})
    >>> train(pairs, groups=["bow", "fuzzy"], cv=2).predict(pairs.iloc[:, :2]).shape
    (6,)
    """
    from hybrid_sim.features import ALL_GROUPS, make_features

    pairs, y, info = read_labelled(data, columns, target, sep)
    chosen = list(groups) if groups is not None else list(ALL_GROUPS)
    params: dict[str, Any] = {}
    if "embedding" in chosen:
        params["embedding"] = {
            "base_model": base_model, "method": method, "epochs": epochs,
            "learning_rate": learning_rate, "extra_bases": tuple(extra_bases),
            "base_cosine": base_cosine, "n_seeds": n_seeds, "cv": cv, "seed": seed,
            "show_progress": show_progress,
        }
    scorer = HybridScorer(features=make_features(chosen, **params), cv=cv, seed=seed,
                          select_groups=select_groups)
    scorer.fit(pairs, y)
    if output is not None:
        scorer.save(output, **info)
    return scorer


def evaluate(
    data: str | Path | pd.DataFrame,
    model: HybridScorer | str | Path | None = None,
    *,
    columns: Sequence[str] = DEFAULT_COLUMNS,
    target: str = TARGET,
    sep: str | None = None,
) -> dict[str, float]:
    """MAE, RMSE, Pearson, Spearman (and ROC AUC for a 0/1 target) of a model on data."""
    from hybrid_sim.models.stacker import regression_metrics

    frame = _read_frame(data, columns, target, sep)
    y = pd.to_numeric(frame[target], errors="coerce").to_numpy(float)
    bad = np.flatnonzero(~np.isfinite(y))
    if bad.size:
        raise ValueError(f"row {bad[0]}, column {target!r}: not a number")
    pred = score(frame, model=model, columns=columns)
    return regression_metrics(y, np.asarray(pred))
