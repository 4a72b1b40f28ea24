"""Fine-tuning an encoder on rated pairs: a plain, seeded PyTorch loop.

sentence-transformers' own loss modules drive it: on two CPU cores it is deterministic and
needs neither `datasets` nor `accelerate`. With LoRA in the top blocks only, the frozen
blocks below run once per distinct sentence (:mod:`hybrid_sim.encoders.frozen_prefix`).

>>> layer_index("encoder.layer.5.attention.self.query.weight")
['5']
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

LOSSES = ("cosine", "cosent", "angle")


def layer_index(name: str) -> list[str]:
    """The transformer block number in a parameter name ("...layer.5.attention..." -> ["5"])."""
    parts = name.split(".")
    return [parts[i + 1] for i, p in enumerate(parts[:-1]) if p == "layer" and parts[i + 1].isdigit()]


def warmup_linear_schedule(optimiser: Any, total: int, warmup_ratio: float = 0.1) -> Any:
    """Learning rate rising linearly over the first ``warmup_ratio`` of ``total`` steps,
    then falling linearly to zero (the schedule sentence-transformers' trainer uses)."""
    import torch

    warmup = max(1, int(total * warmup_ratio))
    return torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / (total - warmup + 1)))
    )


def _loss_module(model: Any, loss: str) -> Any:
    from sentence_transformers.sentence_transformer import losses

    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    return {"cosine": losses.CosineSimilarityLoss, "cosent": losses.CoSENTLoss,
            "angle": losses.AnglELoss}[loss](model)


def _batch_loss(model: Any, loss_fn: Any, lora_layers: int | None, left: Sequence[str],
                right: Sequence[str]) -> Callable[[np.ndarray, Any], Any]:
    """The loss of a batch of row indices: through the whole model, or (LoRA in the top
    blocks only) from the frozen blocks' cached output, each distinct sentence once."""
    import torch

    prefix = None
    if lora_layers is not None:
        from hybrid_sim.encoders.frozen_prefix import FrozenPrefix, PrefixTooLarge, transformer_blocks

        distinct = list(dict.fromkeys([*left, *right]))
        row = {t: i for i, t in enumerate(distinct)}
        try:
            prefix = FrozenPrefix(model, distinct, len(transformer_blocks(model)) - lora_layers)
        except PrefixTooLarge as exc:
            # the same parameters train either way; only slower
            warnings.warn(f"{exc}: fine-tuning through the whole model instead", RuntimeWarning,
                          stacklevel=3)
    # sentence-transformers 6 renamed tokenize to preprocess
    prepare = getattr(model, "preprocess", None) or model.tokenize

    def batch_loss(idx: np.ndarray, target: Any) -> Any:
        if prefix is None:
            features = [prepare([left[i] for i in idx]), prepare([right[i] for i in idx])]
            return loss_fn(features, target)
        rows = np.array([[row[left[i]], row[right[i]]] for i in idx])
        used, inverse = np.unique(rows, return_inverse=True)
        emb = prefix.embed(used)[torch.as_tensor(inverse.reshape(rows.shape))]
        return loss_fn.compute_loss_from_embeddings([emb[:, 0], emb[:, 1]], target)

    return batch_loss


def train_pairs(
    model: Any,
    trainable: set[str],
    left: Sequence[str],
    right: Sequence[str],
    labels: Sequence[float] | np.ndarray,
    *,
    lora_layers: int | None = None,
    epochs: int = 4,
    learning_rate: float = 2e-5,
    batch_size: int = 16,
    loss: str = "cosine",
    warmup_ratio: float = 0.1,
    seed: int = 0,
    description: str = "fine-tune",
    show_progress: bool = True,
) -> None:
    """Train the parameters named in ``trainable`` of a SentenceTransformer ``model`` in place,
    on pairs with similarity labels in [0, 1]; every parameter is frozen again at the end.
    ``seed`` orders the batches; the caller seeds torch (dropout) before building the model."""
    import torch
    from tqdm.auto import tqdm

    loss_fn = _loss_module(model, loss)
    for name, param in model.named_parameters():
        param.requires_grad = name in trainable
    n = len(left)
    total = max(1, -(-n // batch_size)) * epochs
    optimiser = torch.optim.AdamW([p for n_, p in model.named_parameters() if n_ in trainable],
                                  lr=learning_rate, weight_decay=0.01)
    scheduler = warmup_linear_schedule(optimiser, total, warmup_ratio)
    target = torch.tensor(np.asarray(labels, dtype=np.float32))
    rng = np.random.default_rng(seed)
    batch_loss = _batch_loss(model, loss_fn, lora_layers, left, right)
    model.train()
    bar = tqdm(total=total, desc=description, disable=not show_progress)
    try:
        for _ in range(epochs):
            order = rng.permutation(n)
            for start in range(0, n, batch_size):
                idx = order[start : start + batch_size]
                value = batch_loss(idx, target[idx])
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
