"""Reports of GSF Bench: tables and figures read back from the MLflow runs of the sweep runner.

- :mod:`analysis.runs`: ``mlflow.search_runs`` -> one tidy row per trial run, metric histories, score
  artifacts.
- :mod:`analysis.tables`: one row per variant (config minus seed), mean/std over seeds, Welch's t-test
  against the baseline row, the paper's number joined; Markdown, CSV and LaTeX writers.
- :mod:`analysis.scores`: per-class and within-pair accuracy from per-video score CSVs.
- :mod:`analysis.figures`: matplotlib figures (PNG and PDF, without creation dates).
- :mod:`analysis.paper`: the paper's confirmed numbers in ``analysis/paper_data/`` (described in ``results/paper/README.md``).
- :mod:`analysis.report_cli`: ``gsf report``; :mod:`analysis.demo_cli`: ``gsf demo``.

Importing this package imports nothing heavy (no MLflow, no matplotlib).
"""
