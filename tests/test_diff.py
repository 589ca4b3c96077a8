"""diff.py: leaf-level changes with dotted paths; ABSENT for "not set"."""

from __future__ import annotations

from plan_fixtures import applied, desired_state

from reconciler.core.state import Concept, Model, ModelRef, Node, Workflow
from reconciler.planning.diff import ABSENT, Change, created_fields, diff_dicts, diff_resources, fields_of


def test_equal_values_have_no_changes():
    d = desired_state()
    for a, b in zip(d.models, applied(d).models):
        assert diff_resources(b, a, exclude=("config",)) == []
    assert diff_dicts({"a": {"b": [1, 2]}}, {"a": {"b": [1, 2]}}) == []


def test_leaf_paths_and_absent():
    before = {"name": "x", "config": {"thresholds": {"walker": 0.95, "runner": 0.5}}}
    after = {"name": "x", "config": {"thresholds": {"walker": 0.9, "stroller": 0.2}}}
    assert diff_dicts(before, after) == [
        Change("config.thresholds.walker", 0.95, 0.9),
        Change("config.thresholds.stroller", ABSENT, 0.2),
        Change("config.thresholds.runner", 0.5, ABSENT),
    ]


def test_lists_are_compared_whole_and_prefix_applies():
    assert diff_dicts({"concepts": ["a", "b"]}, {"concepts": ["a", "c"]}, "config") == [
        Change("config.concepts", ["a", "b"], ["a", "c"])]


def test_none_and_absent_are_one_thing():
    assert Change("x", None, 1) == Change("x", ABSENT, 1)
    assert Change("x", None, 1).before is ABSENT
    assert repr(ABSENT) == "(none)" and not ABSENT


def test_zero_is_a_real_value_not_a_default():
    m = Model("t", "concept-thresholder", config={"thresholds": {"walker": 0.0}})
    assert Change("config.thresholds.walker", ABSENT, 0.0) in created_fields(m)


def test_type_change_from_scalar_to_dict():
    assert diff_dicts({"a": 1}, {"a": {"b": 2}}) == [Change("a", 1, {"b": 2})]


def test_workflow_nodes_keyed_by_id_and_local_pins_ignored():
    a = Workflow("w", nodes=(Node("n1", ModelRef("m", version="v1")), Node("n2", ModelRef("m2"), ("n1",))))
    b = Workflow("w", nodes=(Node("n2", ModelRef("m2", version="v9"), ("n1",)), Node("n1", ModelRef("m"))))
    assert diff_resources(a, b) == []  # order of nodes and local pins are not structure
    ext = Workflow("w", nodes=(Node("n1", ModelRef("e", "clarifai", "main", "v1")),))
    ext2 = Workflow("w", nodes=(Node("n1", ModelRef("e", "clarifai", "main", "v2")),))
    assert diff_resources(ext, ext2) == [Change("nodes.n1.model.version", "v1", "v2")]


def test_added_node_shows_no_default_fields():
    a = Workflow("w")
    b = Workflow("w", nodes=(Node("n1", ModelRef("m")),))
    assert diff_resources(a, b) == [Change("nodes.n1.model.id", ABSENT, "m")]
    assert diff_resources(b, a) == [Change("nodes.n1.model.id", "m", ABSENT)]


def test_created_fields_omit_defaults():
    assert created_fields(Concept("c", "c")) == [Change("name", ABSENT, "c")]
    assert fields_of(Concept("c", "n", "d")) == {"name": "n", "description": "d"}
