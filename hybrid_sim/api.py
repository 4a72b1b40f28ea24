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

from hybrid_sim.defaults import DEFAULT_BASE, DEFAULT_COLUMNS, SHIPPED_MODELS, TARGET
from hybrid_sim.pairs import Pairs, check_target, to_pairs
from hybrid_sim.scorer.estimator import HybridScorer

_shipped: dict[str, HybridScorer] = {}
_shipped_lock = threading.Lock()


def shipped_model_path(name: str = "default") -> Path:
    """Where a model shipped inside the package lives (``"default"``, ``"accurate"``)."""
    if name not in SHIPPED_MODELS:
        raise ValueError(f"no shipped model {name!r}; there are {SHIPPED_MODELS}")
    return Path(str(resources.files("hybrid_sim") / "shipped_models" / name))


def default_model_path() -> Path:
    """Where the shipped default model lives inside the installed package."""
    return shipped_model_path("default")


def _shipped_name(path: str | Path | None) -> str | None:
    if path is None:
        return "default"
    # a folder of that name in the working directory wins over the shipped model
    if str(path) in SHIPPED_MODELS and not Path(path).exists():
        return str(path)
    return None


def model_folder(path: str | Path | None) -> Path:
    """The folder a model argument names: a shipped model's name (``None``: "default"),
    or a folder path."""
    name = _shipped_name(path)
    return shipped_model_path(name) if name is not None else Path(path)  # type: ignore[arg-type]


def load(path: str | Path | None = None, base_model: str | None = None) -> HybridScorer:
    """Load a model folder, or a shipped model by name (``None``: ``"default"``).

    Fails clearly if the folder is damaged or incompatible.

    >>> model = load()
    >>> sorted(g for g, _ in model.features_.transformer_list)
    ['embedding', 'negation']
    """
    from hybrid_sim.scorer.loading import load_scorer

    return load_scorer(model_folder(path), base_model=base_model)


def _resolve(model: HybridScorer | str | Path | None) -> HybridScorer:
    if isinstance(model, HybridScorer):
        return model
    name = _shipped_name(model)
    if name is None:
        return load(model)
    with _shipped_lock:  # a shipped model loads once per process
        if name not in _shipped:
            _shipped[name] = load(name)
        return _shipped[name]


def score(
    a: Any,
    b: Any = None,
    *,
    model: HybridScorer | str | Path | None = None,
    columns: Sequence[str] = DEFAULT_COLUMNS,
) -> float | np.ndarray:
    """Similarity on the 0-100 scale of human raters.

    ``model``: a loaded scorer, a model folder, or a shipped model's name ("default",
    "accurate").

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
    data: str | Path | pd.DataFrame, columns: Sequence[str], target: str, sep: str | None,
    encoding: str = "utf-8",
) -> pd.DataFrame:
    """A table from a file or DataFrame, with the text and target columns checked present."""
    from hybrid_sim.io import read_table

    if not isinstance(data, (str, Path, pd.DataFrame)):
        raise ValueError(f"data must be a file path or a DataFrame, got {type(data).__name__}")
    frame = read_table(data, sep=sep, encoding=encoding) if not isinstance(data, pd.DataFrame) else data
    missing = [c for c in (*columns, target) if c not in frame.columns]
    if missing:
        raise ValueError(f"column(s) {missing} not found; the data has {list(frame.columns)}")
    if not len(frame):
        raise ValueError("the data has no rows")
    return frame


def read_ratings(frame: pd.DataFrame, target: str) -> np.ndarray:
    """The ``target`` column as ratings in 0-100; raise naming the first bad row and its value.

    >>> read_ratings(pd.DataFrame({"r": ["10", "95.5"]}), "r").tolist()
    [10.0, 95.5]
    >>> read_ratings(pd.DataFrame({"r": ["10", "high"]}), "r")
    Traceback (most recent call last):
    ...
    ValueError: row 1, column 'r': 'high' is not a rating in 0-100 (1 such rows)
    """
    raw = frame[target]
    y = pd.to_numeric(raw, errors="coerce").to_numpy(float)
    bad = np.flatnonzero(~np.isfinite(y) | (y < 0) | (y > 100))
    if bad.size:
        value = raw.iloc[bad[0]]
        shown = "missing" if value is None or (isinstance(value, float) and np.isnan(value)) else repr(value)
        raise ValueError(f"row {bad[0]}, column {target!r}: {shown} is not a rating in 0-100 "
                         f"({bad.size} such rows)")
    return y


def _data_digest(frame: pd.DataFrame, columns: Sequence[str], target: str) -> str:
    """sha256 of the text and rating columns, as a model's manifest records it."""
    return hashlib.sha256(
        pd.util.hash_pandas_object(frame[[*columns, target]], index=False).to_numpy().tobytes()
    ).hexdigest()


def read_labelled(
    data: str | Path | pd.DataFrame,
    columns: Sequence[str] = DEFAULT_COLUMNS,
    target: str = TARGET,
    sep: str | None = None,
    encoding: str = "utf-8",
) -> tuple[pd.DataFrame, np.ndarray, dict[str, Any]]:
    """Load rated pairs from a file or DataFrame: (pairs, ratings, provenance)."""
    frame = _read_frame(data, columns, target, sep, encoding)
    left, right = to_pairs(frame, columns=columns)
    y = check_target(read_ratings(frame, target), len(frame))
    pairs = pd.DataFrame({DEFAULT_COLUMNS[0]: left, DEFAULT_COLUMNS[1]: right})
    digest = _data_digest(frame, columns, target)
    info = {
        "data_name": Path(data).name if not isinstance(data, pd.DataFrame) else "DataFrame",
        "n_rows": len(frame),
        "data_sha256": digest,
        "columns": list(columns),
        "target": target,
    }
    return pairs, y, info


def _check_folds(pairs: pd.DataFrame, cv: int) -> None:
    """Cross-fitting needs at least ``cv`` >= 2 folds, each with a distinct pair to hold out."""
    from hybrid_sim.pairs import pair_key

    if isinstance(cv, bool) or not isinstance(cv, (int, np.integer)) or cv < 2:
        raise ValueError(f"cv (folds for cross-fitting) must be a whole number of at least 2, got {cv!r}")
    distinct = len({pair_key(a, b) for a, b in pairs.itertuples(index=False)})
    if distinct < cv:
        raise ValueError(f"{cv}-fold cross-fitting needs at least {cv} distinct pairs; the data "
                         f"has {distinct}")


def _rows_needed(params: dict[str, Any] | None, stacker: str) -> int:
    """LightGBM splits a node only if both sides keep ``min_child_samples`` rows; the
    monotone map places ``n_knots`` knots at quantiles of the rows (two rows per knot)."""
    if stacker == "monotone":
        from hybrid_sim.stacker.monotone import MonotoneStacker

        return 2 * int((params or {}).get("n_knots", MonotoneStacker().n_knots))
    from hybrid_sim.stacker.stacking import DEFAULT_PARAMS

    return 2 * int({**DEFAULT_PARAMS, **(params or {})}["min_child_samples"])


def _too_little(n_rows: int, params: dict[str, Any] | None, stacker: str) -> ValueError:
    return ValueError(f"the stacker learnt nothing from {n_rows} rows: every pair would get the "
                      f"same score. With these settings it needs at least "
                      f"{_rows_needed(params, stacker)} rated rows whose ratings differ; train on "
                      "more data")


def _check_learnt(scorer: HybridScorer, n_rows: int) -> None:
    """Refuse a model whose stacker never split: it would give every pair the same score."""
    if scorer.stacker != "lightgbm":  # a monotone map rises strictly by construction
        return
    if all(tree["num_leaves"] <= 1 for tree in scorer.booster_.dump_model()["tree_info"]):
        raise _too_little(n_rows, scorer.params, scorer.stacker)


def _training_data(data: Any, output: Any, overwrite: bool, columns: Sequence[str], target: str,
                   sep: str | None, encoding: str, cv: int, params: dict[str, Any] | None,
                   stacker: str) -> tuple[Pairs, np.ndarray, dict[str, Any]]:
    """The rated pairs, after every check that can fail before training: the output target,
    the table, the folds and the number of rows the stacker needs."""
    from hybrid_sim.scorer.saving import check_model_target

    if output is not None:
        check_model_target(output, overwrite)
    pairs, y, info = read_labelled(data, columns, target, sep, encoding)
    _check_folds(pairs, cv)
    if len(y) < _rows_needed(params, stacker):
        raise _too_little(len(y), params, stacker)
    return pairs, y, info


def train(
    data: str | Path | pd.DataFrame,
    output: str | Path | None = None,
    *,
    columns: Sequence[str] = DEFAULT_COLUMNS,
    target: str = TARGET,
    groups: Sequence[str] | None = None,
    base_model: str = DEFAULT_BASE,
    method: str = "lora",
    lora_layers: int | None = None,
    epochs: int = 4,
    learning_rate: float | None = None,
    extra_bases: Sequence[str] = (),
    base_cosine: bool = True,
    n_seeds: int = 1,
    soup: bool = False,
    ensemble: Sequence[dict[str, Any]] = (),
    teachers: Sequence[dict[str, Any]] = (),
    distill_pairs: int = 10_000,
    select_groups: bool = True,
    cv: int = 5,
    seed: int = 0,
    params: dict[str, Any] | None = None,
    stacker: str = "monotone",
    show_progress: bool = True,
    sep: str | None = None,
    encoding: str = "utf-8",
    overwrite: bool = False,
) -> HybridScorer:
    """Train a scorer on rated pairs; save it to ``output`` (new, empty, or with ``overwrite``
    a model folder; checked before any work, as is data too small for the stacker). Embedding
    settings: :class:`~hybrid_sim.features.embedding.EmbeddingCosine`'s; ``stacker``:
    "monotone" (ranking kept, identical texts >= 90) or "lightgbm"; ``params`` its settings.

    >>> pairs = pd.DataFrame({"sentence_1": ["I feel sad", "I sleep well"] * 3,
    ...                       "sentence_2": ["I feel down", "I drink"] * 3,
    ...                       "human_similarity": [80, 5] * 3})
    >>> model = train(pairs, groups=["bow", "fuzzy"], cv=2, stacker="lightgbm",
    ...               params={"min_child_samples": 1, "n_estimators": 20})
    >>> model.predict(pairs.iloc[:, :2]).shape
    (6,)
    """
    from hybrid_sim.features import ALL_GROUPS, make_features

    pairs, y, info = _training_data(data, output, overwrite, columns, target, sep, encoding, cv,
                                    params, stacker)
    embedding = dict(base_model=base_model, method=method, lora_layers=lora_layers, epochs=epochs,
                     learning_rate=learning_rate, extra_bases=tuple(extra_bases),
                     base_cosine=base_cosine, n_seeds=n_seeds, soup=soup, ensemble=tuple(ensemble),
                     teachers=tuple(teachers), distill_pairs=distill_pairs, cv=cv, seed=seed,
                     show_progress=show_progress)
    chosen = list(groups) if groups is not None else list(ALL_GROUPS)
    features = make_features(chosen, **({"embedding": embedding} if "embedding" in chosen else {}))
    scorer = HybridScorer(features=features, cv=cv, seed=seed, select_groups=select_groups,
                          params=params, stacker=stacker)
    scorer.fit(pairs, y)
    _check_learnt(scorer, len(y))
    if output is not None:
        scorer.save(output, overwrite=overwrite, **info)
    return scorer


def evaluate(
    data: str | Path | pd.DataFrame,
    model: HybridScorer | str | Path | None = None,
    *,
    columns: Sequence[str] = DEFAULT_COLUMNS,
    target: str = TARGET,
    sep: str | None = None,
    encoding: str = "utf-8",
) -> dict[str, float]:
    """MAE, RMSE, Pearson, Spearman (and ROC AUC for a 0/1 target) of a model on data.

    Ratings must be in 0-100 (a 0/1 target is a same-construct label). Data the model was
    trained on (its sha256 is in the model's manifest) gives in-sample figures: an
    :class:`InSampleWarning` says so.
    """
    import warnings

    from hybrid_sim.stacker.stacking import regression_metrics

    frame = _read_frame(data, columns, target, sep, encoding)
    y = read_ratings(frame, target)
    scorer = _resolve(model)
    trained_on = getattr(scorer, "manifest_", {}).get("training", {}).get("data_sha256")
    if trained_on is not None and trained_on == _data_digest(frame, columns, target):
        warnings.warn("this is the model's own training data: the figures are in-sample, not what "
                      "it does on new pairs", InSampleWarning, stacklevel=2)
    pred = score(frame, model=scorer, columns=columns)
    return regression_metrics(y, np.asarray(pred))


class InSampleWarning(UserWarning):
    """``evaluate`` was given the data the model was trained on."""
