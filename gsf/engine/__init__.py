"""Training and evaluation engine: typed configuration, the training loop, multi-view evaluation,
checkpoints. Names are imported on first use, so ``import gsf.engine`` does no work.

Public API (the contract in docs/CONTRIBUTING.md)::

    from gsf.engine import TrainConfig, load_config, train, evaluate_checkpoint, Callback
    config = load_config("experiments/configs/synthetic.yaml", overrides=["optim.lr=0.02"])
    result = train(config, out_dir=Path("runs/x"), resume=False, callbacks=[cb])

Metrics per epoch (``Callback.on_epoch_end``; epochs 1-based; accuracies are fractions): ``epoch``,
``train_loss``, ``train_top1``, ``lr``, ``clips_per_second``, ``train_skipped``, the training health of
:mod:`gsf.engine.health` (``grad_norm_mean``, ``grad_norm_max``, ``clipped_share``; for GSF and GSM the gate
and fusion statistics per stage) and, under ``runtime.compile``, ``compile_seconds`` (left out of
``clips_per_second``; docs/compile.md); on validation epochs ``val_loss``, ``val_top1``, ``val_top5``,
``val_mean_class_acc``, ``best_val_top1``, ``best_epoch`` (EPIC adds ``val_verb_top1``, ``val_verb_top5``,
``val_noun_top1``, ``val_noun_top5``; its ``val_top1`` is the action's). The final result adds
``final_val_top1``, ``final_val_top5`` and, under ``runtime.compile``, ``total_compile_seconds``.

Data parallel (DDP): ``train`` runs in every rank of a process group that Ray Train
(:mod:`gsf.engine.worker_group`: ``fit_worker_group``, ``fit_local`` for ``gsf train --nproc N``) or torchrun
(:mod:`experiments.torchrun_train`) started; see :mod:`gsf.engine.distributed`.

Import order (no module imports one above it): ``config`` and ``distributed`` -> ``checkpoint`` ->
``loaders`` (data sets, loaders, seeding, autocast, class count) -> ``evaluate`` -> ``trainer`` (``train``)
-> ``worker_group``. Errors are in :mod:`gsf.errors`. The commands that drive the engine (``gsf train``,
``gsf eval``, torchrun's entry point) log to MLflow and live a layer up, in ``experiments``.
"""

_LAZY = {
    "TrainConfig": "gsf.engine.config",
    "ModelConfig": "gsf.engine.config",
    "DataConfig": "gsf.engine.config",
    "OptimConfig": "gsf.engine.config",
    "RuntimeConfig": "gsf.engine.config",
    "load_config": "gsf.engine.config",
    "check_config": "gsf.engine.config",
    "Callback": "gsf.engine.callbacks",
    "train": "gsf.engine.trainer",
    "lr_factor": "gsf.engine.trainer",
    "scaled_lr": "gsf.engine.trainer",
    "NonFiniteLossError": "gsf.errors",
    "evaluate_checkpoint": "gsf.engine.evaluate",
    "fit_local": "gsf.engine.worker_group",
    "fit_worker_group": "gsf.engine.worker_group",
    "RankFailedError": "gsf.errors",
    "load_checkpoint": "gsf.engine.checkpoint",
    "save_checkpoint": "gsf.engine.checkpoint",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'gsf.engine' has no attribute {name!r}")


__all__ = sorted(_LAZY)
