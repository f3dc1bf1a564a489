"""Complexity (docs/gsf-operator.md section 3): ``gsf flops`` reproduces the paper's table within 0.5 %, and the meta-device
counter equals fvcore's JIT-traced count operator by operator, for every registered model."""

import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gsf.cli import main
from gsf.complexity import build_meta_model, count_operators, fvcore_operators, measure_complexity
from gsf.models import build_model, list_models, variant_kwargs
from gsf.vocabulary import TEMPORAL_KINDS

# (backbone, temporal, fraction, input px, GMACs per view at T=8, params in M, modules): the release's figures in
# analysis/paper_data/complexity.csv (convention: docs/gsf-operator.md section 3).
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


# (temporal, T, GMACs per view, of which the modules', params, of which the modules') of the official ResNet-50
# TAM and ResNet-50 TIN (D = 4), 174 classes, 224 px, conv + linear (docs/temporal-modules.md, "Complexity").
TAM_TIN_TABLE = [
    ("tam", 8, 32.756425728, 0.056484864, 25_127_246, 1_262_688),
    ("tam", 16, 65.513818112, 0.113936384, 25_134_670, 1_270_112),
    ("tin", 8, 32.700178304, 0.000237440, 23_895_566, 31_008),
    ("tin", 16, 65.400358656, 0.000476928, 23_899_022, 34_464),
]
TSN_RESNET50_GMACS = {8: 32.699940864, 16: 65.399881728}


@pytest.mark.parametrize("temporal, frames, gmacs, module_gmacs, params, module_params", TAM_TIN_TABLE)
def test_gsf_flops_reproduces_the_official_tam_and_tin_counts(capsys, temporal, frames, gmacs, module_gmacs, params,
                                                              module_params):
    def flops(kind: str) -> dict:
        assert main(["flops", "--backbone", "resnet50", "--temporal", kind, "--frames", str(frames),
                     "--num-classes", "174", "--json"]) == 0
        return json.loads(capsys.readouterr().out.strip().splitlines()[-1])

    result, tsn = flops(temporal), flops("none")
    assert tsn["gmacs"] == pytest.approx(TSN_RESNET50_GMACS[frames], rel=1e-9)
    assert result["gmacs"] == pytest.approx(gmacs, rel=0.005)
    assert result["gmacs"] - tsn["gmacs"] == pytest.approx(module_gmacs, rel=0.005)  # the modules' own share
    assert result["params"] == pytest.approx(params, rel=0.005)
    assert result["temporal_params"] == pytest.approx(module_params, rel=0.005)
    assert result["temporal_modules"] == 16


def test_tam_adaptive_aggregation_is_counted_as_a_convolution():
    """One TAM: C(2T^2 + 2TK) (G) + T C C/4 (K + 1) (L) + K C T H W (the functional grouped conv) MACs."""
    from gsf.ops import TemporalAdaptive

    channels, frames, kernel, side = 16, 4, 3, 5
    module = TemporalAdaptive(channels, num_frames=frames).eval()
    clip = torch.zeros(frames, channels, side, side)
    counts = count_operators(module.to("meta"), clip.to("meta"))
    aggregation = kernel * channels * frames * side * side
    assert counts["linear"] == channels * (2 * frames ** 2 + 2 * frames * kernel)
    assert counts["conv"] == frames * channels * (channels // 4) * (kernel + 1) + aggregation
    assert dict(fvcore_operators(TemporalAdaptive(channels, num_frames=frames).eval(), clip)) == {
        k: v for k, v in counts.items() if v}


def test_tin_cost_matches_its_formula():
    """One TIN: 9 F T (two Conv1d) + T^2 + 2T (fc1, fc2) MACs; the interpolation is element-wise."""
    from gsf.ops import TemporalInterlace

    channels, frames = 64, 8
    module = TemporalInterlace(channels, num_frames=frames).eval()
    counts = count_operators(module.to("meta"), torch.zeros(frames, channels, 4, 4, device="meta"))
    folds = channels // 4
    assert counts["conv"] + counts["linear"] == 9 * folds * frames + frames ** 2 + 2 * frames


def test_gsf_module_cost_matches_its_formula():
    """One GSF module: 29 C' + 40 params; 27 C' T H W + 18 C' T MACs (docs/gsf-operator.md section 1)."""
    tsn = measure_complexity(build_model(backbone="resnet_tiny", temporal="none", num_classes=3),
                             num_frames=4, input_size=64)
    model = build_model(backbone="resnet_tiny", temporal="gsf", num_classes=3, last_n_blocks=1)
    gsf = measure_complexity(model, num_frames=4, input_size=64)
    channels, spatial = 512, 2 * 2  # layer4 output of resnet_tiny at 64 px
    assert gsf.temporal_params == 29 * channels + 40
    assert (gsf.gmacs - tsn.gmacs) * 1e9 == pytest.approx(27 * channels * 4 * spatial + 18 * channels * 4)


def test_flops_rejects_bad_arguments(capsys):
    assert main(["flops", "--backbone", "resnet50", "--views", "2by3"]) == 2
    assert "CLIPSxCROPS" in capsys.readouterr().err
    assert main(["flops", "--backbone", "nosuchnet"]) == 2
    assert "unknown backbone 'nosuchnet'" in capsys.readouterr().err


# --- the meta-device counter equals fvcore ------------------------------------------------------------

def _both_counts(kwargs: dict, frames: int, size: int):
    """(fvcore's counts on a CPU model, the meta counter's on a meta-built model, the two models)."""
    cpu = build_model(**kwargs).eval()
    reference = fvcore_operators(cpu, torch.zeros(1, frames, 3, size, size))
    meta = build_meta_model(**kwargs).eval()
    fast = count_operators(meta, torch.zeros(1, frames, 3, size, size, device="meta"))
    return {k: v for k, v in reference.items() if v}, dict(fast), cpu, meta


def _small_size(backbone: str) -> int:
    # Counts are exact at any size; InceptionV3's branches only meet at its own 229 px.
    return {"inceptionv3": 229, "resnet_tiny": 32}.get(backbone, 64)


# Variants whose fvcore trace is quick and that cover every code path of the modules (kinds, gates, group
# counts, fusions, two heads); the others (big backbones, other placements) are marked slow.
QUICK_VARIANTS = {f"resnet_tiny_{suffix}" for suffix in (
    "tsn", "tsm", "gsm", "gsf", "gsf_gate_spatial", "gsf_gate_minus_one", "gsf_groups1", "gsf_groups4",
    "gsf_fusion_sum", "gsf_epic", "tam", "tin")}


def _variant(name: str):
    return pytest.param(name, marks=() if name in QUICK_VARIANTS else (pytest.mark.slow,), id=name)


@pytest.mark.parametrize("name", [_variant(name) for name in list_models()])
def test_meta_counter_equals_fvcore_for_every_registered_variant(name):
    kwargs = {"num_classes": 10, **variant_kwargs(name), "num_frames": 2}  # counted at T=2: TAM/TIN built for it
    reference, fast, cpu, meta = _both_counts(kwargs, 2, _small_size(kwargs["backbone"]))
    assert fast == reference
    assert all(t.device.type == "meta" for t in [*meta.parameters(), *meta.buffers()])
    result = measure_complexity(meta, num_frames=2, input_size=_small_size(kwargs["backbone"]))
    assert result.params == sum(p.numel() for p in cpu.parameters())
    assert result.temporal_modules == len(cpu.temporal_modules)
    assert result.temporal_params == sum(p.numel() for m in cpu.temporal_modules for p in m.parameters())


# A second clip length and input size for the knobs the sweeps vary (the variants above run T=2 at 32-64 px).
OTHER_SHAPE = [
    pytest.param({"backbone": "resnet_tiny", "temporal": temporal}, 8, 96, id=f"resnet_tiny-{temporal}",
                 marks=() if temporal in ("gsf", "tam", "tin") else (pytest.mark.slow,))
    for temporal in TEMPORAL_KINDS
] + [
    pytest.param({"backbone": "resnet_tiny", "temporal": "gsf", "channel_fraction": 0.25, "groups": 4,
                  "gate": "spatial", "fusion": "sum"}, 5, 80, id="resnet_tiny-gsf-0.25-g4-spatial-sum"),
    pytest.param({"backbone": "resnet_tiny", "temporal": "gsf", "groups": 1,
                  "num_classes": {"verb": 97, "noun": 300}}, 8, 96, id="resnet_tiny-gsf-g1-epic"),
    pytest.param({"backbone": "resnet50", "temporal": "gsf", "channel_fraction": 0.25}, 8, 96,
                 id="resnet50-gsf-0.25", marks=pytest.mark.slow),
    pytest.param({"backbone": "bninception", "temporal": "gsf"}, 8, 96, id="bninception-gsf",
                 marks=pytest.mark.slow),
    pytest.param({"backbone": "inceptionv3", "temporal": "gsf"}, 2, 229, id="inceptionv3-gsf",
                 marks=pytest.mark.slow),
]


@pytest.mark.parametrize("kwargs, frames, size", OTHER_SHAPE)
def test_meta_counter_equals_fvcore_at_other_clip_lengths_and_sizes(kwargs, frames, size):
    reference, fast, _, _ = _both_counts({"num_classes": 174, "num_frames": frames, **kwargs}, frames, size)
    assert fast == reference


class _AssortedOperators(nn.Module):
    """Operators beyond the models': each rule, its in-place and Python-operator spellings, 0-dim results,
    and operators fvcore does not count (relu6, in-place dropout, softmax, roll, pad)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 6, 3, padding=1, groups=2)
        self.up = nn.ConvTranspose2d(6, 4, 2, stride=2)
        self.conv1d = nn.Conv1d(4, 4, 3)
        self.conv3d = nn.Conv3d(4, 2, (3, 1, 1), padding=(1, 0, 0), bias=False)
        self.ln = nn.LayerNorm(8)
        self.gn = nn.GroupNorm(2, 4)
        self.bn = nn.BatchNorm2d(4, affine=False)
        self.bn_batch_stats = nn.BatchNorm1d(4, track_running_stats=False)
        self.fc = nn.Linear(8, 5)
        self.drop = nn.Dropout(0.2, inplace=True)
        self.w = nn.Parameter(torch.zeros(8, 3))

    def forward(self, x):  # (2, 4, 8, 8)
        y = self.up(F.relu6(self.conv(x)))  # (2, 4, 16, 16)
        y = F.max_pool2d(y, 2) + F.avg_pool2d(y, 2) - F.adaptive_max_pool2d(y, 8)
        y = self.gn(self.bn(y)) * 2 / 3 + 2 / (y.abs() + 1)
        y = 1 - F.hardtanh(y) + F.silu(y) + F.gelu(y) + torch.sigmoid(y) * torch.tanh(y)
        y = F.relu(y, inplace=True) + F.dropout(y, 0.1, training=False) + torch.exp(-y).clamp(0, 1)
        y = torch.where(y > 0, y, y.neg()) + torch.addcmul(y, y, y) + torch.lerp(y, y, 0.3)
        y = self.drop(self.ln(y))
        z = self.conv3d(y.unsqueeze(2).expand(-1, -1, 3, -1, -1)).sum() + self.conv1d(y.flatten(2)).mean()
        flat = y.flatten(0, 2)  # (64, 8)
        m = (flat @ self.w + torch.mm(flat, self.w) + torch.matmul(flat, self.w)
             + torch.addmm(torch.zeros(3, device=x.device), flat, self.w))
        b = torch.bmm(y.flatten(0, 1), y.flatten(0, 1).transpose(1, 2)).amax()
        s = self.bn_batch_stats(flat.view(8, 8, 8).transpose(1, 2)[:, :4]).softmax(-1)
        out = self.fc(y) + m.mean() + z + b + s.sum()
        out += torch.roll(out, 1, 0)
        out *= 0.5
        return torch.cat([out, F.pad(out, (1, 1))[..., 1:-1]], 0)


def test_meta_counter_equals_fvcore_on_assorted_operators():
    model = _AssortedOperators().eval()
    reference = {k: v for k, v in fvcore_operators(model, torch.randn(2, 4, 8, 8)).items() if v}
    fast = count_operators(model.to("meta"), torch.zeros(2, 4, 8, 8, device="meta"))
    assert set(reference) >= {"conv", "linear", "addmm", "matmul", "mm", "bmm", "batch_norm", "layer_norm",
                              "group_norm", "elementwise", "reduction"}
    assert dict(fast) == reference


def test_meta_counter_refuses_an_operator_it_has_no_rule_for():
    class Upsample(nn.Module):
        def forward(self, clip):
            return F.interpolate(clip.flatten(0, 1), scale_factor=2.0)

    with pytest.raises(NotImplementedError, match="no rule for interpolate.*measure_complexity_fvcore"):
        measure_complexity(Upsample(), num_frames=2, input_size=8)


def test_measure_complexity_leaves_a_cpu_model_as_it_was():
    model = build_model(backbone="resnet_tiny", temporal="gsf", num_classes=3).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = measure_complexity(model, num_frames=2, input_size=32)
    assert model.training and result.gmacs > 0
    after = model.state_dict()
    assert all(after[k].device.type == "cpu" and torch.equal(after[k], v) for k, v in before.items())


def test_gsf_flops_counts_the_same_with_fvcore(capsys):
    argv = ["flops", "--backbone", "resnet_tiny", "--temporal", "gsf", "--fraction", "0.5", "--frames", "4",
            "--input-size", "64", "--json"]
    assert main(argv) == 0
    fast = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert main([*argv, "--fvcore"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == fast


def test_multi_view_cost_is_counted_at_the_crop_size_run(capsys):
    """docs/gsf-operator.md section 3: multi-view cost = per-view x clips x crops, each view at the size the test runs:
    the release's 3 crops are input-size, TSM's full-resolution ones the whole 256-scaled shorter side."""
    from gsf.complexity import model_complexity, views_complexity

    kwargs = dict(backbone="resnet_tiny", temporal="gsf", num_classes=3)
    at_32 = model_complexity(num_frames=4, input_size=32, **kwargs).gmacs
    at_36 = model_complexity(num_frames=4, input_size=36, **kwargs).gmacs  # 32 * 256 // 224
    release = views_complexity(num_frames=4, input_size=32, views="2x3", **kwargs)
    assert release.crop_size == 32 and release.gmacs == pytest.approx(6 * at_32)
    full = views_complexity(num_frames=4, input_size=32, views="2x3", three_crop="full_res", **kwargs)
    assert full.crop_size == 36 and full.gmacs == pytest.approx(6 * at_36) and at_36 > at_32
    ten = views_complexity(num_frames=4, input_size=32, views="1x10", **kwargs)
    assert ten.crop_size == 32 and ten.gmacs == pytest.approx(10 * at_32)
    argv = ["flops", "--backbone", "resnet_tiny", "--frames", "4", "--input-size", "32", "--views", "2x3",
            "--num-classes", "3", "--json"]
    assert main([*argv, "--three-crops", "full_res"]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["crop_size"] == 36 and printed["gmacs_views"] == pytest.approx(6 * at_36)
    assert printed["gmacs"] == pytest.approx(at_32)  # the per-view figure stays the input-size one
