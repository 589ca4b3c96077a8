"""Read a live Clarifai app into a `state.State` -- the same type the manifest loader produces --
normalised so that an app just applied from a manifest compares equal to that manifest.

Contract: `read_live(client, app_id, user_id=None, want_models=None) -> State | None`;
`app_exists(client, app_id, user_id=None) -> bool` (GetApp, with the same reading of "absent").

- None means the app does not exist. On the real API a missing app reads as CONN_DOES_NOT_EXIST
  (11101) or HTTP 404, or -- ambiguously -- as CONN_KEY_INVALID (11008, "Invalid API
  key/application pair"), which is also what a bad key gets. The first two are "absent". 11008 is
  only taken as "absent" after a second look: when listing the user's apps succeeds (so the key
  is good) and the app is not among them. Any other failure -- bad credentials above all -- is
  raised: reading a broken connection as "no app" would plan to create everything.
- Reads run concurrently on the client's thread pool: GetApp, ListConcepts, the app-wide
  ListConceptRelations, ListModels and ListWorkflows together (all pages each), then
  ListModelVersions for each model in `want_models` (None: all) and each local model a workflow
  node pins (`list_versions`: a version the listing shows without its configuration is completed
  from GetModelOutputInfo, never read as empty). `Model.config` / `version_id` are the newest
  version's (by parsed `created_at`, 0-9 fractional digits, server order breaking ties), whatever
  its training status; `Model.versions` lists the versions read, newest first. Models whose
  versions were not read have ``config == {}`` and no versions; so does a model with no version
  at all, a normal state on today's API (PostModels makes none: an apply cut off between
  PostModels and PostModelVersions, or a model made in the portal), which the plan gives a
  `new_version`. The `output_info` of
  ListModels/GetModel is never used: the real API returns only a summary there.
- Models: only this app's (`_in_app`); ListModels may mix in clarifai/main's.
- The app changing during the read: GetApp found it, then a listing says the app (or a model
  ListModels just showed) does not exist -- another process created or deleted it between the two
  requests. The read is made once more; a second such read is one ApiError line, "app X changed
  while being read". (GetApp not finding the app is a consistent answer: None.)
- The app lease's datasets (`apply/lease.py`: `idrules.is_lease_dataset`) are never part of a
  live State, so the lease never shows in a plan, drift, export or the live fingerprint
  (`livereview` skips them before reading their versions).
- Shapes: every item used is checked first (`liveshape.check`): a present field of the wrong JSON
  type is an ApiError naming the field, never silently read as absent.
- Decoding each item: `codecs` (one codec per kind). Normalisation: server-owned fields
  (timestamps, user/app ids, statuses, visibility) are dropped;
  enums may be names or integers and floats are float32 (`modeltypes.from_api` handles both);
  missing strings read as "" and a concept's missing name as its id; a concept's description is
  its `definition`. Metadata goes through `state.read_marker`: marked resources have
  ``managed=True``, their `protect`, and the metadata keys the marker says the manifest manages;
  unmarked ones ``managed=False`` and no metadata of ours to compare.
- Workflow nodes: a model of this app (node `model.app_id` empty or this app, and `user_id` empty or
  this app's owner) is `ModelRef(id, version=pinned)`; anything else the full external ref.
- Relations: see `_relations` for the dedupe rule (each relation created once reads back once);
  the orientation shown may be the inverse of the one created, so the plan compares relations in
  normal form (`state.ConceptRelation.normal`).
- The review side (collaborators, datasets and their versions, tasks) is read only for the
  kinds in `sections` (`livereview`): a manifest without a `tasks:` key never asks for tasks.
- Default workflow: `default_workflow.id`, else the deprecated `default_workflow_id` (AppCodec); kept only when it names a
  workflow of this app. Apps start with clarifai/main's base workflow ("Empty", "General", ...) as
  their default; a manifest cannot name that and apply could not "unset" it, so reading it as a
  default would be a perpetual diff. It reads as None.

`read_input_count(client, app_id, user_id)`: the app's input count (GetInputCount), which a plan
that changes the default workflow states (the change re-indexes the inputs).

`knowledge_graph_ids(client, app_id, user_id)`: the app's knowledge graphs, read only when a
manifest puts a relation in a named one.

`fingerprint(state)` is a sha256 over everything, bookkeeping included (version ids, managed flags,
relation server ids, versions), order-independent where order carries no meaning: for "the live app
changed since the plan was made".
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from typing import Any

from reconciler.api import livereview as review_side
from reconciler.api import liveshape
from reconciler.api.client import Client
from reconciler.api.codecs import AppCodec, ConceptCodec, ModelCodec, RelationCodec, WorkflowCodec
from reconciler.api.codecs import text as _str
from reconciler.api.paging import MAX_PER_PAGE
from reconciler.api.training import TRAINING_FAILED, training_code
from reconciler.api.transport import api_path
from reconciler.core import modeltypes
from reconciler.core.errors import ApiError
from reconciler.core.state import SECTION_KINDS, ConceptRelation, Kind, Model, State
from reconciler.core.status_codes import BY_NAME

CONN_KEY_INVALID = BY_NAME["CONN_KEY_INVALID"]
CONN_DOES_NOT_EXIST = BY_NAME["CONN_DOES_NOT_EXIST"]
MODEL_DOES_NOT_EXIST = BY_NAME["MODEL_DOES_NOT_EXIST"]
#: The inverse a relation shows from its object's side.
INVERSE = {"synonym": "synonym", "hypernym": "hyponym", "hyponym": "hypernym"}
#: Query parameters of the listings: ListModels asks not to mix in clarifai/main's models
#: (clarifai-grpc ListModelsRequest field 23, deprecated; `_in_app` filters by owner anyway).
LIST_PARAMS: dict[str, dict[str, Any]] = {"models": {"dont_fetch_from_main": True}}


class _AppChanged(Exception):
    """GetApp found the app, and then a listing (or a model's versions) found it, or a model just
    listed, gone: the app changed between two requests of one read. `error`: that answer."""

    def __init__(self, error: ApiError) -> None:
        super().__init__(error.message)
        self.error = error


def read_live(
    client: Client,
    app_id: str,
    *,
    user_id: str | None = None,
    want_models: set[str] | None = None,
    expect_concepts: int = 0,
    sections: frozenset[Kind] | None = frozenset(),
) -> State | None:
    """The live app as a State, or None when it does not exist (see the module docstring).
    ``expect_concepts`` (e.g. the manifest's count) lets the concept pages be asked for at once.
    A read that sees the app (or a model in it) appear or vanish between its requests is made
    once more; a second such read is an ApiError saying the app changed while being read.
    ``sections``: the optional kinds to list too (`state.SECTION_KINDS`; None: all of them)."""
    for attempt in (1, 2):
        try:
            return _read_once(client, app_id, user_id, want_models, expect_concepts, sections)
        except _AppChanged as changed:
            if attempt == 2:
                err = changed.error
                raise ApiError(
                    f"app {app_id} changed while being read (created or deleted by someone else during the read, "
                    f"twice: GetApp found it, then {err.message}); run the command again",
                    code=err.code,
                    http_status=err.http_status,
                    description=err.description,
                    req_id=err.req_id,
                    method=err.method,
                    path=err.path,
                ) from None
    raise AssertionError("unreachable")  # pragma: no cover


def _read_once(
    client: Client,
    app_id: str,
    user_id: str | None,
    want_models: set[str] | None,
    expect_concepts: int,
    sections: frozenset[Kind] | None,
) -> State | None:
    base = client.app_path(app_id, user_id)
    workers = max(4, client.max_workers)
    optional = frozenset(SECTION_KINDS.values()) if sections is None else sections
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="live") as pool:
        # Listings start together with GetApp: an existing app (the usual case) then costs one
        # round trip of latency, not two; for a missing app their errors are discarded.
        f_app = pool.submit(client.get, base)
        lists: dict[str, Future[list[dict[str, Any]]]] = {
            key: pool.submit(
                client.list_all,
                f"{base}/{sub}",
                key,
                LIST_PARAMS.get(key),
                pages_hint=_pages(expect_concepts) if key == "concepts" else 1,
            )
            for key, sub in (
                ("concepts", "concepts"),
                ("concept_relations", "concepts/relations"),
                ("models", "models"),
                ("workflows", "workflows"),
                *((key, key) for key, kind in SECTION_KINDS.items() if kind in optional),
            )
        }
        try:
            raw_app = _shape(f_app.result().get("app"), dict, "GET", base, "app")
        except ApiError as err:
            if _absent(client, err, app_id, user_id):
                _discard(lists.values())
                return None
            _discard(lists.values())
            raise
        f_versions: dict[str, Future[list[dict[str, Any]]]] = {}
        try:
            liveshape.check("app", raw_app, "GET", base)
            # Models and workflows first: the version reads they imply start while the (longer)
            # concept and relation listings are still coming in.
            for key in ("models", "workflows"):
                liveshape.check(key, lists[key].result(), "GET", base + api_path(key))
            owner = str(raw_app.get("user_id") or user_id or client.user_id or "")
            if owner == "me":
                owner = ""
            raw_models = [m for m in lists["models"].result() if _in_app(m, app_id, owner)]
            raw_wfs = lists["workflows"].result()
            workflows = [WorkflowCodec.from_api(w, app_id, owner) for w in raw_wfs]
            pinned = {n.model.id for w in workflows for n in w.nodes if not n.model.external}
            model_ids = [str(m.get("id", "")) for m in raw_models]
            wanted = [m for m in model_ids if want_models is None or m in want_models or m in pinned]
            types = {str(m.get("id", "")): _str(m, "model_type_id") for m in raw_models}
            f_versions = {mid: pool.submit(list_versions, client, base, mid, types[mid]) for mid in wanted}
            for key, sub in (("concepts", "concepts"), ("concept_relations", "concepts/relations")):
                liveshape.check(key, lists[key].result(), "GET", f"{base}/{sub}")
            concepts = [ConceptCodec.from_api(c) for c in lists["concepts"].result() if str(c.get("app_id") or app_id) == app_id]
            relations = _relations(lists["concept_relations"].result(), app_id)
            models = [
                _model(m, f_versions[str(m.get("id", ""))].result() if str(m.get("id", "")) in f_versions else None)
                for m in raw_models
            ]
            extra = review_side.read(
                client, pool, base, {key: lists[key] for key in SECTION_KINDS if key in lists}, app_id, owner
            )
        except ApiError as err:
            _discard([*lists.values(), *f_versions.values()])
            if _vanished(err):
                raise _AppChanged(err) from None
            raise
    return State(
        app=AppCodec.from_api(raw_app, app_id, {w.id for w in workflows}),
        concepts=tuple(concepts),
        relations=tuple(relations),
        models=tuple(models),
        workflows=tuple(workflows),
        collaborators=extra.collaborators,
        datasets=extra.datasets,
        tasks=extra.tasks,
        sections=optional,
        user_id=owner or user_id or client.user_id,
        source="live",
    )


def _vanished(err: ApiError) -> bool:
    """Whether a listing's (or a model's versions') error says that what GetApp / ListModels just
    showed is not there: the app (CONN_DOES_NOT_EXIST 11101, or a Clarifai 404 that is not about
    credentials) or the model (MODEL_DOES_NOT_EXIST 21200)."""
    if err.code in (CONN_DOES_NOT_EXIST, MODEL_DOES_NOT_EXIST):
        return True
    return err.http_status == 404 and bool(err.code) and not _about_credentials(err.code)


def app_exists(client: Client, app_id: str, *, user_id: str | None = None) -> bool:
    """Whether the app exists, by GetApp, with `read_live`'s reading of a missing app (`_absent`):
    an error that does not mean "no such app" is raised."""
    try:
        client.get(client.app_path(app_id, user_id))
    except ApiError as err:
        if _absent(client, err, app_id, user_id):
            return False
        raise
    return True


#: The InputCount fields that count an input once each (clarifai-grpc resources.proto InputCount:
#: processed, to_process, errors, processing; the reindex* fields count the same inputs again).
INPUT_COUNT_FIELDS = ("processed", "to_process", "errors", "processing")


def read_input_count(client: Client, app_id: str, user_id: str | None = None) -> int:
    """How many inputs the app has: GetInputCount (``GET .../inputs/status``, clarifai-grpc
    SingleInputCountResponse `counts`), one request whatever the count (a ListInputs page would
    not count). A missing field reads as 0 (proto3 JSON may leave zeros out)."""
    path = client.app_path(app_id, user_id) + "/inputs/status"
    answer = client.get(path)
    counts = _shape(answer.get("counts", {}), dict, "GET", path, "counts")
    total = 0
    for k in INPUT_COUNT_FIELDS:
        v = counts.get(k, 0)
        if isinstance(v, str) and v.isdigit():  # a 64-bit-style number written as a string
            v = int(v)
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise ApiError(f"GET {path}: unexpected response shape: 'counts.{k}' is not a count", method="GET", path=path)
        total += v
    return total


def knowledge_graph_ids(client: Client, app_id: str, user_id: str | None = None) -> set[str]:
    """The ids of the app's knowledge graphs (ListKnowledgeGraphs, ``GET
    .../concepts/knowledge_graphs``, which takes no paging: clarifai-grpc ListKnowledgeGraphsRequest
    has only user_app_id; MultiKnowledgeGraphResponse `knowledge_graphs`)."""
    path = client.app_path(app_id, user_id) + "/concepts/knowledge_graphs"
    graphs = _shape(client.get(path).get("knowledge_graphs", []), list, "GET", path, "knowledge_graphs")
    return {str(g.get("id")) for g in graphs if isinstance(g, dict) and g.get("id")}


def _pages(expect: int) -> int:
    """Pages to ask for at once for a listing of about `expect` items: all of them plus the
    closing one when the count is a multiple of the page size (an empty page ends a listing)."""
    return max(1, expect // MAX_PER_PAGE + 1)


def _in_app(raw: dict[str, Any], app_id: str, owner: str) -> bool:
    """Whether a listed model belongs to this app. ListModels scoped to an app used to list
    clarifai/main's models too (clarifai-grpc, ListModelsRequest.dont_fetch_from_main: "Old API
    behavior resulted in returning clarifai main models when calling ListModels while scoped to an
    app"); the flag is sent (`LIST_PARAMS`), but it is deprecated, so the owner decides."""
    m_app, m_user = _str(raw, "app_id"), _str(raw, "user_id")
    return m_app in ("", app_id) and (not m_user or not owner or m_user in (owner, "me"))


def list_versions(client: Client, base: str, model_id: str, model_type: str) -> list[dict[str, Any]]:
    """Every version of a model, newest first by parsed `created_at` (server order on ties), each
    with its full `output_info`. ListModelVersions may show only a summary of a version's
    configuration (no `output_info.data` / `params`: quirk `listing-without-config`); such a
    version's configuration is then read from GetModelOutputInfo
    (GET .../models/{id}/versions/{version}/output_info, clarifai-grpc's `additional_2` binding of
    that RPC, documented in its service_pb2_grpc.py as "Get a the output info for a given model_id
    or model_id/version_id"), never taken as empty -- that would plan a new version on every run."""
    path = base + api_path("models", model_id, "versions")
    versions = client.list_all(path, "model_versions")
    liveshape.check("model_versions", versions, "GET", path)
    versions = sorted(versions, key=lambda v: timestamp_key(v.get("created_at")), reverse=True)
    # A trainable model's version that never trained or failed is never reused or pointed at, so
    # its configuration is not worth a round trip -- unless it is the newest, whose configuration
    # is the model's (`_model`). The usual case: the bare version PostModels makes.
    lacking = [
        v
        for i, v in enumerate(versions)
        if not modeltypes.shows_config(model_type, v) and (i == 0 or not _never_usable(model_type, v))
    ]
    if lacking:
        found = dict(zip((id(v) for v in lacking), client.map(lambda v: _output_info(client, path, v, model_type), lacking)))
        versions = [{**v, "output_info": found[id(v)]} if id(v) in found else v for v in versions]
    return sorted(versions, key=lambda v: timestamp_key(v.get("created_at")), reverse=True)


def _never_usable(model_type: str, raw: dict[str, Any]) -> bool:
    status = raw.get("status")
    if not isinstance(status, dict):
        status = {}
    return (
        modeltypes.canonical_type(model_type) in modeltypes.TRAINABLE_TYPES
        and training_code(status.get("code")) in TRAINING_FAILED
    )


def _output_info(client: Client, versions_path: str, raw: dict[str, Any], model_type: str) -> dict[str, Any]:
    path = versions_path + api_path(_str(raw, "id"), "output_info")
    model = _shape(client.get(path).get("model"), dict, "GET", path, "model")
    # SingleModelResponse: the version's output_info as the model's, or inside model_version
    mv = model.get("model_version") if isinstance(model.get("model_version"), dict) else {}
    candidates = [x for x in (model.get("output_info"), mv.get("output_info")) if isinstance(x, dict)]
    liveshape.check("model_versions", [{"output_info": c} for c in candidates], "GET", path)
    for oi in candidates:
        if modeltypes.shows_config(model_type, {"output_info": oi}):
            return oi
    return candidates[0] if candidates else {}


_RFC3339 = re.compile(r"^(\d{4}-\d\d-\d\d)[Tt ](\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?([Zz]|[+-]\d\d:\d\d)$")


def timestamp_key(value: Any) -> tuple[int, int, int]:
    """A sort key for an RFC3339 timestamp with 0 to 9 fractional digits and any offset:
    (1, epoch seconds, nanoseconds). Strings of different precision do not sort as times
    ("...:05Z" > "...:05.5Z"), so versions are never ordered by the string. Missing or
    unparseable: (0, 0, 0), i.e. oldest; ties keep server order (the sorts are stable)."""
    m = _RFC3339.match(value) if isinstance(value, str) else None
    if not m:
        return (0, 0, 0)
    day, clock, frac, zone = m.groups()
    try:
        when = datetime.fromisoformat(f"{day}T{clock}" + ("+00:00" if zone in "Zz" else zone))
    except ValueError:
        return (0, 0, 0)
    return (1, int(when.timestamp()), int((frac or "").ljust(9, "0")))


def _discard(futures: Any) -> None:
    for f in futures:
        f.cancel()
        if not f.cancelled():
            f.exception()  # wait, and swallow: the caller already has its answer


def _absent(client: Client, err: ApiError, app_id: str, user_id: str | None) -> bool:
    if err.code == CONN_DOES_NOT_EXIST:
        return True
    # A Clarifai answer (a parsed status) with HTTP 404 that is not about credentials. A 404
    # without a Clarifai body (an HTML page: a wrong --api-base) is an error, not "no app".
    if err.http_status == 404 and err.code and not _about_credentials(err.code):
        return True
    if err.code != CONN_KEY_INVALID:
        return False
    # "Invalid API key/application pair": a bad key, or a good key and no such app. Ask.
    user = user_id or client.user_id or "me"
    try:
        apps = client.list_all(api_path("v2", "users", user, "apps"), "apps")
    except ApiError:
        return False
    return all(str(a.get("id")) != app_id for a in apps)


def _about_credentials(code: int) -> bool:
    """110xx and 11200: the key, not the resource."""
    return (
        BY_NAME["CONN_ACCOUNT_ISSUES"] <= code < BY_NAME["CONN_BAD_REQUEST_FORMAT"]
        or code == BY_NAME["CONN_AUTH_METHOD_DISABLED"]
    )


def _shape(value: Any, typ: type, method: str, path: str, what: str) -> Any:
    if not isinstance(value, typ):
        raise ApiError(
            f"{method} {path}: unexpected response shape: '{what}' is not a JSON {'object' if typ is dict else typ.__name__}",
            method=method,
            path=path,
        )
    return value


def _relations(raw: list[dict[str, Any]], app_id: str) -> list[ConceptRelation]:
    """Dedupe rule. Relations are created on a subject concept of this app, and the API shows each
    from its object's side too (inverse predicate, subject and object swapped), possibly in the
    same app-wide listing. So:
    1. an entry whose subject is not a concept of this app is such a mirror view: dropped;
    2. entries that are the same relation -- the same server id, or the same content up to
       inversion (a R b  ==  b inverse(R) a, same knowledge graph) -- count once, as the first
       one listed (servers list the stored row before its mirror; the sandbox does).
    Result: a relation created once reads back once, with subject and object as created."""
    out: list[ConceptRelation] = []
    seen_ids: set[str] = set()
    seen: set[tuple[str, str, str, str, str]] = set()
    for item in raw:
        r = RelationCodec.from_api(item, app_id)
        if r.subject == "" or RelationCodec.concept_ref(item.get("subject_concept"), app_id).external:
            continue
        subj, pred, obj, kg, sid = r.subject, r.predicate, r.object, r.knowledge_graph_id, r.server_id
        fwd = (subj, pred, str(obj), kg, "")
        if (sid and sid in seen_ids) or fwd in seen:
            continue
        seen.add(fwd)
        if not obj.external and pred in INVERSE:
            seen.add((obj.id, INVERSE[pred], subj, kg, ""))
        if sid:
            seen_ids.add(sid)
        out.append(r)
    return out


def _model(raw: dict[str, Any], versions_raw: list[dict[str, Any]] | None) -> Model:
    # Newest first by parsed time; `sorted(reverse=True)` is stable, so ties keep server order.
    ordered = sorted(versions_raw or [], key=lambda v: timestamp_key(v.get("created_at")), reverse=True)
    return ModelCodec.from_api(raw, ordered)


def fingerprint(state: State) -> str:
    """A stable sha256 of the state including bookkeeping fields (not `source`)."""
    d = dataclasses.asdict(state)
    d.pop("source", None)
    # the raw objects are kept for apply's overwrites; what they say that matters is in the fields
    for res in (d["app"], *d["concepts"], *d["models"], *d["workflows"], *d["datasets"], *d["tasks"]):
        res.pop("raw", None)
    by: Callable[[str], Callable[[dict[str, Any]], Any]] = lambda k: lambda x: str(x.get(k))
    d["concepts"] = sorted(d["concepts"], key=by("id"))
    d["relations"] = sorted(d["relations"], key=lambda r: json.dumps(r, sort_keys=True))
    d["models"] = sorted(d["models"], key=by("id"))
    for w in d["workflows"]:
        w["nodes"] = sorted(w["nodes"], key=by("id"))
    d["workflows"] = sorted(d["workflows"], key=by("id"))
    for key in ("collaborators", "datasets", "tasks"):
        d[key] = sorted(d[key], key=lambda x: json.dumps(x, sort_keys=True, default=str))
    d["sections"] = sorted(d["sections"])
    blob = json.dumps(d, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()
