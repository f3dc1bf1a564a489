"""gsf.mlflow_schema: the protocol metric names round-trip, and bad names are refused."""

import pytest

from gsf import mlflow_schema as schema
from gsf.errors import GSFConfigError


@pytest.mark.parametrize("protocol", ["1x1", "2x3", "10x3"])
@pytest.mark.parametrize("measure", schema.TEST_MEASURES)
def test_protocol_metric_names_round_trip(protocol, measure):
    name = schema.protocol_metric(protocol, measure)
    assert name == f"test_{protocol}_{measure}"
    assert schema.parse_protocol_metric(name) == (protocol, measure)
    assert schema.is_final_metric(name)


@pytest.mark.parametrize("name", ["test_2x3", "test_2x3_loss", "val_top1", "test_x3_top1", "final_val_top1"])
def test_other_names_are_not_protocol_metrics(name):
    assert schema.parse_protocol_metric(name) is None


def test_bad_protocol_or_measure_is_refused():
    with pytest.raises(GSFConfigError, match="2-3"):
        schema.protocol_metric("2-3", "top1")
    with pytest.raises(GSFConfigError, match="top3"):
        schema.protocol_metric("2x3", "top3")


def test_final_metrics_are_final_and_epoch_metrics_are_not():
    assert all(schema.is_final_metric(name) for name in schema.FINAL_METRICS)
    assert not schema.is_final_metric("val_top1") and not schema.is_final_metric(schema.EPOCH)


def test_tag_filter_quotes_values():
    assert schema.tag_filter({schema.ROLE: "trial", schema.SLUG: "a'b"}) == \
        "tags.`gsf.role` = 'trial' and tags.`gsf.slug` = 'a\\'b'"
