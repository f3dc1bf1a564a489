"""The files every ``gsf bench`` command writes: one table as CSV and as Markdown under a heading and the
conditions it was measured in (results/benchmarks/README.md lists them and their commands)."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from gsf.markdown import markdown_table


def write_table(rows: Sequence[dict], *, columns: Sequence[str], out_dir: Path, stem: str, title: str,
                preamble: Sequence[str]) -> Path:
    """Write ``rows`` (dicts keyed by ``columns``) to ``out_dir/stem.csv`` and ``out_dir/stem.md``: the
    Markdown file is ``# title``, each paragraph of ``preamble``, then the table, with empty cells for
    None. Returns ``out_dir/stem`` (no suffix)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / f"{stem}.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(columns))
        writer.writeheader()
        writer.writerows(rows)
    table = markdown_table(columns, (["" if row[c] is None else row[c] for c in columns] for row in rows))
    (out_dir / f"{stem}.md").write_text("\n\n".join([f"# {title}", *preamble, table]))
    return out_dir / stem
