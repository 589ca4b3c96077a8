"""`reconciler record`: record a live app's model predictions (and reviewed labels) for simulate
and tune. The recording is `reconciler.annotate.record`'s."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from reconciler.commands.common import EXIT_OK, connection_args, manifest_args, verb
from reconciler.core.printable import printable, printable_lines

if TYPE_CHECKING:
    from reconciler.commands.common import Subparsers


def add_parser(sub: Subparsers) -> None:
    rc = verb(
        sub,
        "record",
        "record a live app's model predictions (and reviewed labels) for simulate and tune",
        "reconciler record manifest.yaml --predictions predictions.jsonl --labels labels.jsonl",
    )
    rc.add_argument("files", nargs="*", metavar="FILE")
    rc.add_argument(
        "--predictions",
        required=True,
        metavar="OUT.jsonl",
        help="append recorded predictions here (re-running skips inputs already in it)",
    )
    rc.add_argument("--labels", metavar="OUT.jsonl", help="write the labels people made or reviewed here")
    rc.add_argument("--workflow", metavar="ID", help="the workflow whose models to run (default: the app's default)")
    rc.add_argument("--task", metavar="ID", help="a task that auto-annotates: record its model and its reviews instead")
    rc.add_argument("--limit", type=int, default=None, metavar="N", help="record at most N inputs")
    rc.add_argument("--input-ids", nargs="+", metavar="ID", help="record only these inputs")
    rc.add_argument(
        "--dataset",
        metavar="ID",
        help="record only the inputs of this dataset; the labels name its version (the one the manifest defines)",
    )
    rc.add_argument(
        "--batch-size", type=int, default=128, metavar="N", help="inputs per PostModelOutputs call (the API's limit is 128)"
    )
    manifest_args(rc)
    connection_args(rc)
    rc.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from reconciler.annotate.record import RecordOptions, record
    from reconciler.commands.common import connect_client, load_desired, manifest_path, with_user

    desired = load_desired(args, args.files)
    client = connect_client(args, desired.user_id, manifest=manifest_path(args, args.files))
    desired = with_user(desired, client.user_id)
    opts = RecordOptions(
        predictions=args.predictions,
        labels=args.labels,
        workflow=args.workflow,
        limit=args.limit,
        input_ids=tuple(args.input_ids or ()),
        batch_size=args.batch_size,
        dataset=args.dataset,
        task=args.task,
    )
    summary = record(client, desired, opts, progress=lambda msg: print(printable(msg), file=sys.stderr, flush=True))
    print(printable_lines(summary))
    return EXIT_OK
