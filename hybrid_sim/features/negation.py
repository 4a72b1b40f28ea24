"""Negation, antonym and role-reversal flags: the contrasts that embeddings miss.

Plain embedding models put "I have trouble sleeping" next to "I sleep very deeply" and
"Child bullies others" next to "Child is often bullied". These features flag such pairs
from the dependency parse and from two antonym lexicons shipped as data files.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from itertools import chain
from typing import Any, ClassVar

import numpy as np
from scipy import sparse

from hybrid_sim.features._nlp import Analysis, analyse
from hybrid_sim.features.base import (
    PairFeatures,
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
        rows, lemma_width, other_width = ROWS.rows(distinct)
        n = len(distinct)

        lemmas = _csr([r.lemmas for r in rows], lemma_width)
        la, lb = lemmas[li], lemmas[ri]
        shared = la.multiply(lb)
        only_a, only_b = (la - shared).tocsr(), (lb - shared).tocsr()
        antonym_count = rowwise_dot(only_a @ ROWS.antonym_matrix(lemma_width), only_b)

        roles = _csr([r.agent for r in rows] + [r.patient for r in rows], other_width)
        agent, patient = roles[:n], roles[n:]
        reversed_roles = (rowwise_dot(agent[li], patient[ri]) + rowwise_dot(agent[ri], patient[li])) > 0

        voices = _csr([r.active for r in rows] + [r.passive for r in rows], other_width)
        active, passive = voices[:n], voices[n:]
        voice = (_active_against_new_passive(active[li], passive[li], passive[ri])
                 + _active_against_new_passive(active[ri], passive[ri], passive[li])) > 0

        cues = np.fromiter((r.cues for r in rows), dtype=float, count=n)
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


@dataclass(frozen=True)
class _Rows:
    """One sentence's sets as column ids: lexicon lemmas, (predicate, argument) roles,
    active and passive predicates, and its number of negation cues."""

    lemmas: tuple[int, ...]
    agent: tuple[int, ...]
    patient: tuple[int, ...]
    active: tuple[int, ...]
    passive: tuple[int, ...]
    cues: int


class _RowMemo:
    """Per-sentence column ids, kept across batches.

    A long file is scored in chunks that repeat the same items; building these rows from
    the parse in every chunk was most of this group's time (about 0.12 s per 50,000 pairs
    over 10,000 items). Ids come from two vocabularies that only grow: lexicon words
    (bounded by the lexicons) and roles/predicates; the memo itself is bounded.
    """

    def __init__(self, max_size: int = 200_000) -> None:
        self.max_size = max_size
        self._lock = threading.Lock()
        self._rows: OrderedDict[str, _Rows] = OrderedDict()
        self._lemma_ids: dict[str, int] = {}
        self._other_ids: dict[Any, int] = {}
        self._antonyms: sparse.csr_matrix | None = None

    def rows(self, texts: list[str]) -> tuple[list[_Rows], int, int]:
        """The rows of ``texts`` and the current widths of the two vocabularies."""
        lexicon = _antonym_index()
        fresh: dict[str, _Rows] = {}  # this call's own, safe from eviction by other calls

        def ids(vocab: dict[Any, int], items: Any) -> tuple[int, ...]:
            return tuple(vocab.setdefault(item, len(vocab)) for item in items)

        while True:
            with self._lock:
                missing = [t for t in texts if t not in fresh and t not in self._rows]
                if not missing:
                    found = [fresh[t] if t in fresh else self._rows[t] for t in texts]
                    return found, len(self._lemma_ids), len(self._other_ids)
            parsed = analyse(missing)
            with self._lock:
                lemma, other = self._lemma_ids, self._other_ids
                for text, a in parsed.items():
                    # only lexicon words can form an antonym pair, and A - B keeps exactly the
                    # lexicon words of A - B: the rest would only widen the matrices
                    fresh[text] = self._rows[text] = _Rows(
                        lemmas=ids(lemma, sorted(w for w in a.all_lemmas if w in lexicon)),
                        agent=ids(other, a.agent_roles), patient=ids(other, a.patient_roles),
                        active=ids(other, a.active_predicates),
                        passive=ids(other, a.passive_predicates),
                        cues=len(a.negation_cues),
                    )
                while len(self._rows) > self.max_size:
                    self._rows.popitem(last=False)

    def antonym_matrix(self, width: int) -> sparse.csr_matrix:
        """0/1 antonym matrix over the first ``width`` lexicon ids (built once per growth).

        At least 1 x 1, as the rows of :func:`_csr` are at least one column wide: a batch
        whose texts hold no lexicon word gives width 0.
        """
        width = max(width, 1)
        with self._lock:
            if self._antonyms is None or self._antonyms.shape[0] < width:
                self._antonyms = _antonym_matrix(dict(self._lemma_ids))
            return self._antonyms[:width, :width]

ROWS = _RowMemo()


def _csr(id_rows: list[tuple[int, ...]], width: int) -> sparse.csr_matrix:
    """0/1 CSR matrix with a row per id tuple and ``width`` columns."""
    indptr = np.zeros(len(id_rows) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, id_rows), dtype=np.int64, count=len(id_rows)), out=indptr[1:])
    indices = np.fromiter(chain.from_iterable(id_rows), dtype=np.int64, count=int(indptr[-1]))
    return sparse.csr_matrix((np.ones(len(indices)), indices, indptr),
                             shape=(len(id_rows), max(width, 1)))


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
