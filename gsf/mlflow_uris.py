"""Point MLflow's fluent API at a tracking (and registry) URI for one block, leaving nothing behind.

``mlflow.set_tracking_uri`` and ``mlflow.set_registry_uri`` also write ``MLFLOW_TRACKING_URI`` /
``MLFLOW_REGISTRY_URI`` into the process environment. Restoring the previous URI with them afterwards would
leave the variable set (to MLflow's default store), so a later command of the same process, or a process it
starts, would log where nobody asked it to (``gsf train`` honours ``MLFLOW_TRACKING_URI``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


@contextlib.contextmanager
def mlflow_uris(tracking_uri: str, *, registry: bool = False) -> Iterator[None]:
    """MLflow's fluent API reads and writes ``tracking_uri`` inside the block (and its model registry too
    when ``registry``); afterwards the previous URIs and both environment variables are exactly as before."""
    import mlflow

    saved_env = {name: os.environ.get(name) for name in _VARIABLES}
    saved_tracking, saved_registry = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
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
