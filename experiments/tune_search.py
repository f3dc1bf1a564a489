"""The Ray Tune side of a grid's ``tune`` section: the ASHA scheduler and the random / Optuna search spaces.

Kept apart from :mod:`experiments.runner` because it imports Ray at import time: Tune pickles the scheduler
and the Optuna space with the sweep's state (``--resume`` unpickles them), so both are module-level classes.

Sampled trials: ``num_samples`` per grid point with either algorithm. Random search crosses the grid points
(``tune.grid_search``) with ``num_samples`` independent draws each; Optuna asks one TPE study for every trial
and hands the grid points out in turn (trial ``n`` gets point ``n mod points``), so each point gets the same
number of samples and the study models the sampled keys over all points.

Both draw from generators seeded with :data:`SEARCH_SEED`, whose state Tune keeps in its experiment snapshot.
A driver that dies loses the trials it created after its last snapshot (Tune takes one every 10 s or more);
``--resume`` restores the generator as it was then and draws those trials again, identically, so they find
their MLflow runs (same config hash) instead of becoming new samples next to orphaned runs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from ray import tune
from ray.tune.schedulers import ASHAScheduler, TrialScheduler

from gsf.mlflow_schema import EPOCH

# The key of every Tune report that holds the trial's optim.epochs (reported to Tune only, never to MLflow).
TOTAL_EPOCHS = "total_epochs"
SEARCH_SEED = 0


class LastEpochASHA(ASHAScheduler):
    """ASHA (Li et al., 2020) that never stops a trial at its last epoch.

    Stopping there saves nothing and would cut the engine's final evaluation, so a trial that reaches its last
    epoch always finishes; every other rung decision is ASHA's. Trials report ``TOTAL_EPOCHS`` with each epoch.
    """

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        decision = super().on_trial_result(tune_controller, trial, result)
        total = result.get(TOTAL_EPOCHS)
        if decision == TrialScheduler.STOP and total is not None and result.get(EPOCH, 0) >= total:
            self._num_stopped -= 1
            return TrialScheduler.CONTINUE
        return decision


def make_asha(settings: Mapping[str, Any], *, metric: str, mode: str, epochs: int) -> LastEpochASHA:
    """The grid's ``tune.scheduler`` as a scheduler on epochs (``training_iteration``: one report per epoch);
    ``epochs``: the largest ``optim.epochs`` of the grid's trials, the default ``max_t``."""
    return LastEpochASHA(time_attr="training_iteration", metric=metric, mode=mode,
                         max_t=settings.get("max_t") or epochs, grace_period=settings["grace_period"],
                         reduction_factor=settings["reduction_factor"], stop_last_trials=False)


def random_space(space: Mapping[str, Mapping[str, list]]) -> dict[str, Any]:
    """The grid's ``tune.search.space`` as Tune domains (``randint``'s high bound is exclusive in both)."""
    domains = {}
    for key, dist in space.items():
        kind, args = next(iter(dist.items()))
        if kind == "uniform":
            domains[key] = tune.uniform(*args)
        elif kind == "loguniform":
            domains[key] = tune.loguniform(*args)
        elif kind == "randint":
            domains[key] = tune.randint(*args)
        else:
            domains[key] = tune.choice(list(args))
    return domains


def make_random(*, max_concurrent: int | None):
    """Tune's variant generator (grid points x ``num_samples`` draws), seeded; it enforces ``max_concurrent``
    itself (Tune ignores ``max_concurrent_trials`` next to a generator it did not make)."""
    from ray.tune.search import BasicVariantGenerator

    return BasicVariantGenerator(random_state=SEARCH_SEED, max_concurrent=max_concurrent or 0)


class OptunaSpace:
    """Define-by-run space for ``OptunaSearch``: the sampled keys, and the grid point (``trial``) in turn."""

    def __init__(self, slugs: Sequence[str], space: Mapping[str, Mapping[str, list]]):
        self.slugs = list(slugs)
        self.space = {key: dict(dist) for key, dist in space.items()}

    def __call__(self, ot_trial) -> dict[str, Any]:
        fixed: dict[str, Any] = {"trial": self.slugs[ot_trial.number % len(self.slugs)]}
        for key, dist in self.space.items():
            kind, args = next(iter(dist.items()))
            if kind == "uniform":
                ot_trial.suggest_float(key, args[0], args[1])
            elif kind == "loguniform":
                ot_trial.suggest_float(key, args[0], args[1], log=True)
            elif kind == "randint":
                ot_trial.suggest_int(key, args[0], args[1] - 1)
            elif all(value is None or isinstance(value, (bool, int, float, str)) for value in args):
                ot_trial.suggest_categorical(key, list(args))
            else:  # Optuna's categories are scalars: sample the index of a list value
                labels = [json.dumps(value) for value in args]
                fixed[key] = args[labels.index(ot_trial.suggest_categorical(key, labels))]
        return fixed


def make_optuna(slugs: Sequence[str], space: Mapping[str, Mapping[str, list]], *, metric: str, mode: str):
    """An Optuna TPE searcher (seeded) over the grid's sampled keys, handing out the grid points in turn."""
    from ray.tune.search.optuna import OptunaSearch

    return OptunaSearch(space=OptunaSpace(slugs, space), metric=metric, mode=mode, seed=SEARCH_SEED)
