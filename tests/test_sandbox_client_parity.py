"""What Clarifai's own client tests assert about the real API, replayed against the sandbox with
clarifai-grpc's JSON client, the way those tests call it.

Each test names the test of Clarifai/clarifai-python-grpc (`tests/client/...`, `tests/common.py`)
whose assertion it mirrors. Those tests authenticate with an app-specific API key (`metadata()`,
`CLARIFAI_API_KEY`) and send no `user_app_id`, so the JSON client takes the app-less routes
(`/v2/concepts`, `/v2/inputs/{id}`, ...); with `metadata(pat=True)` they name the user and app.
"""

from __future__ import annotations

import json

import pytest
from clarifai_grpc.channel.clarifai_channel import ClarifaiChannel
from clarifai_grpc.grpc.api import resources_pb2, service_pb2, service_pb2_grpc
from clarifai_grpc.grpc.api.status import status_code_pb2
from google.protobuf.struct_pb2 import Struct

from reconciler.annotate.predictions import parse as parse_predictions
from reconciler.sandbox.app import DEFAULT_KEY, DEFAULT_USER, Sandbox

APP = "client-tests"
APP_KEY = "app-key-of-client-tests"
PAT = (("authorization", f"Key {DEFAULT_KEY}"),)
KEY = (("authorization", f"Key {APP_KEY}"),)
HERE = resources_pb2.UserAppIDSet(user_id=DEFAULT_USER, app_id=APP)
MAIN = resources_pb2.UserAppIDSet(user_id="clarifai", app_id="main")
DOG_IMAGE_URL = "https://samples.clarifai.com/dog2.jpeg"  # tests/common.py
SUCCESS = status_code_pb2.SUCCESS


def ok(resp):
    assert resp.status.code == SUCCESS, resp.status
    return resp


@pytest.fixture
def stub(sandbox: Sandbox, served_sandbox: str) -> service_pb2_grpc.V2Stub:
    """The JSON client on a served sandbox with app `client-tests` and an API key bound to it."""
    s = service_pb2_grpc.V2Stub(ClarifaiChannel.get_json_channel(base_url=served_sandbox))
    ok(s.PostApps(service_pb2.PostAppsRequest(user_app_id=resources_pb2.UserAppIDSet(user_id=DEFAULT_USER),
                                              apps=[resources_pb2.App(id=APP)]), metadata=PAT))
    sandbox.add_app_key(APP_KEY, DEFAULT_USER, APP)
    return s


def _post_input(stub, **data) -> str:
    resp = ok(stub.PostInputs(service_pb2.PostInputsRequest(inputs=[resources_pb2.Input(
        data=resources_pb2.Data(image=resources_pb2.Image(url=DOG_IMAGE_URL), **data))]), metadata=KEY))
    return resp.inputs[0].id


def test_a_deleted_input_reads_as_conn_does_not_exist(stub):
    # tests/common.py cleanup_inputs -> wait_for_inputs_delete: GetInput until CONN_DOES_NOT_EXIST
    input_id = _post_input(stub)
    assert ok(stub.GetInput(service_pb2.GetInputRequest(input_id=input_id), metadata=KEY)).input.id == input_id
    ok(stub.DeleteInputs(service_pb2.DeleteInputsRequest(ids=[input_id]), metadata=KEY))
    gone = stub.GetInput(service_pb2.GetInputRequest(input_id=input_id), metadata=KEY)
    assert gone.status.code == status_code_pb2.CONN_DOES_NOT_EXIST
    never = stub.GetInput(service_pb2.GetInputRequest(input_id="never-posted"), metadata=KEY)
    assert never.status.code == status_code_pb2.CONN_DOES_NOT_EXIST


def test_patching_a_concept_the_app_does_not_have(stub):
    # tests/client/test_concept_crud.py test_patching_public_concept_fails
    resp = stub.PatchConcepts(service_pb2.PatchConceptsRequest(action="overwrite", concepts=[
        resources_pb2.Concept(id="ai_98Xb0K3q", name="this new name won't be applied")]), metadata=KEY)
    assert resp.status.code == status_code_pb2.CONN_DOES_NOT_EXIST
    assert resp.status.description == "Resource does not exist"
    # and the app's own concept patches (test_concept_post_get_patch)
    ok(stub.PostConcepts(service_pb2.PostConceptsRequest(concepts=[resources_pb2.Concept(id="c1")]), metadata=KEY))
    ok(stub.PatchConcepts(service_pb2.PatchConceptsRequest(action="overwrite", concepts=[
        resources_pb2.Concept(id="c1", name="some new concept name")]), metadata=KEY))
    got = ok(stub.GetConcept(service_pb2.GetConceptRequest(concept_id="c1"), metadata=KEY)).concept
    assert got.name == "some new concept name"


def test_an_invalid_key(stub):
    # tests/client/test_auth.py test_invalid_api_key
    resp = stub.ListModels(service_pb2.ListModelsRequest(), metadata=(("authorization", "Key SOME_INVALID_KEY"),))
    assert resp.status.code == status_code_pb2.CONN_KEY_INVALID
    assert resp.status.description == "Invalid API key or Invalid API key/application pair"


def test_workflow_nodes_name_public_models_by_bare_id(stub):
    # tests/client/test_workflow_crud.py test_post_patch_get_delete_workflow (with tests/common.py ids)
    general, moderation = "aaa03c23b3724a16a56b629203edc62c", "d16f390eb32cad478c7ae150069bd2c6"
    nodes = [resources_pb2.WorkflowNode(id="the-general-node", model=resources_pb2.Model(
                 id=general, model_version=resources_pb2.ModelVersion(id="aa7f35c01e0642fda5cf400f543e7c40"))),
             resources_pb2.WorkflowNode(id="the-moderation-node", model=resources_pb2.Model(
                 id=moderation, model_version=resources_pb2.ModelVersion(id="aa8be956dbaa4b7a858826a84253cab9")))]
    ok(stub.PostWorkflows(service_pb2.PostWorkflowsRequest(workflows=[
        resources_pb2.Workflow(id="mod-and-general-1", nodes=nodes)]), metadata=KEY))
    wf = ok(stub.GetWorkflow(service_pb2.GetWorkflowRequest(workflow_id="mod-and-general-1"), metadata=KEY)).workflow
    assert [(n.model.id, n.model.user_id, n.model.app_id, n.model.model_version.id) for n in wf.nodes] == [
        (general, "clarifai", "main", "aa7f35c01e0642fda5cf400f543e7c40"),
        (moderation, "clarifai", "main", "aa8be956dbaa4b7a858826a84253cab9")]
    ok(stub.DeleteWorkflow(service_pb2.DeleteWorkflowRequest(workflow_id="mod-and-general-1"), metadata=KEY))
    # an id that is neither the app's nor clarifai/main's is still refused
    bad = stub.PostWorkflows(service_pb2.PostWorkflowsRequest(workflows=[resources_pb2.Workflow(
        id="nope", nodes=[resources_pb2.WorkflowNode(id="n", model=resources_pb2.Model(id="no-such-model"))])]),
        metadata=KEY)
    assert bad.status.code == status_code_pb2.MODEL_DOES_NOT_EXIST


def test_main_workflow_results_honour_output_config_and_full_prediction_keys(sandbox, stub):
    # tests/client/test_workflow_predict.py test_workflow_predict_image_url: clarifai/main "General",
    # max_concepts=3 -> exactly 3 concepts. The recorded line names the model by its full reference.
    scores = {"ai_l8TKp2h5": 0.99, "ai_dxSG2s86": 0.4, "ai_VPmHr5bm": 0.8, "ai_x1": 0.7, "ai_x2": 0.2}
    sandbox.set_predictions(parse_predictions(json.dumps(
        {"input": DOG_IMAGE_URL, "model": "clarifai/main/general-image-recognition", "concepts": scores})))

    def run(**config) -> list[tuple[str, float]]:
        resp = ok(stub.PostWorkflowResults(service_pb2.PostWorkflowResultsRequest(
            user_app_id=MAIN, workflow_id="General", output_config=resources_pb2.OutputConfig(**config),
            inputs=[resources_pb2.Input(data=resources_pb2.Data(image=resources_pb2.Image(url=DOG_IMAGE_URL)))]),
            metadata=PAT))
        return [(c.id, round(c.value, 4)) for c in resp.results[0].outputs[0].data.concepts]

    assert run(max_concepts=3) == [("ai_l8TKp2h5", 0.99), ("ai_VPmHr5bm", 0.8), ("ai_x1", 0.7)]
    assert run(min_value=0.5) == [("ai_l8TKp2h5", 0.99), ("ai_VPmHr5bm", 0.8), ("ai_x1", 0.7)]
    assert run(max_concepts=2, min_value=0.9) == [("ai_l8TKp2h5", 0.99)]
    assert len(run()) == 5  # unset: the documented default of 20 keeps all five


def test_an_app_key_serves_its_one_app_on_the_short_and_the_full_routes(sandbox, stub):
    ok(stub.PostConcepts(service_pb2.PostConceptsRequest(concepts=[resources_pb2.Concept(id="dog")]), metadata=KEY))
    # the same app through the PAT and the full route
    full = ok(stub.ListConcepts(service_pb2.ListConceptsRequest(user_app_id=HERE), metadata=PAT)).concepts
    assert [c.id for c in full] == ["dog"]
    assert [c.id for c in ok(stub.ListConcepts(service_pb2.ListConceptsRequest(user_app_id=HERE),
                                               metadata=KEY)).concepts] == ["dog"]
    ok(stub.PostModels(service_pb2.PostModelsRequest(models=[resources_pb2.Model(
        id="thr", model_type_id="concept-thresholder")]), metadata=KEY))
    # the JSON client sends an app key's ListModels to the user-level `/v2/users/me/models`
    assert [m.id for m in ok(stub.ListModels(service_pb2.ListModelsRequest(), metadata=KEY)).models] == ["thr"]
    ok(stub.PostApps(service_pb2.PostAppsRequest(user_app_id=resources_pb2.UserAppIDSet(user_id=DEFAULT_USER),
                                                 apps=[resources_pb2.App(id="other")]), metadata=PAT))
    ok(stub.PostModels(service_pb2.PostModelsRequest(user_app_id=resources_pb2.UserAppIDSet(
        user_id=DEFAULT_USER, app_id="other"), models=[resources_pb2.Model(
            id="thr2", model_type_id="concept-thresholder")]), metadata=PAT))
    assert [m.id for m in ok(stub.ListModels(service_pb2.ListModelsRequest(), metadata=KEY)).models] == ["thr"]
    every = ok(stub.ListModels(service_pb2.ListModelsRequest(
        user_app_id=resources_pb2.UserAppIDSet(user_id=DEFAULT_USER)), metadata=PAT)).models
    assert sorted(m.id for m in every) == ["thr", "thr2"]  # a PAT's user-level listing spans its apps
    assert ok(stub.ListWorkflows(service_pb2.ListWorkflowsRequest(), metadata=KEY)).workflows == []
    # the key reaches no other app, not even clarifai/main's routes, and creates no app
    for uid in (resources_pb2.UserAppIDSet(user_id=DEFAULT_USER, app_id="other"), MAIN):
        refused = stub.ListConcepts(service_pb2.ListConceptsRequest(user_app_id=uid), metadata=KEY)
        assert refused.status.code == status_code_pb2.CONN_INSUFFICIENT_SCOPES
    refused = stub.PostApps(service_pb2.PostAppsRequest(user_app_id=resources_pb2.UserAppIDSet(user_id=DEFAULT_USER),
                                                        apps=[resources_pb2.App(id="third")]), metadata=KEY)
    assert refused.status.code == status_code_pb2.CONN_INSUFFICIENT_SCOPES
    # a PAT names no app, so it cannot use the app-less routes
    assert stub.ListConcepts(service_pb2.ListConceptsRequest(), metadata=PAT).status.code != SUCCESS


def test_patch_inputs_overwrite_and_merge(stub):
    # tests/client/test_image_crud.py: overwrite replaces the concepts (name read back as the id);
    # merge appends concepts, replaces geo and merges metadata
    meta = Struct()
    meta.update({"key1": 123, "key2": {"inner-key1": "inner-val1"}})
    input_id = _post_input(stub, concepts=[resources_pb2.Concept(id="some-positive-concept", value=1),
                                           resources_pb2.Concept(id="some-negative-concept", value=0)],
                           geo=resources_pb2.Geo(geo_point=resources_pb2.GeoPoint(longitude=55.0, latitude=66)),
                           metadata=meta)
    new_meta = Struct()
    new_meta.update({"new-key": "new-value"})
    merged = ok(stub.PatchInputs(service_pb2.PatchInputsRequest(action="merge", inputs=[resources_pb2.Input(
        id=input_id, data=resources_pb2.Data(
            concepts=[resources_pb2.Concept(id="another-positive-concept", value=1)],
            geo=resources_pb2.Geo(geo_point=resources_pb2.GeoPoint(longitude=77.0, latitude=88.0)),
            metadata=new_meta))]), metadata=KEY)).inputs[0]
    assert merged.data.concepts[2].id == "another-positive-concept"
    assert (merged.data.geo.geo_point.longitude, merged.data.geo.geo_point.latitude) == (77.0, 88.0)
    assert merged.data.metadata["new-key"] == "new-value" and merged.data.metadata["key1"] == 123

    ok(stub.PatchInputs(service_pb2.PatchInputsRequest(action="overwrite", inputs=[resources_pb2.Input(
        id=input_id, data=resources_pb2.Data(concepts=[resources_pb2.Concept(id="some-new-concept")]))]),
        metadata=KEY))
    got = ok(stub.GetInput(service_pb2.GetInputRequest(input_id=input_id), metadata=KEY)).input
    assert [c.name for c in got.data.concepts] == ["some-new-concept"]
    assert got.data.image.url == DOG_IMAGE_URL  # fields not sent are kept
    missing = stub.PatchInputs(service_pb2.PatchInputsRequest(action="merge", inputs=[resources_pb2.Input(
        id="never-posted", data=resources_pb2.Data(metadata=new_meta))]), metadata=KEY)
    assert missing.status.code == status_code_pb2.CONN_DOES_NOT_EXIST


def test_list_collaborators_with_a_pat(stub):
    # tests/client/test_collaborators.py test_list_collaborators_with_pat
    apps = ok(stub.ListApps(service_pb2.ListAppsRequest(user_app_id=resources_pb2.UserAppIDSet(user_id="me")),
                            metadata=PAT)).apps
    assert apps
    resp = ok(stub.ListCollaborators(service_pb2.ListCollaboratorsRequest(
        user_app_id=resources_pb2.UserAppIDSet(user_id="me", app_id=apps[0].id)), metadata=PAT))
    assert list(resp.collaborators) == [] and resp.app_owner.id == DEFAULT_USER
    absent = stub.ListCollaborators(service_pb2.ListCollaboratorsRequest(
        user_app_id=resources_pb2.UserAppIDSet(user_id="me", app_id="no-such-app")), metadata=PAT)
    assert absent.status.code == status_code_pb2.CONN_DOES_NOT_EXIST
