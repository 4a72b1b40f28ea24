"""The command line and file scoring: round trips, row order, errors, atomic output."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hybrid_sim.apps.batch import score_file
from hybrid_sim.apps.cli import main
from hybrid_sim.features import make_features
from hybrid_sim.scorer.estimator import HybridScorer
from tests.conftest import TINY_PAIRS, synthetic_rated


@pytest.fixture(scope="module")
def classical_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fast model without the embedding group: these tests are about files, not accuracy."""
    a, b, y = zip(*TINY_PAIRS)
    folder = tmp_path_factory.mktemp("m") / "classical"
    scorer = HybridScorer(features=make_features(["bow", "fuzzy", "negation"]), cv=2,
                          params={"min_child_samples": 2, "n_estimators": 30})
    scorer.fit(np.column_stack([a, b]).astype(object), y).save(folder)
    return folder


AWKWARD = pd.DataFrame({
    "id": [3, 1, 2, 7],
    "sentence_1": ['He said "no", then left', "Café, naïve façade", "line one\nline two",
                   "日本語の文"],
    "sentence_2": ["Did he leave?", "Cafe naive facade", "two lines", "Japanese sentence"],
    "note": ["a,b", "", "x", "ü"],
})


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".parquet"])
def test_score_round_trip_keeps_rows_columns_and_text(classical_model: Path, tmp_path: Path,
                                                     suffix: str) -> None:
    src, out = tmp_path / f"in{suffix}", tmp_path / f"out{suffix}"
    if suffix == ".parquet":
        AWKWARD.to_parquet(src, index=False)
    else:
        AWKWARD.to_csv(src, sep="\t" if suffix == ".tsv" else ",", index=False)
    assert main(["score", str(src), "-o", str(out), "--model", str(classical_model),
                 "--quiet", "--chunk-rows", "3"]) == 0
    if suffix == ".parquet":
        got = pd.read_parquet(out)
    else:
        got = pd.read_csv(out, sep="\t" if suffix == ".tsv" else ",", keep_default_na=False)
    assert list(got.columns) == [*AWKWARD.columns, "similarity"]
    assert got["sentence_1"].tolist() == AWKWARD["sentence_1"].tolist()
    assert got["id"].astype(int).tolist() == [3, 1, 2, 7]
    assert got["note"].tolist() == AWKWARD["note"].tolist()
    assert got["similarity"].astype(float).between(0, 100).all()


def test_chunking_does_not_change_scores(classical_model: Path, tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    pd.concat([AWKWARD] * 5).to_csv(src, index=False)
    score_file(src, tmp_path / "a.csv", classical_model, chunk_rows=2, quiet=True)
    score_file(src, tmp_path / "b.csv", classical_model, chunk_rows=1000, quiet=True)
    a = pd.read_csv(tmp_path / "a.csv")["similarity"]
    b = pd.read_csv(tmp_path / "b.csv")["similarity"]
    np.testing.assert_array_equal(a, b)


def test_bad_row_fails_by_default_naming_it_and_leaves_no_output(classical_model: Path,
                                                                 tmp_path: Path,
                                                                 capsys) -> None:
    src, out = tmp_path / "in.csv", tmp_path / "out.csv"
    frame = AWKWARD.copy()
    frame.loc[2, "sentence_2"] = "   "
    frame.to_csv(src, index=False)
    assert main(["score", str(src), "-o", str(out), "--model", str(classical_model),
                 "--quiet", "--chunk-rows", "2"]) == 2
    assert "row 2, column 'sentence_2'" in capsys.readouterr().err
    assert not out.exists()
    assert not list(tmp_path.glob(".out.csv.*"))


def test_skip_mode_keeps_going_and_explains(classical_model: Path, tmp_path: Path) -> None:
    src, out = tmp_path / "in.csv", tmp_path / "out.csv"
    frame = AWKWARD.copy()
    frame.loc[1, "sentence_1"] = None
    frame.to_csv(src, index=False)
    score_file(src, out, classical_model, on_error="skip", quiet=True)
    got = pd.read_csv(out, keep_default_na=False)
    assert got.loc[1, "similarity"] == "" or pd.isna(got.loc[1, "similarity"])
    assert "missing value" in got.loc[1, "error"]
    assert got.loc[0, "error"] == "" and float(got.loc[0, "similarity"]) >= 0


def test_missing_column_fails_before_any_work(classical_model: Path, tmp_path: Path,
                                              capsys) -> None:
    src = tmp_path / "in.csv"
    AWKWARD.rename(columns={"sentence_2": "other"}).to_csv(src, index=False)
    assert main(["score", str(src), "-o", str(tmp_path / "o.csv"), "--model",
                 str(classical_model)]) == 2
    err = capsys.readouterr().err
    assert "['sentence_2'] not found" in err and "'other'" in err


def test_interrupted_run_leaves_no_output(classical_model: Path, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import hybrid_sim.apps.batch as batch

    src, out = tmp_path / "in.csv", tmp_path / "out.csv"
    pd.concat([AWKWARD] * 3).to_csv(src, index=False)
    real = batch.score_frame
    calls = {"n": 0}

    def dies_on_second_chunk(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(batch, "score_frame", dies_on_second_chunk)
    with pytest.raises(KeyboardInterrupt):
        score_file(src, out, classical_model, chunk_rows=4, quiet=True)
    assert not out.exists()
    assert not list(tmp_path.glob(".out.csv.*"))


def test_explain_adds_group_contributions(classical_model: Path, tmp_path: Path) -> None:
    src, out = tmp_path / "in.csv", tmp_path / "out.csv"
    AWKWARD.to_csv(src, index=False)
    score_file(src, out, classical_model, explain=True, quiet=True)
    got = pd.read_csv(out)
    assert {"contribution_bow", "contribution_fuzzy", "contribution_negation", "bias", "capped",
            "polarity", "signed_similarity", "contrast"} <= set(got)


def test_explain_with_a_model_that_keeps_a_group_only_for_the_cap(tmp_path: Path) -> None:
    # the shipped default model computes the negation flags for the cap, but stacks only the
    # embedding: there is an embedding contribution and no negation one
    src, out = tmp_path / "in.csv", tmp_path / "out.csv"
    AWKWARD.to_csv(src, index=False)
    score_file(src, out, "default", explain=True, quiet=True)
    got = pd.read_csv(out)
    assert "contribution_embedding" in got and "contribution_negation" not in got
    assert got["similarity"].between(0, 100).all()
    pairs = pd.DataFrame({"sentence_1": ["Child bullies others"], "sentence_2": ["Child is often bullied"]})
    pairs.to_csv(src, index=False)
    score_file(src, out, "default", explain=True, quiet=True)
    row = pd.read_csv(out).iloc[0]
    assert bool(row["capped"]) and row["contrast"].startswith("role reversal")  # why it scores 20


def test_evaluate_prints_json(classical_model: Path, tmp_path: Path, capsys) -> None:
    a, b, y = zip(*TINY_PAIRS)
    src = tmp_path / "rated.csv"
    pd.DataFrame({"sentence_1": a, "sentence_2": b, "human_similarity": y}).to_csv(src, index=False)
    assert main(["evaluate", str(src), "--model", str(classical_model), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert set(metrics) >= {"mae", "rmse", "pearson", "spearman"}


def test_evaluate_reports_roc_auc_for_binary_targets(classical_model: Path, tmp_path: Path,
                                                     capsys) -> None:
    a, b, y = zip(*TINY_PAIRS)
    src = tmp_path / "binary.csv"
    pd.DataFrame({"sentence_1": a, "sentence_2": b,
                  "same": [int(v >= 50) for v in y]}).to_csv(src, index=False)
    assert main(["evaluate", str(src), "--model", str(classical_model), "--target", "same",
                 "--json"]) == 0
    assert "roc_auc" in json.loads(capsys.readouterr().out)


def test_match_writes_sorted_long_output(classical_model: Path, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("I feel sad\nI sleep badly\n")
    (tmp_path / "b.txt").write_text("Felt down?\nTrouble sleeping?\nDo you smoke?\n")
    out = tmp_path / "m.csv"
    assert main(["match", str(tmp_path / "a.txt"), str(tmp_path / "b.txt"), "-o", str(out),
                 "--model", str(classical_model), "--top", "2"]) == 0
    got = pd.read_csv(out)
    assert list(got.columns) == ["item_a", "rank", "item_b", "similarity", "polarity",
                                 "signed_similarity", "contrast"]
    assert got["item_a"].tolist() == ["I feel sad"] * 2 + ["I sleep badly"] * 2  # A's order
    assert got["rank"].tolist() == [1, 2, 1, 2]
    for _, group in got.groupby("item_a"):
        assert group["similarity"].is_monotonic_decreasing


def test_match_crosswalk_carries_ids_to_a_real_excel_file(classical_model: Path, tmp_path: Path) -> None:
    pd.DataFrame({"id": ["a1", "a2"], "text": ["I feel sad", "I sleep badly"]}).to_csv(
        tmp_path / "a.csv", index=False)
    pd.DataFrame({"id": ["b1", "b2", "b3"], "text": ["Felt down?", "Trouble sleeping?", "Do you smoke?"]}
                 ).to_csv(tmp_path / "b.csv", index=False)
    out = tmp_path / "m.xlsx"
    assert main(["match", str(tmp_path / "a.csv"), str(tmp_path / "b.csv"), "--id-column", "id",
                 "--text-column", "text", "-o", str(out), "--model", str(classical_model), "--top", "2",
                 "--quiet"]) == 0
    got = pd.read_excel(out)
    assert list(got.columns) == ["id_a", "item_a", "rank", "id_b", "item_b", "similarity", "polarity",
                                 "signed_similarity", "contrast"]
    assert got["id_a"].tolist() == ["a1", "a1", "a2", "a2"] and got["rank"].tolist() == [1, 2, 1, 2]
    assert set(got["id_b"]) <= {"b1", "b2", "b3"}
    assert main(["match", str(tmp_path / "a.csv"), str(tmp_path / "b.csv"), "--id-column", "id",
                 "--text-column", "text", "-o", str(tmp_path / "m.weird"), "--model",
                 str(classical_model)]) == 2
    assert not (tmp_path / "m.weird").exists()


def test_match_one_to_one_and_wide(classical_model: Path, tmp_path: Path) -> None:
    from hybrid_sim.apps.match import match, match_wide, similarity_matrix

    a, b = ["I feel sad", "I sleep badly", "I worry"], ["Trouble sleeping?", "Felt down?"]
    scores = similarity_matrix(a, b, classical_model)
    pairs = match(a, b, classical_model, one_to_one=True)
    assert len(pairs) == 2 and pairs["item_b"].is_unique and (pairs["rank"] == 1).all()
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(scores, maximize=True)
    assert np.isclose(pairs["similarity"].sum(), scores[rows, cols].sum())
    wide = match_wide(a, b, classical_model)
    assert list(wide.columns) == ["item_a", *b]
    np.testing.assert_array_equal(wide[b].to_numpy(), scores)


def test_train_command_writes_a_model(tmp_path: Path) -> None:
    src = tmp_path / "rated.csv"
    synthetic_rated().set_axis(["x", "y", "score"], axis=1).to_csv(src, index=False)
    assert main(["train", str(src), "-o", str(tmp_path / "model"), "--columns", "x", "y",
                 "--target", "score", "--groups", "bow", "fuzzy", "--cv", "2", "--quiet"]) == 0
    assert (tmp_path / "model" / "stacker.json").exists()  # the monotone stacker by default


def test_train_command_passes_top_blocks_and_ensemble_members_to_train(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import hybrid_sim

    seen: dict = {}

    def fake_train(*args, **kwargs):  # type: ignore[no-untyped-def]
        seen.update(kwargs)
        scorer = HybridScorer()
        scorer.cv_metrics_ = {}
        return scorer

    monkeypatch.setattr(hybrid_sim.api, "train", fake_train)
    assert main(["train", "rated.csv", "-o", str(tmp_path / "m"), "--lora-layers", "2", "--quiet",
                 "--n-seeds", "2", "--soup",
                 "--ensemble", "all-mpnet-base-v2,lora_layers=2,learning_rate=1e-3,epochs=2"]) == 0
    assert seen["lora_layers"] == 2
    assert (seen["n_seeds"], seen["soup"]) == (2, True)
    assert seen["ensemble"] == [{"base_model": "all-mpnet-base-v2", "lora_layers": 2,
                                 "learning_rate": 0.001, "epochs": 2}]
    with pytest.raises(SystemExit):
        main(["train", "rated.csv", "-o", "m", "--ensemble", "all-mpnet-base-v2,lora_layers"])


def test_ablation_report_on_a_small_synthetic_set(tmp_path: Path) -> None:
    from hybrid_sim.apps.ablation import ablation_report

    rng = np.random.default_rng(0)
    a, b, y = zip(*TINY_PAIRS)
    frame = pd.DataFrame({"sentence_1": a * 3, "sentence_2": b * 3,
                          "human_similarity": np.clip(np.array(y * 3) + rng.normal(0, 5, 36), 0, 100)})
    out = tmp_path / "report"
    report = ablation_report(frame, out, folds=3, epochs=1, show_progress=False,
                             params={"min_child_samples": 3, "n_estimators": 20})
    assert {p.name for p in out.iterdir()} == {"report.md", "report.html", "ablation.json",
                                               "mae_by_variant.png", "importance.png"}
    text = (out / "report.md").read_text()
    for group in ("bow", "fuzzy", "negation", "embedding"):
        assert f"without {group}" in text and f"{group} alone" in text
    assert set(report["importance"]["group"]) == {"bow", "fuzzy", "negation", "embedding"}
    assert "Embedding settings ablated: base_model=all-MiniLM-L6-v2" in text
    assert "out-of-fold cosines: fine-tuned in this run" in text
    again = ablation_report(frame, out, folds=3, epochs=1, show_progress=False, overwrite=True,
                            params={"min_child_samples": 3, "n_estimators": 20})
    assert "out-of-fold cosines: reused from the cache" in again["markdown"]


def test_cluster_groups_items_across_questionnaires(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("I feel sad\nI have trouble sleeping\n")
    (tmp_path / "b.txt").write_text("Felt sad and down\nDo you smoke cigarettes?\n")
    out = tmp_path / "c.csv"
    assert main(["cluster", str(tmp_path / "a.txt"), str(tmp_path / "b.txt"), "-o", str(out),
                 "--threshold", "55", "--quiet"]) == 0
    got = pd.read_csv(out)
    assert list(got.columns) == ["source", "id", "item", "cluster", "label"]
    assert got["source"].tolist() == ["a.txt", "a.txt", "b.txt", "b.txt"]
    by_item = dict(zip(got["item"], got["cluster"]))
    assert by_item["I feel sad"] == by_item["Felt sad and down"]
    assert by_item["Do you smoke cigarettes?"] != by_item["I feel sad"]
    for _, group in got.groupby("cluster"):
        assert group["label"].iloc[0] in set(group["item"])  # labelled by one of its own items


def test_cluster_threshold_bounds_the_mean_similarity_within_clusters() -> None:
    import hybrid_sim
    from hybrid_sim.apps.match import similarity_matrix

    items = ["I feel sad", "Felt down", "Feeling hopeless", "I sleep badly", "Trouble sleeping",
             "Do you smoke?", "How often do you drink alcohol?"]
    scores = similarity_matrix(items, items)
    counts = []
    for threshold in (30, 50, 70, 90):
        table = hybrid_sim.cluster(items, threshold=threshold)
        counts.append(table["cluster"].nunique())
        for _, group in table.groupby("cluster"):
            members = [items.index(t) for t in group["item"]]
            if len(members) > 1:
                # average linkage: each pair joins at one merge, every merge at a mean >= threshold
                inner = scores[np.ix_(members, members)][~np.eye(len(members), dtype=bool)]
                assert inner.mean() >= threshold - 1e-9
    assert counts == sorted(counts)  # a higher threshold never merges more


@pytest.mark.slow
def test_train_says_which_fold_it_is_on_and_when_it_reuses_a_cached_cross_fit(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    src = tmp_path / "rated.csv"
    synthetic_rated().to_csv(src, index=False)
    argv = ["train", str(src), "-o", str(tmp_path / "m"), "--groups", "embedding", "--epochs", "1",
            "--cv", "2", "--no-base-cosine", "--overwrite"]
    with caplog.at_level(logging.INFO, logger="hybrid_sim"):
        assert main(argv) == 0
        first = [r.getMessage() for r in caplog.records]
        caplog.clear()
        assert main(argv) == 0
        second = [r.getMessage() for r in caplog.records]
    assert [m for m in first if "fold" in m] == [m for m in first if m.startswith("cross-fitting: fold")]
    assert any(m.startswith("cross-fitting: fold 2 of 2") for m in first)
    assert any("reusing the cached result" in m for m in second)
    assert not any("fold 1 of 2" in m for m in second)
