"""Valid manifests -> State (defaults, canonical config, references), the examples, and the schema
files (packaged copy identical to schemas/, a description on every property)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from reconciler.cli import main
from reconciler.core.errors import ManifestError
from reconciler.core.state import ConceptRef, Kind, ModelRef, ResourceKey, State, resource_dependencies
from reconciler.manifest import load as manifest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(ROOT.glob("examples/*/manifest.yaml"))

MINIMAL = "app:\n  id: demo\n"


def test_minimal_manifest_defaults() -> None:
    state = manifest.load_text(MINIMAL, "m.yaml")
    assert state.app.id == "demo"
    assert state.app.description == "" and state.app.default_workflow is None and state.app.metadata == {}
    assert state.concepts == state.relations == state.models == state.workflows == ()
    assert state.user_id is None
    assert state.source == "m.yaml"


FULL = """\
version: 1
app:
  id: demo
  user_id: alice
  description: d
  default_workflow: flow
  metadata: {team: vision}
concepts:
  - id: cat
  - {id: dog, name: Dog, description: a dog}
concept_relations:
  - {subject: cat, predicate: hyponym, object: dog}
  - subject: dog
    predicate: synonym
    object: {id: ai_abc, user_id: clarifai, app_id: main}
    knowledge_graph_id: kg1
models:
  - id: gt
    type: concept-threshold          # legacy alias
    comparator: LESS_THAN_OR_EQUAL
    thresholds: {dog: 0.95, cat: 0.5}
    protect: true
  - id: writer
    type: annotation-writer
    annotation_status: ANNOTATION_AWAITING_REVIEW
    annotation_user_id: bob
    task_id: t1
  - {id: mapper, type: concept-synonym-mapper}
  - id: cls
    type: embedding-classifier
    concepts: [dog, cat]
    concepts_mutually_exclusive: true
    base_embed_model: {id: general-image-embedding, user_id: clarifai, app_id: main, version: v1}
  - id: raw
    type: visual-detector
    metadata: {k: v}
    output_info: {output_config: {max_concepts: 5}}
    params: {min_value: 0.95}
workflows:
  - id: flow
    protect: true
    nodes:
      - {id: embed, model: {id: general-image-embedding, user_id: clarifai, app_id: main, version: v1}}
      - {id: classify, model: cls, inputs: [embed], suppress_output: true}
      - {id: threshold, model: gt, inputs: [classify]}
"""


def test_full_manifest_state() -> None:
    s = manifest.load_text(FULL, "full.yaml")
    assert s.user_id == "alice"
    assert s.app.default_workflow == "flow" and s.app.metadata == {"team": "vision"}
    assert [(c.id, c.name, c.description) for c in s.concepts] == [("cat", "cat", ""), ("dog", "Dog", "a dog")]
    r0, r1 = s.relations
    assert (r0.subject, r0.predicate, r0.object, r0.knowledge_graph_id) == ("cat", "hyponym", ConceptRef("dog"), "")
    assert r1.object == ConceptRef("ai_abc", user_id="clarifai", app_id="main") and r1.object.external
    assert r1.knowledge_graph_id == "kg1"
    m = {x.id: x for x in s.models}
    assert m["gt"].type == "concept-thresholder" and m["gt"].protect
    assert m["gt"].config == {"comparator": "LESS_THAN_OR_EQUAL", "thresholds": {"cat": 0.5, "dog": 0.95}}
    assert list(m["gt"].config["thresholds"]) == ["cat", "dog"]  # canonical: sorted
    assert m["writer"].config == {"annotation_status": "AWAITING_REVIEW", "annotation_user_id": "bob", "task_id": "t1"}
    assert not m["writer"].protect
    assert m["mapper"].config == {}
    assert m["cls"].config == {"concepts": ["cat", "dog"], "concepts_mutually_exclusive": True,
                               "base_embed_model": {"id": "general-image-embedding", "user_id": "clarifai",
                                                    "app_id": "main", "version": "v1"}}
    assert m["raw"].config == {"output_info": {"output_config": {"max_concepts": 5}, "params": {"min_value": 0.95}}}
    assert m["raw"].metadata == {"k": "v"}
    (wf,) = s.workflows
    assert wf.protect
    embed, classify, threshold = wf.nodes
    assert embed.model == ModelRef("general-image-embedding", "clarifai", "main", "v1") and embed.inputs == ()
    assert classify.model == ModelRef("cls") and not classify.model.external
    assert classify.inputs == ("embed",) and classify.suppress_output
    assert threshold.suppress_output is False
    assert resource_dependencies(s.by_key()[ResourceKey(Kind.WORKFLOW, "flow")]) == {
        ResourceKey(Kind.MODEL, "cls"), ResourceKey(Kind.MODEL, "gt")}


def test_state_is_independent_of_yaml_spelling() -> None:
    flow = manifest.load_text("{app: {id: demo}, concepts: [{id: a}], models: [{id: t, type: concept-thresholder, "
                              "comparator: GREATER_THAN, thresholds: {a: 0.3}}]}", "flow.yaml")
    block = manifest.load_text("app:\n  id: demo\nconcepts:\n  - id: a\n    name: a\nmodels:\n  - id: t\n"
                               "    type: concept-thresholder\n    comparator: GREATER_THAN\n"
                               "    thresholds:\n      a: 3e-1\n", "block.yaml")
    assert flow == block


def test_load_text_raises_with_every_problem() -> None:
    with pytest.raises(ManifestError) as exc:
        manifest.load_text("app: {id: demo, default_workflow: nope}\nconcepts: [{id: a}, {id: a}]\n", "x.yaml")
    assert [str(p) for p in exc.value.problems] == [
        "x.yaml:1:35: default_workflow 'nope' is not a workflow of this manifest",
        "x.yaml:2:26: duplicate concept id 'a' (first on line 2)"]
    assert exc.value.problems[0].path == "/app/default_workflow"


def test_load_and_load_many(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(MINIMAL)
    bad = tmp_path / "bad.yaml"
    bad.write_text("app: {}\n")
    assert manifest.load(good).app.id == "demo"
    assert [s.app.id for s in manifest.load_many([good, good])] == ["demo", "demo"]
    with pytest.raises(ManifestError) as exc:
        manifest.load_many([good, bad])
    assert [str(p) for p in exc.value.problems] == [f"{bad}:1:6: missing required field 'id'"]


def test_ids_at_the_length_limit_are_valid() -> None:
    mid = "m" * 48
    s = manifest.load_text(f"app: {{id: demo}}\nmodels: [{{id: {mid}, type: concept-synonym-mapper}}]\n")
    assert s.models[0].id == mid


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.parent.name for p in EXAMPLES])
def test_examples_validate(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(path)]) == 0
    assert "valid" in capsys.readouterr().out
    text = path.read_text()
    assert text.startswith("# yaml-language-server: $schema=../../schemas/manifest.schema.json\n")
    assert (path.parent / "README.md").is_file()


def test_examples_exist() -> None:
    assert {p.parent.name for p in EXAMPLES} >= {"auto-annotation", "people-synonyms"}


def test_auto_annotation_example_shape() -> None:
    s = manifest.load(ROOT / "examples/auto-annotation/manifest.yaml")
    assert {c.id for c in s.concepts} == {"walker", "runner", "bike_rider", "rollerblader", "stroller"}
    m = {x.id: x for x in s.models}
    assert m["greater-than"].config["comparator"] == "GREATER_THAN"
    assert m["less-than"].config["comparator"] == "LESS_THAN"
    assert m["write-success-as-me"].config == {"annotation_status": "SUCCESS"}
    assert m["write-pending-as-me"].config == {"annotation_status": "PENDING", "task": "review-park"}
    assert m["write-audit"].config == {"annotation_status": "PENDING", "task": "review-park"}
    assert m["audit-sample"].config == {"keep_fraction": 0.1}
    assert m["park-activity-classifier"].config["base_embed_model"]["version"] == "bb186755eda04f9cbb6fe32e816be104"
    (wf,) = s.workflows
    assert s.app.default_workflow == wf.id
    edges = {(src, n.id) for n in wf.nodes for src in n.inputs}
    assert edges == {("embed", "classify"), ("classify", "map"), ("map", "greater-than"), ("map", "less-than"),
                     ("greater-than", "write-success"), ("less-than", "write-pending"),
                     ("greater-than", "audit"), ("audit", "write-audit")}
    # its review side (issue 22): the task the PENDING writers write into, reviewed by a collaborator
    (task,) = s.tasks
    assert (task.id, task.review_strategy, task.reviewers, task.workers) == ("review-park", "MANUAL", ("carol",), ("alice",))
    assert {c.user_id for c in s.collaborators} == {"alice", "carol"}


def test_people_synonyms_example_shape() -> None:
    s = manifest.load(ROOT / "examples/people-synonyms/manifest.yaml")
    assert {(r.subject, r.predicate, str(r.object)) for r in s.relations} == {
        ("people", "synonym", "clarifai/main/ai_l8TKp2h5"), ("man", "synonym", "clarifai/main/ai_dxSG2s86"),
        ("adult", "synonym", "clarifai/main/ai_VPmHr5bm")}
    m = {x.id: x for x in s.models}
    assert m["greater-than"].config["thresholds"] == {"adult": 0.95, "man": 0.5, "people": 0.5}
    (wf,) = s.workflows
    assert len(wf.nodes) == 8
    versions = {str(n.model) for n in wf.nodes if n.model.external}
    assert versions == {"clarifai/main/general-image-embedding@bb186755eda04f9cbb6fe32e816be104",
                        "clarifai/main/general-image-recognition@aa7f35c01e0642fda5cf400f543e7c40",
                        "clarifai/main/general-clusterering@cc2074cff6dc4c02b6f4e1b8606dcb54"}


# --- the schema files --------------------------------------------------------------------------


def test_packaged_schema_is_identical_to_published() -> None:
    assert (ROOT / "schemas/manifest.schema.json").read_bytes() == \
        (ROOT / "reconciler/manifest.schema.json").read_bytes()


def _properties(node: Any, where: str = "#") -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for name, sub in (node.get("properties") or {}).items():
            yield f"{where}/properties/{name}", sub
        for key, sub in node.items():
            yield from _properties(sub, f"{where}/{key}")
    elif isinstance(node, list):
        for i, sub in enumerate(node):
            yield from _properties(sub, f"{where}/{i}")


def test_every_property_has_a_description() -> None:
    schema = manifest.schema()
    props = list(_properties(schema))
    assert len(props) > 40
    missing = [where for where, sub in props if not (isinstance(sub, dict) and sub.get("description"))]
    assert missing == []


def test_schema_is_valid_2020_12_and_accepts_the_examples() -> None:
    import yaml

    schema = manifest.schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)
    for path in EXAMPLES:  # editors see the same verdict as the loader
        jsonschema.Draft202012Validator(schema).validate(yaml.safe_load(path.read_text()))


def test_schema_typed_fields_match_modeltypes() -> None:
    from reconciler.core import modeltypes

    model = manifest.schema()["$defs"]["model"]
    for branch in model["allOf"]:
        names = set((branch.get("then") or branch.get("else") or {}).get("properties", {}))
        kinds = branch["if"]["properties"]["type"]
        kind = kinds.get("const") or kinds["enum"][0]
        expected = set(modeltypes.TYPED_FIELDS.get(kind, ())) if "then" in branch else set(modeltypes.RAW_FIELDS)
        assert names == expected, kind


def test_state_type_round_trip() -> None:
    s = manifest.load_text(FULL)
    assert isinstance(s, State) and s == manifest.load_text(FULL)


def test_readme_manifest_example_is_valid() -> None:
    readme = (ROOT / "README.md").read_text("utf-8")
    section = readme[readme.index("<!-- BEGIN manifest -->"):readme.index("<!-- END manifest -->")]
    block = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    state = manifest.load_text(block, "README.md")
    assert state.app.default_workflow == "auto-annotate"
    assert [str(r.object) for r in state.relations] == ["runner", "clarifai/main/ai_l8TKp2h5"]
