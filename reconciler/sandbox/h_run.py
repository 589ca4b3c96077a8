"""The sandbox runs workflows: PostWorkflowResults, and the app's default workflow on new inputs.

Semantics (README, "Simulate, graph and running workflows"): the nodes run with the shared
operator code (`reconciler.annotate.operators`), so the sandbox and `reconciler simulate` agree. Models the
sandbox cannot run take their outputs only from the recorded predictions the sandbox was given
(`Sandbox(predictions=...)`, `reconciler sandbox serve --predictions FILE`), looked up by the input's
id, then its image URL.

- PostWorkflowResults (`.../workflows/{id}/results`, `.../workflows/{id}/versions/{v}/results`):
  an empty workflow id (or `workflow_id` in the body) means the app's default workflow; a version
  other than the workflow's current one is WORKFLOW_DOES_NOT_EXIST. Inputs are given by `data`
  (and optionally `id`), or by the `id` of an input already in the app. Returns one result per
  input with each node's output (`outputs[]`: model, `data.concepts`, status) in node order;
  nodes with `suppress_output` are left out. Writes nothing. `output_config.max_concepts` and
  `min_value` shape each reported output (best first; max 0 means 20), as clarifai-grpc's
  OutputConfig documents and Clarifai/clarifai-python-grpc tests/client/test_workflow_predict.py
  asserts (max_concepts=3 gives 3 concepts); downstream nodes still receive every concept.
- A recorded prediction keyed `USER/APP/MODEL` matches that model also when the workflow runs in
  the model's own app (clarifai/main's General workflow run in clarifai/main).
- PostInputs on an app with a default workflow runs it on each new input; every
  annotation-writer node that receives concepts of the app writes one annotation (status from the
  writer, `user_id` and `worker.user` = its `annotation_user_id` or the app owner, the writer's
  `model_version_id`, `task_id`, `data.concepts` with the scores); one written into a task with a
  review status puts its input in the task awaiting review (`h_tasks.assign_for_review`).
- A task with auto-annotation (a model or workflow worker and per-concept ranges, `run_task`) labels
  the inputs of its source when it is posted or overwritten, and each new input its source covers:
  its flow is `annotate.taskflow.task_nodes` (the worker's outputs, one annotation per status,
  written into the task as the app owner, `worker.model` = the task's model and version); an input
  the task annotated already is left alone.
"""

from __future__ import annotations

import copy
from typing import Any

from reconciler.annotate.operators import AppView, NodeOutput, RunNode, run_workflow
from reconciler.annotate.predictions import Predictions
from reconciler.annotate.taskflow import task_nodes
from reconciler.api.codecs import TaskCodec
from reconciler.core.modeltypes import ANNOTATION_STATUSES, from_api
from reconciler.core.state import ConceptRef, ConceptRelation, ModelRef
from reconciler.sandbox.ctx import Ctx, public
from reconciler.sandbox.h_tasks import REVIEWING, assign_for_review, task_input_ids
from reconciler.sandbox.wire import (
    CONN_INVALID_REQUEST,
    INPUT_INVALID_ARGUMENT,
    SUCCESS,
    WORKFLOW_DOES_NOT_EXIST,
    Fail,
    check_id,
    f32_concepts,
    get,
    new_id,
    objects,
    rfc3339,
    status,
    want,
)


def _app_view(ctx: Ctx, app: dict[str, Any]) -> AppView:
    concepts = {c["id"]: c.get("name") or c["id"] for c in ctx.tx.list(ctx.user_id, ctx.app_id, "concept")}
    rels = []
    for r in ctx.tx.list(ctx.user_id, ctx.app_id, "relation"):
        o = r["_object"]
        here = (o["user_id"], o["app_id"]) == (ctx.user_id, ctx.app_id)
        rels.append(
            ConceptRelation(
                subject=r["_subject"]["id"],
                predicate=r["predicate"],
                object=ConceptRef(o["id"]) if here else ConceptRef(o["id"], o["user_id"], o["app_id"]),
                knowledge_graph_id=r.get("knowledge_graph_id", ""),
            )
        )
    return AppView(owner=app.get("user_id") or ctx.user_id, concepts=concepts, relations=tuple(rels))


def _run_nodes(ctx: Ctx, wf: dict[str, Any]) -> list[RunNode]:
    out = []
    for n in wf.get("nodes") or []:
        m = n["model"]
        mu, ma, mid, vid = m.get("user_id", ""), m.get("app_id", ""), m["id"], (m.get("model_version") or {}).get("id", "")
        local = (mu, ma) == (ctx.user_id, ctx.app_id)
        mtype = m.get("model_type_id") or (ctx.tx.get(mu, ma, "model", mid) or {}).get("model_type_id", "")
        version = copy.deepcopy(ctx.tx.get(mu, ma, "version", vid, parent=mid) or {})
        override = n.get("output_info_override") or {}
        if override:  # the node's override replaces the version's data and params
            oi = version.setdefault("output_info", {})
            for k in ("data", "params"):
                if k in override:
                    oi[k] = override[k]
        out.append(
            RunNode(
                id=n["id"],
                model=ModelRef(mid) if local else ModelRef(mid, mu, ma, vid),
                type=mtype,
                config=from_api(mtype, version) if version else {},
                inputs=tuple(i["node_id"] for i in n.get("node_inputs") or []),
                version_id=vid,
                suppress_output=bool(n.get("suppress_output")),
            )
        )
    return out


def _predictions(ctx: Ctx) -> Predictions | None:
    return ctx.extra.get("predictions")


def _recorded(ctx: Ctx, preds: Predictions, keys: list[str], model: ModelRef) -> dict[ConceptRef, float] | None:
    """`preds.lookup`, where this app's own model is also known by its full `USER/APP/MODEL` key;
    its concepts stay this app's concepts."""
    if model.external:
        return preds.lookup(keys, model)
    found = preds.lookup(keys, ModelRef(model.id, ctx.user_id, ctx.app_id))
    return None if found is None else {ConceptRef(ref.id): v for ref, v in found.items()}


def _run(ctx: Ctx, app: dict[str, Any], wf: dict[str, Any], inp: dict[str, Any]) -> list[NodeOutput]:
    preds = _predictions(ctx)
    keys = [inp.get("id") or "", ((inp.get("data") or {}).get("image") or {}).get("url") or ""]
    return run_workflow(
        _run_nodes(ctx, wf),
        _app_view(ctx, app),
        lambda node: _recorded(ctx, preds, keys, node.model) if preds else None,
        inp.get("id") or keys[1],
    )


DEFAULT_MAX_CONCEPTS = 20  # clarifai-grpc OutputConfig.max_concepts: "Defaults to 0 which ... return default of 20"


def _output_limits(body: dict[str, Any]) -> tuple[int, float]:
    """(max_concepts, min_value) of the request's `output_config`."""
    oc = get(body, "output_config", dict, {})
    top, floor = oc.get("max_concepts", 0), oc.get("min_value", 0.0)
    if isinstance(top, bool) or not isinstance(top, int) or top < 0:
        raise Fail(CONN_INVALID_REQUEST, "output_config.max_concepts: expected a non-negative integer")
    if isinstance(floor, bool) or not isinstance(floor, (int, float)):
        raise Fail(CONN_INVALID_REQUEST, "output_config.min_value: expected a number")
    return top or DEFAULT_MAX_CONCEPTS, float(floor)


def _shape_output(concepts: dict[ConceptRef, float], top: int, floor: float) -> list[tuple[ConceptRef, float]]:
    kept = [(ref, v) for ref, v in concepts.items() if v >= floor]
    return sorted(kept, key=lambda rv: -rv[1])[:top]


def _default_workflow(ctx: Ctx, app: dict[str, Any]) -> dict[str, Any] | None:
    wid = app.get("default_workflow_id")
    if not wid:
        return None
    dw = app.get("_dw") or {"user_id": ctx.user_id, "app_id": ctx.app_id}
    return ctx.tx.get(dw["user_id"], dw["app_id"], "workflow", wid)


# --- PostWorkflowResults -------------------------------------------------------------------------


def _concept_out(ctx: Ctx, names: dict[str, str], ref: ConceptRef, value: float) -> dict[str, Any]:
    if ref.external:
        doc = ctx.tx.get(ref.user_id or "", ref.app_id or "", "concept", ref.id) or {}
        return {"id": ref.id, "name": doc.get("name") or ref.id, "value": value, "app_id": ref.app_id, "user_id": ref.user_id}
    return {"id": ref.id, "name": names.get(ref.id, ref.id), "value": value, "app_id": ctx.app_id, "user_id": ctx.user_id}


def post_workflow_results(ctx: Ctx) -> dict[str, Any]:
    app = ctx.app()
    wid = ctx.params.get("workflow_id") or get(ctx.body, "workflow_id", str, "")
    if wid:
        wf = ctx.tx.get(ctx.user_id, ctx.app_id, "workflow", wid)
    else:
        wf = _default_workflow(ctx, app)
        if wf is None:
            raise Fail(WORKFLOW_DOES_NOT_EXIST, f"app {ctx.user_id}/{ctx.app_id} has no default workflow")
    if wf is None:
        raise Fail(WORKFLOW_DOES_NOT_EXIST, f"workflow {wid!r} does not exist in app {ctx.user_id}/{ctx.app_id}")
    vid = ctx.params.get("version_id") or get(ctx.body, "version_id", str, "")
    if vid and vid != (wf.get("version") or {}).get("id"):
        raise Fail(WORKFLOW_DOES_NOT_EXIST, f"workflow {wf['id']!r} has no version {vid!r}")
    top, floor = _output_limits(ctx.body)
    items = objects(ctx.body, "inputs")
    if not items:
        raise Fail(INPUT_INVALID_ARGUMENT, "inputs is required")
    names = {c["id"]: c.get("name") or c["id"] for c in ctx.tx.list(ctx.user_id, ctx.app_id, "concept")}
    ts = rfc3339(ctx.now)
    results = []
    for item in items:
        data = get(item, "data", dict, {})
        iid = get(item, "id", str, "")
        if not data:
            stored = ctx.tx.get(ctx.user_id, ctx.app_id, "input", iid) if iid else None
            if stored is None:
                raise Fail(INPUT_INVALID_ARGUMENT, f"input {iid!r} has no data and is not an input of the app")
            data = stored["data"]
        inp = {"id": check_id(iid, "input", INPUT_INVALID_ARGUMENT, rule=None) if iid else new_id(), "data": copy.deepcopy(data)}
        outputs = []
        for r in _run(ctx, app, wf, inp):
            if r.node.suppress_output:
                continue
            m = r.node.model
            model = {
                "id": m.id,
                "user_id": m.user_id or ctx.user_id,
                "app_id": m.app_id or ctx.app_id,
                "model_type_id": r.node.type,
                "model_version": {"id": r.node.version_id},
            }
            concepts = [_concept_out(ctx, names, ref, v) for ref, v in _shape_output(r.concepts, top, floor)]
            outputs.append(
                {
                    "id": new_id(),
                    "status": status(SUCCESS, ctx.req_id),
                    "created_at": ts,
                    "model": model,
                    "data": f32_concepts({"concepts": concepts}) if concepts else {},
                }
            )
        results.append(
            {"id": new_id(), "status": status(SUCCESS, ctx.req_id), "created_at": ts, "input": inp, "outputs": outputs}
        )
    return {"workflow": public(wf), "results": results}


# --- PostInputs: the default workflow writes annotations ----------------------------------------------


def annotate_new_inputs(ctx: Ctx, inputs: list[dict[str, Any]]) -> None:
    """Run the app's default workflow on each new input and store what its writers write."""
    app = ctx.app()
    wf = _default_workflow(ctx, app)
    if wf is None:
        return
    ts = rfc3339(ctx.now)
    for inp in inputs:
        for r in _run(ctx, app, wf, inp):
            a = r.annotation
            if a is None:
                continue
            doc: dict[str, Any] = {
                "id": new_id(),
                "input_id": inp["id"],
                "data": f32_concepts({"concepts": [{"id": c, "name": n, "value": v} for c, n, v in a.concepts]}),
                "user_id": a.user_id,
                "model_version_id": a.version_id,
                "status": {"code": ANNOTATION_STATUSES[a.status]},
                "created_at": ts,
                "modified_at": ts,
                "worker": {"user": {"id": a.user_id}},
            }
            if a.task_id:
                doc["task_id"] = want(a.task_id, str, "task_id")
            ctx.tx.insert(ctx.user_id, ctx.app_id, "annotation", doc["id"], doc)
            if a.task_id and doc["status"]["code"] in REVIEWING:
                assign_for_review(ctx, a.task_id, inp["id"], a.user_id)


# --- tasks that auto-annotate -----------------------------------------------------------------------


def _task_workers(ctx: Ctx, doc: dict[str, Any]) -> list[RunNode]:
    for w in (doc.get("worker") or {}).get("workers") or []:
        if isinstance(w.get("model"), dict):
            m = w["model"]
            mu, ma, mid = m.get("user_id") or ctx.user_id, m.get("app_id") or ctx.app_id, m["id"]
            vid = (m.get("model_version") or {}).get("id", "")
            if not vid:
                newest = ctx.tx.list(mu, ma, "version", mid, newest_first=True)
                vid = newest[0]["id"] if newest else ""
            mtype = (ctx.tx.get(mu, ma, "model", mid) or {}).get("model_type_id", "")
            version = ctx.tx.get(mu, ma, "version", vid, parent=mid) or {}
            local = (mu, ma) == (ctx.user_id, ctx.app_id)
            ref = ModelRef(mid) if local else ModelRef(mid, mu, ma, vid)
            return [RunNode("worker", ref, mtype, from_api(mtype, version) if version else {}, version_id=vid)]
        if isinstance(w.get("workflow"), dict):
            wf = ctx.tx.get(ctx.user_id, ctx.app_id, "workflow", w["workflow"]["id"]) or {}
            return [
                RunNode(f"worker/{n.id}", n.model, n.type, n.config, tuple(f"worker/{i}" for i in n.inputs), n.version_id)
                for n in _run_nodes(ctx, wf)
            ]
    return []


def run_task(ctx: Ctx, app: dict[str, Any], doc: dict[str, Any], inputs: list[dict[str, Any]]) -> None:
    """Auto-annotate `inputs` for task `doc` (see the module docstring); a task without an
    auto-annotation worker does nothing."""
    workers = _task_workers(ctx, doc)
    owner = app.get("user_id") or ctx.user_id
    task = TaskCodec.from_api(public(doc), ctx.app_id, owner)
    if not workers or task.auto_annotation is None or not task.auto_annotation.ranges:
        return
    nodes = task_nodes(task, workers, task_api_id=doc["id"], owner=owner)
    covered = set(task_input_ids(ctx, doc))
    done = {a["input_id"] for a in ctx.tx.list(ctx.user_id, ctx.app_id, "annotation") if a.get("task_id") == doc["id"]}
    worker = workers[0]
    preds, view, ts = _predictions(ctx), _app_view(ctx, app), rfc3339(ctx.now)
    for inp in inputs:
        if inp["id"] not in covered or inp["id"] in done:
            continue
        keys = [inp.get("id") or "", ((inp.get("data") or {}).get("image") or {}).get("url") or ""]
        results = run_workflow(nodes, view, lambda node: _recorded(ctx, preds, keys, node.model) if preds else None, inp["id"])  # noqa: B023
        for r in results:
            a = r.annotation
            if a is None:
                continue
            code = ANNOTATION_STATUSES[a.status]
            ann: dict[str, Any] = {
                "id": new_id(),
                "input_id": inp["id"],
                "data": f32_concepts({"concepts": [{"id": c, "name": n, "value": v} for c, n, v in a.concepts]}),
                "user_id": owner,
                "model_version_id": worker.version_id,
                "task_id": doc["id"],
                "status": {"code": code},
                "created_at": ts,
                "modified_at": ts,
                "worker": {"model": {"id": worker.model.id, "model_version": {"id": worker.version_id}}},
            }
            ctx.tx.insert(ctx.user_id, ctx.app_id, "annotation", ann["id"], ann)
            if code in REVIEWING:
                assign_for_review(ctx, doc["id"], inp["id"], owner)


def run_tasks_on_new_inputs(ctx: Ctx, inputs: list[dict[str, Any]]) -> None:
    """Every auto-annotating task of the app labels the new inputs its source covers."""
    tasks = ctx.tx.list(ctx.user_id, ctx.app_id, "task")
    if not tasks:
        return
    app = ctx.app()
    for doc in tasks:
        run_task(ctx, app, doc, inputs)
