"""Grid files: one YAML file per study (paper table), expanded into trials.

A grid names a base training configuration, fixed overrides (``set``), axes whose Cartesian product gives
the trials (in file order, seeds innermost), partial matches removed from the product (``exclude``) and
extra assignments appended after it (``include``, for one-factor-at-a-time studies that are not a product).
See ``docs/CONTRIBUTING.md`` (Grids and MLflow layout) for the format; this module adds optional
``include``, ``resources`` and ``tune`` sections::

    include:                       # extra trials after the product, each with every seed
      - {model.temporal: gsf, model.groups: 4}
    resources: {cpus_per_trial: 1, gpus_per_trial: 0, data_parallel: none, max_concurrent: 2}
    # data parallel (DDP): each trial a Ray Train worker group, its ranks placed on any nodes with room:
    #   {data_parallel: ddp, workers_per_trial: 8, gpus_per_worker: 1, cpus_per_worker: 4, placement: spread}
    #   (gpus_per_worker 0: gloo ranks on CPU; placement pack (default): as few nodes as possible)
    tune:
      metric: val_top1             # what ASHA and Optuna optimise: an engine metric (TUNE_METRICS), read at
      mode: max                    #   every epoch (so runtime.eval_every: 1 for a val_* metric)
      max_failures: 2              # retries of a failed trial, each from its last checkpoint
      scheduler: {type: asha, grace_period: 5, reduction_factor: 3}   # max_t: optim.epochs unless given
      search:                      # sampled axes, next to the plain grid axes
        algorithm: random          # or optuna
        num_samples: 4             # samples per grid point: points x num_samples trials

A grid goes through four steps, each a function of the previous step's value (a sweep then plans and runs
the trials: :func:`experiments.trials.plan_trials`, :func:`experiments.runner.run_sweep`):

1. :func:`experiments.grid.load.load_grid`: YAML file -> :class:`~experiments.grid.types.Grid`, every section
   shape-checked (errors name the file and the field);
2. :func:`experiments.grid.validate.validate_grid`: the rules across sections (exclude and baseline name axis
   values, a sampled key is no axis);
3. :func:`experiments.grid.expand.expand`: the trials, deterministically, without the engine;
4. :func:`experiments.grid.resolve.resolve`: each trial's overrides applied to the base configuration through
   :mod:`gsf.engine.config` (unknown keys and bad values reported there, with the grid file and the trial
   named), the engine's cross-field and model checks, the ``tune`` rules per trial, and the config hash.

:mod:`experiments.grid.complexity` counts a trial's GMACs and parameters on the meta device.
"""
