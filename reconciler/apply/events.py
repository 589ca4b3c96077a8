"""What happens during an apply, as data: the events `apply --json` streams as JSON lines.

Contract:
- `Emit` is the callback the applier and the CLI call: `emit(type, **fields)`. The applier's
  `events=` argument takes one (default: none, nothing is built); the human progress lines on
  stderr are separate and unchanged.
- `JsonLines(stream, app=None)` is an `Emit` that writes each event as one JSON object on one
  line, flushed at once, under a lock (the applier's threads emit concurrently). Every line has
  ``{"v": 1, "type": ..., "time": RFC 3339 UTC with milliseconds}``, ``"app"`` when given, then
  the event's fields.
- The event types and their fields are `EVENT_FIELDS` (schemas/apply-events.schema.json says the
  same, and docs/gitops.md "Machine interfaces" explains them). The lease events are emitted by
  the app lease when it is in use (`LEASE_EVENTS`); nothing here depends on it.
Nothing here prints anything else and nothing raises for a closed stream but `BrokenPipeError`,
which the CLI already maps.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol, TextIO

EVENTS_VERSION = 1

#: event type -> the fields it carries (besides v, type, time, app)
EVENT_FIELDS: dict[str, tuple[str, ...]] = {
    "plan": ("plan",),
    "action_started": ("index", "total", "op", "kind", "id"),
    "action_finished": ("index", "total", "op", "kind", "id", "duration_ms"),
    "action_failed": ("index", "total", "op", "kind", "id", "duration_ms", "error"),
    "action_deferred": ("address", "reason"),
    "training_wait": ("model", "version", "status", "elapsed_s", "timeout_s"),
    "training_not_ready": ("model", "message"),
    "retry": ("method", "path", "attempt", "max_retries", "code", "http_status", "wait_s", "reason"),
    "error": ("message", "error_type", "code", "http_status", "req_id", "problems"),
    "summary": ("result", "exit_code", "done", "not_done", "writes", "duration_ms"),
    "lease_waiting": ("lease",),
    "lease_acquired": ("lease",),
    "lease_renewed": ("lease",),
    "lease_takeover": ("lease",),
    "lease_lost": ("lease",),
    "lease_released": ("lease",),
}
#: the lease's events (`lease_*`): emitted around the apply by the app lease when it is in use
LEASE_EVENTS = tuple(t for t in EVENT_FIELDS if t.startswith("lease_"))
#: `summary.result` values
RESULTS = ("applied", "no_changes", "deferred", "refused", "stale_plan", "lease_held", "failed")


class Emit(Protocol):
    def __call__(self, type: str, **fields: Any) -> None: ...  # noqa: A002 - the event's own word


def _now() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


class JsonLines:
    """An `Emit` writing JSON lines to `stream` (see the module docstring)."""

    def __init__(self, stream: TextIO, app: str | None = None, clock: Callable[[], str] = _now) -> None:
        self._stream = stream
        self._app = app
        self._clock = clock
        self._lock = threading.Lock()

    def __call__(self, type: str, **fields: Any) -> None:  # noqa: A002
        event: dict[str, Any] = {"v": EVENTS_VERSION, "type": type, "time": self._clock()}
        if self._app is not None:
            event["app"] = self._app
        event.update(fields)
        line = json.dumps(event, ensure_ascii=False, allow_nan=False, default=str)
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()


def error_fields(err: BaseException) -> dict[str, Any]:
    """An error as the `error` event's fields (and `--json` errors of the other verbs): its one
    line, its type, and what an `ApiError` / `ManifestError` carries."""
    from reconciler.core.errors import ApiError, ManifestError

    fields: dict[str, Any] = {"message": str(err).splitlines()[0] if str(err) else type(err).__name__}
    fields["error_type"] = type(err).__name__
    if isinstance(err, ApiError):
        fields.update(code=err.code, http_status=err.http_status, req_id=err.req_id)
    if isinstance(err, ManifestError):
        fields["problems"] = [p.as_dict() for p in err.problems]
    return fields
