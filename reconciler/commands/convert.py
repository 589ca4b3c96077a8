"""`reconciler convert`: turn a Clarifai SDK workflow YAML into a manifest (stdout or -o FILE)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from reconciler.commands.common import EXIT_OK, verb
from reconciler.core.errors import ReconcilerError
from reconciler.core.printable import printable

if TYPE_CHECKING:
    from reconciler.commands.common import Subparsers


def add_parser(sub: Subparsers) -> None:
    cv = verb(
        sub,
        "convert",
        "turn a Clarifai SDK workflow YAML into a manifest",
        "reconciler convert workflow.yml --app my-app -o manifest.yaml",
    )
    cv.add_argument("file", metavar="SDK_WORKFLOW.yml")
    cv.add_argument("-o", "--output", metavar="FILE", help="write here (default: stdout)")
    cv.add_argument("--app", metavar="ID", help="the manifest's app id (default: the workflow id)")
    cv.add_argument(
        "--model-owner",
        metavar="USER/APP",
        help="owner of pinned models that name no user_id/app_id (default: clarifai/main, as in the SDK's own examples)",
    )
    cv.add_argument(
        "--schema",
        metavar="PATH|URL",
        help="schema for the modeline (default: the repository's copy, relative to the output; 'none' for none)",
    )
    cv.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from reconciler.commands.common import schema_ref, write_output
    from reconciler.manifest.convert import convert_file

    owner = tuple(args.model_owner.split("/", 1)) if args.model_owner else ("clarifai", "main")
    if len(owner) != 2 or not all(owner):
        raise ReconcilerError(f"--model-owner {args.model_owner!r}: expected USER/APP, e.g. clarifai/main")
    text, warnings = convert_file(args.file, app_id=args.app, model_owner=(owner[0], owner[1]), schema_ref=schema_ref(args))
    write_output(args.output, text)
    for w in warnings:
        print(f"warning: {printable(w)}", file=sys.stderr)
    return EXIT_OK
