"""Runtime settings of the encoders: thread counts and seeds.

>>> encode_workers() >= 1
True
"""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

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
def one_intra_op_thread() -> Iterator[None]:
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


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
