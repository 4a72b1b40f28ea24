"""Do two items measure their construct in the same direction? ``compare`` says so.

"I have trouble sleeping" / "I sleep very deeply" are one construct keyed in opposite
directions: a committee pairs them and reverse-codes one. A score alone cannot say that,
so ``compare`` adds, per pair, a ``polarity`` ("same" or "reversed"), a
``signed_similarity`` (negative when reversed, as Harmony reports it) and a ``contrast``
reason a person can check ("negation: not", "antonyms: calm / anxious", "role reversal:
bully").

The direction of an item is read from its parse (a documented rule, not learned: the
DOXA ratings hold too few such pairs to learn it from): an item leans negative when it
holds at least as many negative-valence words (sad, trouble, worry...) as positive ones,
and every negation cue (not, never, no one, hardly, lack of...) flips that, as does a
reversing word (stop, lose, little...), once however many. Two items are reversed
when their directions differ and something ties them: both carry a valence word, they
share a content word, or an antonym pair spans them. Role reversal ("Child bullies others"
/ "Child is often bullied": the same predicate with agent and patient swapped) is a
different construct, named in ``contrast``; its score is capped by the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hybrid_sim.features._nlp import Analysis, analyse
from hybrid_sim.features.negation import antonyms_between
from hybrid_sim.pairs import Pairs
from hybrid_sim.scorer.estimator import HybridScorer


def _words(text: str) -> list[str]:
    return text.split()


# Lemmas whose presence keys an item towards a problem (negative) or towards well-being
# (positive), as questionnaires word them.
NEGATIVE = frozenset(_words("""
sad sadness depressed depression down hopeless hopelessness worthless guilty guilt unhappy
miserable lonely loneliness anxious anxiety worry worried nervous tense tension panic fear
afraid scared frightened irritable angry anger upset restless agitated tired fatigue exhausted
weary trouble difficulty difficult problem hard poor bad worse pain ache suicidal suicide death
die dead kill hurt harm cry crying tearful stress stressed overwhelmed bored dissatisfied
unsatisfied bully bullied fight disobedient lie steal aggressive insomnia nightmare awake wake
hopeless empty numb slow sluggish weak unable useless badly failure insecure isolated distant
annoyed mean unsafe stressful
"""))
POSITIVE = frozenset(_words("""
happy happiness cheerful content calm relaxed relax peaceful rested refreshed well good great
fine energy energetic lively active interest interested enjoy enjoyment pleasure satisfied
satisfaction hopeful optimistic confident safe secure deeply soundly easily easy able capable
loved useful worthwhile kind success successful close liked popular
"""))
# words that turn what follows round: "lost interest", "stop worrying", "little energy";
# one flip however many (coordinated: "stop or control worrying")
REVERSERS = frozenset(_words("""
stop lose lost quit control overcome avoid reduce relieve free little few
"""))
NEGATION_CUES_IN_LEXICON = frozenset({"unable"})  # a negation cue that is also a valence word: counted once


def _direction(item: Analysis) -> tuple[int, list[str], bool]:
    """(+1 or -1, the words that set it, whether a valence word was found).

    The item leans negative when it holds at least as many negative-valence words as
    positive ones; each negation cue, and any reversing word, flips that.
    """
    words = set(item.all_lemmas) | set(item.tokens)  # "stressed" and "stress" both match
    negative = sorted(w for w in words if w in NEGATIVE)
    positive = sorted(w for w in words if w in POSITIVE)
    reversers = sorted(w for w in words if w in REVERSERS)[:1]
    cues = [c for c in item.negation_cues if c not in NEGATION_CUES_IN_LEXICON]
    valence = -1 if negative and len(negative) >= len(positive) else 1
    sign = valence * (-1) ** (len(cues) + len(reversers))
    return sign, [*cues, *reversers, *(negative if valence < 0 else positive)], bool(negative or positive)


def _role_swaps(a: Analysis, b: Analysis) -> list[str]:
    """Predicates whose argument is agent on one side and patient on the other, and not
    both on either side ("liked by other children" / "not liked by other children" is no
    swap: the child is the patient in both)."""
    a_agent, a_patient = a.agent_roles - a.patient_roles, a.patient_roles - a.agent_roles
    b_agent, b_patient = b.agent_roles - b.patient_roles, b.patient_roles - b.agent_roles
    return sorted({p for p, _ in (a_agent & b_patient) | (b_agent & a_patient)})


def polarity_of(a: Analysis, b: Analysis) -> tuple[str, str]:
    """("same" or "reversed", the contrast reason, "" when there is none) for one pair.

    >>> from hybrid_sim.features._nlp import analyse
    >>> p = analyse(["I feel sad", "I do not feel sad"])
    >>> polarity_of(p["I feel sad"], p["I do not feel sad"])
    ('reversed', 'negation: not')
    """
    swapped = _role_swaps(a, b)  # a swap here is always one the role_reversal flag sees too
    if swapped:
        return "same", f"role reversal: {' / '.join(swapped)}"
    sign_a, flips_a, valence_a = _direction(a)
    sign_b, flips_b, valence_b = _direction(b)
    antonyms = antonyms_between(a, b)
    tied = (valence_a and valence_b) or bool(antonyms) or bool(
        (a.content_lemmas & b.content_lemmas) - NEGATIVE - POSITIVE)
    if sign_a == sign_b or not tied:
        return "same", ""
    if antonyms:
        return "reversed", "antonyms: " + "; ".join(f"{x} / {y}" for x, y in antonyms)
    only_a = [w for w in flips_a if w not in flips_b]
    only_b = [w for w in flips_b if w not in flips_a]
    cues = [w for w in only_a + only_b if w in set(a.negation_cues) | set(b.negation_cues)]
    if cues:
        return "reversed", "negation: " + ", ".join(dict.fromkeys(cues))
    return "reversed", "valence: " + " / ".join(x for x in (", ".join(only_a), ", ".join(only_b)) if x)


def compare(a: Any, b: Any = None, model: HybridScorer | str | Path | None = None) -> pd.DataFrame:
    """One row per pair: ``text_a``, ``text_b``, ``similarity`` (0-100, as ``score``),
    ``polarity`` ("same" or "reversed"), ``signed_similarity`` (negative when reversed) and
    ``contrast`` (empty, or why: negation, antonyms, valence, role reversal).

    Accepts what ``score`` accepts.

    >>> compare("I have trouble sleeping", "I sleep very deeply")["polarity"].tolist()
    ['reversed']
    """
    from hybrid_sim.api import _resolve

    pairs = Pairs.of(a, b)
    similarity = np.asarray(_resolve(model).predict(pairs), dtype=float)
    return pd.DataFrame({"text_a": pairs.left, "text_b": pairs.right, "similarity": similarity,
                         **polarity_columns(pairs.left, pairs.right, similarity)})


def polarity_columns(left: Sequence[str], right: Sequence[str], similarity: np.ndarray) -> dict[str, Any]:
    """The polarity, signed similarity and contrast of scored pairs (for files)."""
    parsed = analyse(list(dict.fromkeys([*left, *right])))
    found = [polarity_of(parsed[x], parsed[y]) for x, y in zip(left, right)]
    sign = np.array([-1.0 if p == "reversed" else 1.0 for p, _ in found])
    return {"polarity": [p for p, _ in found], "signed_similarity": sign * similarity,
            "contrast": [c for _, c in found]}
