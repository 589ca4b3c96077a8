"""`reconciler audit`: the audited precision of the auto-accepted annotations, from the review
outcomes of the random sample sent to review; exit 0 fine, 2 below the target, 1 error. The
report is `reconciler.annotate.audit`'s."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from reconciler.commands.common import EXIT_CHANGES, EXIT_OK, connection_args, manifest_args, verb

if TYPE_CHECKING:
    from reconciler.commands.common import Subparsers


def add_parser(sub: Subparsers) -> None:
    au = verb(
        sub,
        "audit",
        "the audited precision of the auto-accepted annotations (read-only); exit 0 fine, 2 below the target, 1 error",
        "reconciler audit manifest.yaml --target-precision 0.95",
    )
    au.add_argument("files", nargs="*", metavar="FILE")
    au.add_argument(
        "--target-precision", type=float, required=True, metavar="P", help="the precision SUCCESS annotations should reach"
    )
    au.add_argument("--confidence", type=float, default=0.95, metavar="C", help="of the bounds reported (default 0.95)")
    au.add_argument("--workflow", metavar="ID", help="the workflow (default: the app's default workflow)")
    au.add_argument("--json", action="store_true", help="machine-readable report")
    manifest_args(au)
    connection_args(au)
    au.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from reconciler.annotate.audit import AuditOptions, audit, render_text
    from reconciler.commands.common import connect_client, load_desired, manifest_path, with_user
    from reconciler.core.printable import printable_lines

    opts = AuditOptions(target=args.target_precision, confidence=args.confidence, workflow=args.workflow)
    opts.check()
    desired = load_desired(args, args.files)
    client = connect_client(args, desired.user_id, manifest=manifest_path(args, args.files))
    report = audit(client, with_user(desired, client.user_id), opts)
    # ids in the report are the manifest's and the app's: shown through `printable` (core/printable.py)
    print(json.dumps(report, indent=2) if args.json else printable_lines(render_text(report)), end="\n" if args.json else "")
    return EXIT_CHANGES if report["below"] else EXIT_OK
