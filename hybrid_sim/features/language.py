"""Which items are English: the multilingual path takes every pair with a non-English item.

A language identifier alone calls about one short English item in twenty something else
("Tells Lies": German, "Bites nails": French; py3langid on the 373 English items of the
training and dev sets). So an item is English when most of its words are English words
(spaCy's English lemma tables, with its suffix rules; a word with an accent is not), or
when py3langid says so of an item half of whose words are; an item mostly in a non-Latin
script is not. Measured: all 373 English items English, none of the 144 non-English items
of tests/data/multilingual_items.csv (tests/test_multilingual.py). English keeps its own
path; a misrouted foreign item would only lose the multilingual encoder.

>>> is_english(["I feel sad", "Tells Lies", "Sinto-me nervoso, ansioso ou muito tenso", "我很容易生气。"])
[True, True, False, False]
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Sequence
from functools import lru_cache

# an item is English when at least this share of its words are English words, or when
# py3langid says English and at least the lower share are (spaCy's tables hold WordNet's
# 150,000 forms, among them many Romance words: "senti", "triste", "parte")
ENGLISH_WORD_SHARE = 0.8
ENGLISH_WORD_SHARE_LANGID = 0.5
# informal spellings that questionnaires use
_CONTRACTIONS = ("doesnt", "dont", "isnt", "cant", "wont", "didnt", "wasnt", "arent", "havent",
                 "hasnt", "shouldnt", "couldnt", "wouldnt", "aint", "youre")
_WORD = re.compile(r"[^\W\d_]+")
_memo: dict[str, bool] = {}
_memo_lock = threading.Lock()


@lru_cache(maxsize=1)
def _lexicon() -> tuple[frozenset[str], tuple[tuple[str, str], ...]]:
    """English word forms and suffix rules from spaCy's English lemmatizer tables."""
    from spacy.lang.en.stop_words import STOP_WORDS

    from hybrid_sim.features._nlp import load_spacy

    lookups = load_spacy().get_pipe("lemmatizer").lookups
    words: set[str] = set(STOP_WORDS) | set(_CONTRACTIONS)
    for forms in lookups.get_table("lemma_index").values():
        words.update(w for w in forms if w.isalpha())
    for table in lookups.get_table("lemma_exc").values():
        for form, lemmas in table.items():
            words.add(form)
            words.update(lemmas)
    rules = {(old, new) for table in lookups.get_table("lemma_rules").values() for old, new in table}
    return frozenset(words), tuple(sorted(rules, key=lambda r: -len(r[0])))


def _english_word(word: str, words: frozenset[str], rules: tuple[tuple[str, str], ...]) -> bool:
    if not word.isascii():  # "sentí", "colère", "größten"
        return False
    if word in words:
        return True
    return any(word.endswith(old) and word[: len(word) - len(old)] + new in words
               for old, new in rules if old and len(word) > len(old) + 1)


def _mostly_non_latin(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    other = sum(not unicodedata.name(c, "").startswith("LATIN") for c in letters)
    return bool(letters) and other > len(letters) / 2


def _is_english(text: str) -> bool:
    if _mostly_non_latin(text):
        return False
    tokens = _WORD.findall(text.lower())
    if not tokens:
        return True  # numbers and punctuation: nothing says it is another language
    words, rules = _lexicon()
    share = sum(_english_word(w, words, rules) for w in tokens) / len(tokens)
    if share >= ENGLISH_WORD_SHARE:
        return True
    if share < ENGLISH_WORD_SHARE_LANGID:
        return False
    import py3langid

    return bool(py3langid.classify(text)[0] == "en")


def is_english(texts: Sequence[str]) -> list[bool]:
    """Per text: is it English? Each distinct text is decided once per process."""
    out = []
    for text in texts:
        known = _memo.get(text)
        if known is None:
            known = _is_english(text)
            with _memo_lock:
                if len(_memo) > 200_000:
                    _memo.clear()
                _memo[text] = known
        out.append(known)
    return out
