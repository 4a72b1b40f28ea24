"""Bag-of-words overlap: set overlap of content-word lemmas, TF-IDF cosine, lengths."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

from hybrid_sim.features._nlp import analyse
from hybrid_sim.features.base import (
    PairFeatures,
    indicator_matrix,
    pair_index,
    rowwise_dot,
    sym_min_max_diff,
)


def set_overlaps(inter: np.ndarray, size_a: np.ndarray, size_b: np.ndarray) -> list[np.ndarray]:
    """Jaccard, Dice and overlap coefficient from intersection and set sizes (0 if a set is empty).

    >>> [float(x[0]) for x in set_overlaps(np.array([1.0]), np.array([2.0]), np.array([3.0]))]
    [0.25, 0.4, 0.5]
    """
    union = size_a + size_b - inter
    smaller = np.minimum(size_a, size_b)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = [inter / union, 2 * inter / (size_a + size_b), inter / smaller]
    return [np.where(smaller > 0, r, 0.0) for r in ratios]


class BagOfWordsFeatures(PairFeatures):
    """Jaccard, Dice and overlap coefficient of content lemmas; TF-IDF cosine; token counts.

    The TF-IDF vocabulary and weights are learned in ``fit`` from the distinct sentences.

    >>> bow = BagOfWordsFeatures().fit([["I feel sad", "I feel down"]])
    >>> float(bow.transform([["Felt hopeless", "Felt hopeless"]])[0, 0])
    1.0
    """

    group: ClassVar[str] = "bow"
    feature_names: ClassVar[tuple[str, ...]] = (
        "jaccard", "dice", "overlap", "tfidf_cosine",
        "tokens_min", "tokens_max", "tokens_absdiff",
    )

    def __init__(self, sublinear_tf: bool = True) -> None:
        self.sublinear_tf = sublinear_tf

    @staticmethod
    def _lemma_docs(texts: list[str]) -> list[str]:
        parsed = analyse(texts)
        return [" ".join(sorted(parsed[t].content_lemmas)) for t in texts]

    def _vectorizer(self) -> TfidfVectorizer:
        return TfidfVectorizer(
            sublinear_tf=self.sublinear_tf, token_pattern=r"\S+", lowercase=False
        )

    def _fit_texts(self, left: list[str], right: list[str]) -> None:
        distinct = list(dict.fromkeys(left + right))
        self.tfidf_ = self._vectorizer().fit(self._lemma_docs(distinct))

    def _features(self, left: list[str], right: list[str]) -> np.ndarray:
        distinct, li, ri = pair_index(left, right)
        parsed = analyse(distinct)
        vectors = self.tfidf_.transform(self._lemma_docs(distinct))
        # rows are L2-normalised, so the row-wise dot product is the cosine
        cosine = rowwise_dot(vectors[li], vectors[ri])
        lemmas = indicator_matrix([parsed[t].content_lemmas for t in distinct])
        sizes = np.asarray(lemmas.sum(axis=1)).ravel()
        overlaps = set_overlaps(rowwise_dot(lemmas[li], lemmas[ri]), sizes[li], sizes[ri])
        lengths = np.array([len(parsed[t].tokens) for t in distinct], dtype=float)
        return np.column_stack(
            [*overlaps, np.clip(cosine, 0.0, 1.0), *sym_min_max_diff(lengths[li], lengths[ri])]
        )

    def get_state(self) -> dict[str, Any]:
        super().get_state()
        vocab = self.tfidf_.vocabulary_
        return {
            "vocabulary": sorted(vocab, key=vocab.__getitem__),
            "idf": [float(v) for v in self.tfidf_.idf_],
        }

    def set_state(self, state: dict[str, Any]) -> BagOfWordsFeatures:
        vectorizer = self._vectorizer()
        vectorizer.vocabulary_ = {w: i for i, w in enumerate(state["vocabulary"])}
        vectorizer.idf_ = np.asarray(state["idf"], dtype=float)
        self.tfidf_ = vectorizer
        super().set_state(state)
        return self
