"""`reconciler schema`: print (or write) the manifest JSON Schema, so a repository can keep its own
copy for editors and for the modeline `export` and `convert` write."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from reconciler.commands.common import EXIT_OK, verb
from reconciler.core.errors import ReconcilerError

if TYPE_CHECKING:
    from reconciler.commands.common import Subparsers


def add_parser(sub: Subparsers) -> None:
    sc = verb(sub, "schema", "print the manifest JSON Schema", "reconciler schema -o schemas/manifest.schema.json")
    sc.add_argument("-o", "--output", metavar="FILE", help="write here (default: stdout)")
    sc.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from importlib import resources

    from reconciler.commands.common import write_output

    text = resources.files("reconciler").joinpath("manifest.schema.json").read_text("utf-8")
    if args.output and args.output != "-":
        from pathlib import Path

        try:
            Path(args.output).parent.mkdir(parents=True, exist_ok=True)  # schemas/ in a new repository
        except OSError as err:
            raise ReconcilerError(f"cannot write {args.output}: {err.strerror or err}") from None
    write_output(args.output, text, name=args.output)
    return EXIT_OK
