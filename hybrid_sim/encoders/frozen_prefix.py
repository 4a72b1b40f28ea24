"""Fine-tuning only the top blocks: the frozen lower blocks run once per distinct sentence.

When LoRA adapts only the top N transformer blocks, everything below them is a fixed
function of the sentence. Questionnaire data repeat few sentences across many pairs (the
DOXA pairs use 128 distinct sentences for 2,351 rows), so the lower blocks' output is
computed once per distinct sentence, kept, and every training step runs the top blocks,
the pooling and the normalisation only. For all-mpnet-base-v2 with LoRA on 2 of its 12
blocks this turns hours of fine-tuning on 2 CPU cores into minutes.

The capture is architecture-neutral: a forward pre-hook on the first trained block records
the arguments the model itself passes to it (hidden states, attention mask, position bias
...) and stops the forward pass there.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import numpy as np


class _Stop(Exception):
    """Raised by the capture hook: nothing above the first trained block is needed."""


class PrefixTooLarge(MemoryError):
    """The kept block inputs of these texts would not fit ``FrozenPrefix.max_bytes``."""


def transformer_blocks(model: Any) -> Any:
    """The ModuleList of transformer blocks inside a SentenceTransformer's first module."""
    import torch

    auto = model[0].auto_model
    lists = [(name, module) for name, module in auto.named_modules()
             if isinstance(module, torch.nn.ModuleList) and name.split(".")[-1] == "layer"]
    if len(lists) != 1:
        raise ValueError(f"cannot find the transformer blocks of {type(auto).__name__}")
    return lists[0][1]


class FrozenPrefix:
    """The input of block ``first`` for each distinct text, and a forward from there.

    ``embed(rows)`` returns normalised sentence embeddings for the texts at those rows,
    with gradients flowing into the blocks from ``first`` on.
    """

    # hidden states (and MPNet's position bias) are kept for every distinct text
    max_bytes = 2 * 1024**3

    def __init__(self, model: Any, texts: Sequence[str], first: int, batch_size: int = 128) -> None:
        import torch

        self.model = model
        self.blocks = transformer_blocks(model)
        self.first = first
        prepare = getattr(model, "preprocess", None) or model.tokenize
        # pad every text to one length, plus one padding column, so that each chunk's
        # attention mask is materialised (a model may pass None when nothing is padded)
        # and the chunks' captured tensors can be stacked
        features = prepare(list(texts))
        width = features["attention_mask"].shape[1]
        config = model[0].auto_model.config
        # per text: hidden states, plus a per-head position bias in models that pass one
        per_text = 4 * (width + 1) * (config.hidden_size + config.num_attention_heads * (width + 1))
        if per_text * len(texts) > self.max_bytes:
            raise PrefixTooLarge(
                f"{len(texts):,} distinct texts of up to {width} tokens would keep about "
                f"{per_text * len(texts) / 1024**3:.1f} GiB of block inputs")
        if width < int(model.max_seq_length):
            features = _pad_one(features, model)
        captured: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

        def hook(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            captured.append((args, kwargs))
            raise _Stop

        handle = self.blocks[first].register_forward_pre_hook(hook, with_kwargs=True)
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                for start in range(0, len(texts), batch_size):
                    chunk = {k: v[start:start + batch_size] if _is_rows(v, len(texts)) else v
                             for k, v in features.items()}
                    with contextlib.suppress(_Stop):
                        model[0](chunk)
        finally:
            handle.remove()
            model.train(was_training)
        self.mask = features["attention_mask"]
        self.args, self.kwargs = _stack(captured)
        self.trim = self._trimming_is_exact()
        self._check_against_model(texts)

    def _check_against_model(self, texts: Sequence[str]) -> None:
        """Refuse an architecture whose output this shortcut does not reproduce (say, a
        final layer norm after the blocks): training would then fit something else."""
        import torch

        n = min(4, len(texts))
        rows = np.arange(n)
        expected = self.model.encode(list(texts[:n]), convert_to_tensor=True, normalize_embeddings=True)
        with torch.no_grad():
            was_training = self.model.training
            self.model.eval()
            try:
                got = torch.nn.functional.normalize(self.embed(rows), dim=-1)
            finally:
                self.model.train(was_training)
        if not torch.allclose(got, expected.to(got.dtype), atol=1e-4):
            raise ValueError(
                f"lora_layers cannot be used with {type(self.model[0].auto_model).__name__}: "
                "running its top blocks alone does not reproduce its embeddings; "
                "use lora_layers=None (LoRA in every block)"
            )

    def _trimming_is_exact(self) -> bool:
        """Whether cutting the shared padding off a batch leaves its embeddings unchanged.

        Every text was padded to the longest; a batch of short texts needs only its own
        longest length (the longest DOXA item has 47 tokens, the median 14). Which tensor
        dimensions are the sequence is read off their size, so the shortcut is checked
        once, not assumed.
        """
        import torch

        lengths = self.mask.sum(1)
        if int(lengths.min()) == self.mask.shape[1]:
            return False
        rows = np.argsort(lengths.numpy())[:4]
        with torch.no_grad():
            was_training = self.model.training
            self.model.eval()
            try:
                full = self.embed(rows, trim=False)
                cut = self.embed(rows, trim=True)
            finally:
                self.model.train(was_training)
        return bool(torch.allclose(full, cut, atol=1e-5))

    def embed(self, rows: np.ndarray, trim: bool | None = None) -> Any:
        import torch

        index = torch.as_tensor(rows, dtype=torch.long)
        n, width = self.mask.shape
        mask = self.mask[index]
        length = int(mask.sum(1).max()) if (self.trim if trim is None else trim) else width
        hidden, *args = (_take(a, index, n, width, length) for a in self.args)
        kwargs = {k: _take(v, index, n, width, length) for k, v in self.kwargs.items()}
        for block in self.blocks[self.first:]:
            out = block(hidden, *args, **kwargs)
            hidden = out[0] if isinstance(out, tuple) else out
        features: dict[str, Any] = {"token_embeddings": hidden, "attention_mask": mask[:, :length]}
        for module in list(self.model)[1:]:
            features = module(features)
        return features["sentence_embedding"]


def _pad_one(features: dict[str, Any], model: Any) -> dict[str, Any]:
    import torch

    width = features["attention_mask"].shape[1]
    n = features["attention_mask"].shape[0]
    pad_id = getattr(model.tokenizer, "pad_token_id", 0) or 0
    out = dict(features)
    for key, value in features.items():
        if isinstance(value, torch.Tensor) and value.dim() == 2 and value.shape == (n, width):
            fill = pad_id if key == "input_ids" else 0
            out[key] = torch.cat([value, torch.full((n, 1), fill, dtype=value.dtype)], dim=1)
    return out


def _is_rows(value: Any, n: int) -> bool:
    import torch

    return isinstance(value, torch.Tensor) and value.dim() >= 1 and value.shape[0] == n


def _stack(captured: list[tuple[tuple[Any, ...], dict[str, Any]]]) -> tuple[list[Any], dict[str, Any]]:
    """Join per-chunk captures: tensors with a row per text are concatenated, the rest kept."""
    import torch

    first_args, first_kwargs = captured[0]
    sizes = [args[0].shape[0] for args, _ in captured]

    def join(values: list[Any]) -> Any:
        head = values[0]
        if all(isinstance(v, torch.Tensor) and v.dim() >= 1 and v.shape[0] == s
               for v, s in zip(values, sizes)):
            return torch.cat(values, dim=0)
        if any((v is None) != (head is None) for v in values):
            raise RuntimeError("the model passed different kinds of arguments to its blocks per chunk")
        return head

    args = [join([c[0][i] for c in captured]) for i in range(len(first_args))]
    kwargs = {k: join([c[1][k] for c in captured]) for k in first_kwargs}
    return args, kwargs


def _take(value: Any, index: Any, n: int, width: int, length: int) -> Any:
    """The rows ``index`` of a captured tensor, cut to ``length`` along its sequence axes."""
    if not _is_rows(value, n):
        return value
    value = value[index]
    if length < width:
        # the hidden states' last axis is the model width, never the sequence
        last = value.dim() - 1 if value.dim() == 3 and value.is_floating_point() else value.dim()
        for axis in range(1, last):
            if value.shape[axis] == width:
                value = value.narrow(axis, 0, length)
    return value
