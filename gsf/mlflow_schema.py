"""The MLflow schema of the project: every tag, param and metric name, in one place.

The sweep runner (:mod:`experiments.runner`, :mod:`experiments.tracking`), standalone ``gsf train`` /
``gsf eval`` runs and the report (:mod:`analysis.runs`) all write or read these names; none of them types a
name itself. The layout they describe is in docs/CONTRIBUTING.md ("Grids and MLflow layout"):
one experiment per study, one parent run per sweep (``gsf.role=sweep``), one child run per trial
(``gsf.role=trial``) with the flat configuration as params.

Constants and tiny name helpers only: this module imports neither MLflow nor anything of the package but
its errors, so any layer may use it.
"""

from __future__ import annotations

import re

from gsf.errors import GSFConfigError

# --- roles (tag ROLE) -----------------------------------------------------------------------------------

ROLE = "gsf.role"
ROLE_SWEEP = "sweep"  # the parent run of a sweep
ROLE_TRIAL = "trial"  # one trial of a sweep, child of its sweep run
ROLE_TRAIN = "train"  # a standalone ``gsf train`` run
ROLE_EVAL = "eval"  # a standalone ``gsf eval`` run

# --- tags ---------------------------------------------------------------------------------------------

GRID = "gsf.grid"  # grid name (file stem)
TABLE = "gsf.table"  # the paper table the grid reproduces
SWEEP_ID = "gsf.sweep_id"
CODE_VERSION = "gsf.code_version"  # git commit, ``-dirty`` when tracked files changed
SLUG = "gsf.slug"  # the trial's knobs as ``key=value,...``
CONFIG_HASH = "gsf.config_hash"  # sha256 of the trial's resolved configuration
SEED = "gsf.seed"
VARIANT = "gsf.variant"  # short variant name (TSN, GSF, ``GSF G=1`` ...), also the trial's run name
BASELINE = "gsf.baseline"  # the grid's baseline mapping (JSON), on the sweep's parent run
STOPPED_EARLY = "gsf.stopped_early"  # "true" on a trial an ASHA scheduler stopped before its last epoch
STOPPED_AT_EPOCH = "gsf.stopped_at_epoch"
AXIS_PREFIX = "gsf.axis."  # one tag per grid axis: ``gsf.axis.<dotted config key>``
TRUE = "true"

# MLflow's own tags.
PARENT_RUN_ID = "mlflow.parentRunId"
RUN_NAME = "mlflow.runName"
NOTE = "mlflow.note.content"  # an experiment's description
# Which view MLflow 3's UI opens an experiment in: "Model training" (runs, metrics, charts) for the suite's
# experiments, instead of the GenAI view (traces, judges, prompts) it assumes for an experiment without runs.
EXPERIMENT_KIND = "mlflow.experimentKind"
EXPERIMENT_KIND_MODEL_TRAINING = "custom_model_development"
# An experiment's saved runs-page views: one experiment tag per view, ``<prefix><view id>``, listed under the
# runs page's "Views" menu and opened by the URL parameter ``viewStateShareKey=<view id>``.
SAVED_VIEW_PREFIX = "mlflow.sharedViewState."

# --- params -------------------------------------------------------------------------------------------

# Trial (and standalone run) params: every key of the flat configuration (``TrainConfig.flat()``),
# ``section.key``; the seed is one of them.
SEED_PARAM = "runtime.seed"
# Sweep parent run params.
GRID_FILE_PARAM = "grid_file"  # where the grid was read from (informational: never read back)
NUM_TRIALS_PARAM = "num_trials"

# --- metrics ------------------------------------------------------------------------------------------

EPOCH = "epoch"  # logged with every epoch's metrics; MLflow step = 1-based epoch
VAL_TOP1 = "val_top1"
VAL_MEAN_CLASS_ACC = "val_mean_class_acc"
# Engine metrics measured only at validation epochs (``runtime.eval_every``): ``val_*`` and ``best_*``.
VALIDATION_PREFIXES = ("val_", "best_")
# Per-epoch metrics kept for training curves.
HISTORY_METRICS = ("train_loss", VAL_TOP1, "val_top5")
# Logged once when a trial ends (at the step of its last epoch).
BEST_VAL_TOP1 = "best_val_top1"
BEST_EPOCH = "best_epoch"
FINAL_VAL_TOP1 = "final_val_top1"
FINAL_VAL_TOP5 = "final_val_top5"
FINAL_VAL_MEAN_CLASS_ACC = "final_val_mean_class_acc"
NUM_CLASSES = "num_classes"  # K of the run's head, for telling a loss at chance (ln K) from one that learned
FINAL_METRICS = (BEST_VAL_TOP1, BEST_EPOCH, FINAL_VAL_TOP1, FINAL_VAL_TOP5, FINAL_VAL_MEAN_CLASS_ACC, NUM_CLASSES)
# Training health, every epoch (gsf.engine.health): the global gradient norm before clipping over the
# epoch's steps and the share of steps clipped.
GRAD_NORM_MEAN = "grad_norm_mean"
GRAD_NORM_MAX = "grad_norm_max"
CLIPPED_SHARE = "clipped_share"
# What GSF / GSM route, per backbone stage: ``<measure>/<stage>`` (``gate_abs/layer3``) every epoch, on a
# probe batch of the epoch's training clips; ``ckpt_<measure>/<stage>`` once at the end, from the best
# checkpoint (final metrics).
GATE_ABS = "gate_abs"  # mean |gate|
GATE_SATURATED = "gate_saturated"  # share of gate values with |g| > 0.99
FUSION_WEIGHT = "fusion_weight"  # mean fusion weight w (1: the shifted part, 0: the residual)
ROUTING_MEASURES = (GATE_ABS, GATE_SATURATED, FUSION_WEIGHT)
CHECKPOINT_PREFIX = "ckpt_"
# Logged once at step 0 when a trial's run is created (per view, at the trial's input size).
GMACS = "gmacs"
GMACS_ALL_OPS = "gmacs_all_ops"
PARAMS = "params"
TEMPORAL_PARAMS = "temporal_params"
TEMPORAL_MODULES = "temporal_modules"
COMPLEXITY_METRICS = (GMACS, GMACS_ALL_OPS, PARAMS, TEMPORAL_PARAMS, TEMPORAL_MODULES)

# Test-protocol metrics: ``test_<P>_<measure>`` for each protocol P = CLIPSxCROPS of ``data.test_views``
# (e.g. ``test_2x3_top1``), fractions like the other accuracies; logged as final metrics.
TEST_PREFIX = "test_"
TEST_MEASURES = ("top1", "top5", "mean_class_acc")
_TEST_METRIC = re.compile(r"test_(\d+x\d+)_(" + "|".join(TEST_MEASURES) + r")")
_PROTOCOL = re.compile(r"\d+x\d+")


def protocol_metric(protocol: str, measure: str) -> str:
    """The metric name of ``measure`` (top1, top5, mean_class_acc) at test protocol ``protocol`` (``2x3``)."""
    if not _PROTOCOL.fullmatch(protocol) or measure not in TEST_MEASURES:
        raise GSFConfigError(f"no test metric for protocol {protocol!r} and measure {measure!r}: protocols are "
                         f"CLIPSxCROPS (e.g. 2x3), measures {', '.join(TEST_MEASURES)}")
    return f"{TEST_PREFIX}{protocol}_{measure}"


def parse_protocol_metric(name: str) -> tuple[str, str] | None:
    """``(protocol, measure)`` of a test-protocol metric name (``test_2x3_top1`` -> ``("2x3", "top1")``),
    None for any other name."""
    match = _TEST_METRIC.fullmatch(name)
    return (match.group(1), match.group(2)) if match else None


def is_final_metric(name: str) -> bool:
    """Whether the runner logs result key ``name`` once at a trial's end: the final validation metrics, the
    class count, every ``test_*`` key of the engine's result and the best checkpoint's ``ckpt_*`` routing."""
    return name in FINAL_METRICS or name.startswith((TEST_PREFIX, CHECKPOINT_PREFIX))


# --- dataset inputs (MLflow's mlflow.data.context tag) ----------------------------------------------------
# The data a run trained and validated on (its identity: the report pools only runs of one training digest),
# and a split ``gsf eval`` tested.
DATASET_CONTEXT_TAG = "mlflow.data.context"  # the input tag MLflow names MLFLOW_DATASET_CONTEXT
TRAINING_CONTEXT = "training"
EVALUATION_CONTEXT = "evaluation"

# --- tag and column helpers -----------------------------------------------------------------------------

def trial_run_name(variant: str, slug: str) -> str:
    """A trial's run name: its variant's short name and its slug (``GSF 25 % (temporal=gsf,fraction=0.25,seed=0)``)."""
    return f"{variant} ({slug})"


def axis_tag(key: str) -> str:
    """The tag of grid axis ``key`` (a dotted configuration key)."""
    return AXIS_PREFIX + key


# Column prefixes of ``mlflow.search_runs(output_format="pandas")``.
TAGS_COLUMN = "tags."
PARAMS_COLUMN = "params."
METRICS_COLUMN = "metrics."


def tag_filter(tags: dict[str, str]) -> str:
    """A ``search_runs`` filter string matching every tag of ``tags`` (values quoted)."""
    return " and ".join(f"tags.`{key}` = {quote(str(value))}" for key, value in tags.items())


def quote(value: str) -> str:
    """A string literal of MLflow's filter syntax."""
    return "'" + value.replace("'", "\\'") + "'"


def input_context(input_tags) -> str:
    """The context of a dataset input from its tags (MLflow ``InputTag`` objects with ``key`` and ``value``):
    :data:`DATASET_CONTEXT_TAG`'s value, :data:`TRAINING_CONTEXT` where none was logged."""
    for tag in input_tags or ():
        if tag.key == DATASET_CONTEXT_TAG:
            return tag.value
    return TRAINING_CONTEXT
