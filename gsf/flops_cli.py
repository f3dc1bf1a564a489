"""``gsf flops``: per-view GMACs and parameters of a video model (docs/gsf-operator.md section 3)."""

from __future__ import annotations

import argparse
import json

from gsf.data.transforms import THREE_CROP_STYLES
from gsf.engine.config import parse_views
from gsf.errors import GSFConfigError
from gsf.vocabulary import PUBLISHED_NUM_CLASSES, TEMPORAL_KINDS


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backbone", required=True, help="backbone name, e.g. resnet50, bninception")
    parser.add_argument("--temporal", default="gsf", choices=TEMPORAL_KINDS,
                        help="temporal module kind (gsf.ops.TEMPORAL_MODULES); tam and tin are built for --frames")
    parser.add_argument("--fraction", type=float, default=1.0, dest="channel_fraction",
                        help="GSF channel fraction in (0, 1] (the release's gsf_ch_ratio / 100)")
    parser.add_argument("--frames", type=int, default=8, help="frames per clip (T)")
    parser.add_argument("--num-classes", type=int, default=PUBLISHED_NUM_CLASSES["ssv2"])
    parser.add_argument("--input-size", type=int, default=None,
                        help="crop size in px (default: the backbone's native size, its BackboneSpec.input_size)")
    parser.add_argument("--views", default="1x1", help="clips x crops, for the multi-view total (e.g. 2x3), each "
                                                       "view counted at the crop size the test runs")
    parser.add_argument("--three-crops", default="release", choices=THREE_CROP_STYLES,
                        help="geometry of 3-crop tests: release (input-size crops) or full_res (TSM: the whole "
                             "shorter side, 256 px for 224)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--fvcore", action="store_true",
                        help="count with fvcore's JIT tracer on a CPU model (seconds; the same numbers as the "
                             "default meta-device counter, which the tests hold equal to it)")


def run(args: argparse.Namespace) -> int:
    from gsf.complexity import build_meta_model, measure_complexity, measure_complexity_fvcore, measure_views_complexity
    from gsf.models import backbone_spec, build_model

    clips, crops = parse_views(args.views, key="--views")
    if args.frames < 1:
        raise GSFConfigError(f"--frames must be at least 1, got {args.frames}")
    # The model is built for the clip counted: num_frames is architecture for TAM and TIN.
    kwargs = dict(backbone=args.backbone, temporal=args.temporal, num_classes=args.num_classes,
                  channel_fraction=args.channel_fraction, num_frames=args.frames)
    model = build_model(**kwargs) if args.fvcore else build_meta_model(**kwargs)
    input_size = args.input_size or backbone_spec(args.backbone).input_size
    measure = measure_complexity_fvcore if args.fvcore else measure_complexity
    result = measure(model, num_frames=args.frames, input_size=input_size)
    def measure_view(model, *, num_frames, input_size: int):  # counted once when crops are input-size
        return result if input_size == base_size else measure(model, num_frames=num_frames, input_size=input_size)

    base_size = input_size
    views = measure_views_complexity(model, num_frames=args.frames, input_size=input_size, views=args.views,
                                     three_crop=args.three_crops, measure=measure_view)
    if args.json:
        print(json.dumps({**result.as_dict(), **views.as_dict()}))
        return 0
    from gsf.ops import temporal_kind

    fraction = ("channel_fraction" in {knob.name for knob in temporal_kind(args.temporal).knobs})
    print(f"{args.backbone} + {args.temporal}" + (f" (fraction {args.channel_fraction:g})" if fraction else "")
          + f", T={args.frames}, {input_size} px, {args.num_classes} classes")
    print(f"  GMACs per view (conv + linear, paper convention): {result.gmacs:.2f}")
    print(f"  GMACs per view (all ops):                         {result.gmacs_all_ops:.2f}")
    if views.num_views > 1:
        print(f"  GMACs for {clips} clips x {crops} crops of {views.crop_size} px: {views.gmacs:.2f}")
    print(f"  params:          {result.params / 1e6:.2f} M")
    print(f"  temporal params: {result.temporal_params / 1e6:.3f} M in {result.temporal_modules} modules")
    return 0
