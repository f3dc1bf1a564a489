"""Ablation grids, their execution with Ray Tune and their tracking in MLflow.

This package is the only place (with the report) that knows about Ray and MLflow; the model core and the
training engine know nothing of them. Nothing is imported eagerly: ``import experiments.grid.load`` is cheap
and needs neither Ray nor MLflow.

- :mod:`experiments.grid`: grid files (YAML) loaded, validated, expanded into trials and resolved, one module
  per step; :mod:`experiments.trials`: the resolved trials planned for a sweep.
- :mod:`experiments.tracking`: the MLflow layout (experiment = study, parent run per sweep, child run per
  trial).
- :mod:`experiments.runner`: the Ray Tune trainable and the sweep driver; :mod:`experiments.tune_state`: Tune's
  state files kept resumable.
- the commands, one entry module each: :mod:`experiments.sweep_cli` (``gsf sweep``), :mod:`experiments.ui_cli`
  (``gsf ui``; the UI's views are :mod:`experiments.ui`), :mod:`experiments.train_cli` (``gsf train``),
  :mod:`experiments.eval_cli` (``gsf eval``).
"""
