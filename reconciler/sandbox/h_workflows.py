"""Handlers for workflows, inputs and annotations.

Semantics (README, "The local sandbox"):
- Every workflow node needs an id unique in the workflow and a `model {id, model_version {id}}`
  (plus `user_id` / `app_id` for another app's model, e.g. clarifai/main). A missing model or
  version is MODEL_DOES_NOT_EXIST (404); an omitted version pins the model's latest. A version of a
  trainable model that will never train (PostModels' own, or a failed one) is
  WORKFLOW_REQUIRE_TRAINED_MODEL (22002, 400). Duplicate
  node ids, `node_inputs` naming unknown nodes, cycles and node-less workflows are
  WORKFLOW_INVALID_GRAPH (400).
- PatchWorkflows: `overwrite` replaces the nodes (and each other field sent), `merge` merges nodes
  by id and metadata recursively, `remove` drops nodes by id and metadata keys given as true. A
  change of nodes makes a new workflow version id.
- The app's default workflow cannot be deleted (WORKFLOW_INVALID_ARGUMENT): set another first.
- A node's model given by bare id (no `user_id` / `app_id`) is this app's model of that id, else
  clarifai/main's: Clarifai/clarifai-python-grpc tests/client/test_workflow_crud.py posts nodes
  naming the public General and moderation models by id and version only.
- Inputs get INPUT_SUCCESS at once; an app's default workflow then runs on each new input and its
  annotation writers write annotations (see h_run.py). Reading or deleting an input the app does
  not have is CONN_DOES_NOT_EXIST (tests/common.py `wait_for_inputs_delete` in
  clarifai-python-grpc waits for exactly that code after DeleteInputs).
- PatchInputs: `overwrite` replaces each `data` field sent, `merge` merges `data` (concepts by id,
  metadata recursively), `remove` drops concepts by id and metadata keys given as true; concepts
  without a name get their id as name (test_image_crud.py reads `data.concepts[0].name` back as
  the id it patched in).
- Annotations: status defaults to ANNOTATION_SUCCESS; ListAnnotations without
  `list_all_annotations` and without a user / model-version filter lists only ANNOTATION_SUCCESS
  ("trusted") annotations; `statuses` (codes or names) filters by status instead. A missing
  annotation is CONN_DOES_NOT_EXIST (404).
"""

from __future__ import annotations

import copy
import graphlib
from typing import Any

from reconciler.core.idrules import NODE_ID, REF_ID
from reconciler.sandbox.ctx import MAIN_APP, MAIN_USER, Ctx, public
from reconciler.sandbox.h_models import check_fields, clear_unsent
from reconciler.sandbox.h_run import annotate_new_inputs, run_tasks_on_new_inputs
from reconciler.sandbox.h_tasks import REVIEWING, assign_for_review
from reconciler.sandbox.quirks import PATCH_OVERWRITE_REPLACES, WORKFLOW_MAX_20_NODES
from reconciler.sandbox.wire import (
    ANNOTATION_INVALID_ARGUMENT,
    ANNOTATION_SUCCESS,
    CONN_DOES_NOT_EXIST,
    DATABASE_DUPLICATE_KEY,
    INPUT_DOES_NOT_EXIST,
    INPUT_INVALID_ARGUMENT,
    INPUT_SUCCESS,
    MODEL_DOES_NOT_EXIST,
    STATUS_NAMES,
    WORKFLOW_DOES_NOT_EXIST,
    WORKFLOW_INVALID_ARGUMENT,
    WORKFLOW_INVALID_GRAPH,
    WORKFLOW_REQUIRE_TRAINED_MODEL,
    Fail,
    action_of,
    check_id,
    f32_concepts,
    get,
    merge,
    new_id,
    norm_status,
    norm_visibility,
    objects,
    page_slice,
    paging,
    qbool,
    qlist,
    remove,
    rfc3339,
    want,
)

# --- workflows -----------------------------------------------------------------------------------------


def _norm_nodes(ctx: Ctx, raw: Any) -> list[dict[str, Any]]:
    raw = want(raw, list, "nodes")
    if not raw:
        raise Fail(WORKFLOW_INVALID_GRAPH, "a workflow needs at least one node")
    check_fields(raw, "WorkflowNode", "nodes")
    nodes: list[dict[str, Any]] = []
    graph: dict[str, set[str]] = {}
    for n in raw:
        n = want(n, dict, "nodes[]")
        # node ids are not API ids (clarifai-python clarifai/workflows/validate.py: "Node IDs are not
        # validated as IDs by the API"; its production fixture has node `general-v1.5-concept`)
        nid = check_id(n.get("id"), "node", WORKFLOW_INVALID_GRAPH, rule=NODE_ID)
        if nid in graph:
            raise Fail(WORKFLOW_INVALID_GRAPH, f"node id {nid!r} is used twice")
        m = get(n, "model", dict, {})
        mid = check_id(m.get("id"), f"node {nid!r}: model", WORKFLOW_INVALID_GRAPH, rule=REF_ID)
        mu, ma = get(m, "user_id", str, ""), get(m, "app_id", str, "")
        if (
            not (mu or ma)
            and ctx.tx.get(ctx.user_id, ctx.app_id, "model", mid) is None
            and ctx.readable_app(MAIN_USER, MAIN_APP)
            and ctx.tx.get(MAIN_USER, MAIN_APP, "model", mid)
        ):
            mu, ma = MAIN_USER, MAIN_APP  # a public model named by bare id
        mu, ma = mu or ctx.user_id, ma or ctx.app_id
        here = (mu, ma) == (ctx.user_id, ctx.app_id)
        model = ctx.tx.get(mu, ma, "model", mid) if here or ctx.readable_app(mu, ma) else None
        if model is None:
            raise Fail(MODEL_DOES_NOT_EXIST, f"node {nid!r}: model {mu}/{ma}/{mid} does not exist")
        vid = get(get(m, "model_version", dict, {}), "id", str, "")
        if not vid:
            latest = ctx.tx.list(mu, ma, "version", mid, newest_first=True)
            vid = latest[0]["id"] if latest else ""
        version = ctx.tx.get(mu, ma, "version", vid, parent=mid) if vid else None
        if version is None:
            raise Fail(MODEL_DOES_NOT_EXIST, f"node {nid!r}: model {mid!r} has no version {vid!r}")
        if version.get("_untrained") or version.get("_fail"):
            # a version that never trains (PostModels' own, or one whose training failed);
            # WORKFLOW_REQUIRE_TRAINED_MODEL "New model in workflow needs to be trained"
            # (Clarifai/docs `docs/api-guide/advanced-topics/status-codes.md`)
            raise Fail(WORKFLOW_REQUIRE_TRAINED_MODEL, f"node {nid!r}: version {vid!r} of model {mid!r} is not trained")
        inputs = []
        for ni in get(n, "node_inputs", list, []):
            inputs.append({"node_id": want(want(ni, dict, "node_inputs[]").get("node_id", ""), str, "node_id")})
        node: dict[str, Any] = {
            "id": nid,
            "model": {
                "id": mid,
                "user_id": mu,
                "app_id": ma,
                "model_type_id": model["model_type_id"],
                "model_version": {"id": vid},
            },
        }
        if inputs:
            node["node_inputs"] = inputs
        if n.get("suppress_output"):
            node["suppress_output"] = True
        if n.get("output_info_override") is not None:
            oio = copy.deepcopy(want(n["output_info_override"], dict, "output_info_override"))
            f32_concepts(oio.get("data"))
            node["output_info_override"] = oio
        graph[nid] = {i["node_id"] for i in inputs}
        nodes.append(node)
    for nid, deps in graph.items():
        for d in deps:
            if d not in graph:
                raise Fail(WORKFLOW_INVALID_GRAPH, f"node {nid!r} takes input from unknown node {d!r}")
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError:
        raise Fail(WORKFLOW_INVALID_GRAPH, "the workflow graph has a cycle") from None
    return nodes


def _workflow(ctx: Ctx, wid: str) -> dict[str, Any]:
    doc = ctx.tx.get(ctx.user_id, ctx.app_id, "workflow", wid)
    if doc is None:
        raise Fail(WORKFLOW_DOES_NOT_EXIST, f"workflow {wid!r} does not exist in app {ctx.user_id}/{ctx.app_id}")
    return doc


#: `workflow-max-20-nodes`: "You can add up to 20 models to a single workflow" (Clarifai/docs
#: docs/create/workflows/create.md), read as: at most 20 nodes.
MAX_NODES = 20


def _check_node_count(ctx: Ctx, wid: str, nodes: list[Any]) -> None:
    if WORKFLOW_MAX_20_NODES in ctx.quirks and len(nodes) > MAX_NODES:
        raise Fail(
            WORKFLOW_INVALID_ARGUMENT, f"workflow {wid!r} has {len(nodes)} nodes; a workflow holds at most {MAX_NODES} models"
        )


def _counted(ctx: Ctx, wid: str, nodes: Any) -> Any:
    if isinstance(nodes, list):
        _check_node_count(ctx, wid, nodes)
    return nodes


def _new_version(ctx: Ctx, doc: dict[str, Any]) -> None:
    ts = rfc3339(ctx.now)
    doc["modified_at"] = ts
    doc["version"] = {"id": new_id(), "workflow_id": doc["id"], "created_at": ts, "modified_at": ts}


def post_workflows(ctx: Ctx) -> dict[str, Any]:
    ctx.app(write=True)
    out = []
    for item in objects(ctx.body, "workflows"):
        check_fields(item, "Workflow", "workflow")
        wid = check_id(item.get("id"), "workflow", WORKFLOW_INVALID_ARGUMENT)
        ts = rfc3339(ctx.now)
        doc: dict[str, Any] = {
            "id": wid,
            "app_id": ctx.app_id,
            "user_id": ctx.user_id,
            "created_at": ts,
            "nodes": _norm_nodes(ctx, _counted(ctx, wid, item.get("nodes") or [])),
            "metadata": get(item, "metadata", dict, {}),
            "visibility": norm_visibility(item.get("visibility")) or {"gettable": 10},
        }
        for k in ("description", "notes"):
            if item.get(k):
                doc[k] = get(item, k, str)
        if item.get("image") is not None:
            doc["image"] = get(item, "image", dict)
        _new_version(ctx, doc)
        if not ctx.tx.insert(ctx.user_id, ctx.app_id, "workflow", wid, doc):
            raise Fail(DATABASE_DUPLICATE_KEY, f"workflow {wid!r} already exists")
        out.append(public(doc))
    return {"workflows": out}


def patch_workflows(ctx: Ctx) -> dict[str, Any]:
    ctx.app(write=True)
    action = action_of(ctx.body, ("merge", "overwrite", "remove"), WORKFLOW_INVALID_ARGUMENT)
    out = []
    for item in objects(ctx.body, "workflows"):
        check_fields(item, "Workflow", "workflow")
        doc = _workflow(ctx, check_id(item.get("id"), "workflow", WORKFLOW_INVALID_ARGUMENT))
        if action == "overwrite" and PATCH_OVERWRITE_REPLACES in ctx.quirks:  # nodes stay: a workflow needs some
            clear_unsent(
                doc, item, {"description": None, "notes": None, "metadata": {}, "image": None, "visibility": {"gettable": 10}}
            )
        if item.get("image") is not None and action != "remove":
            doc["image"] = get(item, "image", dict)
        if item.get("nodes") is not None:
            given = get(item, "nodes", list)
            old = doc["nodes"]
            if action == "overwrite":
                new = given
            elif action == "merge":
                new = merge(old, given)
            else:
                new = remove(old, given)
            nodes = _norm_nodes(ctx, _counted(ctx, doc["id"], new))
            if nodes != old:
                doc["nodes"] = nodes
                _new_version(ctx, doc)
        if item.get("metadata") is not None:
            meta = get(item, "metadata", dict)
            doc["metadata"] = {"merge": merge, "remove": remove}.get(action, lambda _o, n: n)(doc.get("metadata", {}), meta)
        for k in ("description", "notes"):
            if item.get(k) is not None and action != "remove":
                doc[k] = get(item, k, str)
        if item.get("visibility") is not None and action != "remove":
            doc["visibility"] = norm_visibility(item["visibility"])
        ctx.tx.update(ctx.user_id, ctx.app_id, "workflow", doc["id"], doc)
        out.append(public(doc))
    return {"workflows": out}


def get_workflow(ctx: Ctx) -> dict[str, Any]:
    ctx.app()
    return {"workflow": public(_workflow(ctx, ctx.params["workflow_id"]))}


def list_workflows(ctx: Ctx) -> dict[str, Any]:
    ctx.app()
    docs = ctx.tx.list(ctx.user_id, ctx.app_id, "workflow", page=paging(ctx.query))
    return {"workflows": [public(d) for d in docs]}


def _delete_workflow(ctx: Ctx, app: dict[str, Any], wid: str) -> None:
    _workflow(ctx, wid)
    dw = app.get("_dw") or {}
    if app.get("default_workflow_id") == wid and (dw.get("user_id"), dw.get("app_id")) == (ctx.user_id, ctx.app_id):
        raise Fail(WORKFLOW_INVALID_ARGUMENT, f"workflow {wid!r} is the app's default workflow; set another first")
    ctx.tx.delete(ctx.user_id, ctx.app_id, "workflow", wid)


def delete_workflow(ctx: Ctx) -> dict[str, Any]:
    _delete_workflow(ctx, ctx.app(write=True), ctx.params["workflow_id"])
    return {}


def delete_workflows(ctx: Ctx) -> dict[str, Any]:
    app = ctx.app(write=True)
    if ctx.body.get("delete_all") is True:
        ids = [w["id"] for w in ctx.tx.list(ctx.user_id, ctx.app_id, "workflow")]
    else:
        ids = [want(i, str, "ids[]") for i in get(ctx.body, "ids", list, [])]
        if not ids:
            raise Fail(WORKFLOW_INVALID_ARGUMENT, "ids or delete_all is required")
    for wid in ids:
        _delete_workflow(ctx, app, wid)
    return {}


# --- inputs ----------------------------------------------------------------------------------------------


def post_inputs(ctx: Ctx) -> dict[str, Any]:
    ctx.app(write=True)
    out = []
    for item in objects(ctx.body, "inputs"):
        check_fields(item, "Input", "input")
        iid = check_id(item.get("id") or new_id(), "input", INPUT_INVALID_ARGUMENT, rule=None)
        data = _named_concepts(ctx, f32_concepts(copy.deepcopy(get(item, "data", dict, {}))))
        if not data:
            raise Fail(INPUT_INVALID_ARGUMENT, f"input {iid!r} has no data")
        ts = rfc3339(ctx.now)
        doc: dict[str, Any] = {
            "id": iid,
            "data": data,
            "created_at": ts,
            "modified_at": ts,
            "status": {"code": INPUT_SUCCESS, "description": "Input image modification success"},
        }
        if item.get("dataset_ids"):
            doc["dataset_ids"] = [want(d, str, "dataset_ids[]") for d in get(item, "dataset_ids", list)]
        if not ctx.tx.insert(ctx.user_id, ctx.app_id, "input", iid, doc):
            raise Fail(DATABASE_DUPLICATE_KEY, f"input {iid!r} already exists")
        out.append(doc)
    annotate_new_inputs(ctx, out)  # the app's default workflow runs on each new input
    run_tasks_on_new_inputs(ctx, out)  # and every task that auto-annotates what its source covers
    return {"inputs": out}


def _named_concepts(ctx: Ctx, data: dict[str, Any]) -> dict[str, Any]:
    """An input's labels read back with each concept's name (its id when it has none) and the
    app's id, as the real PostInputs answer shows them (tests/parity corpus
    `olddocs-post-inputs-concepts`: old-docs custom-model-walkthrough "Response JSON")."""
    for c in data.get("concepts") or []:
        if isinstance(c, dict) and c.get("id"):
            if not c.get("name"):
                known = ctx.tx.get(ctx.user_id, ctx.app_id, "concept", str(c["id"]))
                c["name"] = (known or {}).get("name") or c["id"]
            c.setdefault("app_id", ctx.app_id)
    return data


def _input(ctx: Ctx, iid: str, missing: int = CONN_DOES_NOT_EXIST) -> dict[str, Any]:
    doc = ctx.tx.get(ctx.user_id, ctx.app_id, "input", iid)
    if doc is None:
        raise Fail(missing, f"input {iid!r} does not exist")
    return doc


def patch_inputs(ctx: Ctx) -> dict[str, Any]:
    ctx.app(write=True)
    action = action_of(ctx.body, ("merge", "overwrite", "remove"), INPUT_INVALID_ARGUMENT)
    out = []
    for item in objects(ctx.body, "inputs"):
        check_fields(item, "Input", "input")
        doc = _input(ctx, check_id(item.get("id"), "input", INPUT_INVALID_ARGUMENT))
        given = f32_concepts(copy.deepcopy(get(item, "data", dict, {})))
        old = doc.get("data") or {}
        if action == "overwrite":
            data = {**old, **given}
        else:
            data = merge(old, given) if action == "merge" else remove(old, given)
        doc["data"] = _named_concepts(ctx, data)
        doc["modified_at"] = rfc3339(ctx.now)
        ctx.tx.update(ctx.user_id, ctx.app_id, "input", doc["id"], doc)
        out.append(doc)
    return {"inputs": out}


def list_inputs(ctx: Ctx) -> dict[str, Any]:
    ctx.app()
    ids = qlist(ctx.query, "ids")
    if not ids:
        return {"inputs": ctx.tx.list(ctx.user_id, ctx.app_id, "input", page=paging(ctx.query))}
    docs = [d for d in ctx.tx.list(ctx.user_id, ctx.app_id, "input") if d["id"] in ids]
    page, per_page = paging(ctx.query)
    return {"inputs": page_slice(docs, page, per_page)}


def get_input(ctx: Ctx) -> dict[str, Any]:
    ctx.app()
    return {"input": _input(ctx, ctx.params["input_id"])}


def _delete_input(ctx: Ctx, iid: str) -> None:
    _input(ctx, iid)
    ctx.tx.delete(ctx.user_id, ctx.app_id, "input", iid)
    for ann in ctx.tx.list(ctx.user_id, ctx.app_id, "annotation"):
        if ann["input_id"] == iid:
            ctx.tx.delete(ctx.user_id, ctx.app_id, "annotation", ann["id"])


def delete_input(ctx: Ctx) -> dict[str, Any]:
    ctx.app(write=True)
    _delete_input(ctx, ctx.params["input_id"])
    return {}


def delete_inputs(ctx: Ctx) -> dict[str, Any]:
    ctx.app(write=True)
    ids = [want(i, str, "ids[]") for i in get(ctx.body, "ids", list, [])]
    if not ids:
        raise Fail(INPUT_INVALID_ARGUMENT, "ids is required")
    for iid in ids:
        _delete_input(ctx, iid)
    return {}


# --- annotations -------------------------------------------------------------------------------------------


def _ann_status(raw: Any) -> dict[str, Any]:
    st = norm_status(raw, "status") or {"code": ANNOTATION_SUCCESS}
    if not 24150 <= st["code"] <= 24159:
        raise Fail(ANNOTATION_INVALID_ARGUMENT, f"{st['code']} is not an annotation status")
    return st


def post_annotations(ctx: Ctx) -> dict[str, Any]:
    ctx.app(write=True, collaborator=True)  # labelling is what collaborators are for
    out = []
    for item in objects(ctx.body, "annotations"):
        check_fields(item, "Annotation", "annotation")
        iid = want(item.get("input_id") or "", str, "input_id")
        st = _ann_status(item.get("status"))  # shape errors before existence errors
        _input(ctx, iid, INPUT_DOES_NOT_EXIST)  # [unverified] which code the real API answers here
        aid = check_id(item.get("id") or new_id(), "annotation", ANNOTATION_INVALID_ARGUMENT, rule=None)
        ts = rfc3339(ctx.now)
        doc: dict[str, Any] = {
            "id": aid,
            "input_id": iid,
            "data": f32_concepts(copy.deepcopy(get(item, "data", dict, {}))),
            "user_id": ctx.key_user,
            "status": st,
            "created_at": ts,
            "modified_at": ts,
            "worker": {"user": {"id": ctx.key_user}},
        }
        if item.get("annotation_info") is not None:
            doc["annotation_info"] = get(item, "annotation_info", dict)
        if item.get("task_id"):
            doc["task_id"] = get(item, "task_id", str)
        if not ctx.tx.insert(ctx.user_id, ctx.app_id, "annotation", aid, doc):
            raise Fail(DATABASE_DUPLICATE_KEY, f"annotation {aid!r} already exists")
        if doc.get("task_id") and st["code"] in REVIEWING:
            assign_for_review(ctx, doc["task_id"], iid, doc["user_id"])
        out.append(doc)
    return {"annotations": out}


def _status_filter(query: dict[str, list[str]]) -> set[int]:
    """`statuses` as codes or names (`statuses=24150`, `statuses.code=24150`, `statuses=ANNOTATION_PENDING`
    or `PENDING`). clarifai-grpc's JSON client sends a list of Status messages as `statuses=code`
    (the dict's key, its value lost): that carries no status and is ignored."""
    codes: set[int] = set()
    for raw in qlist(query, "statuses") + qlist(query, "statuses.code"):
        if raw == "code":
            continue
        name = raw.upper()
        code = STATUS_NAMES.get(name) or STATUS_NAMES.get("ANNOTATION_" + name)
        if code is None and not raw.isdigit():
            raise Fail(ANNOTATION_INVALID_ARGUMENT, f"statuses: unknown annotation status {raw!r}")
        codes.add(code if code is not None else int(raw))
    return codes


def list_annotations(ctx: Ctx) -> dict[str, Any]:
    ctx.app()
    docs = ctx.tx.list(ctx.user_id, ctx.app_id, "annotation")
    ids, input_ids = qlist(ctx.query, "ids"), qlist(ctx.query, "input_ids")
    user_ids, mv_ids = qlist(ctx.query, "user_ids"), qlist(ctx.query, "model_version_ids")
    if ids:
        docs = [d for d in docs if d["id"] in ids]
    task_id = (ctx.query.get("task_id") or [""])[-1]
    if task_id:  # ListAnnotationsRequest.task_id
        docs = [d for d in docs if d.get("task_id") == task_id]
    if input_ids:
        docs = [d for d in docs if d["input_id"] in input_ids]
    codes = _status_filter(ctx.query)
    if codes:
        docs = [d for d in docs if d["status"]["code"] in codes]
    if user_ids or mv_ids:  # OR-ed, as documented
        docs = [d for d in docs if d.get("user_id") in user_ids or d.get("model_version_id") in mv_ids]
    elif not qbool(ctx.query, "list_all_annotations") and not codes:
        docs = [d for d in docs if d["status"]["code"] == ANNOTATION_SUCCESS]
    page, per_page = paging(ctx.query)
    return {"annotations": page_slice(docs, page, per_page)}


def patch_annotations(ctx: Ctx) -> dict[str, Any]:
    ctx.app(write=True, collaborator=True)  # a reviewer corrects what it reviews
    action = action_of(ctx.body, ("merge", "overwrite", "remove"), ANNOTATION_INVALID_ARGUMENT)
    out = []
    for item in objects(ctx.body, "annotations"):
        check_fields(item, "Annotation", "annotation")
        aid = want(item.get("id") or "", str, "id")
        doc = ctx.tx.get(ctx.user_id, ctx.app_id, "annotation", aid)
        if doc is None:
            raise Fail(CONN_DOES_NOT_EXIST, f"annotation {aid!r} does not exist")
        if item.get("data") is not None:
            data = f32_concepts(copy.deepcopy(get(item, "data", dict)))
            doc["data"] = {"overwrite": lambda _o, n: n, "merge": merge, "remove": remove}[action](doc["data"], data)
        if item.get("annotation_info") is not None and action != "remove":
            doc["annotation_info"] = (
                merge(doc.get("annotation_info", {}), item["annotation_info"])
                if action == "merge"
                else get(item, "annotation_info", dict)
            )
        if item.get("status") is not None and action != "remove":
            doc["status"] = _ann_status(item["status"])
        doc["modified_at"] = rfc3339(ctx.now)
        if action == "remove" and ctx.body.get("delete_if_empty_data") is True and not any(doc["data"].values()):
            ctx.tx.delete(ctx.user_id, ctx.app_id, "annotation", aid)
            continue
        ctx.tx.update(ctx.user_id, ctx.app_id, "annotation", aid, doc)
        out.append(doc)
    return {"annotations": out}
