"""Handlers for apps, concepts and concept relations.

Semantics chosen where the reference leaves room (documented in README, "The local sandbox"):
- apps are never created implicitly; PostApps first. PatchApps / PatchApp accept `overwrite`
  (default) and `remove`; overwrite replaces each top-level field that is sent. App metadata
  follows `metadata_action.op` (overwrite, the default; merge; delete of the keys sent).
- `default_workflow_id` (or `default_workflow {id, user_id?, app_id?}`) must name an existing
  workflow of the app (or of clarifai/main): WORKFLOW_DOES_NOT_EXIST (404) otherwise.
- concepts: ids required; PatchConcepts supports only `overwrite` (name, definition, metadata);
  concepts always read back with `value: 1`. Answered as the real API does (Clarifai/clarifai-python-grpc
  tests/client/test_concept_crud.py): a concept id that exists already is CONCEPTS_INVALID_REQUEST
  (40003), description "Invalid request", "duplicate" only in `details`, HTTP 400 (the HTTP code is
  the REST gateway's usual one for an invalid request; the test runs over gRPC); patching (or
  reading) a concept the app does not have is CONN_DOES_NOT_EXIST (11101) "Resource does not exist"
  (test_patching_public_concept_fails in the same file).
- relations: `predicate` is synonym / hypernym / hyponym; the object concept must exist (an
  object with `app_id: main` and no user id means clarifai/main); duplicates of (subject,
  predicate, object, knowledge graph) are DATABASE_DUPLICATE_KEY. Listing per concept also shows
  relations where the concept is the object, inverted (hypernym <-> hyponym), as Clarifai does;
  listing the whole app (`concepts/relations`) shows each stored relation once.
- knowledge graphs: PostKnowledgeGraphs / ListKnowledgeGraphs keep them (no patch or delete, as in
  the API); a relation's `knowledge_graph_id` is checked against them only under the quirk
  `knowledge-graph-must-exist`. GetInputCount counts the app's inputs (all `processed`).
- quirks played here: `default-workflow-id-ignored` / `-object-ignored` (which default-workflow
  field a PatchApps honours and an answer shows), `hosted-image` (an app image stored and shown
  hosted, one without a url refused), `patch-overwrite-replaces`, `relation-inverse-listing`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from reconciler.core.idrules import CONCEPT_ID
from reconciler.sandbox.ctx import MAIN_APP, MAIN_USER, Ctx, public
from reconciler.sandbox.h_models import clear_unsent
from reconciler.sandbox.quirks import (
    HOSTED_IMAGE,
    KNOWLEDGE_GRAPH_MUST_EXIST,
    PATCH_OVERWRITE_REPLACES,
    RELATION_INVERSE_LISTING,
    default_workflow_fields,
    hosted_image,
)
from reconciler.sandbox.wire import (
    CONCEPTS_INVALID_REQUEST,
    CONN_DOES_NOT_EXIST,
    CONN_INVALID_REQUEST,
    DATABASE_DUPLICATE_KEY,
    WORKFLOW_DOES_NOT_EXIST,
    Fail,
    action_of,
    check_id,
    get,
    merge,
    new_id,
    norm_visibility,
    objects,
    page_slice,
    paging,
    remove,
    rfc3339,
    want,
)

# --- apps ----------------------------------------------------------------------------------------


def app_out(doc: dict[str, Any], quirks: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The app as answered: its default workflow as the `default_workflow` object and the
    deprecated `default_workflow_id`, or only one of them under a default-workflow quirk."""
    out = public(doc)
    show_obj, show_id = default_workflow_fields(quirks, doc["id"])
    dw = doc.get("_dw")
    if dw and doc.get("default_workflow_id") and show_obj:
        out["default_workflow"] = {"id": doc["default_workflow_id"], "user_id": dw["user_id"], "app_id": dw["app_id"]}
    if not show_id:
        out.pop("default_workflow_id", None)
    return out


def _resolve_default_wf(ctx: Ctx, user: str, app: str, spec: dict[str, Any]) -> dict[str, str]:
    wf_id = want(spec.get("id", ""), str, "default_workflow.id")
    wf_user = spec.get("user_id") or ""
    wf_app = spec.get("app_id") or ""
    candidates = [(wf_user or user, wf_app)] if wf_app else [(user, app), (MAIN_USER, MAIN_APP)]
    for cu, ca in candidates:
        if (cu, ca) == (user, app) or ctx.readable_app(cu, ca):
            if ctx.tx.get(cu, ca, "workflow", wf_id) is not None:
                return {"user_id": cu, "app_id": ca}
    raise Fail(WORKFLOW_DOES_NOT_EXIST, f"default workflow {wf_id!r} does not exist")


def _apply_app_fields(ctx: Ctx, doc: dict[str, Any], patch: dict[str, Any], meta_op: str) -> None:
    for k in ("name", "description", "notes", "default_language"):
        if k in patch and patch[k] is not None:
            doc[k] = want(patch[k], str, k)
    if patch.get("visibility") is not None:
        doc["visibility"] = norm_visibility(patch["visibility"])
    if patch.get("image") is not None:
        image = want(patch["image"], dict, "image")
        if HOSTED_IMAGE in ctx.quirks:
            url = image.get("url")
            if not isinstance(url, str) or not url:
                raise Fail(CONN_INVALID_REQUEST, "image: give image.url; a hosted image cannot be sent back")
            image = hosted_image(url)
        doc["image"] = image
    if patch.get("metadata") is not None:
        meta = want(patch["metadata"], dict, "metadata")
        if meta_op == "merge":
            doc["metadata"] = merge(doc.get("metadata", {}), meta)
        elif meta_op == "delete":
            doc["metadata"] = remove(doc.get("metadata", {}), {k: True for k in meta})
        else:
            doc["metadata"] = meta
    spec = None
    use_obj, use_id = default_workflow_fields(ctx.quirks, doc["id"])
    if patch.get("default_workflow") is not None and use_obj:
        spec = want(patch["default_workflow"], dict, "default_workflow")
    elif patch.get("default_workflow_id") and use_id:
        spec = {"id": want(patch["default_workflow_id"], str, "default_workflow_id")}
    if spec is not None and spec.get("id"):
        doc["_dw"] = _resolve_default_wf(ctx, doc["user_id"], doc["id"], spec)
        doc["default_workflow_id"] = spec["id"]


def post_apps(ctx: Ctx) -> dict[str, Any]:
    ctx.check_user(ctx.user_id, None, write=True)
    out = []
    for item in objects(ctx.body, "apps"):
        app_id = check_id(item.get("id"), "app", CONN_INVALID_REQUEST)
        ts = rfc3339(ctx.now)
        doc: dict[str, Any] = {
            "id": app_id,
            "name": app_id,
            "user_id": ctx.user_id,
            "created_at": ts,
            "modified_at": ts,
            "default_language": "en",
            "metadata": {},
            "visibility": {"gettable": 10},
        }
        if not ctx.tx.insert(ctx.user_id, app_id, "app", app_id, doc):
            raise Fail(DATABASE_DUPLICATE_KEY, f"app {app_id!r} already exists")
        _apply_app_fields(ctx, doc, item, "overwrite")
        ctx.tx.update(ctx.user_id, app_id, "app", app_id, doc)
        out.append(app_out(doc, ctx.quirks))
    return {"apps": out}


def _patch_one(ctx: Ctx, item: dict[str, Any], app_id: str) -> dict[str, Any]:
    action = action_of(ctx.body, ("overwrite", "remove"), CONN_INVALID_REQUEST)
    meta_op = "overwrite"
    if ctx.body.get("metadata_action") is not None:
        meta_op = want(ctx.body["metadata_action"], dict, "metadata_action").get("op") or "overwrite"
        if meta_op not in ("overwrite", "merge", "delete"):
            raise Fail(CONN_INVALID_REQUEST, f"metadata_action.op {meta_op!r} is not supported")
    ctx.check_user(ctx.user_id, app_id, write=True)
    doc = ctx.tx.get(ctx.user_id, app_id, "app", app_id)
    if doc is None:
        raise Fail(CONN_DOES_NOT_EXIST, f"app {ctx.user_id}/{app_id} does not exist")
    if action == "overwrite":
        if PATCH_OVERWRITE_REPLACES in ctx.quirks:  # the whole app is what was sent
            clear_unsent(
                doc,
                item,
                {
                    "name": doc["id"],
                    "description": None,
                    "notes": None,
                    "image": None,
                    "default_language": "en",
                    "visibility": {"gettable": 10},
                },
            )
            if item.get("metadata") is None:
                doc["metadata"] = {}
            use_obj, use_id = default_workflow_fields(ctx.quirks, app_id)  # an ignored field is as if not sent
            if not (use_obj and item.get("default_workflow") is not None) and not (use_id and item.get("default_workflow_id")):
                doc.pop("default_workflow_id", None)
                doc.pop("_dw", None)
        _apply_app_fields(ctx, doc, item, meta_op)
    elif isinstance(item.get("image"), dict) and "url" in item["image"]:  # `remove`: clears image.url
        doc.get("image", {}).pop("url", None)
    doc["modified_at"] = rfc3339(ctx.now)
    ctx.tx.update(ctx.user_id, app_id, "app", app_id, doc)
    return app_out(doc, ctx.quirks)


def patch_apps(ctx: Ctx) -> dict[str, Any]:
    return {
        "apps": [
            _patch_one(ctx, item, check_id(item.get("id"), "app", CONN_INVALID_REQUEST)) for item in objects(ctx.body, "apps")
        ]
    }


def patch_app(ctx: Ctx) -> dict[str, Any]:
    return {"app": _patch_one(ctx, get(ctx.body, "app", dict, {}), ctx.app_id)}


def get_app(ctx: Ctx) -> dict[str, Any]:
    return {"app": app_out(ctx.app(), ctx.quirks)}


def list_apps(ctx: Ctx) -> dict[str, Any]:
    ctx.check_user(ctx.user_id, None, write=False)
    apps = ctx.tx.apps_of(ctx.user_id)
    if ctx.user_id != ctx.key_user:  # only clarifai/main is public
        apps = [a for a in apps if a["id"] == MAIN_APP]
    page, per_page = paging(ctx.query)
    return {"apps": [app_out(a, ctx.quirks) for a in page_slice(apps, page, per_page)]}


def across_apps(list_one: Callable[[Ctx], dict[str, Any]], key: str) -> Callable[[Ctx], dict[str, Any]]:
    """A user-level listing (`/v2/users/{user_id}/models`, `.../workflows`) from an app-level one.
    With an app-specific key it is the key's app (clarifai-grpc's JSON client sends an app key's
    ListModels / ListWorkflows there: the user id defaults to "me"); with a PAT, every app of the user."""

    def handler(ctx: Ctx) -> dict[str, Any]:
        if ctx.key_app is not None:
            return list_one(dataclasses.replace(ctx, params={**ctx.params, "user_app_id.app_id": ctx.key_app}))
        ctx.check_user(ctx.user_id, None, write=False)
        items: list[Any] = []
        for app in ctx.tx.apps_of(ctx.user_id):
            page = 1
            while True:
                query = {**ctx.query, "page": [str(page)], "per_page": ["1000"]}
                got = (
                    list_one(dataclasses.replace(ctx, params={**ctx.params, "user_app_id.app_id": app["id"]}, query=query)).get(
                        key
                    )
                    or []
                )
                items.extend(got)
                if len(got) < 1000:
                    break
                page += 1
        page, per_page = paging(ctx.query)
        return {key: page_slice(items, page, per_page)}

    return handler


def delete_app(ctx: Ctx) -> dict[str, Any]:
    ctx.app(write=True)
    ctx.tx.delete_app(ctx.user_id, ctx.app_id)
    return {}


# --- concepts ------------------------------------------------------------------------------------


def concept_out(doc: dict[str, Any]) -> dict[str, Any]:
    out = public(doc)
    out["value"] = 1.0
    return out


def _concept(ctx: Ctx, cid: str) -> dict[str, Any]:
    doc = ctx.tx.get(ctx.user_id, ctx.app_id, "concept", cid)
    if doc is None:
        raise Fail(CONN_DOES_NOT_EXIST, f"concept {cid!r} does not exist")
    return doc


def duplicate_concept(cid: str) -> Fail:
    """The real API's answer to PostConcepts with an id the app has (see the module docstring)."""
    return Fail(CONCEPTS_INVALID_REQUEST, f"duplicate concept id: concept {cid!r} already exists in the app", http=400)


def post_concepts(ctx: Ctx) -> dict[str, Any]:
    ctx.app(write=True)
    out = []
    for item in objects(ctx.body, "concepts"):
        # at most 32 characters (idrules.CONCEPT_ID, with its sources): 40003 "Invalid request",
        # HTTP 400, the id in details
        cid = check_id(item.get("id"), "concept", CONCEPTS_INVALID_REQUEST, rule=CONCEPT_ID)
        doc: dict[str, Any] = {
            "id": cid,
            "name": get(item, "name", str, "") or cid,
            "created_at": rfc3339(ctx.now),
            "language": "en",
            "app_id": ctx.app_id,
            "user_id": ctx.user_id,
            "visibility": {"gettable": 10},
        }
        if item.get("definition"):
            doc["definition"] = get(item, "definition", str)
        if item.get("metadata") is not None:
            doc["metadata"] = get(item, "metadata", dict)
        if not ctx.tx.insert(ctx.user_id, ctx.app_id, "concept", cid, doc):
            raise duplicate_concept(cid)
        out.append(concept_out(doc))
    return {"concepts": out}


def patch_concepts(ctx: Ctx) -> dict[str, Any]:
    ctx.app(write=True)
    action_of(ctx.body, ("overwrite",), CONCEPTS_INVALID_REQUEST)
    out = []
    for item in objects(ctx.body, "concepts"):
        doc = _concept(ctx, check_id(item.get("id"), "concept", CONCEPTS_INVALID_REQUEST))
        if PATCH_OVERWRITE_REPLACES in ctx.quirks:
            clear_unsent(doc, item, {"name": doc["id"], "definition": None, "metadata": None})
        for k in ("name", "definition"):
            if item.get(k) is not None:
                doc[k] = get(item, k, str)
        if item.get("metadata") is not None:
            doc["metadata"] = get(item, "metadata", dict)
        ctx.tx.update(ctx.user_id, ctx.app_id, "concept", doc["id"], doc)
        out.append(concept_out(doc))
    return {"concepts": out}


def get_concept(ctx: Ctx) -> dict[str, Any]:
    ctx.app()
    return {"concept": concept_out(_concept(ctx, ctx.params["concept_id"]))}


def list_concepts(ctx: Ctx) -> dict[str, Any]:
    ctx.app()
    docs = ctx.tx.list(ctx.user_id, ctx.app_id, "concept", page=paging(ctx.query))
    return {"concepts": [concept_out(d) for d in docs]}


# --- concept relations ---------------------------------------------------------------------------

PREDICATES = ("synonym", "hypernym", "hyponym")
_INVERSE = {"synonym": "synonym", "hypernym": "hyponym", "hyponym": "hypernym"}


def _concept_ref_out(ctx: Ctx, ref: dict[str, str]) -> dict[str, Any]:
    doc = ctx.tx.get(ref["user_id"], ref["app_id"], "concept", ref["id"])
    return concept_out(doc) if doc else {"id": ref["id"], "app_id": ref["app_id"], "user_id": ref["user_id"]}


def _relation_out(ctx: Ctx, doc: dict[str, Any], *, inverted: bool = False) -> dict[str, Any]:
    subj, obj, pred = doc["_subject"], doc["_object"], doc["predicate"]
    if inverted:
        subj, obj, pred = obj, subj, _INVERSE[pred]
    out = {
        "id": doc["id"],
        "subject_concept": _concept_ref_out(ctx, subj),
        "object_concept": _concept_ref_out(ctx, obj),
        "predicate": pred,
        "visibility": {"gettable": 10},
    }
    # proto3 JSON leaves out empty strings: the real answer has no knowledge_graph_id for the app's
    # own graph (Clarifai/docs code_output_examples/knowledge_graph_create.js, tests/parity).
    if doc.get("knowledge_graph_id"):
        out["knowledge_graph_id"] = doc["knowledge_graph_id"]
    return out


def post_concept_relations(ctx: Ctx) -> dict[str, Any]:
    ctx.app(write=True)
    subject = _concept(ctx, ctx.params["concept_id"])
    here = {"user_id": ctx.user_id, "app_id": ctx.app_id}
    existing = ctx.tx.list(ctx.user_id, ctx.app_id, "relation")
    out = []
    for item in objects(ctx.body, "concept_relations"):
        obj = get(item, "object_concept", dict, {})
        oid = check_id(obj.get("id"), "object concept", CONCEPTS_INVALID_REQUEST)
        o_app = get(obj, "app_id", str, "") or ctx.app_id
        o_user = get(obj, "user_id", str, "") or (MAIN_USER if o_app == MAIN_APP and o_app != ctx.app_id else ctx.user_id)
        pred = get(item, "predicate", str, "")
        if pred not in PREDICATES:
            raise Fail(CONCEPTS_INVALID_REQUEST, f"predicate must be one of {', '.join(PREDICATES)}, not {pred!r}")
        if (o_user, o_app) != (ctx.user_id, ctx.app_id) and not ctx.readable_app(o_user, o_app):
            raise Fail(CONCEPTS_INVALID_REQUEST, f"object concept app {o_user}/{o_app} is not readable")
        if ctx.tx.get(o_user, o_app, "concept", oid) is None:
            raise Fail(CONCEPTS_INVALID_REQUEST, f"object concept {o_user}/{o_app}/{oid} does not exist", http=404)
        kg = get(item, "knowledge_graph_id", str, "")
        if kg and KNOWLEDGE_GRAPH_MUST_EXIST in ctx.quirks and ctx.tx.get(ctx.user_id, ctx.app_id, "knowledge_graph", kg) is None:
            raise Fail(CONCEPTS_INVALID_REQUEST, f"knowledge graph {kg!r} does not exist in the app", http=404)
        doc = {
            "id": new_id(),
            "_subject": {"id": subject["id"], **here},
            "_object": {"id": oid, "user_id": o_user, "app_id": o_app},
            "predicate": pred,
            "knowledge_graph_id": kg,
        }
        key = lambda d: (d["_subject"]["id"], d["predicate"], d["_object"], d["knowledge_graph_id"])  # noqa: E731
        if any(key(e) == key(doc) for e in existing):
            raise Fail(DATABASE_DUPLICATE_KEY, f"relation {subject['id']} {pred} {oid} already exists")
        ctx.tx.insert(ctx.user_id, ctx.app_id, "relation", doc["id"], doc)
        existing.append(doc)
        out.append(_relation_out(ctx, doc))
    return {"concept_relations": out}


def list_concept_relations(ctx: Ctx) -> dict[str, Any]:
    ctx.app()
    cid = ctx.params.get("concept_id")
    pred = (ctx.query.get("predicate") or [""])[-1]
    kg = ctx.query.get("knowledge_graph_id")
    rels = []
    for doc in ctx.tx.list(ctx.user_id, ctx.app_id, "relation"):
        if kg is not None and doc.get("knowledge_graph_id", "") != kg[-1]:
            continue
        if cid is None or doc["_subject"]["id"] == cid:
            rels.append(_relation_out(ctx, doc))
        elif doc["_object"] == {"id": cid, "user_id": ctx.user_id, "app_id": ctx.app_id}:
            rels.append(_relation_out(ctx, doc, inverted=True))
    if pred:
        rels = [r for r in rels if r["predicate"] == pred]
    page, per_page = paging(ctx.query)
    return {"concept_relations": page_slice(rels, page, per_page)}


def delete_concept_relations(ctx: Ctx) -> dict[str, Any]:
    ctx.app(write=True)
    ids = [want(i, str, "ids[]") for i in get(ctx.body, "ids", list, [])]
    if not ids:
        raise Fail(CONCEPTS_INVALID_REQUEST, "ids is required")
    strict = RELATION_INVERSE_LISTING in ctx.quirks  # then only the stored subject's path deletes
    for rid in ids:
        doc = ctx.tx.get(ctx.user_id, ctx.app_id, "relation", rid) if strict else None
        if strict and (doc is None or doc["_subject"]["id"] != ctx.params.get("concept_id")):
            raise Fail(CONCEPTS_INVALID_REQUEST, f"concept {ctx.params.get('concept_id')!r} has no relation {rid!r}", http=404)
        if not ctx.tx.delete(ctx.user_id, ctx.app_id, "relation", rid):
            raise Fail(CONCEPTS_INVALID_REQUEST, f"concept relation {rid!r} does not exist", http=404)
    return {}


# --- knowledge graphs ----------------------------------------------------------------------------
# clarifai-grpc: PostKnowledgeGraphs / ListKnowledgeGraphs (.../concepts/knowledge_graphs), a
# KnowledgeGraph {id, name, description, examples_app_id, sampled_examples_app_id}; the API has no
# patch or delete for them. Kept so that `knowledge-graph-must-exist` has graphs to find.

_KG_FIELDS = ("name", "description", "examples_app_id", "sampled_examples_app_id")


def post_knowledge_graphs(ctx: Ctx) -> dict[str, Any]:
    ctx.app(write=True)
    out = []
    for item in objects(ctx.body, "knowledge_graphs"):
        kid = check_id(item.get("id"), "knowledge graph", CONCEPTS_INVALID_REQUEST)
        doc: dict[str, Any] = {"id": kid}
        for k in _KG_FIELDS:
            if item.get(k):
                doc[k] = get(item, k, str)
        if not ctx.tx.insert(ctx.user_id, ctx.app_id, "knowledge_graph", kid, doc):
            raise Fail(DATABASE_DUPLICATE_KEY, f"knowledge graph {kid!r} already exists")
        out.append(public(doc))
    return {"knowledge_graphs": out}


def list_knowledge_graphs(ctx: Ctx) -> dict[str, Any]:
    ctx.app()
    docs = ctx.tx.list(ctx.user_id, ctx.app_id, "knowledge_graph")  # the request has no paging
    return {"knowledge_graphs": [public(d) for d in docs]}


# --- input count ---------------------------------------------------------------------------------


def get_input_count(ctx: Ctx) -> dict[str, Any]:
    """GetInputCount (`.../inputs/status`): SingleInputCountResponse `counts`, an InputCount whose
    fields are all shown even when zero (cl_show_if_empty in clarifai-grpc's resources.proto).
    The sandbox processes an input at once: every input is `processed`."""
    ctx.app()
    n = len(ctx.tx.list(ctx.user_id, ctx.app_id, "input"))
    zero = ("to_process", "errors", "processing", "reindexed", "to_reindex", "reindex_errors", "reindexing")
    return {"counts": {"processed": n, **{k: 0 for k in zero}}}
