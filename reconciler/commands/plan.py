"""`reconciler plan`: show what apply would change in the live app; `--out` saves the plan for
`reconciler apply PLAN`; `--detailed-exitcode` exits 2 when there are changes."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from reconciler.commands.common import (
    EXIT_CHANGES,
    EXIT_OK,
    connection_args,
    manifest_args,
    max_chars_arg,
    plan_args,
    project_args,
    verb,
)
from reconciler.core.errors import ReconcilerError

if TYPE_CHECKING:
    from reconciler.api.client import Client
    from reconciler.commands.common import Subparsers
    from reconciler.planning.actions import Plan


def add_parser(sub: Subparsers) -> None:
    pl = verb(
        sub,
        "plan",
        "show what apply would change in the live app",
        "reconciler plan manifest.yaml --out plan.json\n  reconciler plan -f base.yaml -f prod.yaml --markdown\n"
        "  reconciler plan --out plans/ --markdown   # every app of reconciler.yaml, one comment",
    )
    pl.add_argument("files", nargs="*", metavar="FILE")
    manifest_args(pl)
    fmt = pl.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="machine-readable plan (format_version 1)")
    fmt.add_argument("--markdown", action="store_true", help="Markdown for pull-request comments")
    pl.add_argument(
        "--out",
        metavar="PLAN",
        help="save the plan; `reconciler apply PLAN` applies exactly it (a project: a folder of one plan per app)",
    )
    pl.add_argument(
        "--detailed-exitcode", action="store_true", help="exit 0 when there are no changes, 2 when there are, 1 on error"
    )
    max_chars_arg(pl)
    plan_args(pl)
    project_args(pl)
    connection_args(pl)
    pl.set_defaults(func=run)


def plan_manifest(
    args: argparse.Namespace, on_retry_event: Callable[[dict[str, Any]], None] | None = None
) -> tuple[Client, Plan]:
    """Connect for the manifest the arguments name and plan it (`pipeline.plan_app`);
    `on_retry_event`: the client's retries as data (`apply --json`)."""
    from reconciler.commands.common import connect_client, load_desired, manifest_path, with_user
    from reconciler.planning.pipeline import plan_app

    desired = load_desired(args, args.files)
    client = connect_client(args, desired.user_id, manifest=manifest_path(args, args.files))
    client.on_retry_event = on_retry_event
    return client, plan_app(client, with_user(desired, client.user_id), targets=args.target)


def run(args: argparse.Namespace) -> int:
    from reconciler.commands.common import project_mode, use_color
    from reconciler.planning import render
    from reconciler.planning.document import plan_document
    from reconciler.planning.planfile import check_plan_target

    if project_mode(args, args.files):
        from reconciler.commands.project import run_plan

        return run_plan(args)

    if args.out:
        check_plan_target(args.out)  # before any request: a manifest is never replaced by a plan
    _client, plan = plan_manifest(args)
    data = render.plan_to_dict(plan)
    if args.json:  # the view plus the desired state and each action's resources (policy engines)
        print(json.dumps(plan_document(plan), indent=2, sort_keys=False))
    elif args.markdown:
        print(render.render_markdown(data, plan, max_chars=args.max_chars))
    else:
        print(render.render_text(data, color=use_color(args)))
    if args.out:
        write_plan_file(args.out, plan)
        print(f"Saved the plan to {args.out}; apply it with: reconciler apply {args.out}", file=sys.stderr)
    if args.detailed_exitcode and not plan.empty:
        return EXIT_CHANGES
    return EXIT_OK


def write_plan_file(path: str, plan: Plan) -> None:
    """Save `plan` for `reconciler apply PLAN` (mode 0600: a plan describes the app in full)."""
    from reconciler.api.secrets import mask_data
    from reconciler.commands.common import write_output
    from reconciler.planning.serialize import plan_to_file_dict

    doc = plan_to_file_dict(plan)
    # the PAT is masked in the plan's data (resources, words, notes), never in the file's own
    # fields: a file whose structure would hold it is refused by `write_output`
    masked = {k: mask_data(v) if k in ("desired", "live", "actions", "notes") else v for k, v in doc.items()}
    if masked != doc:
        print(
            f"warning: the plan holds the PAT (in a value the API returned, or the manifest); {path} "
            "has *** in its place, so it will be refused as edited: remove the PAT from the app and plan again",
            file=sys.stderr,
        )
    try:  # key order kept: it is the order changes are listed in; NaN / infinities are not JSON
        text = json.dumps(masked, indent=1, allow_nan=False)
    except ValueError:
        raise ReconcilerError(
            f"cannot write plan file {path}: the plan holds a non-finite number (NaN or infinity), which JSON cannot carry"
        ) from None
    write_output(path, text, private=True, name=f"plan file {path}")
