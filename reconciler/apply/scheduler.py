"""Apply: execute a `plan.Plan` against the API, action by action, in plan order.

Contract:
- One executor table, `(Op, Kind) -> executor` (`EXECUTORS`, filled by the `executes` decorator
  and checked at import against `plan.PLANNED`, every pair the planner can emit). Every executor
  takes the list of actions it executes (the batched ones several, the others one); each is small
  and idempotent: "already exists" on a
  create means an earlier, interrupted run got there first, so we read back and carry on; "not
  found" on a delete means done. A re-run of apply after any failure converges (plan again: what
  was done no longer shows).
- Writes are batched where the API takes lists (concepts: at most 128 a call; relations: one call
  per subject concept; new workflows: one call). PostModels answers with a single model, so models
  are created one call each.
- Model versions: PostModels makes the model and never a version, for every type; a `create`
  then posts its version with PostModelVersions (apply.models). A `create` or `new_version`
  records the version it made; workflow pins written as ``new:<model_id>`` resolve to it. A
  trainable model's version must be trained (`training.TRAINED`) before any workflow is pointed at
  it (bounded wait, `train_timeout_s`; README "Trainable models").
- Trainable models: the version PostModelVersions makes trains on the app's annotated inputs.
  When training cannot succeed yet (no labelled data, or any other training failure),
  apply says so at once in one progress line naming the model's concepts, carries on with every
  action that does not depend on that model, defers the workflows pinned to its new version and
  the default-workflow change (and, to be safe, workflow and model deletes), and ends with
  ApplyDeferred (exit 3: applied, some parts deferred). The next apply, after the inputs are
  labelled, posts a new version.
- Non-idempotent writes (PostModelVersions) are sent without transport-level retries: a retry of a
  request whose response was lost could create a second version. Instead, after a failure we read
  the model's versions back and reuse one that already has the desired config.
- Ownership: every model and workflow we write carries `metadata[MARKER_KEY] = {"managed": true,
  "protect": bool, "keys": [the metadata keys the manifest manages]}`; the user's other metadata
  keys are never sent back changed, and the live managed metadata ends equal to the manifest's,
  nested keys included (models: PATCH "remove" of what is stale, then "merge"; apps: metadata_action
  overwrite; workflows: read, merge, overwrite).
- Overwrites (apps, workflows, concepts) may replace the whole object on the real API, so each
  sends back, as read, the fields the manifest does not manage (`APP_KEPT`, `WORKFLOW_KEPT`, the
  app's default workflow, a concept's metadata). DELETEs whose route binds no body send none.
- Progress goes to the `progress` callback (the CLI prints it on stderr); structured events
  (`apply.events`: action started / finished / failed / deferred, training waits) to `events`
  (`apply --json`); nothing here prints.
- `lease_check` (`apply/lease.Lease.check`, from `apply/locked.py`) is called before each task
  starts: once the app lease is lost it raises, and the apply stops there like on a failure.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from reconciler.api.client import Client
from reconciler.apply.app import AppExecutors
from reconciler.apply.base import (
    CONCEPT_BATCH,
    EXECUTORS,
    ApplyResult,
    Progress,
    TrainingNotReady,
    _batched,
    _describe,
    _desired,
    _live,
    executes,
)
from reconciler.apply.concepts import ConceptExecutors
from reconciler.apply.events import Emit
from reconciler.apply.review import ReviewExecutors
from reconciler.core.errors import ApplyDeferred, ApplyError, ReconcilerError
from reconciler.core.state import (
    App,
    ConceptRelation,
    Kind,
    Model,
)
from reconciler.planning.actions import PLANNED, Action, Op, Plan, new_pin_model
from reconciler.planning.order import action_predecessors

__all__ = ["EXECUTORS", "Applier", "ApplyResult", "apply_plan", "executes"]


class Applier(AppExecutors, ConceptExecutors, ReviewExecutors):
    """Runs a plan's actions through the executors (see the module docstring)."""

    # --- driver ----------------------------------------------------------------------------
    def run(self) -> ApplyResult:
        """Run the plan's tasks (see `_tasks`) on a thread pool, each as soon as every task it
        depends on is done; the client's rate limiter still spaces every request. On the first
        failure (or Ctrl-C) nothing new starts, every wait ends at once (training polls, gates,
        retry backoffs: `_stopping`), the requests already in flight are awaited, and the report
        names exactly the actions whose tasks finished; "apply stopped at" names the failed
        action, or after Ctrl-C one that did not finish. A second Ctrl-C (or one after a failure)
        quits at once, and the workers still unwinding print nothing more."""
        actions = list(self.plan.actions)
        self._index = {id(a): i for i, a in enumerate(actions, 1)}
        tasks = _tasks(actions)
        total = len(actions)
        waiting_on = {t.index: set(t.deps) for t in tasks}
        dependents: dict[int, list[int]] = {t.index: [] for t in tasks}
        for t in tasks:
            for d in t.deps:
                dependents[d].append(t.index)
        finished: set[int] = set()
        #: the failed task and its error; (None, the interrupt) after Ctrl-C, resolved at the end
        #: to a task that did not finish (one in flight then finishes, and prints "done", after it)
        stop: tuple[_Task | None, BaseException] | None = None
        in_flight_at_interrupt: set[int] = set()
        workers = self.client.max_workers
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="apply")
        running: dict[Future[None], _Task] = {}
        ready = [t for t in tasks if not t.deps]
        finished_event = {t.index: threading.Event() for t in tasks}
        self._gates = {t.actions[0].id: [finished_event[g] for g in t.gate] for t in tasks if t.gate}
        skipped: set[int] = set()  # tasks whose every action was deferred
        n = 0
        outer_stop, self.client.stop = self.client.stop, self._stopping  # retries' waits end on it
        own_sigint = _catch_sigint(self)

        def take_interrupt() -> None:
            """Ctrl-C (`_catch_sigint`) becomes the stop, before any failure it caused (a training
            wait that it ended) is taken for one."""
            nonlocal stop, in_flight_at_interrupt
            if stop is None and self._interrupted.is_set():
                self.progress("  interrupted: waiting for the requests in flight (Ctrl-C again to quit now)")
                stop = (None, KeyboardInterrupt())
                in_flight_at_interrupt = {t.index for t in running.values()}

        try:
            while ready or running:
                take_interrupt()
                while stop is None and ready and not self._interrupted.is_set():
                    # tasks submitted in index order: a gated model task (see `_tasks`) is picked
                    # up by the pool only after the concept tasks it waits for
                    ready.sort(key=lambda x: x.index, reverse=True)
                    t = ready.pop()
                    kept = self._without_deferred(t.actions)
                    if not kept:  # everything in it waits for an untrained model
                        skipped.add(t.index)
                        ready.extend(self._release(t, tasks, waiting_on, dependents))
                        continue
                    t.actions = kept
                    if self.lease_check is not None:
                        try:
                            self.lease_check()  # the lease still ours: else write nothing more
                        except ReconcilerError as lost:
                            stop = (t, lost)
                            break
                    t.started = time.monotonic()
                    for a in t.actions:
                        self.emit("action_started", **self._action_fields(a, total))
                    running[pool.submit(self._execute, t)] = t
                ready = []
                if stop is not None:
                    self._stopping.set()  # gated tasks waiting part-way give up
                if not running:
                    continue
                try:
                    # with our SIGINT handler, Ctrl-C only sets `_interrupted`: look every 0.1 s
                    done_now, _ = wait(running, timeout=0.1 if own_sigint else None, return_when=FIRST_COMPLETED)
                except KeyboardInterrupt as interrupt:  # Ctrl-C under someone else's handler
                    if stop is not None:
                        raise  # a second Ctrl-C, or one while a failure winds down: quit now
                    self.progress("  interrupted: waiting for the requests in flight (Ctrl-C again to quit now)")
                    stop = (None, interrupt)
                    in_flight_at_interrupt = {t.index for t in running.values()}
                    self._stopping.set()
                    continue
                take_interrupt()
                for fut in sorted(done_now, key=lambda f: running[f].index):
                    t = running.pop(fut)
                    err = fut.exception()
                    ms = round((time.monotonic() - t.started) * 1000)
                    if isinstance(err, TrainingNotReady):
                        # the model itself was written (created / its version posted); what uses it waits
                        self.untrained[err.model_id] = err.line
                        self.progress(err.line)
                        self.emit("training_not_ready", model=err.model_id, message=err.line)
                    elif err is not None:
                        stop = stop or (t, err)  # the first failure is the one reported
                        for a in t.actions:
                            why = str(err) or type(err).__name__
                            self.emit("action_failed", **self._action_fields(a, total), duration_ms=ms, error=why)
                        continue
                    for a in t.actions:
                        self.emit("action_finished", **self._action_fields(a, total), duration_ms=ms)
                    finished.add(t.index)
                    finished_event[t.index].set()
                    first, n = n + 1, n + len(t.actions)
                    self.result.done.extend(_describe(a) for a in t.actions)
                    # a batch counts every action it carried, in order: [1-3/13], then [4/13]
                    count = f"{first}-{n}" if n > first else f"{n}"
                    self.progress(f"[{count}/{total}] {t.label}: done")
                    ready.extend(self._release(t, tasks, waiting_on, dependents))
        except BaseException:
            self._quiet.set()  # given up: what the workers still say would print after the error
            raise
        finally:
            self._stopping.set()
            self.client.stop = outer_stop
            if own_sigint:
                signal.signal(signal.SIGINT, own_sigint)
            pool.shutdown(wait=False, cancel_futures=True)
        unfinished = [t for t in tasks if t.index not in finished and t.index not in skipped]
        if stop is not None and stop[0] is None and not unfinished:
            stop = None  # Ctrl-C as the last task finished: every action was applied
        if stop is not None:
            task, err = stop
            if not isinstance(err, (ReconcilerError, KeyboardInterrupt)):
                raise err
            if task is None:  # interrupted: name an action that did not finish, in flight if any
                in_flight = [t for t in unfinished if t.index in in_flight_at_interrupt]
                task = (in_flight or unfinished)[0]
            why = f": {err}" if isinstance(err, ReconcilerError) else " (interrupted)"
            not_done = list(self.deferred) + [
                _describe(a) for t in tasks if t.index not in finished and t.index not in skipped for a in t.actions
            ]
            raise ApplyError(
                f"apply stopped at {task.label}{why}. {len(self.result.done)} of {total} actions "
                f"were applied; {len(not_done)} were not. Run apply again to converge: it plans "
                f"from the live app and does only what is left.",
                done=self.result.done,
                not_done=not_done,
                writes=self.result.writes,
            ) from None
        if self.untrained:
            # the full reason was said once, at once, as a progress line: here only its gist
            raise ApplyDeferred(
                f"apply did not finish: {' '.join(_gist(line) for line in self.untrained.values())} Left for a later apply: "
                f"{', '.join(self.deferred) or 'nothing else'}. {len(self.result.done)} of {total} actions were "
                f"applied. Label the inputs, then run apply again.",
                done=self.result.done,
                not_done=list(self.deferred),
                writes=self.result.writes,
            )
        return self.result

    def _action_fields(self, a: Action, total: int) -> dict[str, object]:
        """An action as the `action_*` events name it: its 1-based place in the plan, and what it is."""
        return {"index": self._index[id(a)], "total": total, "op": a.op.value, "kind": a.kind.value, "id": a.id}

    @staticmethod
    def _release(t: _Task, tasks: list[_Task], waiting_on: dict[int, set[int]], dependents: dict[int, list[int]]) -> list[_Task]:
        """Mark `t` out of the way of its dependents; the ones now free to start."""
        free = []
        for d in dependents[t.index]:
            waiting_on[d].discard(t.index)
            if not waiting_on[d]:
                free.append(tasks[d])
        return free

    def _without_deferred(self, group: list[Action]) -> list[Action]:
        """Drop (and record) the actions of `group` that must wait for an untrained model: a
        workflow pinned to its new version, the default-workflow change to such a workflow, and
        -- once anything waits -- workflow and model deletes (one of them may still be in use by
        a workflow or default that was not changed)."""
        if not self.untrained:
            return group
        keep: list[Action] = []
        for a in group:
            if a.kind in (Kind.WORKFLOW, Kind.TASK) and a.op is not Op.DELETE:
                waits = sorted({m for _, p in a.pins if (m := new_pin_model(p))} & set(self.untrained))
                if waits:
                    self._defer(a, f"waits for model {', '.join(waits)} to train")
                    if a.kind is Kind.WORKFLOW:
                        self._deferred_workflows.add(a.id)
                    continue
            elif a.op is Op.SET_DEFAULT:
                wf = a.desired.default_workflow if isinstance(a.desired, App) else None
                if wf in self._deferred_workflows:
                    self._defer(a, f"workflow {wf} is not ready")
                    continue
            elif a.op is Op.DELETE and a.kind in (Kind.WORKFLOW, Kind.MODEL):
                self._defer(a, "deletes wait until the workflows are up to date")
                continue
            keep.append(a)
        return keep

    def _execute(self, task: _Task) -> None:
        a = task.actions[0]
        EXECUTORS[a.op, a.kind].run(self, task.actions)


def _catch_sigint(applier: Applier) -> Any:
    """Handle Ctrl-C for the length of an apply: the first one only sets `_interrupted` and
    `_stopping` (so it can never land half-way through the scheduler's bookkeeping, say inside
    `pool.submit`: the driver loop takes it at its next turn), the second quits at once, with the
    workers silenced. Only from the main thread, and only over Python's default handler (someone
    else's handler is left alone); returns the handler to restore, or None."""
    if threading.current_thread() is not threading.main_thread():
        return None
    previous = signal.getsignal(signal.SIGINT)
    if previous is not signal.default_int_handler:
        return None

    def on_sigint(_signum: int, _frame: Any) -> None:
        if applier._interrupted.is_set():  # the second Ctrl-C: quit now
            applier._quiet.set()
            applier._stopping.set()
            raise KeyboardInterrupt
        applier._interrupted.set()
        applier._stopping.set()

    signal.signal(signal.SIGINT, on_sigint)
    return previous


def _check_executors() -> None:
    """Every (op, kind) the planner can emit has an executor, and no executor waits for a pair
    the planner never emits (checked at import, so a new op or kind cannot reach apply unrun)."""
    missing = sorted(f"{op.value} {kind.value}" for op, kind in PLANNED - EXECUTORS.keys())
    extra = sorted(f"{op.value} {kind.value}" for op, kind in EXECUTORS.keys() - PLANNED)
    if missing or extra:
        raise TypeError(
            f"apply's executor table does not match the planner: no executor for "
            f"{missing or 'nothing'}; executors for pairs never planned: {extra or 'none'}"
        )


_check_executors()


@dataclass
class _Task:
    """One executor call: the actions it carries, and the tasks that must finish first."""

    index: int
    actions: list[Action]
    deps: set[int] = field(default_factory=set)
    #: tasks it may start before, but must wait for part-way (see `_tasks`)
    gate: set[int] = field(default_factory=set)
    #: when it was handed to the pool (monotonic seconds), for the events' durations
    started: float = 0.0

    @property
    def label(self) -> str:
        if len(self.actions) == 1:
            return _describe(self.actions[0])
        return f"{self.actions[0].op.value} {len(self.actions)} {self.actions[0].kind.value}s"


def _call_units(group: list[Action]) -> list[list[Action]]:
    """Split a batchable group into the calls the API takes: concepts 128 a call, relations one
    call per subject concept, new workflows all in one call."""
    a = group[0]
    if a.kind is Kind.CONCEPT:
        return [group[i : i + CONCEPT_BATCH] for i in range(0, len(group), CONCEPT_BATCH)]
    if a.kind is Kind.RELATION:
        by_subject: dict[str, list[Action]] = {}
        for x in group:
            r = _desired(x, ConceptRelation) if x.desired is not None else _live(x, ConceptRelation)
            by_subject.setdefault(r.subject, []).append(x)
        return list(by_subject.values())
    return [group]


def _tasks(actions: list[Action]) -> list[_Task]:
    """The plan as a graph of executor calls. Actions at the same dependency depth that the API
    takes in one list share calls; every other action is its own task. A task depends on the
    tasks holding its actions' predecessors (`plan.action_predecessors`), and every delete task on
    every non-delete task (deletes run last)."""
    preds = action_predecessors(actions)
    depth: list[int] = [0] * len(actions)
    last_nondelete = 0
    for i in range(len(actions)):  # plan order is topological, so predecessors come first
        depth[i] = 1 + max((depth[p] for p in preds[i]), default=0)
        if actions[i].op is not Op.DELETE:
            last_nondelete = max(last_nondelete, depth[i])
    for i, a in enumerate(actions):  # the barrier: after every non-delete
        if a.op is Op.DELETE:
            depth[i] += last_nondelete
    groups: dict[tuple[int, Kind, str], list[int]] = {}
    units: list[list[int]] = []
    for i, a in enumerate(actions):
        if _batched(a):
            groups.setdefault((depth[i], a.kind, a.op), []).append(i)
        else:
            units.append([i])
    for idx in groups.values():
        by_action = {id(actions[i]): i for i in idx}
        units += [[by_action[id(x)] for x in unit] for unit in _call_units([actions[i] for i in idx])]
    units.sort(key=lambda u: u[0])  # plan order of each task's first action
    task_of = {i: n for n, unit in enumerate(units) for i in unit}
    tasks = [_Task(n, [actions[i] for i in unit]) for n, unit in enumerate(units)]
    nondelete = {task_of[i] for i, a in enumerate(actions) if a.op is not Op.DELETE}
    for t, unit in zip(tasks, units):
        for i in unit:
            t.deps |= {task_of[p] for p in preds[i]}
        if t.actions[0].op is Op.DELETE:
            t.deps |= nondelete
        t.deps.discard(t.index)
        first = t.actions[0]
        if first.op is Op.CREATE and isinstance(first.desired, Model):
            # Every model is created bare (PostModels names no concept: apply.models); only its
            # version names its concepts. So its PostModels runs alongside the concept batches
            # and waits for them only before PostModelVersions (`_await_gate`): one round trip less.
            t.gate = {d for d in t.deps if tasks[d].actions[0].kind is Kind.CONCEPT}
            t.deps -= t.gate
    return tasks


def apply_plan(
    client: Client,
    plan: Plan,
    *,
    progress: Progress | None = None,
    train_timeout_s: float = 600.0,
    poll_s: float = 0.5,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] | None = None,
    events: Emit | None = None,
    lease_check: Callable[[], None] | None = None,
) -> ApplyResult:
    return Applier(
        client,
        plan,
        progress=progress,
        train_timeout_s=train_timeout_s,
        poll_s=poll_s,
        clock=clock,
        sleep=sleep,
        events=events,
        lease_check=lease_check,
    ).run()


def _gist(line: str) -> str:
    """The start of a "cannot train yet" line, up to its status name ("model m cannot train yet
    (MODEL_TRAINING_NO_DATA, said above)."), so the closing error does not repeat the whole line."""
    import re

    m = re.match(r"(model \S+ cannot train yet \([A-Z_]+)", line)
    return f"{m.group(1)}, said above)." if m else line
