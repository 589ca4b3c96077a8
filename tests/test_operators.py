"""The operators' semantics (reconciler/operators.py): every comparator, the no-threshold rule,
float32 comparison, the mapper's relation directions, the writer, and the runner's order and
input combination."""

from __future__ import annotations

import pytest

from reconciler.annotate.operators import (
    AppView,
    RunNode,
    map_concepts,
    passes,
    run_workflow,
    threshold_concepts,
    write_annotation,
)
from reconciler.core.state import ConceptRef, ConceptRelation, ModelRef

APP = AppView(owner="owner1", concepts={"people": "people", "man": "man", "dog": "dog", "animal": "animal",
                                         "puppy": "puppy", "pet": "pet"})


def c(*ids: str) -> list[ConceptRef]:
    return [ConceptRef(i) for i in ids]


# --- thresholder -------------------------------------------------------------------------------------

@pytest.mark.parametrize("comparator,below,equal,above", [
    ("GREATER_THAN", False, False, True),
    ("GREATER_THAN_OR_EQUAL", False, True, True),
    ("LESS_THAN", True, False, False),
    ("LESS_THAN_OR_EQUAL", True, True, False),
    ("EQUAL", False, True, False),
])
def test_every_comparator_at_below_equal_and_above_the_threshold(comparator, below, equal, above):
    assert passes(0.49, comparator, 0.5) is below
    assert passes(0.5, comparator, 0.5) is equal
    assert passes(0.51, comparator, 0.5) is above
    cfg = {"comparator": comparator, "thresholds": {"people": 0.5}}
    got = threshold_concepts({ConceptRef("people"): 0.49}, cfg)
    assert (ConceptRef("people") in got) is below


def test_values_compare_as_float32_so_a_stored_0_95_equals_0_95():
    stored = 0.949999988079071  # what the API gives back for 0.95
    assert passes(stored, "EQUAL", 0.95) and passes(0.95, "EQUAL", stored)
    assert not passes(stored, "GREATER_THAN", 0.95) and not passes(stored, "LESS_THAN", 0.95)


def test_a_concept_with_no_threshold_never_passes_whatever_the_comparator():
    scores = {ConceptRef("people"): 0.99, ConceptRef("man"): 0.01, ConceptRef("dog"): 0.5}
    for comp in ("GREATER_THAN", "GREATER_THAN_OR_EQUAL", "LESS_THAN", "LESS_THAN_OR_EQUAL", "EQUAL"):
        got = threshold_concepts(scores, {"comparator": comp, "thresholds": {"dog": 0.5}})
        assert set(got) <= {ConceptRef("dog")}
    assert threshold_concepts(scores, {"comparator": "GREATER_THAN", "thresholds": {}}) == {}


def test_thresholds_are_per_concept():
    cfg = {"comparator": "GREATER_THAN", "thresholds": {"people": 0.5, "man": 0.5, "adult": 0.95}}
    got = threshold_concepts({ConceptRef("people"): 0.6, ConceptRef("man"): 0.4,
                              ConceptRef("adult"): 0.9}, cfg)
    assert got == {ConceptRef("people"): 0.6}


def test_unknown_comparator_is_an_error():
    with pytest.raises(ValueError):
        passes(0.5, "BIGGER", 0.1)


# --- mapper ------------------------------------------------------------------------------------------

MAIN_PEOPLE = ConceptRef("ai_l8TKp2h5", "clarifai", "main")


def rel(subject: str, predicate: str, obj: ConceptRef, kg: str = "") -> ConceptRelation:
    return ConceptRelation(subject, predicate, obj, kg)


def view(*relations: ConceptRelation) -> AppView:
    return AppView(APP.owner, APP.concepts, tuple(relations))


def test_synonym_maps_an_external_concept_to_the_app_concept_and_back():
    app = view(rel("people", "synonym", MAIN_PEOPLE))
    assert map_concepts({MAIN_PEOPLE: 0.8}, app) == {ConceptRef("people"): 0.8}
    # the docs' object form {id, app_id: main} (no user) is clarifai/main too
    app2 = view(rel("people", "synonym", ConceptRef("ai_l8TKp2h5", None, "main")))
    assert map_concepts({MAIN_PEOPLE: 0.8}, app2) == {ConceptRef("people"): 0.8}


def test_synonym_between_app_concepts_works_both_ways():
    app = view(rel("dog", "synonym", ConceptRef("pet")))
    assert map_concepts({ConceptRef("pet"): 0.7}, app) == {ConceptRef("pet"): 0.7, ConceptRef("dog"): 0.7}
    assert map_concepts({ConceptRef("dog"): 0.6}, app) == {ConceptRef("dog"): 0.6, ConceptRef("pet"): 0.6}


def test_hyponym_and_hypernym_map_upward_only():
    # "dog hyponym animal": a dog is a kind of animal; "animal hypernym puppy": animal is a parent of puppy
    app = view(rel("dog", "hyponym", ConceptRef("animal")), rel("animal", "hypernym", ConceptRef("puppy")))
    assert map_concepts({ConceptRef("dog"): 0.9}, app) == {ConceptRef("dog"): 0.9, ConceptRef("animal"): 0.9}
    assert map_concepts({ConceptRef("puppy"): 0.8}, app) == {ConceptRef("puppy"): 0.8, ConceptRef("animal"): 0.8}
    assert map_concepts({ConceptRef("animal"): 0.7}, app) == {ConceptRef("animal"): 0.7}  # never downward


def test_mapping_is_transitive_and_keeps_the_highest_score():
    app = view(rel("puppy", "hyponym", ConceptRef("dog")), rel("dog", "hyponym", ConceptRef("animal")))
    got = map_concepts({ConceptRef("puppy"): 0.6, ConceptRef("dog"): 0.9}, app)
    assert got == {ConceptRef("puppy"): 0.6, ConceptRef("dog"): 0.9, ConceptRef("animal"): 0.9}


def test_app_concepts_pass_through_and_unrelated_external_concepts_are_dropped():
    app = view()
    assert map_concepts({ConceptRef("man"): 0.3, ConceptRef("ai_xyz", "clarifai", "main"): 0.9}, app) == \
        {ConceptRef("man"): 0.3}


def test_knowledge_graph_id_limits_the_relations_used():
    app = view(rel("people", "synonym", MAIN_PEOPLE, kg="kg1"), rel("man", "synonym", MAIN_PEOPLE, kg="kg2"))
    assert map_concepts({MAIN_PEOPLE: 0.8}, app, "kg1") == {ConceptRef("people"): 0.8}
    assert map_concepts({MAIN_PEOPLE: 0.8}, app, "kg2") == {ConceptRef("man"): 0.8}
    assert map_concepts({MAIN_PEOPLE: 0.8}, app, "") == {ConceptRef("man"): 0.8, ConceptRef("people"): 0.8}
    assert map_concepts({MAIN_PEOPLE: 0.8}, app, "kg3") == {}


# --- writer ------------------------------------------------------------------------------------------

def writer(**cfg) -> RunNode:
    return RunNode("w", ModelRef("writer"), "annotation-writer", cfg, version_id="v1")


def test_writer_writes_only_app_concepts_as_one_annotation():
    a = write_annotation(writer(annotation_status="PENDING"),
                         {ConceptRef("people"): 0.4, MAIN_PEOPLE: 0.4, ConceptRef("nope"): 0.2}, APP)
    assert a is not None
    assert (a.status, a.user_id, a.version_id, a.task_id) == ("PENDING", "owner1", "v1", None)
    assert a.concepts == (("people", "people", 0.4),)


def test_writer_user_and_task_and_nothing_to_write():
    a = write_annotation(writer(annotation_status="SUCCESS", annotation_user_id="bob", task_id="t1"),
                         {ConceptRef("man"): 0.9}, APP)
    assert a and (a.user_id, a.task_id) == ("bob", "t1")
    assert write_annotation(writer(annotation_status="SUCCESS"), {MAIN_PEOPLE: 0.9}, APP) is None
    assert write_annotation(writer(annotation_status="SUCCESS"), {}, APP) is None


# --- runner ------------------------------------------------------------------------------------------

def test_runner_orders_by_dependency_combines_inputs_and_records_only_what_is_recorded():
    nodes = [
        RunNode("write", ModelRef("w"), "annotation-writer", {"annotation_status": "SUCCESS"}, ("gt",)),
        RunNode("gt", ModelRef("t"), "concept-thresholder",
                {"comparator": "GREATER_THAN", "thresholds": {"people": 0.5, "dog": 0.5}}, ("a", "b")),
        RunNode("a", ModelRef("clf-a"), "embedding-classifier", {}, ("embed",)),
        RunNode("b", ModelRef("clf-b"), "embedding-classifier"),
        RunNode("embed", ModelRef("general-image-embedding", "clarifai", "main"), "visual-embedder"),
    ]
    recorded = {"clf-a": {ConceptRef("people"): 0.4, ConceptRef("dog"): 0.7},
                "clf-b": {ConceptRef("people"): 0.6}}
    out = run_workflow(nodes, APP, lambda n: recorded.get(n.model.id))
    assert [r.node.id for r in out] == ["write", "gt", "a", "b", "embed"]  # declared order
    by = {r.node.id: r for r in out}
    assert by["embed"].concepts == {}  # nothing recorded: nothing output
    assert by["gt"].concepts == {ConceptRef("people"): 0.6, ConceptRef("dog"): 0.7}  # union, max
    ann = by["write"].annotation
    assert ann and dict((cid, v) for cid, _n, v in ann.concepts) == {"people": 0.6, "dog": 0.7}


def test_an_operator_with_no_input_node_gets_nothing():
    nodes = [RunNode("gt", ModelRef("t"), "concept-thresholder",
                     {"comparator": "LESS_THAN", "thresholds": {"people": 0.5}})]
    assert run_workflow(nodes, APP, lambda n: {ConceptRef("people"): 0.1})[0].concepts == {}
