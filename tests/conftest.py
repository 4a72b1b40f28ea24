"""Shared fixtures. Nothing here reaches the network: HF_HUB_OFFLINE is forced on."""

from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path

import pandas as pd
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# an empty cross-fit cache per run: every test that fine-tunes really fine-tunes
os.environ["HYBRID_SIM_HOME"] = tempfile.mkdtemp(prefix="hybrid_sim_test_home_")

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("HYBRID_SIM_DATA", ROOT.parent / "shared" / "data" / "doxa_train.csv"))

# Hand-written pairs with a rough human-like rating, for tests that train something.
TINY_PAIRS = [
    ("I feel sad", "I feel down", 85),
    ("I feel sad", "I feel unhappy", 80),
    ("Felt hopeless?", "Feeling down, depressed, or hopeless?", 75),
    ("I worry a lot", "I feel nervous and on edge", 60),
    ("I have trouble sleeping", "I sleep very deeply", 5),
    ("Child bullies others", "Child is often bullied by others", 10),
    ("I enjoy my hobbies", "I lost interest in things I used to enjoy", 40),
    ("I feel tired all the time", "I have little energy", 70),
    ("I like going to parties", "I have thoughts of hurting myself", 0),
    ("Do you drink alcohol?", "How often do you feel lonely?", 0),
    ("I often feel lonely", "I rarely feel lonely", 15),
    ("I can concentrate well", "I have difficulty concentrating", 20),
]


def synthetic_rated(n: int = 120, seed: int = 0) -> pd.DataFrame:
    """``n`` rated pairs written from templates: same feeling ~70, different ~5 (plus noise).

    Enough rows that differ for the default stacker (which needs 80) to learn something.
    """
    import random

    feelings = ["sad", "tired", "worried", "lonely", "angry", "hopeless", "nervous", "restless"]
    frames = ["I feel {}", "I often feel {}", "Do you feel {}?", "Felt {} in the past week",
              "How often are you {}?"]
    rng = random.Random(seed)
    rows: list[tuple[str, str, int]] = []
    while len(rows) < n:
        f1, f2 = rng.choice(feelings), rng.choice(feelings)
        a, b = rng.choice(frames).format(f1), rng.choice(frames).format(f2)
        if a != b:
            rows.append((a, b, (70 if f1 == f2 else 5) + rng.randint(0, 10)))
    return pd.DataFrame(rows, columns=["sentence_1", "sentence_2", "human_similarity"])


@pytest.fixture
def tiny_frame() -> pd.DataFrame:
    a, b, y = zip(*TINY_PAIRS)
    return pd.DataFrame({"sentence_1": a, "sentence_2": b, "human_similarity": y})


@pytest.fixture
def golden_flags() -> pd.DataFrame:
    return pd.read_csv(ROOT / "tests" / "data" / "golden_flags.csv")


@pytest.fixture
def train_data() -> pd.DataFrame:
    if not DATA.exists():
        pytest.skip(f"training data not found at {DATA}")
    return pd.read_csv(DATA)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open a non-local connection fails the test."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> object:
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and host not in ("127.0.0.1", "::1", "localhost") and not (
            self.family == socket.AF_UNIX
        ):
            raise AssertionError(f"test tried to open a network connection to {address!r}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
