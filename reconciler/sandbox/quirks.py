"""The sandbox's pessimistic mode: named quirks, each playing the other plausible reading of a
behaviour of the real Clarifai API that no source settles, so the tool can be proven to work under
both readings (README, "Pessimistic sandbox mode").

Contract:
- `QUIRKS` maps each stable quirk name to a one-line description. `parse(spec)` turns None, ""
  (none), "pessimistic" / "all" (every quirk), a comma list or an iterable of names into a
  frozenset; an unknown name (even beside "pessimistic") is a ValueError whose text is one line
  naming the known ones. (`sandbox serve --quirks ""` names none and is refused by `serve`.)
- The sandbox calls the hooks below only for the quirks that are on, so with none on it behaves
  exactly as without this module:
  `refuse_body(rpc, body_bytes)` (before dispatch), `shape_payload(rpc, params, app_id, payload)`
  (a handler's success payload), `shape_failure(fail)` (a handler's error), `shape_body(body)`
  (every response body, last), and `QuirkClock` (the request time, for `timestamp-precision`).
  The PATCH, ListModels, duplicate, workflow-size, default-workflow, image, knowledge-graph and
  model-version readings need the data and live in the handlers, keyed on `ctx.quirks`, with
  the helpers below (`default_workflow_fields`, `hosted_image`, `fill_version_defaults`).
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
import zlib
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
SERVER_FILLED_CONFIG = "server-filled-config"
BASE_EMBED_MODEL_FILLED = "base-embed-model-filled"
DEFAULT_WORKFLOW_ID_IGNORED = "default-workflow-id-ignored"
DEFAULT_WORKFLOW_OBJECT_IGNORED = "default-workflow-object-ignored"
HOSTED_IMAGE = "hosted-image"
WORKFLOW_MAX_20_NODES = "workflow-max-20-nodes"
KNOWLEDGE_GRAPH_MUST_EXIST = "knowledge-graph-must-exist"

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
    SERVER_FILLED_CONFIG: "a new model version of a type without typed fields (not a concept-thresholder, "
    "annotation-writer or concept-synonym-mapper) is stored with output_info.params "
    "{max_concepts: 20, min_value: 0, select_concepts: []} and output_config {max_concepts: 0, "
    "min_value: 0} filled in where the request left them out",
    BASE_EMBED_MODEL_FILLED: "an embedding-classifier version posted without input_info.base_embed_model "
    "is stored with clarifai/main's general-image-embedding (and its version) filled in; a "
    "reference without a version gets the model's latest",
    DEFAULT_WORKFLOW_ID_IGNORED: "PatchApps / PostApps ignore the deprecated default_workflow_id (only the "
    "default_workflow object sets it) and answers show only the object",
    DEFAULT_WORKFLOW_OBJECT_IGNORED: "PatchApps / PostApps ignore the default_workflow object (only the "
    "deprecated default_workflow_id sets it) and answers show only default_workflow_id",
    HOSTED_IMAGE: "an app's image reads back as hosted {prefix, suffix, sizes} with no url, and an app "
    "image sent without a url is refused",
    WORKFLOW_MAX_20_NODES: "PostWorkflows / PatchWorkflows refuse a workflow of more than 20 nodes (WORKFLOW_INVALID_ARGUMENT)",
    KNOWLEDGE_GRAPH_MUST_EXIST: "PostConceptRelations refuses a non-empty knowledge_graph_id that names no "
    "knowledge graph of the app (PostKnowledgeGraphs)",
}

#: RPCs whose HTTP binding declares no body (clarifai-grpc's `google.api.http` options, `body`
#: empty): a gateway may refuse a DELETE that sends one anyway.
NO_BODY_RPCS = frozenset({"DeleteApp", "DeleteModel", "DeleteModelVersion", "DeleteWorkflow", "DeleteInput"})
#: Responses that would carry a model's configuration; GetModelOutputInfo is the one that keeps it.
_CONFIG_RPCS = frozenset(
    {"ListModels", "GetModel", "PostModels", "PatchModels", "PostModelVersions", "ListModelVersions", "GetModelVersion"}
)
_TIMESTAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z$")


#: `server-filled-config`: what the docs' embedding-classifier answer shows that was never sent
#: (Clarifai/docs code_snippets/api-guide/model/code_output_examples/create_model.js: output_info.params
#: {max_concepts: 20, min_value: 0, select_concepts: []}), and OutputConfig's max_concepts / min_value,
#: which clarifai-grpc marks cl_show_if_empty (proto/clarifai/api/resources.proto, OutputConfig).
FILLED_PARAMS: dict[str, Any] = {"max_concepts": 20, "min_value": 0, "select_concepts": []}
FILLED_OUTPUT_CONFIG: dict[str, Any] = {"max_concepts": 0, "min_value": 0}
#: Types whose configuration the tool types itself (their params are their own).
_OWN_PARAMS_TYPES = frozenset({"concept-thresholder", "annotation-writer", "concept-synonym-mapper"})
#: `hosted-image`: where the sandbox "hosts" an app image, and the sizes it lists. The proto: "The URL
#: of each hosted image can be obtained by joining the prefix, one of the sizes and suffix"
#: (clarifai-grpc resources.proto, HostedURL).
HOSTED_PREFIX = "https://sandbox.local/hosted"
HOSTED_SIZES = ["orig", "tiny", "small", "large"]


def default_workflow_fields(quirks: frozenset[str], app_id: str) -> tuple[bool, bool]:
    """Which of (the `default_workflow` object, the deprecated `default_workflow_id`) a PatchApps
    honours and an answer shows for this app. The two quirks are the two one-field readings;
    both at once would leave no way to set a default, so with both on each app plays one of
    them, chosen by its id (stable, and both worlds occur across apps)."""
    no_id, no_obj = DEFAULT_WORKFLOW_ID_IGNORED in quirks, DEFAULT_WORKFLOW_OBJECT_IGNORED in quirks
    if no_id and no_obj:
        no_id = zlib.crc32(app_id.encode()) % 2 == 0
        no_obj = not no_id
    return not no_obj, not no_id


def hosted_image(url: str) -> dict[str, Any]:
    """`hosted-image`: the hosted form of an image set by `url` (no url). A url that is itself a
    hosted copy (prefix/size/suffix) keeps its suffix, so sending one back reads the same."""
    suffix = ""
    for size in HOSTED_SIZES:
        head = f"{HOSTED_PREFIX}/{size}/"
        if url.startswith(head):
            suffix = url[len(head) :]
    if not suffix:
        suffix = "images/" + hashlib.sha256(url.encode()).hexdigest()[:32]
    return {"hosted": {"prefix": HOSTED_PREFIX, "suffix": suffix, "sizes": list(HOSTED_SIZES)}}


def fill_version_defaults(model_type: str, output_info: dict[str, Any]) -> None:
    """`server-filled-config`: fill the defaults a request left out (what was sent wins)."""
    if model_type in _OWN_PARAMS_TYPES:
        return
    params = output_info.setdefault("params", {})
    for k, v in FILLED_PARAMS.items():
        params.setdefault(k, list(v) if isinstance(v, list) else v)
    config = output_info.setdefault("output_config", {})
    for k, v in FILLED_OUTPUT_CONFIG.items():
        config.setdefault(k, v)


def parse(spec: str | Iterable[str] | None) -> frozenset[str]:
    """The set of quirks named by `spec` (see the module docstring)."""
    if spec is None:
        return frozenset()
    names = [n.strip() for n in spec.split(",")] if isinstance(spec, str) else [str(n).strip() for n in spec]
    names = [n for n in names if n]
    unknown = [n for n in names if n not in QUIRKS and n not in ("pessimistic", "all")]
    if unknown:  # checked first: "pessimistic,bogus" is a typo to report, not "all"
        raise ValueError(f"unknown sandbox quirk {unknown[0]!r}; known: {known_names()}")
    if any(n in ("pessimistic", "all") for n in names):
        return frozenset(QUIRKS)
    return frozenset(names)


def known_names() -> str:
    """The names `parse` takes, for error lines."""
    return "pessimistic (all), " + ", ".join(QUIRKS)


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
    """`timestamp-precision`'s request time: monotone, and rounded UP to a varying number of
    decimals (0 to 6), so objects made within one second read back with different digit counts
    ("...:05Z" and "...:04.5Z") -- which a string sort orders wrongly. Rounding up keeps every
    time after the previous one, so the true order stays what the parsed times say. A time may
    so run ahead of the real clock; `after` (the latest time the database already holds, see
    `Store.latest_stamp`) makes a restarted sandbox -- a new clock on the same file -- still stamp
    new objects after the old ones."""

    def __init__(self, after: float = 0.0) -> None:
        self._last_us = int(after * 1_000_000)
        self._n = 0
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            us = max(int(time.time() * 1_000_000), self._last_us + 1)
            self._n += 1
            step = 10 ** (6 - (self._n * 5) % 7)  # cycles through 10^6, 10^1, 10^3, 10^5, ...
            us = -(-us // step) * step
            self._last_us = us
            return us / 1_000_000
