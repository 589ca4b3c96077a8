"""`reconciler graph`: the workflow DAG in Mermaid (the same renderer plan comments use) and DOT,
with model types and key settings on the nodes; workflow selection and its errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from reconciler.cli import main
from reconciler.core.errors import ReconcilerError
from reconciler.manifest.load import load, load_text
from reconciler.planning.graph import render, select_workflow

ROOT = Path(__file__).resolve().parent.parent
AA, PS = ROOT / "examples" / "auto-annotation" / "manifest.yaml", ROOT / "examples" / "people-synonyms" / "manifest.yaml"


def test_mermaid_has_every_node_edge_and_setting():
    out = render(load(str(PS)))
    assert out.startswith("flowchart LR\n")
    labels = dict(re.findall(r'^  (n\d+)\["(.*)"\]$', out, re.M))
    assert len(labels) == 8
    ids = {lab.split("<br/>")[0]: n for n, lab in labels.items()}
    assert "adult #62; 0.95" in labels[ids["greater-than"]] and "people #62; 0.5" in labels[ids["greater-than"]]
    assert "adult #60; 0.95" in labels[ids["less-than"]]
    assert "writes PENDING" in labels[ids["write-pending"]]
    assert "synonym-mapper (concept-synonym-mapper)" in labels[ids["mapper"]]
    assert "clarifai/main/general-image-recognition@aa7f35c01e0642fda5cf400f543e7c40" in labels[ids["general-concept"]]
    edges = set(re.findall(r"^  (n\d+) --> (n\d+)$", out, re.M))
    assert edges == {(ids[a], ids[b]) for a, b in [("general-concept", "mapper"), ("mapper", "greater-than"),
                                                   ("greater-than", "write-success"), ("mapper", "less-than"),
                                                   ("less-than", "write-pending")]}


def test_dot_output():
    out = render(load(str(AA)), fmt="dot")
    assert out.startswith('digraph "auto-annotate" {') and out.rstrip().endswith("}")
    assert '"classify" -> "map";' in out and '"map" -> "less-than";' in out
    assert "walker > 0.9" in out and "rollerblader < 0.8" in out and "writes SUCCESS" in out
    assert "park-activity-classifier (embedding-classifier)\\n5 concepts" in out


MULTI = """
version: 1
app: {id: a}
concepts: [{id: c}]
models:
  - {id: t, type: concept-thresholder, comparator: GREATER_THAN_OR_EQUAL, thresholds: {c: 0.5}}
workflows:
  - id: one
    nodes: [{id: x, model: t}]
  - id: two
    nodes: [{id: y, model: t}]
"""


def test_workflow_selection():
    state = load_text(MULTI, "m.yaml")
    with pytest.raises(ReconcilerError, match="pick one with --workflow .one, two."):
        select_workflow(state)
    assert select_workflow(state, "two").id == "two"
    with pytest.raises(ReconcilerError, match="workflow 'three' is not in the manifest"):
        select_workflow(state, "three")
    assert "c ≥ 0.5" in render(state, "one")
    assert '"y" [label="y\\nt (concept-thresholder)\\nc ≥ 0.5"];' in render(state, "two", "dot")


def test_cli(capsys):
    assert main(["graph", str(AA)]) == 0
    assert capsys.readouterr().out.startswith("flowchart LR")
    assert main(["graph", str(AA), "--format", "dot", "--workflow", "auto-annotate"]) == 0
    assert capsys.readouterr().out.startswith("digraph")
    assert main(["graph", str(AA), "--workflow", "nope"]) == 1
    assert capsys.readouterr().err.startswith("error: workflow 'nope' is not in the manifest")
    assert main(["graph", str(AA), "--format", "png"]) == 1
