"""clarifai-grpc's own JSON client against the sandbox over loopback HTTP: the documented
auto-annotation set-up (REFERENCE §5.2/§5.3) as today's API takes it (each model bare, then its
version), every call SUCCESS, and everything reads back.

Also: the flow of clarifai-python-grpc's model CRUD test (its training rule settled in
`sandbox/h_models.train_status`) trains, in process and on `reconciler sandbox serve`.

Run twice: against `running_server` (every response also checked against its proto by the
`sandbox_app` fixture) and against a real `reconciler sandbox serve` process, stopped with Ctrl-C.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from clarifai_grpc.channel.clarifai_channel import ClarifaiChannel
from clarifai_grpc.grpc.api import resources_pb2, service_pb2, service_pb2_grpc
from clarifai_grpc.grpc.api.status import status_code_pb2
from google.protobuf import json_format
from google.protobuf.struct_pb2 import Struct

from reconciler.sandbox.app import DEFAULT_KEY, DEFAULT_USER

ROOT = Path(__file__).resolve().parent.parent
META = (("authorization", f"Key {DEFAULT_KEY}"),)
SUCCESS = status_code_pb2.SUCCESS


@pytest.fixture
def cli_server(tmp_path: Path) -> Iterator[str]:
    """`reconciler sandbox serve --port 0` in a child process; stopped with SIGINT (Ctrl-C)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "reconciler", "sandbox", "serve", "--port", "0",
                             "--db", str(tmp_path / "served.sqlite")], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+", first)
        assert url, first + proc.stderr.read() if proc.stderr else first
        assert DEFAULT_KEY in proc.stdout.readline()
        yield url.group(0)
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "stopped" in out and "Traceback" not in err


@pytest.fixture(params=["running_server", "cli"])
def base_url(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue("served_sandbox" if request.param == "running_server" else "cli_server")


def _struct(d: dict) -> Struct:
    s = Struct()
    s.update(d)
    return s


def test_auto_annotation_walkthrough_with_the_json_channel(base_url: str) -> None:
    stub = service_pb2_grpc.V2Stub(ClarifaiChannel.get_json_channel(base_url=base_url))
    uid = resources_pb2.UserAppIDSet(user_id=DEFAULT_USER, app_id="auto-annotation")
    calls: list[tuple[str, int]] = []

    def ok(name: str, resp):
        calls.append((name, resp.status.code))
        assert resp.status.code == SUCCESS, f"{name}: {resp.status}"
        return resp

    ok("PostApps", stub.PostApps(service_pb2.PostAppsRequest(
        user_app_id=resources_pb2.UserAppIDSet(user_id=DEFAULT_USER),
        apps=[resources_pb2.App(id="auto-annotation", description="walkthrough")]), metadata=META))

    # 1. three concepts
    concepts = [("peopleID", "people"), ("manID", "man"), ("adultID", "adult")]
    ok("PostConcepts", stub.PostConcepts(service_pb2.PostConceptsRequest(
        user_app_id=uid, concepts=[resources_pb2.Concept(id=i, name=n) for i, n in concepts]), metadata=META))
    # 2. synonyms of clarifai/main's concepts
    main_ids = {"peopleID": "ai_l8TKp2h5", "manID": "ai_dxSG2s86", "adultID": "ai_VPmHr5bm"}
    for cid, main_id in main_ids.items():
        ok("PostConceptRelations", stub.PostConceptRelations(service_pb2.PostConceptRelationsRequest(
            user_app_id=uid, concept_id=cid, concept_relations=[resources_pb2.ConceptRelation(
                object_concept=resources_pb2.Concept(id=main_id, app_id="main"), predicate="synonym")]),
            metadata=META))

    # 3.-7. mapper, two thresholders, two writers
    def post_model(mid: str, mtype: str, params: dict, concepts_: list[tuple[str, float]] = ()) -> str:
        oi = resources_pb2.OutputInfo(params=_struct(params))
        if concepts_:
            oi.data.CopyFrom(resources_pb2.Data(concepts=[resources_pb2.Concept(id=c, value=v) for c, v in concepts_]))
        # today's API: PostModels makes the model only, the configuration goes in with
        # PostModelVersions, whose answer names the version to pin (clarifai-python
        # `clarifai/client/app.py`; Clarifai/docs model-version-endpoints.md)
        resp = ok("PostModels", stub.PostModels(service_pb2.PostModelsRequest(
            user_app_id=uid, models=[resources_pb2.Model(id=mid, model_type_id=mtype)]), metadata=META))
        assert resp.model.id == mid and resp.model.model_type_id == mtype
        assert not resp.model.HasField("model_version")
        resp = ok("PostModelVersions", stub.PostModelVersions(service_pb2.PostModelVersionsRequest(
            user_app_id=uid, model_id=mid, model_versions=[resources_pb2.ModelVersion(output_info=oi)]), metadata=META))
        assert resp.model.model_version.status.code == status_code_pb2.MODEL_TRAINED
        assert re.fullmatch(r"[0-9a-f]{32}", resp.model.model_version.id)
        return resp.model.model_version.id

    thresholds = [("peopleID", 0.5), ("manID", 0.5), ("adultID", 0.95)]
    versions = {
        "synonym-model-id": post_model("synonym-model-id", "concept-synonym-mapper", {"knowledge_graph_id": ""}),
        "greater-than-model-id": post_model("greater-than-model-id", "concept-thresholder",
                                            {"concept_threshold_type": "GREATER_THAN"}, thresholds),
        "less-than-model-id": post_model("less-than-model-id", "concept-thresholder",
                                         {"concept_threshold_type": "LESS_THAN"}, thresholds),
        "write-success-as-me": post_model("write-success-as-me", "annotation-writer",
                                          {"annotation_status": 24150, "annotation_user_id": DEFAULT_USER}),
        "write-pending-as-me": post_model("write-pending-as-me", "annotation-writer",
                                          {"annotation_status": 24151, "annotation_user_id": DEFAULT_USER}),
    }

    # 8. the 8-node workflow pinning the returned versions
    def node(nid: str, mid: str, vid: str, inputs: list[str] = (), user: str = "", app: str = ""):
        return resources_pb2.WorkflowNode(
            id=nid, model=resources_pb2.Model(id=mid, user_id=user, app_id=app,
                                              model_version=resources_pb2.ModelVersion(id=vid)),
            node_inputs=[resources_pb2.NodeInput(node_id=i) for i in inputs])

    nodes = [
        node("general-embed", "general-image-embedding", "bb186755eda04f9cbb6fe32e816be104", user="clarifai", app="main"),
        node("general-concept", "general-image-recognition", "aa7f35c01e0642fda5cf400f543e7c40", user="clarifai", app="main"),
        node("general-cluster", "general-clusterering", "cc2074cff6dc4c02b6f4e1b8606dcb54", user="clarifai", app="main"),
        node("mapper", "synonym-model-id", versions["synonym-model-id"], ["general-concept"]),
        node("greater-than", "greater-than-model-id", versions["greater-than-model-id"], ["mapper"]),
        node("write-success", "write-success-as-me", versions["write-success-as-me"], ["greater-than"]),
        node("less-than", "less-than-model-id", versions["less-than-model-id"], ["mapper"]),
        node("write-pending", "write-pending-as-me", versions["write-pending-as-me"], ["less-than"]),
    ]
    ok("PostWorkflows", stub.PostWorkflows(service_pb2.PostWorkflowsRequest(
        user_app_id=uid, workflows=[resources_pb2.Workflow(id="auto-annotation-workflow-id", nodes=nodes)]),
        metadata=META))
    # 9. make it the app default
    ok("PatchApps", stub.PatchApps(service_pb2.PatchAppsRequest(
        user_app_id=resources_pb2.UserAppIDSet(user_id=DEFAULT_USER), action="overwrite",
        apps=[resources_pb2.App(id="auto-annotation", default_workflow_id="auto-annotation-workflow-id")]),
        metadata=META))
    # 10. an input, 11. list annotations
    ok("PostInputs", stub.PostInputs(service_pb2.PostInputsRequest(user_app_id=uid, inputs=[resources_pb2.Input(
        data=resources_pb2.Data(image=resources_pb2.Image(url="https://samples.clarifai.com/metro-north.jpg")))]),
        metadata=META))
    ok("ListAnnotations", stub.ListAnnotations(service_pb2.ListAnnotationsRequest(
        user_app_id=uid, user_ids=[DEFAULT_USER], list_all_annotations=True), metadata=META))

    # --- read everything back ---
    app = ok("GetApp", stub.GetApp(service_pb2.GetAppRequest(user_app_id=uid), metadata=META)).app
    assert app.default_workflow_id == "auto-annotation-workflow-id" and app.description == "walkthrough"

    got = ok("ListConcepts", stub.ListConcepts(service_pb2.ListConceptsRequest(user_app_id=uid), metadata=META))
    assert [(c.id, c.name) for c in got.concepts] == concepts

    rels = ok("ListConceptRelations", stub.ListConceptRelations(
        service_pb2.ListConceptRelationsRequest(user_app_id=uid), metadata=META)).concept_relations
    assert {(r.subject_concept.id, r.predicate, r.object_concept.id, r.object_concept.app_id,
             r.object_concept.user_id) for r in rels} == \
        {(c, "synonym", m, "main", "clarifai") for c, m in main_ids.items()}
    for cid in main_ids:
        one = ok("ListConceptRelations", stub.ListConceptRelations(service_pb2.ListConceptRelationsRequest(
            user_app_id=uid, concept_id=cid), metadata=META)).concept_relations
        assert [r.object_concept.id for r in one] == [main_ids[cid]]

    for mid, vid in versions.items():
        mv = ok("ListModelVersions", stub.ListModelVersions(service_pb2.ListModelVersionsRequest(
            user_app_id=uid, model_id=mid), metadata=META)).model_versions
        assert [v.id for v in mv] == [vid]
        model = ok("GetModel", stub.GetModel(service_pb2.GetModelRequest(user_app_id=uid, model_id=mid),
                                             metadata=META)).model
        assert model.model_version.id == vid
    gt = ok("GetModelVersion", stub.GetModelVersion(service_pb2.GetModelVersionRequest(
        user_app_id=uid, model_id="greater-than-model-id", version_id=versions["greater-than-model-id"]),
        metadata=META)).model_version
    params = json_format.MessageToDict(gt.output_info.params)
    assert params == {"concept_threshold_type": "GREATER_THAN"}
    assert [(c.id, round(c.value, 6)) for c in gt.output_info.data.concepts] == thresholds
    writer = ok("GetModelVersion", stub.GetModelVersion(service_pb2.GetModelVersionRequest(
        user_app_id=uid, model_id="write-pending-as-me", version_id=versions["write-pending-as-me"]),
        metadata=META)).model_version
    assert json_format.MessageToDict(writer.output_info.params) == {
        "annotation_status": 24151.0, "annotation_user_id": DEFAULT_USER}

    wf = ok("GetWorkflow", stub.GetWorkflow(service_pb2.GetWorkflowRequest(
        user_app_id=uid, workflow_id="auto-annotation-workflow-id"), metadata=META)).workflow
    assert [(n.id, n.model.id, n.model.model_version.id, [i.node_id for i in n.node_inputs]) for n in wf.nodes] == \
        [(n.id, n.model.id, n.model.model_version.id, [i.node_id for i in n.node_inputs]) for n in nodes]
    assert all(n.model.user_id == "clarifai" for n in wf.nodes[:3])

    inputs = ok("ListInputs", stub.ListInputs(service_pb2.ListInputsRequest(user_app_id=uid), metadata=META)).inputs
    assert [i.data.image.url for i in inputs] == ["https://samples.clarifai.com/metro-north.jpg"]
    assert all(code == SUCCESS for _, code in calls)
    assert len(calls) >= 20


def test_an_app_key_works_through_the_json_channel_without_user_app_id(sandbox, served_sandbox: str) -> None:
    """With an app-specific key and no `user_app_id`, the JSON client picks the app-less routes
    (`/v2/concepts`, `/v2/inputs`, ...) or, for ListModels, `/v2/users/me/models`: all served."""
    stub = service_pb2_grpc.V2Stub(ClarifaiChannel.get_json_channel(base_url=served_sandbox))
    assert stub.PostApps(service_pb2.PostAppsRequest(user_app_id=resources_pb2.UserAppIDSet(user_id=DEFAULT_USER),
                                                     apps=[resources_pb2.App(id="keyed")]), metadata=META
                         ).status.code == SUCCESS
    sandbox.add_app_key("keyed-app-key", DEFAULT_USER, "keyed")
    key = (("authorization", "Key keyed-app-key"),)
    assert stub.PostConcepts(service_pb2.PostConceptsRequest(concepts=[resources_pb2.Concept(id="dog")]),
                             metadata=key).status.code == SUCCESS
    posted = stub.PostInputs(service_pb2.PostInputsRequest(inputs=[resources_pb2.Input(id="in1", data=resources_pb2.Data(
        image=resources_pb2.Image(url="https://samples.clarifai.com/metro-north.jpg")))]), metadata=key)
    assert posted.status.code == SUCCESS
    assert stub.GetInput(service_pb2.GetInputRequest(input_id="in1"), metadata=key).input.id == "in1"
    assert [c.id for c in stub.ListConcepts(service_pb2.ListConceptsRequest(), metadata=key).concepts] == ["dog"]
    listed = stub.ListModels(service_pb2.ListModelsRequest(), metadata=key)
    assert listed.status.code == SUCCESS and list(listed.models) == []
    # what the key wrote is the app's, as the PAT sees it on the full routes
    uid = resources_pb2.UserAppIDSet(user_id=DEFAULT_USER, app_id="keyed")
    assert [c.id for c in stub.ListConcepts(service_pb2.ListConceptsRequest(user_app_id=uid), metadata=META).concepts] \
        == ["dog"]


# --- clarifai-python-grpc's model CRUD flow trains ------------------------------------------------------

TRUCK_IMAGE_URL = "https://s3.amazonaws.com/samples.clarifai.com/red-truck.png"
DOG_IMAGE_URL = "https://samples.clarifai.com/dog2.jpeg"


def _model_crud_flow(stub: service_pb2_grpc.V2Stub, meta: tuple, uid: resources_pb2.UserAppIDSet | None) -> None:
    """The flow of clarifai-python-grpc `tests/client/test_model_crud.py`
    (`test_post_patch_get_train_evaluate_predict_delete_model`, run against production through
    both channels), replayed request for request with its helpers (`tests/common.py`
    `wait_for_inputs_upload`, `wait_for_model_trained`) up to training and reading the version
    back. Not replayed: the evaluation (PostModelVersionMetrics / GetModelVersionMetrics) and the
    predict, which the sandbox does not model (it predicts only recorded scores).
    `uid` None: an app-specific key and no `user_app_id`, as that test sends them."""
    scope: dict = {"user_app_id": uid} if uid is not None else {}

    def ok(resp):
        assert resp.status.code == SUCCESS, resp.status
        return resp

    posted = ok(stub.PostInputs(service_pb2.PostInputsRequest(**scope, inputs=[
        resources_pb2.Input(data=resources_pb2.Data(
            image=resources_pb2.Image(url=TRUCK_IMAGE_URL, allow_duplicate_url=True),
            concepts=[resources_pb2.Concept(id="some-initial-concept")])),
        resources_pb2.Input(data=resources_pb2.Data(
            image=resources_pb2.Image(url=DOG_IMAGE_URL, allow_duplicate_url=True),
            concepts=[resources_pb2.Concept(id="some-new-concept")])),
    ]), metadata=meta))
    input_ids = [posted.inputs[0].id, posted.inputs[1].id]
    for input_id in input_ids:  # wait_for_inputs_upload
        while True:
            got = ok(stub.GetInput(service_pb2.GetInputRequest(**scope, input_id=input_id), metadata=meta))
            if got.input.status.code == status_code_pb2.INPUT_DOWNLOAD_SUCCESS:
                break
            assert got.input.status.code in (status_code_pb2.INPUT_DOWNLOAD_PENDING,
                                             status_code_pb2.INPUT_DOWNLOAD_IN_PROGRESS), got.input.status
            time.sleep(0.05)

    model_id = "model-id-" + uuid.uuid4().hex[:15]
    ok(stub.PostModels(service_pb2.PostModelsRequest(**scope, models=[resources_pb2.Model(id=model_id)]), metadata=meta))
    ok(stub.PatchModels(service_pb2.PatchModelsRequest(**scope, action="overwrite", models=[
        resources_pb2.Model(id=model_id, name="some new name")]), metadata=meta))
    versions = ok(stub.PostModelVersions(service_pb2.PostModelVersionsRequest(**scope, model_id=model_id, model_versions=[
        resources_pb2.ModelVersion(output_info=resources_pb2.OutputInfo(data=resources_pb2.Data(
            concepts=[resources_pb2.Concept(id="some-new-concept")])))]), metadata=meta))
    version_id = versions.model.model_version.id
    while True:  # wait_for_model_trained
        v = ok(stub.GetModelVersion(service_pb2.GetModelVersionRequest(
            **scope, model_id=model_id, version_id=version_id), metadata=meta)).model_version
        if v.status.code == status_code_pb2.MODEL_TRAINED:
            break
        assert v.status.code in (status_code_pb2.MODEL_QUEUED_FOR_TRAINING, status_code_pb2.MODEL_TRAINING), \
            f"Expected model to be trained, but got model status: {v.status.code} {v.status.description}"
        time.sleep(0.05)

    info = ok(stub.GetModelOutputInfo(service_pb2.GetModelRequest(**scope, model_id=model_id), metadata=meta)).model
    assert info.id == model_id and info.name == "some new name"
    concepts = info.model_version.output_info.data.concepts or info.output_info.data.concepts
    assert [c.id for c in concepts] == ["some-new-concept"]

    ok(stub.DeleteModel(service_pb2.DeleteModelRequest(**scope, model_id=model_id), metadata=meta))
    ok(stub.DeleteInputs(service_pb2.DeleteInputsRequest(**scope, ids=input_ids), metadata=meta))


@pytest.mark.unlabelled  # the sandbox judges the flow's own labels: Concept(id=...) goes out as value 0.0
def test_clarifai_model_crud_flow_trains_through_the_json_channel_on_the_served_sandbox(
        sandbox, served_sandbox: str) -> None:
    stub = service_pb2_grpc.V2Stub(ClarifaiChannel.get_json_channel(base_url=served_sandbox))
    assert stub.PostApps(service_pb2.PostAppsRequest(user_app_id=resources_pb2.UserAppIDSet(user_id=DEFAULT_USER),
                                                     apps=[resources_pb2.App(id="crud")]), metadata=META
                         ).status.code == SUCCESS
    sandbox.add_app_key("crud-app-key", DEFAULT_USER, "crud")
    _model_crud_flow(stub, (("authorization", "Key crud-app-key"),), None)


def test_clarifai_model_crud_flow_trains_on_sandbox_serve(cli_server: str) -> None:
    stub = service_pb2_grpc.V2Stub(ClarifaiChannel.get_json_channel(base_url=cli_server))
    assert stub.PostApps(service_pb2.PostAppsRequest(user_app_id=resources_pb2.UserAppIDSet(user_id=DEFAULT_USER),
                                                     apps=[resources_pb2.App(id="crud")]), metadata=META
                         ).status.code == SUCCESS
    _model_crud_flow(stub, META, resources_pb2.UserAppIDSet(user_id=DEFAULT_USER, app_id="crud"))
