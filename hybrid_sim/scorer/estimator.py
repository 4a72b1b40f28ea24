"""HybridScorer: feature groups -> LightGBM (L1) -> a similarity in [0, 100]."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.pipeline import FeatureUnion
from sklearn.utils.validation import check_is_fitted

from hybrid_sim.features import make_features
from hybrid_sim.model_selection import grouped_folds
from hybrid_sim.pairs import Pairs, check_target
from hybrid_sim.scorer.multilingual import MultilingualPath, english_pairs
from hybrid_sim.scorer.saving import save_scorer
from hybrid_sim.stacker.stacking import (
    ROLE_REVERSAL_FLAGS,
    apply_role_reversal_cap,
    cv_predict,
    cv_predict_selected,
    feature_groups,
    group_columns,
    make_stacker,
    regression_metrics,
    select_groups,
)


class HybridScorer(RegressorMixin, BaseEstimator):
    """Predict human similarity (0-100) of questionnaire item pairs.

    ``fit`` trains the feature groups (fine-tuning the embedding) and a LightGBM L1
    regressor on out-of-fold cosines; ``predict`` is exactly symmetric in the two texts.
    ``features`` is a ``FeatureUnion`` from :func:`hybrid_sim.features.make_features`
    (``None`` means every group), so ``set_params(features__fuzzy="drop")`` works.
    ``role_reversal_cap`` caps the score of pairs flagged as role reversals ("child bullies
    others" / "child is often bullied"); ``None`` turns the cap off. ``multilingual`` names
    the encoder of the multilingual path (:mod:`hybrid_sim.scorer.multilingual`), which
    scores every pair with a non-English item; ``None``: every pair takes the English path.

    ``stacker="monotone"`` stacks with an L1 linear signal and a strictly increasing map
    (:mod:`hybrid_sim.stacker.monotone`): scores keep the signal's ranking, with no
    plateau, and identical texts score at least 90; ``"lightgbm"`` (L1 trees) gives a step
    function. ``params`` holds the chosen stacker's settings.

    With ``select_groups=True`` the stacker keeps only the feature groups that lower its
    grouped-CV MAE (greedy forward selection, ``selection_`` records each step); groups
    it does not use are not computed at prediction time, except the negation group when
    the contrast cap reads its flags. ``cv_metrics_`` then comes from nested CV (the
    selection rerun inside each fold), so it does not flatter the selection.

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
        role_reversal_cap: float | None = 20.0,
        select_groups: bool = False,
        stacker: str = "lightgbm",
        multilingual: str | None = None,
    ) -> None:
        self.features = features
        self.params = params
        self.cv = cv
        self.seed = seed
        self.role_reversal_cap = role_reversal_cap
        self.select_groups = select_groups
        self.stacker = stacker
        self.multilingual = multilingual

    @staticmethod
    def _frame(X: Any) -> Pairs:
        return X if isinstance(X, Pairs) else Pairs.of(X)

    def fit(self, X: Any, y: Any) -> HybridScorer:
        frame = self._frame(X)
        target = check_target(y, len(frame))
        union = clone(self.features) if self.features is not None else make_features()
        matrix = union.fit_transform(frame, target)
        return self.fit_stacker(frame, target, matrix, union)

    def fit_stacker(self, X: Any, y: Any, matrix: np.ndarray, union: FeatureUnion) -> HybridScorer:
        """Select groups and fit the stacker on a feature matrix already computed by ``union``
        (fitted), whose tuned cosines are out-of-fold: what ``fit`` does after the features.

        Lets a stacker be refitted on stored out-of-fold cosines without fine-tuning again
        (``scripts/restack.py``).
        """
        frame = self._frame(X)
        target = check_target(y, len(frame))
        names = [str(n) for n in union.get_feature_names_out()]
        if matrix.shape != (len(frame), len(names)):
            raise ValueError(f"matrix has shape {matrix.shape}, expected {(len(frame), len(names))}")
        # feature rows of identical texts, for a stacker that pins them high
        sample = list(dict.fromkeys(frame.left))[:20]
        self._identity = union.transform(Pairs(sample, sample)) if self.stacker == "monotone" else None
        folds = self._folds(frame)
        chosen = feature_groups(names)
        self.selection_: list[dict[str, Any]] = []
        if self.select_groups and folds is not None:
            chosen, self.selection_ = select_groups(matrix, target, folds, names, self.params,
                                                    kind=self.stacker, identity=self._identity)
        self.stacker_features_ = [names[i] for i in group_columns(names, chosen)]
        # the cap reads the negation flags even when the stacker does not use them
        needed = set(chosen) | set(feature_groups(
            [f for f in ROLE_REVERSAL_FLAGS if self.role_reversal_cap is not None and f in names]))
        kept = group_columns(names, needed)
        self.features_ = FeatureUnion(
            [(g, t) for g, t in union.transformer_list if g in needed],
            verbose_feature_names_out=False,
        )
        self.feature_names_ = [names[i] for i in kept]
        columns = [names.index(n) for n in self.stacker_features_]
        model = make_stacker(self.stacker, self.params, self.stacker_features_, self.seed,
                             None if self._identity is None else self._identity[:, columns])
        model.fit(self._stacker_input(matrix[:, kept]), target)
        self.stacker_ = model.booster_ if self.stacker == "lightgbm" else model
        if self.stacker == "lightgbm":
            self.booster_ = self.stacker_
        self.n_features_in_ = 2
        self.cv_metrics_ = self._cv_metrics(frame, matrix, names, target, folds)
        del self._identity
        self.multilingual_ = (None if self.multilingual is None
                              else MultilingualPath(self.multilingual).fit(frame, target))
        return self

    def _folds(self, frame: Pairs) -> list[tuple[np.ndarray, np.ndarray]] | None:
        try:
            return grouped_folds(frame.left, frame.right, n_splits=self.cv, seed=self.seed)
        except ValueError:  # fewer distinct pairs than folds
            return None

    def _stacker_input(self, matrix: np.ndarray) -> np.ndarray:
        return matrix[:, [self.feature_names_.index(n) for n in self.stacker_features_]]

    def _cv_metrics(self, frame: Pairs, matrix: np.ndarray, names: list[str], y: np.ndarray,
                    folds: list[tuple[np.ndarray, np.ndarray]] | None) -> dict:
        """Grouped CV of the stacker (and of the group selection, when on) on the training
        features; the tuned cosines in ``matrix`` are out-of-fold."""
        if folds is None:
            return {}
        if self.select_groups:
            pred = cv_predict_selected(matrix, y, folds, names, frame.left, frame.right,
                                       self.params, self.role_reversal_cap, self.seed, kind=self.stacker,
                                       identity=self._identity)[0]
        else:
            pred = cv_predict(matrix, y, folds, names, self.params, role_reversal_cap=self.role_reversal_cap,
                              kind=self.stacker, identity=self._identity)
        return {"grouped_cv_folds": self.cv, "nested_group_selection": self.select_groups,
                **regression_metrics(y, pred)}

    def _groups_in_use(self) -> list[str]:
        """Groups the stacker reads, plus the negation group while the contrast cap is on."""
        used = set(feature_groups(self.stacker_features_))
        if self.role_reversal_cap is not None:
            used |= set(feature_groups([f for f in ROLE_REVERSAL_FLAGS if f in self.feature_names_]))
        return [g for g, _ in self.features_.transformer_list if g in used]

    def transform_features(self, X: Any) -> np.ndarray:
        """The feature matrix the stacker sees, one row per pair.

        Columns of a group that nothing reads are NaN: with ``role_reversal_cap=None`` a model
        that keeps the negation group only for the cap skips spaCy's parse altogether.
        """
        check_is_fitted(self, "stacker_")
        frame = self._frame(X)
        groups = self._groups_in_use()
        extractors = dict(self.features_.transformer_list)
        # one thread per group: the encoder (torch) and spaCy's parse overlap on the CPU
        # (benchmarks/throughput.py); the parse cache makes groups that share it parse once
        blocks = Parallel(n_jobs=len(groups), backend="threading")(
            delayed(extractors[g].transform)(frame) for g in groups)
        matrix = np.full((len(frame), len(self.feature_names_)), np.nan)
        for group, block in zip(groups, blocks):
            matrix[:, group_columns(self.feature_names_, [group])] = block
        return matrix

    def _routes(self, X: Any) -> tuple[Pairs, np.ndarray]:
        """The pairs, and which of them take the English path."""
        frame = self._frame(X)
        if getattr(self, "multilingual_", None) is None:
            return frame, np.ones(len(frame), dtype=bool)
        return frame, english_pairs(frame)

    def predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "stacker_")
        frame, english = self._routes(X)
        if english.all():
            return self.predict_features(self.transform_features(frame))
        out = np.empty(len(frame))
        if english.any():
            out[english] = self.predict_features(self.transform_features(_subset(frame, english)))
        out[~english] = self.multilingual_.predict(_subset(frame, ~english))  # type: ignore[union-attr]
        return out

    def predict_features(self, matrix: np.ndarray) -> np.ndarray:
        """Scores from a matrix that ``transform_features`` returned (stacker, clip, cap)."""
        check_is_fitted(self, "stacker_")
        raw = np.clip(self.stacker_.predict(self._stacker_input(matrix)), 0.0, 100.0)
        return apply_role_reversal_cap(raw, matrix, self.feature_names_, self.role_reversal_cap)[0]

    def explain(self, X: Any) -> pd.DataFrame:
        """Per-feature and per-group contributions (LightGBM ``pred_contrib``).

        Columns: one per feature, one ``group:<name>`` per feature group, ``bias`` (the
        model's baseline), ``capped`` (the contrast cap lowered this score) and ``score``.
        Contributions add up to the score before it is clipped to [0, 100] and capped; with
        the monotone stacker they add up to its linear signal, which its map turns into the
        score. Pairs on the multilingual path have no contributions (NaN) and their score.
        """
        frame, english = self._routes(X)
        if not english.all():
            out = self.explain(_subset(frame, english)).set_axis(np.flatnonzero(english))
            out = out.reindex(range(len(frame)))
            out.loc[~english, "score"] = self.multilingual_.predict(  # type: ignore[union-attr]
                _subset(frame, ~english))
            out["capped"] = out["capped"].fillna(False).astype(bool)
            return out
        matrix = self.transform_features(frame)
        stacked = self._stacker_input(matrix)
        contrib = self._contributions(stacked)
        out = pd.DataFrame(contrib[:, :-1], columns=self.stacker_features_)
        for group in feature_groups(self.stacker_features_):
            members = [self.stacker_features_[i] for i in group_columns(self.stacker_features_, [group])]
            out[f"group:{group}"] = out[members].sum(axis=1)
        out["bias"] = contrib[:, -1]
        uncapped = self.stacker_.predict(stacked) if self.stacker == "monotone" else contrib.sum(axis=1)
        score, capped = apply_role_reversal_cap(np.clip(uncapped, 0.0, 100.0), matrix, self.feature_names_,
                                           self.role_reversal_cap)
        out["capped"] = capped
        out["score"] = score
        return out

    def _contributions(self, stacked: np.ndarray) -> np.ndarray:
        """Per feature and a last bias column. LightGBM: additive on the score; the monotone
        stacker: additive on its linear signal, which the map then turns into the score."""
        if self.stacker == "monotone":
            return np.column_stack([stacked * self.stacker_.coef_,
                                    np.full(len(stacked), self.stacker_.intercept_)])
        return self.stacker_.predict(stacked, pred_contrib=True)

    def feature_importance(self) -> pd.DataFrame:
        """Total gain and split count per feature."""
        check_is_fitted(self, "stacker_")
        if self.stacker == "monotone":
            return pd.DataFrame({"feature": self.stacker_features_, "weight": self.stacker_.coef_})
        return pd.DataFrame({
            "feature": self.stacker_features_,
            "gain": self.booster_.feature_importance("gain"),
            "splits": self.booster_.feature_importance("split"),
        }).sort_values("gain", ascending=False, ignore_index=True)

    def save(self, folder: Any, overwrite: bool = False, **info: Any) -> Any:
        """Write the model folder (see :mod:`hybrid_sim.scorer.saving`); ``folder`` must
        be new, empty or (with ``overwrite``) a model folder."""

        return save_scorer(self, folder, overwrite=overwrite, **info)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        return tags


def _subset(pairs: Pairs, mask: np.ndarray) -> Pairs:
    rows = np.flatnonzero(mask)
    return Pairs([pairs.left[i] for i in rows], [pairs.right[i] for i in rows])
