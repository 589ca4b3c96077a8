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
from collections.abc import Callable, Sequence
from typing import Any, TextIO

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


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Examples kept as written, and every option's default shown (like
    ArgumentDefaultsHelpFormatter, minus the noise of "default: None / False / []")."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        d = action.default
        if not action.option_strings or "default" in text.lower() or d is None or d is False or d == [] or d is argparse.SUPPRESS:
            return text
        return text + " (default: %(default)s)"


# --- numeric flags: finite and in range, or one clear line (argparse words the error) ---------------


def _number(text: str) -> float:
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid float value: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def _timeout(text: str) -> float:
    value = _number(text)
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"{text!r}: a timeout is more than 0 and at most 3600 seconds")
    return value


#: Slowest non-zero rate accepted: one request every 100 s (a smaller one is surely a typo, and
#: 1/rate would overflow the sleep for tiny values).
MIN_RATE = 0.01


def _rate(text: str) -> float:
    value = _number(text)
    if value != 0 and not MIN_RATE <= value <= 1_000_000:
        raise argparse.ArgumentTypeError(f"{text!r}: requests per second are 0 (no limit) or from {MIN_RATE:g} to 1000000")
    return value


def _latency(text: str) -> float:
    value = _number(text)
    if not 0 <= value <= 600_000:
        raise argparse.ArgumentTypeError(f"{text!r}: added latency is from 0 to 600000 ms")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: a TCP port is from 0 to 65535 (0 picks a free one)")
    return value


# --- output: everything printed or written has the PAT masked -------------------------------------


class _Masked:
    """A text stream that masks the PAT(s) in use (`client.mask_secrets`) in whatever is written
    to it: values the API returns (a description, metadata) are printed as they are, except that."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        from reconciler.client import mask_secrets

        return self._stream.write(mask_secrets(text))

    def __getattr__(self, name: str) -> object:  # flush, isatty, fileno, encoding, ...
        return getattr(self._stream, name)


def _write_file(path: str, text: str, *, private: bool = False) -> None:
    """Write an output file atomically (fileio.write_atomic), the PAT masked."""
    from reconciler.client import mask_secrets
    from reconciler.fileio import write_atomic

    write_atomic(path, mask_secrets(text), private=private)


# --- verbs -------------------------------------------------------------------------------------


def cmd_validate(args: argparse.Namespace) -> int:
    from reconciler.manifest import load_many, load_overlays, read_inputs

    if not args.files and not args.overlays:
        raise ReconcilerError("give FILE... or -f BASE [-f OVERLAY ...]")
    problems = []
    try:
        inputs = read_inputs(args.var, args.var_file)
        if args.files:  # positional files are independent manifests
            load_many(args.files, inputs=inputs)
        if args.overlays:  # -f files are one manifest: a base and its overlays
            load_overlays(args.overlays, inputs=inputs)
    except ManifestError as err:
        problems = err.problems
    if args.json:  # a plain list: [] means every file is valid
        print(json.dumps([p.as_dict() for p in problems], indent=2))
    else:
        for p in problems:
            print(p, file=sys.stderr)
        if not problems:
            print(f"{len(args.files) + (1 if args.overlays else 0)} manifest(s) valid")
    return EXIT_ERROR if problems else EXIT_OK


def _connection_args(p: argparse.ArgumentParser) -> None:
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
    g.add_argument("--rate-limit", type=_rate, default=15.0, help="client-side requests/second (0 = off)")
    g.add_argument("--debug", action="store_true", help="trace every HTTP request on stderr (PAT redacted)")
    g.add_argument(
        "--timeout",
        type=_timeout,
        default=30.0,
        metavar="SECONDS",
        help="per-request timeout (connect, read, write); timed-out requests are retried",
    )
    g.add_argument(
        "--require-credentials",
        action="store_true",
        help="a missing PAT is an error, never the embedded sandbox (implied when CI or RECONCILER_REQUIRE_CREDENTIALS is set)",
    )


def _connect(
    args: argparse.Namespace,
    manifest_user_id: str | None = None,
    *,
    sandbox_from: str | None = None,
    sandbox_db: str | None = None,
):  # -> Client
    """The Client the connection flags ask for. `sandbox_from`: the manifest, next to which (or
    above which) the embedded sandbox is looked for; `sandbox_db`: a saved plan's own sandbox."""
    from pathlib import Path

    from reconciler.client import connect

    return connect(
        api_base=args.api_base,
        pat_file=args.pat_file,
        user_id=args.user_id,
        manifest_user_id=manifest_user_id,
        rate_limit=args.rate_limit,
        debug=args.debug,
        timeout=args.timeout,
        require_credentials=args.require_credentials,
        sandbox_from=Path(sandbox_from).absolute().parent if sandbox_from else None,
        sandbox_db=Path(sandbox_db) if sandbox_db else None,
    )


def _manifest_args(p: argparse.ArgumentParser) -> None:
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


def _manifest_path(args: argparse.Namespace, files: list[str]) -> str | None:
    """The manifest (the base, with overlays): where the embedded sandbox is looked for."""
    all_files = list(files) + list(getattr(args, "overlays", []) or [])
    return all_files[0] if all_files else None


def _load_desired(args: argparse.Namespace, files: list[str]):  # -> State
    """The desired State from positional FILE(s) and/or -f overlays, with variables applied."""
    from reconciler.manifest import load_overlays, read_inputs

    all_files = list(files) + list(getattr(args, "overlays", []) or [])
    if not all_files:
        raise ReconcilerError("give a manifest: FILE, or -f BASE [-f OVERLAY ...]")
    if len(files) > 1:
        raise ReconcilerError("give exactly one manifest (use -f BASE -f OVERLAY to merge overlays)")
    inputs = read_inputs(getattr(args, "var", []) or [], getattr(args, "var_file", []) or [])
    return load_overlays(all_files, inputs=inputs)


def _plan_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--target",
        action="append",
        default=[],
        metavar="KIND/ID",
        help="limit to this resource and what it depends on (repeatable)",
    )
    p.add_argument(
        "--color",
        choices=["auto", "always", "never"],
        default="auto",
        help="ANSI colour: auto = only on a terminal, and not when NO_COLOR is set (non-empty) or TERM=dumb",
    )
    p.add_argument("--no-color", action="store_true", help="the same as --color=never")


def _max_chars_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--max-chars",
        type=_positive_int,
        default=60_000,
        metavar="N",
        help="--markdown stays under N characters by collapsing and summarising long change "
        "lists (default: 60000; GitHub refuses comments over 65536)",
    )


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _use_color(args: argparse.Namespace) -> bool:
    from reconciler.render import use_color

    mode = "never" if getattr(args, "no_color", False) else getattr(args, "color", "auto")
    return use_color(mode, os.environ, sys.stdout.isatty())


def _make_plan(args: argparse.Namespace, files: list[str]):  # -> tuple[Client, Plan]
    from reconciler.live import fingerprint, read_live
    from reconciler.plan import make_plan

    desired = _load_desired(args, files)
    client = _connect(args, desired.user_id, sandbox_from=_manifest_path(args, files))
    desired = _with_user(desired, client.user_id)
    live = read_live(
        client,
        desired.app.id,
        user_id=desired.user_id,
        want_models={m.id for m in desired.models},
        expect_concepts=len(desired.concepts),
    )
    plan = make_plan(
        desired, live, live_fingerprint=fingerprint(live) if live else "", targets=args.target, endpoint=client.endpoint
    )
    return client, plan


def _with_user(state, user_id):  # -> State
    import dataclasses

    if state.user_id or not user_id:
        return state
    return dataclasses.replace(state, user_id=user_id)


def cmd_plan(args: argparse.Namespace) -> int:
    from reconciler import render
    from reconciler.serialize import plan_to_file_dict

    _client, plan = _make_plan(args, args.files)
    data = render.plan_to_dict(plan)
    if args.json:
        print(json.dumps(data, indent=2, sort_keys=False))
    elif args.markdown:
        print(render.render_markdown(data, plan, max_chars=args.max_chars))
    else:
        print(render.render_text(data, color=_use_color(args)))
    if args.out:
        _write_plan_file(args.out, plan_to_file_dict(plan))
        print(f"Saved the plan to {args.out}; apply it with: reconciler apply {args.out}", file=sys.stderr)
    if args.detailed_exitcode and not plan.empty:
        return EXIT_CHANGES
    return EXIT_OK


def _write_plan_file(path: str, data: dict) -> None:
    try:  # key order kept: it is the order changes are listed in; NaN / infinities are not JSON
        text = json.dumps(data, indent=1, allow_nan=False)
    except ValueError:
        raise ReconcilerError(
            f"cannot write plan file {path}: the plan holds a non-finite number (NaN or infinity), which JSON cannot carry"
        ) from None
    try:
        _write_file(path, text, private=True)  # 0600: a plan describes the app in full
    except OSError as err:
        raise ReconcilerError(f"cannot write plan file {path}: {err.strerror or err}") from None


#: A saved plan larger than this is not read as one (the manifest reader then words the refusal).
MAX_PLAN_BYTES = 256 * 1024 * 1024


#: How far into a file to look for the saved-plan marker (it is the second key we write).
_PLAN_MARKER_WINDOW = 4096


def _read_plan_file(path: str) -> dict | None:
    """A saved plan's JSON, or None when `path` is not a saved plan (then it is a manifest).

    A file is a saved plan when it starts with ``{`` and names our kind (``"reconciler-plan"``)
    near its start, or parses as JSON with that kind; one that looks like a plan but cannot be
    read as one (truncated, too deep, not JSON) is an error, not a manifest to parse as YAML."""
    from reconciler.fileio import read_regular
    from reconciler.serialize import PLAN_FILE_KIND

    try:
        # a FIFO or device is refused (then as a manifest, with one line), not waited on
        raw = read_regular(path, MAX_PLAN_BYTES + 1)
    except OSError:
        return None  # the manifest loader reports unreadable files, with the same wording as always
    if not raw.lstrip().startswith(b"{") or len(raw) > MAX_PLAN_BYTES:
        return None
    looks_like_plan = f'"{PLAN_FILE_KIND}"'.encode() in raw[:_PLAN_MARKER_WINDOW]
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as err:
        if not looks_like_plan:
            return None
        why = "nested too deeply" if isinstance(err, RecursionError) else f"not valid JSON (truncated?): {err}".splitlines()[0]
        raise ReconcilerError(f"{path} is not a usable saved plan: {why}") from None
    if isinstance(data, dict) and data.get("kind") == PLAN_FILE_KIND:
        return data
    if looks_like_plan:
        raise ReconcilerError(f'{path} is not a usable saved plan: no "kind": "{PLAN_FILE_KIND}" at the top')
    return None


def _load_saved_plan(path: str, data: dict):  # -> Plan
    from reconciler.errors import PlanError
    from reconciler.serialize import plan_from_file_dict

    try:
        return plan_from_file_dict(data)
    except (PlanError, RecursionError) as err:
        why = str(err) if isinstance(err, PlanError) else "nested too deeply"
        raise PlanError(f"{path} is not a usable saved plan: {why}") from None


def _confirm(plan) -> bool:
    if not sys.stdin or not sys.stdin.isatty():
        raise ReconcilerError(
            "refusing to apply without confirmation: stdin is not a terminal; "
            "review the plan and pass --auto-approve, or apply a saved plan file"
        )
    print(
        f"\nApply these {len(plan.actions)} action(s) to app {plan.app_id}? Only 'yes' will be accepted: ",
        end="",
        file=sys.stderr,
        flush=True,
    )
    try:
        answer = input()
    except EOFError:
        answer = ""
    return answer.strip() == "yes"


def cmd_apply(args: argparse.Namespace) -> int:
    from reconciler import render
    from reconciler.apply import apply_plan

    saved = _read_plan_file(args.files[0]) if len(args.files) == 1 else None
    if saved is not None:
        client, plan = _reload_saved_plan(args, args.files[0], saved)
        approved = True  # a saved plan was reviewed when it was made
    else:
        client, plan = _make_plan(args, args.files)
        approved = args.auto_approve
    print(render.render_text(render.plan_to_dict(plan), color=_use_color(args)))
    if plan.empty:
        return EXIT_OK
    if not approved and not _confirm(plan):
        print("Apply cancelled; nothing was changed.", file=sys.stderr)
        return EXIT_ERROR
    result = apply_plan(
        client, plan, progress=lambda msg: print(msg, file=sys.stderr, flush=True), train_timeout_s=args.train_timeout
    )
    print(f"Apply complete: {len(result.done)} action(s), {result.writes} write call(s).")
    return EXIT_OK


def _train_timeout(text: str) -> float:
    """--train-timeout: a finite number of seconds above 0."""
    import math

    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds above 0")
    return value


def _reload_saved_plan(args: argparse.Namespace, path: str, saved: dict):  # -> tuple[Client, Plan]
    """Connect where a saved plan was made and re-check it; refuse (one line) when it was made
    against another endpoint or user, the live app changed since, or it no longer re-plans the
    same. Flags that would change what the plan does are refused: the file holds its own inputs."""
    from reconciler.errors import PlanError
    from reconciler.live import fingerprint, read_live
    from reconciler.plan import make_plan
    from reconciler.serialize import bound_fingerprint

    given = [
        flag
        for flag, value in (("-f", args.overlays), ("--var", args.var), ("--var-file", args.var_file), ("--target", args.target))
        if value
    ]
    if given:
        raise ReconcilerError(
            f"{', '.join(given)} cannot be combined with a saved plan: {path} holds the "
            "manifest, variables and targets it was made from; make a new plan instead"
        )
    stored = _load_saved_plan(path, saved)
    if args.user_id and args.user_id != stored.user_id:
        raise PlanError(f"the plan in {path} was made for user {stored.user_id or 'me'}, not {args.user_id}; make a new plan")
    prefix = "local sandbox at "
    own_sandbox = stored.endpoint[len(prefix) :] if stored.endpoint.startswith(prefix) else None
    client = _connect(args, stored.user_id, sandbox_db=own_sandbox)
    if client.endpoint != stored.endpoint:
        raise PlanError(
            f"the plan in {path} was made against {stored.endpoint}, but this apply would "
            f"write to {client.endpoint}; apply it where it was made, or make a new plan"
        )
    if client.user_id != stored.user_id:
        raise PlanError(
            f"the plan in {path} was made for user {stored.user_id or 'me'}, but this apply "
            f"would write as user {client.user_id or 'me'}; make a new plan"
        )
    live = read_live(
        client,
        stored.app_id,
        user_id=stored.user_id,
        want_models={m.id for m in stored.desired.models},
        expect_concepts=len(stored.desired.concepts),
    )
    now = fingerprint(live) if live else ""
    if bound_fingerprint(client.endpoint, stored.user_id, stored.app_id, now) != bound_fingerprint(
        stored.endpoint, stored.user_id, stored.app_id, stored.live_fingerprint
    ):
        raise PlanError(f"the live app {stored.app_id} changed since the plan in {path} was made; make a new plan")
    plan = make_plan(stored.desired, live, live_fingerprint=now, targets=stored.targets, endpoint=client.endpoint)
    if (plan.actions, plan.app_id, plan.user_id) != (stored.actions, stored.app_id, stored.user_id):
        raise PlanError(
            f"the plan in {path} no longer matches what applying it would do "
            "(was it made by another version of reconciler?); make a new plan"
        )
    return client, plan


def cmd_show(args: argparse.Namespace) -> int:
    """Print a saved plan without connecting to anything."""
    from reconciler import render

    data = _read_plan_file(args.plan)
    if data is None:
        raise ReconcilerError(f"{args.plan} is not a usable saved plan: not a plan file written by `reconciler plan --out`")
    plan = _load_saved_plan(args.plan, data)
    doc = render.plan_to_dict(plan)
    if args.json:
        print(json.dumps(doc, indent=2))
    elif args.markdown:
        print(render.render_markdown(doc, plan, max_chars=args.max_chars))
    else:  # the same bytes as `plan` printed when the plan was made
        print(render.render_text(doc, color=_use_color(args)))
    return EXIT_OK


def _connect_for(args: argparse.Namespace, manifest_user_id: str | None = None, manifest: str | None = None):  # -> Client
    return _connect(args, manifest_user_id, sandbox_from=manifest)


def _write_text(path: str | None, text: str) -> None:
    if not path or path == "-":
        sys.stdout.write(text)
        return
    try:
        _write_file(path, text)
    except OSError as err:
        raise ReconcilerError(f"cannot write {path}: {err.strerror or err}") from None


def _schema_ref(args: argparse.Namespace) -> str | None:
    """The modeline's schema: --schema, else the packaged schema, relative to the output file."""
    if args.schema:
        return None if args.schema == "none" else args.schema
    from importlib import resources

    packaged = os.path.abspath(str(resources.files("reconciler").joinpath("manifest.schema.json")))
    if args.output and args.output != "-":
        return os.path.relpath(packaged, os.path.dirname(os.path.abspath(args.output)))
    return packaged


def cmd_export(args: argparse.Namespace) -> int:
    from reconciler.export import export_app

    client = _connect_for(args)
    text, warnings = export_app(client, args.app, user_id=args.user_id or client.user_id, schema_ref=_schema_ref(args))
    _write_text(args.output, text)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    if args.output and args.output != "-":
        print(
            f"Exported app {args.app} to {args.output}; `reconciler plan {args.output}` should show no changes (or only adopt)",
            file=sys.stderr,
        )
    return EXIT_OK


def cmd_drift(args: argparse.Namespace) -> int:
    from reconciler import drift

    desired = _load_desired(args, args.files)
    client = _connect_for(args, desired.user_id, _manifest_path(args, args.files))
    desired = _with_user(desired, client.user_id)
    report = drift.check_drift(client, desired)
    data = drift.report_to_dict(report)
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print(drift.render_text(data), end="")
    return EXIT_CHANGES if report.drifted else EXIT_OK


def cmd_convert(args: argparse.Namespace) -> int:
    from reconciler.convert import convert_file

    owner = tuple(args.model_owner.split("/", 1)) if args.model_owner else ("clarifai", "main")
    if len(owner) != 2 or not all(owner):
        raise ReconcilerError(f"--model-owner {args.model_owner!r}: expected USER/APP, e.g. clarifai/main")
    text, warnings = convert_file(
        args.file,
        app_id=args.app,
        model_owner=owner,
        schema_ref=_schema_ref(args),
    )
    _write_text(args.output, text)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    return EXIT_OK


def cmd_sandbox_serve(args: argparse.Namespace) -> int:
    from reconciler.sandbox.server import serve

    return serve(
        host=args.host,
        port=args.port,
        db=args.db,
        latency_ms=args.latency_ms,
        rate_limit=args.rate_limit,
        predictions=args.predictions,
        quirks=args.quirks,
    )


def cmd_simulate(args: argparse.Namespace) -> int:
    from reconciler import predictions, simulate
    from reconciler.sweepchart import render_svg

    desired = _load_desired(args, args.files)
    recorded = predictions.load(args.predictions)
    specs = [simulate.parse_sweep(s) for s in args.sweep]
    report = simulate.simulate(desired, recorded, args.workflow).as_dict()
    sweeps = [simulate.sweep(desired, recorded, spec, args.workflow) for spec in specs]
    warning = simulate.unmatched_warning(desired, recorded, args.workflow)
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    if sweeps:
        _write_text(args.svg, render_svg(sweeps))
    if args.json:
        out = {
            "format_version": simulate.FORMAT_VERSION,
            "predictions": args.predictions,
            **report,
            "warnings": [warning] if warning else [],
        }
        if sweeps:
            out["sweeps"] = sweeps
            out["svg"] = args.svg
        print(json.dumps(out, indent=2))
    else:
        print(simulate.render_text(report, sweeps, source=args.predictions), end="")
        if sweeps:
            print(f"\nWrote the chart to {args.svg}")
    return EXIT_OK


def cmd_tune(args: argparse.Namespace) -> int:
    from reconciler import labels, predictions, thresholdwrite, tune

    opts = tune.Options(
        target=args.target_precision,
        confidence=args.confidence,
        thresholder=args.thresholder,
        workflow=args.workflow,
        min_support=args.min_support,
        holdout=args.holdout,
        seed=args.seed,
        step=args.step,
        absent=args.absent,
        follow_review=not args.keep_review_thresholds,
    )
    opts.check()  # before reading anything: a bad target is one line, whatever else is wrong
    if args.write and args.write_to:
        raise ReconcilerError("give --write or --write-to, not both")
    if args.write and (args.overlays or len(args.files) != 1):
        raise ReconcilerError("--write edits one manifest file in place; with -f overlays use --write-to OVERLAY")
    desired = _load_desired(args, args.files)
    recorded = predictions.load(args.predictions)
    truth = labels.load(args.labels)
    report = tune.tune(desired, recorded, truth, opts, curves=bool(args.svg))
    if args.svg:
        from reconciler.tunechart import render_svg

        _write_text(args.svg, render_svg(report))
        report["svg"] = args.svg
    written: list[str] = []
    target = args.files[0] if args.write else args.write_to
    if report["changes"] and args.write:
        written = thresholdwrite.write_in_place(target, report["changes"])
    elif args.write_to:
        header = (
            f"Thresholds certified by `reconciler tune` (precision >= {opts.target:g} at "
            f"{opts.confidence * 100:g}% confidence).\nUse: reconciler plan -f BASE.yaml -f {args.write_to}"
        )
        _write_text(args.write_to, thresholdwrite.overlay_text(report["changes"], header))
        written = [f"  {ch['model']}.thresholds.{ch['concept']}: {ch['from']:g} -> {ch['to']:g}" for ch in report["changes"]]
    if args.json:
        for row in report["concepts"].values():
            row.pop("curve", None)
        report["written"] = target if (args.write or args.write_to) and (written or args.write_to) else None
        print(json.dumps(report, indent=2))
        return EXIT_OK
    print(tune.render_text(report), end="")
    if args.svg:
        print(f"Wrote the chart to {args.svg}")
    if args.write or args.write_to:
        if not report["changes"]:
            print("Nothing to write: no threshold changes." if args.write else f"Wrote {args.write_to} (no changes).")
            return EXIT_OK
        models = sorted({ch["model"] for ch in report["changes"]})
        print(f"\nWrote {len(report['changes'])} threshold change(s) to {target}:")
        print("\n".join(written))
        plan_cmd = (
            f"reconciler plan {args.files[0]}"
            if args.write
            else "reconciler plan " + " ".join(f"-f {f}" for f in (args.files + args.overlays + [args.write_to]))
        )
        print(
            f"Next: `{plan_cmd}` shows a new version of {', '.join(models)} and every workflow using "
            f"{'it' if len(models) == 1 else 'them'} repointed; `reconciler apply` makes it so."
        )
    return EXIT_OK


def cmd_record(args: argparse.Namespace) -> int:
    from reconciler.record import RecordOptions, record

    desired = _load_desired(args, args.files)
    client = _connect_for(args, desired.user_id)
    desired = _with_user(desired, client.user_id)
    opts = RecordOptions(
        predictions=args.predictions,
        labels=args.labels,
        workflow=args.workflow,
        limit=args.limit,
        input_ids=tuple(args.input_ids or ()),
        batch_size=args.batch_size,
    )
    summary = record(client, desired, opts, progress=lambda msg: print(msg, file=sys.stderr, flush=True))
    print(summary)
    return EXIT_OK


def cmd_graph(args: argparse.Namespace) -> int:
    from reconciler import graph

    desired = _load_desired(args, args.files)
    print(graph.render(desired, args.workflow, args.format), end="")
    return EXIT_OK


# --- parser ------------------------------------------------------------------------------------


def _verb(sub: argparse._SubParsersAction[Any], name: str, summary: str, example: str) -> argparse.ArgumentParser:
    """A verb's parser: its one-line summary (in `reconciler --help` too) and an example."""
    return sub.add_parser(
        name,
        help=summary,
        description=summary[:1].upper() + summary[1:] + ".",
        epilog=f"example:\n  {example}",
        formatter_class=_HelpFormatter,
    )


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="reconciler",
        description="Terraform-style plan/apply for Clarifai apps.",
        formatter_class=_HelpFormatter,
        epilog="example:\n  reconciler plan manifest.yaml --out plan.json && reconciler apply plan.json\n\n"
        "Each verb has its own help: reconciler VERB --help",
    )
    p.add_argument("--version", action="version", version=f"reconciler {__version__}")
    sub = p.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)

    v = _verb(
        sub,
        "validate",
        "check manifests without touching any API",
        "reconciler validate manifest.yaml\n  reconciler validate -f base.yaml -f prod.yaml --var cut=0.9",
    )
    v.add_argument("files", nargs="*", metavar="FILE")
    v.add_argument("--json", action="store_true", help="print problems as JSON")
    _manifest_args(v)
    v.set_defaults(func=cmd_validate)

    pl = _verb(
        sub,
        "plan",
        "show what apply would change in the live app",
        "reconciler plan manifest.yaml --out plan.json\n  reconciler plan -f base.yaml -f prod.yaml --markdown",
    )
    pl.add_argument("files", nargs="*", metavar="FILE")
    _manifest_args(pl)
    fmt = pl.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="machine-readable plan (format_version 1)")
    fmt.add_argument("--markdown", action="store_true", help="Markdown for pull-request comments")
    pl.add_argument("--out", metavar="PLAN", help="save the plan; `reconciler apply PLAN` applies exactly it")
    pl.add_argument(
        "--detailed-exitcode", action="store_true", help="exit 0 when there are no changes, 2 when there are, 1 on error"
    )
    _max_chars_arg(pl)
    _plan_args(pl)
    _connection_args(pl)
    pl.set_defaults(func=cmd_plan)

    sh = _verb(
        sub,
        "show",
        "print a saved plan (text, --json or --markdown) without connecting",
        "reconciler show plan.json --markdown > comment.md",
    )
    sh.add_argument("plan", metavar="PLAN", help="a file written by `reconciler plan --out`")
    shfmt = sh.add_mutually_exclusive_group()
    shfmt.add_argument("--json", action="store_true", help="the plan's machine format (as `plan --json`)")
    shfmt.add_argument("--markdown", action="store_true", help="Markdown for pull-request comments")
    _max_chars_arg(sh)
    sh.add_argument(
        "--color",
        choices=["auto", "always", "never"],
        default="auto",
        help="ANSI colour: auto = only on a terminal, and not when NO_COLOR is set (non-empty) or TERM=dumb",
    )
    sh.add_argument("--no-color", action="store_true", help="the same as --color=never")
    sh.set_defaults(func=cmd_show)

    ap = _verb(
        sub,
        "apply",
        "make the live app match the manifest (or a saved plan)",
        "reconciler apply plan.json\n  reconciler apply manifest.yaml --auto-approve",
    )
    ap.add_argument("files", nargs="*", metavar="FILE|PLAN")
    _manifest_args(ap)
    ap.add_argument("--auto-approve", action="store_true", help="do not ask for confirmation")
    ap.add_argument(
        "--train-timeout",
        type=_train_timeout,
        default=600.0,
        metavar="SECONDS",
        help="how long to wait for a trainable model's new version to train before stopping; "
        "the wait prints a line at most every 10 s",
    )
    _plan_args(ap)
    _connection_args(ap)
    ap.set_defaults(func=cmd_apply)

    ex = _verb(sub, "export", "write a manifest capturing a live app", "reconciler export --app my-app -o manifest.yaml")
    ex.add_argument("--app", required=True, metavar="ID", help="the app to export")
    ex.add_argument("-o", "--output", metavar="FILE", help="write here (default: stdout)")
    ex.add_argument(
        "--schema",
        metavar="PATH|URL",
        help="schema for the modeline (default: the packaged schema, relative to FILE; 'none' for no modeline)",
    )
    _connection_args(ex)
    ex.set_defaults(func=cmd_export)

    dr = _verb(
        sub,
        "drift",
        "report what differs in the live app from the manifest (read-only); exit 0 clean, 2 drift, 1 error",
        "reconciler drift manifest.yaml --json",
    )
    dr.add_argument("files", nargs="*", metavar="FILE")
    dr.add_argument("--json", action="store_true", help='the plan\'s JSON format plus "drift": bool')
    _manifest_args(dr)
    _connection_args(dr)
    dr.set_defaults(func=cmd_drift)

    cv = _verb(
        sub,
        "convert",
        "turn a Clarifai SDK workflow YAML into a manifest",
        "reconciler convert workflow.yml --app my-app -o manifest.yaml",
    )
    cv.add_argument("file", metavar="SDK_WORKFLOW.yml")
    cv.add_argument("-o", "--output", metavar="FILE", help="write here (default: stdout)")
    cv.add_argument("--app", metavar="ID", help="the manifest's app id (default: the workflow id)")
    cv.add_argument(
        "--model-owner",
        metavar="USER/APP",
        help="owner of pinned models that name no user_id/app_id (default: clarifai/main, as in the SDK's own examples)",
    )
    cv.add_argument("--schema", metavar="PATH|URL", help="schema for the modeline ('none' for none)")
    cv.set_defaults(func=cmd_convert)

    si = _verb(
        sub,
        "simulate",
        "forecast, offline, which inputs a workflow would annotate SUCCESS / PENDING from recorded predictions",
        "reconciler simulate manifest.yaml --predictions preds.jsonl --sweep all=0.5:0.95:0.05",
    )
    si.add_argument("files", nargs="*", metavar="FILE")
    si.add_argument("--predictions", required=True, metavar="JSONL", help="recorded model outputs (README)")
    si.add_argument("--workflow", metavar="ID", help="the workflow to run (default: the app's default workflow)")
    si.add_argument(
        "--sweep",
        action="append",
        default=[],
        metavar="CONCEPT=START:STOP:STEP",
        help="vary a concept's threshold (or all=START:STOP:STEP) in every thresholder of the "
        "workflow; prints a table and writes an SVG chart (repeatable)",
    )
    si.add_argument("--svg", default="sweep.svg", metavar="FILE", help="where --sweep writes its chart (default: sweep.svg)")
    si.add_argument("--json", action="store_true", help="machine-readable report")
    _manifest_args(si)
    si.set_defaults(func=cmd_simulate)

    rc = _verb(
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
    rc.add_argument("--limit", type=int, default=None, metavar="N", help="record at most N inputs")
    rc.add_argument("--input-ids", nargs="+", metavar="ID", help="record only these inputs")
    rc.add_argument(
        "--batch-size", type=int, default=128, metavar="N", help="inputs per PostModelOutputs call (the API's limit is 128)"
    )
    _manifest_args(rc)
    _connection_args(rc)
    rc.set_defaults(func=cmd_record)

    tu = _verb(
        sub,
        "tune",
        "choose per-concept thresholds that certify a precision target from recorded predictions and labels",
        "reconciler tune manifest.yaml --predictions predictions.jsonl --labels labels.jsonl --target-precision 0.98 --write",
    )
    tu.add_argument("files", nargs="*", metavar="FILE")
    tu.add_argument("--predictions", required=True, metavar="JSONL", help="recorded model outputs")
    tu.add_argument(
        "--labels",
        required=True,
        metavar="JSONL",
        help='labels: {"input": ID, "concepts": {"walker": true, "runner": false}} per line',
    )
    tu.add_argument(
        "--target-precision",
        type=float,
        required=True,
        metavar="P",
        help="precision the SUCCESS annotations must reach, in (0, 1)",
    )
    tu.add_argument(
        "--confidence",
        type=float,
        default=0.95,
        metavar="C",
        help="probability that the certified precision holds (default 0.95)",
    )
    tu.add_argument(
        "--thresholder", metavar="ID", help="the accepting thresholder (node or model id) when the workflow has several"
    )
    tu.add_argument("--workflow", metavar="ID", help="the workflow (default: the app's default workflow)")
    tu.add_argument(
        "--min-support",
        type=int,
        default=0,
        metavar="N",
        help="test no threshold accepting fewer labelled inputs than N (default: the fewest that could certify the target)",
    )
    tu.add_argument(
        "--holdout",
        type=float,
        default=0.0,
        metavar="SHARE",
        help="keep this share of labelled inputs out of the choice and report the precision reached on it",
    )
    tu.add_argument("--seed", type=int, default=0, help="seed of the --holdout split")
    tu.add_argument("--step", type=float, default=0.01, help="spacing of the candidate thresholds (default 0.01)")
    tu.add_argument(
        "--absent",
        choices=["negative", "unknown"],
        default="negative",
        help="how a concept missing from an input's labels is read (default: negative)",
    )
    tu.add_argument(
        "--keep-review-thresholds",
        action="store_true",
        help="do not move the paired LESS_THAN (review) thresholder with the accepting one",
    )
    tu.add_argument("--write", action="store_true", help="write the changed thresholds into FILE in place")
    tu.add_argument("--write-to", metavar="OVERLAY", help="write the changed thresholds as an overlay file")
    tu.add_argument("--svg", metavar="FILE", help="draw precision against automation per concept")
    tu.add_argument("--json", action="store_true", help="machine-readable report")
    _manifest_args(tu)
    tu.set_defaults(func=cmd_tune)

    gr = _verb(
        sub,
        "graph",
        "draw a manifest's workflow DAG (Mermaid or Graphviz DOT)",
        "reconciler graph manifest.yaml --format dot | dot -Tsvg > dag.svg",
    )
    gr.add_argument("files", nargs="*", metavar="FILE")
    gr.add_argument("--workflow", metavar="ID", help="the workflow to draw (default: the app's default workflow)")
    gr.add_argument("--format", choices=["mermaid", "dot"], default="mermaid", help="diagram language")
    _manifest_args(gr)
    gr.set_defaults(func=cmd_graph)

    sb = _verb(sub, "sandbox", "the local Clarifai-compatible API", "reconciler sandbox serve --port 8080")
    sbsub = sb.add_subparsers(dest="sandbox_verb", metavar="VERB", parser_class=_Parser)
    serve = _verb(
        sbsub,
        "serve",
        "serve the sandbox over HTTP on loopback",
        "reconciler sandbox serve --port 8080 --db .reconciler/sandbox.sqlite",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (loopback unless you mean otherwise)")
    serve.add_argument("--port", type=_port, default=8080, help="TCP port; 0 picks a free port")
    serve.add_argument("--db", default=".reconciler/sandbox.sqlite", help="SQLite file (created if missing)")
    serve.add_argument("--latency-ms", type=_latency, default=0.0, help="added to every request")
    serve.add_argument("--rate-limit", type=_rate, default=0.0, help="requests/second; 0 = unlimited")
    serve.add_argument("--predictions", default=None, metavar="JSONL", help="recorded model predictions for the workflow runner")
    serve.add_argument(
        "--quirks",
        nargs="?",
        const="pessimistic",
        default=None,
        metavar="NAMES",
        help="pessimistic mode: play the other plausible reading of unsettled API "
        "behaviour; bare = every quirk, or a comma list of names (README)",
    )
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
        if getattr(args, "verb", None):  # e.g. `reconciler sandbox` without `serve`: one line
            print(f"error: reconciler {args.verb}: choose a verb (see: reconciler {args.verb} --help)", file=sys.stderr)
            return EXIT_ERROR
        parser.print_help(sys.stderr)
        return EXIT_ERROR
    if isinstance(sys.stdout, _Masked):  # main() running in another thread already masks
        return _run(func, args)
    out, err_stream = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _Masked(out), _Masked(err_stream)
    try:
        return _run(func, args)
    finally:
        sys.stdout, sys.stderr = out, err_stream


def _run(func: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """`func(args)` with every error mapped to one line and an exit code."""
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
        print(f"error: internal error ({type(err).__name__}): {err}; set RECONCILER_TRACEBACK=1 to see where", file=sys.stderr)
        return EXIT_ERROR
