"""Wire-level helpers of the sandbox: status codes and their HTTP codes, the error every handler
raises (`Fail`), ids, RFC3339 timestamps, float32 storage of concept values, enum-name parsing,
request-field access with type checks, paging, and the PATCH `merge` / `remove` algebra.

Contract: nothing here touches SQLite or WSGI; everything is pure and shared by the handlers.
"""

from __future__ import annotations

import copy
import re
import struct
import uuid
from datetime import UTC, datetime
from typing import Any

from reconciler.core import idrules
from reconciler.core.status_codes import BY_NAME

# --- status codes (by name from `reconciler.core.status_codes`, clarifai-grpc's StatusCode; the ones the sandbox uses) ---
SUCCESS = BY_NAME["SUCCESS"]
MIXED_STATUS = BY_NAME["MIXED_STATUS"]
FAILURE = BY_NAME["FAILURE"]
CONN_THROTTLED = BY_NAME["CONN_THROTTLED"]
CONN_INSUFFICIENT_SCOPES = BY_NAME["CONN_INSUFFICIENT_SCOPES"]
CONN_KEY_INVALID = BY_NAME["CONN_KEY_INVALID"]
CONN_BAD_REQUEST_FORMAT = BY_NAME["CONN_BAD_REQUEST_FORMAT"]
CONN_DOES_NOT_EXIST = BY_NAME["CONN_DOES_NOT_EXIST"]
CONN_INVALID_REQUEST = BY_NAME["CONN_INVALID_REQUEST"]
CONN_METHOD_NOT_ALLOWED = BY_NAME["CONN_METHOD_NOT_ALLOWED"]
MODEL_TRAINED = BY_NAME["MODEL_TRAINED"]
MODEL_TRAINING = BY_NAME["MODEL_TRAINING"]
MODEL_UNTRAINED = BY_NAME["MODEL_UNTRAINED"]
MODEL_QUEUED_FOR_TRAINING = BY_NAME["MODEL_QUEUED_FOR_TRAINING"]
MODEL_TRAINING_NO_DATA = BY_NAME["MODEL_TRAINING_NO_DATA"]
MODEL_TRAINING_NO_POSITIVES = BY_NAME["MODEL_TRAINING_NO_POSITIVES"]
MODEL_DOES_NOT_EXIST = BY_NAME["MODEL_DOES_NOT_EXIST"]
MODEL_INVALID_ARGUMENT = BY_NAME["MODEL_INVALID_ARGUMENT"]
WORKFLOW_REQUIRE_TRAINED_MODEL = BY_NAME["WORKFLOW_REQUIRE_TRAINED_MODEL"]
WORKFLOW_DOES_NOT_EXIST = BY_NAME["WORKFLOW_DOES_NOT_EXIST"]
WORKFLOW_INVALID_ARGUMENT = BY_NAME["WORKFLOW_INVALID_ARGUMENT"]
WORKFLOW_INVALID_GRAPH = BY_NAME["WORKFLOW_INVALID_GRAPH"]
ANNOTATION_SUCCESS = BY_NAME["ANNOTATION_SUCCESS"]
ANNOTATION_INVALID_ARGUMENT = BY_NAME["ANNOTATION_INVALID_ARGUMENT"]
INPUT_SUCCESS = BY_NAME["INPUT_SUCCESS"]
INPUT_DOES_NOT_EXIST = BY_NAME["INPUT_DOES_NOT_EXIST"]
INPUT_INVALID_ARGUMENT = BY_NAME["INPUT_INVALID_ARGUMENT"]
CONCEPTS_INVALID_REQUEST = BY_NAME["CONCEPTS_INVALID_REQUEST"]
DATABASE_DUPLICATE_KEY = BY_NAME["DATABASE_DUPLICATE_KEY"]
RPC_MAX_MESSAGE_SIZE_EXCEEDED = BY_NAME["RPC_MAX_MESSAGE_SIZE_EXCEEDED"]
INTERNAL_UNCATEGORIZED = BY_NAME["INTERNAL_UNCATEGORIZED"]

#: Enum names a request may send instead of integers (Status.code fields the sandbox reads).
STATUS_NAMES: dict[str, int] = {
    "SUCCESS": SUCCESS,
    "MIXED_STATUS": MIXED_STATUS,
    "FAILURE": FAILURE,
    "MODEL_TRAINED": MODEL_TRAINED,
    "MODEL_TRAINING": MODEL_TRAINING,
    "MODEL_UNTRAINED": MODEL_UNTRAINED,
    "MODEL_QUEUED_FOR_TRAINING": MODEL_QUEUED_FOR_TRAINING,
    "MODEL_TRAINING_NO_DATA": MODEL_TRAINING_NO_DATA,
    "MODEL_TRAINING_NO_POSITIVES": MODEL_TRAINING_NO_POSITIVES,
    "INPUT_SUCCESS": BY_NAME["INPUT_SUCCESS"],
    "INPUT_PENDING": BY_NAME["INPUT_PENDING"],
    "INPUT_FAILED": BY_NAME["INPUT_FAILED"],
    "INPUT_IN_PROGRESS": BY_NAME["INPUT_IN_PROGRESS"],
    "ANNOTATION_SUCCESS": BY_NAME["ANNOTATION_SUCCESS"],
    "ANNOTATION_PENDING": BY_NAME["ANNOTATION_PENDING"],
    "ANNOTATION_FAILED": BY_NAME["ANNOTATION_FAILED"],
    "ANNOTATION_UNKNOWN_STATUS": BY_NAME["ANNOTATION_UNKNOWN_STATUS"],
    "ANNOTATION_INVALID_ARGUMENT": BY_NAME["ANNOTATION_INVALID_ARGUMENT"],
    "ANNOTATION_PERMISSION_DENIED": BY_NAME["ANNOTATION_PERMISSION_DENIED"],
    "ANNOTATION_AWAITING_REVIEW": BY_NAME["ANNOTATION_AWAITING_REVIEW"],
    "ANNOTATION_REVIEW_DENIED": BY_NAME["ANNOTATION_REVIEW_DENIED"],
    "ANNOTATION_AWAITING_CONSENSUS_REVIEW": BY_NAME["ANNOTATION_AWAITING_CONSENSUS_REVIEW"],
}
VISIBILITY_NAMES = {"UNKNOWN_VISIBILITY": 0, "PRIVATE": 10, "ORG": 30, "PUBLIC": 50}

DESCRIPTIONS = {
    SUCCESS: "Ok",
    MIXED_STATUS: "Mixed status",
    FAILURE: "Failure",
    CONN_THROTTLED: "Making too many requests",
    CONN_INSUFFICIENT_SCOPES: "Insufficient scopes",
    # Clarifai/clarifai-python-grpc tests/client/test_auth.py asserts this exact description.
    CONN_KEY_INVALID: "Invalid API key or Invalid API key/application pair",
    CONN_BAD_REQUEST_FORMAT: "Bad request format",
    CONN_DOES_NOT_EXIST: "Resource does not exist",
    CONN_INVALID_REQUEST: "Invalid request",
    CONN_METHOD_NOT_ALLOWED: "Method not allowed",
    MODEL_TRAINED: "Model is trained and ready for deployment",
    MODEL_TRAINING: "Model is currently training",
    # these four: Clarifai/docs `code_output_examples/create_model.js` and `train_model.js` (21102,
    # 21103), `docs/api-guide/advanced-topics/status-codes.md` (21110, 21111)
    MODEL_UNTRAINED: "Model not yet trained",
    MODEL_TRAINING_NO_DATA: "Custom model training had no data",
    MODEL_TRAINING_NO_POSITIVES: "Custom model training had no positive examples",
    MODEL_QUEUED_FOR_TRAINING: "Model is currently in queue for training.",
    MODEL_DOES_NOT_EXIST: "Model does not exist",
    MODEL_INVALID_ARGUMENT: "Invalid argument",
    WORKFLOW_REQUIRE_TRAINED_MODEL: "New model in workflow needs to be trained",
    WORKFLOW_DOES_NOT_EXIST: "Workflow does not exist",
    WORKFLOW_INVALID_ARGUMENT: "Invalid argument",
    WORKFLOW_INVALID_GRAPH: "Invalid workflow graph",
    ANNOTATION_SUCCESS: "Annotation success",
    ANNOTATION_INVALID_ARGUMENT: "Invalid argument",
    INPUT_SUCCESS: "Input image modification success",
    INPUT_DOES_NOT_EXIST: "Input does not exist",
    INPUT_INVALID_ARGUMENT: "Invalid argument",
    CONCEPTS_INVALID_REQUEST: "Invalid request",
    DATABASE_DUPLICATE_KEY: "Object has a duplicate ID; another object with same ID already exist",
    RPC_MAX_MESSAGE_SIZE_EXCEEDED: "Request body too large",
    INTERNAL_UNCATEGORIZED: "Internal error",
}

#: HTTP code per status code; anything else that is an error is a 400.
HTTP_FOR = {
    SUCCESS: 200,
    MIXED_STATUS: 207,
    CONN_THROTTLED: 429,
    CONN_INSUFFICIENT_SCOPES: 403,
    CONN_KEY_INVALID: 401,
    CONN_DOES_NOT_EXIST: 404,
    MODEL_DOES_NOT_EXIST: 404,
    WORKFLOW_DOES_NOT_EXIST: 404,
    INPUT_DOES_NOT_EXIST: 404,
    DATABASE_DUPLICATE_KEY: 409,
    RPC_MAX_MESSAGE_SIZE_EXCEEDED: 413,
    INTERNAL_UNCATEGORIZED: 500,
    FAILURE: 500,
}


def http_for(code: int) -> int:
    return HTTP_FOR.get(code, 400)


class Fail(Exception):
    """A Clarifai-shaped error: the handler's transaction rolls back and the client gets
    ``{"status": {code, description, details, req_id}}`` with `http` (default from the code)."""

    def __init__(self, code: int, details: str = "", *, http: int | None = None) -> None:
        super().__init__(details or DESCRIPTIONS.get(code, ""))
        self.code = code
        self.details = details
        self.http = http if http is not None else http_for(code)


def status(code: int, req_id: str, details: str = "", description: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"code": code, "description": description or DESCRIPTIONS.get(code, "")}
    if details:
        out["details"] = details
    out["req_id"] = req_id
    return out


# --- ids, time, floats -----------------------------------------------------------------------------

#: Ids of inputs and annotations: kept loose, but never a path-breaking character (workflow node
#: ids, which are not API ids at all, have their own rule: `idrules.NODE_ID`).
LOOSE_ID_RE = re.compile(r"^[0-9A-Za-z]+([-_.][0-9A-Za-z]+)*$(?!\n)")


def new_id() -> str:
    """32 lowercase hex chars, the shape of Clarifai's generated ids (model versions, inputs...)."""
    return uuid.uuid4().hex


def check_id(value: Any, what: str, code: int, rule: idrules.IdRule | None = idrules.CLARIFAI_ID) -> str:
    """`value` if it is a valid id of `what` under `rule` (the manifest's own rule: apps, models,
    workflows, concepts); `rule=None` for the loose ids above. Fail(code) otherwise."""
    if not isinstance(value, str) or not value:
        raise Fail(code, f"{what} id is required")
    if rule is not None:
        why = rule.problem(value)
        if why:
            raise Fail(code, f"{what}: {why}")
    elif len(value) > 128 or not LOOSE_ID_RE.match(value):
        raise Fail(code, f"{what} id {value!r} is not valid: use letters, digits, '-', '_' and '.'")
    return value


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_stamp(stamp: str | None) -> float:
    """`rfc3339`'s string back to seconds (0.0 for None or anything else)."""
    try:
        return datetime.strptime(stamp or "", "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return 0.0


def f32(x: Any) -> float:
    """What a float32 column gives back, as a double: 0.95 -> 0.949999988079071."""
    if isinstance(x, bool) or not isinstance(x, (int, float, str)):
        raise Fail(CONN_INVALID_REQUEST, f"expected a number, got {type(x).__name__}")
    try:
        return struct.unpack("<f", struct.pack("<f", float(x)))[0]
    except (ValueError, OverflowError):
        raise Fail(CONN_INVALID_REQUEST, f"expected a float32 number, got {x!r}") from None


def f32_concepts(data: Any) -> Any:
    """Store the `value` of every concept (and region concept) in a Data object as float32."""
    if not isinstance(data, dict):
        return data
    for c in data.get("concepts") or []:
        if isinstance(c, dict) and "value" in c:
            c["value"] = f32(c["value"])
    for r in data.get("regions") or []:
        if isinstance(r, dict):
            f32_concepts(r.get("data"))
    return data


def enum_int(value: Any, names: dict[str, int], what: str) -> int:
    """Requests may send enums as names or integers; responses always carry integers."""
    if isinstance(value, bool):
        raise Fail(CONN_INVALID_REQUEST, f"{what}: expected an enum, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        if value in names:
            return names[value]
        if value.lstrip("-").isdigit():
            return int(value)
    raise Fail(CONN_INVALID_REQUEST, f"{what}: unknown enum value {value!r}")


def norm_status(obj: Any, what: str) -> dict[str, Any] | None:
    if obj is None:
        return None
    st = want(obj, dict, what)
    return {"code": enum_int(st.get("code", 0), STATUS_NAMES, what + ".code")}


def norm_visibility(obj: Any) -> dict[str, int] | None:
    if obj is None:
        return None
    v = want(obj, dict, "visibility")
    return {"gettable": enum_int(v.get("gettable", 10), VISIBILITY_NAMES, "visibility.gettable")}


# --- request access ----------------------------------------------------------------------------------

_TYPE_NAMES = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}


def want(value: Any, typ: type, what: str) -> Any:
    if not isinstance(value, typ) or (typ is not bool and isinstance(value, bool)):
        raise Fail(CONN_INVALID_REQUEST, f"{what}: expected {_TYPE_NAMES.get(typ, typ.__name__)}")
    return value


def get(body: dict[str, Any], key: str, typ: type, default: Any = None) -> Any:
    """`body[key]` checked against `typ`; missing or null gives `default` (a copy)."""
    value = body.get(key)
    if value is None:
        return copy.deepcopy(default)
    return want(value, typ, key)


def objects(body: dict[str, Any], key: str) -> list[dict[str, Any]]:
    items = get(body, key, list, [])
    for i, item in enumerate(items):
        want(item, dict, f"{key}[{i}]")
    return items


#: `page` and `per_page` are uint32 in every List*Request (clarifai-grpc `service.proto`, e.g.
#: ListConceptsRequest): a larger number does not parse into the request, an invalid request.
UINT32_MAX = 2**32 - 1


def paging(query: dict[str, list[str]]) -> tuple[int, int]:
    """page (default 1) and per_page (default 128, at most 1000): Clarifai's documented paging.
    Each is a uint32 written in ASCII digits; anything else (negative, not a number, past
    `UINT32_MAX`, digits of another script) is CONN_INVALID_REQUEST (HTTP 400), never a 500."""

    def num(name: str, default: int) -> int:
        raw = (query.get(name) or [""])[-1]
        if raw == "":
            return default
        if not (raw.isascii() and raw.isdigit()) or int(raw) > UINT32_MAX:
            raise Fail(CONN_INVALID_REQUEST, f"{name} must be a whole number from 0 to {UINT32_MAX} (a uint32)")
        return int(raw) or default

    return num("page", 1), min(num("per_page", 128), 1000)


def qbool(query: dict[str, list[str]], name: str) -> bool:
    # clarifai-grpc's JSON channel sends Python's str(True): "True".
    return (query.get(name) or [""])[-1].lower() in ("true", "1")


def qlist(query: dict[str, list[str]], name: str) -> list[str]:
    return [v for v in query.get(name, []) if v != ""]


def page_slice(items: list[Any], page: int, per_page: int) -> list[Any]:
    return items[(page - 1) * per_page : page * per_page]


# --- PATCH actions (REFERENCE §6) ---------------------------------------------------------------------


def merge(old: Any, new: Any) -> Any:
    """Clarifai's `merge` (Clarifai/docs `docs/api-guide/advanced-topics/patching.md`, whose
    examples tests/test_confirmed_api.py replays): scalars overwrite; dicts merge recursively
    (a removed nested key stays), but `{}` replaces; `null` leaves the old value; lists of objects
    with ids merge by id (others appended); other lists are appended; `[]` replaces."""
    if new is None:
        return copy.deepcopy(old)
    if isinstance(new, dict) and isinstance(old, dict):
        if not new:
            return {}
        out = copy.deepcopy(old)
        for k, v in new.items():
            out[k] = merge(old.get(k), v) if k in old else copy.deepcopy(v)
        return out
    if isinstance(new, list) and isinstance(old, list):
        if not new:
            return []
        out_list = copy.deepcopy(old)
        for item in new:
            if isinstance(item, dict) and "id" in item:
                for i, existing in enumerate(out_list):
                    if isinstance(existing, dict) and existing.get("id") == item["id"]:
                        out_list[i] = merge(existing, item)
                        break
                else:
                    out_list.append(copy.deepcopy(item))
            else:
                out_list.append(copy.deepcopy(item))
        return out_list
    return copy.deepcopy(new)


def remove(old: Any, spec: Any) -> Any:
    """Clarifai's `remove` (same docs page): a key given as `true` is deleted, at any depth; `{}`
    and `null` do nothing; a list drops the elements whose id is given (a list without ids is
    appended); any other value overwrites ("Remove with false should over write")."""
    if spec is None or spec == {}:
        return copy.deepcopy(old)
    if isinstance(spec, dict):
        if not isinstance(old, dict):
            return copy.deepcopy(old)
        out = copy.deepcopy(old)
        for k, v in spec.items():
            if v is True:
                out.pop(k, None)
            elif k in out:
                out[k] = remove(out[k], v)
            elif not isinstance(v, (dict, list)) and v is not None:
                out[k] = copy.deepcopy(v)
        return out
    if isinstance(spec, list):
        if not isinstance(old, list):
            return copy.deepcopy(old)
        ids = {s.get("id") for s in spec if isinstance(s, dict) and "id" in s}
        if not ids:
            return copy.deepcopy(old) + copy.deepcopy(spec)
        return [x for x in old if not (isinstance(x, dict) and x.get("id") in ids)]
    return copy.deepcopy(spec)


def action_of(body: dict[str, Any], allowed: tuple[str, ...], code: int) -> str:
    action = get(body, "action", str, "") or allowed[0]
    if action not in allowed:
        raise Fail(code, f"action {action!r} is not supported here; use one of {', '.join(allowed)}")
    return action
