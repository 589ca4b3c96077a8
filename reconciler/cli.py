"""Command line: `main(argv) -> int`. One function per verb; the only place that maps errors to
exit codes and prints them. Library code raises `ReconcilerError`s; nothing below prints a
traceback for an error a user can cause.

Exit codes: 0 success; 1 error (bad input, API failure, refused plan); 2 "changes present" for
`plan --detailed-exitcode` (and `drift`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Callable, Sequence

from reconciler import __version__
from reconciler.errors import ManifestError, ReconcilerError

EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line and exit code 1 (not argparse's 2, which
    would collide with `--detailed-exitcode`'s "changes present")."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise _UsageError(f"{self.prog}: {message}")


class _UsageError(Exception):
    pass


# --- verbs -------------------------------------------------------------------------------------

def cmd_validate(args: argparse.Namespace) -> int:
    from reconciler.manifest import load_many

    problems = []
    try:
        load_many(args.files)
    except ManifestError as err:
        problems = err.problems
    if args.json:
        print(json.dumps({"valid": not problems, "problems": [p.as_dict() for p in problems]}, indent=2))
    else:
        for p in problems:
            print(p, file=sys.stderr)
        if not problems:
            print(f"{len(args.files)} manifest(s) valid")
    return EXIT_ERROR if problems else EXIT_OK


def cmd_sandbox_serve(args: argparse.Namespace) -> int:
    from reconciler.sandbox.server import serve

    return serve(host=args.host, port=args.port, db=args.db, latency_ms=args.latency_ms,
                 rate_limit=args.rate_limit, predictions=args.predictions)


# --- parser ------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="reconciler", description="Terraform-style plan/apply for Clarifai apps.")
    p.add_argument("--version", action="version", version=f"reconciler {__version__}")
    sub = p.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)

    v = sub.add_parser("validate", help="check manifests without touching any API")
    v.add_argument("files", nargs="+", metavar="FILE")
    v.add_argument("--json", action="store_true", help="print problems as JSON")
    v.set_defaults(func=cmd_validate)

    sb = sub.add_parser("sandbox", help="the local Clarifai-compatible API")
    sbsub = sb.add_subparsers(dest="sandbox_verb", metavar="VERB", parser_class=_Parser)
    serve = sbsub.add_parser("serve", help="serve the sandbox over HTTP on loopback")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    serve.add_argument("--db", default=".reconciler/sandbox.sqlite", help="SQLite file (created if missing)")
    serve.add_argument("--latency-ms", type=float, default=0.0, help="added to every request")
    serve.add_argument("--rate-limit", type=float, default=0.0, help="requests/second; 0 = unlimited")
    serve.add_argument("--predictions", default=None, help="JSONL of recorded model predictions")
    serve.set_defaults(func=cmd_sandbox_serve)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except _UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_ERROR
    except SystemExit as exc:  # --help / --version
        return int(exc.code or 0)
    func: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return EXIT_ERROR
    try:
        return func(args)
    except ManifestError as err:
        for p in err.problems:
            print(p, file=sys.stderr)
        return EXIT_ERROR
    except ReconcilerError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:
        return EXIT_ERROR
    except Exception as err:  # a bug, not a user error: still one line, and a hint for reporting
        if os.environ.get("RECONCILER_TRACEBACK"):
            raise
        print(f"error: internal error ({type(err).__name__}): {err}; "
              "set RECONCILER_TRACEBACK=1 to see where", file=sys.stderr)
        return EXIT_ERROR
