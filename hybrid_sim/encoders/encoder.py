"""The sentence encoder: a sentence-transformers base model plus a small fine-tuned delta.

The delta is either a LoRA adapter (peft), the top transformer layers, or (for comparison
only, since it is as large as the base) every weight; it is saved by
:mod:`hybrid_sim.encoders.adapters` and trained by :mod:`hybrid_sim.encoders.training`.
"""

from __future__ import annotations

import os
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from hybrid_sim.defaults import DEFAULT_BASE
from hybrid_sim.encoders.adapters import apply_adapter, read_adapter_config, soup_into, write_adapter
from hybrid_sim.encoders.bases import base_fingerprint, resolve_base
from hybrid_sim.encoders.runtime import encode_workers, one_intra_op_thread, seed_everything
from hybrid_sim.encoders.training import LOSSES, layer_index, train_pairs

METHODS = ("lora", "top_layers", "full", "none")
BACKENDS = ("torch", "onnx", "auto")
# PyTorch is the default: on the 2-core machine ONNX Runtime was at best 1.1x faster
# (benchmarks/encoder_speed.py, throughput.py), which does not repay a 20-40 s export per
# model on first use. "auto" exports (once, cached on disk) for a job with at least this many new texts,
# or uses an export of this model that is already cached.
ONNX_MIN_TEXTS = 5_000
# texts per task of the parallel encoder: a few batches, so that workers share the load
# evenly while each task still sorts its texts by length to pad little
_CHUNK_BATCHES = 4


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
        # frozen blocks below once per distinct sentence (encoders/frozen_prefix.py)
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
        blocks = sorted({int(i) for name in linear for i in layer_index(name)})
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
            layers = sorted({int(m) for n in names for m in layer_index(n)})
            keep = {str(i) for i in layers[-self.top_layers:]}
            return [n for n in names if any(i in keep for i in layer_index(n))]
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
        with (one_intra_op_thread(), ThreadPoolExecutor(workers) as pool,
              tqdm(total=len(texts), desc="encode", disable=not show_progress) as bar):
            for idx, part in zip(chunks, pool.map(lambda idx: run([texts[i] for i in idx]), chunks)):
                out[idx] = part
                bar.update(len(idx))
        return out

    def _onnx_key(self) -> str:
        from hybrid_sim.encoders import onnx as onnx_backend

        if self._onnx_key_memo is None:
            state = dict(self.model.named_parameters())
            delta = {n: state[n] for n in self.trainable_names()} if self.method != "none" else {}
            self._onnx_key_memo = onnx_backend.export_key(
                self.fingerprint, delta, int(self.model.max_seq_length))
        return self._onnx_key_memo

    def _onnx_runner(self, n_new: int) -> Any:
        """The ONNX Runtime encoder to use for ``n_new`` texts, or None for PyTorch."""
        from hybrid_sim.encoders import onnx as onnx_backend

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
        """Fine-tune on pairs with similarity labels in [0, 1]; returns self
        (the loop: :func:`hybrid_sim.encoders.training.train_pairs`)."""
        if self.method == "none":
            raise ValueError("method='none' has nothing to fine-tune")
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
        seed_everything(seed)
        self._merge_lora(False)
        # an export of the old weights is stale
        self._onnx, self._onnx_failed, self._onnx_key_memo = None, False, None
        train_pairs(
            self.model, set(self.trainable_names()), left, right, labels,
            lora_layers=self.lora_layers if self.method == "lora" else None, epochs=epochs,
            learning_rate=learning_rate, batch_size=batch_size, loss=loss,
            warmup_ratio=warmup_ratio, seed=seed, description=f"fine-tune {self.method}",
            show_progress=show_progress,
        )
        self._cache.clear()
        return self

    @classmethod
    def soup(cls, encoders: Sequence[Encoder]) -> Encoder:
        """One LoRA encoder whose weights are the mean of ``encoders``' (a "model soup"):
        it encodes at the cost of one model, where averaging cosines costs n.

        >>> one = Encoder(method="lora")
        >>> Encoder.soup([one, one]).lora_r
        32
        """
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
        soup_into(out.model, [e.model for e in encoders])
        return out

    # -- persistence ----------------------------------------------------------------
    def save(self, folder: str | Path) -> list[Path]:
        """Write the delta (safetensors) and its config (JSON); return the files written."""
        config = {
            "base_model": self.base_model,
            "base_sha256": self.fingerprint,
            "method": self.method,
            "lora_r": self.lora_r,
            "lora_dropout": self.lora_dropout,
            "lora_layers": self.lora_layers,
            "top_layers": self.top_layers,
            "dimension": self.dimension,
        }
        state = dict(self.model.named_parameters()) if self.method != "none" else {}
        return write_adapter(folder, config, {n: state[n] for n in self.trainable_names()})

    @classmethod
    def load(cls, folder: str | Path, base_model: str | None = None) -> Encoder:
        """Rebuild an encoder saved by ``save``; the base model's hash must match.

        ``base_model`` overrides where the base is found (a folder or a name), never which
        base it must be.
        """
        config = read_adapter_config(folder)
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
            apply_adapter(encoder.model, folder, encoder.trainable_names())
        encoder.model.eval()
        return encoder
