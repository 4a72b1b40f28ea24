"""Argument types of the command line: each refuses a bad value with a one-line message.

>>> POSITIVE("3")
3
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import Any


def ensemble_entry(spec: str) -> dict[str, Any]:
    """``all-mpnet-base-v2,lora_layers=2,learning_rate=1e-3`` -> a dict of settings.

    >>> ensemble_entry("all-mpnet-base-v2,lora_layers=2,learning_rate=1e-3")
    {'base_model': 'all-mpnet-base-v2', 'lora_layers': 2, 'learning_rate': 0.001}
    """
    base, *pairs = spec.split(",")
    entry: dict[str, Any] = {"base_model": base}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise argparse.ArgumentTypeError(f"{pair!r} in {spec!r} is not KEY=VALUE")
        for cast in (int, float):
            try:
                entry[key] = cast(value)
                break
            except ValueError:
                continue
        else:
            entry[key] = value
    return entry


def _number(cast: Callable[[str], Any], low: float, what: str) -> Callable[[str], Any]:
    """An argparse type: ``cast`` the text and refuse NaN, infinities and values below ``low``."""
    def parse(text: str) -> Any:
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not math.isfinite(value) or value < low:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
        return value
    return parse


POSITIVE = _number(int, 1, "a whole number of at least 1")
FOLDS = _number(int, 2, "a whole number of folds, at least 2")
SCORE = _number(float, 0, "a score between 0 and 100")
COUNT = _number(int, 0, "a whole number of at least 0")
