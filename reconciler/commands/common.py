"""What several verbs share: exit codes, help layout, argument groups and types, loading the
manifest, the one connect helper and the one output writer.

Contract:
- `verb(sub, name, summary, example)`: a verb's parser with its summary and example;
- argument groups: `connection_args`, `manifest_args`, `plan_args`, `max_chars_arg`, and the
  argument types that refuse non-finite or out-of-range numbers with argparse's one line;
- `load_desired(args, files) -> State` (manifest, overlays, variables), `manifest_path`, `with_user`;
- `connect_client(args, ...) -> Client`, the only way a verb connects (flags and environment);
- `schema_ref(args)`: the modeline schema of a manifest export and convert write;
- `write_output(path, text)`: stdout for None or "-", else the file replaced atomically
  (`fileio.write_atomic`); a text holding the PAT is refused (callers mask it in their data
  first, `secrets.mask_data`); an `OSError` becomes one `ReconcilerError` line;
  `check_chart_target(path)`: an `--svg` chart replaces only a chart or an empty file.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from typing import TYPE_CHECKING

from reconciler.core.errors import ReconcilerError
from reconciler.core.exitcodes import EXIT_CHANGES as EXIT_CHANGES  # the verbs' exit codes, said once
from reconciler.core.exitcodes import EXIT_DEFERRED as EXIT_DEFERRED
from reconciler.core.exitcodes import EXIT_ERROR as EXIT_ERROR
from reconciler.core.exitcodes import EXIT_OK as EXIT_OK

if TYPE_CHECKING:
    from reconciler.api.client import Client
    from reconciler.core.state import State

    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Examples kept as written, and every option's default shown (like
    ArgumentDefaultsHelpFormatter, minus the noise of "default: None / False / []")."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        d = action.default
        if not action.option_strings or "default" in text.lower() or d is None or d is False or d == [] or d is argparse.SUPPRESS:
            return text
        return text + " (default: %(default)s)"


def verb(sub: Subparsers, name: str, summary: str, example: str) -> argparse.ArgumentParser:
    """A verb's parser: its one-line summary (in `reconciler --help` too) and an example."""
    return sub.add_parser(
        name,
        help=summary,
        description=summary[:1].upper() + summary[1:] + ".",
        epilog=f"example:\n  {example}",
        formatter_class=HelpFormatter,
    )


# --- numeric flags: finite and in range, or one clear line (argparse words the error) ---------------


def number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid float value: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def timeout(text: str) -> float:
    value = number(text)
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"{text!r}: a timeout is more than 0 and at most 3600 seconds")
    return value


#: Slowest non-zero rate accepted: one request every 100 s (a smaller one is surely a typo, and
#: 1/rate would overflow the sleep for tiny values).
MIN_RATE = 0.01


def rate(text: str) -> float:
    value = number(text)
    if value != 0 and not MIN_RATE <= value <= 1_000_000:
        raise argparse.ArgumentTypeError(f"{text!r}: requests per second are 0 (no limit) or from {MIN_RATE:g} to 1000000")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


# --- argument groups ------------------------------------------------------------------------------


def connection_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("connection")
    g.add_argument(
        "--api-base",
        default=None,
        help="API base URL (default: CLARIFAI_API_BASE, "
        "else https://api.clarifai.com; with no PAT and no base: the embedded sandbox)",
    )
    g.add_argument("--pat-file", default=None, help="read the PAT from this file (default: CLARIFAI_PAT)")
    g.add_argument(
        "--user",
        dest="user_id",
        default=None,
        help="Clarifai user id (default: the manifest's app.user_id, else CLARIFAI_USER_ID)",
    )
    g.add_argument("--rate-limit", type=rate, default=15.0, help="client-side requests/second (0 = off)")
    g.add_argument("--debug", action="store_true", help="trace every HTTP request on stderr (PAT redacted)")
    g.add_argument(
        "--timeout",
        type=timeout,
        default=30.0,
        metavar="SECONDS",
        help="per-request timeout (connect, read, write); timed-out requests are retried",
    )
    g.add_argument(
        "--sandbox",
        dest="force_sandbox",
        action="store_true",
        help="use the embedded local sandbox even when CLARIFAI_PAT is set (not with --api-base or --pat-file)",
    )
    g.add_argument(
        "--require-credentials",
        action="store_true",
        help="a missing PAT is an error, never the embedded sandbox (implied when CI or RECONCILER_REQUIRE_CREDENTIALS is set)",
    )


def manifest_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("manifest inputs")
    g.add_argument(
        "-f",
        "--file",
        dest="overlays",
        action="append",
        default=[],
        metavar="FILE",
        help="a manifest, then overlays merged onto it by resource id (repeatable, in order)",
    )
    g.add_argument(
        "--var",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="value of a variable declared under `variables:` (repeatable; wins over --var-file)",
    )
    g.add_argument(
        "--var-file",
        action="append",
        default=[],
        metavar="FILE",
        help="YAML mapping of variable values (repeatable; later files win)",
    )


def project_args(p: argparse.ArgumentParser, *, parallel: bool = True) -> None:
    """The project flags: with no manifest argument the verb acts on the apps of `reconciler.yaml`
    (found from the current directory upward, as git finds .git; docs/gitops.md "Projects")."""
    g = p.add_argument_group("project (with no FILE: every app of reconciler.yaml)")
    g.add_argument(
        "--app",
        dest="apps",
        action="append",
        default=[],
        metavar="NAME",
        help="only this app of the project (repeatable)",
    )
    g.add_argument(
        "--changed-since",
        metavar="REF",
        default=None,
        help="only the apps whose manifest, overlays or var files changed since the merge base of REF and HEAD "
        "(a change to reconciler.yaml selects every app)",
    )
    g.add_argument(
        "--project",
        metavar="PATH",
        default=None,
        help="the project file (default: RECONCILER_PROJECT, else reconciler.yaml in the current directory or above)",
    )
    if parallel:
        g.add_argument("--parallel", type=positive_int, default=8, metavar="N", help="apps planned or applied at once")


def color_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--color",
        choices=["auto", "always", "never"],
        default="auto",
        help="ANSI colour: auto = only on a terminal, and not when NO_COLOR is set (non-empty) or TERM=dumb",
    )
    p.add_argument("--no-color", action="store_true", help="the same as --color=never")


def plan_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--target",
        action="append",
        default=[],
        metavar="KIND/ID",
        help="limit to this resource and what it depends on (repeatable)",
    )
    color_args(p)


#: The smallest --max-chars: a heading, the summary and the line saying what was left out.
MIN_MAX_CHARS = 200


def max_chars(text: str) -> int:
    value = positive_int(text)
    if value < MIN_MAX_CHARS:
        raise argparse.ArgumentTypeError(
            f"must be at least {MIN_MAX_CHARS} (a heading, the summary and a line saying what was left out), got {value}"
        )
    return value


def max_chars_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--max-chars",
        type=max_chars,
        default=60_000,
        metavar="N",
        help="--markdown stays under N characters by collapsing and summarising long change "
        "lists (default: 60000; GitHub refuses comments over 65536)",
    )


def use_color(args: argparse.Namespace) -> bool:
    from reconciler.planning.render import use_color as decide

    mode = "never" if getattr(args, "no_color", False) else getattr(args, "color", "auto")
    return decide(mode, os.environ, sys.stdout.isatty())


# --- the manifest ---------------------------------------------------------------------------------


def _manifest_files(args: argparse.Namespace, files: list[str]) -> list[str]:
    """Positional FILE(s), then -f overlays, in order."""
    return list(files) + list(getattr(args, "overlays", []) or [])


def manifest_path(args: argparse.Namespace, files: list[str]) -> str | None:
    """The manifest (the base, with overlays): where the embedded sandbox is looked for."""
    all_files = _manifest_files(args, files)
    return all_files[0] if all_files else None


def load_desired(args: argparse.Namespace, files: list[str]) -> State:
    """The desired State from positional FILE(s) and/or -f overlays, with variables applied."""
    from reconciler.manifest.load import load_overlays, read_inputs

    all_files = _manifest_files(args, files)
    if not all_files:
        raise ReconcilerError("give a manifest: FILE, or -f BASE [-f OVERLAY ...], or run inside a project (reconciler.yaml)")
    if len(files) > 1:
        raise ReconcilerError("give exactly one manifest (use -f BASE -f OVERLAY to merge overlays)")
    inputs = read_inputs(getattr(args, "var", []) or [], getattr(args, "var_file", []) or [])
    return load_overlays(all_files, inputs=inputs)


def project_mode(args: argparse.Namespace, files: list[str]) -> bool:
    """Whether the verb acts on the project's apps: no FILE and no -f, and a project file (or a
    project flag) is given or found. Project flags with a FILE are refused (one line)."""
    flags = [
        f for f, v in (("--app", getattr(args, "apps", None)), ("--changed-since", getattr(args, "changed_since", None))) if v
    ]
    if files or getattr(args, "overlays", None):
        if flags:
            raise ReconcilerError(f"{', '.join(flags)} select apps of a project: give them without FILE or -f")
        return False
    if flags or getattr(args, "project", None) or os.environ.get("RECONCILER_PROJECT"):
        return True
    from pathlib import Path

    from reconciler.project.load import find_project

    return find_project(Path.cwd()) is not None


def with_user(state: State, user_id: str | None) -> State:
    """`state` owned by `user_id` (the connected user) when the manifest names no user."""
    import dataclasses

    if state.user_id or not user_id:
        return state
    return dataclasses.replace(state, user_id=user_id)


# --- connecting and writing -----------------------------------------------------------------------


def connect_client(
    args: argparse.Namespace, manifest_user_id: str | None = None, *, manifest: str | None = None, sandbox_db: str | None = None
) -> Client:
    """The Client the connection flags ask for. `manifest`: the manifest next to which (or above
    which) the embedded sandbox is looked for; `sandbox_db`: a saved plan's own sandbox."""
    from pathlib import Path

    from reconciler.commands.connect import connect

    return connect(
        api_base=args.api_base,
        pat_file=args.pat_file,
        user_id=args.user_id,
        manifest_user_id=manifest_user_id,
        rate_limit=args.rate_limit,
        debug=args.debug,
        timeout=args.timeout,
        require_credentials=args.require_credentials,
        force_sandbox=getattr(args, "force_sandbox", False),
        sandbox_from=Path(manifest).absolute().parent if manifest else None,
        sandbox_db=Path(sandbox_db) if sandbox_db else None,
    )


def write_output(path: str | None, text: str, *, private: bool = False, name: str | None = None) -> None:
    """`text` to stdout (`path` None or "-"), else to the file `path`, replaced atomically (mode
    0600 when `private`). The PAT is masked by the caller, in the data before it became `text`
    (`secrets.mask_data`: a file the tool reads back keeps its syntax); a text in which it still
    shows is refused, never rewritten. A failure is one line: "cannot write NAME: why" (`name`
    defaults to the path)."""
    from reconciler.api.secrets import holds_secret

    if holds_secret(text):
        raise ReconcilerError(f"cannot write {name or path or 'the output'}: it would hold the PAT; nothing was written")
    if not path or path == "-":
        sys.stdout.write(text)
        return
    from reconciler.core.fileio import write_atomic

    try:
        write_atomic(path, text, private=private)
    except OSError as err:
        raise ReconcilerError(f"cannot write {name or path}: {err.strerror or err}") from None


def check_chart_target(path: str, flag: str = "--svg") -> None:
    """A chart replaces only a chart (an SVG) or an empty file, never a manifest: checked before the
    work. A symlink is replaced, not written through, so it is not looked into."""
    from reconciler.core.fileio import read_regular

    if not os.path.lexists(path) or os.path.islink(path):
        return
    try:
        head = read_regular(path, 512).lstrip()
    except OSError:
        return  # a directory, a FIFO: the writer words the refusal
    if head and not head.startswith((b"<svg", b"<?xml")):
        raise ReconcilerError(
            f"{flag} {path}: the file exists and is not an SVG chart; give another file name, or delete it first to replace it"
        )


#: Where a repository keeps its copy of the manifest schema (`reconciler schema -o ...` writes one).
SCHEMA_COPIES = ("schemas/manifest.schema.json", "manifest.schema.json")


def schema_ref(args: argparse.Namespace) -> str | None:
    """A written manifest's modeline schema (export, convert): --schema ('none': no modeline), else
    the repository's own copy of the schema (`SCHEMA_COPIES`, looked for from the output file's
    folder up to the project root), relative to the output file; else no modeline, with a note.
    Never a path into site-packages or an absolute path: the file is meant for git, and those
    would differ on every machine (issue 23)."""
    if args.schema:
        return None if args.schema == "none" else str(args.schema)
    from pathlib import Path

    from reconciler.commands.connect import project_root

    out_dir = Path(os.path.abspath(args.output)).parent if args.output and args.output != "-" else Path.cwd()
    root = project_root(out_dir)
    for folder in (out_dir, *out_dir.parents):
        for rel in SCHEMA_COPIES:
            if (folder / rel).is_file():
                return Path(os.path.relpath(folder / rel, out_dir)).as_posix()
        if folder == root:
            break
    print(
        "note: no copy of the manifest schema in this repository, so no schema modeline was written; "
        "`reconciler schema -o schemas/manifest.schema.json` makes one (or pass --schema PATH|URL)",
        file=sys.stderr,
    )
    return None


def ask_yes(question: str, *, refusal: str) -> bool:
    """Whether the person at the terminal answered `question` with exactly "yes"; without a
    terminal on stdin, `ReconcilerError(refusal)` (a confirmation is never assumed)."""
    if not sys.stdin or not sys.stdin.isatty():
        raise ReconcilerError(refusal)
    print(f"\n{question} Only 'yes' will be accepted: ", end="", file=sys.stderr, flush=True)
    try:
        answer = input()
    except EOFError:
        answer = ""
    return answer.strip() == "yes"
