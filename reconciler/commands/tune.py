"""`reconciler tune`: choose per-concept thresholds that certify a precision target from recorded
predictions and labels; `--write` edits the manifest in place, `--write-to` writes an overlay."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from reconciler.commands.common import EXIT_OK, check_chart_target, manifest_args, verb
from reconciler.core.errors import ReconcilerError

if TYPE_CHECKING:
    from reconciler.commands.common import Subparsers


def add_parser(sub: Subparsers) -> None:
    tu = verb(
        sub,
        "tune",
        "choose per-concept thresholds that certify a precision target from recorded predictions and labels",
        "reconciler tune manifest.yaml --predictions predictions.jsonl --labels labels.jsonl --target-precision 0.98 --write",
    )
    tu.add_argument("files", nargs="*", metavar="FILE")
    tu.add_argument("--predictions", required=True, metavar="JSONL", help="recorded model outputs")
    tu.add_argument(
        "--labels",
        required=True,
        metavar="JSONL",
        help='labels: {"input": ID, "concepts": {"walker": true, "runner": false}} per line',
    )
    tu.add_argument(
        "--target-precision",
        type=float,
        required=True,
        metavar="P",
        help="precision the SUCCESS annotations must reach, in (0, 1)",
    )
    tu.add_argument(
        "--confidence",
        type=float,
        default=0.95,
        metavar="C",
        help="probability that the certified precision holds (default 0.95)",
    )
    tu.add_argument(
        "--thresholder", metavar="ID", help="the accepting thresholder (node or model id) when the workflow has several"
    )
    tu.add_argument("--workflow", metavar="ID", help="the workflow (default: the app's default workflow)")
    tu.add_argument(
        "--task",
        metavar="ID",
        help="tune a task's auto-annotation instead: its SUCCESS ranges' lower bounds (and its review ranges' upper ones)",
    )
    tu.add_argument(
        "--min-support",
        type=int,
        default=0,
        metavar="N",
        help="test no threshold accepting fewer labelled inputs than N (default: the fewest that could certify the target)",
    )
    tu.add_argument(
        "--holdout",
        type=float,
        default=0.0,
        metavar="SHARE",
        help="keep this share of labelled inputs out of the choice and report the precision reached on it",
    )
    tu.add_argument(
        "--seed", type=int, default=0, help="seed of the --holdout split and of the learning/testing split (docs/tune.md)"
    )
    tu.add_argument("--step", type=float, default=0.01, help="spacing of the candidate thresholds (default 0.01)")
    tu.add_argument(
        "--absent",
        choices=["negative", "unknown"],
        default="negative",
        help="how a concept missing from an input's labels is read (default: negative)",
    )
    tu.add_argument(
        "--keep-review-thresholds",
        action="store_true",
        help="do not move the paired LESS_THAN (review) thresholder with the accepting one",
    )
    tu.add_argument("--write", action="store_true", help="write the changed thresholds into FILE in place")
    tu.add_argument("--write-to", metavar="OVERLAY", help="write the changed thresholds as an overlay file")
    tu.add_argument("--svg", metavar="FILE", help="draw precision against automation per concept")
    tu.add_argument("--json", action="store_true", help="machine-readable report")
    manifest_args(tu)
    tu.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from reconciler.annotate import labels, predictions, thresholdwrite, tune
    from reconciler.commands.common import load_desired, write_output

    if args.task and (args.thresholder or args.workflow):
        raise ReconcilerError("--task tunes a task's auto-annotation: give it without --thresholder and --workflow")
    if args.task and args.write_to:
        raise ReconcilerError("--task: a task's ranges are written in place (--write); --write-to overlays are for thresholders")
    opts = tune.Options(
        target=args.target_precision,
        confidence=args.confidence,
        thresholder=f"task:{args.task}" if args.task else args.thresholder,
        workflow=args.workflow,
        min_support=args.min_support,
        holdout=args.holdout,
        seed=args.seed,
        step=args.step,
        absent=args.absent,
        follow_review=not args.keep_review_thresholds,
    )
    opts.check()  # before reading anything: a bad target is one line, whatever else is wrong
    if args.write and args.write_to:
        raise ReconcilerError("give --write or --write-to, not both")
    if args.write and (args.overlays or len(args.files) != 1):
        raise ReconcilerError("--write edits one manifest file in place; with -f overlays use --write-to OVERLAY")
    if args.write_to:
        _existing_overlay(args)  # refused before the work, not after it
    if args.svg:
        check_chart_target(args.svg)
    desired = load_desired(args, args.files)
    recorded = predictions.load(args.predictions)
    truth = labels.load(args.labels)
    report = tune.tune(desired, recorded, truth, opts, curves=bool(args.svg))
    if truth.source_info:  # the dataset version the labels came from (`record --dataset`)
        report["labels_source"] = dict(truth.source_info)
    if args.svg:
        from reconciler.annotate.tunechart import render_svg

        write_output(args.svg, render_svg(report))
        report["svg"] = args.svg
    written: list[str] = []
    merged: bool | None = None  # --write-to an existing overlay: whether anything was merged into it
    target = args.files[0] if args.write else args.write_to
    if report["changes"] and args.write:
        written = thresholdwrite.write_in_place(target, report["changes"])
    elif args.write_to and _existing_overlay(args):
        merged = bool(report["changes"])
        written = thresholdwrite.merge_into(args.write_to, report["changes"]) if merged else []
    elif args.write_to:
        header = (
            f"Thresholds certified by `reconciler tune` (precision >= {opts.target:g} at "
            f"{opts.confidence * 100:g}% confidence).\nUse: reconciler plan -f BASE.yaml -f {args.write_to}"
        )
        write_output(args.write_to, thresholdwrite.overlay_text(report["changes"], header))
        written = [f"  {ch['model']}.thresholds.{ch['concept']}: {ch['from']:g} -> {ch['to']:g}" for ch in report["changes"]]
    if args.json:
        for row in report["concepts"].values():
            row.pop("curve", None)
        fresh = args.write_to and merged is None  # a new overlay is written even with no changes
        report["written"] = target if (args.write or args.write_to) and (written or fresh) else None
        print(json.dumps(report, indent=2))
        return EXIT_OK
    print(tune.render_text(report), end="")
    if "labels_source" in report:
        from reconciler.core.printable import printable

        print(printable(labels_source_line(report["labels_source"])))  # read from the labels file
    if args.svg:
        print(f"Wrote the chart to {args.svg}")
    if args.write or args.write_to:
        if not report["changes"]:
            fresh = args.write_to and merged is None
            print(f"Wrote {args.write_to} (no changes)." if fresh else "Nothing to write: no threshold changes.")
            return EXIT_OK
        models = sorted({ch["model"] for ch in report["changes"]})
        print(f"\nWrote {len(report['changes'])} threshold change(s) to {target}:")
        print("\n".join(written))
        plan_cmd = (
            f"reconciler plan {args.files[0]}"
            if args.write
            else "reconciler plan " + " ".join(f"-f {f}" for f in _plan_files(args.files + args.overlays + [args.write_to]))
        )
        if args.task:
            print(f"Next: `{plan_cmd}` shows task {args.task} updated in place; `reconciler apply` makes it so.")
        else:
            print(
                f"Next: `{plan_cmd}` shows a new version of {', '.join(models)} and every workflow using "
                f"{'it' if len(models) == 1 else 'them'} repointed; `reconciler apply` makes it so."
            )
    return EXIT_OK


def labels_source_line(info: dict[str, str]) -> str:
    """Which dataset version the labels came from, as `record --dataset` wrote it."""
    version = info.get("dataset_version") or "(none: the dataset had no version when recorded)"
    return f"Labels from dataset {info.get('dataset', '?')}, version {version}."


def _same_file(a: str, b: str) -> bool:
    import os

    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def _existing_overlay(args: argparse.Namespace) -> bool:
    """Whether --write-to names an existing file to merge into (else a new overlay is written).
    Refused: the base manifest itself (an overlay would replace it), and an overlay that a later
    -f file could override."""
    import os

    path = args.write_to
    inputs = list(args.files) + list(args.overlays)
    if inputs and _same_file(path, inputs[0]):
        raise ReconcilerError(
            f"--write-to {path}: that is the manifest itself, and an overlay would replace it; "
            "use --write to change its thresholds in place, or --write-to a new overlay file"
        )
    later = [f for i, f in enumerate(inputs) if _same_file(path, f) and i < len(inputs) - 1]
    if later:
        raise ReconcilerError(
            f"--write-to {path}: it is not the last -f file, so {inputs[-1]} could override what is written; "
            "write to the last overlay, or to a new file"
        )
    try:
        return os.path.getsize(path) > 0  # an empty file (mktemp) is written afresh
    except OSError:
        return False  # no such file: written afresh (other failures are worded by the writer)


def _plan_files(files: list[str]) -> list[str]:
    """`files` with a file named twice listed once (its first place)."""
    out: list[str] = []
    for f in files:
        if not any(_same_file(f, o) for o in out):
            out.append(f)
    return out
