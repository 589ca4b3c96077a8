"""`reconciler apply`: make the live app match a manifest (after confirmation, or --auto-approve),
or apply a saved plan exactly, after re-checking it (`pipeline.apply_saved_plan`). With no FILE in
a project, every selected app (`commands/projectapply.py`); `apply DIR`: a saved plan set.
`--json`: JSON lines on stdout (`apply.events`), errors included (`commands.machine`)."""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from reconciler.commands.common import EXIT_ERROR, EXIT_OK, connection_args, manifest_args, plan_args, project_args, verb
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
        "reconciler apply plan.json\n  reconciler apply manifest.yaml --auto-approve\n"
        "  reconciler apply plans/ --app shelf-prod --json   # a project's saved plan set",
    )
    ap.add_argument("files", nargs="*", metavar="FILE|PLAN|DIR")
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
    ap.add_argument(
        "--json",
        action="store_true",
        help="stream JSON lines on stdout: the plan, each action started / finished / failed / deferred, "
        "retries, training waits, then a summary (docs/gitops.md)",
    )
    ap.add_argument(
        "--max-plan-age",
        metavar="DURATION",
        default=None,
        help="refuse a saved plan set (plan --out DIR) older than this, e.g. 72h, 30m, 7d",
    )
    plan_args(ap)
    project_args(ap)
    connection_args(ap)
    ap.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from reconciler.apply.events import JsonLines
    from reconciler.apply.scheduler import apply_plan
    from reconciler.commands.common import project_mode, use_color
    from reconciler.commands.machine import apply_summary
    from reconciler.commands.plan import plan_manifest
    from reconciler.core.printable import printable
    from reconciler.planning import render
    from reconciler.planning.document import plan_document
    from reconciler.planning.planfile import read_plan_file
    from reconciler.project.planset import is_plan_set

    if len(args.files) == 1 and is_plan_set(args.files[0]):
        from reconciler.commands.projectapply import run_apply_set

        return run_apply_set(args, args.files[0])
    if project_mode(args, args.files):
        from reconciler.commands.projectapply import run_apply

        return run_apply(args)
    if args.max_plan_age:
        raise ReconcilerError("--max-plan-age applies to a saved plan set (a folder written by plan --out in a project)")
    emit = JsonLines(sys.stdout) if args.json else None
    retries = (lambda fields: emit("retry", **fields)) if emit is not None else None
    saved = read_plan_file(args.files[0]) if len(args.files) == 1 else None
    if saved is not None:
        client, plan = _saved_plan(args, args.files[0], saved, retries)
        approved = True  # a saved plan was reviewed when it was made
    else:
        client, plan = plan_manifest(args, retries)
        approved = args.auto_approve
    if emit is not None:
        emit("plan", plan=plan_document(plan))
    else:
        print(render.render_text(render.plan_to_dict(plan), color=use_color(args)))
    if plan.empty:
        if emit is not None:
            apply_summary(emit, "no_changes", EXIT_OK)
        return EXIT_OK
    if not approved and not _confirm(plan):
        print("Apply cancelled; nothing was changed.", file=sys.stderr)
        if emit is not None:
            apply_summary(emit, "refused", EXIT_ERROR)
        return EXIT_ERROR
    started = time.monotonic()
    result = apply_plan(
        client,
        plan,
        progress=lambda msg: print(printable(msg), file=sys.stderr, flush=True),
        train_timeout_s=args.train_timeout,
        events=emit,
    )
    if emit is not None:
        apply_summary(emit, "applied", EXIT_OK, done=result.done, writes=result.writes, started=started)
    else:
        print(f"Apply complete: {len(result.done)} action(s), {result.writes} write call(s).")
    return EXIT_OK


def _saved_plan(
    args: argparse.Namespace, path: str, saved: dict[str, Any], on_retry_event: Callable[[dict[str, Any]], None] | None
) -> tuple[Client, Plan]:
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

    def connect(user_id: str | None, sandbox_db: str | None) -> Client:
        client = connect_client(args, user_id, sandbox_db=sandbox_db)
        client.on_retry_event = on_retry_event
        return client

    return apply_saved_plan(stored, connect, source=path, user_id=args.user_id)


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
