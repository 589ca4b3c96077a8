"""Helpers for the robustness tests (crash-anywhere, concurrency, properties): scenarios built on
prepared sandbox files, out-of-band "bystander" resources, and a canonical picture of a live app
that two converged runs must share.

- `canon(client, app_id)`: the live app read in full (every model's versions), with version ids
  replaced by the configs they hold, so a crash-then-rerun can be compared with a clean run;
  it also raises on any id listed twice (no duplicated model, workflow or concept).
- `add_bystanders(client, app_id, managed_model, managed_workflow)`: resources made by raw API calls
  that apply must never touch -- a hand-made concept, model and workflow in the app (or a whole
  other app) -- and a user metadata key on a managed model, workflow and the app.
- `snapshot_bystanders(client, ...)`: their raw JSON, for before/after equality.
- `updated(state)`: the "update apply" manifest of a state: thresholds, descriptions, a node added,
  a workflow and a model removed (they must exist in the baseline: `with_extras(state)`), and a
  concept and relation added.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from typing import Any

from manifest_gen import generate  # noqa: F401  (re-exported for the tests)

from reconciler.api.live import read_live
from reconciler.core.state import Concept, ConceptRef, ConceptRelation, Model, ModelRef, Node, State
from reconciler.sandbox.app import DEFAULT_USER

EMBED = {"id": "general-image-embedding", "user_id": "clarifai", "app_id": "main",
         "model_version": {"id": "bb186755eda04f9cbb6fe32e816be104"}}
BYSTANDER_APP = "bystander-app"
OWNER_META = {"owner": "alice"}


def base(app_id: str) -> str:
    return f"/v2/users/{DEFAULT_USER}/apps/{app_id}"


# --- scenarios ---------------------------------------------------------------------------------

def with_extras(state: State) -> State:
    """The baseline of an update: `state` plus a workflow and a model the update removes."""
    wf0 = state.workflows[0]
    extra_wf = dataclasses.replace(wf0, id="extra-flow", description="removed by the update")
    extra_model = Model(id="extra-writer", type="annotation-writer", description="removed by the update",
                        config={"annotation_status": "PENDING"})
    return dataclasses.replace(state, workflows=state.workflows + (extra_wf,),
                               models=state.models + (extra_model,))


def updated(state: State) -> State:
    """Thresholds changed (two thresholders), descriptions changed (app, a concept, a model, a
    workflow), a node added to the default workflow, a concept and a relation added. Applied on a
    `with_extras` baseline it also deletes the extra workflow and model."""
    thresholders = [m for m in state.models if m.type == "concept-thresholder"][:2]
    models = []
    for m in state.models:
        if m in thresholders:
            th = dict(m.config["thresholds"])
            first = next(iter(th))
            th[first] = 0.33 if th[first] != 0.33 else 0.34
            m = dataclasses.replace(m, config={**m.config, "thresholds": th})
        if m.type == "annotation-writer" and m.id == _writer(state).id:
            m = dataclasses.replace(m, description="a changed description")
        models.append(m)
    concepts = list(state.concepts)
    concepts[0] = dataclasses.replace(concepts[0], description="changed concept description")
    concepts.append(Concept(id="added-concept", name="added", description="added by the update"))
    relations = state.relations + (ConceptRelation(subject="added-concept", predicate="synonym",
                                                   object=ConceptRef(concepts[0].id)),)
    default = state.workflow(state.app.default_workflow or state.workflows[0].id) or state.workflows[0]
    th_node = next(n for n in default.nodes if not n.model.external
                   and state.model(n.model.id) is not None and state.model(n.model.id).type == "concept-thresholder")
    new_node = Node(id="extra-writer-node", model=ModelRef(_writer(state).id), inputs=(th_node.id,))
    workflows = tuple(dataclasses.replace(w, nodes=w.nodes + (new_node,), description="changed workflow description")
                      if w.id == default.id else w for w in state.workflows)
    app = dataclasses.replace(state.app, description="changed app description")
    return dataclasses.replace(state, app=app, concepts=tuple(concepts), relations=relations,
                               models=tuple(models), workflows=workflows)


def _writer(state: State) -> Model:
    return next(m for m in state.models if m.type == "annotation-writer")


# --- bystanders --------------------------------------------------------------------------------

def add_bystanders(client: Any, app_id: str, *, in_app: bool, managed_model: str | None = None,
                   managed_workflow: str | None = None) -> None:
    """Raw-API resources apply must leave alone. `in_app`: in the managed app (which must exist),
    else in a separate app of the same user."""
    target = app_id if in_app else BYSTANDER_APP
    if not in_app:
        client.post(f"/v2/users/{DEFAULT_USER}/apps", {"apps": [{"id": BYSTANDER_APP, "description": "not ours",
                                                                  "metadata": dict(OWNER_META)}]})
    b = base(target)
    client.post(f"{b}/concepts", {"concepts": [{"id": "hand-concept", "name": "made by hand"}]})
    client.post(f"{b}/models", {"models": [{"id": "hand-model", "model_type_id": "concept-synonym-mapper",
                                            "description": "made by hand", "metadata": dict(OWNER_META)}]})
    client.post(f"{b}/workflows", {"workflows": [{"id": "hand-flow", "metadata": dict(OWNER_META),
                                                  "nodes": [{"id": "e", "model": EMBED}]}]})
    if managed_model:
        client.patch(f"{b}/models", {"models": [{"id": managed_model, "metadata": dict(OWNER_META)}],
                                     "action": "merge"})
    if managed_workflow:
        client.patch(f"{b}/workflows", {"workflows": [{"id": managed_workflow, "metadata": dict(OWNER_META)}],
                                        "action": "merge"})
    if in_app:
        client.patch(f"/v2/users/{DEFAULT_USER}/apps", {"apps": [{"id": app_id, "metadata": dict(OWNER_META)}],
                                                        "action": "overwrite", "metadata_action": {"op": "merge"}})


def snapshot_bystanders(client: Any, app_id: str, *, in_app: bool) -> dict[str, Any]:
    """Raw JSON of the hand-made resources (status stripped: req_ids differ per request)."""
    b = base(app_id if in_app else BYSTANDER_APP)
    out: dict[str, Any] = {}
    for key, path in (("concept", f"{b}/concepts/hand-concept"), ("model", f"{b}/models/hand-model"),
                      ("workflow", f"{b}/workflows/hand-flow")):
        body = client.get(path)
        body.pop("status", None)
        out[key] = body
    out["model_versions"] = client.list_all(f"{b}/models/hand-model/versions", "model_versions")
    if not in_app:
        out["app"] = {k: v for k, v in client.get(b).items() if k != "status"}
    return out


def user_metadata(client: Any, app_id: str, model_id: str, workflow_id: str) -> dict[str, Any]:
    """The user's own metadata keys (not the marker) on a managed model, workflow and the app."""
    b = base(app_id)
    strip = lambda m: {k: v for k, v in (m or {}).items() if k == "owner"}  # noqa: E731
    return {"model": strip(client.get(f"{b}/models/{model_id}")["model"].get("metadata")),
            "workflow": strip(client.get(f"{b}/workflows/{workflow_id}")["workflow"].get("metadata")),
            "app": strip(client.get(b)["app"].get("metadata"))}


# --- canonical live picture --------------------------------------------------------------------

def canon(client: Any, app_id: str) -> tuple[dict[str, Any], State]:
    """(canonical JSON-able picture, the live State read with every model's versions)."""
    read = live = read_live(client, app_id, user_id=DEFAULT_USER, sections=None)  # the review side too
    assert live is not None, f"app {app_id} does not exist"
    # a task's API id differs run to run (the server makes it): writers name their task by its
    # manifest id in the picture, and tasks are pictured without their API ids
    task_keys = {t.server_id: t.id for t in live.tasks if t.server_id}
    live = dataclasses.replace(live, models=tuple(
        dataclasses.replace(m, config={**m.config, "task_id": task_keys.get(m.config["task_id"], m.config["task_id"])},
                            versions=tuple(dataclasses.replace(v, config={**v.config, "task_id": task_keys.get(
                                v.config["task_id"], v.config["task_id"])}) if "task_id" in v.config else v
                                for v in m.versions))
        if "task_id" in m.config else m for m in live.models))
    b = base(app_id)
    for key, sub in (("models", "models"), ("workflows", "workflows"), ("concepts", "concepts")):
        ids = Counter(str(x.get("id")) for x in client.list_all(f"{b}/{sub}", key))
        dup = {i: n for i, n in ids.items() if n > 1}
        assert not dup, f"duplicated {key}: {dup}"
    configs = {m.id: {v.id: v.config for v in m.versions} for m in live.models}
    dump = lambda x: json.dumps(x, sort_keys=True, default=str)  # noqa: E731
    models = {m.id: {"type": m.type, "description": m.description, "metadata": m.metadata,
                     "protect": m.protect, "managed": m.managed, "config": m.config,
                     "versions": sorted(dump(v.config) for v in m.versions)} for m in live.models}
    workflows = {}
    for w in live.workflows:
        nodes = []
        for n in sorted(w.nodes, key=lambda n: n.id):
            pinned: Any = n.model.version
            if not n.model.external:  # a version id differs run to run; its config must not
                pinned = configs.get(n.model.id, {}).get(n.model.version or "", f"unknown version {n.model.version}")
            nodes.append({"id": n.id, "model": str(dataclasses.replace(n.model, version=None)),
                          "pinned": pinned, "inputs": list(n.inputs), "suppress_output": n.suppress_output})
        workflows[w.id] = {"description": w.description, "metadata": w.metadata, "protect": w.protect,
                           "managed": w.managed, "nodes": nodes}
    app = dataclasses.asdict(live.app)
    app.pop("raw")  # the API's echo (timestamps, ids): what matters of it is in the other fields
    picture = {"app": app,
               # a concept's raw echo (timestamps, ids) likewise: its name and description are compared
               "concepts": {c.id: {k: v for k, v in dataclasses.asdict(c).items() if k != "raw"} for c in live.concepts},
               "relations": sorted(r.key for r in live.relations),
               "models": models, "workflows": workflows,
               "collaborators": sorted((c.user_id, c.scopes) for c in live.collaborators),
               "tasks": {t.id: {k: v for k, v in dataclasses.asdict(t).items() if k not in ("server_id", "raw")}
                         for t in live.tasks}}
    return json.loads(dump(picture)), read
