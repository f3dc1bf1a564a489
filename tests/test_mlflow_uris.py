"""gsf.mlflow_uris leaves MLflow's URIs and their environment variables as it found them."""

import os

import mlflow
import pytest

from gsf.mlflow_uris import mlflow_uris


@pytest.mark.parametrize("before", [None, "sqlite:////tmp/somewhere-else.db"])
def test_the_block_sees_the_uri_and_leaves_the_variables_as_they_were(tmp_path, monkeypatch, before):
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        monkeypatch.delenv(name, raising=False)
    if before is not None:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", before)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with mlflow_uris(uri, registry=True):
        assert mlflow.get_tracking_uri() == uri and mlflow.get_registry_uri() == uri
    assert os.environ.get("MLFLOW_TRACKING_URI") == before
    assert "MLFLOW_REGISTRY_URI" not in os.environ
    assert mlflow.get_tracking_uri() != uri


def test_the_variables_are_restored_when_the_block_raises(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(KeyError), mlflow_uris(f"sqlite:///{tmp_path / 'mlflow.db'}"):
        raise KeyError("inside")
    assert "MLFLOW_TRACKING_URI" not in os.environ
