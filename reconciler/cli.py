"""Command line: `main(argv) -> int`, the only place that maps errors to exit codes and prints
them. The verbs live in `reconciler/commands/` (one module each: its parser and its command
function, see `commands/__init__.py`); this module builds the parser from them and runs the verb.
Library code and commands raise `ReconcilerError`s; nothing prints a traceback for an error a user
can cause.

Exit codes (`core.exitcodes`): 0 success; 1 error (bad input, API failure, refused plan, stale
saved plan, the app lease held by another apply); 2 "changes present" for `plan
--detailed-exitcode` (and `drift`); 3 apply applied what it could and left some actions for a later
apply (a model that cannot train yet).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import TextIO

from reconciler import __version__
from reconciler.commands import (
    apply,
    audit,
    completion,
    convert,
    drift,
    export,
    graph,
    init,
    plan,
    probe,
    record,
    sandbox,
    schema,
    show,
    simulate,
    tune,
    unlock,
    validate,
)
from reconciler.commands.common import EXIT_CHANGES, EXIT_ERROR, EXIT_OK, HelpFormatter
from reconciler.core.errors import ManifestError, ReconcilerError

__all__ = ["EXIT_CHANGES", "EXIT_ERROR", "EXIT_OK", "build_parser", "main"]

#: The verb modules, in the order `reconciler --help` lists them.
VERBS = (
    init,
    validate,
    plan,
    show,
    apply,
    unlock,
    export,
    drift,
    convert,
    simulate,
    record,
    tune,
    audit,
    graph,
    sandbox,
    schema,
    completion,
    probe,
)


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line and exit code 1 (not argparse's 2, which
    would collide with `--detailed-exitcode`'s "changes present")."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise _UsageError(f"{self.prog}: {message}")


class _UsageError(Exception):
    pass


# --- output: everything printed or written has the PAT masked -------------------------------------


class _Masked:
    """A text stream that masks the PAT(s) in use (`client.mask_secrets`) in whatever is written
    to it: values the API returns (a description, metadata) are printed as they are, except that.

    `diagnostics=True` (stderr): once the reader has gone (a closed pipe, `2>&1 >/dev/null | head
    -3`, or stderr closed outright), progress and notes are dropped instead of raising, so an
    apply is never stopped part-way by its own progress lines; the exit code still tells how it
    ended."""

    def __init__(self, stream: TextIO | None, *, diagnostics: bool = False) -> None:
        self._stream = stream
        self._diagnostics = diagnostics
        self._gone = stream is None

    def _lost(self, err: Exception) -> None:
        if not self._diagnostics:
            raise err
        self._gone = True

    def write(self, text: str) -> int:
        from reconciler.api.secrets import mask_secrets

        if self._gone or self._stream is None:
            return len(text)
        try:
            return self._stream.write(mask_secrets(text))
        except (OSError, ValueError) as err:  # EPIPE, EBADF, or "I/O operation on closed file"
            self._lost(err)
            return len(text)

    def flush(self) -> None:
        if self._gone or self._stream is None:
            return
        try:
            self._stream.flush()
        except (OSError, ValueError) as err:
            self._lost(err)

    def isatty(self) -> bool:
        return not self._gone and self._stream is not None and self._stream.isatty()

    def __getattr__(self, name: str) -> object:  # fileno, encoding, ...
        return getattr(self._stream, name)


# --- parser ------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The `reconciler` parser: each verb module in `VERBS` adds its own subcommand."""
    p = _Parser(
        prog="reconciler",
        description="Terraform-style plan/apply for Clarifai apps.",
        formatter_class=HelpFormatter,
        epilog="example:\n  reconciler plan manifest.yaml --out plan.json && reconciler apply plan.json\n\n"
        "Each verb has its own help: reconciler VERB --help",
    )
    p.add_argument("--version", action="version", version=f"reconciler {__version__}")
    sub = p.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)
    for module in VERBS:
        module.add_parser(sub)
    p.set_defaults(root_parser=p)  # `completion` generates its script from the whole parser
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
        if getattr(args, "verb", None):  # e.g. `reconciler sandbox` without `serve`: one line
            print(f"error: reconciler {args.verb}: choose a verb (see: reconciler {args.verb} --help)", file=sys.stderr)
            return EXIT_ERROR
        parser.print_help(sys.stderr)
        return EXIT_ERROR
    if isinstance(sys.stdout, _Masked):  # main() running in another thread already masks
        return _run(func, args)
    out, err_stream = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _Masked(out), _Masked(err_stream, diagnostics=True)
    try:
        return _run(func, args)
    finally:
        sys.stdout, sys.stderr = out, err_stream


def _run(func: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """`func(args)` with every error mapped to one line and an exit code; with `--json` the
    error is also JSON on stdout (`commands.machine.json_error`)."""
    from reconciler.core.printable import printable

    try:
        return func(args)
    except ManifestError as err:  # each problem one line: a key or value quoted in it is escaped
        for p in err.problems:
            print(printable(p), file=sys.stderr)
        _json_error(args, err)
        return err.exit_code
    except ReconcilerError as err:
        print(f"error: {printable(err)}", file=sys.stderr)
        _json_error(args, err)
        return err.exit_code
    except KeyboardInterrupt as err:
        print("error: interrupted", file=sys.stderr)
        _json_error(args, err)
        return EXIT_ERROR
    except BrokenPipeError:
        return EXIT_ERROR
    except Exception as err:  # a bug, not a user error: still one line, and a hint for reporting
        if os.environ.get("RECONCILER_TRACEBACK"):
            raise
        print(
            f"error: internal error ({type(err).__name__}): {printable(err)}; set RECONCILER_TRACEBACK=1 to see where",
            file=sys.stderr,
        )
        return EXIT_ERROR


def _json_error(args: argparse.Namespace, err: BaseException) -> None:
    """With `--json`, the error on stdout as well, for the machine reading it."""
    if getattr(args, "json", False):
        from reconciler.commands.machine import json_error

        try:
            json_error(args, err)
        except BrokenPipeError:
            pass
