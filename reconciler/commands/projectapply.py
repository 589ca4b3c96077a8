"""Project mode of `apply`: every selected app of reconciler.yaml (`run_apply`), or a saved plan set
(`apply DIR`, `run_apply_set`), applied in parallel lanes (docs/gitops.md "Projects").

Contract:
- `run_apply(args)`: plans every app (as `plan` does), shows the plans (sections, or a `plan`
  event per app with `--json`), asks once for all of them (only "yes"; refused without a
  terminal unless `--auto-approve`), then applies each app's plan. Progress lines go to stderr
  prefixed ``[NAME]``. Two apps on one live app run one after the other, and the second is
  planned again first: when that plan differs from the one shown, it is refused (stale).
- `run_apply_set(args, folder)`: applies the plans of `plan --out DIR` exactly, each re-checked
  by `pipeline.apply_saved_plan` (endpoint, user, live fingerprint); the set's files are checked
  against its index, the set against `--max-plan-age`, and, inside the project, each app's inputs
  against the working files (`PlanSet.stale_inputs`). `--app` applies a subset.
- Results: `applied` (0), `no changes` (0), `deferred` (3: some actions wait for training),
  `failed` (1); the exit code combines them. With `--json` stdout holds JSON lines only: each
  app's events carry ``"app"`` and end with its own `summary`; the last line is the project's
  `summary` (no ``"app"``; ``"apps"``: each app's name, result and exit code).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.commands.machine import apply_summary
from reconciler.commands.project import Connections, load_runs, plan_runs, report_failures, sections
from reconciler.core.errors import ApplyDeferred, ReconcilerError, StalePlan
from reconciler.core.exitcodes import EXIT_DEFERRED, EXIT_ERROR, EXIT_OK, combine_exit_codes
from reconciler.core.printable import printable

if TYPE_CHECKING:
    from reconciler.apply.events import Emit
    from reconciler.project.run import AppRun


def _emitter(args: argparse.Namespace, name: str | None) -> Emit | None:
    from reconciler.apply.events import JsonLines

    return JsonLines(sys.stdout, app=name) if args.json else None


def _retry_emitters(args: argparse.Namespace) -> Callable[[str], Callable[[dict[str, Any]], None]] | None:
    """With `--json`: each app's retries as `retry` events carrying its name."""
    if not args.json:
        return None

    def for_app(name: str) -> Callable[[dict[str, Any]], None]:
        emit = _emitter(args, name)
        assert emit is not None
        return lambda fields: emit("retry", **fields)

    return for_app


def run_apply(args: argparse.Namespace) -> int:
    project, runs, conns = load_runs(args)
    conns.retry_events = _retry_emitters(args)
    started = time.monotonic()
    if not runs:
        return _finish(args, runs, started, nothing=f"no app of {project.rel(project.path)} selected")
    try:
        plan_runs(args, runs, conns, detailed=False)
        _show_plans(args, runs)
        todo = [r for r in runs if not r.failed and r.plan is not None and not r.plan.empty]
        if todo and not args.auto_approve and not _confirm(todo):
            print("Apply cancelled; nothing was changed.", file=sys.stderr)
            for run in todo:
                run.result, run.exit_code = "cancelled", EXIT_ERROR
            return _finish(args, runs, started)
        _apply_lanes(args, todo, conns.lane, recheck=_replan)
    finally:
        conns.close()
    return _finish(args, runs, started)


def run_apply_set(args: argparse.Namespace, folder: str) -> int:
    from reconciler.commands.project import select_from_set
    from reconciler.planning.pipeline import apply_saved_plan
    from reconciler.project.load import AppEntry, Project, find_project, load_project
    from reconciler.project.planset import parse_duration, read_plan_set, same_desired
    from reconciler.project.run import AppRun, load_apps, run_lanes

    given = [
        f
        for f, v in (("-f", "overlays"), ("--var", "var"), ("--var-file", "var_file"), ("--target", "target"))
        if getattr(args, v)
    ]
    if given or getattr(args, "changed_since", None):
        flags = ", ".join(given + (["--changed-since"] if getattr(args, "changed_since", None) else []))
        raise ReconcilerError(f"{flags} cannot be combined with a plan set: {folder} holds what it was made from")
    plan_set = read_plan_set(folder)
    try:
        max_age = parse_duration(args.max_plan_age) if args.max_plan_age else None
    except ValueError as err:
        raise ReconcilerError(f"--max-plan-age: {err}") from None
    plan_set.check_age(max_age)
    names = select_from_set(plan_set.names(), args.apps, folder)
    found = find_project(Path.cwd(), args.project)
    project = load_project(found) if found is not None else None
    conns = Connections(args, project or Project(Path(folder).absolute() / "index.json"))
    conns.retry_events = _retry_emitters(args)
    started = time.monotonic()
    runs: list[AppRun] = []
    by_name: dict[str, dict[str, Any]] = {}
    for app in plan_set.apps:
        if app["name"] not in names:
            continue
        entry = next((e for e in project.apps if e.name == app["name"]), None) if project else None
        env = str(app.get("environment") or app["name"])
        runs.append(AppRun(entry or AppEntry(app["name"], plan_set.path_of(app), environment=env)))
        by_name[app["name"]] = app

    def prepare(run: AppRun) -> None:
        app = by_name[run.name]
        if project is not None:
            why = plan_set.stale_inputs(app, project)
            if why:
                raise StalePlan(why)
        stored = plan_set.load(app)
        run.client, run.plan = apply_saved_plan(
            stored,
            lambda user_id, db: conns.saved_plan_client(run.entry, user_id, db),
            source=str(plan_set.path_of(app)),
            user_id=args.user_id,
        )
        if project is not None and run.entry.name in project.names():
            fresh = load_apps([run.entry])[0]
            if fresh.desired is None or not same_desired(run.plan, fresh.desired):
                files = " + ".join(project.rel(p) for p in run.entry.files)
                raise StalePlan(
                    f"the plan of app {run.name} does not want what its files say now ({files}): "
                    "the plan set was not made from them; make a new plan"
                )
        run.result = "no changes" if run.plan.empty else "changes"

    def lane(run: AppRun) -> tuple[Any, ...]:
        app = by_name[run.name]
        return (app.get("endpoint"), app.get("user_id"), app.get("app_id"))

    try:
        run_lanes(runs, prepare, args.parallel, lane)
        _show_plans(args, runs)
        todo = [r for r in runs if not r.failed and r.plan is not None and not r.plan.empty]
        _apply_lanes(args, todo, lane, recheck=prepare)
    finally:
        conns.close()
    return _finish(args, runs, started)


def _show_plans(args: argparse.Namespace, runs: list[AppRun]) -> None:
    """Each app's plan before anything is applied: a `plan` event each, or the sections."""
    from reconciler.commands.common import use_color
    from reconciler.planning import render
    from reconciler.planning.document import plan_document

    if args.json:
        for run in runs:
            emit = _emitter(args, run.name)
            if emit is not None and run.plan is not None:
                emit("plan", plan=plan_document(run.plan))
        return
    color = use_color(args)
    body = {r.name: render.render_text(render.plan_to_dict(r.plan), color=color) for r in runs if r.plan is not None}
    print(sections(runs, body), end="", flush=True)


def _replan(run: AppRun) -> None:
    """Plan `run`'s app again; refused (stale) when that is no longer the plan shown."""
    from reconciler.planning.pipeline import plan_app

    assert run.client is not None and run.desired is not None and run.plan is not None
    fresh = plan_app(run.client, run.desired)
    if fresh.actions != run.plan.actions:
        raise StalePlan(
            f"app {run.plan.app_id} was changed by another app of this project during this apply, "
            "so the plan shown is no longer what applying would do; run apply again"
        )
    run.plan = fresh


def _apply_lanes(
    args: argparse.Namespace,
    runs: list[AppRun],
    lane: Callable[[AppRun], tuple[Any, ...]],
    *,
    recheck: Callable[[AppRun], None],
) -> None:
    """Apply every run's plan, lanes in parallel. A run on a live app that another run of this
    apply has just written to is checked again first (`recheck`: plan again, or re-check the
    saved plan against the live app), so it never applies a plan made before that write."""
    from reconciler.project.run import run_lanes

    touched: set[tuple[Any, ...]] = set()
    lock = threading.Lock()

    def step(run: AppRun) -> None:
        key = lane(run)
        with lock:
            again = key in touched
            touched.add(key)
        if again:
            recheck(run)
            if run.plan is None or run.plan.empty:
                run.result = "no changes"
                return
        _apply_one(args, run)

    run_lanes(runs, step, args.parallel, lane)


def _apply_one(args: argparse.Namespace, run: AppRun) -> None:
    """Apply one app's plan under its app lease (`apply.locked.apply_app`: the plan shown is
    checked again once the lease is held); its events (with `--json`) end with its `summary`."""
    import os

    from reconciler.apply.lease import LeaseOptions
    from reconciler.apply.locked import apply_app

    assert run.client is not None and run.plan is not None
    emit = _emitter(args, run.name)
    client = run.client
    started = time.monotonic()
    try:
        outcome = apply_app(
            client,
            run.plan.desired,
            reviewed=run.plan,
            source=f"the plan shown for app {run.name}",
            progress=lambda msg: print(f"[{run.name}] {printable(msg.strip())}", file=sys.stderr, flush=True),
            train_timeout_s=args.train_timeout,
            events=emit,
            lease_options=LeaseOptions.from_env(os.environ, lock_timeout_s=getattr(args, "lock_timeout", 0.0)),
            no_lock=getattr(args, "no_lock", False),
            max_deletes=getattr(args, "max_deletes", None),
            unlock_hint=" ".join(
                ["reconciler unlock", str(run.entry.manifest), *(f"-f {o}" for o in run.entry.overlays)]
                + [f"--var-file {v}" for v in run.entry.var_files]
            ),
        )
        if outcome.result is None:
            run.result, run.exit_code = "no changes", EXIT_OK
            run.summarised = emit is not None
            if emit is not None:
                apply_summary(emit, "no_changes", EXIT_OK, started=started)
            return
        result = outcome.result
    except ApplyDeferred as err:
        run.result, run.exit_code, run.error = "deferred", EXIT_DEFERRED, str(err)
        run.done, run.not_done, run.writes = err.done, err.not_done, err.writes
        run.summarised = emit is not None
        if emit is not None:
            apply_summary(
                emit,
                "deferred",
                EXIT_DEFERRED,
                done=err.done,
                not_done=err.not_done,
                writes=err.writes,
                started=started,
                message=str(err),
            )
        return
    except ReconcilerError as err:
        from reconciler.apply.events import error_fields
        from reconciler.core.errors import ApplyError

        run.fail(err)
        if isinstance(err, ApplyError):
            run.done, run.not_done, run.writes = err.done, err.not_done, err.writes
        run.summarised = emit is not None
        if emit is not None:
            emit("error", **error_fields(err))
            apply_summary(
                emit, err.apply_result, err.exit_code, done=run.done, not_done=run.not_done, writes=run.writes, started=started
            )
        return
    run.result, run.exit_code = "applied", EXIT_OK
    run.done, run.writes = result.done, result.writes
    run.summarised = emit is not None
    if emit is not None:
        apply_summary(emit, "applied", EXIT_OK, done=result.done, writes=result.writes, started=started)
    else:
        print(f"[{run.name}] Apply complete: {len(result.done)} action(s), {result.writes} write call(s).", file=sys.stderr)


def _finish(args: argparse.Namespace, runs: list[AppRun], started: float, *, nothing: str | None = None) -> int:
    """The closing output: the project's summary event (`--json`), or the table and line."""
    from reconciler.project.report import summary_line, summary_table

    code = combine_exit_codes(run.exit_code for run in runs)
    if args.json:
        emit = _emitter(args, None)
        assert emit is not None
        for run in runs:  # apps that failed before applying, or had nothing to apply
            if not run.summarised:
                app_emit = _emitter(args, run.name)
                assert app_emit is not None
                if run.failed and run.error_fields:
                    app_emit("error", **run.error_fields)
                apply_summary(app_emit, _event_result(run), run.exit_code)
        words = {_event_result(run) for run in runs}
        overall = (
            words.pop()
            if len(words) == 1
            else "failed"
            if code == EXIT_ERROR
            else "deferred"
            if code == EXIT_DEFERRED
            else "applied"
        )
        apply_summary(
            emit,
            overall,
            code,
            done=[f"{run.name}: {d}" for run in runs for d in run.done],
            not_done=[f"{run.name}: {d}" for run in runs for d in run.not_done],
            writes=sum(run.writes for run in runs),
            started=started,
            apps=[{"name": run.name, "result": run.result, "exit_code": run.exit_code} for run in runs],
        )
    else:
        if nothing:
            print(f"{nothing}: nothing to do.")
        else:
            print(summary_table(runs) + summary_line(runs))
    report_failures(runs)
    return code


def _event_result(run: AppRun) -> str:
    """An app's result as the `summary` event words it (`apply.events.RESULTS`)."""
    if run.failed:
        return run.apply_result
    return {"no changes": "no_changes", "cancelled": "refused", "changes": "no_changes"}.get(run.result, run.result)


def _confirm(todo: list[AppRun]) -> bool:
    """Whether the person at the terminal typed "yes" for all of them; refused without one."""
    from reconciler.commands.common import ask_yes

    names = ", ".join(r.name for r in todo)
    total = sum(len(r.plan.actions) for r in todo if r.plan is not None)
    return ask_yes(
        f"Apply {total} action(s) to {len(todo)} app(s) ({names})?",
        refusal="refusing to apply without confirmation: stdin is not a terminal; "
        "review the plans and pass --auto-approve, or apply a saved plan set (plan --out DIR)",
    )
