"""Fuzzy string match with rapidfuzz, computed in batch with ``process.cpdist``."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from rapidfuzz import fuzz, process, utils

from hybrid_sim.features.base import PairFeatures

# scorers whose value can depend on argument order; they are evaluated both ways
_SCORERS = {
    "ratio": (fuzz.ratio, False),
    "partial_ratio": (fuzz.partial_ratio, True),
    "token_sort_ratio": (fuzz.token_sort_ratio, False),
    "token_set_ratio": (fuzz.token_set_ratio, False),
    "wratio": (fuzz.WRatio, True),
}


class FuzzyFeatures(PairFeatures):
    """rapidfuzz ratio, partial_ratio, token_sort_ratio, token_set_ratio and WRatio, in 0-1.

    ``workers`` is rapidfuzz's thread count (-1: all cores); results do not depend on it.

    >>> float(FuzzyFeatures().fit([["a", "b"]]).transform([["I feel sad", "I feel sad"]]).min())
    1.0
    """

    group: ClassVar[str] = "fuzzy"
    feature_names: ClassVar[tuple[str, ...]] = tuple(_SCORERS)

    def __init__(self, workers: int = -1) -> None:
        self.workers = workers

    def _features(self, left: list[str], right: list[str]) -> np.ndarray:
        clean = {t: utils.default_process(t) for t in dict.fromkeys(left + right)}
        a = [clean[t] for t in left]
        b = [clean[t] for t in right]
        columns = []
        for scorer, asymmetric in _SCORERS.values():
            score = process.cpdist(a, b, scorer=scorer, workers=self.workers, dtype=np.float32)
            if asymmetric:
                reverse = process.cpdist(
                    b, a, scorer=scorer, workers=self.workers, dtype=np.float32
                )
                score = np.maximum(score, reverse)
            columns.append(score.astype(float) / 100.0)
        return np.column_stack(columns)
