"""Feature extractors: pairs of texts in, one 2-D float array per group out.

Each group is registered under a short name so that a feature union can be built from
names and a group dropped with ``set_params(features__fuzzy="drop")``.

>>> union = make_features(["bow", "fuzzy"])
>>> [name for name, _ in union.transformer_list]
['bow', 'fuzzy']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sklearn.pipeline import FeatureUnion

from hybrid_sim.features.base import PairFeatures
from hybrid_sim.features.bow import BagOfWordsFeatures
from hybrid_sim.features.fuzzy import FuzzyFeatures
from hybrid_sim.features.negation import NegationFeatures

CLASSICAL_GROUPS: tuple[str, ...] = ("bow", "fuzzy", "negation")
ALL_GROUPS: tuple[str, ...] = (*CLASSICAL_GROUPS, "embedding")


def feature_class(group: str) -> type[PairFeatures]:
    """The extractor class registered under ``group``."""
    if group == "embedding":
        # imported on demand: it pulls in torch, which the classical groups never need
        from hybrid_sim.features.embedding import EmbeddingCosine

        return EmbeddingCosine
    registry: dict[str, type[PairFeatures]] = {
        "bow": BagOfWordsFeatures,
        "fuzzy": FuzzyFeatures,
        "negation": NegationFeatures,
    }
    try:
        return registry[group]
    except KeyError:
        raise ValueError(f"unknown feature group {group!r}; known: {list(ALL_GROUPS)}") from None


def make_features(groups: Sequence[str] = ALL_GROUPS, **params: Any) -> FeatureUnion:
    """A ``FeatureUnion`` of the named groups; ``params`` go to the groups, by group name.

    >>> make_features(["fuzzy"], fuzzy={"workers": 2}).transformer_list[0][1].workers
    2
    """
    unknown = set(params) - set(groups)
    if unknown:
        raise ValueError(f"parameters given for groups not in the union: {sorted(unknown)}")
    return FeatureUnion(
        [(g, feature_class(g)(**params.get(g, {}))) for g in groups],
        verbose_feature_names_out=False,
    )


def __getattr__(name: str) -> Any:
    if name == "EmbeddingCosine":
        return feature_class("embedding")
    raise AttributeError(name)


__all__ = [
    "ALL_GROUPS",
    "CLASSICAL_GROUPS",
    "BagOfWordsFeatures",
    "EmbeddingCosine",
    "FuzzyFeatures",
    "NegationFeatures",
    "PairFeatures",
    "feature_class",
    "make_features",
]
