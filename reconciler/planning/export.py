"""Export: a live app -> manifest YAML that, planned against the same app, changes nothing.

Contract: `export_manifest(live, warn=...) -> dict` turns a live `State` (read with every model's
versions: `read_live(..., want_models=None)`) into manifest data; `dump_yaml(data, schema_ref)`
writes it as YAML with a schema modeline; `export_app(client, app_id, user_id=...)` does both and
returns ``(text, warnings)``. Pure apart from `export_app`'s reads; nothing is ever written to the API.

What is exported (README, "Environments"):
- every concept, relation, model and workflow of the app, marked as managed or not; references into
  other apps (clarifai/main's concepts and models) stay external references;
- models: the typed fields of the operator types and the embedding-classifier from the canonical
  config (`Model.config`), `output_info` passed through for any other type. The config exported is
  the one the app's workflows USE: the plan pins every node to a version whose config equals the
  manifest's, so exporting a newer, unused latest version would plan repoints. When nodes pin
  versions of one model with different configs, the config most nodes use is exported (ties: the
  newest) and a warning names the nodes the plan will repoint. A model no workflow uses exports
  its latest version;
- an annotation-writer's `annotation_user_id` is left out when it is the app owner (the manifest's
  implicit default), so the file stays valid for copies of the app owned by another user;
- metadata: the keys the live state compares (the user's own keys of a managed resource, as the
  marker lists them). An unmarked resource's metadata is not claimed: adopting it leaves its keys
  the user's own and untouched;
- deterministic order: concepts, relations, models and workflows sorted by id; a workflow's nodes
  in data-flow order (inputs first, ties in the app's order).

Unmarked resources plan as `adopt` (no field changes) against the app they came from: run `apply`
once to take ownership, after which the plan is empty.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from reconciler.core import modeltypes
from reconciler.core.state import ConceptRelation, Model, State, Workflow

if TYPE_CHECKING:
    from reconciler.api.client import Client
from reconciler.manifest.yamldump import dump_yaml

Warn = Callable[[str], None]


def export_manifest(live: State, warn: Warn = lambda _msg: None) -> dict[str, Any]:
    owner = live.user_id
    data: dict[str, Any] = {"version": 1, "app": _app(live)}
    if live.concepts:
        data["concepts"] = [_concept(c.id, c.name, c.description) for c in sorted(live.concepts, key=lambda c: c.id)]
    if live.relations:
        data["concept_relations"] = [_relation(r) for r in sorted(live.relations, key=lambda r: r.key)]
    if live.models:
        chosen = _chosen_configs(live, warn)
        data["models"] = [_model(m, chosen.get(m.id, m.config), owner, warn) for m in sorted(live.models, key=lambda m: m.id)]
    if live.workflows:
        data["workflows"] = [_workflow(w, warn) for w in sorted(live.workflows, key=lambda w: w.id)]
    return data


def _app(live: State) -> dict[str, Any]:
    a = live.app
    out: dict[str, Any] = {"id": a.id}
    if a.description:
        out["description"] = a.description
    if a.default_workflow:
        out["default_workflow"] = a.default_workflow
    if a.metadata:
        out["metadata"] = dict(a.metadata)
    return out


def _concept(cid: str, name: str, description: str) -> dict[str, Any]:
    out: dict[str, Any] = {"id": cid}
    if name and name != cid:
        out["name"] = name
    if description:
        out["description"] = description
    return out


def _relation(r: ConceptRelation) -> dict[str, Any]:
    obj: Any = r.object.id
    if r.object.external:
        obj = {"id": r.object.id, "user_id": r.object.user_id or "", "app_id": r.object.app_id}
    out: dict[str, Any] = {"subject": r.subject, "predicate": r.predicate, "object": obj}
    if r.knowledge_graph_id:
        out["knowledge_graph_id"] = r.knowledge_graph_id
    return out


def _chosen_configs(live: State, warn: Warn) -> dict[str, dict[str, Any]]:
    """Model id -> the config of the version the app's workflows pin (see the module docstring)."""
    uses: dict[str, list[tuple[str, str]]] = {}  # model id -> [(version id, "workflow/node")]
    for w in live.workflows:
        for n in w.nodes:
            if not n.model.external and n.model.version:
                uses.setdefault(n.model.id, []).append((n.model.version, f"{w.id}/{n.id}"))
    chosen: dict[str, dict[str, Any]] = {}
    for m in live.models:
        if m.id not in uses:
            continue
        versions = {v.id: (i, v) for i, v in enumerate(m.versions)}
        known = [(vid, where) for vid, where in uses[m.id] if vid in versions]
        if not known:
            continue
        key = lambda cfg: json.dumps(cfg, sort_keys=True)  # noqa: E731
        counts = Counter(key(versions[vid][1].config) for vid, _ in known)
        newest_rank: dict[str, int] = {}
        for vid, _ in known:
            k = key(versions[vid][1].config)
            newest_rank[k] = min(newest_rank.get(k, len(versions)), versions[vid][0])
        best = min(counts, key=lambda k: (-counts[k], newest_rank[k]))
        best_vid = next(vid for vid, _ in known if key(versions[vid][1].config) == best and versions[vid][0] == newest_rank[best])
        chosen[m.id] = dict(versions[best_vid][1].config)
        if len(counts) > 1:
            others = sorted({f"{where} (version {vid})" for vid, where in known if key(versions[vid][1].config) != best})
            warn(
                f"model {m.id}: workflow nodes pin versions with different configurations; exported "
                f"version {best_vid}'s, so a plan will repoint {', '.join(others)}"
            )
    return chosen


def _model(m: Model, config: dict[str, Any], owner: str | None, warn: Warn) -> dict[str, Any]:
    mtype = modeltypes.canonical_type(m.type)
    out: dict[str, Any] = {"id": m.id, "type": m.type}
    if m.description:
        out["description"] = m.description
    if m.metadata:
        out["metadata"] = dict(m.metadata)
    if m.protect:
        out["protect"] = True
    if not m.versions and not m.version_id:
        warn(f"model {m.id} has no version; a plan will create one from the exported defaults")
    if mtype in modeltypes.TYPED_FIELDS:
        # canonical config keys are the manifest's typed fields (modeltypes owns both); passing it
        # through canonical_config again fills the required defaults of a model with no version
        fields = modeltypes.canonical_config(mtype, config)
        if mtype == modeltypes.WRITER and fields.get("annotation_user_id") == owner:
            del fields["annotation_user_id"]  # the default: keeps the file valid for other owners
        out.update(fields)
    elif config.get("output_info"):
        out["output_info"] = config["output_info"]
    return out


def _workflow(w: Workflow, warn: Warn) -> dict[str, Any]:
    out: dict[str, Any] = {"id": w.id}
    if w.description:
        out["description"] = w.description
    if w.metadata:
        out["metadata"] = dict(w.metadata)
    if w.protect:
        out["protect"] = True
    nodes = []
    for n in _flow_order(w):
        node: dict[str, Any] = {"id": n.id}
        if n.model.external:
            ref = {"id": n.model.id, "user_id": n.model.user_id or "", "app_id": n.model.app_id or ""}
            if n.model.version:
                ref["version"] = n.model.version
            else:
                warn(f"workflow {w.id}: node {n.id} uses {n.model} without a pinned version; add one")
            node["model"] = ref
        else:
            node["model"] = n.model.id
        if n.inputs:
            node["inputs"] = list(n.inputs)
        if n.suppress_output:
            node["suppress_output"] = True
        nodes.append(node)
    out["nodes"] = nodes
    return out


def _flow_order(w: Workflow) -> list[Any]:
    """Nodes with every node after its inputs; among ready nodes the app's order is kept. Nodes in
    a cycle (which the API should never hold) keep their order at the end."""
    pending = list(w.nodes)
    ids = {n.id for n in w.nodes}
    done: set[str] = set()
    out = []
    while pending:
        ready = next((n for n in pending if all(i in done or i not in ids for i in n.inputs)), None)
        if ready is None:
            out += pending
            break
        pending.remove(ready)
        done.add(ready.id)
        out.append(ready)
    return out


def export_app(
    client: Client, app_id: str, *, user_id: str | None = None, schema_ref: str | None = None
) -> tuple[str, list[str]]:
    """Read the live app (all models' versions) and return (manifest YAML, warnings)."""
    from reconciler.api.live import read_live
    from reconciler.api.secrets import mask_data
    from reconciler.core.errors import ReconcilerError

    live = read_live(client, app_id, user_id=user_id, want_models=None)
    if live is None:
        raise ReconcilerError(f"app {app_id} does not exist (user {user_id or client.user_id})")
    warnings: list[str] = []
    data = export_manifest(live, warnings.append)
    unmarked = [f"model/{m.id}" for m in live.models if not m.managed] + [
        f"workflow/{w.id}" for w in live.workflows if not w.managed
    ]
    header = (f"Exported from app {app_id} by `reconciler export`.",)
    if unmarked:
        warnings.append(
            f"{len(unmarked)} resource(s) are not marked as managed yet; `reconciler plan` shows "
            "them as adopt, and one `reconciler apply` takes ownership without changing them"
        )
    # a PAT in a value the API returned is masked in the data, so the YAML stays valid
    return dump_yaml(mask_data(data), schema_ref, header), warnings
