"""The executors' common ground: the `(Op, Kind) -> executor` table, how an API outcome is
recognised (duplicate, not found), the applier's state, its HTTP helpers, and the helpers the
executors of several kinds share. See `apply.scheduler` for the contract of apply as a whole."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

from reconciler.api.client import Client
from reconciler.api.codecs import metadata_with_marker
from reconciler.api.status import DUPLICATE_WORDS, NOT_FOUND_WORDS, server_words
from reconciler.api.transport import api_path, app_path
from reconciler.apply.events import Emit
from reconciler.core import modeltypes
from reconciler.core.errors import ApiError, ApplyError
from reconciler.core.state import (
    MARKER_KEY,
    NEW_TASK,
    Kind,
    Model,
    Resource,
    Workflow,
    read_marker,
)
from reconciler.core.status_codes import BY_NAME
from reconciler.planning.actions import Action, Op, Plan

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

Progress = Callable[[str], None]


def _no_events(type: str, **fields: Any) -> None:  # noqa: A002 - `Emit`'s signature
    pass


# --- the executor table ----------------------------------------------------------------------

_Fn = Callable[[Any, list[Action]], None]


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


def _says(err: ApiError, words: tuple[str, ...]) -> bool:
    """Whether the server's own words (never the request path) hold one of `words`: as the
    client found them before redacting the PAT (`ApiError.said`), else read from the error."""
    if err.said is not None:
        return any(w in err.said for w in words)
    text = server_words(err.description, err.details.get("response") if isinstance(err.details, dict) else None)
    return any(w in text for w in words)


def _is_duplicate(err: ApiError) -> bool:
    if err.code in DUPLICATE_CODES or err.http_status == 409:
        return True
    if not _says(err, DUPLICATE_WORDS):
        return False
    return err.code in INVALID_REQUEST_CODES or (400 <= err.http_status < 500 and err.http_status != 429)


def _is_not_found(err: ApiError) -> bool:
    if err.code in NOT_FOUND_CODES or err.http_status == 404:
        return True
    return err.code in INVALID_REQUEST_CODES and _says(err, NOT_FOUND_WORDS)


@dataclass
class ApplyResult:
    done: list[str] = field(default_factory=list)
    writes: int = 0
    new_versions: dict[str, str] = field(default_factory=dict)
    #: task manifest id -> the API id of the task this apply created
    new_tasks: dict[str, str] = field(default_factory=dict)


class ExecutorBase:
    """The applier's state and HTTP helpers; each kind's executors extend it (`apply.app`,
    `apply.concepts`, `apply.models`, `apply.workflows`) and `scheduler.Applier` runs them."""

    def __init__(
        self,
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
    ):
        self.client = client
        self.plan = plan
        #: raises (`LeaseLost`) once the app lease is lost: called before each task is started
        self.lease_check = lease_check
        self._say = progress or (lambda _msg: None)
        #: structured events (`apply.events`: `apply --json`); none by default
        self.emit: Emit = events or _no_events
        self.train_timeout_s = train_timeout_s
        self.poll_s = poll_s
        self.clock = clock  # injectable, so tests drive the training wait without waiting
        self.sleep = sleep  # None: wait on `_stopping`, so a wait ends at once when apply stops
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
        #: set on the first failure or Ctrl-C: nothing new starts, and every wait (a training
        #: poll, a gate, a retry's backoff) ends at once
        self._stopping = threading.Event()
        #: set on a second Ctrl-C: apply has given up; workers still unwinding print nothing more
        self._quiet = threading.Event()
        #: set by the first Ctrl-C (`scheduler._catch_sigint`)
        self._interrupted = threading.Event()
        user = plan.user_id or "me"
        self.base = app_path(plan.app_id, user)
        self.apps_path = api_path("v2", "users", user, "apps")

    def progress(self, line: str) -> None:
        """One progress line, unless apply has already given up (`_quiet`)."""
        if not self._quiet.is_set():
            self._say(line)

    def _pause(self, seconds: float) -> None:
        """Wait `seconds` between training polls: on the stop event (so the wait ends the moment
        apply stops), or with the injected `sleep` in tests."""
        if self.sleep is None:
            self._stopping.wait(seconds)
        else:
            self.sleep(seconds)

    def _defer(self, a: Action, why: str) -> None:
        self.deferred.append(_describe(a))
        self.progress(f"  deferred: {_describe(a)} ({why})")
        self.emit("action_deferred", address=a.address, reason=why)

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

    def _resolve_config(self, m: Model) -> dict[str, Any]:
        """Fill the annotation writer's default user (the app owner) if the manifest left it out,
        and put the id of the task this apply created where the plan wrote ``new:task/<id>``."""
        cfg = dict(m.config)
        if modeltypes.canonical_type(m.type) == modeltypes.WRITER and not cfg.get("annotation_user_id"):
            owner = self._owner()
            if owner:
                cfg["annotation_user_id"] = owner
        tid = cfg.get("task_id")
        if isinstance(tid, str) and tid.startswith(NEW_TASK):
            key = tid[len(NEW_TASK) :]
            if key not in self.result.new_tasks:
                raise ApplyError(f"model {m.id}: no task {key} was made by this apply")
            cfg["task_id"] = self.result.new_tasks[key]
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


# --- helpers ---------------------------------------------------------------------------------


def _trainable(m: Model) -> bool:
    return modeltypes.canonical_type(m.type) in modeltypes.TRAINABLE_TYPES


def _few(ids: list[str], limit: int = 8) -> str:
    return ", ".join(ids[:limit]) + (f", and {len(ids) - limit} more" if len(ids) > limit else "")


def _batched(a: Action) -> bool:
    """Actions whose API call takes a list: they share calls (see `_tasks`)."""
    return EXECUTORS[a.op, a.kind].batched


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
    """The app's unmanaged fields and its current default workflow, to send with an overwrite:
    each default-workflow field the answer showed (the object as a reference, not the whole
    workflow GetApp may show), so a server that honours only one of them keeps it either way."""
    out = {k: raw[k] for k in APP_KEPT if raw.get(k) is not None and k != "image"}
    image = image_to_send(raw.get("image"))
    if image is not None:
        out["image"] = image
    dw = raw.get("default_workflow")
    if isinstance(dw, dict) and dw.get("id"):
        out["default_workflow"] = {k: dw[k] for k in ("id", "user_id", "app_id") if dw.get(k)}
    if raw.get("default_workflow_id"):
        out["default_workflow_id"] = raw["default_workflow_id"]
    return out


def image_to_send(image: Any) -> dict[str, str] | None:
    """An app's or workflow's image as it may be sent back: only ever ``{"url": ...}``, as
    Clarifai's SDK sends one (clarifai-python `client/app.py`, `client/user.py`: `Image(url=...)`).
    GetApp may show the image as `hosted` {prefix, suffix, sizes} without a url, and sending that
    back may be refused (quirk hosted-image). A hosted image becomes the url the proto documents
    ("The URL of each hosted image can be obtained by joining the prefix, one of the sizes and
    suffix", clarifai-grpc resources.proto HostedURL), the `orig` size when listed, unless it is
    served only with credentials (crossorigin "use-credentials"), which the server could not fetch
    back; then, or with no image at all, None: leave the field out."""
    if not isinstance(image, dict):
        return None
    url = image.get("url")
    if isinstance(url, str) and url:
        return {"url": url}
    hosted = image.get("hosted")
    if not isinstance(hosted, dict) or hosted.get("crossorigin") == "use-credentials":
        return None
    prefix, suffix, sizes = hosted.get("prefix"), hosted.get("suffix"), hosted.get("sizes")
    if not (isinstance(prefix, str) and prefix and isinstance(suffix, str) and suffix and isinstance(sizes, list) and sizes):
        return None
    size = "orig" if "orig" in sizes else sizes[-1]
    if not isinstance(size, str) or not size:
        return None
    return {"url": "/".join((prefix.rstrip("/"), size, suffix.lstrip("/")))}


def _marked(w: Workflow) -> dict[str, Any]:
    """A workflow's metadata as written: the manifest's keys and the ownership marker."""
    return metadata_with_marker(w.metadata, w.protect, w.owner)


def _merged_metadata(live_raw: dict[str, Any], desired: dict[str, Any], with_marker: dict[str, Any]) -> dict[str, Any]:
    """The user's own keys stay; keys the manifest managed before but dropped now go; the
    manifest's keys and the marker are written."""
    previously_managed = set(read_marker(live_raw).metadata)
    keep = {k: v for k, v in live_raw.items() if k != MARKER_KEY and k not in previously_managed}
    return {**keep, **with_marker}
