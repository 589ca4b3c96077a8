"""The per-kind API codecs (`reconciler.api.codecs`): every resource survives a trip through the API's
JSON (``from_api(to_api(x)) == x``, Hypothesis), and every real response body of the parity corpus
(tests/parity/corpus) decodes without error, ids intact."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.api.codecs import (
    AppCodec,
    ConceptCodec,
    ModelCodec,
    RelationCodec,
    WorkflowCodec,
)
from reconciler.core import modeltypes as mt
from reconciler.core.state import (
    MARKER_KEY,
    App,
    Concept,
    ConceptRef,
    ConceptRelation,
    Model,
    ModelRef,
    Node,
    Workflow,
)
from tests.parity import corpus

APP = "my-app"
OWNER = "me-user"

ids = st.from_regex(r"[a-z][a-z0-9_-]{0,10}", fullmatch=True)
words = st.text(st.characters(min_codepoint=32, max_codepoint=0x2FFF), max_size=20)
other_apps = ids.filter(lambda a: a != APP)
metadata = st.dictionaries(ids.filter(lambda k: k != MARKER_KEY),
                           st.one_of(words, st.integers(-1000, 1000), st.booleans()), max_size=4)


def wire(obj):
    """What the API sends back: JSON text, parsed."""
    return json.loads(json.dumps(obj))


@st.composite
def apps(draw):
    wf = draw(st.one_of(st.none(), ids))
    return App(id=draw(ids), description=draw(words), default_workflow=wf, metadata=draw(metadata))


@settings(max_examples=100, deadline=None)
@given(apps())
def test_app_round_trip(app):
    raw = wire(AppCodec.to_api(app, with_default=True))
    workflows = {app.default_workflow} if app.default_workflow else set()
    assert AppCodec.from_api(raw, app.id, workflows) == app


def test_app_default_of_another_app_reads_as_none():
    raw = {"id": APP, "default_workflow": {"id": "General", "app_id": "main", "user_id": "clarifai"}}
    assert AppCodec.from_api(raw, APP, {"General"}).default_workflow is None


@st.composite
def concepts(draw):
    cid = draw(ids)
    # a read concept always has a name: a missing one reads as its id (the loader fills it too)
    return Concept(id=cid, name=draw(st.one_of(st.just(cid), words.filter(bool))), description=draw(words))


@settings(max_examples=100, deadline=None)
@given(concepts())
def test_concept_round_trip(c):
    assert ConceptCodec.from_api(wire(ConceptCodec.to_api(c))) == c
    assert not ConceptCodec.differs(c, wire(ConceptCodec.to_api(c)))


def test_concept_overwrite_keeps_the_live_metadata():
    sent = ConceptCodec.to_api(Concept("dog", "Dog"), {"id": "dog", "metadata": {"mine": 1}})
    assert sent["metadata"] == {"mine": 1}


@st.composite
def relations(draw):
    external = draw(st.booleans())
    obj = (ConceptRef(draw(ids), user_id=draw(ids), app_id=draw(other_apps)) if external
           else ConceptRef(draw(ids)))
    return ConceptRelation(subject=draw(ids), predicate=draw(st.sampled_from(["synonym", "hypernym", "hyponym"])),
                           object=obj, knowledge_graph_id=draw(st.one_of(st.just(""), ids)),
                           server_id=draw(st.one_of(st.none(), ids)))


@settings(max_examples=100, deadline=None)
@given(relations())
def test_relation_round_trip(r):
    raw = wire(RelationCodec.to_api(r, with_subject=True))
    back = RelationCodec.from_api(raw, APP)
    assert back == r
    # the signature apply compares by is the normal form, the object's owner left out
    subject, predicate, obj, kg = back.normal
    obj = r.object.id if r.object.external else obj
    assert RelationCodec.signature(raw, APP) == (subject, predicate, obj, r.object.app_id or "", kg)


def test_relation_signature_is_the_same_from_either_side():
    a_hypo_b = {"subject_concept": {"id": "a"}, "predicate": "hyponym", "object_concept": {"id": "b"}}
    b_hyper_a = {"subject_concept": {"id": "b"}, "predicate": "hypernym", "object_concept": {"id": "a", "app_id": APP}}
    assert RelationCodec.signature(a_hypo_b, APP) == RelationCodec.signature(b_hyper_a, APP)


def test_main_app_concept_reads_with_its_implicit_owner():
    raw = {"subject_concept": {"id": "a"}, "predicate": "synonym", "object_concept": {"id": "dog", "app_id": "main"}}
    assert RelationCodec.from_api(raw, APP).object == ConceptRef("dog", user_id="clarifai", app_id="main")


comparators = st.sampled_from([n for n in mt.COMPARATORS if n != "CONCEPT_THRESHOLD_NOT_SET"])


@st.composite
def models(draw):
    kind = draw(st.sampled_from([mt.THRESHOLDER, mt.WRITER]))
    if kind == mt.THRESHOLDER:
        fields = {"comparator": draw(comparators),
                  "thresholds": draw(st.dictionaries(ids, st.floats(0.0, 1.0, allow_nan=False), max_size=4))}
    else:
        fields = {"annotation_status": draw(st.sampled_from(sorted(mt.ANNOTATION_STATUSES))),
                  "annotation_user_id": draw(st.one_of(st.none(), ids))}
    return Model(id=draw(ids), type=kind, description=draw(words), metadata=draw(metadata),
                 protect=draw(st.booleans()), config=mt.canonical_config(kind, fields))


@settings(max_examples=100, deadline=None)
@given(models(), ids)
def test_model_round_trip(m, version_id):
    version = wire({"id": version_id, **ModelCodec.version_to_api(m.type, m.config),
                    "created_at": "2024-01-01T00:00:00Z", "status": {"code": 21100}})
    back = ModelCodec.from_api(wire(ModelCodec.to_api(m)), [version])
    assert back == m
    assert back.managed and back.version_id == version_id and back.versions[0].config == m.config


@st.composite
def workflows(draw):
    node_ids = draw(st.lists(ids, min_size=1, max_size=5, unique=True))
    nodes = []
    for i, nid in enumerate(node_ids):
        if draw(st.booleans()):
            ref = ModelRef(draw(ids), version=draw(ids))  # a live node on this app's model is pinned
        else:
            ref = ModelRef(draw(ids), user_id=draw(ids), app_id=draw(other_apps), version=draw(st.one_of(st.none(), ids)))
        inputs = tuple(draw(st.lists(st.sampled_from(node_ids[:i]), unique=True, max_size=2))) if i else ()
        nodes.append(Node(nid, ref, inputs, draw(st.booleans())))
    return Workflow(id=draw(ids), description=draw(words), metadata=draw(metadata), protect=draw(st.booleans()),
                    nodes=tuple(nodes))


@settings(max_examples=100, deadline=None)
@given(workflows())
def test_workflow_round_trip(w):
    versions = {n.id: n.model.version for n in w.nodes if not n.model.external and n.model.version}
    meta = {**w.metadata, MARKER_KEY: {"managed": True, "protect": w.protect, "keys": json.dumps(sorted(w.metadata))}}
    raw = wire(WorkflowCodec.to_api(w, meta, versions))
    assert WorkflowCodec.from_api(raw, APP, OWNER) == w


def test_node_of_this_app_named_with_its_owner_is_local():
    raw = {"id": "n", "model": {"id": "m", "app_id": APP, "user_id": OWNER, "model_version": {"id": "v"}}}
    assert WorkflowCodec.node_from_api(raw, APP, OWNER).model == ModelRef("m", version="v")


# --- the parity corpus: real bodies decode -----------------------------------------------------

def _items(body, one, many):
    out = [body[one]] if isinstance(body.get(one), dict) else []
    return out + [x for x in body.get(many) or () if isinstance(x, dict)]


def _decoded(case):
    body, app = case.body, case.app_id
    out = []
    for raw in _items(body, "app", "apps"):
        out.append((raw, AppCodec.from_api(raw, app, set())))
    for raw in _items(body, "concept", "concepts"):
        out.append((raw, ConceptCodec.from_api(raw)))
    for raw in _items(body, "concept_relation", "concept_relations"):
        out.append((raw, RelationCodec.from_api(raw, app)))
    for raw in _items(body, "model", "models"):
        versions = [raw["model_version"]] if isinstance(raw.get("model_version"), dict) else []
        out.append((raw, ModelCodec.from_api(raw, versions)))
    for raw in _items(body, "model_version", "model_versions"):
        out.append((raw, ModelCodec.version_from_api(str(raw.get("model_type_id") or ""), raw)))
    for raw in _items(body, "workflow", "workflows"):
        out.append((raw, WorkflowCodec.from_api(raw, app, "")))
    return out


@pytest.mark.parametrize("name", corpus.names())
def test_corpus_bodies_decode(name):
    for raw, res in _decoded(corpus.load(name)):
        if isinstance(res, ConceptRelation):
            assert res.server_id == (raw.get("id") or None)
        else:
            assert res.id == str(raw.get("id") or "") or (isinstance(res, App) and not raw.get("id"))


def test_corpus_has_bodies_of_each_decoded_kind():
    kinds = {type(res).__name__ for name in corpus.names() for _, res in _decoded(corpus.load(name))}
    assert {"Concept", "ConceptRelation", "Model", "ModelVersion"} <= kinds, kinds


# --- the review side: collaborators, datasets, tasks ------------------------------------------

from reconciler.api.codecs import CollaboratorCodec, DatasetCodec, TaskCodec, task_metadata  # noqa: E402
from reconciler.core.state import (  # noqa: E402
    LABELER_SCOPES,
    AutoAnnotation,
    Collaborator,
    Dataset,
    DatasetVersion,
    Task,
    ThresholdRange,
)

scope_names = st.from_regex(r"[A-Z][a-z]{1,8}_[A-Z][a-z]{1,6}", fullmatch=True)


@settings(max_examples=100, deadline=None)
@given(ids, st.one_of(st.none(), st.lists(scope_names, max_size=4, unique=True)))
def test_collaborator_round_trip(user, scopes):
    c = Collaborator(user, tuple(sorted(scopes)) if scopes is not None else None)
    back = CollaboratorCodec.from_api(wire({**CollaboratorCodec.to_api(c), "id": "c1"}))
    # scopes left to the tool are sent as LABELER_SCOPES and read back as what they are
    assert back == Collaborator(user, c.scopes if c.scopes is not None else LABELER_SCOPES)
    assert back.server_id == "c1"


@st.composite
def datasets(draw):
    spec = draw(st.one_of(st.none(), st.fixed_dictionaries({"description": words}, optional={"metadata": metadata.filter(bool)})))
    versions = (DatasetVersion("v1", dict(spec)),) if spec is not None else ()
    return Dataset(id=draw(ids), description=draw(words), metadata=draw(metadata), protect=draw(st.booleans()),
                   version=spec, versions=versions)


@settings(max_examples=100, deadline=None)
@given(datasets())
def test_dataset_round_trip(d):
    versions = [wire({**DatasetCodec.version_to_api(v.spec), "id": v.id}) for v in d.versions]
    back = DatasetCodec.from_api(wire(DatasetCodec.to_api(d)), versions)
    assert back == d and [v.id for v in back.versions] == [v.id for v in d.versions]


f32s = st.floats(0, 1).map(mt.f32)
statuses = st.sampled_from(sorted(mt.ANNOTATION_STATUSES))


@st.composite
def tasks(draw):
    concepts_ = draw(st.lists(ids, min_size=1, max_size=4, unique=True))
    auto = None
    if draw(st.booleans()):
        ranged = draw(st.lists(st.sampled_from(concepts_), max_size=3, unique=True))
        ranges = tuple(
            ThresholdRange(c, draw(statuses), *sorted((draw(f32s), draw(f32s))), draw(st.booleans()), draw(st.booleans()))
            for c in ranged for _ in range(draw(st.integers(1, 2)))
        )
        # ranges read back in the task's concept order (one concepts entry per range)
        ranges = tuple(r for c in concepts_ for r in ranges if r.concept == c)
        model = draw(st.one_of(st.builds(ModelRef, ids, version=ids),
                               st.builds(ModelRef, ids, other_apps, other_apps, ids)))
        auto = AutoAnnotation(model=model, ranges=ranges) if draw(st.booleans()) else AutoAnnotation(workflow=draw(ids), ranges=ranges)
    strategy = draw(st.sampled_from(["NONE", "MANUAL", "CONSENSUS"]))
    params = {"NONE": {}, "MANUAL": {"sample_percentage": draw(st.sampled_from([50.0, 100.0, 0.5]))},
              "CONSENSUS": {"approval_threshold_labelers": draw(st.integers(1, 3))}}[strategy]
    workers = tuple(draw(st.lists(ids, max_size=3, unique=True)))
    worker_strategy = draw(st.sampled_from(["DYNAMIC", "FULL", "PARTITIONED"]))
    partition = {}
    if worker_strategy == "PARTITIONED" and workers:
        partition = {"type": "WEIGHTED", "workers_per_input": 1, "weights": {u: 1.0 for u in sorted(workers)}}
    source = draw(st.sampled_from([("ALL_INPUTS", ""), ("DATASET", "ds1"), ("SAVED_SEARCH", "s1")]))
    return Task(
        id=draw(ids), name=draw(words), type=draw(st.sampled_from(["CONCEPTS_CLASSIFICATION", "TYPE_NOT_SET"])),
        description=draw(words), concepts=tuple(concepts_), input_source=source[0], input_source_id=source[1],
        worker_strategy=worker_strategy, workers=workers, partition=partition, review_strategy=strategy,
        reviewers=tuple(draw(st.lists(ids, max_size=2, unique=True))) if strategy != "NONE" else (),
        review_params=params, priority=draw(st.sampled_from(["", "LOW", "HIGH"])), sample_ms=draw(st.sampled_from([0, 1000])),
        metadata=draw(metadata), protect=draw(st.booleans()), auto_annotation=auto, server_id="t-" + draw(ids),
    )


@settings(max_examples=150, deadline=None)
@given(tasks())
def test_task_round_trip(t):
    auto = t.auto_annotation
    version = auto.model.version if auto and auto.model and not auto.model.external else None
    raw = wire(TaskCodec.to_api(t, task_metadata(t), version))
    back = TaskCodec.from_api(raw, APP, OWNER)
    assert back == t
    assert (back.server_id, back.managed) == (t.server_id, True)


def test_task_without_marker_is_unmanaged_and_known_by_its_api_id():
    back = TaskCodec.from_api({"id": "abc123", "name": "hand made", "metadata": {"team": "x"}}, APP, OWNER)
    assert (back.id, back.managed, back.server_id, back.metadata) == ("abc123", False, "abc123", {})


def test_task_reads_the_deprecated_worker_and_review_forms():
    raw = {"id": "t1", "worker": {"strategy": 4, "user_ids": ["alice"]}, "review": {"strategy": 2, "user_ids": ["carol"]},
           "concept_ids": ["walker"], "type": 1, "input_source": {"type": 1}}
    t = TaskCodec.from_api(raw, APP, OWNER)
    assert (t.workers, t.reviewers, t.concepts, t.review_strategy, t.worker_strategy) == (
        ("alice",), ("carol",), ("walker",), "MANUAL", "DYNAMIC")


def test_task_metadata_keeps_the_users_own_keys_and_drops_keys_the_manifest_dropped():
    t = Task("review-park", metadata={"team": "vision"})
    live = {"metadata": {"owner_note": "keep", "old": 1, MARKER_KEY: {"managed": True, "keys": '["old"]', "id": "review-park"}}}
    meta = task_metadata(t, live)
    assert meta["owner_note"] == "keep" and "old" not in meta and meta["team"] == "vision"
    assert meta[MARKER_KEY]["id"] == "review-park"
