"""``gsf flops`` reproduces the complexity table of GSF.md section 3 within 0.5 %."""

import json

import pytest

from gsf.cli import main

# (backbone, temporal, fraction, input px, GMACs per view at T=8, params in M, modules) from GSF.md section 3.
REFERENCE_TABLE = [
    ("bninception", "none", 1.0, 224, 16.26, 10.45, 0),
    ("bninception", "gsf", 1.0, 224, 16.35, 10.50, 10),
    ("inceptionv3", "none", 1.0, 229, 26.63, 22.16, 0),
    ("inceptionv3", "gsf", 1.0, 229, 26.72, 22.22, 11),
    ("resnet50", "none", 1.0, 224, 32.71, 23.87, 0),
    ("resnet50", "gsf", 1.0, 224, 33.91, 24.30, 16),
    ("resnet50", "gsf", 0.25, 224, 33.01, 23.97, 16),
]


@pytest.mark.parametrize("backbone, temporal, fraction, size, gmacs, params_m, modules", REFERENCE_TABLE)
def test_gsf_flops_reproduces_the_reference_table(capsys, backbone, temporal, fraction, size, gmacs, params_m,
                                                  modules):
    code = main(["flops", "--backbone", backbone, "--temporal", temporal, "--fraction", str(fraction),
                 "--frames", "8", "--num-classes", "174", "--input-size", str(size), "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["gmacs"] == pytest.approx(gmacs, rel=0.005)
    assert result["params"] / 1e6 == pytest.approx(params_m, rel=0.005)
    assert result["temporal_modules"] == modules
    assert result["gmacs_all_ops"] > result["gmacs"]
    if temporal == "gsf":
        assert result["temporal_params"] > 0


def test_gsf_module_cost_matches_its_formula():
    """One GSF module: 29 C' + 40 params; 27 C' T H W + 18 C' T MACs (GSF.md section 1)."""
    import torch

    from gsf.complexity import measure_complexity
    from gsf.models import build_model

    tsn = measure_complexity(build_model(backbone="resnet_tiny", temporal="none", num_classes=3),
                             num_frames=4, input_size=64)
    model = build_model(backbone="resnet_tiny", temporal="gsf", num_classes=3, last_n_blocks=1)
    gsf = measure_complexity(model, num_frames=4, input_size=64)
    channels, spatial = 512, 2 * 2  # layer4 output of resnet_tiny at 64 px
    assert gsf.temporal_params == 29 * channels + 40
    assert (gsf.gmacs - tsn.gmacs) * 1e9 == pytest.approx(27 * channels * 4 * spatial + 18 * channels * 4)
    del torch


def test_flops_rejects_bad_arguments(capsys):
    assert main(["flops", "--backbone", "resnet50", "--views", "2by3"]) == 2
    assert "CLIPSxCROPS" in capsys.readouterr().out
    assert main(["flops", "--backbone", "nosuchnet"]) == 2
    assert "unknown backbone 'nosuchnet'" in capsys.readouterr().out
