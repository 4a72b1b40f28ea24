"""Negation, antonym and role-reversal flags: the contrasts that embeddings miss.

Plain embedding models put "I have trouble sleeping" next to "I sleep very deeply" and
"Child bullies others" next to "Child is often bullied". These features flag such pairs
from the dependency parse and from two antonym lexicons shipped as data files.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import ClassVar

import numpy as np

from hybrid_sim.features._nlp import Analysis, analyse
from hybrid_sim.features.base import PairFeatures, sym_min_max_diff

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
        agents = {(p, arg) for p, role, arg in x.roles if role == "agent"}
        patients = {(p, arg) for p, role, arg in y.roles if role == "patient"}
        return bool(agents & patients)

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
        parsed = analyse(left + right)
        index = _antonym_index()
        # per distinct sentence, the antonyms of its words: most pairs share none of them
        # with the other side, and skip the pairwise work
        reach = {
            t: frozenset(w for lemma in a.all_lemmas for w in index.get(lemma, ()))
            for t, a in parsed.items()
        }
        cues = {t: float(len(a.negation_cues)) for t, a in parsed.items()}
        antonyms = np.zeros(len(left))
        roles = np.zeros(len(left))
        voice = np.zeros(len(left))
        for i, (ta, tb) in enumerate(zip(left, right)):
            a, b = parsed[ta], parsed[tb]
            if reach[ta] & b.all_lemmas:
                antonyms[i] = len(antonyms_between(a, b))
            if a.roles and b.roles:
                roles[i] = role_reversal(a, b)
                voice[i] = voice_mismatch(a, b)
        cues_a = np.fromiter((cues[t] for t in left), float, len(left))
        cues_b = np.fromiter((cues[t] for t in right), float, len(right))
        neg_a, neg_b = cues_a > 0, cues_b > 0
        return np.column_stack([
            (neg_a != neg_b).astype(float),
            (neg_a & neg_b).astype(float),
            *sym_min_max_diff(cues_a, cues_b),
            (antonyms > 0).astype(float),
            antonyms,
            roles,
            voice,
        ])
