"""Markdown tables as the suite writes them (results/benchmarks, results/demo-factors, ``gsf report``): one
function, so every table escapes its cells alike."""

from __future__ import annotations

from collections.abc import Iterable


def markdown_table(header: Iterable, rows: Iterable[Iterable]) -> str:
    """A GitHub Markdown table of ``header`` and ``rows`` (each cell written with ``str``): the header line,
    a ``|---|`` separator line, one line a row; a cell's ``|`` is escaped and its line breaks become spaces.
    Ends with a newline."""

    def line(cells: Iterable) -> str:
        return "| " + " | ".join(str(cell).replace("|", "\\|").replace("\n", " ") for cell in cells) + " |"

    header = list(header)
    lines = [line(header), "|" + "|".join("---" for _ in header) + "|"]
    lines += [line(row) for row in rows]
    return "\n".join(lines) + "\n"
