"""Feature-ablation report: which feature group earns its keep, under grouped CV.

The expensive part, the out-of-fold fine-tuned cosines, is computed once; every variant
(full model, each group removed, each group alone) cross-validates only the LightGBM
stacker on column subsets of that one matrix, with the same folds the cosines used.
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hybrid_sim.defaults import DEFAULT_BASE, DEFAULT_COLUMNS
from hybrid_sim.features import CLASSICAL_GROUPS, make_features
from hybrid_sim.model_selection import grouped_folds
from hybrid_sim.outputs import atomic_directory, check_folder_target
from hybrid_sim.stacker.stacking import (
    cv_predict,
    feature_groups,
    group_columns,
    make_regressor,
    median_baseline,
    regression_metrics,
)


@dataclass
class FeatureMatrix:
    """Every feature for every training row; tuned cosines are out-of-fold."""

    values: np.ndarray
    names: list[str]
    folds: list[tuple[np.ndarray, np.ndarray]]
    seconds: dict[str, float]
    # where the out-of-fold tuned cosines came from (the report says so)
    cross_fit: str = "none"

    def columns(self, groups: Sequence[str]) -> tuple[np.ndarray, list[str]]:
        keep = group_columns(self.names, groups)
        return self.values[:, keep], [self.names[i] for i in keep]

    @property
    def groups(self) -> list[str]:
        return feature_groups(self.names)


def cross_fitted_features(
    pairs: pd.DataFrame,
    y: np.ndarray,
    *,
    n_splits: int = 5,
    seed: int = 0,
    embedding: dict[str, Any] | None = None,
    tuned_oof: np.ndarray | None = None,
) -> FeatureMatrix:
    """Compute the classical groups and the embedding group once, cross-fitted by pair.

    ``embedding`` holds :class:`EmbeddingCosine` parameters; ``None`` leaves it out.
    ``tuned_oof`` reuses out-of-fold tuned cosines saved by an earlier run with the same
    folds (``benchmarks/embedding_cv.py`` writes them), instead of fine-tuning again.
    """
    from hybrid_sim.features.embedding import EmbeddingCosine

    left, right = pairs.iloc[:, 0].tolist(), pairs.iloc[:, 1].tolist()
    folds = grouped_folds(left, right, n_splits=n_splits, seed=seed)
    seconds = {}
    source = "none"
    start = time.perf_counter()
    classical = make_features(CLASSICAL_GROUPS)
    blocks = [classical.fit_transform(pairs)]
    names = [str(n) for n in classical.get_feature_names_out()]
    seconds["classical"] = time.perf_counter() - start
    if embedding is not None:
        start = time.perf_counter()
        emb = EmbeddingCosine(**{**embedding, "cv": n_splits, "seed": seed})
        base = EmbeddingCosine(**{**embedding, "method": "none"}).fit(pairs)
        columns = [base.transform(pairs)]
        names_emb = list(base.get_feature_names_out())
        if emb.method != "none":
            if tuned_oof is None:
                crossfit = emb.cross_fit(pairs, y)
                tuned_oof = crossfit.oof
                source = "reused from the cache" if crossfit.cached else "fine-tuned in this run"
            elif tuned_oof.shape != (len(y),):
                raise ValueError(f"tuned_oof has shape {tuned_oof.shape}, expected ({len(y)},)")
            else:
                source = "given (stored out-of-fold cosines)"
            columns.insert(0, np.asarray(tuned_oof, dtype=float)[:, None])
            names_emb.insert(0, "embedding__cosine_tuned")
        blocks.extend(columns)
        names.extend(str(n) for n in names_emb)
        seconds["embedding"] = time.perf_counter() - start
    return FeatureMatrix(np.column_stack(blocks), names, folds, seconds, source)


def ablation_table(matrix: FeatureMatrix, y: np.ndarray,
                   params: dict[str, Any] | None = None) -> pd.DataFrame:
    """Grouped-CV metrics of the full model, each group removed, each group alone."""
    groups = matrix.groups
    variants: list[tuple[str, str, list[str]]] = [("full model", "full", groups)]
    if len(groups) > 1:
        variants += [(f"without {g}", "removed", [h for h in groups if h != g]) for g in groups]
        variants += [(f"{g} alone", "alone", [g]) for g in groups]
    rows = [{"variant": "median (no features)", "kind": "baseline",
             **regression_metrics(y, median_baseline(y, matrix.folds))}]
    for label, kind, chosen in variants:
        start = time.perf_counter()
        values, names = matrix.columns(chosen)
        pred = cv_predict(values, y, matrix.folds, names, params)
        rows.append({"variant": label, "kind": kind, "groups": ",".join(chosen),
                     **regression_metrics(y, pred),
                     "stacker_seconds": round(time.perf_counter() - start, 2)})
    return pd.DataFrame(rows)


def importance_table(matrix: FeatureMatrix, y: np.ndarray,
                     params: dict[str, Any] | None = None) -> pd.DataFrame:
    """Gain and mean |contribution| per feature, from a stacker fitted on all rows."""
    model = make_regressor(params, matrix.names).fit(matrix.values, y)
    contrib = model.booster_.predict(matrix.values, pred_contrib=True)[:, :-1]
    return pd.DataFrame({
        "feature": matrix.names,
        "group": [n.split("__")[0] for n in matrix.names],
        "gain": model.booster_.feature_importance("gain"),
        "mean_abs_contribution": np.abs(contrib).mean(axis=0),
    }).sort_values("gain", ascending=False, ignore_index=True)


def _plots(table: pd.DataFrame, importance: pd.DataFrame, folder: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants = table[table["kind"] != "baseline"]
    full = float(table.loc[table["kind"] == "full", "mae"].iloc[0])
    median = float(table.loc[table["kind"] == "baseline", "mae"].iloc[0])
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(variants) + 1.5))
    ax.barh(variants["variant"], variants["mae"], color="#4c72b0")
    ax.axvline(full, color="black", linestyle="--", label=f"full model ({full:.2f})")
    ax.axvline(median, color="#c44e52", linestyle=":", label=f"median ({median:.2f})")
    ax.set_xlim(min(variants["mae"].min(), full) - 1, max(variants["mae"].max(), median) + 0.5)
    ax.set_xlabel("grouped-CV MAE (lower is better)")
    ax.invert_yaxis()
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(folder / "mae_by_variant.png", dpi=110)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(importance) + 1.5))
    ax.barh(importance["feature"], importance["mean_abs_contribution"], color="#55a868")
    ax.set_xlabel("mean |contribution| to the score (points)")
    ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(folder / "importance.png", dpi=110)
    plt.close(fig)


def _markdown(table: pd.DataFrame, importance: pd.DataFrame, meta: dict[str, Any]) -> str:
    cols = ["variant", "mae", "rmse", "pearson", "spearman"]
    lines = [
        "# Feature ablation",
        "",
        f"Data: {meta['data']} ({meta['n_rows']} rows, {meta['n_pairs']} distinct unordered "
        f"pairs). Grouped {meta['folds']}-fold CV by unordered pair; the tuned cosine is "
        "out-of-fold, computed once and shared by every variant.",
        "",
        "Embedding settings ablated: " + ", ".join(f"{k}={v}" for k, v in meta["embedding"].items()
                                                   if k != "show_progress")
        + f"; out-of-fold cosines: {meta['cross_fit']}.",
        "",
        "| " + " | ".join(cols) + " |",
        "|" + "---|" * len(cols),
    ]
    for row in table.itertuples():
        lines.append(f"| {row.variant} | {row.mae:.2f} | {row.rmse:.2f} | "
                     f"{row.pearson:.3f} | {row.spearman:.3f} |")
    lines += ["", "![MAE by variant](mae_by_variant.png)", "", "## Feature importance", "",
              "| feature | gain | mean abs contribution |", "|---|---|---|"]
    for row in importance.itertuples():
        lines.append(f"| {row.feature} | {row.gain:.0f} | {row.mean_abs_contribution:.2f} |")
    lines += ["", "![importance](importance.png)", "",
              f"Time: {', '.join(f'{k} {v:.0f}s' for k, v in meta['seconds'].items())}.", ""]
    return "\n".join(lines)


def _html(markdown_text: str, table: pd.DataFrame, importance: pd.DataFrame) -> str:
    return (
        "<!doctype html><meta charset='utf-8'><title>hybrid_sim feature ablation</title>"
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px}</style>"
        f"<h1>Feature ablation</h1><p>{html.escape(markdown_text.splitlines()[2])}</p>"
        + table.to_html(index=False, float_format=lambda v: f"{v:.3f}")
        + "<p><img src='mae_by_variant.png' alt='MAE by variant'></p><h2>Feature importance</h2>"
        + importance.to_html(index=False, float_format=lambda v: f"{v:.2f}")
        + "<p><img src='importance.png' alt='importance'></p>"
    )


REPORT_FILES = frozenset({"report.md", "report.html", "ablation.json", "mae_by_variant.png",
                          "importance.png"})
REPORT = "ablation report"


def is_report_folder(folder: Path) -> bool:
    """True for a folder holding an ablation report of ours and nothing else."""
    names = {p.name for p in folder.iterdir()}
    return "ablation.json" in names and names <= REPORT_FILES and not any(
        p.is_dir() for p in folder.iterdir())


def ablation_report(
    data: str | Path | pd.DataFrame,
    output: str | Path,
    *,
    columns: Sequence[str] = DEFAULT_COLUMNS,
    target: str = "human_similarity",
    folds: int = 5,
    epochs: int = 4,
    base_model: str = DEFAULT_BASE,
    method: str = "lora",
    seed: int = 0,
    show_progress: bool = True,
    params: dict[str, Any] | None = None,
    sep: str | None = None,
    encoding: str = "utf-8",
    overwrite: bool = False,
) -> dict[str, Any]:
    """Write report.md, report.html, ablation.json and two PNG charts into ``output``.

    Returns the tables and the markdown text. The folder appears whole or not at all;
    ``output`` must be new, empty or (with ``overwrite``) an ablation report, checked
    before any work.
    """
    from hybrid_sim.api import read_labelled

    check_folder_target(output, is_report_folder, REPORT, overwrite)
    pairs, y, info = read_labelled(data, columns, target, sep, encoding)
    embedding = {"base_model": base_model, "method": method, "epochs": epochs,
                 "show_progress": show_progress}
    matrix = cross_fitted_features(pairs, y, n_splits=folds, seed=seed, embedding=embedding)
    table = ablation_table(matrix, y, params)
    importance = importance_table(matrix, y, params)
    n_pairs = len({tuple(sorted(p)) for p in pairs.itertuples(index=False)})
    meta = {"data": info["data_name"], "n_rows": len(y), "n_pairs": n_pairs, "folds": folds,
            "seconds": matrix.seconds, "embedding": embedding, "cross_fit": matrix.cross_fit}
    markdown_text = _markdown(table, importance, meta)
    with atomic_directory(output, is_report_folder, REPORT, overwrite) as tmp:
        _plots(table, importance, tmp)
        (tmp / "report.md").write_text(markdown_text, encoding="utf-8")
        (tmp / "report.html").write_text(_html(markdown_text, table, importance), encoding="utf-8")
        payload = {"meta": meta, "variants": table.to_dict("records"),
                   "importance": importance.to_dict("records")}
        (tmp / "ablation.json").write_text(json.dumps(payload, indent=2, default=float))
    return {"variants": table, "importance": importance, "markdown": markdown_text}
