"""Short variant names from flat configs (experiments/variant_names.py): the paper's names for the
temporal kinds, and only the knobs that differ from the paper's setting."""

import pytest

from experiments.variant_names import paper_setting, variant_name


@pytest.mark.parametrize("config, name", [
    ({"model.temporal": "none"}, "TSN"),
    ({"model.temporal": "tsm"}, "TSM"),
    ({"model.temporal": "gsm"}, "GSM"),
    ({"model.temporal": "gsf"}, "GSF"),
    ({"model.temporal": "gsf", "model.groups": 1}, "GSF G=1"),
    ({"model.temporal": "gsf", "model.fusion": "sum"}, "GSF sum"),
    ({"model.temporal": "gsf", "model.fusion": "average"}, "GSF avg"),
    ({"model.temporal": "gsf", "model.channel_fraction": 0.25}, "GSF 25 %"),
    ({"model.temporal": "gsf", "model.channel_fraction": 0.125}, "GSF 12.5 %"),
    ({"model.temporal": "gsf", "model.placement": "after_conv2"}, "GSF after conv2"),
    ({"model.temporal": "gsf", "model.gate": "plus_one"}, "GSF plus one gate"),
    ({"model.temporal": "gsf", "model.last_n_blocks": 2, "model.stages": [3, 4]}, "GSF stages 3,4 last 2 blocks"),
    ({"model.temporal": "gsf", "model.groups": 1, "model.fusion": "sum"}, "GSF G=1 sum"),
])
def test_names_show_only_the_knobs_that_differ_from_the_paper(config, name):
    assert variant_name(config) == name


def test_mlflow_strings_and_paper_values_name_the_paper_variant():
    # as MLflow logs params: every value a string, defaults spelled out
    logged = {"model.temporal": "gsf", "model.groups": "2", "model.channel_fraction": "1.0",
              "model.fusion": "channel_weighting", "model.placement": "None", "model.stages": "None",
              "model.backbone": "resnet50", "data.num_frames": "16", "optim.lr": "0.01"}
    assert variant_name(logged) == "GSF"
    assert variant_name({**logged, "model.channel_fraction": "0.25"}) == "GSF 25 %"
    assert variant_name({**logged, "model.placement": "paper"}) == "GSF"


def test_knobs_a_kind_does_not_have_are_not_named():
    # TSN has no module; TSM only shifts (no groups, fusion or fraction); GSM always fuses by sum
    assert variant_name({"model.temporal": "none", "model.groups": 1, "model.placement": "after_conv2"}) == "TSN"
    assert variant_name({"model.temporal": "tsm", "model.fusion": "sum", "model.channel_fraction": 0.5}) == "TSM"
    assert variant_name({"model.temporal": "tsm", "model.placement": "before_conv1"}) == "TSM"
    assert variant_name({"model.temporal": "tsm", "model.placement": "after_conv3"}) == "TSM after conv3"
    assert variant_name({"model.temporal": "gsm", "model.fusion": "sum", "model.groups": 1}) == "GSM G=1"


def test_paper_setting_is_the_papers_gsf():
    """The paper's GSF (docs/gsf-operator.md sections 1-2): every channel, two gate groups, the spatio-temporal gate, fusion by
    channel weighting, placed where the paper puts it; written out here, not read from the defaults."""
    setting = paper_setting()
    assert setting["temporal"] == "gsf"
    assert setting["groups"] == 2
    assert setting["channel_fraction"] == 1.0
    assert setting["gate"] == "spatiotemporal"
    assert setting["fusion"] == "channel_weighting"
    assert setting["placement"] is None and setting["stages"] is None and setting["last_n_blocks"] is None
