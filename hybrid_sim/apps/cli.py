"""``hybrid-sim``: the command line. It only parses arguments and calls the Python API."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hybrid_sim.apps.arguments import FOLDS, POSITIVE, SCORE, ensemble_entry
from hybrid_sim.defaults import DEFAULT_BASE, DEFAULT_COLUMNS
from hybrid_sim.encoders.encoder import METHODS
from hybrid_sim.stacker.stacking import STACKERS

MODEL_HELP = ("model folder, or a shipped model by name: default (the default) or "
              "accurate (needs `make mpnet`)")


def _add_io_options(p: argparse.ArgumentParser, target: bool = False) -> None:
    p.add_argument("--columns", nargs=2, metavar=("A", "B"), default=list(DEFAULT_COLUMNS),
                   help="the two text columns (default: sentence_1 sentence_2)")
    p.add_argument("--sep", help="field separator for CSV-like input (default: by extension)")
    p.add_argument("--encoding", default="utf-8",
                   help="text encoding of CSV-like input (default: utf-8; e.g. latin-1, cp1252)")
    if target:
        p.add_argument("--target", default="human_similarity", help="the rating column")


def _add_train(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", type=Path, help="CSV / TSV / Parquet of rated pairs")
    p.add_argument("-o", "--output", type=Path, required=True,
                   help="model folder to write: new or empty (or a model, with --overwrite)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace OUTPUT if it holds a hybrid_sim model (never anything else)")
    _add_io_options(p, target=True)
    _add_tuning_options(p)
    p.add_argument("--extra-base", action="append", default=[],
                   help="another base model whose zero-shot cosine becomes a feature")
    p.add_argument("--no-base-cosine", action="store_true",
                   help="leave out the zero-shot cosine of the base model (encodes half as much)")
    p.add_argument("--n-seeds", type=POSITIVE, default=1,
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
    p.add_argument("--distill-pairs", type=POSITIVE, default=10_000,
                   help="at most this many teacher-labelled pairs (default: 10000)")
    p.add_argument("--groups", nargs="+", help="feature groups (default: all)")
    p.add_argument("--stacker", choices=STACKERS, default="monotone",
                   help="monotone (default): scores keep their ranking, identical texts >= 90; "
                        "lightgbm: L1 trees (a step function)")
    p.add_argument("--all-groups", action="store_true",
                   help="stack every group, not only those that lower grouped-CV MAE")
    p.add_argument("--cv", type=FOLDS, default=5, help="folds for cross-fitting (at least 2)")
    p.add_argument("--seed", type=int, default=0)


def _add_tuning_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--epochs", type=POSITIVE, default=4)
    p.add_argument("--base-model", default=DEFAULT_BASE, help="name or folder")
    p.add_argument("--method", default="lora", choices=METHODS)
    if p.prog.endswith("train"):
        p.add_argument("--lora-layers", type=int, metavar="N",
                       help="LoRA in the top N blocks only: trains several times faster on data "
                            "that repeat sentences (the frozen blocks run once per distinct sentence)")
        p.add_argument("--learning-rate", type=float)


def _add_evaluate(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", type=Path)
    p.add_argument("--model", type=Path, help=MODEL_HELP)
    _add_io_options(p, target=True)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _add_score(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", type=Path)
    p.add_argument("-o", "--output", type=Path, required=True)
    p.add_argument("--model", type=Path, help=MODEL_HELP)
    _add_io_options(p)
    p.add_argument("--on-error", choices=["fail", "skip"], default="fail",
                   help="skip: leave similarity empty and say why in an 'error' column")
    p.add_argument("--explain", action="store_true", help="add per-group contribution columns")
    p.add_argument("--polarity", action="store_true",
                   help="add polarity (same / reversed), signed_similarity and contrast columns")
    p.add_argument("--chunk-rows", type=POSITIVE, default=50_000)
    p.add_argument("--dask", metavar="ADDRESS",
                   help="score a Parquet/CSV file or folder on a Dask cluster ('local' for 2 "
                        "local workers); OUT is then a folder")


def _add_items_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", type=Path, required=True,
                   help="output table: .csv, .tsv, .parquet, .xlsx or .json")
    p.add_argument("--text-column", "--column", dest="column",
                   help="the items' column when the inputs are tables")
    p.add_argument("--id-column", help="a column of item ids, carried to the output")
    p.add_argument("--model", type=Path, help=MODEL_HELP)
    p.add_argument("--encoding", default="utf-8", help="text encoding of the inputs")


def _add_match(p: argparse.ArgumentParser) -> None:
    p.add_argument("a", type=Path, help="items of A: a text file (one per line) or a table")
    p.add_argument("b", type=Path)
    _add_items_options(p)
    p.add_argument("--top", type=POSITIVE, help="keep the K best matches per item of A")
    p.add_argument("--min-score", type=SCORE, help="drop matches below this score (0-100)")
    p.add_argument("--one-to-one", action="store_true",
                   help="pair each item with at most one item of the other questionnaire (the "
                        "pairing of highest total similarity)")
    p.add_argument("--wide", action="store_true",
                   help="write a matrix: one row per item of A, one column per item of B")


def _add_cluster(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", type=Path, nargs="+", help="text files (one item per line) or tables")
    _add_items_options(p)
    p.add_argument("--threshold", type=SCORE, default=None,
                   help="merge groups whose mean similarity is at least this (default: the "
                        "default model's same-construct threshold)")


def _add_upgrade(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", type=Path, help="the model folder to upgrade in place")


def _add_ablate(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", type=Path)
    p.add_argument("-o", "--output", type=Path, required=True,
                   help="report folder: new or empty (or a report, with --overwrite)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace OUTPUT if it holds an ablation report (never anything else)")
    _add_io_options(p, target=True)
    p.add_argument("--folds", type=FOLDS, default=5)
    _add_tuning_options(p)


# command -> (help, its options); upgrade alone has no --quiet
_COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None]]] = {
    "train": ("train a model on rated pairs", _add_train),
    "evaluate": ("MAE, RMSE, Pearson, Spearman of a model on rated pairs", _add_evaluate),
    "score": ("add a similarity column to a file of pairs", _add_score),
    "match": ("score every item of questionnaire A against B", _add_match),
    "cluster": ("group the items of one or more questionnaires into constructs", _add_cluster),
    "upgrade": ("seal a model folder of an older format (scores unchanged)", _add_upgrade),
    "ablate": ("feature-ablation report under grouped CV", _add_ablate),
}


def build_parser() -> argparse.ArgumentParser:
    """The ``hybrid-sim`` parser: one sub-command per plain function of the API."""
    parser = argparse.ArgumentParser(
        prog="hybrid-sim",
        description="Similarity of questionnaire items on the 0-100 scale of human raters.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, add_options) in _COMMANDS.items():
        p = sub.add_parser(name, help=help_text)
        add_options(p)
        if name not in ("upgrade", "evaluate"):
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


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that temporary files are removed on the way out."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise Terminated


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; every failure a user can cause ends in one line on stderr.

    Exit codes: 0 done, 2 bad input or arguments, 130 interrupted (Ctrl-C), 143
    terminated (SIGTERM). Temporary files are removed in every case.
    """
    args = build_parser().parse_args(argv)
    previous = signal.getsignal(signal.SIGTERM)
    in_main = _is_main_thread()
    if in_main:
        signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return _run(args)
    except (ValueError, OSError) as exc:
        print(f"hybrid-sim {args.command}: error: {_first_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return _stop(args.command, "interrupted", 130, argv is None)
    except Terminated:
        return _stop(args.command, "terminated", 143, argv is None)
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)


def _is_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _stop(command: str, how: str, code: int, from_console: bool) -> int:
    print(f"hybrid-sim {command}: {how}; no output was written", file=sys.stderr)
    if from_console:
        # temporary files are gone (the context managers ran); leave now, before the
        # interpreter's teardown meets torch or spaCy threads mid-work ("terminate called")
        sys.stderr.flush()
        sys.stdout.flush()
        os._exit(code)
    return code


def _silence_third_party_bars() -> None:
    """--quiet: transformers' "Loading weights" bar shows on every model load otherwise."""
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


def _show_progress(quiet: bool) -> None:
    """The library logs its slow steps to the "hybrid_sim" logger; the CLI prints them."""
    import logging

    logger = logging.getLogger("hybrid_sim")
    if not any(getattr(h, "_hybrid_sim", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("hybrid-sim: %(message)s"))
        handler._hybrid_sim = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.setLevel(logging.WARNING if quiet else logging.INFO)


def _train(args: argparse.Namespace) -> None:
    from hybrid_sim import api

    scorer = api.train(
        args.data, args.output, columns=args.columns, target=args.target,
        groups=args.groups, base_model=args.base_model, method=args.method,
        lora_layers=args.lora_layers, epochs=args.epochs, learning_rate=args.learning_rate,
        extra_bases=args.extra_base, base_cosine=not args.no_base_cosine,
        n_seeds=args.n_seeds, soup=args.soup, ensemble=args.ensemble,
        teachers=args.teacher, distill_pairs=args.distill_pairs, select_groups=not args.all_groups,
        cv=args.cv, seed=args.seed, stacker=args.stacker,
        show_progress=not args.quiet, sep=args.sep, encoding=args.encoding,
        overwrite=args.overwrite,
    )
    print(f"model written to {args.output}")
    if scorer.cv_metrics_:
        _print_metrics(scorer.cv_metrics_, as_json=False)


def _evaluate(args: argparse.Namespace) -> None:
    import warnings

    from hybrid_sim.api import InSampleWarning, evaluate

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", InSampleWarning)
        metrics = evaluate(args.data, args.model, columns=args.columns, target=args.target,
                           sep=args.sep, encoding=args.encoding)
    for warning in caught:
        if issubclass(warning.category, InSampleWarning):
            print(f"hybrid-sim evaluate: warning: {warning.message}", file=sys.stderr)
    _print_metrics(metrics, args.json)


def _score(args: argparse.Namespace) -> None:
    if args.dask:
        from hybrid_sim.apps.dask import score_directory

        result = score_directory(args.input, args.output, args.dask, columns=args.columns,
                                 model=args.model)
        print(f"{result['partitions']} partitions -> {result['output']}", file=sys.stderr)
        return
    from hybrid_sim.apps.batch import score_file

    result = score_file(args.input, args.output, args.model, columns=args.columns,
                        on_error=args.on_error, explain=args.explain,
                        chunk_rows=args.chunk_rows, sep=args.sep, encoding=args.encoding,
                        quiet=args.quiet, polarity=args.polarity)
    if not args.quiet:
        print(f"scored {result['rows']} rows ({result['skipped']} skipped) in "
              f"{result['seconds']:.1f}s -> {result['output']}", file=sys.stderr)


def _match(args: argparse.Namespace) -> None:
    from hybrid_sim.apps.match import match_files

    rows = match_files(args.a, args.b, args.output, args.model, column=args.column,
                       id_column=args.id_column, encoding=args.encoding, top=args.top,
                       min_score=args.min_score, one_to_one=args.one_to_one, wide=args.wide)
    if not args.quiet:
        print(f"{rows} matches -> {args.output}", file=sys.stderr)


def _cluster(args: argparse.Namespace) -> None:
    from hybrid_sim.apps.clustering import cluster_files

    table = cluster_files(args.inputs, args.output, args.model, threshold=args.threshold,
                          column=args.column, id_column=args.id_column, encoding=args.encoding)
    if not args.quiet:
        print(f"{len(table)} items in {table['cluster'].nunique()} clusters -> {args.output}",
              file=sys.stderr)


def _upgrade(args: argparse.Namespace) -> None:
    from hybrid_sim.scorer.loading import upgrade_model

    changed = upgrade_model(args.model)
    print(f"{args.model}: {'upgraded' if changed else 'already current'}", file=sys.stderr)


def _ablate(args: argparse.Namespace) -> None:
    from hybrid_sim.apps.ablation import ablation_report

    report = ablation_report(args.data, args.output, columns=args.columns,
                             target=args.target, folds=args.folds, epochs=args.epochs,
                             base_model=args.base_model, method=args.method,
                             show_progress=not args.quiet, sep=args.sep,
                             encoding=args.encoding, overwrite=args.overwrite)
    print(report["markdown"])


_HANDLERS: dict[str, Callable[[argparse.Namespace], None]] = {
    "train": _train, "evaluate": _evaluate, "score": _score, "match": _match,
    "cluster": _cluster, "upgrade": _upgrade, "ablate": _ablate,
}


def _run(args: argparse.Namespace) -> int:
    _show_progress(getattr(args, "quiet", False))
    if getattr(args, "quiet", False):
        _silence_third_party_bars()
    _HANDLERS[args.command](args)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
