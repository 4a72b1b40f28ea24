"""Where a benchmark's numbers go: JSON for scripts, a Markdown table for the docs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_results(out: Path, payload: Any, table_lines: list[str]) -> None:
    """Write ``out``.json and ``out``.md (the table), and print the table."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(payload, indent=2, default=float))
    out.with_suffix(".md").write_text("\n".join(table_lines) + "\n")
    print("\n".join(table_lines))
