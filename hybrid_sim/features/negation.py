"""Negation, antonym and role-reversal flags: the contrasts that embeddings miss.

Plain embedding models put "I have trouble sleeping" next to "I sleep very deeply" and
"Child bullies others" next to "Child is often bullied". These features flag such pairs
from the dependency parse and from two antonym lexicons shipped as data files.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any, ClassVar

import numpy as np
from scipy import sparse

from hybrid_sim.features._nlp import Analysis, analyse
from hybrid_sim.features.base import (
    PairFeatures,
    indicator_matrix,
    pair_index,
    rowwise_dot,
    sym_min_max_diff,
)

ANTONYM_FILES = ("wordnet_antonyms.tsv", "questionnaire_antonyms.tsv")


@lru_cache(maxsize=1)
def antonym_pairs() -> frozenset[frozenset[str]]:
    """Unordered antonym pairs from WordNet 3.0 and the curated questionnaire lexicon."""
    pairs: set[frozenset[str]] = set()
    folder = resources.files("hybrid_sim.features") / "data"
    for name in ANTONYM_FILES:
        for line in (folder / name).read_text(encoding="utf-8").splitlines():
            if line and not line.startswith("#"):
                a, b = line.split("\t")
                pairs.add(frozenset((a, b)))
    return frozenset(pairs)


@lru_cache(maxsize=1)
def _antonym_index() -> dict[str, frozenset[str]]:
    index: dict[str, set[str]] = {}
    for pair in antonym_pairs():
        a, b = tuple(pair)
        index.setdefault(a, set()).add(b)
        index.setdefault(b, set()).add(a)
    return {k: frozenset(v) for k, v in index.items()}


def antonyms_between(a: Analysis, b: Analysis) -> list[tuple[str, str]]:
    """Antonymous word pairs across two sentences, ignoring words that both contain.

    A word present on both sides ("good ... bad" vs "good ... bad") marks no contrast.
    """
    index = _antonym_index()
    only_a, only_b = a.all_lemmas - b.all_lemmas, b.all_lemmas - a.all_lemmas
    found = {
        tuple(sorted((x, y))) for x in only_a for y in index.get(x, ()) if y in only_b
    }
    return sorted(found)  # type: ignore[arg-type]


def role_reversal(a: Analysis, b: Analysis) -> bool:
    """True when one predicate has an argument as agent on one side and patient on the other.

    "Child bullies others" (child = agent of bully) vs "Child is often bullied" (child =
    patient of bully) is reversed; "Child bullies others" vs "Child often bullies others"
    is not.
    """
    def swapped(x: Analysis, y: Analysis) -> bool:
        return bool(x.agent_roles & y.patient_roles)

    return swapped(a, b) or swapped(b, a)


def voice_mismatch(a: Analysis, b: Analysis) -> bool:
    """True when a predicate is active (has a subject) on one side and passive on the other."""
    return bool(
        (a.active_predicates & b.passive_predicates - a.passive_predicates)
        or (b.active_predicates & a.passive_predicates - b.passive_predicates)
    )


class NegationFeatures(PairFeatures):
    """Negation mismatch, antonyms across the pair, and role reversal.

    >>> f = NegationFeatures().fit([["a", "b"]])
    >>> row = dict(zip(f.get_feature_names_out(), f.transform(
    ...     [["I have trouble sleeping", "I sleep very deeply"]])[0]))
    >>> float(row["negation__antonym_flag"])
    1.0
    """

    group: ClassVar[str] = "negation"
    feature_names: ClassVar[tuple[str, ...]] = (
        "negation_mismatch", "both_negated", "cues_min", "cues_max", "cues_absdiff",
        "antonym_flag", "antonym_count", "role_reversal", "voice_mismatch",
    )

    def _features(self, left: list[str], right: list[str]) -> np.ndarray:
        # Each function above is one pair's definition; here the same sets become sparse
        # 0/1 rows per distinct sentence, so a batch of a million pairs is a few row-wise
        # products instead of a Python loop (tests check both give the same flags).
        distinct, li, ri = pair_index(left, right)
        parsed = analyse(distinct)
        n = len(distinct)

        # only words of the lexicons can form an antonym pair, and A - B keeps exactly the
        # lexicon words of A - B: the rest would only make the matrices wide
        lexicon = frozenset(_antonym_index())
        lemma_vocab: dict[Any, int] = {}
        lemmas = indicator_matrix([parsed[t].all_lemmas & lexicon for t in distinct], lemma_vocab)
        antonyms = _antonym_matrix(lemma_vocab)
        la, lb = lemmas[li], lemmas[ri]
        shared = la.multiply(lb)
        only_a, only_b = (la - shared).tocsr(), (lb - shared).tocsr()
        antonym_count = rowwise_dot(only_a @ antonyms, only_b)

        roles = indicator_matrix([parsed[t].agent_roles for t in distinct]
                                 + [parsed[t].patient_roles for t in distinct])
        agent, patient = roles[:n], roles[n:]
        reversed_roles = (rowwise_dot(agent[li], patient[ri]) + rowwise_dot(agent[ri], patient[li])) > 0

        voices = indicator_matrix(
            [parsed[t].active_predicates for t in distinct]
            + [parsed[t].passive_predicates for t in distinct]
        )
        active, passive = voices[:n], voices[n:]
        voice = (_active_against_new_passive(active[li], passive[li], passive[ri])
                 + _active_against_new_passive(active[ri], passive[ri], passive[li])) > 0

        cues = np.array([float(len(parsed[t].negation_cues)) for t in distinct])
        cues_a, cues_b = cues[li], cues[ri]
        neg_a, neg_b = cues_a > 0, cues_b > 0
        return np.column_stack([
            (neg_a != neg_b).astype(float),
            (neg_a & neg_b).astype(float),
            *sym_min_max_diff(cues_a, cues_b),
            (antonym_count > 0).astype(float),
            antonym_count,
            reversed_roles.astype(float),
            voice.astype(float),
        ])


def _antonym_matrix(vocabulary: dict[Any, int]) -> sparse.csr_matrix:
    """Symmetric 0/1 matrix over ``vocabulary``: 1 where two words are antonyms."""
    index = _antonym_index()
    rows, cols = [], []
    for word, i in vocabulary.items():
        for other in index.get(word, ()):  # type: ignore[call-overload]
            j = vocabulary.get(other)
            if j is not None:
                rows.append(i)
                cols.append(j)
    size = max(len(vocabulary), 1)
    return sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(size, size))


def _active_against_new_passive(
    active: sparse.csr_matrix, own_passive: sparse.csr_matrix, other_passive: sparse.csr_matrix
) -> np.ndarray:
    """Per row, predicates active here and passive only on the other side (see voice_mismatch)."""
    both = active.multiply(other_passive)
    return np.asarray(both.sum(axis=1)).ravel() - rowwise_dot(both.tocsr(), own_passive)
