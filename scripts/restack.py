"""Refit a shipped model's stacker on its stored out-of-fold cosines, without fine-tuning again.

    python scripts/restack.py --variant default --stacker monotone --role-reversal-cap 20

The model's fine-tuned encoders stay as they are (they were trained on every row); the
stacker is selected and fitted exactly as ``hybrid-sim train`` would, on the out-of-fold
tuned cosines that ``benchmarks/embedding_cv.py`` stored for that configuration
(``benchmarks/results/oof_*.npy``, grouped 5-fold CV by pair, seed 0), so its grouped-CV
figures are honest. Use ``--output`` to write elsewhere than the package.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.pipeline import FeatureUnion

import hybrid_sim
from hybrid_sim.api import read_labelled, shipped_model_path
from hybrid_sim.features import CLASSICAL_GROUPS, make_features
from hybrid_sim.scorer.estimator import HybridScorer

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "doxa_train.csv"
DEV = ROOT.parent / "shared" / "data" / "mcelroy2020_child_dev.csv"
# the out-of-fold cosines of each shipped model's fine-tuning configuration (README, accuracy)
OOF = {
    "default": ["oof_lora_5e-4_1_distil-all-MiniLM-L6-v2+all-mpnet-base-v2.npy"],
    "accurate": ["oof_lora_5e-4_4.npy", "oof_lora_top2_1e-3_2_cosine_all-mpnet-base-v2.npy"],
}


def restack(variant: str, data: Path, output: Path, stacker: str,
            role_reversal_cap: float | None, multilingual: str | None = None) -> HybridScorer:
    """The shipped ``variant`` with its stacker refitted; saved to ``output``."""
    model = hybrid_sim.load(variant)
    pairs, y, info = read_labelled(data)
    embedding = dict(model.features_.transformer_list)["embedding"]
    classical = make_features(CLASSICAL_GROUPS).fit(pairs)
    tuned = np.mean([np.load(RESULTS / name, allow_pickle=False) for name in OOF[variant]], axis=0)
    emb_matrix = embedding.transform(pairs)
    emb_matrix[:, list(embedding.get_feature_names_out()).index("embedding__cosine_tuned")] = tuned
    matrix = np.column_stack([classical.transform(pairs), emb_matrix])
    union = FeatureUnion([*classical.transformer_list, ("embedding", embedding)],
                         verbose_feature_names_out=False)
    scorer = HybridScorer(features=clone(union), cv=5, seed=0, select_groups=True, stacker=stacker,
                          role_reversal_cap=role_reversal_cap, multilingual=multilingual)
    scorer.fit_stacker(pairs, y, matrix, union)
    scorer.save(output, overwrite=True, **info, **dev_figures(scorer), **multilingual_figures(scorer),
                stacker_refit={"script": "scripts/restack.py", "out_of_fold": OOF[variant]})
    return scorer


def dev_figures(scorer: HybridScorer) -> dict:
    """ROC AUC and Spearman on the new-questionnaire dev set, when it is there (recorded in
    the model card; never used for fitting)."""
    if not DEV.is_file():
        return {}
    from scipy.stats import spearmanr
    from sklearn.metrics import roc_auc_score

    dev = pd.read_csv(DEV)
    score = scorer.predict(dev[["sentence_1", "sentence_2"]].to_numpy(object))
    return {"new_questionnaires": {"data_name": DEV.name, "n_pairs": len(dev),
                                   "roc_auc": float(roc_auc_score(dev["same_construct"], score)),
                                   "spearman": float(spearmanr(dev["same_construct"], score)[0])}}


def multilingual_figures(scorer: HybridScorer) -> dict:
    """ROC AUC on the multilingual check (benchmarks/multilingual.py), for the model card."""
    from sklearn.metrics import roc_auc_score

    sys.path.insert(0, str(ROOT))
    from benchmarks.multilingual import ITEMS, pairs_of

    pairs = pairs_of(pd.read_csv(ITEMS))
    score = scorer.predict(pairs[["left", "right"]].to_numpy(object))
    cross = (pairs.lang_a != pairs.lang_b).to_numpy()
    return {"multilingual_check": {
        "data_name": ITEMS.name, "n_pairs": len(pairs), "languages": sorted(set(pairs.lang_a)),
        "roc_auc": float(roc_auc_score(pairs.same, score)),
        "roc_auc_cross_lingual": float(roc_auc_score(pairs.same[cross], score[cross]))}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=sorted(OOF), default="default")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--stacker", choices=["lightgbm", "monotone"], default="monotone")
    parser.add_argument("--role-reversal-cap", default="none", help="a score in 0-100, or none")
    parser.add_argument("--output", type=Path, help="default: the variant's folder in the package")
    parser.add_argument("--multilingual", default="multilingual-e5-small",
                        help="the multilingual path's encoder, or none (English only)")
    args = parser.parse_args()
    cap = None if args.role_reversal_cap.lower() == "none" else float(args.role_reversal_cap)
    output = args.output or shipped_model_path(args.variant)
    multilingual = None if args.multilingual.lower() == "none" else args.multilingual
    scorer = restack(args.variant, args.data, output, args.stacker, cap, multilingual)
    print(json.dumps({"output": str(output), "stacker_features": scorer.stacker_features_,
                      **scorer.cv_metrics_}, indent=2))


if __name__ == "__main__":
    main()
