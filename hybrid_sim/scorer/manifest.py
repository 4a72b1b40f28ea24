"""A model folder's ``manifest.json``: its schema, and a seal over its own content.

The manifest says how to rebuild a model: which feature groups with which settings, which
features the stacker reads, which base models. An edited manifest could make a model
give other scores silently, point it at a folder outside the model or at a model hub,
or crash the loader, so loading checks it first:

- the schema: known keys only, each of the right type and range (the table below);
- the seal: ``manifest_sha256``, the sha256 of the manifest's canonical JSON without
  that key, written at save time. Any edit that does not recompute it is refused.

Format ``hybrid_sim.model/1`` (no seal) is read only by :func:`upgrade_manifest`, which
checks it against the same schema and seals it as ``hybrid_sim.model/2``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable
from typing import Any

FORMAT = "hybrid_sim.model/2"
# the multilingual encoders a manifest may name (hybrid_sim/encoders/e5.py)
MULTILINGUAL_BASES = ("multilingual-e5-small", "intfloat/multilingual-e5-small")
OLD_FORMATS = ("hybrid_sim.model/1",)
SEAL = "manifest_sha256"
_HEX64 = re.compile(r"[0-9a-f]{64}")


class ManifestError(ValueError):
    """The manifest breaks its schema or its seal; the message says where."""


def canonical_sha256(manifest: dict[str, Any]) -> str:
    """sha256 of the manifest's canonical JSON (sorted keys, no spaces), seal left out.

    >>> canonical_sha256({"b": 1, "a": [1.5]}) == canonical_sha256({"a": [1.5], "b": 1})
    True
    """
    body = {k: v for k, v in manifest.items() if k != SEAL}
    # NaN is allowed: a metric of a degenerate CV fold (Pearson of a constant) is NaN
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def seal(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest with its seal added (or renewed)."""
    return {**manifest, SEAL: canonical_sha256(manifest)}


# -- the schema: one checker per key ----------------------------------------------------

def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _str_list(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _is_float(v: Any) -> bool:
    """A number, NaN included (metrics of degenerate folds)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _scalars(v: Any) -> bool:
    return isinstance(v, dict) and all(
        isinstance(k, str) and (x is None or isinstance(x, (str, bool)) or _is_float(x))
        for k, x in v.items())


def _selection(v: Any) -> bool:
    return isinstance(v, list) and all(
        isinstance(s, dict) and set(s) == {"groups", "mae"} and _str_list(s["groups"])
        and _is_float(s["mae"]) for s in v)


def _files(v: Any) -> bool:
    return isinstance(v, dict) and all(
        isinstance(k, str) and isinstance(h, str) and _HEX64.fullmatch(h) for k, h in v.items())


def _groups(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(
        isinstance(g, dict) and set(g) == {"group", "params", "state"}
        and isinstance(g["group"], str) and isinstance(g["params"], dict)
        and isinstance(g["state"], dict) for g in v)


# key -> (required, check, what it must be)
SCHEMA: dict[str, tuple[bool, Callable[[Any], bool], str]] = {
    "format": (True, lambda v: v == FORMAT, f"the string {FORMAT!r}"),
    "created": (True, lambda v: isinstance(v, str), "a date string"),
    "versions": (True, lambda v: isinstance(v, dict) and all(
        x is None or isinstance(x, str) for x in v.values()), "a mapping of package versions"),
    "feature_names": (True, lambda v: _str_list(v) and bool(v), "a non-empty list of names"),
    "stacker_features": (True, lambda v: _str_list(v) and bool(v), "a non-empty list of names"),
    "group_selection": (False, _selection, "a list of {groups, mae} steps"),
    "groups": (True, _groups, "a non-empty list of {group, params, state}"),
    "scorer_params": (True, lambda v: isinstance(v, dict), "a mapping"),
    "cv_metrics": (False, _scalars, "a mapping of numbers"),
    "training": (False, lambda v: isinstance(v, dict), "a mapping"),
    "files": (True, _files, "a mapping of file names to sha256 digests"),
    SEAL: (True, lambda v: isinstance(v, str) and bool(_HEX64.fullmatch(v)), "a sha256 digest"),
}

# HybridScorer's settings a manifest may hold, with their checks
SCORER_PARAMS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "params": (lambda v: v is None or _scalars(v), "null or a mapping of LightGBM settings"),
    "cv": (lambda v: _is_int(v) and v >= 2, "a whole number of at least 2"),
    "seed": (_is_int, "a whole number"),
    "role_reversal_cap": (lambda v: v is None or (_is_number(v) and 0 <= v <= 100),
                     "null or a number in 0-100"),
    "select_groups": (lambda v: isinstance(v, bool), "true or false"),
    "stacker": (lambda v: v in ("lightgbm", "monotone"), "'lightgbm' or 'monotone'"),
    "multilingual": (lambda v: v is None or (isinstance(v, str) and v.lower() in MULTILINGUAL_BASES),
                     f"null or one of {MULTILINGUAL_BASES}"),
}


def check_manifest(manifest: Any, where: str, sealed: bool = True) -> dict[str, Any]:
    """Check ``manifest`` against :data:`SCHEMA` (and its seal); raise :class:`ManifestError`.

    ``where`` names the file in messages. Group settings are checked by the loader, which
    knows each group's parameters.
    """
    if not isinstance(manifest, dict):
        raise ManifestError(f"{where}: expected a JSON object, got a {type(manifest).__name__}")
    keys = dict(SCHEMA)
    if not sealed:
        keys.pop(SEAL)
        keys["format"] = (True, lambda v: v in OLD_FORMATS, f"one of {OLD_FORMATS}")
    unknown = sorted(set(manifest) - set(keys))
    if unknown:
        raise ManifestError(f"{where}: unknown key(s) {unknown}")
    for key, (required, check, what) in keys.items():
        if key not in manifest:
            if required:
                raise ManifestError(f"{where}: {key!r} is missing")
            continue
        if not check(manifest[key]):
            raise ManifestError(f"{where}: {key!r} must be {what}")
    if sealed and manifest[SEAL] != canonical_sha256(manifest):
        raise ManifestError(f"{where} has been edited or damaged: its content does not match its "
                            f"{SEAL}")
    _check_scorer_params(manifest["scorer_params"], where)
    names, stacker = manifest["feature_names"], manifest["stacker_features"]
    if not set(stacker) <= set(names) or len(set(stacker)) != len(stacker):
        raise ManifestError(f"{where}: 'stacker_features' must be distinct names from 'feature_names'")
    for name in manifest["files"]:
        parts = name.replace("\\", "/").split("/")
        if name.startswith("/") or ".." in parts or name == "manifest.json":
            raise ManifestError(f"{where}: 'files' lists {name!r}, which is not a file of the folder")
    return manifest


def _check_scorer_params(params: dict[str, Any], where: str) -> None:
    unknown = sorted(set(params) - set(SCORER_PARAMS))
    if unknown:
        raise ManifestError(f"{where}: 'scorer_params' has unknown key(s) {unknown}")
    for key, (check, what) in SCORER_PARAMS.items():
        if key in params and not check(params[key]):
            raise ManifestError(f"{where}: scorer_params {key!r} must be {what}")


def upgrade_manifest(manifest: Any, where: str) -> dict[str, Any]:
    """A ``hybrid_sim.model/1`` manifest checked against the schema and sealed as the current
    format (the files it lists, and so the scores, are unchanged)."""
    if isinstance(manifest, dict) and "stacker_features" not in manifest:
        # models saved before group selection fed every feature to the stacker
        manifest = {**manifest, "stacker_features": manifest.get("feature_names")}
    params = manifest.get("scorer_params") if isinstance(manifest, dict) else None
    if isinstance(params, dict) and "contrast_cap" in params:
        # format 1 capped role reversals and antonyms; the cap now reads role reversal only
        params = {("role_reversal_cap" if k == "contrast_cap" else k): v for k, v in params.items()}
        manifest = {**manifest, "scorer_params": params}
    check_manifest(manifest, where, sealed=False)
    body = {k: v for k, v in manifest.items() if k != SEAL}
    body["format"] = FORMAT
    sealed = seal(body)
    return check_manifest(sealed, where)
