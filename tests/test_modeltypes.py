"""The model-type codecs: canonical configs survive a trip through the API's JSON, including the
server's float32 storage of concept values (the source of perpetual diffs if handled wrongly)."""

from __future__ import annotations

import json
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.core import modeltypes as mt


def as_float32(obj):
    """What a server that stores floats as float32 sends back (0.95 -> 0.949999988079071)."""
    if isinstance(obj, float):
        return struct.unpack("<f", struct.pack("<f", obj))[0]
    if isinstance(obj, dict):
        return {k: as_float32(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [as_float32(v) for v in obj]
    return obj


def test_f32_gives_the_short_decimal_back():
    assert mt.f32(0.95) == 0.95
    assert mt.f32(0.949999988079071) == 0.95
    assert mt.f32(0.5) == 0.5
    assert mt.f32(1) == 1.0
    assert mt.f32(0.1 + 0.2) == mt.f32(0.3)


@pytest.mark.parametrize("value, name", [
    ("GREATER_THAN", "GREATER_THAN"), ("less_than", "LESS_THAN"), (1, "GREATER_THAN"), ("3", "LESS_THAN"),
    (5, "EQUAL"), (2, "GREATER_THAN_OR_EQUAL"), (4, "LESS_THAN_OR_EQUAL"),
])
def test_comparator_names(value, name):
    assert mt.comparator_name(value) == name


@pytest.mark.parametrize("bad", ["BIGGER", 9, None, "x"])
def test_comparator_rejects_unknown(bad):
    with pytest.raises(ValueError):
        mt.comparator_name(bad)


@pytest.mark.parametrize("value, name", [
    ("SUCCESS", "SUCCESS"), ("ANNOTATION_PENDING", "PENDING"), (24157, "AWAITING_REVIEW"),
    ("24151", "PENDING"), ({"code": 24150}, "SUCCESS"),
])
def test_annotation_status_names(value, name):
    assert mt.annotation_status_name(value) == name


def test_thresholder_to_api_matches_the_documented_shape():
    cfg = mt.canonical_config("concept-thresholder", {"comparator": "LESS_THAN", "thresholds": {"b": 0.5, "a": 0.95}})
    assert cfg == {"comparator": "LESS_THAN", "thresholds": {"a": 0.95, "b": 0.5}}
    api = mt.to_api("concept-thresholder", cfg)
    assert api == {"output_info": {"data": {"concepts": [{"id": "a", "value": 0.95}, {"id": "b", "value": 0.5}]},
                                   "params": {"concept_threshold_type": "LESS_THAN"}}}


def test_thresholder_reads_old_docs_integer_comparator_and_alias_type():
    version = {"output_info": {"data": {"concepts": [{"id": "people", "value": 0.949999988079071}]},
                               "params": {"concept_threshold_type": 3}}}
    assert mt.from_api("concept-threshold", version) == {"comparator": "LESS_THAN", "thresholds": {"people": 0.95}}


def test_writer_round_trip_sends_the_numeric_status():
    cfg = mt.canonical_config("annotation-writer", {"annotation_status": "PENDING", "annotation_user_id": "me1"})
    api = mt.to_api("annotation-writer", cfg)
    assert api["output_info"]["params"] == {"annotation_status": 24151, "annotation_user_id": "me1"}
    assert mt.from_api("annotation-writer", api) == cfg


def test_mapper_default_graph_is_omitted():
    cfg = mt.canonical_config("concept-synonym-mapper", {})
    assert cfg == {}
    assert mt.from_api("concept-synonym-mapper", mt.to_api("concept-synonym-mapper", cfg)) == cfg


def test_classifier_round_trip():
    cfg = mt.canonical_config("embedding-classifier", {
        "concepts": ["runner", "walker"],
        "base_embed_model": {"id": "general-image-embedding", "user_id": "clarifai", "app_id": "main",
                             "version": "bb186755eda04f9cbb6fe32e816be104"},
    })
    api = mt.to_api("embedding-classifier", cfg)
    assert api["input_info"]["base_embed_model"]["model_version"]["id"] == "bb186755eda04f9cbb6fe32e816be104"
    assert mt.from_api("embedding-classifier", as_float32(api)) == cfg


def test_raw_type_passthrough_folds_params_into_output_info():
    cfg = mt.canonical_config("visual-detector", {"output_info": {"output_config": {"max_concepts": 5}},
                                                 "params": {"min_value": 0.95}})
    assert cfg == {"output_info": {"output_config": {"max_concepts": 5}, "params": {"min_value": 0.95}}}
    api = mt.to_api("visual-detector", cfg)
    # the server adds a message and echoes floats as float32: still equal
    served = as_float32(api) | {}
    served["output_info"]["message"] = "Show output_info with: GET /models/{model_id}/output_info"
    assert mt.from_api("visual-detector", served) == cfg


concept_ids = st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True)
thresholds = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(concept_ids, thresholds, max_size=8),
       st.sampled_from([n for n in mt.COMPARATORS if n != "CONCEPT_THRESHOLD_NOT_SET"]))
def test_thresholder_round_trip_through_float32_json(ths, comparator):
    cfg = mt.canonical_config("concept-thresholder", {"comparator": comparator, "thresholds": ths})
    wire = json.loads(json.dumps(as_float32(mt.to_api("concept-thresholder", cfg))))
    assert mt.from_api("concept-thresholder", wire) == cfg
    # canonicalising twice changes nothing
    assert mt.canonical_config("concept-thresholder", cfg) == cfg


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(sorted(mt.ANNOTATION_STATUSES)), st.one_of(st.none(), concept_ids), st.one_of(st.none(), concept_ids))
def test_writer_round_trip_property(status, user, task):
    fields = {"annotation_status": status, "annotation_user_id": user, "task_id": task}
    cfg = mt.canonical_config("annotation-writer", fields)
    assert mt.from_api("annotation-writer", json.loads(json.dumps(mt.to_api("annotation-writer", cfg)))) == cfg


@pytest.mark.parametrize("model_type, cfg", [
    ("concept-thresholder", {"comparator": "LESS_THAN", "thresholds": {"a": 0.95}}),
    ("annotation-writer", {"annotation_status": "PENDING", "annotation_user_id": "u", "task_id": "t"}),
    ("embedding-classifier", {"concepts": ["a"], "base_embed_model": {"user_id": "clarifai", "app_id": "main",
                                                                     "id": "e", "version": "v"},
                              "concepts_mutually_exclusive": True}),
    ("concept-synonym-mapper", {"knowledge_graph_id": "kg"}),
])
def test_canonical_config_of_a_canonical_config_is_itself(model_type, cfg):
    """export writes canonical configs back as typed manifest fields: the keys must coincide."""
    assert mt.canonical_config(model_type, cfg) == cfg


def test_canonical_config_fills_required_defaults():
    assert mt.canonical_config("concept-thresholder", {}) == {"comparator": "GREATER_THAN", "thresholds": {}}
    assert mt.canonical_config("annotation-writer", {}) == {"annotation_status": "SUCCESS"}
