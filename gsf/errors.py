"""Error types that name what the user has to fix.

Every error raised for bad user input (a configuration value, a grid, a data file, a checkpoint) is one
of these, so command-line entry points can print the message without a traceback and exit non-zero.
"""


class GSFError(Exception):
    """Base class of all errors caused by user input rather than by a bug."""


class GSFConfigError(GSFError, ValueError):
    """A configuration, grid, CLI argument or model knob is invalid, or a model is called with input its
    knobs do not fit (clip length, tensor shape); the message names it."""


class GSFDataError(GSFError, ValueError):
    """A data set file, annotation row or video is missing or corrupt; the message names it."""


class GSFCheckpointError(GSFError, ValueError):
    """A checkpoint is unreadable, truncated or belongs to another architecture."""


class GSFTrackingError(GSFError, RuntimeError):
    """The experiment-tracking server cannot be reached or refused a request."""


class GSFEnvironmentError(GSFError, RuntimeError):
    """This machine cannot do what was asked: a program the command runs is missing or failed (Chromium,
    a benchmark's subprocess, the sweep behind a screenshot); the message names it and its output."""


class GSFUnsupportedError(GSFError, NotImplementedError):
    """A valid request this code path does not support; the message names the one that does (e.g. the
    meta-device GMAC counter has no rule for an operator: count with fvcore)."""


class NonFiniteLossError(GSFError, RuntimeError):
    """The loss (or the gradient norm, or a weight) became NaN/inf; the message names the epoch and step
    and the last good checkpoint."""


class RankFailedError(GSFError, RuntimeError):
    """A data-parallel rank other than 0 failed (or died); the message names the rank and its error. The
    rank's traceback is in ``remote_traceback`` (and logged)."""

    def __init__(self, message: str, *, rank: int, error_type: str | None = None, remote_traceback: str = ""):
        super().__init__(message)
        self.rank = rank
        self.error_type = error_type
        self.remote_traceback = remote_traceback
