"""The multilingual path: every pair with a non-English item.

English pairs keep the hybrid (tuned MiniLM, classical features, spaCy) unchanged. A pair
with an item in another language (or two) is scored by the zero-shot cosine of
multilingual-e5-small (:mod:`hybrid_sim.encoders.e5`), put on the same 0-100 scale by a
strictly increasing map fitted for L1 error on the English ratings (identical texts >= 90).
The encoder is prepared and loaded only when such a pair first comes.

>>> path = MultilingualPath()
>>> path.get_params()
{'base_model': 'multilingual-e5-small'}
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from hybrid_sim.encoders.e5 import E5_NAME
from hybrid_sim.encoders.encoder import Encoder
from hybrid_sim.features.language import is_english
from hybrid_sim.pairs import Pairs, check_target
from hybrid_sim.stacker.monotone import MonotoneStacker

_encoders: dict[str, Encoder] = {}


def english_pairs(pairs: Pairs) -> np.ndarray:
    """Per pair: are both items English? (see :mod:`hybrid_sim.features.language`)"""
    distinct = list(dict.fromkeys([*pairs.left, *pairs.right]))
    english = dict(zip(distinct, is_english(distinct)))
    return np.array([english[a] and english[b] for a, b in zip(pairs.left, pairs.right)], dtype=bool)


class MultilingualPath(RegressorMixin, BaseEstimator):
    """Zero-shot cosine of a multilingual encoder, mapped to 0-100 by a monotone L1 fit."""

    def __init__(self, base_model: str = E5_NAME) -> None:
        self.base_model = base_model

    def _encoder(self) -> Encoder:
        if self.base_model not in _encoders:
            _encoders[self.base_model] = Encoder(self.base_model, method="none")
        return _encoders[self.base_model]

    def _cosine(self, pairs: Pairs) -> np.ndarray:
        return self._encoder().cosine(pairs.left, pairs.right)[:, None]

    def fit(self, X: Any, y: Any) -> MultilingualPath:
        pairs = X if isinstance(X, Pairs) else Pairs.of(X)
        target = check_target(y, len(pairs))
        self.map_ = MonotoneStacker(identity=((1.0,),)).fit(self._cosine(pairs), target)
        self.base_sha256_ = self._encoder().fingerprint
        return self

    def predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "map_")
        pairs = X if isinstance(X, Pairs) else Pairs.of(X)
        if not len(pairs):
            return np.zeros(0)
        if self._encoder().fingerprint != self.base_sha256_:
            raise ValueError(f"the multilingual map was fitted on {self.base_model!r} with weights "
                             f"sha256 {self.base_sha256_[:12]}..., but the installed one has "
                             f"{self._encoder().fingerprint[:12]}...")
        return np.clip(self.map_.predict(self._cosine(pairs)), 0.0, 100.0)

    def get_state(self) -> dict[str, Any]:
        check_is_fitted(self, "map_")
        return {"base_model": self.base_model, "base_sha256": self.base_sha256_,
                "map": self.map_.get_state()}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> MultilingualPath:
        if not isinstance(state, dict) or set(state) != {"base_model", "base_sha256", "map"}:
            raise ValueError("expected the keys base_model, base_sha256 and map")
        path = cls(str(state["base_model"]))
        path.map_ = MonotoneStacker().set_state(state["map"])
        if path.map_.n_features_in_ != 1:
            raise ValueError("the multilingual map reads one cosine")
        path.base_sha256_ = str(state["base_sha256"])
        return path
