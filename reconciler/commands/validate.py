"""`reconciler validate`: check manifests without touching any API; exit 1 when any is invalid."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from reconciler.commands.common import EXIT_ERROR, EXIT_OK, manifest_args, project_args, verb
from reconciler.core.errors import ManifestError, ReconcilerError
from reconciler.core.printable import printable

if TYPE_CHECKING:
    from reconciler.commands.common import Subparsers
    from reconciler.core.errors import Problem


def add_parser(sub: Subparsers) -> None:
    v = verb(
        sub,
        "validate",
        "check manifests without touching any API",
        "reconciler validate manifest.yaml\n  reconciler validate -f base.yaml -f prod.yaml --var cut=0.9\n"
        "  reconciler validate            # every app of reconciler.yaml",
    )
    v.add_argument("files", nargs="*", metavar="FILE")
    v.add_argument("--json", action="store_true", help="print problems as JSON")
    v.add_argument(
        "--require-values",
        action="store_true",
        help="a variable with no value is a problem (by default it is checked with a placeholder, as a pre-commit hook needs)",
    )
    manifest_args(v)
    project_args(v, parallel=False)
    v.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from reconciler.commands.common import project_mode
    from reconciler.manifest.load import load_many, load_overlays, read_inputs

    if project_mode(args, args.files):
        from reconciler.commands.project import run_validate

        return run_validate(args)
    if not args.files and not args.overlays:
        raise ReconcilerError("give FILE... or -f BASE [-f OVERLAY ...], or run inside a project (reconciler.yaml)")
    problems: list[Problem] = []
    try:
        inputs = read_inputs(args.var, args.var_file)
        inputs.placeholders = not args.require_values
        if args.files:  # positional files are independent manifests
            load_many(args.files, inputs=inputs)
        if args.overlays:  # -f files are one manifest: a base and its overlays
            load_overlays(args.overlays, inputs=inputs)
    except ManifestError as err:
        problems = list(err.problems)
    if args.json:  # a plain list: [] means every file is valid
        print(json.dumps([p.as_dict() for p in problems], indent=2))
    else:
        for p in problems:
            print(printable(p), file=sys.stderr)
        if not problems:
            print(f"{len(args.files) + (1 if args.overlays else 0)} manifest(s) valid")
            if inputs.placeheld:
                names = ", ".join(sorted(inputs.placeheld))
                print(
                    f"note: variable(s) with no value here, checked with placeholders: {names} "
                    "(give --var or --var-file to check the values too, or --require-values to insist)",
                    file=sys.stderr,
                )
    return EXIT_ERROR if problems else EXIT_OK
