"""`reconciler export --app ID`: write a manifest capturing a live app (stdout or -o FILE)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from reconciler.commands.common import EXIT_OK, connection_args, verb
from reconciler.core.printable import printable

if TYPE_CHECKING:
    from reconciler.commands.common import Subparsers


def add_parser(sub: Subparsers) -> None:
    ex = verb(sub, "export", "write a manifest capturing a live app", "reconciler export --app my-app -o manifest.yaml")
    ex.add_argument("--app", required=True, metavar="ID", help="the app to export")
    ex.add_argument("-o", "--output", metavar="FILE", help="write here (default: stdout)")
    ex.add_argument(
        "--schema",
        metavar="PATH|URL",
        help="schema for the modeline (default: the repository's copy, relative to FILE; 'none' for no modeline)",
    )
    connection_args(ex)
    ex.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from reconciler.commands.common import connect_client, schema_ref, write_output
    from reconciler.planning.export import export_app

    client = connect_client(args)
    text, warnings = export_app(client, args.app, user_id=args.user_id or client.user_id, schema_ref=schema_ref(args))
    write_output(args.output, text)
    for w in warnings:
        print(f"warning: {printable(w)}", file=sys.stderr)
    if args.output and args.output != "-":
        print(
            f"Exported app {args.app} to {args.output}; `reconciler plan {args.output}` should show no changes (or only adopt)",
            file=sys.stderr,
        )
    return EXIT_OK
