"""The contract every feature extractor follows.

An extractor is a scikit-learn transformer over a batch of pairs. It sees each distinct
sentence once per batch, and every feature it returns is symmetric in the two texts by
construction, so that score(a, b) == score(b, a) holds exactly downstream.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from typing import Any, ClassVar

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from hybrid_sim.pairs import to_pairs


class PairFeatures(TransformerMixin, BaseEstimator):
    """Base class: subclasses set ``group`` and ``feature_names`` and implement ``_features``.

    Learned state (if any) is exported with ``get_state`` as JSON-compatible data, so a
    saved model never contains code.
    """

    group: ClassVar[str] = ""
    feature_names: ClassVar[tuple[str, ...]] = ()

    def fit(self, X: Any, y: Any = None) -> PairFeatures:
        left, right = to_pairs(X)
        self._fit_texts(left, right)
        self.n_features_in_ = 2
        self.fitted_ = True
        return self

    def _fit_texts(self, left: list[str], right: list[str]) -> None:
        """Learn state from the training texts; most extractors learn nothing."""

    def transform(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "fitted_")
        left, right = to_pairs(X)
        if not left:
            return np.zeros((0, len(self.feature_names)))
        out = np.asarray(self._features(left, right), dtype=float)
        return out.reshape(len(left), len(self.feature_names))

    def _features(self, left: list[str], right: list[str]) -> np.ndarray:
        raise NotImplementedError

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.asarray([f"{self.group}__{name}" for name in self.feature_names], dtype=object)

    def get_state(self) -> dict[str, Any]:
        """JSON-compatible learned state (empty for extractors that learn nothing)."""
        check_is_fitted(self, "fitted_")
        return {}

    def set_state(self, state: dict[str, Any]) -> PairFeatures:
        """Restore what ``get_state`` returned; the inverse of fitting."""
        self.n_features_in_ = 2
        self.fitted_ = True
        return self

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        return tags


def sym_min_max_diff(a: np.ndarray, b: np.ndarray) -> list[np.ndarray]:
    """min, max and |a - b|: the symmetric summary of a per-sentence quantity."""
    return [np.minimum(a, b), np.maximum(a, b), np.abs(a - b)]


def pair_index(left: list[str], right: list[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The distinct texts of a batch, and per pair the row of each side among them.

    Per-sentence work then runs once per distinct text, and pairwise work becomes array
    indexing instead of a Python loop over pairs.

    >>> pair_index(["a", "b"], ["b", "c"])
    (['a', 'b', 'c'], array([0, 1]), array([1, 2]))
    """
    distinct = list(dict.fromkeys(left + right))
    index = {t: i for i, t in enumerate(distinct)}
    li = np.fromiter((index[t] for t in left), dtype=np.int64, count=len(left))
    ri = np.fromiter((index[t] for t in right), dtype=np.int64, count=len(right))
    return distinct, li, ri


def indicator_matrix(
    sets: Sequence[Iterable[Hashable]], vocabulary: dict[Hashable, int] | None = None
) -> sparse.csr_matrix:
    """0/1 CSR matrix, a row per set, a column per element of ``vocabulary``.

    Without a vocabulary one is grown from the sets (and extended in place when given
    as an empty dict), so two matrices built with the same dict share columns.

    >>> indicator_matrix([{"x"}, {"x", "y"}, set()]).toarray().tolist()
    [[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]]
    """
    vocab: dict[Hashable, int] = {} if vocabulary is None else vocabulary
    indices: list[int] = []
    indptr = [0]
    for items in sets:
        indices.extend(vocab.setdefault(item, len(vocab)) for item in items)
        indptr.append(len(indices))
    data = np.ones(len(indices))
    return sparse.csr_matrix((data, indices, indptr), shape=(len(indptr) - 1, max(len(vocab), 1)))


def rowwise_dot(a: sparse.csr_matrix, b: sparse.csr_matrix) -> np.ndarray:
    """Dot product of row i of ``a`` with row i of ``b``, for every i."""
    return np.asarray(a.multiply(b).sum(axis=1)).ravel()
