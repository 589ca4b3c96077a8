"""Project mode of `validate`, `plan`, `drift` and `show`: with no FILE and no -f, each acts on the
apps of `reconciler.yaml` (docs/gitops.md "Projects"); `apply` is `commands/projectapply.py`.

Contract:
- `open_project(args) -> (project, entries)`: the project file (`project.load.find_project` from
  the current directory, `--project`, `RECONCILER_PROJECT`) and the apps `--app` /
  `--changed-since` select. `--var`, `--var-file` and `--target` are refused: variables are set
  per app in the file, and targets name one app's resources.
- `Connections(args, project)`: per app, the API base, the credential key and the client
  (`project.run.ClientPool`: one client and rate limit per credential), with the same
  precedence as one manifest: flags, then the app's entry (then `defaults:`), then the manifest
  and the environment. With no PAT and no API base, the embedded sandbox next to reconciler.yaml.
- `run_validate / run_plan / run_drift / run_show(args) -> exit code`: each app's section in
  project order, the summary table and line (text), or one Markdown comment (`--markdown`), or
  one JSON document (`--json`). Exit codes combine (`core.exitcodes.combine_exit_codes`). A
  failing app fails alone: its section says why, stderr has one line, the others go on.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.core.errors import ReconcilerError
from reconciler.core.exitcodes import EXIT_CHANGES, EXIT_ERROR, EXIT_OK, combine_exit_codes
from reconciler.core.printable import printable

if TYPE_CHECKING:
    from reconciler.api.client import Client
    from reconciler.project.load import AppEntry, Project
    from reconciler.project.run import AppRun, CredentialKey


def open_project(args: argparse.Namespace) -> tuple[Project, list[AppEntry]]:
    from reconciler.project.load import PROJECT_FILE, find_project, load_project
    from reconciler.project.select import select_apps

    given = [f for f, v in (("--var", "var"), ("--var-file", "var_file"), ("--target", "target")) if getattr(args, v, None)]
    if given:
        raise ReconcilerError(
            f"{', '.join(given)} cannot be used on a whole project: set variables per app in {PROJECT_FILE} "
            "(vars:, var_files:), or give one manifest with FILE / -f"
        )
    path = find_project(Path.cwd(), getattr(args, "project", None))
    if path is None:
        raise ReconcilerError(
            f"give a manifest: FILE, or -f BASE [-f OVERLAY ...]; or run inside a project: no {PROJECT_FILE} "
            "in the current directory or above it (up to the repository's root)"
        )
    project = load_project(path)
    return project, select_apps(project, getattr(args, "apps", []) or [], getattr(args, "changed_since", None))


class Connections:
    """Clients for a project's apps (see the module docstring)."""

    def __init__(self, args: argparse.Namespace, project: Project) -> None:
        from reconciler.project.run import ClientPool

        self.args = args
        self.project = project
        self.pool = ClientPool()
        #: app name -> where its client's retries go as data (`apply --json`), or None
        self.retry_events: Callable[[str], Callable[[dict[str, Any]], None]] | None = None

    def api_base(self, entry: AppEntry) -> str:
        """The API base the app is planned against ("" = none set: the embedded sandbox, or
        api.clarifai.com when a PAT is set)."""
        flag = getattr(self.args, "api_base", None)  # validate and show take no connection flags
        return (flag or entry.api_base or os.environ.get("CLARIFAI_API_BASE") or "").strip()

    def key(self, entry: AppEntry) -> CredentialKey:
        from reconciler.project.run import CredentialKey

        if getattr(self.args, "force_sandbox", False):  # --sandbox: the embedded one, whatever is set
            return CredentialKey("", "")
        if getattr(self.args, "pat_file", None):
            pat = "file:" + os.path.abspath(self.args.pat_file)
        else:
            pat = (os.environ.get(entry.pat_env) or "").strip()
        return CredentialKey(self.api_base(entry), hashlib.sha256(pat.encode()).hexdigest() if pat else "")

    def _connect(self, entry: AppEntry, sandbox_db: str | None = None) -> Client:
        from reconciler.commands.connect import connect

        a = self.args
        return connect(
            api_base=self.api_base(entry) or None,
            pat_file=a.pat_file,
            rate_limit=a.rate_limit,
            debug=a.debug,
            timeout=a.timeout,
            require_credentials=a.require_credentials,
            force_sandbox=getattr(a, "force_sandbox", False),
            sandbox_from=self.project.root,
            sandbox_db=Path(sandbox_db) if sandbox_db else None,
            pat_env=entry.pat_env,
        )

    def user_of(self, run: AppRun) -> str | None:
        """--user, else the app's entry (or `defaults:`), else the manifest's app.user_id."""
        desired_user = run.desired.user_id if run.desired is not None else None
        return getattr(self.args, "user_id", None) or run.entry.user_id or desired_user

    def client(self, run: AppRun) -> Client:
        """The app's client, and its desired state owned by the user it acts for."""
        client = self.pool.client_for(self.key(run.entry), self.user_of(run), lambda: self._connect(run.entry))
        if run.desired is not None and client.user_id and run.desired.user_id != client.user_id:
            run.desired = dataclasses.replace(run.desired, user_id=client.user_id)
        run.client = self._hooked(client, run.entry.name)
        return run.client

    def _hooked(self, client: Client, name: str) -> Client:
        client.on_retry = _prefixed(name)
        if self.retry_events is not None:
            client.on_retry_event = self.retry_events(name)
        return client

    def saved_plan_client(self, entry: AppEntry, user_id: str | None, sandbox_db: str | None) -> Client:
        """The client for applying a saved plan: on the plan's own embedded sandbox file when it
        was made on one (`pipeline.apply_saved_plan` asks), else as `client`."""
        key = self.key(entry)
        if sandbox_db and not key.api_base:
            key = dataclasses.replace(key, api_base="sandbox:" + sandbox_db)
        return self._hooked(self.pool.client_for(key, user_id, lambda: self._connect(entry, sandbox_db)), entry.name)

    def lane(self, run: AppRun) -> tuple[Any, ...]:
        """Apps writing to the same live app run one after the other."""
        if run.desired is None:
            return ("app", run.name)
        return (self.api_base(run.entry), self.user_of(run), run.desired.app.id)

    def close(self) -> None:
        self.pool.close()


def _prefixed(name: str) -> Callable[[str], None]:
    """A client's retry lines on stderr, prefixed with the app they are for."""
    return lambda line: print(f"[{name}] {printable(line.strip())}", file=sys.stderr, flush=True)


def load_runs(args: argparse.Namespace) -> tuple[Project, list[AppRun], Connections]:
    """The selected apps loaded (manifests, overlays, variables), shared declarations refused."""
    from reconciler.project.run import load_apps, refuse_shared_declarations

    project, entries = open_project(args)
    runs = load_apps(entries)
    conns = Connections(args, project)
    refuse_shared_declarations(runs, conns.lane)
    return project, runs, conns


def report_failures(runs: list[AppRun]) -> None:
    """One line per failed app on stderr (its section on stdout says it in full)."""
    for run in runs:
        if run.failed and run.error:
            lines = run.error.splitlines()
            more = f" (and {len(lines) - 1} more problems)" if len(lines) > 1 else ""
            print(f"error: app {run.name}: {printable(lines[0])}{more}", file=sys.stderr)


def sections(runs: list[AppRun], body: dict[str, str]) -> str:
    """One section per app: its header, then `body[name]` or its error."""
    from reconciler.project.report import section_header

    out = []
    for run in runs:
        text = (
            "\n".join(printable(line) for line in (run.error or "").splitlines()) + "\n" if run.failed else body.get(run.name, "")
        )
        out.append(f"{section_header(run)}\n{text}")
    return "\n".join(out) + "\n"


def text_report(runs: list[AppRun], body: dict[str, str]) -> str:
    """The sections, then the summary table and line."""
    from reconciler.project.report import summary_line, summary_table

    return sections(runs, body) + summary_table(runs) + summary_line(runs) + "\n"


def _why_none(args: argparse.Namespace, project: Project) -> str:
    since = getattr(args, "changed_since", None)
    return f"no app of {project.rel(project.path)} changed since {since}" if since else "no app selected"


def _nothing_selected(args: argparse.Namespace, project: Project, what: str) -> int:
    why = _why_none(args, project)
    if getattr(args, "json", False):
        from reconciler.project.report import project_document

        print(json.dumps(project_document(project, [], what, EXIT_OK, lambda r: {}), indent=2))
    else:
        print(f"{why}: nothing to do.")
    return EXIT_OK


# --- validate -----------------------------------------------------------------------------------


def run_validate(args: argparse.Namespace) -> int:
    """Every selected app's manifest, overlays and variables loaded; problems at file:line:col.
    With `--json`, the problems of the project file too are the list `validate --json` prints."""
    from reconciler.core.errors import ManifestError
    from reconciler.project.report import summary_line

    try:
        project, runs, _conns = load_runs(args)
    except ManifestError as err:
        if not args.json:
            raise
        print(json.dumps([p.as_dict() for p in err.problems], indent=2))
        return EXIT_ERROR
    problems = [p for run in runs for p in run.problems]
    for run in runs:
        if not run.failed:
            run.result = "valid"
    if args.json:  # as for one manifest: the list of problems, [] when every app is valid
        print(json.dumps([p.as_dict() for p in problems], indent=2))
    else:
        for run in runs:
            for p in run.problems:
                print(printable(p), file=sys.stderr)
            if run.failed and not run.problems:
                print(f"error: app {run.name}: {printable(run.error)}", file=sys.stderr)
        for run in runs:
            files = " + ".join(project.rel(f) for f in (run.entry.manifest, *run.entry.overlays))
            print(f"{run.name}: {'invalid' if run.failed else 'valid'} ({printable(files)})")
        print(summary_line(runs))
    return combine_exit_codes(run.exit_code for run in runs)


# --- plan ---------------------------------------------------------------------------------------


def plan_runs(args: argparse.Namespace, runs: list[AppRun], conns: Connections, *, detailed: bool) -> None:
    """Plan every app that loaded, in parallel lanes; each run gets its plan, result, exit code."""
    from reconciler.planning.pipeline import plan_app
    from reconciler.project.run import run_lanes

    def step(run: AppRun) -> None:
        assert run.desired is not None
        client = conns.client(run)
        run.plan = plan_app(client, run.desired)
        run.result = "no changes" if run.plan.empty else "changes"
        run.exit_code = EXIT_CHANGES if detailed and not run.plan.empty else EXIT_OK

    run_lanes(runs, step, args.parallel, conns.lane)


def run_plan(args: argparse.Namespace) -> int:
    project, runs, conns = load_runs(args)
    try:
        plan_runs(args, runs, conns, detailed=args.detailed_exitcode)
    finally:
        conns.close()
    code = combine_exit_codes(run.exit_code for run in runs)
    if runs:
        show_runs(args, project, runs, code)
    elif args.markdown:  # CI posts this as the comment: say why there is no plan
        print(f"## Clarifai plan: no changes\n\n{_why_none(args, project)}: nothing to plan.")
    else:
        _nothing_selected(args, project, "reconciler-project-plan")
    if args.out:
        from reconciler.project.planset import write_plan_set

        written = write_plan_set(args.out, project, runs)
        print(
            f"Saved {len(written)} plan(s) and index.json to {args.out}; apply them with: reconciler apply {args.out}",
            file=sys.stderr,
        )
    report_failures(runs)
    return code


def show_runs(args: argparse.Namespace, project: Project, runs: list[AppRun], code: int, *, folder: str | None = None) -> None:
    """The runs' plans as `--json`, `--markdown` or text (plan, and show of a plan set)."""
    from reconciler.commands.common import use_color
    from reconciler.planning import render
    from reconciler.planning.document import plan_document
    from reconciler.project import report

    if args.json:
        doc = report.project_document(
            project, runs, "reconciler-project-plan", code, lambda r: {"plan": plan_document(r.plan) if r.plan else None}
        )
        print(json.dumps(doc, indent=2))
    elif args.markdown:
        where = folder or getattr(args, "out", None) or "plans"

        def hint(run: AppRun) -> str:
            return f"reconciler show {where.rstrip('/')}/{run.name}.plan.json"

        print(report.project_markdown(project, runs, args.max_chars, hint), end="")
    else:
        color = use_color(args)
        body = {r.name: render.render_text(render.plan_to_dict(r.plan), color=color) for r in runs if r.plan is not None}
        print(text_report(runs, body), end="")


# --- drift --------------------------------------------------------------------------------------


def run_drift(args: argparse.Namespace) -> int:
    from reconciler.planning import drift
    from reconciler.project.report import project_document
    from reconciler.project.run import run_lanes

    project, runs, conns = load_runs(args)
    if not runs:
        return _nothing_selected(args, project, "reconciler-project-drift")
    reports: dict[str, dict[str, Any]] = {}

    def step(run: AppRun) -> None:
        assert run.desired is not None
        report = drift.check_drift(conns.client(run), run.desired)
        run.plan = report.plan
        reports[run.name] = drift.report_to_dict(report)
        run.result = "drift" if report.drifted else "clean"
        run.exit_code = EXIT_CHANGES if report.drifted else EXIT_OK

    try:
        run_lanes(runs, step, args.parallel, conns.lane)
    finally:
        conns.close()
    code = combine_exit_codes(run.exit_code for run in runs)
    if args.json:
        doc = project_document(project, runs, "reconciler-project-drift", code, lambda r: {"drift": reports.get(r.name)})
        print(json.dumps(doc, indent=2))
    else:
        print(text_report(runs, {name: drift.render_text(d) for name, d in reports.items()}), end="")
    report_failures(runs)
    return code


# --- show ---------------------------------------------------------------------------------------


def run_show(args: argparse.Namespace) -> int:
    """`show` with no PLAN: the project's apps (what CI builds its matrix from, with --json);
    `show DIR`: a saved plan set (`show_plan_set`)."""
    from reconciler.project.report import summary_line

    project, runs, conns = load_runs(args)
    rows: list[dict[str, Any]] = []
    for run in runs:
        if not run.failed:
            run.result = "valid"
        rows.append(
            {
                "name": run.name,
                "environment": run.entry.environment,
                "app_id": run.desired.app.id if run.desired is not None else None,
                "user_id": conns.user_of(run),
                "api_base": conns.api_base(run.entry) or None,
                "pat_env": run.entry.pat_env,
                "manifest": project.rel(run.entry.manifest),
                "overlays": [project.rel(p) for p in run.entry.overlays],
                "var_files": [project.rel(p) for p in run.entry.var_files],
                "error": run.error_fields,
            }
        )
    if args.json:  # a plain list: CI builds its job matrix from it
        print(json.dumps(rows, indent=2))
    else:
        for row, run in zip(rows, runs):
            files = " + ".join(project.rel(p) for p in (run.entry.manifest, *run.entry.overlays))
            app = f"{row['user_id'] or 'me'}/{row['app_id']}" if row["app_id"] else "(does not load)"
            print(f"{row['name']}  [{row['environment']}]  {printable(app)}  {printable(files)}")
        print(summary_line(runs))
    report_failures(runs)
    return combine_exit_codes(run.exit_code for run in runs)


def show_plan_set(args: argparse.Namespace, folder: str) -> int:
    """`show DIR`: every saved plan of the set (or those --app names), without connecting."""
    from reconciler.project.load import AppEntry, Project
    from reconciler.project.planset import read_plan_set
    from reconciler.project.run import AppRun

    plan_set = read_plan_set(folder)
    names = select_from_set(plan_set.names(), getattr(args, "apps", []) or [], folder)
    project = Project(Path(folder).absolute() / "index.json")
    runs = []
    for app in plan_set.apps:
        if app["name"] not in names:
            continue
        run = AppRun(AppEntry(app["name"], plan_set.path_of(app), environment=str(app.get("environment") or app["name"])))
        try:
            run.plan = plan_set.load(app)
            run.result = "no changes" if run.plan.empty else "changes"
        except ReconcilerError as err:
            run.fail(err)
        runs.append(run)
    code = combine_exit_codes(run.exit_code for run in runs)
    show_runs(args, project, runs, code, folder=folder)
    report_failures(runs)
    return code


def select_from_set(names: list[str], wanted: list[str], folder: str) -> set[str]:
    if not wanted:
        return set(names)
    unknown = [n for n in dict.fromkeys(wanted) if n not in names]
    if unknown:
        raise ReconcilerError(f"--app {', '.join(unknown)}: not in the plan set {folder}; it holds: {', '.join(names)}")
    return set(wanted)
