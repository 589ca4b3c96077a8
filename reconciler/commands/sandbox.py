"""`reconciler sandbox serve`: serve the local Clarifai-compatible API over HTTP on loopback."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from reconciler.commands.common import number, rate, verb

if TYPE_CHECKING:
    from reconciler.commands.common import Subparsers


def port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: a TCP port is from 0 to 65535 (0 picks a free one)")
    return value


def latency(text: str) -> float:
    value = number(text)
    if not 0 <= value <= 600_000:
        raise argparse.ArgumentTypeError(f"{text!r}: added latency is from 0 to 600000 ms")
    return value


def user_key(text: str) -> tuple[str, str]:
    key, sep, user = text.partition("=")
    if not sep or not key or not user:
        raise argparse.ArgumentTypeError(f"expected KEY=USER, not {text!r}")
    return key, user


def add_parser(sub: Subparsers) -> None:
    sb = verb(sub, "sandbox", "the local Clarifai-compatible API", "reconciler sandbox serve --port 8080")
    # the sub-verbs' parser class is the verb's own (argparse's default): usage errors stay one line
    sbsub = sb.add_subparsers(dest="sandbox_verb", metavar="VERB")
    serve = verb(
        sbsub,
        "serve",
        "serve the sandbox over HTTP on loopback",
        "reconciler sandbox serve --port 8080",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (loopback unless you mean otherwise)")
    serve.add_argument("--port", type=port, default=8080, help="TCP port; 0 picks a free port")
    serve.add_argument(
        "--db",
        default=None,
        help="SQLite file (created if missing); default: the embedded sandbox plan and apply use from here "
        "(the nearest .reconciler/ in this folder or above, else a new one here)",
    )
    serve.add_argument("--latency-ms", type=latency, default=0.0, help="added to every request")
    serve.add_argument("--rate-limit", type=rate, default=0.0, help="requests/second; 0 = unlimited")
    serve.add_argument("--predictions", default=None, metavar="JSONL", help="recorded model predictions for the workflow runner")
    serve.add_argument(
        "--key",
        action="append",
        default=[],
        type=user_key,
        metavar="KEY=USER",
        help="another API key and the user it belongs to, e.g. a reviewer's (repeatable)",
    )
    serve.add_argument(
        "--quirks",
        nargs="?",
        const="pessimistic",
        default=None,
        metavar="NAMES",
        help="pessimistic mode: play the other plausible reading of unsettled API "
        "behaviour; bare = every quirk, or a comma list of names (README)",
    )
    serve.set_defaults(func=serve_run)
    label = verb(
        sbsub,
        "label",
        "post labelled inputs, listed in a YAML file, to the embedded sandbox",
        "reconciler sandbox label examples/auto-annotation/labels.yaml",
    )
    label.add_argument("file", metavar="FILE", help="the labels file: app and inputs [{url, concepts}]")
    label.add_argument(
        "--db", default=None, help="the sandbox's SQLite file (default: the one plan and apply find for FILE's folder)"
    )
    label.set_defaults(func=label_run)


def serve_run(args: argparse.Namespace) -> int:
    from reconciler.commands.connect import find_sandbox
    from reconciler.sandbox.server import serve

    if args.db is None:
        found, how = find_sandbox(None)
        db = str(found)
        print(f"sandbox: serving the embedded sandbox that plan and apply use from here: {db} ({how})", flush=True)
    else:
        db = args.db
    return serve(
        host=args.host,
        port=args.port,
        db=db,
        latency_ms=args.latency_ms,
        rate_limit=args.rate_limit,
        predictions=args.predictions,
        quirks=args.quirks,
        keys=dict(args.key),
    )


def label_run(args: argparse.Namespace) -> int:
    from reconciler.commands.sandbox_label import run

    return run(args)
