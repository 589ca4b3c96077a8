"""`reconciler show PLAN`: print a saved plan (text, --json or --markdown) without connecting."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from reconciler.commands.common import EXIT_OK, color_args, max_chars_arg, project_args, verb
from reconciler.core.errors import ReconcilerError

if TYPE_CHECKING:
    from reconciler.commands.common import Subparsers


def add_parser(sub: Subparsers) -> None:
    sh = verb(
        sub,
        "show",
        "print a saved plan (text, --json or --markdown) without connecting",
        "reconciler show plan.json --markdown > comment.md\n  reconciler show plans/ --markdown   # a project's plan set\n"
        "  reconciler show --json             # the project's apps (a CI matrix)",
    )
    sh.add_argument(
        "plan",
        metavar="PLAN",
        nargs="?",
        help="a file written by `reconciler plan --out`, or a project's plan folder; none: list the project's apps",
    )
    shfmt = sh.add_mutually_exclusive_group()
    shfmt.add_argument("--json", action="store_true", help="the plan's machine format (as `plan --json`)")
    shfmt.add_argument("--markdown", action="store_true", help="Markdown for pull-request comments")
    max_chars_arg(sh)
    color_args(sh)
    project_args(sh, parallel=False)
    sh.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from reconciler.commands.common import project_mode, use_color
    from reconciler.planning import render
    from reconciler.planning.document import plan_document
    from reconciler.planning.planfile import load_saved_plan, read_plan_file
    from reconciler.project.planset import is_plan_set

    if args.plan is not None and is_plan_set(args.plan):
        from reconciler.commands.project import show_plan_set

        return show_plan_set(args, args.plan)
    if project_mode(args, [args.plan] if args.plan else []):
        from reconciler.commands.project import run_show

        return run_show(args)
    if args.plan is None:
        raise ReconcilerError("give PLAN (a file written by `reconciler plan --out`), or run inside a project (reconciler.yaml)")
    data = read_plan_file(args.plan)
    if data is None:
        raise ReconcilerError(f"{args.plan} is not a usable saved plan: not a plan file written by `reconciler plan --out`")
    plan = load_saved_plan(args.plan, data)
    doc = render.plan_to_dict(plan)
    if args.json:
        print(json.dumps(plan_document(plan), indent=2))
    elif args.markdown:
        print(render.render_markdown(doc, plan, max_chars=args.max_chars))
    else:  # the same bytes as `plan` printed when the plan was made
        print(render.render_text(doc, color=use_color(args)))
    return EXIT_OK
