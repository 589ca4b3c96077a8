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
- Model versions: a `create` or `new_version` records the version it made; workflow pins written
  as ``new:<model_id>`` resolve to it. A trainable model's version must reach MODEL_TRAINED before
  any workflow is pointed at it (bounded wait, `train_timeout_s`; README "Trainable models").
- Trainable models follow the real API's flow: PostModels makes the model (its only version never
  trains: MODEL_UNTRAINED), PostModelVersions makes the version that trains on the app's labelled
  inputs. When training cannot succeed yet (no labelled data, or any other training failure),
  apply says so at once in one progress line naming the model's concepts, carries on with every
  action that does not depend on that model, defers the workflows pinned to its new version and
  the default-workflow change (and, to be safe, workflow and model deletes), and ends with an
  ApplyError (exit 1). The next apply, after the inputs are labelled, posts a new version.
- Non-idempotent writes (PostModelVersions) are sent without transport-level retries: a retry of a
  request whose response was lost could create a second version. Instead, after a failure we read
  the model's versions back and reuse one that already has the desired config.
- Ownership: every model and workflow we write carries `metadata[MARKER_KEY] = {"managed": true,
  "protect": bool, "keys": [the metadata keys the manifest manages]}`; the user's other metadata
  keys are never sent back changed (models: PATCH action "merge"; workflows: read, merge, overwrite).
- Overwrites (apps, workflows, concepts) may replace the whole object on the real API, so each
  sends back, as read, the fields the manifest does not manage (`APP_KEPT`, `WORKFLOW_KEPT`, the
  app's default workflow, a concept's metadata). DELETEs whose route binds no body send none.
- Progress goes to the `progress` callback (the CLI prints it on stderr); nothing here prints.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

from reconciler.api.client import Client
from reconciler.api.codecs import AppCodec, ConceptCodec, ModelCodec, RelationCodec, WorkflowCodec, metadata_with_marker
from reconciler.api.live import list_versions
from reconciler.api.training import MODEL_TRAINED, NEEDS_LABELS, TRAINING_FAILED, status_name, training_code
from reconciler.api.transport import api_path, app_path
from reconciler.core import modeltypes
from reconciler.core.errors import ApiError, ApplyError, ReconcilerError
from reconciler.core.state import (
    MARKER_KEY,
    App,
    Concept,
    ConceptRelation,
    Kind,
    Model,
    ModelRef,
    Resource,
    Workflow,
    read_marker,
)
from reconciler.core.status_codes import BY_NAME
from reconciler.planning.plan import PLANNED, Action, Op, Plan, action_predecessors, is_new_pin, new_pin, new_pin_model

CONCEPT_BATCH = 128
#: The training wait prints at most one line per this many seconds.
TRAIN_REPORT_EVERY_S = 10.0
# --- outcome recognition ---------------------------------------------------------------------
# Clarifai's error codes are per resource and not uniform, so an outcome is recognised by code AND
# by what the status says. Sources:
# - a duplicate concept is CONCEPTS_INVALID_REQUEST (40003), description "Invalid request", with
#   "duplicate" only in `details` (Clarifai/clarifai-python-grpc tests/client/test_concept_crud.py,
#   test_concept_post_get_patch); HTTP 400 is the REST gateway's code for an invalid request;
# - DATABASE_DUPLICATE_KEY (40010) "Object has a duplicate ID; another object with same ID already
#   exist" (Clarifai docs' status-code table); WORKFLOW_DUPLICATE (22100), INPUT_DUPLICATE (30100)
#   (clarifai-grpc status_code.proto); HTTP 409 wherever a gateway maps a conflict;
# - a concept the app does not have is CONN_DOES_NOT_EXIST (11101) "Resource does not exist"
#   (test_concept_crud.py, test_patching_public_concept_fails); MODEL_DOES_NOT_EXIST (21200),
#   WORKFLOW_DOES_NOT_EXIST (22102), INPUT_DOES_NOT_EXIST (30102) name themselves.
# 40003 is every invalid concept request, so by itself it means neither outcome.

#: Codes that mean "an object with this id already exists" whatever the text says. MIXED_STATUS
#: (10010) answers a batch in which some items failed: the create paths then read back and converge,
#: which is right whatever the cause, and re-raise anything that is not a duplicate.
DUPLICATE_CODES = frozenset(
    BY_NAME[name] for name in ("DATABASE_DUPLICATE_KEY", "WORKFLOW_DUPLICATE", "INPUT_DUPLICATE", "MIXED_STATUS")
)
#: Codes of "invalid request" families that mean a duplicate only when the status says so.
INVALID_REQUEST_CODES = frozenset(
    BY_NAME[name]
    for name in (
        "CONCEPTS_INVALID_REQUEST",
        "CONN_INVALID_REQUEST",
        "MODEL_INVALID_REQUEST",
        "WORKFLOW_INVALID_REQUEST",
        "INPUT_INVALID_REQUEST",
    )
)
#: Codes that mean "not found" whatever the text says.
NOT_FOUND_CODES = frozenset(
    BY_NAME[name] for name in ("CONN_DOES_NOT_EXIST", "MODEL_DOES_NOT_EXIST", "WORKFLOW_DOES_NOT_EXIST", "INPUT_DOES_NOT_EXIST")
)
_DUPLICATE_WORDS = ("duplicate", "already exist")
_NOT_FOUND_WORDS = ("does not exist", "not found", "doesn't exist")

Progress = Callable[[str], None]


# --- the executor table ----------------------------------------------------------------------

_Fn = Callable[["Applier", list[Action]], None]


class Executor(NamedTuple):
    """How apply carries out one (op, kind): `run(applier, actions)`; `batched` executors get
    every action of a dependency level that the API takes in one list (see `_tasks`)."""

    run: _Fn
    batched: bool


#: (op, kind) -> its executor; `executes` fills it, `_check_executors` checks it at import.
EXECUTORS: dict[tuple[Op, Kind], Executor] = {}


def executes(*pairs: tuple[Op, Kind], batched: bool = False) -> Callable[[_Fn], _Fn]:
    """Register the decorated method as the executor of each (op, kind) in `pairs`."""

    def register(fn: _Fn) -> _Fn:
        for pair in pairs:
            if pair in EXECUTORS:
                raise TypeError(f"two executors for {pair[0].value} {pair[1].value}")
            EXECUTORS[pair] = Executor(fn, batched)
        return fn

    return register


R = TypeVar("R", bound=Resource)


def _desired(a: Action, cls: type[R]) -> R:
    """The action's desired resource, which the planner always sets to a `cls` for this (op, kind)."""
    if not isinstance(a.desired, cls):
        raise ApplyError(f"{a.op.value} {a.address}: the plan has no desired {cls.__name__.lower()}")
    return a.desired


def _live(a: Action, cls: type[R]) -> R:
    """The action's live resource (a delete's, an update's), a `cls`."""
    if not isinstance(a.live, cls):
        raise ApplyError(f"{a.op.value} {a.address}: the plan has no live {cls.__name__.lower()}")
    return a.live


class TrainingNotReady(ApplyError):
    """A trainable model's new version ended without training (see `TRAINING_FAILED`). The
    applier defers what depends on the model instead of stopping."""

    def __init__(self, model_id: str, line: str) -> None:
        super().__init__(line)
        self.model_id = model_id
        self.line = line


def _status_text(err: ApiError) -> str:
    """The server's own words (status description and details), lower-cased: never the request
    path, which holds ids that may themselves contain such words."""
    body = err.details.get("response") if isinstance(err.details, dict) else None
    status = body.get("status") if isinstance(body, dict) else None
    details = status.get("details") if isinstance(status, dict) else ""
    return f"{err.description} {details if isinstance(details, str) else ''}".lower()


def _is_duplicate(err: ApiError) -> bool:
    if err.code in DUPLICATE_CODES or err.http_status == 409:
        return True
    if not any(w in _status_text(err) for w in _DUPLICATE_WORDS):
        return False
    return err.code in INVALID_REQUEST_CODES or (400 <= err.http_status < 500 and err.http_status != 429)


def _is_not_found(err: ApiError) -> bool:
    if err.code in NOT_FOUND_CODES or err.http_status == 404:
        return True
    return err.code in INVALID_REQUEST_CODES and any(w in _status_text(err) for w in _NOT_FOUND_WORDS)


@dataclass
class ApplyResult:
    done: list[str] = field(default_factory=list)
    writes: int = 0
    new_versions: dict[str, str] = field(default_factory=dict)


class Applier:
    def __init__(
        self,
        client: Client,
        plan: Plan,
        *,
        progress: Progress | None = None,
        train_timeout_s: float = 600.0,
        poll_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.client = client
        self.plan = plan
        self.progress = progress or (lambda _msg: None)
        self.train_timeout_s = train_timeout_s
        self.poll_s = poll_s
        self.clock = clock  # injectable, so tests drive the training wait without waiting
        self.sleep = sleep
        self.result = ApplyResult()
        #: model id -> the one line saying why its new version cannot be used yet
        self.untrained: dict[str, str] = {}
        #: actions left for a later apply because they depend on an untrained model
        self.deferred: list[str] = []
        self._deferred_workflows: set[str] = set()
        self._trained_ok: set[str] = set()  # reused versions seen trained in this run
        self._owner_id: str | None = None  # resolved on first need, see `_owner`
        self._lock = threading.Lock()
        self._app_sent: dict[str, Any] | None = None  # the app object as this apply last wrote it
        self._gates: dict[str, list[threading.Event]] = {}  # model id -> tasks to await part-way
        self._stopping = threading.Event()
        user = plan.user_id or "me"
        self.base = app_path(plan.app_id, user)
        self.apps_path = api_path("v2", "users", user, "apps")

    # --- driver ----------------------------------------------------------------------------
    def run(self) -> ApplyResult:
        """Run the plan's tasks (see `_tasks`) on a thread pool, each as soon as every task it
        depends on is done; the client's rate limiter still spaces every request. On the first
        failure (or Ctrl-C) nothing new starts, the requests already in flight are awaited, and
        the report names exactly the actions whose tasks finished."""
        actions = list(self.plan.actions)
        tasks = _tasks(actions)
        total = len(actions)
        waiting_on = {t.index: set(t.deps) for t in tasks}
        dependents: dict[int, list[int]] = {t.index: [] for t in tasks}
        for t in tasks:
            for d in t.deps:
                dependents[d].append(t.index)
        finished: set[int] = set()
        stop: tuple[_Task, BaseException] | None = None
        workers = self.client.max_workers
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="apply")
        running: dict[Future[None], _Task] = {}
        ready = [t for t in tasks if not t.deps]
        finished_event = {t.index: threading.Event() for t in tasks}
        self._gates = {t.actions[0].id: [finished_event[g] for g in t.gate] for t in tasks if t.gate}
        skipped: set[int] = set()  # tasks whose every action was deferred
        n = 0
        try:
            while ready or running:
                while stop is None and ready:
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
                    running[pool.submit(self._execute, t)] = t
                ready = []
                if stop is not None:
                    self._stopping.set()  # gated tasks waiting part-way give up
                if not running:
                    continue
                try:
                    done_now, _ = wait(running, return_when=FIRST_COMPLETED)
                except KeyboardInterrupt as interrupt:
                    if stop is not None and isinstance(stop[1], KeyboardInterrupt):
                        raise  # a second Ctrl-C: stop waiting for the requests in flight
                    self.progress("  interrupted: waiting for the requests in flight (Ctrl-C again to quit now)")
                    stop = stop or (min(running.values(), key=lambda t: t.index), interrupt)
                    continue
                for fut in sorted(done_now, key=lambda f: running[f].index):
                    t = running.pop(fut)
                    err = fut.exception()
                    if isinstance(err, TrainingNotReady):
                        # the model itself was written (created / its version posted); what uses it waits
                        self.untrained[err.model_id] = err.line
                        self.progress(err.line)
                    elif err is not None:
                        stop = stop or (t, err)  # the first failure is the one reported
                        continue
                    finished.add(t.index)
                    finished_event[t.index].set()
                    n += len(t.actions)
                    self.result.done.extend(_describe(a) for a in t.actions)
                    self.progress(f"[{n}/{total}] {t.label}: done")
                    ready.extend(self._release(t, tasks, waiting_on, dependents))
        finally:
            self._stopping.set()
            pool.shutdown(wait=False, cancel_futures=True)
        if stop is not None:
            task, err = stop
            if not isinstance(err, (ReconcilerError, KeyboardInterrupt)):
                raise err
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
            ) from None
        if self.untrained:
            raise ApplyError(
                f"apply did not finish: {' '.join(self.untrained.values())} Left for a later apply: "
                f"{', '.join(self.deferred) or 'nothing else'}. {len(self.result.done)} of {total} actions were "
                f"applied. Label the inputs, then run apply again.",
                done=self.result.done,
                not_done=list(self.deferred),
            )
        return self.result

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
            if a.kind is Kind.WORKFLOW and a.op is not Op.DELETE:
                waits = sorted({m for _, p in a.pins if (m := new_pin_model(p))} & set(self.untrained))
                if waits:
                    self._defer(a, f"waits for model {', '.join(waits)} to train")
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

    def _defer(self, a: Action, why: str) -> None:
        self.deferred.append(_describe(a))
        self.progress(f"  deferred: {_describe(a)} ({why})")

    def _execute(self, task: _Task) -> None:
        a = task.actions[0]
        EXECUTORS[a.op, a.kind].run(self, task.actions)

    # --- HTTP helpers ----------------------------------------------------------------------
    def _at(self, *segments: str) -> str:
        """A path under the app; ids are encoded one segment each (`client.api_path`)."""
        return self.base + api_path(*segments)

    def _write(self, method: str, path: str, body: dict[str, Any] | None, *, retry: bool = True) -> dict[str, Any]:
        """One write. `body` None: no body at all -- DeleteModel, DeleteModelVersion and
        DeleteWorkflow bind no body (clarifai-grpc's `google.api.http` rules), and a gateway may
        refuse one (quirk delete-body-refused)."""
        with self._lock:
            self.result.writes += 1
        senders: dict[str, Callable[..., dict[str, Any]]] = {
            "post": self.client.post,
            "patch": self.client.patch,
            "delete": self.client.delete,
        }
        fn = senders[method]
        if retry:
            return fn(path, body)
        return fn(path, body, retry=False)

    # --- app -------------------------------------------------------------------------------
    @executes((Op.CREATE, Kind.APP))
    def _create_app(self, actions: list[Action]) -> None:
        for a in actions:
            self._create_one_app(a)

    def _create_one_app(self, a: Action) -> None:
        app = _desired(a, App)
        sent = AppCodec.to_api(app)
        body = {"apps": [sent]}
        try:
            self._write("post", self.apps_path, body)
        except ApiError as err:
            if not _is_duplicate(err):
                raise
            self._update_one_app(a)
            return
        self._app_sent = sent

    def _live_app(self, a: Action) -> dict[str, Any]:
        """The app as the API last showed it: what this apply wrote to it, else the plan's live
        read, else (a plan without one, e.g. a golden case) a fresh GetApp."""
        if self._app_sent is not None:
            return self._app_sent
        if isinstance(a.live, App) and a.live.raw:
            return a.live.raw
        return self.client.get(self.base).get("app", {})

    @executes((Op.UPDATE, Kind.APP))
    def _update_app(self, actions: list[Action]) -> None:
        for a in actions:
            self._update_one_app(a)

    def _update_one_app(self, a: Action) -> None:
        app = _desired(a, App)
        raw = self._live_app(a)
        meta = _merged_metadata(raw.get("metadata") or {}, app.metadata, AppCodec.to_api(app)["metadata"])
        sent = {**_kept_app_fields(raw), **AppCodec.to_api(app), "metadata": meta}
        body = {"apps": [sent], "action": "overwrite", "metadata_action": {"op": "overwrite"}}
        self._write("patch", self.apps_path, body)
        self._app_sent = {**raw, **sent}

    @executes((Op.SET_DEFAULT, Kind.APP))
    def _set_default_app(self, actions: list[Action]) -> None:
        for a in actions:
            self._set_default_one_app(a)

    def _set_default_one_app(self, a: Action) -> None:
        app = _desired(a, App)
        raw = self._live_app(a)
        kept = {k: v for k, v in _kept_app_fields(raw).items() if k not in ("default_workflow", "default_workflow_id")}
        for k in ("description", "metadata"):  # the app update (if any) ran before: keep what it wrote
            if raw.get(k) is not None:
                kept[k] = raw[k]
        managed = AppCodec.to_api(app, with_default=True)
        body: dict[str, Any] = {
            "apps": [{**kept, "id": app.id, "default_workflow_id": managed["default_workflow_id"]}],
            "action": "overwrite",
        }
        if "metadata" in kept:
            body["metadata_action"] = {"op": "overwrite"}
        self._write("patch", self.apps_path, body)

    # --- concepts (batched) ----------------------------------------------------------------
    @executes((Op.CREATE, Kind.CONCEPT), batched=True)
    def _create_concept(self, group: list[Action]) -> None:
        concepts = [_desired(a, Concept) for a in group]
        for i in range(0, len(concepts), CONCEPT_BATCH):
            batch = concepts[i : i + CONCEPT_BATCH]
            try:
                self._write("post", self._at("concepts"), {"concepts": [ConceptCodec.to_api(c) for c in batch]})
            except ApiError as err:
                if not _is_duplicate(err):
                    raise
                self._converge_concepts(batch)

    def _converge_concepts(self, batch: list[Concept]) -> None:
        """Some of the batch exist already (an earlier run was cut off): create the rest one call,
        overwrite the existing ones whose fields differ."""
        existing = {c["id"]: c for c in self.client.list_all(self._at("concepts"), "concepts")}
        missing = [c for c in batch if c.id not in existing]
        if missing:
            self._write("post", self._at("concepts"), {"concepts": [ConceptCodec.to_api(c) for c in missing]})
        differ = [c for c in batch if c.id in existing and ConceptCodec.differs(c, existing[c.id])]
        if differ:
            self._write(
                "patch",
                self._at("concepts"),
                {"concepts": [ConceptCodec.to_api(c, existing[c.id]) for c in differ], "action": "overwrite"},
            )

    @executes((Op.UPDATE, Kind.CONCEPT), batched=True)
    def _update_concept(self, group: list[Action]) -> None:
        # PatchConcepts takes only "overwrite", which may replace the whole concept: send back the
        # user's metadata, which the manifest does not manage (quirk patch-overwrite-replaces), as
        # the live read returned it (no second listing); read them again only if that is missing.
        existing = {a.id: a.live.raw for a in group if isinstance(a.live, Concept) and a.live.raw}
        if len(existing) < len(group):
            existing = {str(c.get("id", "")): c for c in self.client.list_all(self._at("concepts"), "concepts")}
        concepts = [_desired(a, Concept) for a in group]
        for i in range(0, len(concepts), CONCEPT_BATCH):
            batch = concepts[i : i + CONCEPT_BATCH]
            self._write(
                "patch",
                self._at("concepts"),
                {"concepts": [ConceptCodec.to_api(c, existing.get(c.id)) for c in batch], "action": "overwrite"},
            )

    # --- relations (one call per subject) --------------------------------------------------
    @executes((Op.CREATE, Kind.RELATION), batched=True)
    def _create_concept_relation(self, group: list[Action]) -> None:
        by_subject: dict[str, list[ConceptRelation]] = {}
        for a in group:
            r = _desired(a, ConceptRelation)
            by_subject.setdefault(r.subject, []).append(r)
        for subject, rels in by_subject.items():
            path = self._at("concepts", subject, "relations")
            try:
                self._write("post", path, {"concept_relations": [RelationCodec.to_api(r) for r in rels]})
            except ApiError as err:
                if not _is_duplicate(err):
                    raise
                # Some exist: create only the ones still missing.
                live = self.client.list_all(path, "concept_relations")
                app = self.plan.app_id
                have = {RelationCodec.signature(x, app) for x in live}
                rest = [r for r in rels if RelationCodec.signature(RelationCodec.to_api(r, with_subject=True), app) not in have]
                if rest:
                    self._write("post", path, {"concept_relations": [RelationCodec.to_api(r) for r in rest]})

    @executes((Op.DELETE, Kind.RELATION), batched=True)
    def _delete_concept_relation(self, group: list[Action]) -> None:
        by_subject: dict[str, list[ConceptRelation]] = {}
        for a in group:
            r = _live(a, ConceptRelation)
            if r.server_id:
                by_subject.setdefault(r.subject, []).append(r)
        for subject, rels in by_subject.items():
            try:
                self._write("delete", self._at("concepts", subject, "relations"), {"ids": [r.server_id for r in rels]})
            except ApiError as err:
                if not _is_not_found(err):
                    raise
                # Gone already (an earlier run), or stored on its other side: a listing may show a
                # relation from its object's side (quirk relation-inverse-listing). One at a time.
                for r in rels:
                    self._delete_relation_from_either_side(r)

    def _delete_relation_from_either_side(self, r: ConceptRelation) -> None:
        sides = [r.subject] + ([r.object.id] if not r.object.external else [])
        for side in sides:
            try:
                self._write("delete", self._at("concepts", side, "relations"), {"ids": [r.server_id]})
                return
            except ApiError as err:
                if not _is_not_found(err):
                    raise

    # --- models ----------------------------------------------------------------------------
    @executes((Op.CREATE, Kind.MODEL))
    def _create_model(self, actions: list[Action]) -> None:
        for a in actions:
            self._create_one_model(_desired(a, Model))

    def _create_one_model(self, m: Model) -> None:
        api = ModelCodec.version_to_api(m.type, self._resolve_config(m))
        model_json = ModelCodec.to_api(m)
        # A trainable model is created bare, as clarifai-python-grpc `tests/client/test_model_crud.py`
        # and the SDK's workflow loader do: its configuration goes to the PostModelVersions that
        # trains, so the never-trained version PostModels makes holds none (no twin of the real one).
        if _trainable(m):
            api = {}
        if "output_info" in api:
            model_json["output_info"] = api["output_info"]
        if "input_info" in api:
            model_json["model_version"] = {"input_info": api["input_info"], "output_info": api.get("output_info", {})}
        try:
            resp = self._write("post", self._at("models"), {"models": [model_json]}, retry=False)
            version = (resp.get("model") or {}).get("model_version") or {}
            if _trainable(m):
                # PostModels only makes the model (its version never trains: Clarifai/docs
                # `code_output_examples/create_model.js` answers MODEL_UNTRAINED); training is
                # PostModelVersions (docs `custom-model-walkthrough.md` "Train the model";
                # clarifai-python-grpc `tests/client/test_model_crud.py`).
                self._await_gate(m.id)
                version = self._ensure_version(m, look_first=False)
        except ApiError as err:
            if not (_is_duplicate(err) or err.http_status == 0 or err.http_status >= 500):
                raise
            # Created by a run whose answer was lost, or by someone else: adopt what is there.
            self._await_gate(m.id)
            version = self._ensure_version(m)
            self._patch_model_fields(m)
        vid = version.get("id", "")
        self.result.new_versions[m.id] = vid
        self._await_trained(m, version)

    def _await_gate(self, model_id: str) -> None:
        """Wait until the concept batches this model's training version names have been created
        (see `_tasks`); give up if the apply is stopping (one of them failed, or Ctrl-C)."""
        for event in self._gates.get(model_id, ()):
            while not event.wait(0.05):
                if self._stopping.is_set():
                    raise ApplyError(
                        f"model {model_id}: not trained: apply stopped before the concepts it trains on were created"
                    )

    @executes((Op.UPDATE, Kind.MODEL), (Op.ADOPT, Kind.MODEL))
    def _update_model(self, actions: list[Action]) -> None:
        for a in actions:
            self._patch_model_fields(_desired(a, Model), _live(a, Model))

    def _patch_model_fields(self, m: Model, live: Model | None = None) -> None:
        sent = {k: v for k, v in ModelCodec.to_api(m).items() if k != "model_type_id"}
        body = {"models": [sent], "action": "merge"}
        self._write("patch", self._at("models"), body)
        gone = sorted(set(live.metadata) - set(m.metadata)) if live is not None else []
        if gone:
            self._write(
                "patch", self._at("models"), {"models": [{"id": m.id, "metadata": {k: True for k in gone}}], "action": "remove"}
            )

    @executes((Op.NEW_VERSION, Kind.MODEL))
    def _new_version_model(self, actions: list[Action]) -> None:
        for a in actions:
            self._new_version_one_model(_desired(a, Model))

    def _new_version_one_model(self, m: Model) -> None:
        # The plan saw no version with this config, so post at once; `_settle_version` then
        # resolves a race with another apply that posted the same config meanwhile.
        version = self._ensure_version(m, look_first=False)
        self.result.new_versions[m.id] = version.get("id", "")
        self._await_trained(m, version)

    def _ensure_version(self, m: Model, *, look_first: bool = True) -> dict[str, Any]:
        """Reuse the newest version whose config equals the desired one, else post a new one.
        The post is sent without retries; on a lost answer we look again before giving up."""
        want = self._resolve_config(m)
        if look_first:
            found = self._find_version(m, want)
            if found is not None:
                return found
        body = {"model_versions": [ModelCodec.version_to_api(m.type, want)]}
        try:
            resp = self._write("post", self._at("models", m.id, "versions"), body, retry=False)
        except ApiError as err:
            if err.http_status and err.http_status < 500 and err.http_status != 429:
                raise
            found = self._find_version(m, want)  # did the lost request commit?
            if found is not None:
                return found
            resp = self._write("post", self._at("models", m.id, "versions"), body, retry=False)
        posted = (resp.get("model") or {}).get("model_version") or {}
        return self._settle_version(m, want, posted)

    def _settle_version(self, m: Model, want: dict[str, Any], posted: dict[str, Any]) -> dict[str, Any]:
        """Two applies running at once can both post the same config (each checked first and saw
        none). Rule: the OLDEST version with the desired config wins; a poster that finds an
        older twin of its fresh version deletes its own (nothing points at it yet) and uses the
        twin. Each racer checks after its own post committed, so exactly one twin survives."""
        pid = posted.get("id", "")
        versions = list_versions(self.client, self.base, m.id, m.type)  # newest first, configs complete
        twins = [v for v in versions if modeltypes.from_api(m.type, v) == want and self._usable(m, v)]
        if not pid or not twins or twins[-1].get("id") == pid:
            return posted
        if any(v.get("id") == pid for v in twins):
            try:
                self._write("delete", self._at("models", m.id, "versions", pid), None)
            except ApiError as err:
                if not _is_not_found(err):
                    raise
            self.progress(f"  model/{m.id}: another apply made the same version first; using {twins[-1].get('id')}")
        return twins[-1]

    def _find_version(self, m: Model, want: dict[str, Any]) -> dict[str, Any] | None:
        try:
            versions = list_versions(self.client, self.base, m.id, m.type)  # newest first, configs complete
        except ApiError as err:
            if _is_not_found(err):
                return None
            raise
        for v in versions:  # newest first
            if modeltypes.from_api(m.type, v) == want and self._usable(m, v):
                return v
        return None

    @staticmethod
    def _usable(m: Model, v: dict[str, Any]) -> bool:
        """A trainable model's version that never trained or failed is no version to reuse (a
        workflow cannot use it); one trained or still training is. Operator versions always are."""
        if not _trainable(m):
            return True
        return training_code((v.get("status") or {}).get("code")) not in TRAINING_FAILED

    def _await_trained(self, m: Model, version: dict[str, Any]) -> None:
        """Wait until the version is MODEL_TRAINED. Prints at most one line per
        TRAIN_REPORT_EVERY_S (elapsed time and status name). A version that will never train
        raises TrainingNotReady at once; one still training after `train_timeout_s` stops apply."""
        if not _trainable(m):
            return
        vid = version.get("id", "")
        start = self.clock()
        last_report: float | None = None
        status = version.get("status") or {}
        while True:
            code = training_code(status.get("code"))
            if code == MODEL_TRAINED:
                return
            elapsed = self.clock() - start
            if code in TRAINING_FAILED:
                raise TrainingNotReady(m.id, self._not_ready_line(m, vid, code, str(status.get("description") or "")))
            if elapsed >= self.train_timeout_s:
                raise ApplyError(
                    f"model {m.id}: version {vid} not trained after {elapsed:.0f}s "
                    f"({status_name(code)}); workflows were not pointed at it. Training "
                    f"may still finish: run apply again later, or give it longer with "
                    f"--train-timeout SECONDS"
                )
            if last_report is None or elapsed - last_report >= TRAIN_REPORT_EVERY_S:
                last_report = elapsed
                self.progress(
                    f"  model/{m.id}: training version {vid}: {status_name(code)} "
                    f"({elapsed:.0f}s elapsed, timeout {self.train_timeout_s:.0f}s)"
                )
            self.sleep(min(self.poll_s, max(0.0, self.train_timeout_s - elapsed)))
            v = self.client.get(self._at("models", m.id, "versions", vid)).get("model_version") or {}
            status = v.get("status") or {}

    def _not_ready_line(self, m: Model, vid: str, code: int, description: str) -> str:
        what = status_name(code) + (f' "{description}"' if description else "")
        concepts = modeltypes.training_concepts(m.type, self._resolve_config(m))
        if code in NEEDS_LABELS:
            need = (
                f"it trains on inputs labelled with its concepts ({_few(concepts)}): add inputs with "
                f"those concepts or SUCCESS annotations, at least one per concept"
                if concepts
                else "it trains on labelled inputs, and it names no concepts"
            )
            return f"model {m.id} cannot train yet ({what}): {need}."
        return f"model {m.id}: version {vid} failed to train ({what})."

    @executes((Op.DELETE, Kind.MODEL))
    def _delete_model(self, actions: list[Action]) -> None:
        for a in actions:
            try:
                self._write("delete", self._at("models", a.id), None)
            except ApiError as err:
                if not _is_not_found(err):
                    raise

    def _resolve_config(self, m: Model) -> dict[str, Any]:
        """Fill the annotation writer's default user (the app owner) if the manifest left it out."""
        cfg = dict(m.config)
        if modeltypes.canonical_type(m.type) == modeltypes.WRITER and not cfg.get("annotation_user_id"):
            owner = self._owner()
            if owner:
                cfg["annotation_user_id"] = owner
        return cfg

    def _owner(self) -> str | None:
        """The app owner's user id: the plan's, else (a PAT with no user id given, planned before
        the app existed) the app's `user_id` as the API reports it -- the same source the next
        plan's live read uses, so a writer created here does not show up as changed there."""
        if self.plan.user_id:
            return self.plan.user_id
        if self._owner_id is None:
            try:
                raw = self.client.get(self.base).get("app") or {}
            except ApiError:
                raw = {}
            self._owner_id = str(raw.get("user_id") or "") if isinstance(raw, dict) else ""
        return self._owner_id or None

    # --- workflows -------------------------------------------------------------------------
    def _workflow_json(self, a: Action, metadata: dict[str, Any]) -> dict[str, Any]:
        w = _desired(a, Workflow)
        pins = dict(a.pins)
        versions: dict[str, str] = {}
        for n in w.nodes:
            if n.model.external:
                continue
            pin = pins.get(n.id, "")
            if pin and not is_new_pin(pin) and any(c.path == f"nodes.{n.id}.model.version" for c in a.changes):
                self._await_reused_version(n.model.id, pin)
            versions[n.id] = self._resolved_pin(n.id, n.model, pins)
        return WorkflowCodec.to_api(w, metadata, versions)

    @staticmethod
    def _kept_workflow_fields(raw: dict[str, Any]) -> dict[str, Any]:
        """Workflow fields the manifest does not manage, to send back with an overwrite."""
        return {k: raw[k] for k in WORKFLOW_KEPT if raw.get(k) is not None}

    def _await_reused_version(self, model_id: str, version_id: str) -> None:
        """A node newly pinned to an existing version of a trainable model: the plan reuses
        versions still queued or training (an earlier apply may have stopped at its timeout), so
        wait for this one too before the workflow points at it."""
        m = self.plan.desired.model(model_id)
        if m is None or not _trainable(m) or version_id in self._trained_ok:
            return
        v = self.client.get(self._at("models", model_id, "versions", version_id)).get("model_version") or {}
        try:
            self._await_trained(m, {**v, "id": version_id})
        except TrainingNotReady as err:  # it failed after the plan was made: this workflow cannot go on
            raise ApplyError(err.line) from None
        self._trained_ok.add(version_id)

    def _resolved_pin(self, node_id: str, ref: ModelRef, pins: dict[str, str]) -> str:
        """The version a node on a local model is pinned to: a new version this apply made
        (``new:<model>``) resolved to its id."""
        pin = pins.get(node_id) or ref.version or new_pin(ref.id)
        model_id = new_pin_model(pin)
        if model_id is not None:
            if model_id not in self.result.new_versions:
                raise ApplyError(f"node {node_id}: no version of model {model_id} was made by this apply")
            pin = self.result.new_versions[model_id]
        return pin

    @executes((Op.CREATE, Kind.WORKFLOW), batched=True)
    def _create_workflow(self, group: list[Action]) -> None:
        """One PostWorkflows for the whole group; if some exist already (an earlier run was cut
        off), fall back to one call each: create the missing, overwrite the existing."""
        body = {"workflows": [self._workflow_json(a, _marked(_desired(a, Workflow))) for a in group]}
        try:
            self._write("post", self._at("workflows"), body)
            return
        except ApiError as err:
            if not _is_duplicate(err):
                raise
        for a in group:
            try:
                self._write(
                    "post", self._at("workflows"), {"workflows": [self._workflow_json(a, _marked(_desired(a, Workflow)))]}
                )
            except ApiError as err:
                if not _is_duplicate(err):
                    raise
                self._overwrite_workflow(a)

    @executes((Op.UPDATE, Kind.WORKFLOW), (Op.ADOPT, Kind.WORKFLOW), (Op.REPOINT, Kind.WORKFLOW))
    def _update_workflow(self, actions: list[Action]) -> None:
        for a in actions:
            self._overwrite_workflow(a)

    def _overwrite_workflow(self, a: Action) -> None:
        w = _desired(a, Workflow)
        # the plan's live read has the workflow as it is; a plan without one (a golden case, a
        # create that met an existing workflow) reads it now
        raw = (
            a.live.raw
            if isinstance(a.live, Workflow) and a.live.raw
            else self.client.get(self._at("workflows", w.id)).get("workflow") or {}
        )
        live_meta = raw.get("metadata") or {}
        meta = _merged_metadata(live_meta, w.metadata, _marked(w))
        body = {"workflows": [{**self._kept_workflow_fields(raw), **self._workflow_json(a, meta)}], "action": "overwrite"}
        self._write("patch", self._at("workflows"), body)

    @executes((Op.DELETE, Kind.WORKFLOW))
    def _delete_workflow(self, actions: list[Action]) -> None:
        for a in actions:
            try:
                self._write("delete", self._at("workflows", a.id), None)
            except ApiError as err:
                if not _is_not_found(err):
                    raise


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


# --- helpers ---------------------------------------------------------------------------------


def _trainable(m: Model) -> bool:
    return modeltypes.canonical_type(m.type) in modeltypes.TRAINABLE_TYPES


def _few(ids: list[str], limit: int = 8) -> str:
    return ", ".join(ids[:limit]) + (f", and {len(ids) - limit} more" if len(ids) > limit else "")


def _batched(a: Action) -> bool:
    """Actions whose API call takes a list: they share calls (see `_tasks`)."""
    return EXECUTORS[a.op, a.kind].batched


@dataclass
class _Task:
    """One executor call: the actions it carries, and the tasks that must finish first."""

    index: int
    actions: list[Action]
    deps: set[int] = field(default_factory=set)
    #: tasks it may start before, but must wait for part-way (see `_tasks`)
    gate: set[int] = field(default_factory=set)

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
        if first.op is Op.CREATE and isinstance(first.desired, Model) and _trainable(first.desired):
            # A trainable model is created bare (PostModels names no concept); only the version
            # that trains names its concepts. So its PostModels runs alongside the concept batches
            # and waits for them only before PostModelVersions (`_await_gate`): one round trip less.
            t.gate = {d for d in t.deps if tasks[d].actions[0].kind is Kind.CONCEPT}
            t.deps -= t.gate
    return tasks


def _describe(a: Action) -> str:
    return f"{a.op.value} {a.kind.value}/{a.id}"


#: App / workflow fields apply never manages but sends back as read: PatchApps' and
#: PatchWorkflows' "overwrite" may replace the whole object (Clarifai/docs
#: docs/api-guide/advanced-topics/patching.md: overwrite replaces the object with what is sent,
#: and recommends sending the whole object read back; quirk patch-overwrite-replaces), and the apps' only
#: other action, "remove", cannot set fields. Server-owned fields (ids, timestamps, counts) are
#: not sent.
APP_KEPT = ("name", "notes", "image", "visibility", "default_language", "sample_ms", "is_template", "embeddings_storage")
WORKFLOW_KEPT = ("notes", "image", "visibility", "use_cases", "check_consents")


def _kept_app_fields(raw: dict[str, Any]) -> dict[str, Any]:
    """The app's unmanaged fields and its current default workflow, to send with an overwrite."""
    out = {k: raw[k] for k in APP_KEPT if raw.get(k) is not None}
    dw = raw.get("default_workflow")
    if isinstance(dw, dict) and dw.get("id"):  # a reference, not the whole workflow GetApp may show
        out["default_workflow"] = {k: dw[k] for k in ("id", "user_id", "app_id") if dw.get(k)}
    elif raw.get("default_workflow_id"):
        out["default_workflow_id"] = raw["default_workflow_id"]
    return out


def _marked(w: Workflow) -> dict[str, Any]:
    """A workflow's metadata as written: the manifest's keys and the ownership marker."""
    return metadata_with_marker(w.metadata, w.protect)


def _merged_metadata(live_raw: dict[str, Any], desired: dict[str, Any], with_marker: dict[str, Any]) -> dict[str, Any]:
    """The user's own keys stay; keys the manifest managed before but dropped now go; the
    manifest's keys and the marker are written."""
    previously_managed = set(read_marker(live_raw)[2])
    keep = {k: v for k, v in live_raw.items() if k != MARKER_KEY and k not in previously_managed}
    return {**keep, **with_marker}


def apply_plan(
    client: Client,
    plan: Plan,
    *,
    progress: Progress | None = None,
    train_timeout_s: float = 600.0,
    poll_s: float = 0.5,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> ApplyResult:
    return Applier(
        client, plan, progress=progress, train_timeout_s=train_timeout_s, poll_s=poll_s, clock=clock, sleep=sleep
    ).run()
