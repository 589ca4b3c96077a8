"""`reconciler graph`: draw a manifest's workflow DAG (Mermaid or Graphviz DOT) on stdout."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from reconciler.commands.common import EXIT_OK, manifest_args, verb
from reconciler.core.printable import printable_lines

if TYPE_CHECKING:
    from reconciler.commands.common import Subparsers


def add_parser(sub: Subparsers) -> None:
    gr = verb(
        sub,
        "graph",
        "draw a manifest's workflow DAG (Mermaid or Graphviz DOT)",
        "reconciler graph manifest.yaml --format dot | dot -Tsvg > dag.svg",
    )
    gr.add_argument("files", nargs="*", metavar="FILE")
    gr.add_argument("--workflow", metavar="ID", help="the workflow to draw (default: the app's default workflow)")
    gr.add_argument("--format", choices=["mermaid", "dot"], default="mermaid", help="diagram language")
    manifest_args(gr)
    gr.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from reconciler.commands.common import load_desired
    from reconciler.planning import graph

    desired = load_desired(args, args.files)
    print(printable_lines(graph.render(desired, args.workflow, args.format)), end="")
    return EXIT_OK
