"""Point MLflow's fluent API at a tracking (and registry) URI for one block, leaving nothing behind.

``mlflow.set_tracking_uri`` and ``mlflow.set_registry_uri`` also write ``MLFLOW_TRACKING_URI`` /
``MLFLOW_REGISTRY_URI`` into the process environment. Restoring the previous URI with them afterwards would
leave the variable set (to MLflow's default store), so a later command of the same process, or a process it
starts, would log where nobody asked it to (``gsf train`` honours ``MLFLOW_TRACKING_URI``).

Restoring what ``mlflow.get_registry_uri()`` returned is just as wrong: when nothing was set it returns the
registry *resolved* from the tracking URI of that moment, and setting it back pins that store, so a later
``MlflowClient(tracking_uri=B)`` would register models in the old store instead of ``B``. What is saved and
restored here is MLflow's explicit setting (``None`` when unset; ``set_*_uri(None)`` unsets it again).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


def _explicit_uris() -> tuple[str | None, str | None]:
    """The tracking and registry URIs set through ``mlflow.set_*_uri`` (None where unset), not the resolved ones.

    MLflow keeps them as module globals and has no public getter for the unresolved value."""
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    return getattr(tracking_utils, "_tracking_uri", None), getattr(registry_utils, "_registry_uri", None)


@contextlib.contextmanager
def mlflow_uris(tracking_uri: str, *, registry: bool = False) -> Iterator[None]:
    """MLflow's fluent API reads and writes ``tracking_uri`` inside the block (and its model registry too
    when ``registry``); afterwards MLflow's explicit URIs and both environment variables are exactly as before."""
    import mlflow

    saved_env = {name: os.environ.get(name) for name in _VARIABLES}
    saved_tracking, saved_registry = _explicit_uris()
    mlflow.set_tracking_uri(tracking_uri)
    if registry:
        mlflow.set_registry_uri(tracking_uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(saved_tracking)
        if registry:
            mlflow.set_registry_uri(saved_registry)
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
