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


def test_an_unset_registry_stays_unset_so_a_later_client_registers_in_its_own_store(tmp_path, monkeypatch):
    """The full suite once registered a model in the store of an earlier block: restoring the *resolved*
    registry URI had pinned it."""
    from mlflow.tracking import MlflowClient

    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        monkeypatch.delenv(name, raising=False)
    mlflow.set_registry_uri(None)
    first, second = (f"sqlite:///{tmp_path / name}.db" for name in ("first", "second"))
    with mlflow_uris(first, registry=True):
        pass
    assert mlflow.get_registry_uri() != first
    MlflowClient(tracking_uri=second).create_registered_model("m")
    assert [m.name for m in MlflowClient(tracking_uri=second, registry_uri=second).search_registered_models()] == ["m"]


def test_an_explicit_registry_is_restored(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    explicit = f"sqlite:///{tmp_path / 'registry.db'}"
    mlflow.set_registry_uri(explicit)
    try:
        with mlflow_uris(f"sqlite:///{tmp_path / 'other.db'}", registry=True):
            pass
        assert mlflow.get_registry_uri() == explicit
    finally:
        mlflow.set_registry_uri(None)
        os.environ.pop("MLFLOW_REGISTRY_URI", None)
