"""`reconciler unlock`: break an app's lease left by an apply that is gone, after confirmation.

Modelled on Terraform's `force-unlock LOCK_ID` (hashicorp/terraform `internal/command/unlock.go`):
the lease id must be given, and must be the one held (a lease taken since by another apply is
never broken by mistake); the person at the terminal confirms with "yes", or `--force` skips the
question (required without a terminal). The app is named by the manifest (or overlays) or by a
saved plan, as `apply` takes them. See `apply/lease.py` for the lease itself.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from reconciler.commands.common import EXIT_ERROR, EXIT_OK, connection_args, manifest_args, verb
from reconciler.core.errors import ReconcilerError

if TYPE_CHECKING:
    from reconciler.apply.lease import LeaseRecord
    from reconciler.commands.common import Subparsers


def add_parser(sub: Subparsers) -> None:
    u = verb(
        sub,
        "unlock",
        "break the app lease of an apply that is gone (after confirmation)",
        "reconciler unlock manifest.yaml 9f1c2a7b\n  reconciler unlock plan.json 9f1c2a7b --force",
    )
    u.add_argument("files", nargs="*", metavar="FILE|PLAN [LEASE_ID]", help="the manifest (or a saved plan), then the lease id")
    manifest_args(u)
    u.add_argument("--force", action="store_true", help="do not ask for confirmation (required without a terminal)")
    connection_args(u)
    u.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from reconciler.apply.lease import break_lease, check_lease_id, read_lease
    from reconciler.commands.common import connect_client, load_desired, manifest_path, with_user
    from reconciler.planning.planfile import load_saved_plan, read_plan_file

    files, lease_id = _split(args)
    saved = read_plan_file(files[0]) if len(files) == 1 and not args.overlays else None
    if saved is not None:
        stored = load_saved_plan(files[0], saved)
        from reconciler.api.endpoint import sandbox_of_endpoint

        client = connect_client(args, stored.user_id, sandbox_db=sandbox_of_endpoint(stored.endpoint))
        app_id, user_id, named = stored.app_id, stored.user_id or client.user_id, files[0]
    else:
        desired = load_desired(args, files)
        client = connect_client(args, desired.user_id, manifest=manifest_path(args, files))
        desired = with_user(desired, client.user_id)
        app_id, user_id = desired.app.id, desired.user_id
        named = " ".join([*files, *(f"-f {f}" for f in args.overlays)])
    current = read_lease(client, app_id, user_id)
    if current is None:
        print(f"App {app_id} is not locked; nothing to do.")
        return EXIT_OK
    print(_info(current))
    if lease_id is None:
        raise ReconcilerError(f"give the lease id to break it: reconciler unlock {named} {current.short_id}")
    check_lease_id(current, lease_id)
    if not args.force and not _confirm(app_id, current):
        print("Unlock cancelled; nothing was changed.", file=sys.stderr)
        return EXIT_ERROR
    break_lease(client, app_id, user_id, lease_id)
    print(f"Lease broken: app {app_id} is unlocked.")
    return EXIT_OK


def _split(args: argparse.Namespace) -> tuple[list[str], str | None]:
    """(the manifest files, the lease id): the id is the last positional argument when there is
    a file before it (a manifest or plan) or `-f` names the files."""
    files = list(args.files)
    if len(files) > (0 if args.overlays else 1):
        return files[:-1], files[-1]
    return files, None


def _info(r: LeaseRecord) -> str:
    lines = [
        "Lease Info:",
        f"  ID:        {r.lease_id}",
        f"  Operation: {r.operation}",
        f"  Who:       {r.holder}",
        f"  Host/PID:  {r.host} / {r.pid}",
        f"  Created:   {r.created}",
        f"  Expires:   {r.expires} (renewed {r.renewed} time(s))",
        f"  Version:   {r.version or 'unknown'}",
    ]
    if r.info:
        lines.append(f"  Info:      {r.info}")
    return "\n".join(lines)


def _confirm(app_id: str, r: LeaseRecord) -> bool:
    from reconciler.commands.common import ask_yes
    from reconciler.core.printable import printable

    who = printable(f"{r.holder} on {r.host} (pid {r.pid}) since {r.created}")  # read from the server
    return ask_yes(
        f"Break the lease of app {printable(app_id)} held by {who}? That apply may still be running.",
        refusal="refusing to break the lease without confirmation: stdin is not a terminal; "
        "check that the apply holding it is gone, then pass --force",
    )
