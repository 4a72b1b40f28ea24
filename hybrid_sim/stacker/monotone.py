"""A stacker whose score keeps its ranking: an L1 linear signal, then a smooth monotone map.

LightGBM's trees give a step function: 54-62 distinct scores over thousands of pairs,
identical texts at 56.85, ties that ``match`` broke alphabetically. Here the signal is a
linear combination of cosine features (fitted for MAE, ``QuantileRegressor``), and the
score is a piecewise-linear map of it fitted for MAE by linear programming, with every
segment rising by at least ``min_step`` points: strictly increasing over the whole range
the features can take, so the score ranks pairs exactly as the signal does, with no
plateau. The map pins identical texts (every cosine 1) at ``identity_floor`` or above.

Everything learned is a handful of floats, saved as JSON.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted


def fit_monotone_map(signal: np.ndarray, y: np.ndarray, knots: np.ndarray, *, min_step: float,
                     floor_at: float | None = None, floor: float = 90.0) -> np.ndarray:
    """Values at ``knots`` of the strictly increasing piecewise-linear map of least L1 error.

    >>> s = np.linspace(0, 1, 50); v = fit_monotone_map(s, 100 * s, np.array([0, .5, 1.]), min_step=1)
    >>> np.round(v, 3).tolist()
    [0.0, 50.0, 100.0]
    """
    from scipy.optimize import linprog
    from scipy.sparse import coo_matrix, hstack, identity, vstack

    n, k = len(signal), len(knots)
    s = np.clip(signal, knots[0], knots[-1])
    j = np.clip(np.searchsorted(knots, s, side="right") - 1, 0, k - 2)
    lam = (s - knots[j]) / (knots[j + 1] - knots[j])
    interp = coo_matrix((np.r_[1 - lam, lam], (np.r_[np.arange(n), np.arange(n)], np.r_[j, j + 1])),
                        shape=(n, k))
    # variables: knot values v (k), positive and negative errors (n each)
    eye = identity(n, format="coo")
    a_eq = hstack([interp, -eye, eye]).tocsr()
    cost = np.r_[np.zeros(k), np.ones(n), np.ones(n)]
    # v[i] - v[i+1] <= -min_step: every segment rises
    seg = np.arange(k - 1)
    steps = coo_matrix((np.r_[np.ones(k - 1), -np.ones(k - 1)], (np.r_[seg, seg], np.r_[seg, seg + 1])),
                       shape=(k - 1, k + 2 * n))
    a_ub, b_ub = [steps], [np.full(k - 1, -min_step)]
    if floor_at is not None:  # identical texts: f(floor_at) >= floor
        row = np.zeros(k + 2 * n)
        i = int(np.clip(np.searchsorted(knots, floor_at, side="right") - 1, 0, k - 2))
        t = (floor_at - knots[i]) / (knots[i + 1] - knots[i])
        row[i], row[i + 1] = -(1 - t), -t
        a_ub.append(coo_matrix(row))
        b_ub.append(np.array([-floor]))
    bounds = [(0.0, 100.0)] * k + [(0.0, None)] * (2 * n)
    result = linprog(cost, A_ub=vstack(a_ub).tocsr(), b_ub=np.concatenate(b_ub), A_eq=a_eq, b_eq=y,
                     bounds=bounds, method="highs")
    if result.status != 0:
        raise ValueError(f"the monotone map could not be fitted: {result.message}")
    return np.asarray(result.x[:k])


class MonotoneStacker(RegressorMixin, BaseEstimator):
    """L1 linear signal over the features, then a strictly increasing map to 0-100.

    ``bounds`` is the range every feature can take (cosines: -1 to 1); the map's end knots
    sit at the signal's extremes over that box, so no input ever falls on a flat part.
    ``identity`` holds feature rows of identical texts (an item paired with itself); the
    lowest of their signals is scored at ``identity_floor`` or more, and so is every pair
    whose signal is at least as high.

    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(-1, 1, (200, 2)); y = np.clip(50 + 40 * X[:, 0] + rng.normal(0, 5, 200), 0, 100)
    >>> model = MonotoneStacker(identity=((1.0, 1.0),)).fit(X, y)
    >>> bool(model.predict(np.array([[1.0, 1.0]]))[0] >= 90)
    True
    """

    def __init__(self, n_knots: int = 8, min_step: float = 0.05, bounds: tuple[float, float] = (-1.0, 1.0),
                 identity: tuple[tuple[float, ...], ...] | None = None,
                 identity_floor: float = 90.0) -> None:
        self.n_knots = n_knots
        self.min_step = min_step
        self.bounds = bounds
        self.identity = identity
        self.identity_floor = identity_floor

    def _signal(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(X, dtype=float) @ self.coef_ + self.intercept_

    def fit(self, X: Any, y: Any) -> MonotoneStacker:
        from sklearn.linear_model import QuantileRegressor

        X = np.asarray(X, dtype=float)
        y = np.asarray(y, dtype=float)
        linear = QuantileRegressor(quantile=0.5, alpha=0.0, solver="highs").fit(X, y)
        self.coef_ = np.asarray(linear.coef_, dtype=float)
        self.intercept_ = float(linear.intercept_)
        if not np.any(self.coef_):  # nothing to rank by: fall back to the features' sum
            self.coef_ = np.ones(X.shape[1])
        low, high = self.bounds
        ends = self.intercept_ + np.sum(np.minimum(self.coef_ * low, self.coef_ * high)), \
            self.intercept_ + np.sum(np.maximum(self.coef_ * low, self.coef_ * high))
        signal = self._signal(X)
        inner = np.quantile(signal, np.linspace(0, 1, self.n_knots))
        knots = np.unique(np.r_[ends[0], inner, ends[1]])
        floor_at = (None if not self.identity else
                    float(np.clip(self._signal(np.asarray(self.identity, dtype=float)).min(), *ends)))
        self.knots_ = knots
        self.values_ = fit_monotone_map(signal, y, knots, min_step=self.min_step, floor_at=floor_at,
                                        floor=self.identity_floor)
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "values_")
        signal = self._signal(X)
        knots, values = self.knots_, self.values_
        # beyond the end knots (features outside ``bounds``) the end segments continue,
        # so the map still rises until it meets 0 or 100
        low = values[0] + (signal - knots[0]) * (values[1] - values[0]) / (knots[1] - knots[0])
        high = values[-1] + (signal - knots[-1]) * (values[-1] - values[-2]) / (knots[-1] - knots[-2])
        inside = np.interp(signal, knots, values)
        out = np.where(signal < knots[0], low, np.where(signal > knots[-1], high, inside))
        return np.clip(out, 0.0, 100.0)

    def get_state(self) -> dict[str, Any]:
        """Learned state as JSON-compatible lists."""
        check_is_fitted(self, "values_")
        return {"coef": self.coef_.tolist(), "intercept": self.intercept_,
                "knots": self.knots_.tolist(), "values": self.values_.tolist()}

    def set_state(self, state: dict[str, Any]) -> MonotoneStacker:
        self.coef_ = np.asarray(state["coef"], dtype=float)
        self.intercept_ = float(state["intercept"])
        self.knots_ = np.asarray(state["knots"], dtype=float)
        self.values_ = np.asarray(state["values"], dtype=float)
        if (self.knots_.ndim != 1 or self.knots_.shape != self.values_.shape or len(self.knots_) < 2
                or not np.all(np.diff(self.knots_) > 0) or not np.all(np.diff(self.values_) > 0)
                or not np.all(np.isfinite(self.coef_))):
            raise ValueError("the monotone map's knots and values must rise strictly and be finite")
        self.n_features_in_ = len(self.coef_)
        return self
