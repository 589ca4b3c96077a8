"""Properties (Hypothesis), against a fresh sandbox per example:

1. any valid manifest, applied, gives an empty next plan;
2. after any out-of-band mutation of the live app (a concept renamed, a threshold changed through a
   new version + repoint, a node removed, the default workflow changed, a managed model's
   description changed), the plan is not empty, and apply undoes it: the next plan is empty.

Manifests are drawn as YAML documents and go through the real loader (so they are valid by
construction and by check). Example counts are modest so this runs in seconds.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import yaml
from e2e import Harness
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from robust import EMBED, base

COMPARATORS = ["GREATER_THAN", "GREATER_THAN_OR_EQUAL", "LESS_THAN", "LESS_THAN_OR_EQUAL", "EQUAL"]
STATUSES = ["SUCCESS", "PENDING", "AWAITING_REVIEW"]
SETTINGS = settings(max_examples=25, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@st.composite
def manifests(draw) -> dict:
    n_concepts = draw(st.integers(1, 8))
    concepts = [{"id": f"k{i}", **({"description": draw(st.text("abc xyz", max_size=12))} if draw(st.booleans()) else {})}
                for i in range(n_concepts)]
    ids = [c["id"] for c in concepts]
    relations = []
    for i in range(draw(st.integers(0, min(3, n_concepts - 1)))):
        relations.append({"subject": ids[i], "predicate": draw(st.sampled_from(["synonym", "hypernym", "hyponym"])),
                          "object": ids[i + 1]})
    models = [{"id": "mapper", "type": "concept-synonym-mapper"}]
    for j in range(draw(st.integers(1, 3))):
        chosen = draw(st.lists(st.sampled_from(ids), min_size=1, max_size=4, unique=True))
        models.append({"id": f"th{j}", "type": "concept-thresholder", "comparator": draw(st.sampled_from(COMPARATORS)),
                       "description": draw(st.text("abc ", max_size=8)),
                       "thresholds": {c: draw(st.floats(0, 1, allow_nan=False).map(lambda x: round(x, 3)))
                                      for c in chosen}})
        models.append({"id": f"wr{j}", "type": "annotation-writer", "annotation_status": draw(st.sampled_from(STATUSES)),
                       **({"metadata": {"team": draw(st.sampled_from(["a", "b"]))}} if draw(st.booleans()) else {})})
    n_th = (len(models) - 1) // 2
    workflows = []
    for w in range(draw(st.integers(1, 2))):
        nodes = [{"id": "embed", "model": {"id": EMBED["id"], "user_id": "clarifai", "app_id": "main",
                                           "version": EMBED["model_version"]["id"]}},
                 {"id": "map", "model": "mapper", "inputs": ["embed"]}]
        for b in draw(st.lists(st.integers(0, n_th - 1), min_size=1, max_size=3, unique=True)):
            nodes.append({"id": f"t{b}", "model": f"th{b}", "inputs": ["map"]})
            nodes.append({"id": f"w{b}", "model": f"wr{b}", "inputs": [f"t{b}"],
                          "suppress_output": draw(st.booleans())})
        workflows.append({"id": f"flow{w}", "description": draw(st.text("xyz ", max_size=8)), "nodes": nodes})
    app = {"id": "prop-app", "description": draw(st.text("app ", max_size=8))}
    if draw(st.booleans()):
        app["default_workflow"] = "flow0"
    return {"version": 1, "app": app, "concepts": concepts, "concept_relations": relations,
            "models": models, "workflows": workflows}


def _harness() -> Harness:
    return Harness(Path(tempfile.mkdtemp(prefix="prop-")))


@SETTINGS
@given(manifests())
def test_any_valid_manifest_applied_gives_an_empty_next_plan(doc):
    h = _harness()
    try:
        desired = h.desired("prop.yaml", yaml.safe_dump(doc, sort_keys=False))
        h.apply(desired)
        again = h.plan(desired)
        assert again.empty, [(a.op, a.address, [(c.path, c.before, c.after) for c in a.changes]) for a in again.actions]
    finally:
        h.sandbox.close()


MUTATIONS = ["rename_concept", "threshold_new_version", "remove_node", "default_workflow", "model_description"]


def _mutate(h: Harness, doc: dict, which: str) -> None:
    b = base("prop-app")
    c = h.client
    if which == "rename_concept":
        c.patch(f"{b}/concepts", {"concepts": [{"id": "k0", "name": "renamed by hand"}], "action": "overwrite"})
    elif which == "threshold_new_version":
        th = next(m for m in doc["models"] if m["type"] == "concept-thresholder")
        concepts = [{"id": k, "value": 0.123} for k in th["thresholds"]]
        vid = c.post(f"{b}/models/{th['id']}/versions", {"model_versions": [{"output_info": {
            "data": {"concepts": concepts}, "params": {"concept_threshold_type": th["comparator"]}}}]}
        )["model"]["model_version"]["id"]
        for wf in c.list_all(f"{b}/workflows", "workflows"):
            nodes = wf["nodes"]
            for n in nodes:
                if n["model"]["id"] == th["id"]:
                    n["model"]["model_version"] = {"id": vid}
            c.patch(f"{b}/workflows", {"workflows": [{"id": wf["id"], "nodes": nodes}], "action": "overwrite"})
    elif which == "remove_node":
        wf = c.get(f"{b}/workflows/flow0")["workflow"]
        used = {i["node_id"] for n in wf["nodes"] for i in n.get("node_inputs") or []}
        leaf = next(n["id"] for n in wf["nodes"] if n["id"] not in used)
        nodes = [n for n in wf["nodes"] if n["id"] != leaf]
        c.patch(f"{b}/workflows", {"workflows": [{"id": "flow0", "nodes": nodes}], "action": "overwrite"})
    elif which == "default_workflow":
        c.post(f"{b}/workflows", {"workflows": [{"id": "someone-elses", "nodes": [{"id": "e", "model": EMBED}]}]})
        c.patch("/v2/users/sandbox/apps", {"apps": [{"id": "prop-app", "default_workflow_id": "someone-elses"}],
                                           "action": "overwrite"})
    elif which == "model_description":
        c.patch(f"{b}/models", {"models": [{"id": "th0", "description": "changed by hand"}], "action": "merge"})


@SETTINGS
@given(manifests(), st.lists(st.sampled_from(MUTATIONS), min_size=1, max_size=3, unique=True))
def test_out_of_band_mutations_are_planned_and_undone(doc, mutations):
    if "default_workflow" in mutations:
        doc["app"]["default_workflow"] = "flow0"  # a default the manifest owns, to be taken back
    h = _harness()
    try:
        desired = h.desired("prop.yaml", yaml.safe_dump(doc, sort_keys=False))
        h.apply(desired)
        for m in mutations:
            _mutate(h, doc, m)
        drift = h.plan(desired)
        assert not drift.empty, f"mutations {mutations} were not planned"
        h.apply(desired)
        again = h.plan(desired)
        assert again.empty, (mutations, [(a.op, a.address) for a in again.actions])
        if "default_workflow" in mutations:  # the other workflow is unmanaged: left alone
            assert c_has(h, "someone-elses")
    finally:
        h.sandbox.close()


def c_has(h: Harness, wf: str) -> bool:
    return h.client.get(f"{base('prop-app')}/workflows/{wf}")["workflow"]["id"] == wf
