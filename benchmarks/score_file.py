"""Wall time and peak memory of `hybrid-sim score` on a large generated file.

Generates N rows of item pairs over M distinct synthetic items (as benchmarks/throughput.py
does), then runs the real command line in a subprocess and reads its peak RSS from the OS.

    python benchmarks/score_file.py --rows 1000000 --items 10000
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import make_pairs

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--chunk-rows", type=int, default=50_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "pairs.csv", Path(tmp) / "scored.csv"
        left, right = make_pairs(args.rows, args.items)
        pd.DataFrame({"id": range(args.rows), "sentence_1": left, "sentence_2": right}).to_csv(
            src, index=False)
        command = [str(Path(sys.executable).parent / "hybrid-sim"), "score", str(src), "-o",
                   str(out), "--quiet", "--chunk-rows", str(args.chunk_rows)]
        start = time.perf_counter()
        subprocess.run(command, check=True)
        seconds = time.perf_counter() - start
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        rows_out = sum(1 for _ in out.open()) - 1
    result = {"rows": args.rows, "distinct_items": args.items, "rows_written": rows_out,
              "wall_seconds": round(seconds, 1), "rows_per_second": round(args.rows / seconds),
              "peak_rss_mb": round(peak_mb), "chunk_rows": args.chunk_rows,
              "command": "hybrid-sim score pairs.csv -o scored.csv --quiet"}
    print(json.dumps(result, indent=2))
    out_file = ROOT / "benchmarks" / "results" / "score_file.json"
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
