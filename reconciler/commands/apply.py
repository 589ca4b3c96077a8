"""`reconciler apply`: make the live app match a manifest (after confirmation, or --auto-approve),
or apply a saved plan exactly, after re-checking it (`pipeline.apply_saved_plan`)."""

from __future__ import annotations

import argparse
import math
import sys
from typing import TYPE_CHECKING, Any

from reconciler.commands.common import EXIT_ERROR, EXIT_OK, connection_args, manifest_args, plan_args, verb
from reconciler.core.errors import ReconcilerError

if TYPE_CHECKING:
    from reconciler.api.client import Client
    from reconciler.commands.common import Subparsers
    from reconciler.planning.actions import Plan


def train_timeout(text: str) -> float:
    """--train-timeout: a finite number of seconds above 0."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds above 0")
    return value


def add_parser(sub: Subparsers) -> None:
    ap = verb(
        sub,
        "apply",
        "make the live app match the manifest (or a saved plan)",
        "reconciler apply plan.json\n  reconciler apply manifest.yaml --auto-approve",
    )
    ap.add_argument("files", nargs="*", metavar="FILE|PLAN")
    manifest_args(ap)
    ap.add_argument("--auto-approve", action="store_true", help="do not ask for confirmation")
    ap.add_argument(
        "--train-timeout",
        type=train_timeout,
        default=600.0,
        metavar="SECONDS",
        help="how long to wait for a trainable model's new version to train before stopping; "
        "the wait prints a line at most every 10 s",
    )
    plan_args(ap)
    connection_args(ap)
    ap.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from reconciler.apply.scheduler import apply_plan
    from reconciler.commands.common import use_color
    from reconciler.commands.plan import plan_manifest
    from reconciler.core.printable import printable
    from reconciler.planning import render
    from reconciler.planning.planfile import read_plan_file

    saved = read_plan_file(args.files[0]) if len(args.files) == 1 else None
    if saved is not None:
        client, plan = _saved_plan(args, args.files[0], saved)
        approved = True  # a saved plan was reviewed when it was made
    else:
        client, plan = plan_manifest(args)
        approved = args.auto_approve
    print(render.render_text(render.plan_to_dict(plan), color=use_color(args)))
    if plan.empty:
        return EXIT_OK
    if not approved and not _confirm(plan):
        print("Apply cancelled; nothing was changed.", file=sys.stderr)
        return EXIT_ERROR
    result = apply_plan(
        client, plan, progress=lambda msg: print(printable(msg), file=sys.stderr, flush=True), train_timeout_s=args.train_timeout
    )
    print(f"Apply complete: {len(result.done)} action(s), {result.writes} write call(s).")
    return EXIT_OK


def _saved_plan(args: argparse.Namespace, path: str, saved: dict[str, Any]) -> tuple[Client, Plan]:
    """Connect where a saved plan was made and re-check it (`pipeline.apply_saved_plan`). Flags
    that would change what the plan does are refused: the file holds its own inputs."""
    from reconciler.commands.common import connect_client
    from reconciler.planning.pipeline import apply_saved_plan
    from reconciler.planning.planfile import load_saved_plan

    given = [
        flag
        for flag, value in (("-f", args.overlays), ("--var", args.var), ("--var-file", args.var_file), ("--target", args.target))
        if value
    ]
    if given:
        raise ReconcilerError(
            f"{', '.join(given)} cannot be combined with a saved plan: {path} holds the "
            "manifest, variables and targets it was made from; make a new plan instead"
        )
    stored = load_saved_plan(path, saved)
    return apply_saved_plan(
        stored,
        lambda user_id, sandbox_db: connect_client(args, user_id, sandbox_db=sandbox_db),
        source=path,
        user_id=args.user_id,
    )


def _confirm(plan: Plan) -> bool:
    """Whether the person at the terminal typed "yes"; refused when stdin is not a terminal."""
    if not sys.stdin or not sys.stdin.isatty():
        raise ReconcilerError(
            "refusing to apply without confirmation: stdin is not a terminal; "
            "review the plan and pass --auto-approve, or apply a saved plan file"
        )
    from reconciler.core.printable import printable

    print(
        f"\nApply these {len(plan.actions)} action(s) to app {printable(plan.app_id)}? Only 'yes' will be accepted: ",
        end="",
        file=sys.stderr,
        flush=True,
    )
    try:
        answer = input()
    except EOFError:
        answer = ""
    return answer.strip() == "yes"
