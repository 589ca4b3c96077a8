"""`reconciler tune`: choose per-concept thresholds that certify a precision target from recorded
predictions and labels; `--write` edits the manifest in place, `--write-to` writes an overlay."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from reconciler.commands.common import EXIT_OK, manifest_args, verb
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

    opts = tune.Options(
        target=args.target_precision,
        confidence=args.confidence,
        thresholder=args.thresholder,
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
    desired = load_desired(args, args.files)
    recorded = predictions.load(args.predictions)
    truth = labels.load(args.labels)
    report = tune.tune(desired, recorded, truth, opts, curves=bool(args.svg))
    if args.svg:
        from reconciler.annotate.tunechart import render_svg

        write_output(args.svg, render_svg(report))
        report["svg"] = args.svg
    written: list[str] = []
    target = args.files[0] if args.write else args.write_to
    if report["changes"] and args.write:
        written = thresholdwrite.write_in_place(target, report["changes"])
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
        report["written"] = target if (args.write or args.write_to) and (written or args.write_to) else None
        print(json.dumps(report, indent=2))
        return EXIT_OK
    print(tune.render_text(report), end="")
    if args.svg:
        print(f"Wrote the chart to {args.svg}")
    if args.write or args.write_to:
        if not report["changes"]:
            print("Nothing to write: no threshold changes." if args.write else f"Wrote {args.write_to} (no changes).")
            return EXIT_OK
        models = sorted({ch["model"] for ch in report["changes"]})
        print(f"\nWrote {len(report['changes'])} threshold change(s) to {target}:")
        print("\n".join(written))
        plan_cmd = (
            f"reconciler plan {args.files[0]}"
            if args.write
            else "reconciler plan " + " ".join(f"-f {f}" for f in (args.files + args.overlays + [args.write_to]))
        )
        print(
            f"Next: `{plan_cmd}` shows a new version of {', '.join(models)} and every workflow using "
            f"{'it' if len(models) == 1 else 'them'} repointed; `reconciler apply` makes it so."
        )
    return EXIT_OK
