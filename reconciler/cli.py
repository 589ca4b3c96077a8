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
    g.add_argument("--api-base", default=None, help="API base URL (default: CLARIFAI_API_BASE, "
                   "else https://api.clarifai.com; with no PAT and no base: the embedded sandbox)")
    g.add_argument("--pat-file", default=None, help="read the PAT from this file (default: CLARIFAI_PAT)")
    g.add_argument("--user", dest="user_id", default=None, help="Clarifai user id (default: the "
                   "manifest's app.user_id, else CLARIFAI_USER_ID)")
    g.add_argument("--rate-limit", type=float, default=15.0, help="client-side requests/second (0 = off)")
    g.add_argument("--debug", action="store_true", help="trace every HTTP request on stderr (PAT redacted)")
    g.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                   help="per-request timeout (connect, read, write); timed-out requests are retried")


def _manifest_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("manifest inputs")
    g.add_argument("-f", "--file", dest="overlays", action="append", default=[], metavar="FILE",
                   help="a manifest, then overlays merged onto it by resource id (repeatable, in order)")
    g.add_argument("--var", action="append", default=[], metavar="NAME=VALUE",
                   help="value of a variable declared under `variables:` (repeatable; wins over --var-file)")
    g.add_argument("--var-file", action="append", default=[], metavar="FILE",
                   help="YAML mapping of variable values (repeatable; later files win)")


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
    p.add_argument("--target", action="append", default=[], metavar="KIND/ID",
                   help="limit to this resource and what it depends on (repeatable)")
    p.add_argument("--no-color", action="store_true", help="no ANSI colour (also: NO_COLOR)")


def _use_color(args: argparse.Namespace) -> bool:
    return (not getattr(args, "no_color", False) and "NO_COLOR" not in os.environ
            and sys.stdout.isatty())


def _make_plan(args: argparse.Namespace, files: list[str]):  # -> tuple[Client, Plan]
    from reconciler.client import connect
    from reconciler.live import fingerprint, read_live
    from reconciler.plan import make_plan

    desired = _load_desired(args, files)
    client = connect(api_base=args.api_base, pat_file=args.pat_file, user_id=args.user_id,
                     manifest_user_id=desired.user_id, rate_limit=args.rate_limit, debug=args.debug,
                     timeout=args.timeout)
    desired = _with_user(desired, client.user_id)
    live = read_live(client, desired.app.id, user_id=desired.user_id,
                     want_models={m.id for m in desired.models})
    plan = make_plan(desired, live, live_fingerprint=fingerprint(live) if live else "",
                     targets=args.target)
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
        print(render.render_markdown(data, plan))
    else:
        print(render.render_text(data, color=_use_color(args)))
    if args.out:
        _write_plan_file(args.out, plan_to_file_dict(plan))
        print(f"Saved the plan to {args.out}; apply it with: reconciler apply {args.out}", file=sys.stderr)
    if args.detailed_exitcode and not plan.empty:
        return EXIT_CHANGES
    return EXIT_OK


def _write_plan_file(path: str, data: dict) -> None:
    tmp = f"{path}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1)  # key order kept: it is the order changes are listed in
        os.replace(tmp, path)
    except OSError as err:
        raise ReconcilerError(f"cannot write plan file {path}: {err.strerror}") from None


def _read_plan_file(path: str) -> dict | None:
    """A saved plan is JSON with our format marker; anything else is taken to be a manifest."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(1)
            if head != b"{":
                return None
            data = json.loads(head + fh.read())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("kind") == "reconciler-plan" else None


def _confirm(plan) -> bool:
    if not sys.stdin or not sys.stdin.isatty():
        raise ReconcilerError("refusing to apply without confirmation: stdin is not a terminal; "
                              "review the plan and pass --auto-approve, or apply a saved plan file")
    print(f"\nApply these {len(plan.actions)} action(s) to app {plan.app_id}? "
          "Only 'yes' will be accepted: ", end="", file=sys.stderr, flush=True)
    try:
        answer = input()
    except EOFError:
        answer = ""
    return answer.strip() == "yes"


def cmd_apply(args: argparse.Namespace) -> int:
    from reconciler import render
    from reconciler.apply import apply_plan
    from reconciler.errors import PlanError

    saved = _read_plan_file(args.files[0]) if len(args.files) == 1 else None
    if saved is not None:
        from reconciler.client import connect
        from reconciler.live import fingerprint, read_live
        from reconciler.plan import make_plan
        from reconciler.serialize import plan_from_file_dict

        try:
            stored = plan_from_file_dict(saved)
        except PlanError as err:
            raise PlanError(f"{args.files[0]} is not a usable saved plan: {err}") from None
        client = connect(api_base=args.api_base, pat_file=args.pat_file, user_id=args.user_id or stored.user_id,
                         manifest_user_id=stored.user_id, rate_limit=args.rate_limit, debug=args.debug,
                         timeout=args.timeout)
        live = read_live(client, stored.app_id, user_id=stored.user_id,
                         want_models={m.id for m in stored.desired.models})
        now = fingerprint(live) if live else ""
        if now != stored.live_fingerprint:
            raise PlanError(f"the live app {stored.app_id} changed since the plan in {args.files[0]} was made; "
                            "make a new plan")
        if args.target:
            raise ReconcilerError("--target cannot be combined with a saved plan: the plan file "
                                  "already records its targets")
        plan = make_plan(stored.desired, live, live_fingerprint=now, targets=stored.targets)
        if plan.actions != stored.actions:
            raise PlanError(f"the plan in {args.files[0]} no longer matches what applying it would do "
                            "(was it made by another version of reconciler?); make a new plan")
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
    result = apply_plan(client, plan, progress=lambda msg: print(msg, file=sys.stderr, flush=True))
    print(f"Apply complete: {len(result.done)} action(s), {result.writes} write call(s).")
    return EXIT_OK


def _connect_for(args: argparse.Namespace, manifest_user_id: str | None = None):  # -> Client
    from reconciler.client import connect

    return connect(api_base=args.api_base, pat_file=args.pat_file, user_id=args.user_id,
                   manifest_user_id=manifest_user_id, rate_limit=args.rate_limit, debug=args.debug,
                   timeout=args.timeout)


def _write_text(path: str | None, text: str) -> None:
    if not path or path == "-":
        sys.stdout.write(text)
        return
    tmp = f"{path}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except OSError as err:
        raise ReconcilerError(f"cannot write {path}: {err.strerror}") from None


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
    text, warnings = export_app(client, args.app, user_id=args.user_id or client.user_id,
                                schema_ref=_schema_ref(args))
    _write_text(args.output, text)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    if args.output and args.output != "-":
        print(f"Exported app {args.app} to {args.output}; `reconciler plan {args.output}` should show "
              "no changes (or only adopt)", file=sys.stderr)
    return EXIT_OK


def cmd_drift(args: argparse.Namespace) -> int:
    from reconciler import drift

    desired = _load_desired(args, args.files)
    client = _connect_for(args, desired.user_id)
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
    text, warnings = convert_file(args.file, app_id=args.app, model_owner=owner,  # type: ignore[arg-type]
                                  schema_ref=_schema_ref(args))
    _write_text(args.output, text)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    return EXIT_OK


def cmd_sandbox_serve(args: argparse.Namespace) -> int:
    from reconciler.sandbox.server import serve

    return serve(host=args.host, port=args.port, db=args.db, latency_ms=args.latency_ms,
                 rate_limit=args.rate_limit, predictions=args.predictions)


def cmd_simulate(args: argparse.Namespace) -> int:
    from reconciler import predictions, simulate
    from reconciler.sweepchart import render_svg

    desired = _load_desired(args, args.files)
    recorded = predictions.load(args.predictions)
    specs = [simulate.parse_sweep(s) for s in args.sweep]
    report = simulate.simulate(desired, recorded, args.workflow).as_dict()
    sweeps = [simulate.sweep(desired, recorded, spec, args.workflow) for spec in specs]
    if sweeps:
        _write_text(args.svg, render_svg(sweeps))
    if args.json:
        out = {"format_version": simulate.FORMAT_VERSION, "predictions": args.predictions, **report}
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

    opts = tune.Options(target=args.target_precision, confidence=args.confidence, thresholder=args.thresholder,
                        workflow=args.workflow, min_support=args.min_support, holdout=args.holdout, seed=args.seed,
                        step=args.step, absent=args.absent, follow_review=not args.keep_review_thresholds)
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
        header = (f"Thresholds certified by `reconciler tune` (precision >= {opts.target:g} at "
                  f"{opts.confidence * 100:g}% confidence).\nUse: reconciler plan -f BASE.yaml -f {args.write_to}")
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
        plan_cmd = (f"reconciler plan {args.files[0]}" if args.write else
                    "reconciler plan " + " ".join(f"-f {f}" for f in (args.files + args.overlays + [args.write_to])))
        print(f"Next: `{plan_cmd}` shows a new version of {', '.join(models)} and every workflow using "
              f"{'it' if len(models) == 1 else 'them'} repointed; `reconciler apply` makes it so.")
    return EXIT_OK


def cmd_record(args: argparse.Namespace) -> int:
    from reconciler.record import RecordOptions, record

    desired = _load_desired(args, args.files)
    client = _connect_for(args, desired.user_id)
    desired = _with_user(desired, client.user_id)
    opts = RecordOptions(predictions=args.predictions, labels=args.labels, workflow=args.workflow,
                         limit=args.limit, input_ids=tuple(args.input_ids or ()), batch_size=args.batch_size)
    summary = record(client, desired, opts, progress=lambda msg: print(msg, file=sys.stderr, flush=True))
    print(summary)
    return EXIT_OK


def cmd_graph(args: argparse.Namespace) -> int:
    from reconciler import graph

    desired = _load_desired(args, args.files)
    print(graph.render(desired, args.workflow, args.format), end="")
    return EXIT_OK


# --- parser ------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="reconciler", description="Terraform-style plan/apply for Clarifai apps.")
    p.add_argument("--version", action="version", version=f"reconciler {__version__}")
    sub = p.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)

    v = sub.add_parser("validate", help="check manifests without touching any API")
    v.add_argument("files", nargs="*", metavar="FILE")
    v.add_argument("--json", action="store_true", help="print problems as JSON")
    _manifest_args(v)
    v.set_defaults(func=cmd_validate)

    pl = sub.add_parser("plan", help="show what apply would change in the live app")
    pl.add_argument("files", nargs="*", metavar="FILE")
    _manifest_args(pl)
    fmt = pl.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="machine-readable plan (format_version 1)")
    fmt.add_argument("--markdown", action="store_true", help="Markdown for pull-request comments")
    pl.add_argument("--out", metavar="PLAN", help="save the plan; `reconciler apply PLAN` applies exactly it")
    pl.add_argument("--detailed-exitcode", action="store_true",
                    help="exit 0 when there are no changes, 2 when there are, 1 on error")
    _plan_args(pl)
    _connection_args(pl)
    pl.set_defaults(func=cmd_plan)

    ap = sub.add_parser("apply", help="make the live app match the manifest (or a saved plan)")
    ap.add_argument("files", nargs="*", metavar="FILE|PLAN")
    _manifest_args(ap)
    ap.add_argument("--auto-approve", action="store_true", help="do not ask for confirmation")
    _plan_args(ap)
    _connection_args(ap)
    ap.set_defaults(func=cmd_apply)

    ex = sub.add_parser("export", help="write a manifest capturing a live app")
    ex.add_argument("--app", required=True, metavar="ID", help="the app to export")
    ex.add_argument("-o", "--output", metavar="FILE", help="write here (default: stdout)")
    ex.add_argument("--schema", metavar="PATH|URL", help="schema for the modeline (default: the packaged "
                    "schema, relative to FILE; 'none' for no modeline)")
    _connection_args(ex)
    ex.set_defaults(func=cmd_export)

    dr = sub.add_parser("drift", help="report what differs in the live app from the manifest (read-only); "
                        "exit 0 clean, 2 drift, 1 error")
    dr.add_argument("files", nargs="*", metavar="FILE")
    dr.add_argument("--json", action="store_true", help="the plan's JSON format plus \"drift\": bool")
    _manifest_args(dr)
    _connection_args(dr)
    dr.set_defaults(func=cmd_drift)

    cv = sub.add_parser("convert", help="turn a Clarifai SDK workflow YAML into a manifest")
    cv.add_argument("file", metavar="SDK_WORKFLOW.yml")
    cv.add_argument("-o", "--output", metavar="FILE", help="write here (default: stdout)")
    cv.add_argument("--app", metavar="ID", help="the manifest's app id (default: the workflow id)")
    cv.add_argument("--model-owner", metavar="USER/APP", help="owner of pinned models that name no "
                    "user_id/app_id (default: clarifai/main, as in the SDK's own examples)")
    cv.add_argument("--schema", metavar="PATH|URL", help="schema for the modeline ('none' for none)")
    cv.set_defaults(func=cmd_convert)

    si = sub.add_parser("simulate", help="forecast, offline, which inputs a workflow would annotate "
                        "SUCCESS / PENDING from recorded predictions")
    si.add_argument("files", nargs="*", metavar="FILE")
    si.add_argument("--predictions", required=True, metavar="JSONL", help="recorded model outputs (README)")
    si.add_argument("--workflow", metavar="ID", help="the workflow to run (default: the app's default workflow)")
    si.add_argument("--sweep", action="append", default=[], metavar="CONCEPT=START:STOP:STEP",
                    help="vary a concept's threshold (or all=START:STOP:STEP) in every thresholder of the "
                    "workflow; prints a table and writes an SVG chart (repeatable)")
    si.add_argument("--svg", default="sweep.svg", metavar="FILE", help="where --sweep writes its chart "
                    "(default: sweep.svg)")
    si.add_argument("--json", action="store_true", help="machine-readable report")
    _manifest_args(si)
    si.set_defaults(func=cmd_simulate)

    rc = sub.add_parser("record", help="record a live app's model predictions (and reviewed labels) for "
                        "simulate and tune")
    rc.add_argument("files", nargs="*", metavar="FILE")
    rc.add_argument("--predictions", required=True, metavar="OUT.jsonl", help="append recorded predictions here "
                    "(re-running skips inputs already in it)")
    rc.add_argument("--labels", metavar="OUT.jsonl", help="write the labels people made or reviewed here")
    rc.add_argument("--workflow", metavar="ID", help="the workflow whose models to run (default: the app's default)")
    rc.add_argument("--limit", type=int, default=None, metavar="N", help="record at most N inputs")
    rc.add_argument("--input-ids", nargs="+", metavar="ID", help="record only these inputs")
    rc.add_argument("--batch-size", type=int, default=128, metavar="N",
                    help="inputs per PostModelOutputs call (the API's limit is 128)")
    _manifest_args(rc)
    _connection_args(rc)
    rc.set_defaults(func=cmd_record)

    tu = sub.add_parser("tune", help="choose per-concept thresholds that certify a precision target from "
                        "recorded predictions and labels")
    tu.add_argument("files", nargs="*", metavar="FILE")
    tu.add_argument("--predictions", required=True, metavar="JSONL", help="recorded model outputs")
    tu.add_argument("--labels", required=True, metavar="JSONL", help='labels: {"input": ID, "concepts": '
                    '{"walker": true, "runner": false}} per line')
    tu.add_argument("--target-precision", type=float, required=True, metavar="P",
                    help="precision the SUCCESS annotations must reach, in (0, 1)")
    tu.add_argument("--confidence", type=float, default=0.95, metavar="C",
                    help="probability that the certified precision holds (default 0.95)")
    tu.add_argument("--thresholder", metavar="ID", help="the accepting thresholder (node or model id) when the "
                    "workflow has several")
    tu.add_argument("--workflow", metavar="ID", help="the workflow (default: the app's default workflow)")
    tu.add_argument("--min-support", type=int, default=0, metavar="N", help="test no threshold accepting fewer "
                    "labelled inputs than N (default: the fewest that could certify the target)")
    tu.add_argument("--holdout", type=float, default=0.0, metavar="SHARE", help="keep this share of labelled "
                    "inputs out of the choice and report the precision reached on it")
    tu.add_argument("--seed", type=int, default=0, help="seed of the --holdout split")
    tu.add_argument("--step", type=float, default=0.01, help="spacing of the candidate thresholds (default 0.01)")
    tu.add_argument("--absent", choices=["negative", "unknown"], default="negative",
                    help="how a concept missing from an input's labels is read (default: negative)")
    tu.add_argument("--keep-review-thresholds", action="store_true", help="do not move the paired LESS_THAN "
                    "(review) thresholder with the accepting one")
    tu.add_argument("--write", action="store_true", help="write the changed thresholds into FILE in place")
    tu.add_argument("--write-to", metavar="OVERLAY", help="write the changed thresholds as an overlay file")
    tu.add_argument("--svg", metavar="FILE", help="draw precision against automation per concept")
    tu.add_argument("--json", action="store_true", help="machine-readable report")
    _manifest_args(tu)
    tu.set_defaults(func=cmd_tune)

    gr = sub.add_parser("graph", help="draw a manifest's workflow DAG (Mermaid or Graphviz DOT)")
    gr.add_argument("files", nargs="*", metavar="FILE")
    gr.add_argument("--workflow", metavar="ID", help="the workflow to draw (default: the app's default workflow)")
    gr.add_argument("--format", choices=["mermaid", "dot"], default="mermaid")
    _manifest_args(gr)
    gr.set_defaults(func=cmd_graph)

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
        if getattr(args, "verb", None):  # e.g. `reconciler sandbox` without `serve`: one line
            print(f"error: reconciler {args.verb}: choose a verb (see: reconciler {args.verb} --help)",
                  file=sys.stderr)
            return EXIT_ERROR
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
