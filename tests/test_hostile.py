"""Hostile input, as a careless or hostile user would give it: nothing is lost, nothing
crashes, nothing shifts, nothing is left behind.

Each case is one row of a table: what to set up, the command (or Python call), the exit
code, a fragment of the one-line message, and the files that must or must not exist
afterwards (with their content unchanged where the user owned them).
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import hybrid_sim
from hybrid_sim.apps.cli import main
from hybrid_sim.features import make_features
from hybrid_sim.scorer.estimator import HybridScorer
from hybrid_sim.scorer.manifest import seal
from tests.conftest import TINY_PAIRS, synthetic_rated

SMALL = {"min_child_samples": 2, "n_estimators": 30}


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fast model without the embedding group: these cases are about input and files."""
    a, b, y = zip(*TINY_PAIRS)
    folder = tmp_path_factory.mktemp("m") / "classical"
    scorer = HybridScorer(features=make_features(["bow", "fuzzy", "negation"]), cv=2, params=SMALL)
    scorer.fit(np.column_stack([a, b]).astype(object), y).save(folder)
    return folder


def run(argv: list[str]) -> int:
    """The CLI's exit code, argparse's own refusals included."""
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


def pairs_csv(path: Path, rows: int = 3) -> Path:
    a, b, _ = zip(*TINY_PAIRS)
    pd.DataFrame({"sentence_1": a[:rows], "sentence_2": b[:rows]}).to_csv(path, index=False)
    return path


def rated_csv(path: Path, frame: pd.DataFrame | None = None) -> Path:
    (synthetic_rated() if frame is None else frame).to_csv(path, index=False)
    return path


@dataclass
class Case:
    """``setup(tmp, model)`` writes the inputs and returns the argv (paths inside ``tmp``)."""

    name: str
    setup: Callable[[Path, Path], list[str]]
    code: int
    message: str
    exist: tuple[str, ...] = ()
    absent: tuple[str, ...] = ()
    unchanged: dict[str, str] = field(default_factory=dict)


def _train_into_foreign(tmp: Path, _m: Path) -> list[str]:
    (tmp / "p" / "sub").mkdir(parents=True)
    (tmp / "p" / "keep.txt").write_text("x")
    rated_csv(tmp / "p" / "sub" / "rated.csv")
    return ["train", str(tmp / "p/sub/rated.csv"), "-o", str(tmp / "p"), "--groups", "bow", "fuzzy"]


def _train_into_file(tmp: Path, _m: Path) -> list[str]:
    rated_csv(tmp / "rated.csv")
    (tmp / "model").write_text("x")
    return ["train", str(tmp / "rated.csv"), "-o", str(tmp / "model"), "--groups", "bow"]


def _ablate_into_foreign(tmp: Path, _m: Path) -> list[str]:
    rated_csv(tmp / "rated.csv")
    (tmp / "r").mkdir()
    (tmp / "r" / "keep.txt").write_text("x")
    return ["ablate", str(tmp / "rated.csv"), "-o", str(tmp / "r"), "--overwrite"]


def _score(tmp: Path, m: Path, text: str, out: str = "o.csv", *extra: str) -> list[str]:
    (tmp / "in.csv").write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return ["score", str(tmp / "in.csv"), "-o", str(tmp / out), "--model", str(m), "--quiet", *extra]


CASES = [
    Case("train -o a folder holding other files", _train_into_foreign, 2, "refusing to replace it",
         exist=("p/keep.txt", "p/sub/rated.csv"), unchanged={"p/keep.txt": "x"}),
    Case("train -o an existing file", _train_into_file, 2, "is not a folder",
         unchanged={"model": "x"}),
    Case("ablate -o a foreign folder, even with --overwrite", _ablate_into_foreign, 2,
         "refusing to replace it", unchanged={"r/keep.txt": "x"}, absent=("r/report.md",)),
    Case("a row with an extra field", lambda t, m: _score(
        t, m, "sentence_1,sentence_2\nI feel sad, I feel low, and tired\n"), 2,
        "line 2: 3 field(s), but the header has 2", absent=("o.csv",)),
    Case("a row with a missing field", lambda t, m: _score(
        t, m, "sentence_1,sentence_2,id\nI feel sad,I feel low\n"), 2,
        "line 2: 2 field(s), but the header has 3", absent=("o.csv",)),
    Case("-o is the input", lambda t, m: ["score", str(pairs_csv(t / "same.csv")), "-o",
                                          str(t / "same.csv"), "--model", str(m)], 2,
         "is the input file"),
    Case("-o is a folder", lambda t, m: (t / "out").mkdir() or ["score", str(
        pairs_csv(t / "in.csv")), "-o", str(t / "out"), "--model", str(m)], 2, "is a folder"),
    Case("-o with an unknown extension", lambda t, m: ["score", str(pairs_csv(t / "in.csv")), "-o",
                                                       str(t / "m.weird"), "--model", str(m)], 2,
         "unknown output extension '.weird'", absent=("m.weird",)),
    Case("match -o with an unknown extension", lambda t, m: (
        (t / "a.txt").write_text("I feel sad\n"), (t / "b.txt").write_text("Felt low\n"))
        and ["match", str(t / "a.txt"), str(t / "b.txt"), "-o", str(t / "m.weird"), "--model",
             str(m)], 2, "unknown output extension", absent=("m.weird",)),
    Case("match on a folder", lambda t, m: (t / "d").mkdir() or ((t / "b.txt").write_text("x\n") and [
        "match", str(t / "d"), str(t / "b.txt"), "-o", str(t / "m.csv"), "--model", str(m)]), 2,
        "is a folder, not a file", absent=("m.csv",)),
    Case("invalid UTF-8", lambda t, m: _score(
        t, m, b"sentence_1,sentence_2\nI feel sad,low\nCaf\xe9,x\n"), 2,
        "line 3: not valid utf-8 text", absent=("o.csv",)),
    Case("an input file that does not exist", lambda t, m: [
        "score", str(t / "nope.csv"), "-o", str(t / "o.csv"), "--model", str(m)], 2, "no such file"),
    Case("a model folder that does not exist", lambda t, m: [
        "score", str(pairs_csv(t / "in.csv")), "-o", str(t / "o.csv"), "--model", str(t / "nope")],
        2, "is not a model folder", absent=("o.csv",)),
    Case("train on 3 rows", lambda t, m: ["train", str(rated_csv(t / "r.csv", synthetic_rated().head(3))),
                                          "-o", str(t / "m"), "--groups", "bow", "fuzzy", "--cv", "2"],
         2, "the stacker learnt nothing from 3 rows", absent=("m",)),
    Case("train with --cv 0", lambda t, m: ["train", str(rated_csv(t / "r.csv")), "-o", str(t / "m"),
                                            "--cv", "0"], 2, "", absent=("m",)),
    Case("train with 5 folds on 3 pairs", lambda t, m: [
        "train", str(rated_csv(t / "r.csv", synthetic_rated().head(3))), "-o", str(t / "m"),
        "--groups", "bow"], 2, "needs at least 5 distinct pairs; the data has 3", absent=("m",)),
    Case("train with a rating that is not a number", lambda t, m: [
        "train", str(rated_csv(t / "r.csv", synthetic_rated().replace({"human_similarity": {5: "high"}}))),
        "-o", str(t / "m"), "--groups", "bow"], 2, "column 'human_similarity': 'high' is not a rating",
        absent=("m",)),
    Case("evaluate with ratings outside 0-100", lambda t, m: [
        "evaluate", str(rated_csv(t / "r.csv", synthetic_rated().assign(human_similarity=250))),
        "--model", str(m)], 2, "250' is not a rating in 0-100"),
    Case("evaluate on no rows", lambda t, m: [
        "evaluate", str(rated_csv(t / "r.csv", synthetic_rated().head(0))), "--model", str(m)], 2,
        "the data has no rows"),
    Case("match --top -1", lambda t, m: ["match", "a.txt", "b.txt", "-o", "x.csv", "--top", "-1"], 2, ""),
    Case("match --top 0", lambda t, m: ["match", "a.txt", "b.txt", "-o", "x.csv", "--top", "0"], 2, ""),
    Case("match --min-score nan", lambda t, m: ["match", "a.txt", "b.txt", "-o", "x.csv",
                                                "--min-score", "nan"], 2, ""),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_cli_input(case: Case, model: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    argv = case.setup(tmp_path, model)
    assert run(argv) == case.code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if case.code == 2 and case.message:
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1, err
        assert case.message in lines[0], err
    for name in case.exist:
        assert (tmp_path / name).exists(), name
    for name in case.absent:
        assert not (tmp_path / name).exists(), name
    for name, content in case.unchanged.items():
        assert (tmp_path / name).read_text() == content
    assert not list(tmp_path.rglob("*.part")), "a temporary file was left behind"


# -- model folders: damaged or edited ---------------------------------------------------

def _copy_model(model: Path, tmp: Path) -> Path:
    import shutil

    target = tmp / "dmg"
    shutil.copytree(model, target)
    return target


def _rewrite(folder: Path, edit: Callable[[dict], object], reseal: bool = True) -> None:
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text())
    replaced = edit(manifest)
    manifest = manifest if replaced is None else replaced
    if reseal and isinstance(manifest, dict):
        manifest = seal(manifest)
    path.write_text(json.dumps(manifest))


def _truncate_stacker(folder: Path) -> None:
    import hashlib

    stacker = folder / "stacker.txt"
    text = stacker.read_text()
    stacker.write_text(text[: len(text) * 2 // 3])
    digest = hashlib.sha256(stacker.read_bytes()).hexdigest()
    _rewrite(folder, lambda m: m["files"].__setitem__("stacker.txt", digest))


MODEL_CASES = {
    "stacker truncated, its sha256 and the seal updated": (_truncate_stacker, "stacker.txt"),
    "role_reversal_cap edited, seal not": (lambda f: _rewrite(
        f, lambda m: m["scorer_params"].__setitem__("role_reversal_cap", 95), reseal=False),
        "has been edited or damaged"),
    "stacker_features edited, seal not": (lambda f: _rewrite(
        f, lambda m: m.__setitem__("stacker_features", ["negation__role_reversal"]), reseal=False),
        "has been edited or damaged"),
    "manifest is a JSON list": (lambda f: _rewrite(f, lambda m: [m]), "expected a JSON object"),
    "manifest lacks groups": (lambda f: _rewrite(f, lambda m: m.pop("groups") and None),
                              "'groups' is missing"),
    "manifest has an extra scorer parameter": (lambda f: _rewrite(
        f, lambda m: m["scorer_params"].__setitem__("speed", 2)), "unknown key(s) ['speed']"),
    "manifest has an extra group parameter": (lambda f: _rewrite(
        f, lambda m: m["groups"][0]["params"].__setitem__("speed", 2)), "does not know: ['speed']"),
    "role_reversal_cap out of range": (lambda f: _rewrite(
        f, lambda m: m["scorer_params"].__setitem__("role_reversal_cap", 950)), "number in 0-100"),
    "manifest is a folder": (lambda f: ((f / "manifest.json").unlink(), (f / "manifest.json").mkdir()),
                             "cannot be read"),
    "files list removed": (lambda f: _rewrite(f, lambda m: m.pop("files") and None),
                           "'files' is missing"),
    "a listed file points outside": (lambda f: _rewrite(
        f, lambda m: m["files"].__setitem__("../x", "0" * 64)), "not a file of the folder"),
    "feature_names edited": (lambda f: _rewrite(
        f, lambda m: m.__setitem__("feature_names", m["feature_names"][::-1])),
        "do not match what its groups compute"),
}


@pytest.mark.parametrize("name", MODEL_CASES)
def test_a_damaged_or_edited_model_fails_with_one_line_naming_the_file(
        name: str, model: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    damage, message = MODEL_CASES[name]
    folder = _copy_model(model, tmp_path)
    damage(folder)
    assert run(["score", str(pairs_csv(tmp_path / "in.csv")), "-o", str(tmp_path / "o.csv"),
                "--model", str(folder), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert str(folder) in err
    assert not (tmp_path / "o.csv").exists()


@pytest.mark.parametrize("base", ["/tmp/outside-model", "someone/some-hub-model"])
def test_a_manifest_cannot_point_the_encoder_outside_or_at_a_hub(base: str, tmp_path: Path) -> None:
    folder = hybrid_sim.api.default_model_path()
    copy = _copy_model(folder, tmp_path)
    _rewrite(copy, lambda m: m["groups"][-1]["params"].__setitem__("base_model", base))
    with pytest.raises(ValueError, match="is not one this library knows by name"):
        hybrid_sim.load(copy)


# -- Python API -------------------------------------------------------------------------

@pytest.mark.parametrize(("a", "b", "message"), [
    ({"a": 1}, {"b": 2}, "got dict"),
    (None, "x", "got None"),
    ("x", None, "got str 'x' alone"),
    (3, 4, "got int 3"),
    ("\u200b\u0301", "I feel sad", "no visible characters"),
    ("x" * 6000, "I feel sad", "the limit is 5,000"),
])
def test_score_refuses_what_is_not_text_saying_what_it_got(a, b, message, model: Path) -> None:
    with pytest.raises(ValueError, match=message):
        hybrid_sim.score(a, b, model=model)


def test_texts_without_content_words_score_the_same_in_a_fresh_process_and_after_others(
        model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hybrid_sim.features import negation

    monkeypatch.setattr(negation, "ROWS", negation._RowMemo())  # as in a fresh process
    scorer = hybrid_sim.load(model)
    first = hybrid_sim.score("x", "y", model=scorer)
    hybrid_sim.score(["I feel calm", "Child bullies others"], ["I feel anxious", "Child is bullied"],
                     model=scorer)
    assert hybrid_sim.score("x", "y", model=scorer) == first
    monkeypatch.setattr(negation, "ROWS", negation._RowMemo())
    assert hybrid_sim.score(["x", "I feel sad"], ["y", "I feel low"], model=scorer)[0] == first


def test_per_row_errors_with_skip_cover_invisible_and_huge_texts(model: Path, tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    pd.DataFrame({"sentence_1": ["I feel sad", "\u200b\u200d", "x" * 10_000_000],
                  "sentence_2": ["I feel low", "Felt low", "Felt low"]}).to_csv(src, index=False)
    assert run(["score", str(src), "-o", str(tmp_path / "o.csv"), "--model", str(model), "--quiet",
                "--on-error", "skip"]) == 0
    out = pd.read_csv(tmp_path / "o.csv", keep_default_na=False)
    assert out["error"].tolist()[0] == ""
    assert "no visible characters" in out["error"][1]
    assert "10,000,000 characters long; the limit is 5,000" in out["error"][2]
    assert out["similarity"].tolist()[1:] == ["", ""]


def test_encoding_option_reads_latin1(model: Path, tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_bytes(b"sentence_1,sentence_2\nCaf\xe9 au lait,Coffee\n")
    assert run(["score", str(tmp_path / "in.csv"), "-o", str(tmp_path / "o.csv"), "--model",
                str(model), "--quiet", "--encoding", "latin-1"]) == 0
    assert pd.read_csv(tmp_path / "o.csv")["sentence_1"][0] == "Café au lait"


# -- folders: ours are replaced only with --overwrite ------------------------------------

def test_a_model_folder_is_replaced_only_with_overwrite(tmp_path: Path, capsys) -> None:
    data = rated_csv(tmp_path / "rated.csv")
    argv = ["train", str(data), "-o", str(tmp_path / "m"), "--groups", "bow", "fuzzy", "--cv", "2",
            "--quiet"]
    assert run(argv) == 0
    before = (tmp_path / "m" / "manifest.json").read_text()
    assert run(argv) == 2
    assert "already holds a hybrid_sim model; pass --overwrite" in capsys.readouterr().err
    assert (tmp_path / "m" / "manifest.json").read_text() == before
    assert run([*argv, "--overwrite"]) == 0
    (tmp_path / "m" / "notes.txt").write_text("mine")  # now it holds a user's file too
    assert run([*argv, "--overwrite"]) == 2
    assert (tmp_path / "m" / "notes.txt").read_text() == "mine"


def test_an_old_format_model_says_how_to_upgrade_and_upgrading_keeps_its_scores(
        model: Path, tmp_path: Path) -> None:
    folder = _copy_model(model, tmp_path)
    expected = hybrid_sim.load(folder).predict(TINY_PAIRS_X)
    def as_format_1(m: dict) -> dict:  # no seal, and the cap under its old name
        params = {("contrast_cap" if k == "role_reversal_cap" else k): v
                  for k, v in m["scorer_params"].items()}
        return {**{k: v for k, v in m.items() if k != "manifest_sha256"}, "scorer_params": params,
                "format": "hybrid_sim.model/1"}

    _rewrite(folder, as_format_1, reseal=False)
    with pytest.raises(ValueError, match="hybrid-sim upgrade"):
        hybrid_sim.load(folder)
    assert run(["upgrade", str(folder)]) == 0
    upgraded = hybrid_sim.load(folder)
    assert upgraded.role_reversal_cap == 20.0
    np.testing.assert_array_equal(upgraded.predict(TINY_PAIRS_X), expected)


TINY_PAIRS_X = np.array([p[:2] for p in TINY_PAIRS], dtype=object)


# -- outputs: formats, permissions, full disks --------------------------------------------

@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".parquet", ".xlsx", ".json"])
def test_every_output_format_round_trips(model: Path, tmp_path: Path, suffix: str) -> None:
    src = pairs_csv(tmp_path / "in.csv", rows=5)
    out = tmp_path / f"o{suffix}"
    assert run(["score", str(src), "-o", str(out), "--model", str(model), "--quiet",
                "--chunk-rows", "2"]) == 0
    readers = {".csv": pd.read_csv, ".tsv": lambda p: pd.read_csv(p, sep="\t"),
               ".parquet": pd.read_parquet, ".xlsx": pd.read_excel,
               ".json": lambda p: pd.DataFrame(json.loads(Path(p).read_text()))}
    got = readers[suffix](out)
    expected = pd.read_csv(src)
    assert got["sentence_1"].tolist() == expected["sentence_1"].tolist()
    assert got["similarity"].between(0, 100).all() and len(got) == 5


def test_an_empty_parquet_input_gives_an_empty_output_of_the_named_format(
        model: Path, tmp_path: Path) -> None:
    src = tmp_path / "in.parquet"
    pd.DataFrame({"sentence_1": pd.Series(dtype=str), "sentence_2": pd.Series(dtype=str)}).to_parquet(src)
    assert run(["score", str(src), "-o", str(tmp_path / "o.xlsx"), "--model", str(model),
                "--quiet"]) == 0
    got = pd.read_excel(tmp_path / "o.xlsx")
    assert list(got.columns) == ["sentence_1", "sentence_2", "similarity"] and len(got) == 0


def test_outputs_follow_the_umask(model: Path, tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        assert run(["score", str(pairs_csv(tmp_path / "in.csv")), "-o", str(tmp_path / "o.csv"),
                    "--model", str(model), "--quiet"]) == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "o.csv").stat().st_mode) == 0o644


def test_a_full_disk_is_one_line_and_leaves_nothing(model: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    import errno

    from hybrid_sim import outputs

    def full(self, frame):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(outputs.TableWriter, "_write_csv", full)  # the disk fills while writing
    assert run(["score", str(pairs_csv(tmp_path / "in.csv")), "-o", str(tmp_path / "o.csv"),
                "--model", str(model), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err and str(tmp_path / "o.csv") in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def test_a_really_full_tmpfs(model: Path, tmp_path: Path, capsys) -> None:
    import subprocess

    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
                          capture_output=True)
    if done.returncode != 0:
        pytest.skip("this machine does not let the tests mount a small tmpfs")
    try:
        src = tmp_path / "in.csv"
        pd.DataFrame({"sentence_1": ["I feel sad " * 40] * 400,
                      "sentence_2": ["I feel low"] * 400}).to_csv(src, index=False)
        assert run(["score", str(src), "-o", str(mount / "o.csv"), "--model", str(model),
                    "--quiet"]) == 2
        assert "No space left on device" in capsys.readouterr().err
        assert list(mount.iterdir()) == []
    finally:
        subprocess.run(["umount", str(mount)], check=False)


# -- signals and kills: nothing left behind, the input untouched -------------------------

def _big_input(path: Path, rows: int = 20_000) -> Path:
    import random

    rng = random.Random(0)
    words = ["sad", "tired", "low", "happy", "calm", "anxious", "worried", "sleep", "eat", "work",
             "child", "bully", "others", "feel"]
    pd.DataFrame({"sentence_1": [" ".join(rng.choices(words, k=6)) for _ in range(rows)],
                  "sentence_2": [" ".join(rng.choices(words, k=5)) for _ in range(rows)]}).to_csv(
        path, index=False)
    return path


def _start_score(src: Path, out: Path, model: Path) -> object:
    import subprocess
    import sys

    return subprocess.Popen([sys.executable, "-m", "hybrid_sim.apps.cli", "score", str(src), "-o", str(out),
                             "--model", str(model), "--quiet", "--chunk-rows", "2000"],
                            stderr=subprocess.PIPE, text=True)


def _wait_for_part(folder: Path, proc: object, timeout: float = 120) -> None:
    import time

    start = time.monotonic()
    while not list(folder.glob(".*.part")):
        assert proc.poll() is None, "the run ended before it began writing"  # type: ignore[attr-defined]
        assert time.monotonic() - start < timeout
        time.sleep(0.05)


@pytest.mark.parametrize(("signum", "code", "word"), [(15, 143, "terminated"), (2, 130, "interrupted")])
def test_a_signal_mid_run_exits_cleanly_and_leaves_nothing(signum: int, code: int, word: str,
                                                           model: Path, tmp_path: Path) -> None:
    import random
    import time

    src = _big_input(tmp_path / "in.csv")
    before = src.read_bytes()
    proc = _start_score(src, tmp_path / "out.csv", model)
    _wait_for_part(tmp_path, proc)
    time.sleep(random.Random(signum).uniform(0.2, 2.0))  # a random point of the run
    proc.send_signal(signum)  # type: ignore[attr-defined]
    _, err = proc.communicate(timeout=120)  # type: ignore[attr-defined]
    assert proc.returncode == code, err  # type: ignore[attr-defined]
    assert err.strip().splitlines()[-1] == f"hybrid-sim score: {word}; no output was written"
    assert "Traceback" not in err and "terminate called" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]
    assert src.read_bytes() == before


def test_a_leftover_of_a_killed_run_is_recognised_and_removed_by_the_next(model: Path,
                                                                        tmp_path: Path) -> None:
    src = _big_input(tmp_path / "in.csv")
    proc = _start_score(src, tmp_path / "out.csv", model)
    _wait_for_part(tmp_path, proc)
    proc.kill()  # type: ignore[attr-defined]
    proc.wait()  # type: ignore[attr-defined]
    leftovers = list(tmp_path.glob(".out.csv.hybrid-sim.*.part"))
    assert leftovers, "SIGKILL cannot be caught: its temporary file stays, under a recognisable name"
    small = pairs_csv(tmp_path / "small.csv")
    assert run(["score", str(small), "-o", str(tmp_path / "out.csv"), "--model", str(model),
                "--quiet"]) == 0
    assert not list(tmp_path.glob("*.part")) and not list(tmp_path.glob(".*.part"))


# -- any CSV bytes: one output row per input row, in order, or one line and no output ----

@pytest.fixture(scope="module")
def loaded(model: Path) -> HybridScorer:
    return hybrid_sim.load(model)


def _csv_bytes(rows: list[list[str]], header: list[str], delimiter: str, quoting: int,
               encoding: str) -> bytes:
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, quoting=quoting)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode(encoding, errors="replace")


def test_arbitrary_csv_bytes_give_aligned_rows_or_one_clean_line(model: Path, tmp_path_factory) -> None:
    import csv

    from hypothesis import HealthCheck, example, given, settings
    from hypothesis import strategies as st

    field_text = st.text(alphabet=st.sampled_from(list('ab é,;"\t\n\r\u200bz0 日')), max_size=12)

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(rows=st.lists(st.lists(field_text, min_size=1, max_size=4), max_size=6),
           delimiter=st.sampled_from([",", "\t"]),
           quoting=st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC]),
           encoding=st.sampled_from(["utf-8", "latin-1"]),
           junk=st.binary(max_size=4))
    # found by this test: a lone "\r" in a field went out unquoted and split its row
    @example(rows=[["", "", "\r"]], delimiter=",", quoting=csv.QUOTE_MINIMAL, encoding="utf-8", junk=b"")
    def check(rows: list[list[str]], delimiter: str, quoting: int, encoding: str, junk: bytes) -> None:
        tmp = tmp_path_factory.mktemp("csv")
        suffix = ".csv" if delimiter == "," else ".tsv"
        src, out = tmp / f"in{suffix}", tmp / f"out{suffix}"
        raw = _csv_bytes(rows, ["sentence_1", "sentence_2", "note"], delimiter, quoting, encoding)
        src.write_bytes(raw + junk)
        code = run(["score", str(src), "-o", str(out), "--model", str(model), "--quiet",
                    "--on-error", "skip"])
        assert code in (0, 2)
        clean = (not junk and all(len(r) == 3 for r in rows)
                 and (encoding == "utf-8" or raw.decode("latin-1").isascii()))
        if code == 2:
            assert not clean, "well-formed input was refused"
            assert not out.exists()
            return
        got = list(csv.reader(out.open(newline="", encoding="utf-8"), delimiter=delimiter))
        if clean:
            assert len(got) == len(rows) + 1
            assert [r[0] for r in got[1:]] == [r[0] for r in rows]
        assert all(len(r) == 5 for r in got)  # three columns, similarity, error

    check()


def test_an_unwritable_output_folder_fails_before_the_model_loads(
        model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    import tempfile

    from hybrid_sim import api

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    def no_model(*args, **kwargs):
        raise AssertionError("the model loaded before the output was known to be writable")

    monkeypatch.setattr(tempfile, "mkstemp", denied)
    monkeypatch.setattr(api, "_resolve", no_model)
    assert run(["score", str(pairs_csv(tmp_path / "in.csv")), "-o", str(tmp_path / "o.csv"),
                "--model", str(model)]) == 2
    err = capsys.readouterr().err
    assert "cannot write" in err and "Permission denied" in err


def test_dask_refuses_a_non_empty_output_folder_before_any_work(tmp_path: Path) -> None:
    from hybrid_sim.apps.dask import score_directory

    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("x")
    with pytest.raises(ValueError, match="refusing to replace it"):
        score_directory(pairs_csv(tmp_path / "in.csv"), tmp_path / "out", "tcp://127.0.0.1:9")
    assert (tmp_path / "out" / "keep.txt").read_text() == "x"


def test_evaluate_on_the_models_own_training_data_warns_that_it_is_in_sample(
        tmp_path: Path, capsys) -> None:
    data = rated_csv(tmp_path / "rated.csv")
    assert run(["train", str(data), "-o", str(tmp_path / "m"), "--groups", "bow", "fuzzy", "--cv", "2",
                "--quiet"]) == 0
    capsys.readouterr()
    assert run(["evaluate", str(data), "--model", str(tmp_path / "m")]) == 0
    assert "in-sample" in capsys.readouterr().err
    other = rated_csv(tmp_path / "other.csv", synthetic_rated(seed=1))
    assert run(["evaluate", str(other), "--model", str(tmp_path / "m")]) == 0
    assert "in-sample" not in capsys.readouterr().err


def test_the_monotone_stacker_trains_on_less_data_than_lightgbm_needs(tmp_path: Path) -> None:
    small = rated_csv(tmp_path / "small.csv", synthetic_rated(40))  # LightGBM would need 80
    assert run(["train", str(small), "-o", str(tmp_path / "m"), "--groups", "bow", "fuzzy", "--cv", "2",
                "--quiet"]) == 0
    assert run(["train", str(small), "-o", str(tmp_path / "m2"), "--groups", "bow", "fuzzy", "--cv", "2",
                "--stacker", "lightgbm", "--quiet"]) == 2


def test_json_output_keeps_texts_that_look_like_json(model: Path, tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    texts = ['I feel sad},{"x": 1', "Felt [low]\nand ,\"tired\""]
    pd.DataFrame({"sentence_1": texts, "sentence_2": ["I feel low", "Felt down"]}).to_csv(src, index=False)
    assert run(["score", str(src), "-o", str(tmp_path / "o.json"), "--model", str(model), "--quiet",
                "--chunk-rows", "1"]) == 0
    got = json.loads((tmp_path / "o.json").read_text(encoding="utf-8"))
    assert [r["sentence_1"] for r in got] == texts
