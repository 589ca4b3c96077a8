"""`reconciler simulate`: forecast, offline, which inputs a workflow would annotate SUCCESS / PENDING
from recorded predictions; `--sweep` varies thresholds and draws an SVG chart."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from reconciler.commands.common import EXIT_OK, manifest_args, verb
from reconciler.core.errors import ReconcilerError
from reconciler.core.printable import printable, printable_lines

if TYPE_CHECKING:
    from reconciler.commands.common import Subparsers


def add_parser(sub: Subparsers) -> None:
    si = verb(
        sub,
        "simulate",
        "forecast, offline, which inputs a workflow would annotate SUCCESS / PENDING from recorded predictions",
        "reconciler simulate manifest.yaml --predictions preds.jsonl --sweep all=0.5:0.95:0.05",
    )
    si.add_argument("files", nargs="*", metavar="FILE")
    si.add_argument("--predictions", required=True, metavar="JSONL", help="recorded model outputs (README)")
    si.add_argument("--workflow", metavar="ID", help="the workflow to run (default: the app's default workflow)")
    si.add_argument("--task", metavar="ID", help="run this task's auto-annotation instead of a workflow")
    si.add_argument(
        "--sweep",
        action="append",
        default=[],
        metavar="CONCEPT=START:STOP:STEP",
        help="vary a concept's threshold (or all=START:STOP:STEP) in every thresholder of the "
        "workflow; prints a table and writes an SVG chart (repeatable)",
    )
    si.add_argument("--svg", default=None, metavar="FILE", help="also draw --sweep's chart into FILE (default: no chart)")
    si.add_argument("--json", action="store_true", help="machine-readable report")
    manifest_args(si)
    si.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from reconciler.annotate import predictions, simulate
    from reconciler.annotate.sweepchart import render_svg
    from reconciler.commands.common import check_chart_target, load_desired, write_output

    if args.svg and not args.sweep:
        raise ReconcilerError("--svg draws the --sweep chart: give --sweep CONCEPT=START:STOP:STEP too")
    if args.svg:
        check_chart_target(args.svg)
    desired = load_desired(args, args.files)
    recorded = predictions.load(args.predictions)
    specs = [simulate.parse_sweep(s) for s in args.sweep]
    if args.task:
        from reconciler.annotate.taskflow import simulate_task

        if args.sweep or args.workflow:
            raise ReconcilerError("--task runs a task's auto-annotation: give it without --sweep and --workflow")
        report = simulate_task(desired, recorded, args.task).as_dict()
        warning = None
    else:
        report = simulate.simulate(desired, recorded, args.workflow).as_dict()
        warning = simulate.unmatched_warning(desired, recorded, args.workflow)
    sweeps = [simulate.sweep(desired, recorded, spec, args.workflow) for spec in specs]
    if warning:
        print(f"warning: {printable(warning)}", file=sys.stderr)
    if sweeps and args.svg:
        write_output(args.svg, render_svg(sweeps))
    if args.json:
        out: dict[str, Any] = {
            "format_version": simulate.FORMAT_VERSION,
            "predictions": args.predictions,
            **report,
            "warnings": [warning] if warning else [],
        }
        if sweeps:
            out["sweeps"] = sweeps
            out["svg"] = args.svg  # null: no chart was asked for
        print(json.dumps(out, indent=2))
    else:
        print(printable_lines(simulate.render_text(report, sweeps, source=args.predictions)), end="")
        if sweeps and args.svg:
            print(f"\nWrote the chart to {args.svg}")
    return EXIT_OK
