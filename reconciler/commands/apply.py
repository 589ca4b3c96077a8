"""`reconciler apply`: make the live app match a manifest (after confirmation, or --auto-approve),
or apply a saved plan exactly, after re-checking it; always under the app lease
(`apply/locked.apply_app`: `--lock-timeout`, `--no-lock`, `--max-deletes`). With no FILE in a
project, every selected app (`commands/projectapply.py`); `apply DIR`: a saved plan set.
`--json`: JSON lines on stdout (`apply.events`), errors included (`commands.machine`)."""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
import time
from collections.abc import Callable, Iterator
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


def lock_timeout(text: str) -> float:
    """--lock-timeout: a duration, 30s, 5m, 1h, 1h30m, or plain seconds; 0 means do not wait."""
    import re

    cleaned = text.strip().lower()
    parts = re.findall(r"(\d+(?:\.\d+)?)([hms]?)", cleaned)
    if not cleaned or "".join(n + u for n, u in parts) != cleaned or (len(parts) > 1 and not all(u for _, u in parts)):
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration: use e.g. 30s, 5m, 1h or 1h30m")
    value = sum(float(n) * {"h": 3600, "m": 60, "s": 1, "": 1}[u] for n, u in parts)
    if not math.isfinite(value) or value > 24 * 3600:
        raise argparse.ArgumentTypeError(f"{text!r}: a lock timeout is at most 24h")
    return value


def max_deletes(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def add_parser(sub: Subparsers) -> None:
    ap = verb(
        sub,
        "apply",
        "make the live app match the manifest (or a saved plan)",
        "reconciler apply plan.json\n  reconciler apply manifest.yaml --auto-approve --lock-timeout 10m\n"
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
    lock = ap.add_argument_group("app lease (docs/gitops.md)")
    lock.add_argument(
        "--lock-timeout",
        type=lock_timeout,
        default=0.0,
        metavar="DURATION",
        help="wait this long (30s, 5m, 1h) for another apply's lease on the app; default 0: fail at once, naming the holder",
    )
    lock.add_argument(
        "--no-lock", action="store_true", help="apply without the app lease (not recommended: two applies may interleave)"
    )
    ap.add_argument(
        "--max-deletes",
        type=max_deletes,
        default=None,
        metavar="N",
        help="refuse, before any write, a plan that deletes more than N resources",
    )
    plan_args(ap)
    project_args(ap)
    connection_args(ap)
    ap.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    with _sigterm_interrupts():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    import os

    from reconciler.apply.events import JsonLines
    from reconciler.apply.lease import LeaseOptions
    from reconciler.apply.locked import apply_app
    from reconciler.commands.common import connect_client, load_desired, manifest_path, project_mode, use_color, with_user
    from reconciler.commands.machine import apply_summary
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

    def show(plan: Plan) -> None:
        if emit is not None:
            emit("plan", plan=plan_document(plan))
        else:
            print(render.render_text(render.plan_to_dict(plan), color=use_color(args)), flush=True)

    def progress(line: str) -> None:
        print(printable(line), file=sys.stderr, flush=True)

    saved = read_plan_file(args.files[0]) if len(args.files) == 1 else None
    common = {
        "lease_options": LeaseOptions.from_env(os.environ, lock_timeout_s=args.lock_timeout),
        "no_lock": args.no_lock,
        "max_deletes": args.max_deletes,
        "progress": progress,
        "train_timeout_s": args.train_timeout,
        "show": show,
        "events": emit,
    }
    started = time.monotonic()
    if saved is not None:
        client, stored = _saved_plan(args, args.files[0], saved, retries)
        outcome = apply_app(
            client,
            stored.desired,
            reviewed=stored,
            source=args.files[0],
            unlock_hint=f"reconciler unlock {args.files[0]}",
            **common,
        )
    else:
        desired = load_desired(args, args.files)
        client = connect_client(args, desired.user_id, manifest=manifest_path(args, args.files))
        client.on_retry_event = retries
        files = [*args.files, *(f"-f {f}" for f in args.overlays)]
        outcome = apply_app(
            client,
            with_user(desired, client.user_id),
            targets=args.target,
            confirm=None if args.auto_approve else _confirm,
            unlock_hint="reconciler unlock " + " ".join(files),
            **common,
        )
    if outcome.cancelled:
        print("Apply cancelled; nothing was changed.", file=sys.stderr)
        if emit is not None:
            apply_summary(emit, "refused", EXIT_ERROR)
        return EXIT_ERROR
    if outcome.result is None:
        if emit is not None:
            apply_summary(emit, "no_changes", EXIT_OK)
        return EXIT_OK
    if emit is not None:
        apply_summary(emit, "applied", EXIT_OK, done=outcome.result.done, writes=outcome.result.writes, started=started)
    else:
        print(f"Apply complete: {len(outcome.result.done)} action(s), {outcome.result.writes} write call(s).")
    return EXIT_OK


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM (a CI job cancelled, `kill`) stops apply as Ctrl-C does (whatever handles SIGINT
    at that moment: the applier's own while it runs): the requests in flight finish, the app lease
    is released, the report says what was done."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        as_sigint = signal.getsignal(signal.SIGINT)
        if callable(as_sigint):
            as_sigint(signum, frame)
        else:
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _saved_plan(
    args: argparse.Namespace, path: str, saved: dict[str, Any], on_retry_event: Callable[[dict[str, Any]], None] | None
) -> tuple[Client, Plan]:
    """Connect where a saved plan was made (`pipeline.saved_plan_client`). Flags that would change
    what the plan does are refused: the file holds its own inputs."""
    from reconciler.commands.common import connect_client
    from reconciler.planning.pipeline import saved_plan_client
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

    client = saved_plan_client(stored, connect, source=path, user_id=args.user_id)
    return client, stored


def _confirm(plan: Plan) -> bool:
    """Whether the person at the terminal typed "yes"; refused when stdin is not a terminal."""
    from reconciler.commands.common import ask_yes
    from reconciler.core.printable import printable

    return ask_yes(
        f"Apply these {len(plan.actions)} action(s) to app {printable(plan.app_id)}?",
        refusal="refusing to apply without confirmation: stdin is not a terminal; "
        "review the plan and pass --auto-approve, or apply a saved plan file",
    )
