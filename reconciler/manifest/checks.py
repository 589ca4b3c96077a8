"""Semantic checks on a parsed manifest (stage 3 of `manifest.py`): the rules JSON Schema cannot say.

Contract: `check(doc)` appends `Problem`s to `doc.problems` and never raises. It runs even when the
schema stage found problems, so it must tolerate any shape: every access checks the type first, and
anything schema-invalid is skipped here (the schema stage already reported it). It does not repeat
schema rules (id syntax, ranges, required fields).

Rules: duplicate ids (concepts, models, workflows, nodes within a workflow, relations, classifier
concepts, node inputs); the reserved metadata key; relation subjects/objects, thresholds and
classifier concepts that are not declared concepts (relation objects may instead be external
`{id, user_id, app_id}`); a node model that is not a manifest model (external ones are full
references, checked by the schema); node inputs that are not nodes of the workflow; workflow cycles,
named `a -> b -> a`; a default workflow that is not declared; `app.reindex` without a default
workflow; a workflow of more than `MAX_WORKFLOW_NODES` nodes. The review side (`review.py`):
collaborators, datasets and tasks (their concepts, users, review and input source, auto-annotation)
and an annotation-writer's `task`. All checks are linear in the manifest size (dicts, no nested
scans), which keeps 10,000 concepts fast.
"""

from __future__ import annotations

from typing import Any

from reconciler.core import modeltypes
from reconciler.core.state import MARKER_KEY
from reconciler.manifest import review
from reconciler.manifest.checkutil import did_you_mean
from reconciler.manifest.checkutil import items as _items
from reconciler.manifest.checkutil import unique_ids as _unique_ids
from reconciler.manifest.yamlload import Document, Path

__all__ = ["MAX_WORKFLOW_NODES", "check", "did_you_mean"]

#: "You can add up to 20 models to a single workflow" (Clarifai/docs docs/create/workflows/create.md);
#: counted as nodes, each of which runs a model. Refused here, before PostWorkflows meets it.
MAX_WORKFLOW_NODES = 20


def check(doc: Document) -> None:
    data = doc.data
    if not isinstance(data, dict):
        return
    concepts = _unique_ids(doc, ((("concepts", i, "id"), c.get("id")) for i, c in _items(data, "concepts")), "concept id")
    models = _unique_ids(doc, ((("models", i, "id"), m.get("id")) for i, m in _items(data, "models")), "model id")
    workflows = _unique_ids(doc, ((("workflows", i, "id"), w.get("id")) for i, w in _items(data, "workflows")), "workflow id")
    # A section the schema rejected (not a list, an item without a string id) leaves its id set
    # incomplete; references into it are then not checked, so one typo is not reported N times.
    concepts_ok, models_ok = _complete(data, "concepts"), _complete(data, "models")
    _check_metadata(doc, data)
    if concepts_ok:
        _check_relations(doc, data, concepts)
    _check_models(doc, data, concepts if concepts_ok else None)
    for wi, wf in _items(data, "workflows"):
        _check_workflow(doc, wi, wf, models if models_ok else None)
    review.check(doc, data, concepts if concepts_ok else None, models if models_ok else None, workflows)
    app = data.get("app")
    default = app.get("default_workflow") if isinstance(app, dict) else None
    if isinstance(app, dict) and "reindex" in app and default is None:
        doc.add(
            ("app", "reindex"),
            "reindex says whether changing default_workflow re-indexes the app's inputs; it needs app.default_workflow",
            at_key=True,
        )
    if isinstance(default, str) and _complete(data, "workflows") and default not in workflows:
        doc.add(
            ("app", "default_workflow"),
            f"default_workflow '{default}' is not a workflow of this manifest" + did_you_mean(default, workflows),
        )


def _complete(data: dict[str, Any], key: str) -> bool:
    section = data.get(key, [])
    return isinstance(section, list) and all(isinstance(x, dict) and isinstance(x.get("id"), str) for x in section)


def _check_metadata(doc: Document, data: dict[str, Any]) -> None:
    owners: list[tuple[Path, Any]] = [(("app",), data.get("app"))]
    owners += [(("models", i), m) for i, m in _items(data, "models")]
    owners += [(("workflows", i), w) for i, w in _items(data, "workflows")]
    owners += [((key, i), x) for key in ("datasets", "tasks") for i, x in _items(data, key)]
    for path, owner in owners:
        meta = owner.get("metadata") if isinstance(owner, dict) else None
        if isinstance(meta, dict) and MARKER_KEY in meta:
            doc.add(
                path + ("metadata", MARKER_KEY),
                f"metadata key '{MARKER_KEY}' is reserved for the tool's ownership marker; use 'protect' to protect a resource",
                at_key=True,
            )


def _check_relations(doc: Document, data: dict[str, Any], concepts: dict[str, Path]) -> None:
    seen: dict[tuple[Any, ...], Path] = {}
    for i, rel in _items(data, "concept_relations"):
        base: Path = ("concept_relations", i)
        subject, obj = rel.get("subject"), rel.get("object")
        if isinstance(subject, str) and subject not in concepts:
            doc.add(
                base + ("subject",), f"relation subject '{subject}' is not a declared concept" + did_you_mean(subject, concepts)
            )
        if isinstance(obj, str):
            if obj not in concepts:
                doc.add(
                    base + ("object",),
                    f"relation object '{obj}' is not a declared concept"
                    + did_you_mean(obj, concepts)
                    + "; a concept of another app is written {id, user_id, app_id}",
                )
            elif obj == subject:
                doc.add(base + ("object",), f"concept '{obj}' cannot be related to itself")
            obj_key: Any = obj
        elif isinstance(obj, dict):
            obj_key = (obj.get("user_id"), obj.get("app_id"), obj.get("id"))
        else:
            continue
        key = (subject, rel.get("predicate"), obj_key, rel.get("knowledge_graph_id", ""))
        if isinstance(obj, str) and isinstance(subject, str):  # one normal form (ConceptRelation.normal):
            if key[1] == "hyponym":  # "b hyponym a" repeats "a hypernym b"
                key = (obj, "hypernym", subject, key[3])
            elif key[1] == "synonym" and obj < subject:
                key = (obj, "synonym", subject, key[3])
        if key in seen:
            shown = obj if isinstance(obj, str) else "/".join(str(x) for x in obj_key)
            doc.add(
                base, f"duplicate relation '{subject} {rel.get('predicate')} {shown}' (first on line {doc.pos(seen[key])[0]})"
            )
        else:
            seen[key] = base


def _check_models(doc: Document, data: dict[str, Any], concepts: dict[str, Path] | None) -> None:
    for i, m in _items(data, "models"):
        mtype = modeltypes.canonical_type(m["type"]) if isinstance(m.get("type"), str) else None
        base: Path = ("models", i)
        thresholds = m.get("thresholds")
        if mtype == modeltypes.THRESHOLDER and isinstance(thresholds, dict):
            for cid in thresholds:
                if concepts is not None and cid not in concepts:
                    doc.add(
                        base + ("thresholds", cid),
                        f"threshold concept '{cid}' is not a declared concept" + did_you_mean(cid, concepts),
                        at_key=True,
                    )
        listed = m.get("concepts")
        if mtype == modeltypes.CLASSIFIER and isinstance(listed, list):
            seen: set[str] = set()
            for j, cid in enumerate(listed):
                if not isinstance(cid, str):
                    continue
                if cid in seen:
                    doc.add(base + ("concepts", j), f"duplicate classifier concept '{cid}'")
                elif concepts is not None and cid not in concepts:
                    doc.add(
                        base + ("concepts", j),
                        f"classifier concept '{cid}' is not a declared concept" + did_you_mean(cid, concepts),
                    )
                seen.add(cid)


def _check_workflow(doc: Document, wi: int, wf: dict[str, Any], models: dict[str, Path] | None) -> None:
    base: Path = ("workflows", wi)
    wid = wf.get("id") if isinstance(wf.get("id"), str) else f"#{wi}"
    nodes = list(_items(wf, "nodes"))
    if len(nodes) > MAX_WORKFLOW_NODES:
        doc.add(
            base + ("nodes", MAX_WORKFLOW_NODES),
            f"workflow '{wid}' has {len(nodes)} nodes; Clarifai allows up to {MAX_WORKFLOW_NODES} models in a "
            "workflow (docs: create/workflows/create.md): split it into workflows of at most "
            f"{MAX_WORKFLOW_NODES} nodes",
        )
    ids = _unique_ids(doc, ((base + ("nodes", j, "id"), n.get("id")) for j, n in nodes), "node id")
    graph: dict[str, list[str]] = {nid: [] for nid in ids}
    for j, node in nodes:
        npath = base + ("nodes", j)
        nid = node.get("id")
        model = node.get("model")
        if isinstance(model, str) and models is not None and model not in models:
            doc.add(
                npath + ("model",),
                f"model '{model}' is not a model of this manifest"
                + did_you_mean(model, models)
                + "; declare it under models, or give an external {id, user_id, app_id, version}",
            )
        inputs = node.get("inputs")
        if not isinstance(inputs, list):
            continue
        seen: set[str] = set()
        for k, src in enumerate(inputs):
            if not isinstance(src, str):
                continue
            if src in seen:
                doc.add(npath + ("inputs", k), f"duplicate input '{src}'")
            elif src not in ids:
                doc.add(npath + ("inputs", k), f"input '{src}' is not a node of workflow '{wid}'" + did_you_mean(src, ids))
            elif isinstance(nid, str) and ids.get(nid) == npath + ("id",):
                graph[nid].append(src)
            seen.add(src)
    order = {nid: n for n, nid in enumerate(ids)}
    for cycle in _cycles(graph):
        start = min(range(len(cycle) - 1), key=lambda n: order[cycle[n]])
        ring = cycle[start:-1] + cycle[: start + 1]
        doc.add(ids[ring[0]][:-1], f"workflow '{wid}' has a cycle: {' -> '.join(ring)}")


def _cycles(inputs: dict[str, list[str]]) -> list[list[str]]:
    """Cycles found by an iterative DFS (no recursion limit), each as [a, b, ..., a] in data-flow
    order (a feeds b). At least one cycle per cyclic part of the graph; each node set once."""
    state = dict.fromkeys(inputs, 0)  # 0 new, 1 on the current path, 2 done
    found: list[list[str]] = []
    seen_sets: set[frozenset[str]] = set()
    for root in inputs:
        if state[root]:
            continue
        state[root] = 1
        path, stack = [root], [iter(inputs[root])]
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state[nxt] == 1:
                ring = path[path.index(nxt) :] + [nxt]
                ring.reverse()  # path follows "takes input from"; data flows the other way
                if frozenset(ring) not in seen_sets:
                    seen_sets.add(frozenset(ring))
                    found.append(ring)
            elif state[nxt] == 0:
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(inputs[nxt]))
    return found
