"""ONNX Runtime inference for a sentence encoder: the same embeddings for less CPU time.

On the 2-core machine ONNX Runtime encoded MiniLM at 0.8-1.1x the speed of PyTorch when
the cores were idle (``benchmarks/encoder_speed.py``, ``benchmarks/throughput.py``), with
embeddings equal to about 2e-7, so it is opt-in (``HYBRID_SIM_BACKEND=onnx``). The encoder
(with its fine-tuned delta merged in, pooling and normalisation) is exported once per
machine and model to ``$HYBRID_SIM_HOME/onnx/<key>.onnx``: the key is a digest of the base
weights, the delta and the export settings, so a different adapter never reuses a file.
An export is checked against PyTorch on probe sentences before it is used; if exporting
fails or disagrees, the encoder stays on PyTorch and says why once.

An ONNX file is a protobuf graph and weights, data rather than code.
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hybrid_sim.io import data_home
from hybrid_sim.outputs import atomic_path

PROBES = ("I feel sad", "Child bullies others and is often bullied by them at school.", "x")
TOLERANCE = 1e-4


def onnx_dir() -> Path:
    return data_home() / "onnx"


def available() -> bool:
    """True when onnxruntime (for running) is installed."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def export_key(base_sha256: str, delta: dict[str, Any], max_length: int) -> str:
    """A digest of everything the exported graph depends on."""
    import torch

    digest = hashlib.sha256(f"hybrid_sim.onnx/1|{base_sha256}|{max_length}|{torch.__version__}".encode())
    for name in sorted(delta):
        digest.update(name.encode())
        digest.update(delta[name].detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


class OnnxEncoder:
    """Run an exported encoder: tokenise with the model's tokenizer, batch by length."""

    def __init__(self, path: Path, tokenizer: Any, max_length: int) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.path = path

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        # longest first, as sentence-transformers does: less padding per batch
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out: np.ndarray | None = None
        for start in range(0, len(texts), batch_size):
            idx = order[start : start + batch_size]
            batch = self.tokenizer(
                [texts[i] for i in idx], padding=True, truncation=True,
                max_length=self.max_length, return_tensors="np",
            )
            vectors = self.session.run(None, {
                "input_ids": batch["input_ids"].astype(np.int64),
                "attention_mask": batch["attention_mask"].astype(np.int64),
            })[0]
            if out is None:
                out = np.empty((len(texts), vectors.shape[1]), dtype=np.float32)
            out[idx] = vectors
        return out if out is not None else np.zeros((0, 0), dtype=np.float32)


def _export(model: Any, path: Path) -> None:
    """Write the sentence-transformers pipeline (L2-normalised output) as one ONNX file."""
    import torch

    class Pipeline(torch.nn.Module):
        def __init__(self, st: Any) -> None:
            super().__init__()
            self.st = st

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            out = self.st({"input_ids": input_ids, "attention_mask": attention_mask})
            return torch.nn.functional.normalize(out["sentence_embedding"], dim=-1)

    sample = model.tokenizer(list(PROBES), padding=True, return_tensors="pt")
    batch, length = torch.export.Dim("batch"), torch.export.Dim("length")
    exporter_log = logging.getLogger("torch.onnx")
    level = exporter_log.level
    exporter_log.setLevel(logging.ERROR)  # it notes every torchvision op it skips
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Pipeline(model).eval(), (sample["input_ids"], sample["attention_mask"]), str(path),
            input_names=["input_ids", "attention_mask"], output_names=["sentence_vector"],
            dynamic_shapes={"input_ids": {0: batch, 1: length}, "attention_mask": {0: batch, 1: length}},
            dynamo=True, external_data=False, verbose=False,
        )
    exporter_log.setLevel(level)


def load_or_export(model: Any, key: str, reference: np.ndarray) -> OnnxEncoder:
    """The cached export for ``key``, made now if missing; checked against ``reference``
    (the PyTorch embeddings of ``PROBES``). Raises RuntimeError when it disagrees."""
    path = onnx_dir() / f"{key}.onnx"
    if not path.is_file():
        with atomic_path(path) as tmp:
            _export(model, tmp)
    try:
        runner = OnnxEncoder(path, model.tokenizer, int(model.max_seq_length))
        got = runner.encode(list(PROBES))
    except Exception as exc:  # onnxruntime raises its own types for a damaged file
        path.unlink(missing_ok=True)
        raise RuntimeError(f"{path} cannot be run: {exc}") from exc
    error = float(np.abs(got - reference).max()) if got.shape == reference.shape else np.inf
    if error > TOLERANCE:
        path.unlink(missing_ok=True)
        raise RuntimeError(f"the ONNX export differs from PyTorch by {error:.2e}")
    return runner
