"""The sandbox's route table against clarifai-grpc's own V2 service descriptor (read from the
installed package, not from a copied list), and its request-field whitelist against the messages."""

from __future__ import annotations

import pytest
from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from google.api import annotations_pb2

from reconciler.sandbox.routes import ROUTES, match
from reconciler.sandbox.seed import FIELDS

V2 = service_pb2.DESCRIPTOR.services_by_name["V2"]


def _bindings() -> dict[str, set[tuple[str, str]]]:
    out: dict[str, set[tuple[str, str]]] = {}
    for m in V2.methods:
        rule = m.GetOptions().Extensions[annotations_pb2.http]
        for r in [rule, *rule.additional_bindings]:
            kind = r.WhichOneof("pattern")
            out.setdefault(m.name, set()).add((kind.upper(), getattr(r, kind)))
    return out


BINDINGS = _bindings()


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.template}")
def test_every_served_route_is_declared_by_the_v2_service(route):
    assert route.rpc in BINDINGS, f"{route.rpc} is not a V2 RPC"
    assert (route.method, route.template) in BINDINGS[route.rpc]
    assert V2.methods_by_name[route.rpc].output_type.name == route.response
    assert not V2.methods_by_name[route.rpc].server_streaming


def test_the_issue_resources_are_all_served():
    served = {r.rpc for r in ROUTES}
    wanted = {"GetApp", "ListApps", "PostApps", "PatchApps", "PatchApp", "DeleteApp", "ListConcepts", "GetConcept",
              "PostConcepts", "PatchConcepts", "ListConceptRelations", "PostConceptRelations",
              "DeleteConceptRelations", "ListModels", "GetModel", "PostModels", "PatchModels", "DeleteModel",
              "DeleteModels", "GetModelOutputInfo", "ListModelTypes", "GetModelType", "PostModelVersions",
              "ListModelVersions", "GetModelVersion", "DeleteModelVersion", "ListWorkflows", "GetWorkflow",
              "PostWorkflows", "PatchWorkflows", "DeleteWorkflow", "DeleteWorkflows", "PostInputs", "ListInputs",
              "GetInput", "DeleteInput", "ListAnnotations", "PostAnnotations", "PatchAnnotations"}
    assert wanted <= served
    assert "DeleteConcepts" not in served  # Clarifai has no concept deletion


UA = "/v2/users/me/apps/a"


@pytest.mark.parametrize("method,path,rpc,params", [
    ("GET", UA + "/models/types", "ListModelTypes", {}),
    ("GET", UA + "/models/types/concept-thresholder", "GetModelType", {"model_type_id": "concept-thresholder"}),
    ("GET", UA + "/models/m1", "GetModel", {"model_id": "m1"}),
    ("GET", UA + "/models/m1/versions", "ListModelVersions", {"model_id": "m1"}),
    ("GET", UA + "/models/m1/output_info", "GetModelOutputInfo", {"model_id": "m1"}),
    ("GET", UA + "/concepts/relations", "ListConceptRelations", {}),
    ("GET", UA + "/concepts/c1/relations", "ListConceptRelations", {"concept_id": "c1"}),
    ("GET", UA + "/concepts/c1", "GetConcept", {"concept_id": "c1"}),
    ("PATCH", "/v2/users/me/apps", "PatchApps", {}),
    ("PATCH", UA, "PatchApp", {}),
    ("DELETE", UA + "/models", "DeleteModels", {}),
])
def test_literal_words_win_over_ids(method, path, rpc, params):
    route, got, known = match(method, path)
    assert route is not None and route.rpc == rpc
    assert {k: v for k, v in got.items() if not k.startswith("user_app_id")} == params
    assert got["user_app_id.user_id"] == "me"


def test_wrong_method_and_unknown_path_are_told_apart():
    assert match("DELETE", UA + "/models/types") == (None, {}, True)  # a path, but not for DELETE
    assert match("PUT", UA + "/models") == (None, {}, True)
    assert match("GET", UA + "/bananas") == (None, {}, False)


def test_field_whitelist_names_only_fields_of_the_messages():
    for message, fields in FIELDS.items():
        desc = resources_pb2.DESCRIPTOR.message_types_by_name[message]
        names = set(desc.fields_by_name)
        assert set(fields) <= names, f"{message}: {set(fields) - names}"
        for name, sub in fields.items():
            if sub:
                assert desc.fields_by_name[name].message_type.name == sub
