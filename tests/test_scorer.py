"""HybridScorer, model folders and the public API, on a tiny model trained here."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone

import hybrid_sim
from hybrid_sim.features import make_features
from hybrid_sim.pairs import Pairs
from hybrid_sim.scorer.estimator import HybridScorer
from hybrid_sim.scorer.loading import load_scorer
from hybrid_sim.scorer.saving import ModelFolderError
from tests.conftest import TINY_PAIRS

SMALL = {"params": {"min_child_samples": 2, "n_estimators": 50}}


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[HybridScorer, Path]:
    a, b, y = zip(*TINY_PAIRS)
    frame = pd.DataFrame({"sentence_1": a, "sentence_2": b, "human_similarity": y})
    folder = tmp_path_factory.mktemp("models") / "tiny"
    features = make_features(embedding={"epochs": 1, "cv": 2, "show_progress": False})
    scorer = HybridScorer(features=features, cv=2, **SMALL).fit(frame.iloc[:, :2], y)
    scorer.save(folder, data_name="tiny", n_rows=len(frame))
    return scorer, folder


PAIRS = pd.DataFrame({
    "sentence_1": ["Child bullies others", "I have trouble sleeping", "Felt hopeless?"],
    "sentence_2": ["Child is often bullied", "I sleep very deeply",
                   "Feeling down, depressed, or hopeless?"],
})


def test_predictions_are_bounded_and_exactly_symmetric(tiny_model) -> None:
    scorer, _ = tiny_model
    pred = scorer.predict(PAIRS)
    swapped = scorer.predict(PAIRS[["sentence_2", "sentence_1"]])
    assert np.all((pred >= 0) & (pred <= 100))
    np.testing.assert_array_equal(pred, swapped)


def test_batch_equals_single(tiny_model) -> None:
    scorer, _ = tiny_model
    batch = scorer.predict(PAIRS)
    single = [hybrid_sim.score(a, b, model=scorer) for a, b in PAIRS.itertuples(index=False)]
    np.testing.assert_allclose(batch, single, atol=1e-9)


def test_groups_computed_in_parallel_threads_equal_the_sequential_union(tiny_model) -> None:
    scorer, _ = tiny_model
    threaded = scorer.transform_features(PAIRS)
    sequential = scorer.features_.transform(Pairs.of(PAIRS))  # joblib's default: one job
    np.testing.assert_array_equal(threaded, sequential)


def test_without_the_role_reversal_cap_a_group_kept_only_for_it_is_not_computed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from hybrid_sim.features import _nlp

    model = hybrid_sim.load("default")  # stacks the embedding only; negation feeds the cap
    capped = model.transform_features(PAIRS)
    assert not np.isnan(capped).any()
    uncapped_model = hybrid_sim.load("default")  # a fresh copy: load never shares
    uncapped_model.set_params(role_reversal_cap=None)

    def no_parse(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("spaCy parse ran although nothing reads it")

    monkeypatch.setattr(_nlp.CACHE, "analyse", no_parse)
    matrix = uncapped_model.transform_features(PAIRS)
    negation = [i for i, n in enumerate(uncapped_model.feature_names_) if n.startswith("negation__")]
    assert negation and np.isnan(matrix[:, negation]).all()
    np.testing.assert_array_equal(np.delete(matrix, negation, axis=1), np.delete(capped, negation, axis=1))
    uncapped = uncapped_model.predict(PAIRS)
    raw = np.clip(model.stacker_.predict(model._stacker_input(capped)), 0, 100)
    np.testing.assert_array_equal(uncapped, raw)
    assert (model.predict_features(capped) <= uncapped).all()


def test_save_load_round_trip_is_exact(tiny_model) -> None:
    scorer, folder = tiny_model
    loaded = hybrid_sim.load(folder)
    np.testing.assert_array_equal(scorer.predict(PAIRS), loaded.predict(PAIRS))
    assert loaded.feature_names_ == scorer.feature_names_
    assert loaded.set_params(features__fuzzy="drop").features.transformer_list[1][1] == "drop"
    # the parameter changes what a later fit builds; the fitted groups still predict
    np.testing.assert_array_equal(loaded.predict(PAIRS), scorer.predict(PAIRS))


def test_folder_is_data_only_and_listed_in_manifest(tiny_model) -> None:
    _, folder = tiny_model
    manifest = json.loads((folder / "manifest.json").read_text())
    files = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert files - {"manifest.json"} == set(manifest["files"])
    assert {Path(f).suffix for f in files} <= {".json", ".txt", ".safetensors", ".md"}
    assert manifest["versions"]["lightgbm"] and manifest["cv_metrics"]["grouped_cv_folds"] == 2
    for blob in folder.rglob("*"):
        if blob.is_file():
            assert not blob.read_bytes().startswith(b"\x80"), f"{blob} looks like a pickle"


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda f: (f / "stacker.txt").write_text("tree\n"), "stacker.txt has been altered"),
        (lambda f: (f / "embedding" / "adapter.safetensors").unlink(), "adapter.safetensors is missing"),
        (lambda f: (f / "manifest.json").write_text("{"), "manifest.json is damaged"),
        (lambda f: (f / "manifest.json").unlink(), "manifest.json is missing"),
    ],
)
def test_damaged_folder_fails_clearly(tiny_model, tmp_path: Path, damage, message: str) -> None:
    _, folder = tiny_model
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    damage(copy)
    with pytest.raises(ModelFolderError, match=message):
        load_scorer(copy)


def test_incompatible_format_fails_clearly(tiny_model, tmp_path: Path) -> None:
    _, folder = tiny_model
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["format"] = "hybrid_sim.model/99"
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelFolderError, match="incompatible hybrid_sim version"):
        load_scorer(copy)


def test_wrong_base_model_fails_clearly(tiny_model, tmp_path: Path) -> None:
    _, folder = tiny_model
    fake = tmp_path / "fake_base"
    fake.mkdir()
    (fake / "model.safetensors").write_bytes(b"not the same weights")
    with pytest.raises(ModelFolderError, match="not the one this model was trained with"):
        load_scorer(folder, base_model=str(fake))


def test_explain_adds_up_to_the_score(tiny_model) -> None:
    scorer, _ = tiny_model
    table = scorer.explain(PAIRS)
    group_cols = [c for c in table if c.startswith("group:")]
    assert sorted(group_cols) == ["group:bow", "group:embedding", "group:fuzzy", "group:negation"]
    total = np.clip(table[group_cols].sum(axis=1) + table["bias"], 0, 100)
    free = ~table["capped"]
    np.testing.assert_allclose(total[free], table["score"][free], atol=1e-9)
    assert (table["score"][~free] == scorer.role_reversal_cap).all()
    assert (total[~free] > scorer.role_reversal_cap).all()
    np.testing.assert_allclose(table["score"], scorer.predict(PAIRS), atol=1e-9)


def test_role_reversal_cap_limits_flagged_pairs_only(tiny_model) -> None:
    scorer, _ = tiny_model
    uncapped = clone(scorer).set_params(role_reversal_cap=None)
    uncapped.features_, uncapped.stacker_ = scorer.features_, scorer.stacker_
    uncapped.feature_names_ = scorer.feature_names_
    uncapped.stacker_features_ = scorer.stacker_features_
    with_cap, without = scorer.predict(PAIRS), uncapped.predict(PAIRS)
    assert with_cap[0] <= 20  # role reversal
    # antonyms mark reverse-keyed items, one construct for a harmonisation committee: not capped
    assert with_cap[1] == without[1]
    assert with_cap[2] == without[2]  # a paraphrase carries no contrast flag


def test_clone_keeps_params_and_drops_state(tiny_model) -> None:
    scorer, _ = tiny_model
    twin = clone(scorer)
    assert not hasattr(twin, "booster_")
    assert twin.get_params()["cv"] == 2


def test_set_params_drops_a_group_before_fit() -> None:
    a, b, y = zip(*TINY_PAIRS)
    X = np.column_stack([a, b]).astype(object)
    scorer = HybridScorer(features=make_features(["bow", "fuzzy", "negation"]), cv=2, **SMALL)
    scorer.set_params(features__fuzzy="drop").fit(X, y)
    assert not any(n.startswith("fuzzy__") for n in scorer.feature_names_)


def test_bad_ratings_name_the_row() -> None:
    with pytest.raises(ValueError, match=r"row 1: rating 140\.0 is not a number in 0-100"):
        HybridScorer(features=make_features(["bow"])).fit([["a", "b"], ["c", "d"]], [10, 140])


def test_train_from_a_file_and_evaluate(tmp_path: Path) -> None:
    a, b, y = zip(*TINY_PAIRS)
    data = tmp_path / "rated.tsv"
    pd.DataFrame({"q1": a, "q2": b, "rating": y}).to_csv(data, sep="\t", index=False)
    model = hybrid_sim.train(data, tmp_path / "m", columns=("q1", "q2"), target="rating",
                             groups=["bow", "fuzzy"], cv=2, stacker="lightgbm", **SMALL)
    assert (tmp_path / "m" / "manifest.json").exists()
    metrics = hybrid_sim.evaluate(data, model, columns=("q1", "q2"), target="rating")
    assert set(metrics) >= {"mae", "rmse", "pearson", "spearman"}
    assert 0 <= metrics["mae"] <= 100


def test_shipped_default_model_scores_offline() -> None:
    value = hybrid_sim.score("Felt hopeless?", "Feeling down, depressed, or hopeless?")
    assert isinstance(value, float) and 0 <= value <= 100
    arr = hybrid_sim.score(["I feel sad", "I sleep well"], ["I feel down", "I drink alcohol"])
    assert arr.shape == (2,)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Child bullies others", "Child is often bullied"),
        ("child bullies others", "child is often bullied by other children"),
    ],
)
def test_shipped_default_scores_role_reversals_below_a_paraphrase(a: str, b: str) -> None:
    paraphrase = hybrid_sim.score("Felt hopeless?", "Feeling down, depressed, or hopeless?")
    contrast = hybrid_sim.score(a, b)
    assert contrast <= 20 < paraphrase


def test_reverse_keyed_items_are_not_capped() -> None:
    # one construct keyed in opposite directions: a harmonisation committee pairs them and
    # reverse-codes one (capping such pairs cost 0.008 ROC AUC on the dev set)
    assert hybrid_sim.score("I have trouble sleeping", "I sleep very deeply") > 20


def test_shipped_model_records_the_training_data_it_was_made_from(train_data) -> None:
    from hybrid_sim.api import default_model_path, read_labelled
    from tests.conftest import DATA

    manifest = json.loads((default_model_path() / "manifest.json").read_text())
    _, _, info = read_labelled(DATA)
    assert manifest["training"]["data_sha256"] == info["data_sha256"]
    assert manifest["training"]["n_rows"] == len(train_data)
    assert manifest["cv_metrics"]["mae"] < 22.7  # better than predicting the median


def test_shipped_model_files_fit_the_size_budget() -> None:
    from hybrid_sim.api import shipped_model_path
    from hybrid_sim.defaults import SHIPPED_MODELS

    size = sum(p.stat().st_size for name in SHIPPED_MODELS
               for p in shipped_model_path(name).rglob("*") if p.is_file())
    assert size <= 20 * 1024 * 1024


def test_the_shipped_default_is_one_minilm_encoder_and_scores_the_user_pairs() -> None:
    # loads with no all-mpnet-base-v2 installed (the tests' model home is empty): the
    # teachers it was distilled from are not part of it
    model = hybrid_sim.load("default")
    embedding = model.features_.named_transformers["embedding"]
    (encoder,) = embedding.encoders_
    assert encoder.base_model == "all-MiniLM-L6-v2" and not embedding.partners_
    assert [t["base_model"] for t in embedding.teachers] == ["all-MiniLM-L6-v2", "all-mpnet-base-v2"]
    assert model.cv_metrics_["mae"] < 20.75  # nested grouped CV by pair; 20.75 before the monotone stacker
    paraphrase = hybrid_sim.score("Felt hopeless?", "Feeling down, depressed, or hopeless?",
                                  model="default")
    reversal = hybrid_sim.score("Child bullies others", "Child is often bullied", model="default")
    assert isinstance(paraphrase, float) and paraphrase > reversal
    assert reversal <= 20  # the contrast cap on role reversal
    with pytest.raises(ValueError, match="no shipped model"):
        hybrid_sim.api.shipped_model_path("huge")


MPNET_HOME = Path.home() / ".cache" / "hybrid_sim"  # where `make setup` / `make mpnet` put it


def test_shipped_accurate_model_averages_minilm_and_mpnet_and_scores_the_user_pairs(
        monkeypatch: pytest.MonkeyPatch) -> None:
    if not (MPNET_HOME / "all-mpnet-base-v2" / "model.safetensors").is_file():
        pytest.skip("all-mpnet-base-v2 is not installed (make mpnet)")
    monkeypatch.setenv("HYBRID_SIM_HOME", str(MPNET_HOME))  # the tests' own home is empty
    model = hybrid_sim.load("accurate")
    embedding = model.features_.named_transformers["embedding"]
    assert [p.base_model for p in embedding.partners_] == ["all-mpnet-base-v2"]
    paraphrase = hybrid_sim.score("Felt hopeless?", "Feeling down, depressed, or hopeless?", model=model)
    reversal = hybrid_sim.score("Child bullies others", "Child is often bullied", model=model)
    assert paraphrase > reversal and reversal <= 20


def test_the_accurate_model_without_mpnet_fails_saying_how_to_install_it(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HYBRID_SIM_HOME", str(tmp_path))
    with pytest.raises(ModelFolderError, match="make mpnet"):
        load_scorer(hybrid_sim.api.shipped_model_path("accurate"))


def test_group_selection_keeps_what_the_stacker_uses_and_round_trips(tmp_path: Path) -> None:
    a, b, y = zip(*TINY_PAIRS)
    X = np.column_stack([a, b]).astype(object)
    scorer = HybridScorer(features=make_features(["bow", "fuzzy", "negation"]), cv=2,
                          select_groups=True, **SMALL).fit(X, y)
    used = {n.split("__")[0] for n in scorer.stacker_features_}
    computed = {name for name, _ in scorer.features_.transformer_list}
    assert used and used <= set(scorer.selection_[-1]["groups"])  # the last step tried
    assert computed == used | {"negation"}  # the contrast cap reads the negation flags
    assert set(scorer.stacker_features_) <= set(scorer.feature_names_)
    assert scorer.cv_metrics_["nested_group_selection"] is True
    assert set(scorer.feature_importance().feature) == set(scorer.stacker_features_)
    scorer.save(tmp_path / "selected")
    loaded = hybrid_sim.load(tmp_path / "selected")
    np.testing.assert_array_equal(loaded.predict(PAIRS), scorer.predict(PAIRS))
    assert loaded.stacker_features_ == scorer.stacker_features_
    card = (tmp_path / "selected" / "README.md").read_text()
    assert "Groups the stacker uses" in card


def test_a_distilled_model_saves_only_its_student_and_its_card_names_the_teachers(tmp_path: Path) -> None:
    a, b, y = zip(*TINY_PAIRS)
    frame = pd.DataFrame({"sentence_1": a, "sentence_2": b, "human_similarity": y})
    teacher = {"lora_layers": 2, "learning_rate": 2e-3}
    scorer = hybrid_sim.train(frame, tmp_path / "distilled", groups=["embedding"], epochs=1, cv=2,
                              base_cosine=False, teachers=[teacher], distill_pairs=30,
                              select_groups=False, show_progress=False, stacker="lightgbm", **SMALL)
    files = sorted(p.name for p in (tmp_path / "distilled" / "embedding").iterdir())
    assert files == ["adapter.json", "adapter.safetensors"]
    card = (tmp_path / "distilled" / "README.md").read_text()
    assert "distilled" in card and "up to 30 unrated pairs" in card and "top 2 blocks" in card
    loaded = hybrid_sim.load(tmp_path / "distilled")
    np.testing.assert_array_equal(loaded.predict(PAIRS), scorer.predict(PAIRS))


# -- the monotone stacker: scores keep their ranking --------------------------------------

def test_the_shipped_default_keeps_its_ranking_and_scores_identical_texts_high() -> None:
    model = hybrid_sim.load("default")
    items = ["Feeling down, depressed, or hopeless?", "Felt hopeless?",
             "Little interest or pleasure in doing things?", "Feeling nervous, anxious or on edge?",
             "Trouble falling or staying asleep?", "I feel calm", "Child bullies others",
             "Child is often bullied", "Do you drink alcohol?", "x"]
    a, b = np.meshgrid(np.arange(len(items)), np.arange(len(items)))
    pairs = [[items[i], items[j]] for i, j in zip(a.ravel(), b.ravel()) if i < j]
    scores = model.predict(pairs)
    assert len(np.unique(scores)) == len(pairs)  # no two pairs tied: no plateau
    same = model.predict([[t, t] for t in items])
    assert (same >= 90).all()
    hopeless = hybrid_sim.score("Feeling down, depressed, or hopeless?", "Felt hopeless?", model=model)
    afraid = hybrid_sim.score("Feeling down, depressed, or hopeless?",
                              "Feeling afraid as if something awful might happen", model=model)
    assert hopeless > afraid


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000))
def test_the_monotone_map_rises_strictly_over_the_whole_range(seed: int) -> None:
    from hybrid_sim.stacker.monotone import MonotoneStacker

    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (120, 2))
    y = np.clip(30 + 40 * X[:, 0] + 10 * X[:, 1] + rng.normal(0, 15, 120), 0, 100)
    model = MonotoneStacker(identity=((1.0, 1.0),)).fit(X, y)
    grid = np.linspace(model.knots_[0], model.knots_[-1], 500)
    scores = np.interp(grid, model.knots_, model.values_)
    assert np.all(np.diff(scores) > 0)
    assert model.predict(np.array([[1.0, 1.0]]))[0] >= 90
    assert np.all((model.predict(X) >= 0) & (model.predict(X) <= 100))


def test_a_monotone_model_round_trips_and_a_damaged_stacker_json_names_the_file(tmp_path: Path) -> None:
    from tests.conftest import synthetic_rated

    data = synthetic_rated()
    model = hybrid_sim.train(data, tmp_path / "m", groups=["bow", "fuzzy"], cv=3, stacker="monotone")
    loaded = hybrid_sim.load(tmp_path / "m")
    np.testing.assert_array_equal(loaded.predict(data.iloc[:, :2]), model.predict(data.iloc[:, :2]))
    state = json.loads((tmp_path / "m" / "stacker.json").read_text())
    state["values"] = state["values"][::-1]  # no longer rising
    (tmp_path / "m" / "stacker.json").write_text(json.dumps(state))
    import hashlib

    from hybrid_sim.scorer.manifest import seal

    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    stacker = (tmp_path / "m" / "stacker.json").read_bytes()
    manifest["files"]["stacker.json"] = hashlib.sha256(stacker).hexdigest()
    (tmp_path / "m" / "manifest.json").write_text(json.dumps(seal(manifest)))
    with pytest.raises(ModelFolderError, match=r"stacker.json cannot be read .* must rise strictly"):
        hybrid_sim.load(tmp_path / "m")


def test_the_shipped_model_cards_say_what_the_score_means_and_what_the_model_is_for() -> None:
    for name in ("default", "accurate"):
        card = (hybrid_sim.api.shipped_model_path(name) / "README.md").read_text()
        for section in ("## What the score means", "## Intended use", "## Languages", "## Limitations",
                        "## Data and citation", "New questionnaires", "Grouped 5-fold CV"):
            assert section in card, (name, section)
