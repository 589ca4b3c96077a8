"""`--json` for machines: errors as JSON on stdout, and apply's event stream.

Contract:
- `json_error(args, err)`: the error a verb raised, on stdout, as the verb's JSON speaks: for
  `apply --json` an ``error`` event and then the ``summary`` event (JSON lines, `apply.events`);
  for the other verbs one document ``{"format_version": 1, "error": {message, error_type, code?,
  http_status?, req_id?, problems?}}``. `cli._run` calls it after printing the usual line on
  stderr, which stays.
- `apply_summary(emit, result, code, *, done, not_done, writes, started)`: the closing
  ``summary`` event of an apply.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reconciler.apply.events import Emit


def json_error(args: argparse.Namespace, err: BaseException) -> None:
    from reconciler.apply.events import JsonLines, error_fields
    from reconciler.core.errors import ApplyDeferred, ApplyError, ReconcilerError

    fields = error_fields(err) if str(err) else {**error_fields(err), "message": "interrupted"}
    if getattr(args, "verb", None) != "apply":
        print(json.dumps({"format_version": 1, "error": fields}, indent=2), flush=True)
        return
    emit = JsonLines(sys.stdout)
    if not isinstance(err, ApplyDeferred):  # deferring is no error: the summary says what waits
        emit("error", **fields)
    result = err.apply_result if isinstance(err, ReconcilerError) else "failed"
    code = err.exit_code if isinstance(err, ReconcilerError) else 1
    done = err.done if isinstance(err, ApplyError) else []
    not_done = err.not_done if isinstance(err, ApplyError) else []
    writes = err.writes if isinstance(err, ApplyError) else 0
    extra = {"message": fields["message"]} if isinstance(err, ApplyDeferred) else {}
    apply_summary(emit, result, code, done=done, not_done=not_done, writes=writes, **extra)


def apply_summary(
    emit: Emit,
    result: str,
    code: int,
    *,
    done: list[str] | None = None,
    not_done: list[str] | None = None,
    writes: int = 0,
    started: float | None = None,
    **extra: Any,
) -> None:
    """The `summary` event that closes an apply's stream."""
    fields: dict[str, Any] = {
        "result": result,
        "exit_code": code,
        "done": list(done or []),
        "not_done": list(not_done or []),
        "writes": writes,
    }
    if started is not None:
        fields["duration_ms"] = round((time.monotonic() - started) * 1000)
    emit("summary", **fields, **extra)
