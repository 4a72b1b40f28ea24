"""CPU inference options for the shipped encoder: speed against the score change they cause.

For each option (PyTorch fp32; ONNX Runtime fp32 on an export of the same weights; int8
dynamic quantisation in PyTorch of every linear layer or of the feed-forward layers only;
PyTorch on one thread instead of all; PyTorch with batches spread over one worker thread
per core, each on one intra-op thread, as hybrid_sim encodes by default), in one run: sentences/s
encoding M synthetic items, and how far the shipped model's final 0-100 scores move on
the DOXA pairs (max and mean absolute change, and the MAE). The issue allows an option
only if scores move by at most 0.1 points.

    python benchmarks/encoder_speed.py --items 3000
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _results import write_results  # benchmarks/ is on sys.path when a script runs

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "doxa_train.csv"
OPTIONS = ("torch_fp32", "onnx_fp32", "torch_int8_all_linear", "torch_int8_feed_forward",
           "torch_fp32_one_thread", "torch_fp32_workers")


def quantise(model, feed_forward_only: bool):  # type: ignore[no-untyped-def]
    import torch
    from torch.ao.quantization import quantize_dynamic

    if not feed_forward_only:
        return quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    # merged LoRA wraps each linear layer: the weights in use are its `base_layer`
    names = {n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)
             and n.removesuffix(".base_layer").endswith(("intermediate.dense", "output.dense"))
             and ".attention." not in n and "lora_" not in n}
    return quantize_dynamic(model, names, dtype=torch.qint8)


def main() -> None:
    import torch
    from throughput import make_items

    import hybrid_sim
    from hybrid_sim.stacker.stacking import regression_metrics

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=3000)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "encoder_speed")
    args = parser.parse_args()
    items = make_items(args.items, seed=7)
    data = pd.read_csv(args.data)
    X, y = data[["sentence_1", "sentence_2"]], data["human_similarity"].to_numpy(float)
    threads = torch.get_num_threads()
    rows, reference = [], None
    for option in OPTIONS:
        scorer = hybrid_sim.load()
        encoders = scorer.features_.named_transformers["embedding"].encoders_
        for encoder in encoders:  # every seed of the ensemble gets the same treatment
            encoder.backend = "onnx" if option.startswith("onnx") else "torch"
            encoder.encode(["warm up"])  # builds and merges the model; makes the ONNX export
            if "int8" in option:
                encoder._model = quantise(encoder.model, option.endswith("feed_forward"))
            encoder._cache.clear()
        torch.set_num_threads(1 if option.endswith("one_thread") else threads)
        # every other option is timed on one call of the model per batch (intra-op threads)
        os.environ["HYBRID_SIM_ENCODE_WORKERS"] = str(threads) if option.endswith("workers") else "1"
        start = time.perf_counter()
        encoders[0].encode(items)
        seconds = time.perf_counter() - start
        pred = scorer.predict(X)
        reference = pred if reference is None else reference
        change = np.abs(pred - reference)
        row = {"option": option, "sentences_per_s": args.items / seconds,
               "max_score_change": float(change.max()), "mean_score_change": float(change.mean()),
               "mae": regression_metrics(y, pred)["mae"]}
        rows.append(row)
        print(json.dumps(row))
    torch.set_num_threads(threads)
    os.environ.pop("HYBRID_SIM_ENCODE_WORKERS")
    base = rows[0]["sentences_per_s"]
    lines = ["| option | sentences/s | speed vs torch_fp32 | max score change | mean score change "
             "| MAE (train pairs) |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['option']} | {r['sentences_per_s']:.0f} | {r['sentences_per_s'] / base:.2f}x | "
              f"{r['max_score_change']:.2f} | {r['mean_score_change']:.2f} | {r['mae']:.2f} |" for r in rows]
    write_results(args.out, rows, lines)


if __name__ == "__main__":
    main()
