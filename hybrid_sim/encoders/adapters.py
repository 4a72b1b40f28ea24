"""An encoder's fine-tuned delta on disk (safetensors + a JSON config), and LoRA soups.

The config records the base model's identity and hash; loading a delta on top of a
different base fails with a clear message naming the file.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ADAPTER_WEIGHTS = "adapter.safetensors"
ADAPTER_CONFIG = "adapter.json"
FORMAT = "hybrid_sim.encoder/1"


def write_adapter(folder: str | Path, config: dict[str, Any], tensors: dict[str, Any]) -> list[Path]:
    """Write ``config`` (JSON) and, when there are any, ``tensors`` (safetensors) to ``folder``;
    return the files written."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = [folder / ADAPTER_CONFIG]
    (folder / ADAPTER_CONFIG).write_text(json.dumps({"format": FORMAT, **config}, indent=2) + "\n")
    if tensors:
        save_file({n: t.detach().contiguous() for n, t in tensors.items()}, str(folder / ADAPTER_WEIGHTS))
        (folder / ADAPTER_WEIGHTS).chmod(0o644)  # package data, readable by all
        written.append(folder / ADAPTER_WEIGHTS)
    return written


def read_adapter_config(folder: str | Path) -> dict[str, Any]:
    """The config ``write_adapter`` wrote; a clear error naming the file otherwise."""
    path = Path(folder) / ADAPTER_CONFIG
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} is missing") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ValueError(f"{path}: unknown format {getattr(config, 'get', lambda _: None)('format')!r}")
    return config


def apply_adapter(model: Any, folder: str | Path, expected: Sequence[str]) -> None:
    """Copy the tensors of ``folder``'s adapter into ``model``'s parameters; the names must be
    exactly ``expected`` and every shape must match."""
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(folder) / ADAPTER_WEIGHTS
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise ValueError(f"{path} cannot be read: {exc}") from None
    if set(tensors) != set(expected):
        raise ValueError(f"{path} does not fit this base model: "
                         f"{len(set(tensors) ^ set(expected))} tensor names differ")
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, tensor in tensors.items():
            if params[name].shape != tensor.shape:
                raise ValueError(f"{path}: {name} has the wrong shape")
            params[name].copy_(tensor)


def soup_into(target: Any, models: Sequence[Any]) -> None:
    """Set ``target``'s LoRA weights (rank n * r) to the mean of ``models``' rank-r deltas.

    The mean of n LoRA deltas (scaling alpha / r = 2 in each) is exactly one LoRA delta of
    rank n * r: the A matrices stacked, the B matrices side by side over n.
    """
    import torch

    params = [dict(m.named_parameters()) for m in models]
    with torch.no_grad():
        for name, param in target.named_parameters():
            if "lora_A" in name:
                param.copy_(torch.cat([q[name] for q in params], dim=0))
            elif "lora_B" in name:
                param.copy_(torch.cat([q[name] for q in params], dim=1) / len(models))
