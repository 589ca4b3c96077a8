"""`reconciler probe --app THROWAWAY`: settle, with evidence, the readings the sandbox plays as
quirks: make a throwaway app, make the calls that tell each reading apart, record the raw answers
(user ids masked, the PAT never) in the parity corpus's format, print "reading -> observed" per
quirk, delete the app. The logic is `api/probe.py`."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from reconciler.commands.common import EXIT_OK, connection_args, verb
from reconciler.core.errors import ReconcilerError

if TYPE_CHECKING:
    from reconciler.commands.common import Subparsers

#: Where a recording goes by default: the parity corpus's probe folder of a checkout.
DEFAULT_RECORD = "tests/parity/probe"


def add_parser(sub: Subparsers) -> None:
    p = verb(
        sub,
        "probe",
        "settle the API readings the sandbox plays as quirks, on a throwaway app",
        "CLARIFAI_PAT=... reconciler probe --app reconciler-probe-1 --user my-user-id",
    )
    p.add_argument("--app", required=True, metavar="ID", help="a NEW app id: the probe creates this app and deletes it")
    p.add_argument(
        "--record",
        metavar="DIR",
        default=DEFAULT_RECORD,
        help="write the raw answers (parity corpus format) and verdicts.json here, replacing an earlier recording",
    )
    p.add_argument("--no-record", action="store_true", help="print the verdicts only")
    p.add_argument("--keep", action="store_true", help="keep the throwaway app (default: delete it at the end)")
    connection_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import datetime
    from pathlib import Path

    from reconciler import __version__
    from reconciler.api import probe
    from reconciler.commands.common import connect_client, write_output
    from reconciler.core.idrules import CLARIFAI_ID

    why = CLARIFAI_ID.problem(args.app)
    if why:
        raise ReconcilerError(f"--app: {why}")
    client = connect_client(args)
    recording = probe.masked(probe.run(client, args.app, keep=args.keep))
    verdicts = probe.judge(recording.exchanges, args.app)
    for v in verdicts:
        print(v.line())
    if args.no_record:
        return EXIT_OK
    folder = Path(args.record)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for old in [*folder.glob("probe-*.json"), *folder.glob("verdicts.json")]:
            old.unlink()
    except OSError as err:
        raise ReconcilerError(f"cannot write the recording to {folder}: {err.strerror or err}") from None
    source = {
        "probe": "reconciler probe",
        "reconciler": __version__,
        "api_base": recording.api_base,
        "recorded": datetime.date.today().isoformat(),
    }
    files = probe.corpus_files(recording, verdicts, source)
    for name, doc in files.items():
        write_output(str(folder / name), json.dumps(doc, indent=2, ensure_ascii=False) + "\n", name=str(folder / name))
    print(f"recorded {len(files) - 1} answers and the verdicts in {folder}")
    return EXIT_OK
