"""Running a verb on many apps of a project at once.

Contract:
- `AppRun` is one app's run: its entry, its desired `State` once loaded, its client, its plan,
  its result word (`report.PHRASES` lists them) and exit code, and its error (one line, or a manifest's problems).
- `load_apps(entries) -> list[AppRun]`: each app's manifest, overlays and variables loaded
  (`manifest.load.load_overlays`, as `-f BASE -f OVERLAY --var-file ...` would), no API touched.
  An app that does not load is `failed` with its problems; the others go on. Two apps that write
  to the same live app (same endpoint key, user and app id) are refused when they declare the
  same model or workflow (each would plan deleting or rewriting the other's), and otherwise run
  one after the other, in file order (the command's lane key).
- `ClientPool()`: one `Client` per credential (`CredentialKey`: API base and the PAT's sha256,
  never the PAT), made on first use and shared, with its rate limiter and connection pool, by
  every app on that credential (`Client.for_user`: each app its own copy, for its user and its
  own retry callbacks): Clarifai's rate limit is per user, so apps on one credential share it.
- `run_lanes(runs, step, parallel, key_of)`: `step(run)` for every run not yet failed, `parallel`
  lanes at a time (a lane: the runs with one `key_of`, e.g. the apps on one live app, in file
  order); an exception a step raises fails that app only (`ReconcilerError`: its line;
  `ManifestError`: its problems), never the others. Results keep project order. Nothing here
  prints but the one line saying Ctrl-C was heard.
Exit codes and how a project's combine: `core.exitcodes`.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from reconciler.core.errors import ManifestError, Problem, ReconcilerError
from reconciler.core.exitcodes import EXIT_ERROR, EXIT_OK
from reconciler.project.load import AppEntry, display_path

if TYPE_CHECKING:
    from reconciler.api.client import Client
    from reconciler.core.state import State
    from reconciler.planning.actions import Plan


@dataclass
class AppRun:
    entry: AppEntry
    desired: State | None = None
    client: Client | None = None
    plan: Plan | None = None
    result: str = ""
    exit_code: int = EXIT_OK
    #: the error, one line (a ManifestError: its problems, one a line)
    error: str | None = None
    problems: list[Problem] = field(default_factory=list)
    #: the error's fields for JSON output (`apply.events.error_fields`)
    error_fields: dict[str, Any] | None = None
    #: what the verb printed for it, shown in its section (buffered: apps run at once)
    output: str = ""
    #: apply: how many actions were done / writes made
    done: list[str] = field(default_factory=list)
    not_done: list[str] = field(default_factory=list)
    writes: int = 0
    #: the failure as `apply --json`'s summary words it (`ReconcilerError.apply_result`)
    apply_result: str = "failed"
    #: `apply --json`: its events already end with its own summary
    summarised: bool = False

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def failed(self) -> bool:
        return self.result == "failed"

    def fail(self, err: BaseException) -> None:
        """Record `err` as this app's failure."""
        from reconciler.apply.events import error_fields

        self.result, self.exit_code = "failed", EXIT_ERROR
        self.apply_result = err.apply_result if isinstance(err, ReconcilerError) else "failed"
        if isinstance(err, ManifestError):
            self.problems = list(err.problems)
            self.error = "\n".join(str(p) for p in err.problems)
        else:
            self.error = str(err).splitlines()[0] if str(err) else type(err).__name__
        self.error_fields = error_fields(err)


# --- loading ------------------------------------------------------------------------------------


def load_apps(entries: Iterable[AppEntry]) -> list[AppRun]:
    """Every entry's desired state, or its failure (see the module docstring)."""
    from reconciler.manifest.load import load_overlays

    runs = []
    for entry in entries:
        run = AppRun(entry)
        try:
            files = [display_path(p) for p in (entry.manifest, *entry.overlays)]  # as problems name them
            run.desired = load_overlays(files, inputs=entry.inputs())
        except ReconcilerError as err:
            run.fail(err)
        runs.append(run)
    return runs


def refuse_shared_declarations(runs: list[AppRun], key_of: Callable[[AppRun], tuple[Any, ...]]) -> None:
    """Fail the runs that declare a model or workflow another run on the same live app declares."""
    by_lane: dict[tuple[Any, ...], list[AppRun]] = {}
    for run in runs:
        if run.desired is not None and not run.failed:
            by_lane.setdefault(key_of(run), []).append(run)
    for lane in by_lane.values():
        for i, a in enumerate(lane):
            for b in lane[i + 1 :]:
                assert a.desired is not None and b.desired is not None
                mine = {f"model/{m.id}" for m in a.desired.models} | {f"workflow/{w.id}" for w in a.desired.workflows}
                theirs = {f"model/{m.id}" for m in b.desired.models} | {f"workflow/{w.id}" for w in b.desired.workflows}
                both = sorted(mine & theirs)
                if both:
                    line = (
                        f"{both[0]} on app {a.desired.app.id} is declared by both {a.name} and {b.name}"
                        f"{f' (and {len(both) - 1} more)' if len(both) > 1 else ''}: two apps of the project "
                        "would rewrite each other's resources; give each its own app or its own resources"
                    )
                    for run in (a, b):
                        run.fail(ReconcilerError(line))


# --- clients ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CredentialKey:
    """What makes two apps share a client and its rate limit: the API base ("" = the embedded
    sandbox) and the PAT's sha256 ("" = none)."""

    api_base: str
    pat_sha256: str


class ClientPool:
    """One client per credential (see the module docstring); thread-safe."""

    def __init__(self) -> None:
        self._clients: dict[CredentialKey, Client] = {}
        self._lock = threading.Lock()

    def client_for(self, key: CredentialKey, user_id: str | None, connect: Callable[[], Client]) -> Client:
        """The credential's client (made by `connect()` on first use) acting for `user_id` (else
        its own user): a copy of its own, sharing its rate limiter and connections."""
        with self._lock:  # connecting once per credential: the embedded sandbox is opened once
            client = self._clients.get(key)
            if client is None:
                client = self._clients[key] = connect()
        return client.for_user(user_id or client.user_id)

    def close(self) -> None:
        for client in self._clients.values():
            client.close()


# --- running ------------------------------------------------------------------------------------


def run_lanes(
    runs: list[AppRun], step: Callable[[AppRun], None], parallel: int, key_of: Callable[[AppRun], tuple[Any, ...]]
) -> list[AppRun]:
    """`step` on every run not failed yet, lanes in parallel (see the module docstring). Lanes
    run on worker threads, so Ctrl-C reaches this thread: no app starts after it, the ones in
    flight finish (a second Ctrl-C stops waiting for them), then KeyboardInterrupt is raised."""
    lanes: dict[tuple[Any, ...], list[AppRun]] = {}
    for run in runs:
        if not run.failed:
            lanes.setdefault(key_of(run), []).append(run)
    stop = threading.Event()

    def one_lane(lane: list[AppRun]) -> None:
        for run in lane:
            if stop.is_set():
                run.fail(ReconcilerError("not started: interrupted"))
                continue
            try:
                step(run)
            except ReconcilerError as err:
                run.fail(err)
            except Exception as err:  # a bug: this app fails with one line, the others go on
                run.fail(ReconcilerError(f"internal error ({type(err).__name__}): {err}"))

    if not lanes:
        return runs
    prefix = f"project-{id(stop):x}"  # this call's worker threads, for joining them on Ctrl-C
    pool = ThreadPoolExecutor(max_workers=max(1, min(parallel, len(lanes))), thread_name_prefix=prefix)
    futures: list[Future[None]] = []
    try:
        for lane in lanes.values():
            futures.append(pool.submit(one_lane, lane))
        for fut in futures:
            fut.result()
    except KeyboardInterrupt:
        stop.set()
        print("interrupted: no more apps start; waiting for the ones in flight (Ctrl-C again to quit now)", file=sys.stderr)
        pool.shutdown(wait=False, cancel_futures=True)  # lanes not started yet never start
        # join by name: a Ctrl-C during `submit` can leave a started worker unregistered in the pool
        for thread in threading.enumerate():
            if thread.name.startswith(prefix):
                thread.join()  # a second Ctrl-C raises out of here at once
        for lane in lanes.values():
            for run in lane:
                if not run.result:  # its lane never started
                    run.fail(ReconcilerError("not started: interrupted"))
        raise
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return runs
