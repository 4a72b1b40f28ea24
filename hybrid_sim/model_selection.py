"""Cross-fitting: out-of-fold predictions for a stacker, from K models grouped by pair.

A stacker must never learn from a cosine that came from a model trained on the same
pair (in either order). ``grouped_folds`` splits by unordered pair; ``out_of_fold`` trains
one model per fold and predicts the held-out rows, recording which pairs each model saw
so that the guarantee can be checked.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.model_selection import GroupKFold

from hybrid_sim.io import data_home
from hybrid_sim.outputs import atomic_path
from hybrid_sim.pairs import pair_key

# progress of the slow step ("fold 2 of 5", "reusing a cached cross-fit"); the CLI shows it
log = logging.getLogger("hybrid_sim")


def pair_groups(left: Sequence[str], right: Sequence[str]) -> np.ndarray:
    """One integer group per unordered pair: (a, b) and (b, a) share a group."""
    keys = [pair_key(a, b) for a, b in zip(left, right)]
    _, groups = np.unique(np.asarray(keys, dtype=object), return_inverse=True)
    return groups


def grouped_folds(
    left: Sequence[str], right: Sequence[str], n_splits: int = 5, seed: int = 0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """K (train, test) index splits with every unordered pair on one side only.

    >>> folds = grouped_folds(["a", "b", "c", "a"], ["b", "c", "a", "b"], n_splits=2)
    >>> sorted(sorted(test.tolist()) for _, test in folds)  # (a, b) and (b, a) stay together
    [[0, 3], [1, 2]]
    """
    groups = pair_groups(left, right)
    n_groups = len(np.unique(groups))
    if n_groups < n_splits:
        raise ValueError(f"{n_splits} folds need at least {n_splits} distinct pairs, got {n_groups}")
    splitter = GroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(groups)), groups=groups))


@dataclass
class CrossFit:
    """Out-of-fold predictions and, per fold, the pairs its model was trained on;
    ``cached``: read from the disk cache instead of fine-tuned in this run."""

    oof: np.ndarray
    folds: list[tuple[np.ndarray, np.ndarray]]
    seen_pairs: list[frozenset[str]] = field(default_factory=list)
    cached: bool = False

    def check_disjoint(self, left: Sequence[str], right: Sequence[str]) -> None:
        """Raise if any row's prediction came from a model that saw that pair."""
        for k, (_, test) in enumerate(self.folds):
            leaked = {pair_key(left[i], right[i]) for i in test} & self.seen_pairs[k]
            if leaked:
                raise AssertionError(f"fold {k}: {len(leaked)} held-out pairs were seen in training")


def out_of_fold(
    fit_predict: Callable[[np.ndarray, np.ndarray], np.ndarray],
    left: Sequence[str],
    right: Sequence[str],
    folds: list[tuple[np.ndarray, np.ndarray]],
) -> CrossFit:
    """Run ``fit_predict(train_idx, test_idx)`` per fold and gather its held-out output."""
    oof = np.full(len(left), np.nan)
    seen: list[frozenset[str]] = []
    for k, (train, test) in enumerate(folds):
        log.info("cross-fitting: fold %d of %d (%d training rows)", k + 1, len(folds), len(train))
        oof[test] = fit_predict(train, test)
        seen.append(frozenset(pair_key(left[i], right[i]) for i in train))
    if np.isnan(oof).any():
        raise RuntimeError("some rows received no out-of-fold prediction")
    result = CrossFit(oof=oof, folds=folds, seen_pairs=seen)
    result.check_disjoint(left, right)
    return result


def cache_dir() -> Path:
    """Where cross-fitted predictions are kept ($HYBRID_SIM_HOME/crossfit)."""
    return data_home() / "crossfit"


def cache_key(config: dict[str, Any], left: Sequence[str], right: Sequence[str],
              y: np.ndarray) -> str:
    """A digest of everything an out-of-fold result depends on: settings and the data."""
    digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode())
    for text in (*left, "\x1e", *right):
        digest.update(text.encode() + b"\x1f")
    digest.update(np.asarray(y, dtype=np.float64).tobytes())
    return digest.hexdigest()


def cached_out_of_fold(
    config: dict[str, Any],
    fit_predict: Callable[[np.ndarray, np.ndarray], np.ndarray],
    left: Sequence[str],
    right: Sequence[str],
    y: np.ndarray,
    folds: list[tuple[np.ndarray, np.ndarray]],
) -> CrossFit:
    """``out_of_fold``, memoised on disk as float64 .npy plus a JSON note of its settings.

    Fine-tuning K models is the slowest step of training; training, benchmarks and
    ablation reports on the same data and settings share one result. The folds are
    recomputed, so the leak check still runs on a cached result.
    """
    folder = cache_dir()
    key = cache_key(config, left, right, y)
    path = folder / f"{key}.npy"
    if path.is_file():
        oof = np.load(path, allow_pickle=False)
        if oof.shape == (len(left),) and np.all(np.isfinite(oof)):
            seen = [frozenset(pair_key(left[i], right[i]) for i in train) for train, _ in folds]
            result = CrossFit(oof=oof, folds=folds, seen_pairs=seen, cached=True)
            result.check_disjoint(left, right)
            log.info("cross-fitting: reusing the cached result %s (same data and settings)", path.name)
            return result
    result = out_of_fold(fit_predict, left, right, folds)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, result.oof)
    (folder / f"{key}.json").write_text(json.dumps({**config, "rows": len(left)}, indent=2))
    return result
