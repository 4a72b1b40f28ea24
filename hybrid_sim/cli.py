"""``hybrid-sim``: the command line. It only parses arguments and calls the Python API."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hybrid_sim.pairs import DEFAULT_COLUMNS

MODEL_HELP = ("model folder, or a shipped model by name: default (the default) or "
              "accurate (needs `make mpnet`)")


def ensemble_entry(spec: str) -> dict[str, Any]:
    """``all-mpnet-base-v2,lora_layers=2,learning_rate=1e-3`` -> a dict of settings.

    >>> ensemble_entry("all-mpnet-base-v2,lora_layers=2,learning_rate=1e-3")
    {'base_model': 'all-mpnet-base-v2', 'lora_layers': 2, 'learning_rate': 0.001}
    """
    base, *pairs = spec.split(",")
    entry: dict[str, Any] = {"base_model": base}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise argparse.ArgumentTypeError(f"{pair!r} in {spec!r} is not KEY=VALUE")
        for cast in (int, float):
            try:
                entry[key] = cast(value)
                break
            except ValueError:
                continue
        else:
            entry[key] = value
    return entry


def _add_io_options(p: argparse.ArgumentParser, target: bool = False) -> None:
    p.add_argument("--columns", nargs=2, metavar=("A", "B"), default=list(DEFAULT_COLUMNS),
                   help="the two text columns (default: sentence_1 sentence_2)")
    p.add_argument("--sep", help="field separator for CSV-like input (default: by extension)")
    if target:
        p.add_argument("--target", default="human_similarity", help="the rating column")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hybrid-sim",
        description="Similarity of questionnaire items on the 0-100 scale of human raters.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a model on rated pairs")
    p.add_argument("data", type=Path, help="CSV / TSV / Parquet of rated pairs")
    p.add_argument("-o", "--output", type=Path, required=True, help="model folder to write")
    _add_io_options(p, target=True)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--base-model", default="all-MiniLM-L6-v2", help="name or folder")
    p.add_argument("--method", default="lora", choices=["lora", "top_layers", "full", "none"])
    p.add_argument("--lora-layers", type=int, metavar="N",
                   help="LoRA in the top N blocks only: trains several times faster on data that "
                        "repeat sentences (the frozen blocks run once per distinct sentence)")
    p.add_argument("--learning-rate", type=float)
    p.add_argument("--extra-base", action="append", default=[],
                   help="another base model whose zero-shot cosine becomes a feature")
    p.add_argument("--no-base-cosine", action="store_true",
                   help="leave out the zero-shot cosine of the base model (encodes half as much)")
    p.add_argument("--n-seeds", type=int, default=1,
                   help="average the tuned cosine over this many fine-tuning seeds")
    p.add_argument("--soup", action="store_true",
                   help="with --n-seeds: average the seeds' LoRA weights into one encoder, which "
                        "scores as fast as one seed")
    p.add_argument("--ensemble", action="append", default=[], type=ensemble_entry,
                   metavar="BASE[,KEY=VALUE...]",
                   help="also fine-tune this base model and average its tuned cosine in; keys "
                        "override the settings above, e.g. all-mpnet-base-v2,lora_layers=2,"
                        "learning_rate=1e-3,epochs=2 (repeatable)")
    p.add_argument("--teacher", action="append", default=[], type=ensemble_entry,
                   metavar="BASE[,KEY=VALUE...]",
                   help="distil from this fine-tuned model (same form as --ensemble): the teachers' "
                        "mean cosine labels unrated pairs of the training sentences, which the model "
                        "then learns from too; only the model is saved (repeatable)")
    p.add_argument("--distill-pairs", type=int, default=10_000,
                   help="at most this many teacher-labelled pairs (default: 10000)")
    p.add_argument("--groups", nargs="+", help="feature groups (default: all)")
    p.add_argument("--all-groups", action="store_true",
                   help="stack every group, not only those that lower grouped-CV MAE")
    p.add_argument("--cv", type=int, default=5, help="folds for cross-fitting")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true")

    p = sub.add_parser("evaluate", help="MAE, RMSE, Pearson, Spearman of a model on rated pairs")
    p.add_argument("data", type=Path)
    p.add_argument("--model", type=Path, help=MODEL_HELP)
    _add_io_options(p, target=True)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")

    p = sub.add_parser("score", help="add a similarity column to a file of pairs")
    p.add_argument("input", type=Path)
    p.add_argument("-o", "--output", type=Path, required=True)
    p.add_argument("--model", type=Path, help=MODEL_HELP)
    _add_io_options(p)
    p.add_argument("--on-error", choices=["fail", "skip"], default="fail",
                   help="skip: leave similarity empty and say why in an 'error' column")
    p.add_argument("--explain", action="store_true", help="add per-group contribution columns")
    p.add_argument("--chunk-rows", type=int, default=50_000)
    p.add_argument("--dask", metavar="ADDRESS",
                   help="score a Parquet/CSV file or folder on a Dask cluster ('local' for 2 "
                        "local workers); OUT is then a folder")
    p.add_argument("--quiet", action="store_true")

    p = sub.add_parser("match", help="score every item of questionnaire A against B")
    p.add_argument("a", type=Path, help="items of A: a text file (one per line) or a table")
    p.add_argument("b", type=Path)
    p.add_argument("-o", "--output", type=Path, required=True)
    p.add_argument("--column", help="the item column when A and B are tables")
    p.add_argument("--model", type=Path, help=MODEL_HELP)
    p.add_argument("--top", type=int, help="keep the K best matches per item of A")
    p.add_argument("--min-score", type=float)

    p = sub.add_parser("ablate", help="feature-ablation report under grouped CV")
    p.add_argument("data", type=Path)
    p.add_argument("-o", "--output", type=Path, required=True, help="report folder")
    _add_io_options(p, target=True)
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--base-model", default="all-MiniLM-L6-v2")
    p.add_argument("--method", default="lora", choices=["lora", "top_layers", "full", "none"])
    p.add_argument("--quiet", action="store_true")
    return parser


def _print_metrics(metrics: dict[str, float], as_json: bool) -> None:
    if as_json:
        print(json.dumps(metrics, indent=2))
        return
    width = max(len(k) for k in metrics)
    for key, value in metrics.items():
        shown = f"{value:.4f}" if isinstance(value, float) else str(value)
        print(f"{key:<{width}}  {shown}")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except (ValueError, FileNotFoundError) as exc:
        print(f"hybrid-sim {args.command}: error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    import hybrid_sim

    if args.command == "train":
        scorer = hybrid_sim.train(
            args.data, args.output, columns=args.columns, target=args.target,
            groups=args.groups, base_model=args.base_model, method=args.method,
            lora_layers=args.lora_layers, epochs=args.epochs, learning_rate=args.learning_rate,
            extra_bases=args.extra_base, base_cosine=not args.no_base_cosine,
            n_seeds=args.n_seeds, soup=args.soup, ensemble=args.ensemble,
            teachers=args.teacher, distill_pairs=args.distill_pairs, select_groups=not args.all_groups,
            cv=args.cv, seed=args.seed,
            show_progress=not args.quiet, sep=args.sep,
        )
        print(f"model written to {args.output}")
        if scorer.cv_metrics_:
            _print_metrics(scorer.cv_metrics_, as_json=False)
    elif args.command == "evaluate":
        metrics = hybrid_sim.evaluate(args.data, args.model, columns=args.columns,
                                      target=args.target, sep=args.sep)
        _print_metrics(metrics, args.json)
    elif args.command == "score" and args.dask:
        from hybrid_sim.dask import score_directory

        result = score_directory(args.input, args.output, args.dask, columns=args.columns,
                                 model=args.model)
        print(f"{result['partitions']} partitions -> {result['output']}", file=sys.stderr)
    elif args.command == "score":
        from hybrid_sim.batch import score_file

        result = score_file(args.input, args.output, args.model, columns=args.columns,
                            on_error=args.on_error, explain=args.explain,
                            chunk_rows=args.chunk_rows, sep=args.sep, quiet=args.quiet)
        if not args.quiet:
            print(f"scored {result['rows']} rows ({result['skipped']} skipped) in "
                  f"{result['seconds']:.1f}s -> {result['output']}", file=sys.stderr)
    elif args.command == "match":
        from hybrid_sim.io import write_table
        from hybrid_sim.match import match, read_items

        table = match(read_items(args.a, args.column), read_items(args.b, args.column),
                      args.model, top=args.top, min_score=args.min_score)
        write_table(table, args.output)
        print(f"{len(table)} matches -> {args.output}", file=sys.stderr)
    elif args.command == "ablate":
        from hybrid_sim.ablation import ablation_report

        report = ablation_report(args.data, args.output, columns=args.columns,
                                 target=args.target, folds=args.folds, epochs=args.epochs,
                                 base_model=args.base_model, method=args.method,
                                 show_progress=not args.quiet)
        print(report["markdown"])
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
