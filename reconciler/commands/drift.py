"""`reconciler drift`: report what differs in the live app from the manifest (read-only); exit 0
clean, 2 drift, 1 error. The report is `reconciler.planning.drift`'s."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from reconciler.commands.common import EXIT_CHANGES, EXIT_OK, connection_args, manifest_args, project_args, verb

if TYPE_CHECKING:
    from reconciler.commands.common import Subparsers


def add_parser(sub: Subparsers) -> None:
    dr = verb(
        sub,
        "drift",
        "report what differs in the live app from the manifest (read-only); exit 0 clean, 2 drift, 1 error",
        "reconciler drift manifest.yaml --json\n  reconciler drift            # every app of reconciler.yaml",
    )
    dr.add_argument("files", nargs="*", metavar="FILE")
    dr.add_argument("--json", action="store_true", help='the plan\'s JSON format plus "drift": bool')
    manifest_args(dr)
    project_args(dr)
    connection_args(dr)
    dr.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from reconciler.commands.common import connect_client, load_desired, manifest_path, project_mode, with_user
    from reconciler.planning import drift

    if project_mode(args, args.files):
        from reconciler.commands.project import run_drift

        return run_drift(args)

    desired = load_desired(args, args.files)
    client = connect_client(args, desired.user_id, manifest=manifest_path(args, args.files))
    report = drift.check_drift(client, with_user(desired, client.user_id))
    data = drift.report_to_dict(report)
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print(drift.render_text(data), end="")
    return EXIT_CHANGES if report.drifted else EXIT_OK
