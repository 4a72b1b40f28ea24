"""Reading model folders: every check runs before any file's content is used.

Loading checks the manifest's schema and seal (:mod:`hybrid_sim.scorer.manifest`), every
file's sha256, the group settings, and the LightGBM text
(:mod:`hybrid_sim.stacker.lightgbm_text`) before LightGBM reads it; every failure is a
:class:`~hybrid_sim.scorer.saving.ModelFolderError` naming the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sklearn.base import clone
from sklearn.pipeline import FeatureUnion

from hybrid_sim.encoders.bases import known_bases
from hybrid_sim.features import feature_class
from hybrid_sim.io import sha256_file
from hybrid_sim.outputs import atomic_path
from hybrid_sim.scorer.estimator import HybridScorer
from hybrid_sim.scorer.manifest import FORMAT, OLD_FORMATS, ManifestError, check_manifest, upgrade_manifest
from hybrid_sim.scorer.multilingual import MultilingualPath
from hybrid_sim.scorer.saving import (
    EMBEDDING_DIR,
    MANIFEST,
    MONOTONE,
    MULTILINGUAL,
    STACKER,
    ModelFolderError,
)
from hybrid_sim.stacker.lightgbm_text import check_lightgbm_text
from hybrid_sim.stacker.monotone import MonotoneStacker


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
    scorer.multilingual_ = _load_multilingual(folder, manifest)
    return scorer


def _load_multilingual(folder: Path, manifest: dict[str, Any]) -> MultilingualPath | None:
    """The multilingual path, when the model has one; its encoder loads on first use."""
    if manifest["scorer_params"].get("multilingual") is None:
        return None
    path = folder / MULTILINGUAL
    if MULTILINGUAL not in manifest["files"]:
        raise ModelFolderError(f"{folder / MANIFEST} names a multilingual encoder but does not list "
                               f"{MULTILINGUAL}")
    try:
        return MultilingualPath.from_state(_json(path))
    except (ValueError, TypeError) as exc:
        raise ModelFolderError(f"{path} cannot be read as this model's multilingual path: {exc}") from None


def _load_stacker(folder: Path, kind: str, n_features: int) -> Any:
    """The fitted stacker from its file, checked before use; a clear error naming the file."""
    if kind == "monotone":
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
