"""HybridScorer: feature groups -> LightGBM (L1) -> a similarity in [0, 100]."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.pipeline import FeatureUnion
from sklearn.utils.validation import check_is_fitted

from hybrid_sim.features import make_features
from hybrid_sim.models.crossfit import grouped_folds
from hybrid_sim.models.stacker import (
    apply_contrast_cap,
    cv_predict,
    make_regressor,
    regression_metrics,
)
from hybrid_sim.pairs import Pairs, check_target


class HybridScorer(RegressorMixin, BaseEstimator):
    """Predict human similarity (0-100) of questionnaire item pairs.

    ``fit`` trains the feature groups (fine-tuning the embedding) and a LightGBM L1
    regressor on out-of-fold cosines; ``predict`` is exactly symmetric in the two texts.
    ``features`` is a ``FeatureUnion`` from :func:`hybrid_sim.features.make_features`
    (``None`` means every group), so ``set_params(features__fuzzy="drop")`` works.
    ``contrast_cap`` caps the score of pairs flagged as role reversals or antonyms
    ("child bullies others" / "child is often bullied"); ``None`` turns the cap off.

    >>> from hybrid_sim.features import make_features
    >>> scorer = HybridScorer(features=make_features(["bow", "fuzzy"]))
    >>> pairs = [["I feel sad", "I feel down"], ["I sleep well", "I drink alcohol"]] * 3
    >>> preds = scorer.fit(pairs, [80, 5] * 3).predict(pairs)
    >>> bool(((preds >= 0) & (preds <= 100)).all())
    True
    """

    def __init__(
        self,
        features: FeatureUnion | None = None,
        params: dict[str, Any] | None = None,
        cv: int = 5,
        seed: int = 0,
        contrast_cap: float | None = 20.0,
    ) -> None:
        self.features = features
        self.params = params
        self.cv = cv
        self.seed = seed
        self.contrast_cap = contrast_cap

    @staticmethod
    def _frame(X: Any) -> Pairs:
        return X if isinstance(X, Pairs) else Pairs.of(X)

    def fit(self, X: Any, y: Any) -> HybridScorer:
        frame = self._frame(X)
        target = check_target(y, len(frame))
        union = clone(self.features) if self.features is not None else make_features()
        matrix = union.fit_transform(frame, target)
        self.features_ = union
        self.feature_names_ = [str(n) for n in union.get_feature_names_out()]
        regressor = make_regressor(self.params, self.feature_names_, seed=self.seed)
        regressor.fit(matrix, target)
        self.booster_ = regressor.booster_
        self.n_features_in_ = 2
        self.cv_metrics_ = self._cv_metrics(frame, matrix, target)
        return self

    def _cv_metrics(self, frame: Pairs, matrix: np.ndarray, y: np.ndarray) -> dict:
        """Grouped CV of the stacker on the training features (tuned cosines out-of-fold)."""
        try:
            folds = grouped_folds(frame.left, frame.right, n_splits=self.cv, seed=self.seed)
        except ValueError:
            return {}
        pred = cv_predict(matrix, y, folds, self.feature_names_, self.params,
                          contrast_cap=self.contrast_cap)
        return {"grouped_cv_folds": self.cv, **regression_metrics(y, pred)}

    def transform_features(self, X: Any) -> np.ndarray:
        """The feature matrix the stacker sees, one row per pair."""
        check_is_fitted(self, "booster_")
        return self.features_.transform(self._frame(X))

    def predict(self, X: Any) -> np.ndarray:
        matrix = self.transform_features(X)
        raw = np.clip(self.booster_.predict(matrix), 0.0, 100.0)
        return apply_contrast_cap(raw, matrix, self.feature_names_, self.contrast_cap)[0]

    def explain(self, X: Any) -> pd.DataFrame:
        """Per-feature and per-group contributions (LightGBM ``pred_contrib``).

        Columns: one per feature, one ``group:<name>`` per feature group, ``bias`` (the
        model's baseline), ``capped`` (the contrast cap lowered this score) and ``score``.
        Contributions add up to the score before it is clipped to [0, 100] and capped.
        """
        matrix = self.transform_features(X)
        contrib = self.booster_.predict(matrix, pred_contrib=True)
        out = pd.DataFrame(contrib[:, :-1], columns=self.feature_names_)
        for group in dict.fromkeys(n.split("__")[0] for n in self.feature_names_):
            members = [n for n in self.feature_names_ if n.startswith(group + "__")]
            out[f"group:{group}"] = out[members].sum(axis=1)
        out["bias"] = contrib[:, -1]
        score, capped = apply_contrast_cap(
            np.clip(contrib.sum(axis=1), 0.0, 100.0), matrix, self.feature_names_,
            self.contrast_cap,
        )
        out["capped"] = capped
        out["score"] = score
        return out

    def feature_importance(self) -> pd.DataFrame:
        """Total gain and split count per feature."""
        check_is_fitted(self, "booster_")
        return pd.DataFrame({
            "feature": self.feature_names_,
            "gain": self.booster_.feature_importance("gain"),
            "splits": self.booster_.feature_importance("split"),
        }).sort_values("gain", ascending=False, ignore_index=True)

    def save(self, folder: Any, **info: Any) -> Any:
        """Write the model folder (see :mod:`hybrid_sim.models.persistence`)."""
        from hybrid_sim.models.persistence import save_scorer

        return save_scorer(self, folder, **info)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        return tags
