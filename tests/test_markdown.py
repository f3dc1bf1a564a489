"""gsf.markdown: the one Markdown table writer of the suite."""

from gsf.markdown import markdown_table


def test_a_table_has_its_header_a_separator_and_a_line_a_row_with_pipes_escaped_and_breaks_flattened():
    text = markdown_table(["a", "b|c"], [[1, "x|y"], ["two\nlines", 2.5]])
    assert text == ("| a | b\\|c |\n"
                    "|---|---|\n"
                    "| 1 | x\\|y |\n"
                    "| two lines | 2.5 |\n")


def test_a_table_without_rows_is_its_header_and_separator():
    assert markdown_table(("only",), []) == "| only |\n|---|\n"
