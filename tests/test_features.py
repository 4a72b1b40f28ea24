"""The classical extractors: golden flags, properties, and scikit-learn conventions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.base import clone

from hybrid_sim.features import (
    CLASSICAL_GROUPS,
    BagOfWordsFeatures,
    FuzzyFeatures,
    NegationFeatures,
    feature_class,
    make_features,
)
from hybrid_sim.pairs import normalise_text, text_problem

EXTRACTORS = [BagOfWordsFeatures, FuzzyFeatures, NegationFeatures]
FIT_PAIRS = [["I feel sad", "I feel down"], ["Felt hopeless?", "I sleep very deeply"]]


def _flags(a: str, b: str) -> dict[str, float]:
    f = NegationFeatures().fit(FIT_PAIRS)
    return dict(zip(f.get_feature_names_out(), f.transform([[a, b]])[0]))


def _golden_rows() -> list[dict[str, object]]:
    from tests.conftest import ROOT

    return pd.read_csv(ROOT / "tests" / "data" / "golden_flags.csv").to_dict("records")


@pytest.mark.parametrize("row", _golden_rows(), ids=lambda r: str(r["note"])[:40])
def test_golden_flags(row: dict[str, object]) -> None:
    for a, b in [(row["text_a"], row["text_b"]), (row["text_b"], row["text_a"])]:
        flags = _flags(str(a), str(b))
        for name in ("negation_mismatch", "antonym_flag", "role_reversal"):
            assert flags[f"negation__{name}"] == row[name], (name, a, b)


def test_batched_flags_follow_the_one_pair_definitions() -> None:
    """The sparse batch code must give what antonyms_between / role_reversal /
    voice_mismatch say for each pair, on every cross pairing of the golden sentences."""
    from hybrid_sim.features._nlp import analyse
    from hybrid_sim.features.negation import antonyms_between, role_reversal, voice_mismatch

    texts = sorted({normalise_text(str(r[k])) for r in _golden_rows() for k in ("text_a", "text_b")})
    left = [a for a in texts for _ in texts]
    right = [b for _ in texts for b in texts]
    f = NegationFeatures().fit(FIT_PAIRS)
    got = pd.DataFrame(f.transform(np.column_stack([left, right]).astype(object)),
                       columns=f.get_feature_names_out())
    parsed = analyse(texts)
    for i, (a, b) in enumerate(zip(left, right)):
        pa, pb = parsed[a], parsed[b]
        assert got["negation__antonym_count"][i] == len(antonyms_between(pa, pb)), (a, b)
        assert got["negation__role_reversal"][i] == role_reversal(pa, pb), (a, b)
        assert got["negation__voice_mismatch"][i] == voice_mismatch(pa, pb), (a, b)
    assert got["negation__role_reversal"].any() and got["negation__voice_mismatch"].any()


def test_flags_do_not_depend_on_what_earlier_batches_left_in_the_row_memo(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of one file share sentence rows; a tiny memo (evicting within a batch) and a
    memo warmed by other batches in another order must give the same features."""
    import hybrid_sim.features.negation as negation

    rows = _golden_rows()
    X = np.array([[r["text_a"], r["text_b"]] for r in rows], dtype=object)
    f = NegationFeatures().fit(FIT_PAIRS)
    monkeypatch.setattr(negation, "ROWS", negation._RowMemo())
    expected = f.transform(X)
    monkeypatch.setattr(negation, "ROWS", negation._RowMemo(max_size=2))
    np.testing.assert_array_equal(f.transform(X), expected)
    warmed = negation._RowMemo()
    monkeypatch.setattr(negation, "ROWS", warmed)
    f.transform(X[::-1, ::-1])
    f.transform(X[: len(X) // 2])
    np.testing.assert_array_equal(f.transform(X), expected)


def test_groups_asking_for_the_same_texts_at_once_parse_each_text_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from hybrid_sim.features import _nlp

    cache = _nlp.AnalysisCache()
    nlp = _nlp.load_spacy()
    parsed: list[str] = []
    real_pipe = nlp.pipe

    def counting_pipe(texts, **kw):
        texts = list(texts)
        parsed.extend(texts)
        return real_pipe(texts, **kw)

    monkeypatch.setattr(nlp, "pipe", counting_pipe)
    texts = [f"I worried about item {i} at night" for i in range(300)]
    threads = [threading.Thread(target=cache.analyse, args=(texts,)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(parsed) == sorted(texts)
    assert set(cache.analyse(texts)) == set(texts)


def test_antonym_lexicons_are_loaded() -> None:
    from hybrid_sim.features.negation import antonym_pairs

    pairs = antonym_pairs()
    assert frozenset(("deep", "shallow")) in pairs  # WordNet
    assert frozenset(("trouble", "deeply")) in pairs  # curated
    assert len(pairs) > 3000


def test_bow_identical_and_disjoint() -> None:
    bow = BagOfWordsFeatures().fit(FIT_PAIRS)
    same, apart = bow.transform([["I feel sad", "I feel sad"], ["I feel sad", "Rain falls"]])
    names = list(bow.get_feature_names_out())
    assert same[names.index("bow__jaccard")] == 1.0
    assert same[names.index("bow__tfidf_cosine")] == pytest.approx(1.0)
    assert apart[names.index("bow__jaccard")] == 0.0
    assert apart[names.index("bow__tfidf_cosine")] == 0.0


def test_fuzzy_scales_to_unit_interval() -> None:
    out = FuzzyFeatures().fit(FIT_PAIRS).transform([["abc", "abc"], ["abc", "xyz"]])
    assert np.all(out[0] == 1.0)
    assert np.all(out[1] == 0.0)


def test_feature_names_carry_the_group_prefix() -> None:
    union = make_features(CLASSICAL_GROUPS).fit(FIT_PAIRS)
    names = list(union.get_feature_names_out())
    assert "fuzzy__token_set_ratio" in names
    assert all(n.split("__")[0] in CLASSICAL_GROUPS for n in names)
    assert union.transform(FIT_PAIRS).shape == (2, len(names))


def test_a_group_can_be_dropped_by_name() -> None:
    union = make_features(CLASSICAL_GROUPS)
    union.set_params(fuzzy="drop")
    names = union.fit(FIT_PAIRS).get_feature_names_out()
    assert not any(n.startswith("fuzzy__") for n in names)
    assert any(n.startswith("bow__") for n in names)


def test_unknown_group_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown feature group 'tfidf'"):
        feature_class("tfidf")


@pytest.mark.parametrize("cls", EXTRACTORS)
def test_sklearn_conventions(cls: type) -> None:
    est = cls()
    assert not [k for k in vars(est) if k.endswith("_")], "nothing learned in __init__"
    assert set(vars(est)) == set(est.get_params()), "__init__ only stores its parameters"
    twin = clone(est)
    assert twin.get_params() == est.get_params()
    assert cls.__name__ in repr(est)
    assert est.fit(FIT_PAIRS) is est
    assert clone(est).set_params(**est.get_params()).get_params() == est.get_params()


@pytest.mark.parametrize("cls", EXTRACTORS)
def test_state_round_trip(cls: type) -> None:
    import json

    est = cls().fit(FIT_PAIRS)
    state = json.loads(json.dumps(est.get_state()))
    twin = cls().set_state(state)
    X = [["I feel sad today", "I feel down"], ["No one helps", "I help others"]]
    np.testing.assert_array_equal(est.transform(X), twin.transform(X))


def test_transform_before_fit_fails_clearly() -> None:
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        FuzzyFeatures().transform(FIT_PAIRS)


def test_bad_input_reaches_the_extractors_as_a_clear_error() -> None:
    with pytest.raises(ValueError, match="row 1, column 'sentence_2'"):
        FuzzyFeatures().fit(FIT_PAIRS).transform(
            pd.DataFrame({"sentence_1": ["a", "b"], "sentence_2": ["c", None]})
        )


texts = st.text(min_size=1, max_size=60).filter(lambda s: text_problem(s) is None)
UNION = make_features(CLASSICAL_GROUPS).fit(FIT_PAIRS)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(texts, texts), min_size=1, max_size=4))
def test_properties_on_arbitrary_unicode(pairs: list[tuple[str, str]]) -> None:
    X = [list(p) for p in pairs]
    out = UNION.transform(X)
    swapped = UNION.transform([[b, a] for a, b in X])
    assert out.shape == (len(X), len(UNION.get_feature_names_out()))
    assert np.all(np.isfinite(out))
    np.testing.assert_array_equal(out, swapped)  # exact symmetry
    names = list(UNION.get_feature_names_out())
    bounded = [i for i, n in enumerate(names) if "tokens" not in n and "cues" not in n
               and "count" not in n]
    assert np.all((out[:, bounded] >= 0) & (out[:, bounded] <= 1))
    one_by_one = np.vstack([UNION.transform([row]) for row in X])
    np.testing.assert_array_equal(out, one_by_one)
