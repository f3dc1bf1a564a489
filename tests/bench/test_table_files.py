"""The CSV and Markdown pair every `gsf bench` command writes (gsf.bench.table_files)."""

import csv

from gsf.bench.table_files import write_table


def test_write_table_writes_the_csv_and_the_markdown_under_its_title_and_preamble(tmp_path):
    rows = [{"model": "tsn", "ms": 1.5, "note": None}, {"model": "gsf", "ms": 2.25, "note": "a | b"}]
    path = write_table(rows, columns=("model", "ms", "note"), out_dir=tmp_path / "new", stem="bench-x",
                       title="Some benchmark", preamble=["conditions line", "a note"])
    assert path == tmp_path / "new" / "bench-x"
    with open(f"{path}.csv") as f:
        assert list(csv.DictReader(f)) == [{"model": "tsn", "ms": "1.5", "note": ""},
                                           {"model": "gsf", "ms": "2.25", "note": "a | b"}]
    assert (tmp_path / "new" / "bench-x.md").read_text() == (
        "# Some benchmark\n\nconditions line\n\na note\n\n"
        "| model | ms | note |\n|---|---|---|\n| tsn | 1.5 |  |\n| gsf | 2.25 | a \\| b |\n")
