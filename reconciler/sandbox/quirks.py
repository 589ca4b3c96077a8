"""The sandbox's pessimistic mode: named quirks, each playing the other plausible reading of a
behaviour of the real Clarifai API that no source settles, so the tool can be proven to work under
both readings (README, "Pessimistic sandbox mode").

Contract:
- `QUIRKS` maps each stable quirk name to a one-line description. `parse(spec)` turns None, ""
  (none), "pessimistic" / "all" (every quirk), a comma list or an iterable of names into a
  frozenset; an unknown name is a ValueError whose text is one line naming the known ones.
- The sandbox calls the hooks below only for the quirks that are on, so with none on it behaves
  exactly as without this module:
  `refuse_body(rpc, body_bytes)` (before dispatch), `shape_payload(rpc, params, app_id, payload)`
  (a handler's success payload), `shape_failure(fail)` (a handler's error), `shape_body(body)`
  (every response body, last), and `QuirkClock` (the request time, for `timestamp-precision`).
  The PATCH, ListModels and duplicate readings need the data and live in the
  handlers, keyed on `ctx.quirks`.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Iterable
from typing import Any

from reconciler.core.status_codes import NAME_OF
from reconciler.sandbox.wire import (
    CONCEPTS_INVALID_REQUEST,
    CONN_BAD_REQUEST_FORMAT,
    DATABASE_DUPLICATE_KEY,
    Fail,
)

LISTING_WITHOUT_CONFIG = "listing-without-config"
MAIN_MODELS_LISTED = "main-models-listed"
RELATION_INVERSE_LISTING = "relation-inverse-listing"
PATCH_OVERWRITE_REPLACES = "patch-overwrite-replaces"
DUPLICATE_INVALID_REQUEST = "duplicate-invalid-request"
TIMESTAMP_PRECISION = "timestamp-precision"
STATUS_CODE_NAMES = "status-code-names"
DELETE_BODY_REFUSED = "delete-body-refused"

QUIRKS: dict[str, str] = {
    LISTING_WITHOUT_CONFIG: "models and model versions show no output_info.data / params except "
    "from GetModelOutputInfo (.../versions/{id}/output_info)",
    MAIN_MODELS_LISTED: "ListModels scoped to an app also lists clarifai/main's models, whatever dont_fetch_from_main says",
    RELATION_INVERSE_LISTING: "the app-wide relation listing shows a hypernym as the inverse "
    "hyponym (subject and object swapped), and a relation is deleted "
    "only through its stored subject's path",
    PATCH_OVERWRITE_REPLACES: "PATCH action overwrite replaces the whole app / workflow / model / "
    "concept: fields not sent are cleared",
    DUPLICATE_INVALID_REQUEST: "every duplicate answers 40003 'Invalid request' (HTTP 400, "
    "'duplicate' only in details), never 40010 / 409",
    TIMESTAMP_PRECISION: "timestamps carry 0 to 9 fractional digits (trailing zeros dropped, some padded to nanoseconds)",
    STATUS_CODE_NAMES: "every status code in a response is its enum name ('MODEL_TRAINED'), not its number",
    DELETE_BODY_REFUSED: "a DELETE whose route binding has no body is refused if it sends one",
}

#: RPCs whose HTTP binding declares no body (clarifai-grpc's `google.api.http` options, `body`
#: empty): a gateway may refuse a DELETE that sends one anyway.
NO_BODY_RPCS = frozenset({"DeleteApp", "DeleteModel", "DeleteModelVersion", "DeleteWorkflow", "DeleteInput"})
#: Responses that would carry a model's configuration; GetModelOutputInfo is the one that keeps it.
_CONFIG_RPCS = frozenset(
    {"ListModels", "GetModel", "PostModels", "PatchModels", "PostModelVersions", "ListModelVersions", "GetModelVersion"}
)
_TIMESTAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z$")


def parse(spec: str | Iterable[str] | None) -> frozenset[str]:
    """The set of quirks named by `spec` (see the module docstring)."""
    if spec is None:
        return frozenset()
    names = [n.strip() for n in spec.split(",")] if isinstance(spec, str) else [str(n).strip() for n in spec]
    names = [n for n in names if n]
    if any(n in ("pessimistic", "all") for n in names):
        return frozenset(QUIRKS)
    unknown = [n for n in names if n not in QUIRKS]
    if unknown:
        raise ValueError(f"unknown sandbox quirk {unknown[0]!r}; known: pessimistic (all), " + ", ".join(QUIRKS))
    return frozenset(names)


def refuse_body(rpc: str, body: bytes) -> Fail | None:
    """`delete-body-refused`: a body on a binding that declares none."""
    if rpc in NO_BODY_RPCS and body.strip():
        return Fail(CONN_BAD_REQUEST_FORMAT, f"{rpc} takes no request body")
    return None


def shape_failure(fail: Fail) -> Fail:
    """`duplicate-invalid-request`: a duplicate reads as the real duplicate-concept error does
    (code 40003, description "Invalid request", HTTP 400, the word only in details)."""
    if fail.code != DATABASE_DUPLICATE_KEY:
        return fail
    return Fail(CONCEPTS_INVALID_REQUEST, f"duplicate: {fail.details or 'the object already exists'}", http=400)


def shape_payload(
    quirks: frozenset[str], rpc: str, params: dict[str, str], app_id: str, payload: dict[str, Any]
) -> dict[str, Any]:
    if LISTING_WITHOUT_CONFIG in quirks and rpc in _CONFIG_RPCS:
        for key in ("model", "models", "model_version", "model_versions"):
            for item in _as_list(payload.get(key)):
                _strip_config(item)
                _strip_config(item.get("model_version") if isinstance(item, dict) else None)
    if RELATION_INVERSE_LISTING in quirks and rpc == "ListConceptRelations" and not params.get("concept_id"):
        for rel in payload.get("concept_relations") or []:
            obj = rel.get("object_concept") or {}
            if rel.get("predicate") == "hypernym" and obj.get("app_id", app_id) == app_id:
                rel["subject_concept"], rel["object_concept"] = obj, rel.get("subject_concept")
                rel["predicate"] = "hyponym"
    return payload


def shape_body(quirks: frozenset[str], body: Any) -> Any:
    """Every response body, last: status codes as names, timestamps at varying precision."""
    names, stamps = STATUS_CODE_NAMES in quirks, TIMESTAMP_PRECISION in quirks
    if not (names or stamps):
        return body
    stack = [body]
    while stack:
        cur = stack.pop()
        if isinstance(cur, dict):
            for k, v in cur.items():
                if names and k == "status" and isinstance(v, dict) and isinstance(v.get("code"), int):
                    v["code"] = NAME_OF.get(v["code"], v["code"])
                if stamps and k.endswith("_at") and isinstance(v, str):
                    cur[k] = _reprecise(v)
                if isinstance(v, (dict, list)):
                    stack.append(v)
        elif isinstance(cur, list):
            stack.extend(v for v in cur if isinstance(v, (dict, list)))
    return body


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value] if isinstance(value, dict) else []


def _strip_config(item: Any) -> None:
    if isinstance(item, dict) and isinstance(item.get("output_info"), dict):
        oi = item["output_info"]
        oi.pop("data", None)
        oi.pop("params", None)


def _reprecise(stamp: str) -> str:
    """RFC3339 with trailing zeros dropped (Go's RFC3339Nano: 0 to 9 digits); a fraction that
    keeps all 6 digits is padded to 6-9 digits (nanoseconds), chosen by the value itself so
    the same instant always reads the same."""
    m = _TIMESTAMP.match(stamp)
    if not m:
        return stamp
    frac = (m.group(2) or "").rstrip("0")
    if len(frac) == 6:
        pad = int(hashlib.sha256(stamp.encode()).hexdigest(), 16) % 4
        frac += "0" * pad
    return f"{m.group(1)}.{frac}Z" if frac else f"{m.group(1)}Z"


class QuirkClock:
    """`timestamp-precision`'s request time: monotone, and cut to a varying number of decimals
    (0 to 6), so objects made within one second read back with different digit counts
    ("...:05Z" and "...:04.5Z") -- which a string sort orders wrongly. Each time is the real time
    truncated at the precision this request prefers, or at the coarsest finer one that still comes
    after the previous time: never ahead of the real clock, so a restarted sandbox (a new clock on
    the same database) still stamps new objects after the old ones. (Rounding up, as this once
    did, could stamp an object up to a second ahead, and a restart then stamped a newer version
    before it.)"""

    def __init__(self) -> None:
        self._last_us = 0
        self._n = 0
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            us = max(int(time.time() * 1_000_000), self._last_us + 1)
            self._n += 1
            step = 10 ** (6 - (self._n * 5) % 7)  # prefers 10^6, 10^1, 10^3, 10^5, ... in turn
            cut = us // step * step
            while cut <= self._last_us:  # too coarse to stay after the previous time: finer
                step //= 10
                cut = us // step * step
            self._last_us = cut
            return cut / 1_000_000
