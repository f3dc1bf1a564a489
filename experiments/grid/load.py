"""Step 1 of the grid pipeline: a grid file read and each section shape-checked (:mod:`experiments.grid`)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from experiments.grid.types import DRIVER_CPUS, SEED_KEY, Grid, Resources, TuneSettings, grid_error
from gsf.errors import GSFConfigError

GRID_KEYS = ("study", "table", "description", "base_config", "set", "axes", "include", "seeds", "exclude",
             "baseline", "resources", "tune")
RESOURCE_KEYS = ("cpus_per_trial", "gpus_per_trial", "data_parallel", "workers_per_trial", "cpus_per_worker",
                 "gpus_per_worker", "placement", "max_concurrent")
PLACEMENTS = ("pack", "spread")  # Ray Train's PACK/SPREAD placement of a trial's workers
DATA_PARALLEL = ("none", "ddp")
TUNE_KEYS = ("metric", "mode", "max_failures", "scheduler", "search")
SCHEDULER_KEYS = ("type", "grace_period", "reduction_factor", "max_t")
SEARCH_KEYS = ("algorithm", "num_samples", "space")
SEARCH_ALGORITHMS = ("random", "optuna")
DISTRIBUTIONS = ("uniform", "loguniform", "choice", "randint")
# What a scheduler or search may optimise: the engine's per-epoch quality metrics (docs/CONTRIBUTING.md,
# gsf.engine); losses are minimised, accuracies maximised.
TUNE_METRICS = ("val_top1", "val_top5", "val_mean_class_acc", "best_val_top1", "val_loss", "train_top1", "train_loss")
MINIMISED_METRICS = ("val_loss", "train_loss")

def _check_key(path: Path, where: str, key: object) -> str:
    if not isinstance(key, str) or not re.fullmatch(r"[a-z_]+\.[a-z_0-9]+", key):
        raise grid_error(path, where, f"key {key!r} must be a dotted configuration key 'section.key' "
                                  "(e.g. model.channel_fraction)")
    return key


def _check_value(path: Path, where: str, value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        raise grid_error(path, where, f"value {value!r} is not finite")
    if isinstance(value, list):
        for item in value:
            if isinstance(item, (dict, list)):
                raise grid_error(path, where, f"value {value!r}: lists may hold only scalars")
        return list(value)
    if isinstance(value, dict):
        raise grid_error(path, where, f"value {value!r} must be a scalar or a list of scalars, not a mapping")
    return value


def _mapping(path: Path, where: str, value: object) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise grid_error(path, where, f"must be a mapping, got {type(value).__name__} {value!r}")
    return value


def _unknown(path: Path, where: str, given: Iterable, valid: tuple) -> None:
    import difflib

    for key in given:
        if key not in valid:
            match = difflib.get_close_matches(str(key), valid, n=1)
            hint = f"; did you mean {match[0]!r}?" if match else f"; valid keys: {', '.join(valid)}"
            raise grid_error(path, where, f"unknown key {key!r}{hint}")


def _positive_number(path: Path, where: str, value: object, *, integer: bool, allow_zero: bool = False) -> Any:
    ok = not isinstance(value, bool) and isinstance(value, int if integer else (int, float))
    if not ok or value < 0 or (value == 0 and not allow_zero):
        kind = "an integer" if integer else "a number"
        raise grid_error(path, where, f"must be {kind} {'>= 0' if allow_zero else '> 0'}, got {value!r}")
    return value


def _load_resources(path: Path, raw: object) -> Resources:
    """``resources``: one process per trial (``cpus_per_trial``, ``gpus_per_trial``), or with ``data_parallel:
    ddp`` a Ray Train worker group of ``workers_per_trial`` ranks, each reserving ``cpus_per_worker`` CPUs and
    ``gpus_per_worker`` (0 or 1) GPUs, placed ``pack`` (fewest nodes) or ``spread`` (one node each if possible)."""
    raw = _mapping(path, "resources", raw)
    _unknown(path, "resources", raw, RESOURCE_KEYS)
    parallel = raw.get("data_parallel", "none")
    if parallel not in DATA_PARALLEL:
        raise grid_error(path, "resources.data_parallel", f"{parallel!r} is not one of {list(DATA_PARALLEL)}")
    concurrent = raw.get("max_concurrent")
    if concurrent is not None:
        _positive_number(path, "resources.max_concurrent", concurrent, integer=True)
    worker_keys = [key for key in ("workers_per_trial", "cpus_per_worker", "gpus_per_worker", "placement") if key in raw]
    if parallel == "none":
        if worker_keys and raw.get("workers_per_trial", 1) != 1:
            raise grid_error(path, "resources.workers_per_trial",
                             f"{raw['workers_per_trial']} processes per trial need data_parallel: ddp")
        if worker_keys and worker_keys != ["workers_per_trial"]:
            raise grid_error(path, f"resources.{[k for k in worker_keys if k != 'workers_per_trial'][0]}",
                             "is a setting of a data-parallel trial's workers: set data_parallel: ddp")
        cpus = _positive_number(path, "resources.cpus_per_trial", raw.get("cpus_per_trial", 1), integer=False)
        gpus = _positive_number(path, "resources.gpus_per_trial", raw.get("gpus_per_trial", 0), integer=False,
                                allow_zero=True)
        return Resources(float(cpus), float(gpus), parallel, concurrent, 1)
    workers = raw.get("workers_per_trial")
    if workers is None or isinstance(workers, bool) or not isinstance(workers, int) or workers < 2:
        raise grid_error(path, "resources.data_parallel", "ddp needs workers_per_trial >= 2 (an integer: the Ray "
                                                          f"Train workers, one rank each), got {workers!r}")
    for key in ("cpus_per_trial", "gpus_per_trial"):
        if key in raw:
            per_worker = key.replace("_trial", "_worker")
            raise grid_error(path, f"resources.{key}", f"with data_parallel: ddp each of the workers_per_trial "
                                                       f"workers reserves its own: set {per_worker} instead")
    cpus = _positive_number(path, "resources.cpus_per_worker", raw.get("cpus_per_worker", 1), integer=False)
    gpus = raw.get("gpus_per_worker", 0)
    if gpus not in (0, 1) or isinstance(gpus, bool):
        raise grid_error(path, "resources.gpus_per_worker", f"must be 0 (gloo on CPU) or 1 (one GPU per rank, "
                                                            f"nccl), got {gpus!r}")
    placement = raw.get("placement", "pack")
    if placement not in PLACEMENTS:
        raise grid_error(path, "resources.placement", f"{placement!r} is not one of {list(PLACEMENTS)}")
    return Resources(DRIVER_CPUS, 0.0, parallel, concurrent, workers, cpus_per_worker=float(cpus),
                     gpus_per_worker=float(gpus), placement=placement)


def _number_pair(path: Path, where: str, kind: str, args: object) -> list:
    """``[low, high]`` of a uniform/loguniform/randint distribution, checked: numbers (integers for randint),
    finite, ``low < high``, ``low > 0`` for loguniform."""
    integer = kind == "randint"
    types = int if integer else (int, float)
    if (not isinstance(args, list) or len(args) != 2
            or any(isinstance(a, bool) or not isinstance(a, types) for a in args)):
        what = "two integers" if integer else "two numbers"
        raise grid_error(path, where, f"{kind} needs [low, high] ({what}), got {args!r}")
    low, high = args
    if not all(math.isfinite(a) for a in args):
        raise grid_error(path, where, f"{kind} bounds must be finite, got {args!r}")
    if not low < high:
        hint = " (high is exclusive)" if integer else ""
        raise grid_error(path, where, f"{kind} needs low < high{hint}, got {args!r}")
    if kind == "loguniform" and low <= 0:
        raise grid_error(path, where, f"loguniform needs a positive low bound, got {args!r}")
    return [low, high]


def _load_distribution(path: Path, key: object, dist: object) -> tuple[str, list]:
    where = f"tune.search.space.{key}"
    _check_key(path, where, key)
    if key == SEED_KEY:
        raise grid_error(path, where, "seeds are not sampled: list them in the top-level 'seeds'")
    dist = _mapping(path, where, dist)
    if len(dist) != 1 or next(iter(dist)) not in DISTRIBUTIONS:
        raise grid_error(path, where, f"must be one of {{{': [..]}, {'.join(DISTRIBUTIONS)}: [..]}}, got {dist!r}")
    kind, args = next(iter(dist.items()))
    if kind != "choice":
        return kind, _number_pair(path, where, kind, args)
    if not isinstance(args, list) or not args:
        raise grid_error(path, where, f"choice needs a non-empty list of values, got {args!r}")
    values = [_check_value(path, where, v) for v in args]
    if len({json.dumps(v, sort_keys=True) for v in values}) != len(values):
        raise grid_error(path, where, f"choice repeats a value: {values!r}")
    return kind, values


def _load_tune(path: Path, raw: object) -> TuneSettings:
    raw = _mapping(path, "tune", raw)
    _unknown(path, "tune", raw, TUNE_KEYS)
    metric = raw.get("metric", "val_top1")
    mode = raw.get("mode", "max")
    if metric not in TUNE_METRICS:
        raise grid_error(path, "tune.metric", f"{metric!r} is not a metric the engine reports every epoch; one of "
                                          f"{', '.join(TUNE_METRICS)}")
    if mode not in ("min", "max"):
        raise grid_error(path, "tune.mode", f"must be min or max, got {mode!r}")
    expected = "min" if metric in MINIMISED_METRICS else "max"
    if mode != expected:
        raise grid_error(path, "tune.mode", f"{mode!r} would favour the worst trials: {metric} is "
                                        f"{'a loss' if expected == 'min' else 'an accuracy'}, use mode: {expected}")
    failures = _positive_number(path, "tune.max_failures", raw.get("max_failures", 2), integer=True, allow_zero=True)
    scheduler = raw.get("scheduler")
    if scheduler is not None:
        scheduler = _mapping(path, "tune.scheduler", scheduler)
        _unknown(path, "tune.scheduler", scheduler, SCHEDULER_KEYS)
        if scheduler.get("type", "asha") != "asha":
            raise grid_error(path, "tune.scheduler.type", f"only 'asha' is supported, got {scheduler.get('type')!r}")
        grace = _positive_number(path, "tune.scheduler.grace_period", scheduler.get("grace_period", 1), integer=True)
        factor = scheduler.get("reduction_factor", 3)
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not factor > 1:
            raise grid_error(path, "tune.scheduler.reduction_factor", f"must be a number > 1 (each rung keeps the best "
                                                                  f"1/reduction_factor of its trials), got {factor!r}")
        max_t = scheduler.get("max_t")
        if max_t is not None:
            _positive_number(path, "tune.scheduler.max_t", max_t, integer=True)
            if not grace < max_t:
                raise grid_error(path, "tune.scheduler.max_t", f"{max_t} must exceed grace_period={grace}")
        scheduler = {"type": "asha", "grace_period": grace, "reduction_factor": factor, "max_t": max_t}
    search = raw.get("search")
    if search is not None:
        search = _mapping(path, "tune.search", search)
        _unknown(path, "tune.search", search, SEARCH_KEYS)
        algorithm = search.get("algorithm", "random")
        if algorithm not in SEARCH_ALGORITHMS:
            raise grid_error(path, "tune.search.algorithm", f"{algorithm!r} is not one of {list(SEARCH_ALGORITHMS)}")
        samples = _positive_number(path, "tune.search.num_samples", search.get("num_samples", 1), integer=True)
        space = _mapping(path, "tune.search.space", search.get("space"))
        if not space:
            raise grid_error(path, "tune.search.space", "must name at least one sampled key")
        space = {key: dict([_load_distribution(path, key, dist)]) for key, dist in space.items()}
        combinations = 1
        for dist in space.values():
            kind, args = next(iter(dist.items()))
            combinations = (combinations * (len(args) if kind == "choice" else args[1] - args[0])
                            if kind in ("choice", "randint") else math.inf)
        if samples > combinations:
            raise grid_error(path, "tune.search.num_samples", f"{samples} samples of a space with only {combinations} "
                                                          "distinct points would repeat trials; make it a grid axis")
        search = {"algorithm": algorithm, "num_samples": samples, "space": space}
    return TuneSettings(metric, mode, int(failures), scheduler, search)


def _partial_configs(path: Path, section: str, raw: object, *, expected: str, if_empty: str = "",
                     checked: bool = False) -> list[dict]:
    """``include`` or ``exclude``: a list of non-empty mappings of dotted keys. ``checked``: each key and value
    is checked here and no entry may set the seed (include); otherwise the entries are copied as given, for
    :func:`experiments.grid.validate.validate_grid` to check against the axes (exclude)."""
    raw = raw or []
    if not isinstance(raw, list):
        raise grid_error(path, section, f"must be a list of {expected}, got {raw!r}")
    entries = []
    for i, entry in enumerate(raw):
        where = f"{section}[{i}]"
        entry = _mapping(path, where, entry)
        if not entry:
            raise grid_error(path, where, f"is empty{if_empty}")
        if not checked:
            entries.append(dict(entry))
            continue
        values = {}
        for key, value in entry.items():
            _check_key(path, f"{where}.{key}", key)
            if key == SEED_KEY:
                raise grid_error(path, f"{where}.{key}", "seeds come from the top-level 'seeds' list")
            values[key] = _check_value(path, f"{where}.{key}", value)
        entries.append(values)
    return entries


def load_grid(path: str | Path) -> Grid:
    """Read a grid file and shape-check each of its sections (no engine involved); errors name the file and
    the field. The rules across sections are :func:`experiments.grid.validate.validate_grid`'s."""
    path = Path(path)
    if not path.is_file():
        raise GSFConfigError(f"grid file {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise GSFConfigError(f"grid {path}: invalid YAML ({err})") from err
    raw = _mapping(path, "top level", raw)
    _unknown(path, "top level", raw, GRID_KEYS)
    for key in ("study", "table", "base_config"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise grid_error(path, key, f"is required and must be a non-empty string, got {raw.get(key)!r}")
    base = (path.parent / raw["base_config"]).resolve()
    if not base.is_file():
        raise grid_error(path, "base_config", f"{raw['base_config']!r} resolves to {base}, which does not exist")
    fixed = {}
    for key, value in _mapping(path, "set", raw.get("set")).items():
        fixed[_check_key(path, f"set.{key}", key)] = _check_value(path, f"set.{key}", value)
    axes: dict[str, list] = {}
    for key, values in _mapping(path, "axes", raw.get("axes")).items():
        where = f"axes.{key}"
        _check_key(path, where, key)
        if key == SEED_KEY:
            raise grid_error(path, where, "seeds are their own axis: use the top-level 'seeds' list")
        if not isinstance(values, list) or not values:
            raise grid_error(path, where, f"must be a non-empty list of values, got {values!r}")
        values = [_check_value(path, where, v) for v in values]
        if len({json.dumps(v, sort_keys=True) for v in values}) != len(values):
            raise grid_error(path, where, f"repeats a value: {values!r}")
        axes[key] = values
    include = _partial_configs(path, "include", raw.get("include"), expected="mappings", checked=True)
    if not axes and not include:
        raise grid_error(path, "axes", "a grid needs at least one axis (or an 'include' list)")
    seeds = raw.get("seeds", [0])
    if (not isinstance(seeds, list) or not seeds or any(isinstance(s, bool) or not isinstance(s, int) for s in seeds)
            or len(set(seeds)) != len(seeds)):
        raise grid_error(path, "seeds", f"must be a non-empty list of distinct integers, got {seeds!r}")
    exclude = _partial_configs(path, "exclude", raw.get("exclude"), expected="partial matches",
                               if_empty=" (it would remove every trial)")
    baseline = _mapping(path, "baseline", raw.get("baseline"))
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise grid_error(path, "description", f"must be a string, got {description!r}")
    return Grid(path=path, study=raw["study"].strip(), table=raw["table"].strip(), description=description.strip(),
                base_config=base, set=fixed, axes=axes, include=include, seeds=list(seeds), exclude=exclude,
                baseline=dict(baseline), resources=_load_resources(path, raw.get("resources")),
                tune=_load_tune(path, raw.get("tune")))



def load_grids(paths: Iterable[str | Path]) -> list[Grid]:
    """Load several grid files, or every ``*.yaml`` of a folder given in ``paths``."""
    grids = []
    for item in paths:
        item = Path(item)
        files = sorted(item.glob("*.yaml")) if item.is_dir() else [item]
        grids += [load_grid(f) for f in files]
    return grids

