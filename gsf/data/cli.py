"""``gsf data``: ``synth`` writes the synthetic temporal benchmark, ``validate`` checks a data set."""

from __future__ import annotations

import argparse

from gsf.vocabulary import DATASET_NAMES


def configure_parser(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION")
    sub.required = True

    synth = sub.add_parser("synth", help="write the synthetic temporal benchmark (SSv2 release format)")
    synth.add_argument("--out", required=True, help="folder to write the data set to")
    synth.add_argument("--classes", type=int, default=10, help="number of classes (even: time-reversed pairs)")
    synth.add_argument("--videos-per-class", type=int, default=60, help="videos per class (train + validation)")
    synth.add_argument("--frames", type=int, default=16, help="frames per video")
    synth.add_argument("--size", type=int, default=64, help="frame height and width in pixels (even)")
    synth.add_argument("--seed", type=int, default=0, help="seed; the same seed writes the same data set")
    synth.add_argument("--val-fraction", type=float, default=0.2, help="fraction of each class in validation")
    synth.set_defaults(_data_run=_run_synth)

    validate = sub.add_parser("validate", help="check every sample of a data set and name each bad one")
    validate.add_argument(
        "--dataset", required=True, choices=DATASET_NAMES
    )
    validate.add_argument("--root", required=True, help="the data set's root folder as released")
    validate.add_argument(
        "--split", default="train", help="train, validation/val, test; for 'list' the list file"
    )
    validate.add_argument("--min-frames", type=int, default=1, help="flag samples with fewer frames")
    validate.add_argument("--quick", action="store_true", help="trust container frame counts (no full decode)")
    validate.add_argument("--workers", type=int, default=0, help="processes checking samples in parallel")
    validate.add_argument("--frame-template", default=None, help="'list' only: e.g. '{:05d}.jpg'")
    validate.add_argument("--num-classes", type=int, default=None, help="'list' only: labels must be below it")
    validate.set_defaults(_data_run=_run_validate)


def _run_synth(args) -> int:
    from gsf.data.synth import synthesize_dataset

    summary = synthesize_dataset(
        args.out, num_classes=args.classes, videos_per_class=args.videos_per_class, num_frames=args.frames,
        size=args.size, seed=args.seed, val_fraction=args.val_fraction,
    )
    print(
        f"wrote {summary['train']} train + {summary['validation']} validation videos, {summary['classes']} "
        f"classes (time-reversed pairs {summary['pairs']}), {summary['frames']} frames of "
        f"{summary['size']}x{summary['size']} px, seed {summary['seed']}, to {summary['root']}"
    )
    return 0


def _run_validate(args) -> int:
    from gsf.data.validate import validate_dataset

    report = validate_dataset(
        args.dataset, args.root, args.split, min_frames=args.min_frames, decode=not args.quick,
        workers=args.workers, frame_template=args.frame_template, num_classes=args.num_classes,
    )
    for problem in report.problems:
        print(f"BAD {problem}")
    print(report.summary())
    if report.num_rows:  # the annotations were read: the split's identity (a run's digest covers its splits)
        from gsf.data.fingerprint import fingerprint_dataset
        from gsf.errors import GSFDataError

        try:
            fingerprint = fingerprint_dataset(args.dataset, args.root, [args.split],
                                              frame_template=args.frame_template, num_classes=args.num_classes)
        except GSFDataError as err:  # a bad annotation row: reported above, and no run could read the split
            print(f"no data digest: {err}")
        else:
            print(fingerprint.describe())
    return 0 if report.ok else 1


def run(args) -> int:
    return args._data_run(args)
