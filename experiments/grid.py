"""Grid files: one YAML file per study (paper table), expanded into trials.

A grid names a base training configuration, fixed overrides (``set``), axes whose Cartesian product gives
the trials (in file order, seeds innermost), partial matches removed from the product (``exclude``) and
extra assignments appended after it (``include``, for one-factor-at-a-time studies that are not a product).
See ``docs/CONTRIBUTING-internal.md`` (Grids and MLflow layout) for the format; this module adds optional
``include``, ``resources`` and ``tune`` sections::

    include:                       # extra trials after the product, each with every seed
      - {model.temporal: gsf, model.groups: 4}
    resources: {cpus_per_trial: 1, gpus_per_trial: 0, data_parallel: none, max_concurrent: 2}
    # data parallel (DDP) inside each trial, one process per GPU:  {gpus_per_trial: 4, data_parallel: ddp}
    # or N gloo processes on CPU:        {cpus_per_trial: 2, data_parallel: ddp, workers_per_trial: 2}
    tune:
      metric: val_top1             # what ASHA and Optuna optimise: an engine metric (TUNE_METRICS), read at
      mode: max                    #   every epoch (so runtime.eval_every: 1 for a val_* metric)
      max_failures: 2              # retries of a failed trial, each from its last checkpoint
      scheduler: {type: asha, grace_period: 5, reduction_factor: 3}   # max_t: optim.epochs unless given
      search:                      # sampled axes, next to the plain grid axes
        algorithm: random          # or optuna
        num_samples: 4             # samples per grid point: points x num_samples trials
        space: {optim.lr: {loguniform: [0.001, 0.1]}}   # uniform, loguniform, randint [low, high), choice

Expansion is deterministic and needs no engine; :func:`resolve` applies each trial's overrides to the base
configuration through :mod:`gsf.engine.config` (so unknown keys and bad values are reported there, with the
grid file and the trial named), runs the engine's cross-field and model checks, and hashes the result.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gsf.errors import GSFConfigError

GRID_KEYS = ("study", "table", "description", "base_config", "set", "axes", "include", "seeds", "exclude",
             "baseline", "resources", "tune")
RESOURCE_KEYS = ("cpus_per_trial", "gpus_per_trial", "data_parallel", "workers_per_trial", "max_concurrent")
DATA_PARALLEL = ("none", "ddp")
TUNE_KEYS = ("metric", "mode", "max_failures", "scheduler", "search")
SCHEDULER_KEYS = ("type", "grace_period", "reduction_factor", "max_t")
SEARCH_KEYS = ("algorithm", "num_samples", "space")
SEARCH_ALGORITHMS = ("random", "optuna")
DISTRIBUTIONS = ("uniform", "loguniform", "choice", "randint")
# What a scheduler or search may optimise: the engine's per-epoch quality metrics (docs/CONTRIBUTING-internal.md,
# gsf.engine); losses are minimised, accuracies maximised.
TUNE_METRICS = ("val_top1", "val_top5", "val_mean_class_acc", "best_val_top1", "val_loss", "train_top1", "train_loss")
MINIMISED_METRICS = ("val_loss", "train_loss")
SEED_KEY = "runtime.seed"
# Keys that change how a run executes or reports, never what it computes: left out of the config hash.
NON_AFFECTING_KEYS = ("runtime.progress", "runtime.num_threads")
# Short slug names of common knobs (any other key is named by its last component).
SLUG_NAMES = {"model.channel_fraction": "fraction", "data.num_frames": "frames", "model.last_n_blocks": "last_n",
              "data.input_size": "size", "runtime.seed": "seed"}
# Classes per data set (the head's size, for parameter counts); "list" and SSv2-format synthetic data are
# read from their label file when it exists.
DATASET_CLASSES: dict[str, int | dict[str, int]] = {
    "ssv1": 174, "ssv2": 174, "diving48": 48, "kinetics400": 400, "epic100": {"verb": 97, "noun": 300}, "list": 174,
}


@dataclass(frozen=True)
class Resources:
    """What one trial asks Ray for (``cpus_per_trial``/``gpus_per_trial``: the whole trial, all its
    processes) and how many processes train it: ``data_parallel='ddp'`` runs ``workers_per_trial``
    DDP processes, one per GPU when the trial has GPUs (then ``workers_per_trial = gpus_per_trial``),
    else gloo processes on CPU (:func:`gsf.engine.distributed.launch_local`)."""

    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    data_parallel: str = "none"
    max_concurrent: int | None = None
    workers_per_trial: int = 1


@dataclass(frozen=True)
class TuneSettings:
    """Early stopping and search; everything is off unless the grid asks.

    ``scheduler``: ``{type: asha, grace_period, reduction_factor, max_t}`` (``max_t`` None: the trial's
    ``optim.epochs``); ``search``: ``{algorithm, num_samples, space}``, ``num_samples`` sampled trials per grid
    point with either algorithm.
    """

    metric: str = "val_top1"
    mode: str = "max"
    max_failures: int = 2
    scheduler: dict | None = None
    search: dict | None = None

    @property
    def samples_per_point(self) -> int:
        return self.search["num_samples"] if self.search else 1


@dataclass(frozen=True)
class Grid:
    """A loaded, shape-checked grid file."""

    path: Path
    study: str
    table: str
    description: str
    base_config: Path
    set: dict[str, Any]
    axes: dict[str, list]
    include: list[dict[str, Any]]
    seeds: list[int]
    exclude: list[dict[str, Any]]
    baseline: dict[str, Any]
    resources: Resources = field(default_factory=Resources)
    tune: TuneSettings = field(default_factory=TuneSettings)

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def axis_keys(self) -> list[str]:
        """Every key a trial varies (product axes, then keys only ``include`` sets), without the seed."""
        keys = list(self.axes)
        for entry in self.include:
            keys += [k for k in entry if k not in keys]
        return [k for k in keys if k != SEED_KEY]

    @property
    def search_keys(self) -> list[str]:
        return list((self.tune.search or {}).get("space", {}))


@dataclass(frozen=True)
class Trial:
    """One point of the grid: its knobs (``assignment``), its seed and every override it applies."""

    index: int
    assignment: dict[str, Any]
    seed: int
    overrides: dict[str, Any]
    slug: str


@dataclass(frozen=True)
class ResolvedTrial:
    """A trial with its resolved configuration (``config_dict``: nested plain values) and hash."""

    trial: Trial
    config_dict: dict[str, dict[str, Any]]
    config_hash: str

    @property
    def slug(self) -> str:
        return self.trial.slug


# --- loading and shape checks ------------------------------------------------------------------------

def _error(path: Path, where: str, message: str) -> GSFConfigError:
    return GSFConfigError(f"grid {path}: {where}: {message}")


def _check_key(path: Path, where: str, key: object) -> str:
    if not isinstance(key, str) or not re.fullmatch(r"[a-z_]+\.[a-z_0-9]+", key):
        raise _error(path, where, f"key {key!r} must be a dotted configuration key 'section.key' "
                                  "(e.g. model.channel_fraction)")
    return key


def _check_value(path: Path, where: str, value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        raise _error(path, where, f"value {value!r} is not finite")
    if isinstance(value, list):
        for item in value:
            if isinstance(item, (dict, list)):
                raise _error(path, where, f"value {value!r}: lists may hold only scalars")
        return list(value)
    if isinstance(value, dict):
        raise _error(path, where, f"value {value!r} must be a scalar or a list of scalars, not a mapping")
    return value


def _mapping(path: Path, where: str, value: object) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _error(path, where, f"must be a mapping, got {type(value).__name__} {value!r}")
    return value


def _unknown(path: Path, where: str, given: Iterable, valid: tuple) -> None:
    import difflib

    for key in given:
        if key not in valid:
            match = difflib.get_close_matches(str(key), valid, n=1)
            hint = f"; did you mean {match[0]!r}?" if match else f"; valid keys: {', '.join(valid)}"
            raise _error(path, where, f"unknown key {key!r}{hint}")


def _positive_number(path: Path, where: str, value: object, *, integer: bool, allow_zero: bool = False) -> Any:
    ok = not isinstance(value, bool) and isinstance(value, int if integer else (int, float))
    if not ok or value < 0 or (value == 0 and not allow_zero):
        kind = "an integer" if integer else "a number"
        raise _error(path, where, f"must be {kind} {'>= 0' if allow_zero else '> 0'}, got {value!r}")
    return value


def _load_resources(path: Path, raw: object) -> Resources:
    raw = _mapping(path, "resources", raw)
    _unknown(path, "resources", raw, RESOURCE_KEYS)
    cpus = _positive_number(path, "resources.cpus_per_trial", raw.get("cpus_per_trial", 1), integer=False)
    gpus = _positive_number(path, "resources.gpus_per_trial", raw.get("gpus_per_trial", 0), integer=False,
                            allow_zero=True)
    parallel = raw.get("data_parallel", "none")
    if parallel not in DATA_PARALLEL:
        raise _error(path, "resources.data_parallel", f"{parallel!r} is not one of {list(DATA_PARALLEL)}")
    workers = raw.get("workers_per_trial")
    if workers is not None:
        _positive_number(path, "resources.workers_per_trial", workers, integer=True)
    if parallel == "none" and workers not in (None, 1):
        raise _error(path, "resources.workers_per_trial", f"{workers} processes per trial need data_parallel: ddp")
    if parallel == "ddp" and gpus > 0:
        if gpus < 2 or gpus != int(gpus):
            raise _error(path, "resources.data_parallel", f"ddp on GPUs needs a whole number of GPUs >= 2 per trial "
                                                          f"(one process each), got gpus_per_trial={gpus!r}; for "
                                                          "ddp on CPU set gpus_per_trial: 0 and workers_per_trial")
        if workers not in (None, int(gpus)):
            raise _error(path, "resources.workers_per_trial",
                         f"ddp on GPUs runs one process per GPU: workers_per_trial={workers} but gpus_per_trial={gpus!r}")
        workers = int(gpus)
    elif parallel == "ddp" and (workers is None or workers < 2):
        raise _error(path, "resources.data_parallel", "ddp on CPU (gpus_per_trial 0) needs workers_per_trial >= 2 "
                                                      f"(gloo processes per trial), got {workers!r}")
    concurrent = raw.get("max_concurrent")
    if concurrent is not None:
        _positive_number(path, "resources.max_concurrent", concurrent, integer=True)
    return Resources(float(cpus), float(gpus), parallel, concurrent, workers or 1)


def _number_pair(path: Path, where: str, kind: str, args: object) -> list:
    """``[low, high]`` of a uniform/loguniform/randint distribution, checked: numbers (integers for randint),
    finite, ``low < high``, ``low > 0`` for loguniform."""
    integer = kind == "randint"
    types = int if integer else (int, float)
    if (not isinstance(args, list) or len(args) != 2
            or any(isinstance(a, bool) or not isinstance(a, types) for a in args)):
        what = "two integers" if integer else "two numbers"
        raise _error(path, where, f"{kind} needs [low, high] ({what}), got {args!r}")
    low, high = args
    if not all(math.isfinite(a) for a in args):
        raise _error(path, where, f"{kind} bounds must be finite, got {args!r}")
    if not low < high:
        hint = " (high is exclusive)" if integer else ""
        raise _error(path, where, f"{kind} needs low < high{hint}, got {args!r}")
    if kind == "loguniform" and low <= 0:
        raise _error(path, where, f"loguniform needs a positive low bound, got {args!r}")
    return [low, high]


def _load_distribution(path: Path, key: object, dist: object) -> tuple[str, list]:
    where = f"tune.search.space.{key}"
    _check_key(path, where, key)
    if key == SEED_KEY:
        raise _error(path, where, "seeds are not sampled: list them in the top-level 'seeds'")
    dist = _mapping(path, where, dist)
    if len(dist) != 1 or next(iter(dist)) not in DISTRIBUTIONS:
        raise _error(path, where, f"must be one of {{{': [..]}, {'.join(DISTRIBUTIONS)}: [..]}}, got {dist!r}")
    kind, args = next(iter(dist.items()))
    if kind != "choice":
        return kind, _number_pair(path, where, kind, args)
    if not isinstance(args, list) or not args:
        raise _error(path, where, f"choice needs a non-empty list of values, got {args!r}")
    values = [_check_value(path, where, v) for v in args]
    if len({json.dumps(v, sort_keys=True) for v in values}) != len(values):
        raise _error(path, where, f"choice repeats a value: {values!r}")
    return kind, values


def _load_tune(path: Path, raw: object) -> TuneSettings:
    raw = _mapping(path, "tune", raw)
    _unknown(path, "tune", raw, TUNE_KEYS)
    metric = raw.get("metric", "val_top1")
    mode = raw.get("mode", "max")
    if metric not in TUNE_METRICS:
        raise _error(path, "tune.metric", f"{metric!r} is not a metric the engine reports every epoch; one of "
                                          f"{', '.join(TUNE_METRICS)}")
    if mode not in ("min", "max"):
        raise _error(path, "tune.mode", f"must be min or max, got {mode!r}")
    expected = "min" if metric in MINIMISED_METRICS else "max"
    if mode != expected:
        raise _error(path, "tune.mode", f"{mode!r} would favour the worst trials: {metric} is "
                                        f"{'a loss' if expected == 'min' else 'an accuracy'}, use mode: {expected}")
    failures = _positive_number(path, "tune.max_failures", raw.get("max_failures", 2), integer=True, allow_zero=True)
    scheduler = raw.get("scheduler")
    if scheduler is not None:
        scheduler = _mapping(path, "tune.scheduler", scheduler)
        _unknown(path, "tune.scheduler", scheduler, SCHEDULER_KEYS)
        if scheduler.get("type", "asha") != "asha":
            raise _error(path, "tune.scheduler.type", f"only 'asha' is supported, got {scheduler.get('type')!r}")
        grace = _positive_number(path, "tune.scheduler.grace_period", scheduler.get("grace_period", 1), integer=True)
        factor = scheduler.get("reduction_factor", 3)
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not factor > 1:
            raise _error(path, "tune.scheduler.reduction_factor", f"must be a number > 1 (each rung keeps the best "
                                                                  f"1/reduction_factor of its trials), got {factor!r}")
        max_t = scheduler.get("max_t")
        if max_t is not None:
            _positive_number(path, "tune.scheduler.max_t", max_t, integer=True)
            if not grace < max_t:
                raise _error(path, "tune.scheduler.max_t", f"{max_t} must exceed grace_period={grace}")
        scheduler = {"type": "asha", "grace_period": grace, "reduction_factor": factor, "max_t": max_t}
    search = raw.get("search")
    if search is not None:
        search = _mapping(path, "tune.search", search)
        _unknown(path, "tune.search", search, SEARCH_KEYS)
        algorithm = search.get("algorithm", "random")
        if algorithm not in SEARCH_ALGORITHMS:
            raise _error(path, "tune.search.algorithm", f"{algorithm!r} is not one of {list(SEARCH_ALGORITHMS)}")
        samples = _positive_number(path, "tune.search.num_samples", search.get("num_samples", 1), integer=True)
        space = _mapping(path, "tune.search.space", search.get("space"))
        if not space:
            raise _error(path, "tune.search.space", "must name at least one sampled key")
        space = {key: dict([_load_distribution(path, key, dist)]) for key, dist in space.items()}
        combinations = 1
        for dist in space.values():
            kind, args = next(iter(dist.items()))
            combinations = (combinations * (len(args) if kind == "choice" else args[1] - args[0])
                            if kind in ("choice", "randint") else math.inf)
        if samples > combinations:
            raise _error(path, "tune.search.num_samples", f"{samples} samples of a space with only {combinations} "
                                                          "distinct points would repeat trials; make it a grid axis")
        search = {"algorithm": algorithm, "num_samples": samples, "space": space}
    return TuneSettings(metric, mode, int(failures), scheduler, search)


def load_grid(path: str | Path) -> Grid:
    """Read and shape-check a grid file (no engine involved); errors name the file and the field."""
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
            raise _error(path, key, f"is required and must be a non-empty string, got {raw.get(key)!r}")
    base = (path.parent / raw["base_config"]).resolve()
    if not base.is_file():
        raise _error(path, "base_config", f"{raw['base_config']!r} resolves to {base}, which does not exist")
    fixed = {}
    for key, value in _mapping(path, "set", raw.get("set")).items():
        fixed[_check_key(path, f"set.{key}", key)] = _check_value(path, f"set.{key}", value)
    axes: dict[str, list] = {}
    for key, values in _mapping(path, "axes", raw.get("axes")).items():
        where = f"axes.{key}"
        _check_key(path, where, key)
        if key == SEED_KEY:
            raise _error(path, where, "seeds are their own axis: use the top-level 'seeds' list")
        if not isinstance(values, list) or not values:
            raise _error(path, where, f"must be a non-empty list of values, got {values!r}")
        values = [_check_value(path, where, v) for v in values]
        if len({json.dumps(v, sort_keys=True) for v in values}) != len(values):
            raise _error(path, where, f"repeats a value: {values!r}")
        if key in fixed:
            raise _error(path, where, "is also fixed in 'set'; keep it in one place")
        axes[key] = values
    include = []
    raw_include = raw.get("include") or []
    if not isinstance(raw_include, list):
        raise _error(path, "include", f"must be a list of mappings, got {raw_include!r}")
    for i, entry in enumerate(raw_include):
        entry = _mapping(path, f"include[{i}]", entry)
        if not entry:
            raise _error(path, f"include[{i}]", "is empty")
        checked = {}
        for key, value in entry.items():
            _check_key(path, f"include[{i}].{key}", key)
            if key == SEED_KEY:
                raise _error(path, f"include[{i}].{key}", "seeds come from the top-level 'seeds' list")
            checked[key] = _check_value(path, f"include[{i}].{key}", value)
        include.append(checked)
    if not axes and not include:
        raise _error(path, "axes", "a grid needs at least one axis (or an 'include' list)")
    seeds = raw.get("seeds", [0])
    if (not isinstance(seeds, list) or not seeds or any(isinstance(s, bool) or not isinstance(s, int) for s in seeds)
            or len(set(seeds)) != len(seeds)):
        raise _error(path, "seeds", f"must be a non-empty list of distinct integers, got {seeds!r}")
    exclude = []
    raw_exclude = raw.get("exclude") or []
    if not isinstance(raw_exclude, list):
        raise _error(path, "exclude", f"must be a list of partial matches, got {raw_exclude!r}")
    for i, entry in enumerate(raw_exclude):
        entry = _mapping(path, f"exclude[{i}]", entry)
        if not entry:
            raise _error(path, f"exclude[{i}]", "is empty (it would remove every trial)")
        for key, value in entry.items():
            _check_axis_value(path, f"exclude[{i}]", axes, seeds, key, value)
        exclude.append(dict(entry))
    baseline = _mapping(path, "baseline", raw.get("baseline"))
    axis_keys = set(axes) | {k for e in include for k in e}
    for key, value in baseline.items():
        if key not in axis_keys:
            raise _error(path, f"baseline.{key}", f"is not an axis of this grid (axes: {sorted(axis_keys)})")
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise _error(path, "description", f"must be a string, got {description!r}")
    grid = Grid(path=path, study=raw["study"].strip(), table=raw["table"].strip(), description=description.strip(),
                base_config=base, set=fixed, axes=axes, include=include, seeds=list(seeds), exclude=exclude,
                baseline=dict(baseline), resources=_load_resources(path, raw.get("resources")),
                tune=_load_tune(path, raw.get("tune")))
    for key in grid.search_keys:
        if key in axis_keys or key in fixed:
            raise _error(path, f"tune.search.space.{key}", "is also a grid axis or fixed in 'set'")
    trials = expand(grid)
    if baseline and not any(all(_same(t.assignment.get(k), v) for k, v in baseline.items()) for t in trials):
        raise _error(path, "baseline", f"{baseline!r} matches no trial of the grid")
    return grid


def _same(a: object, b: object) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _check_axis_value(path: Path, where: str, axes: dict, seeds: list, key: str, value: object) -> None:
    if key in (SEED_KEY, "seed"):
        if value not in seeds:
            raise _error(path, f"{where}.{key}", f"seed {value!r} is not in seeds {seeds}")
        return
    if key not in axes:
        raise _error(path, f"{where}.{key}", f"is not an axis of this grid (axes: {list(axes)})")
    if not any(_same(value, v) for v in axes[key]):
        raise _error(path, f"{where}.{key}", f"value {value!r} is not one of the axis values {axes[key]!r}")


def load_grids(paths: Iterable[str | Path]) -> list[Grid]:
    """Load several grid files, or every ``*.yaml`` of a folder given in ``paths``."""
    grids = []
    for item in paths:
        item = Path(item)
        files = sorted(item.glob("*.yaml")) if item.is_dir() else [item]
        grids += [load_grid(f) for f in files]
    return grids


# --- expansion ---------------------------------------------------------------------------------------

def format_value(value: object) -> str:
    """A knob value as it appears in a slug: ``0.25``, ``true``, ``null``, ``3-4`` for a list."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "-".join(format_value(v) for v in value) or "empty"
    return re.sub(r"[^A-Za-z0-9._+-]", "_", str(value))


def slug_names(keys: Iterable[str]) -> dict[str, str]:
    """Short names of dotted keys: the known aliases, else the last component, else the whole key where
    two keys would share a short name."""
    keys = list(keys)
    short = {k: SLUG_NAMES.get(k, k.rsplit(".", 1)[-1]) for k in keys}
    counts: dict[str, int] = {}
    for name in short.values():
        counts[name] = counts.get(name, 0) + 1
    return {k: (name if counts[name] == 1 else k) for k, name in short.items()}


def make_slug(assignment: Mapping[str, Any], seed: int | None, names: Mapping[str, str]) -> str:
    parts = [f"{names.get(k, k)}={format_value(v)}" for k, v in assignment.items()]
    if seed is not None:
        parts.append(f"seed={seed}")
    return ",".join(parts)


def _excluded(assignment: Mapping[str, Any], seed: int, rules: list[dict]) -> bool:
    for rule in rules:
        if all((seed == v) if k in (SEED_KEY, "seed") else _same(assignment.get(k), v) for k, v in rule.items()):
            return True
    return False


def expand(grid: Grid) -> list[Trial]:
    """The grid's trials, deterministically: the product of the axes in file order with the seeds innermost,
    minus ``exclude``, then every ``include`` entry with each seed; a repeated assignment is kept once."""
    names = slug_names(grid.axis_keys)
    points: list[dict[str, Any]] = []
    if grid.axes:
        for values in itertools.product(*grid.axes.values()):
            points.append(dict(zip(grid.axes, values)))
    trials, seen = [], set()
    for source, entries in (("product", points), ("include", grid.include)):
        for assignment in entries:
            for seed in grid.seeds:
                if source == "product" and _excluded(assignment, seed, grid.exclude):
                    continue
                overrides = {**grid.set, **assignment, SEED_KEY: seed}
                key = json.dumps(overrides, sort_keys=True)
                if key in seen:
                    continue
                seen.add(key)
                trials.append(Trial(index=len(trials), assignment=dict(assignment), seed=seed, overrides=overrides,
                                    slug=make_slug(assignment, seed, names)))
    if not trials:
        raise GSFConfigError(f"grid {grid.path}: exclude removes every trial")
    return trials


# --- resolution against the engine's configuration ---------------------------------------------------

def canonical_json(config_dict: Mapping[str, Mapping[str, Any]]) -> str:
    """The resolved configuration as canonical JSON, without the keys in :data:`NON_AFFECTING_KEYS`."""
    flat = {f"{section}.{key}": value for section, values in config_dict.items() for key, value in values.items()}
    for key in NON_AFFECTING_KEYS:
        flat.pop(key, None)
    return json.dumps(flat, sort_keys=True, separators=(",", ":"), allow_nan=False)


def config_hash(config_dict: Mapping[str, Mapping[str, Any]]) -> str:
    """sha256 (hex) of :func:`canonical_json`: the identity of a trial's configuration."""
    return hashlib.sha256(canonical_json(config_dict).encode("utf-8")).hexdigest()


def apply_overrides(base: dict, overrides: Mapping[str, Any], *, source: str, check: bool = True,
                    need_data: bool = False):
    """``base`` (a nested config dict) with ``overrides`` applied and checked by the engine; returns the
    :class:`gsf.engine.config.TrainConfig`."""
    from gsf.engine.config import TrainConfig, check_config, set_value

    config = TrainConfig.from_dict(base, source=source)
    for key, value in overrides.items():
        set_value(config, key, value, source=source)
    if check:
        # The driver plans trials that run elsewhere (GPU nodes): device and precision are checked by the
        # engine where each trial runs, everything else here.
        probe = TrainConfig.from_dict(config.to_dict(), source=source)
        probe.runtime.device, probe.runtime.precision = "auto", "auto"
        try:
            check_config(probe, need_data=need_data)
        except GSFConfigError as err:
            raise GSFConfigError(f"{source}: {err}") from err
    return config


def base_config_dict(grid: Grid, extra: Mapping[str, Any] | None = None) -> dict:
    """The grid's base configuration file as a nested dict, with ``extra`` (``--set``) overrides applied."""
    from gsf.engine.config import load_config, set_value

    config = load_config(grid.base_config, check=False)
    for key, value in (extra or {}).items():
        set_value(config, key, value, source=f"--set {key}={value!r}")
    return config.to_dict()


def resolve(grid: Grid, *, extra: Mapping[str, Any] | None = None, need_data: bool = False,
            trials: list[Trial] | None = None) -> list[ResolvedTrial]:
    """Resolve and check every trial (``extra``: ``--set`` overrides applied after the grid's).

    Raises GSFConfigError naming the grid file, the trial and the field at the first invalid trial, and when
    two trials resolve to the same configuration (their MLflow runs would be indistinguishable).
    """
    base = base_config_dict(grid)
    resolved, by_hash = [], {}
    for trial in trials if trials is not None else expand(grid):
        overrides = {**trial.overrides, **(extra or {})}
        config = apply_overrides(base, overrides, source=f"grid {grid.path}, trial {trial.slug}", need_data=need_data)
        config_dict = config.to_dict()
        digest = config_hash(config_dict)
        if digest in by_hash:
            raise GSFConfigError(f"grid {grid.path}: trials {by_hash[digest]} and {trial.slug} resolve to the same "
                                 "configuration; remove one (an include entry repeating a product point?)")
        by_hash[digest] = trial.slug
        resolved.append(ResolvedTrial(trial=trial, config_dict=config_dict, config_hash=digest))
    check_tune(grid, resolved, base=base, extra=extra)
    return resolved


def _bound_values(kind: str, args: list) -> list:
    """The values of a distribution worth checking against the engine: its bounds (randint's high is exclusive)
    or every choice."""
    return list(args) if kind == "choice" else [args[0], args[1] - 1 if kind == "randint" else args[1]]


def check_tune(grid: Grid, resolved: list[ResolvedTrial], *, base: dict | None = None,
               extra: Mapping[str, Any] | None = None) -> None:
    """The ``tune`` rules that need each trial's resolved configuration: ASHA's rungs fit in ``optim.epochs``, a
    validation metric is measured at every report, and every sampled key accepts its bounds (or choices)."""
    tune = grid.tune
    if not (tune.scheduler or tune.search):
        return
    # Random search samples once per trial and never reads the metric; ASHA and Optuna read every report.
    reads_metric = bool(tune.scheduler) or (tune.search or {}).get("algorithm") == "optuna"
    for item in resolved:
        optim, runtime = item.config_dict["optim"], item.config_dict["runtime"]
        trial = f"trial {item.slug}"
        if tune.scheduler:
            grace, max_t = tune.scheduler["grace_period"], tune.scheduler["max_t"]
            if grace >= optim["epochs"]:
                raise _error(grid.path, "tune.scheduler.grace_period",
                             f"{grace} is not below optim.epochs={optim['epochs']} of {trial}: ASHA never stops a "
                             "trial at its last epoch, so it could stop none")
            if max_t is not None and max_t > optim["epochs"]:
                raise _error(grid.path, "tune.scheduler.max_t",
                             f"{max_t} exceeds optim.epochs={optim['epochs']} of {trial}: its rungs are never reached")
        if reads_metric and tune.metric.startswith(("val_", "best_")) and runtime["eval_every"] != 1:
            raise _error(grid.path, "tune.metric",
                         f"{tune.metric} is measured every runtime.eval_every={runtime['eval_every']} epochs in "
                         f"{trial}, but ASHA and Optuna read it at every epoch: set runtime.eval_every: 1 (or use a "
                         "train_* metric)")
    if not tune.search:
        return
    base = base if base is not None else base_config_dict(grid)
    for key, dist in tune.search["space"].items():
        where = f"tune.search.space.{key}"
        if key in (extra or {}):
            raise _error(grid.path, where, f"is sampled, but --set {key}={extra[key]!r} fixes it")
        kind, args = next(iter(dist.items()))
        for item in resolved:
            for value in _bound_values(kind, args):
                overrides = {**item.trial.overrides, **(extra or {}), key: value}
                try:
                    apply_overrides(base, overrides, source=f"grid {grid.path}, trial {item.slug}, {where}={value!r}")
                except GSFConfigError as err:
                    raise GSFConfigError(f"grid {grid.path}: {where}: {kind} {args!r} holds a value the engine "
                                         f"rejects: {err}") from err


def planned_trials(grid: Grid, points: int) -> int:
    """How many Tune trials a sweep of ``points`` grid points runs: ``num_samples`` per point when searching."""
    return points * grid.tune.samples_per_point


def describe_tune(grid: Grid, points: int) -> list[str]:
    """Lines saying what a sweep will run: the trial count (grid points x samples) and the scheduler."""
    tune = grid.tune
    lines = []
    if tune.search:
        search = tune.search
        space = ", ".join(f"{key} ~ {kind}{args}" for key, dist in search["space"].items()
                          for kind, args in dist.items())
        samples = search["num_samples"]
        lines.append(f"{points} grid point{'s' * (points != 1)} x {samples} sample{'s' * (samples != 1)} = "
                     f"{planned_trials(grid, points)} trials ({search['algorithm']} search over {space}; values are "
                     "drawn when the sweep runs: the rows below are grid points, at the base value of each sampled "
                     "key)")
    if tune.scheduler:
        settings = tune.scheduler
        budget = f"max_t {settings['max_t']}" if settings["max_t"] else "max_t = optim.epochs"
        lines.append(f"ASHA early stopping on {tune.metric} ({tune.mode}): grace_period {settings['grace_period']}, "
                     f"reduction_factor {settings['reduction_factor']}, {budget}; a trial may stop before its last "
                     "epoch")
    return lines


def axis_tags(grid: Grid, config_dict: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """``{dotted key: value}`` of every axis of the grid, read from the trial's resolved configuration (so
    trials that do not set an ``include``-only key carry its resolved default)."""
    out = {}
    for key in [*grid.axis_keys, *grid.search_keys]:
        section, name = key.split(".", 1)
        out[key] = config_dict.get(section, {}).get(name)
    return out


# --- complexity --------------------------------------------------------------------------------------

def num_classes(config_dict: Mapping[str, Mapping[str, Any]]) -> int | dict[str, int]:
    """The head size for a configuration: the data set's label file when it exists (synthetic data), else
    the data set's published class count."""
    data = config_dict["data"]
    root = Path(data.get("root") or "")
    if data["dataset"] == "ssv2" and data.get("root"):
        for labels in (root / "labels.json", root / "labels" / "labels.json"):
            if labels.is_file():
                return len(json.loads(labels.read_text(encoding="utf-8")))
    return DATASET_CLASSES[data["dataset"]]


def complexity_of(config_dict: Mapping[str, Mapping[str, Any]], *, input_size: int | None = None,
                  cache: dict | None = None):
    """Per-view :class:`gsf.complexity.Complexity` of a trial's model, at ``input_size`` (default: the
    configuration's), counted on the meta device (no data, no weights). Models with the same knobs are
    counted once when ``cache`` is given."""
    from gsf.engine.config import TrainConfig, model_kwargs

    config = TrainConfig.from_dict(dict(config_dict))
    kwargs = model_kwargs(config, num_classes=num_classes(config_dict), pretrained=False)
    frames = config.data.num_frames
    size = input_size or config.data.input_size
    key = json.dumps([kwargs, frames, size], sort_keys=True, default=str)
    if cache is not None and key in cache:
        return cache[key]
    from gsf.complexity import model_complexity

    result = model_complexity(num_frames=frames, input_size=size, **kwargs)
    if cache is not None:
        cache[key] = result
    return result


def paper_input_size(config_dict: Mapping[str, Mapping[str, Any]]) -> int:
    """The backbone's native (paper) input size: 224 px, 229 for InceptionV3."""
    from gsf.models import BACKBONES

    backbone = config_dict["model"]["backbone"]
    if backbone == "inceptionv3":
        return 229
    return 224 if backbone in BACKBONES else int(config_dict["data"]["input_size"])
