"""The route table: every (HTTP method, path template) the sandbox serves, the V2 RPC it is, that
RPC's response message, and its handler.

Templates are written exactly as clarifai-grpc's `google.api.http` bindings spell them (a test
compares each against the installed package's V2 descriptor). `match` gives literal path words
priority over `{param}` words, segment by segment from the left, so `models/types` is
ListModelTypes and never GetModel with model_id "types", and `concepts/relations` is the
whole-app ListConceptRelations.

App-less routes (`/v2/concepts`, `/v2/inputs/{input_id}`, ...) are the `additional_bindings`
clarifai-grpc declares for app-specific API keys: the key names the app (app.py fills the
user / app parameters from it). They are derived from the primary routes for exactly the RPCs in
`APP_KEY_FORMS`, the subset of those bindings the sandbox serves (a test checks each against
clarifai-grpc's V2 service descriptor).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from reconciler.sandbox import h_apps as A
from reconciler.sandbox import h_datasets as D
from reconciler.sandbox import h_models as M
from reconciler.sandbox import h_predict as P
from reconciler.sandbox import h_run as R
from reconciler.sandbox import h_tasks as T
from reconciler.sandbox import h_workflows as W

U = "/v2/users/{user_app_id.user_id}"
UA = U + "/apps/{user_app_id.app_id}"


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    rpc: str
    response: str  # the response message's name in clarifai.api (or clarifai.api.status)
    handler: Callable[[Any], dict[str, Any]]

    @property
    def segments(self) -> tuple[str, ...]:
        return tuple(self.template.strip("/").split("/"))

    @property
    def app_from_key(self) -> bool:
        """An app-less binding: only an app-specific API key says which app it is about."""
        return "{user_app_id.user_id}" not in self.template

    @property
    def writes(self) -> bool:
        return self.method != "GET"


ROUTES: tuple[Route, ...] = (
    Route("GET", UA, "GetApp", "SingleAppResponse", A.get_app),
    Route("GET", U + "/apps", "ListApps", "MultiAppResponse", A.list_apps),
    Route("POST", U + "/apps", "PostApps", "MultiAppResponse", A.post_apps),
    Route("PATCH", U + "/apps", "PatchApps", "MultiAppResponse", A.patch_apps),
    Route("PATCH", UA, "PatchApp", "SingleAppResponse", A.patch_app),
    Route("DELETE", UA, "DeleteApp", "BaseResponse", A.delete_app),
    Route("GET", UA + "/concepts", "ListConcepts", "MultiConceptResponse", A.list_concepts),
    Route("GET", UA + "/concepts/{concept_id}", "GetConcept", "SingleConceptResponse", A.get_concept),
    Route("POST", UA + "/concepts", "PostConcepts", "MultiConceptResponse", A.post_concepts),
    Route("PATCH", UA + "/concepts", "PatchConcepts", "MultiConceptResponse", A.patch_concepts),
    Route(
        "GET",
        UA + "/concepts/{concept_id}/relations",
        "ListConceptRelations",
        "MultiConceptRelationResponse",
        A.list_concept_relations,
    ),
    Route("GET", UA + "/concepts/relations", "ListConceptRelations", "MultiConceptRelationResponse", A.list_concept_relations),
    Route(
        "GET", UA + "/concepts/knowledge_graphs", "ListKnowledgeGraphs", "MultiKnowledgeGraphResponse", A.list_knowledge_graphs
    ),
    Route(
        "POST", UA + "/concepts/knowledge_graphs", "PostKnowledgeGraphs", "MultiKnowledgeGraphResponse", A.post_knowledge_graphs
    ),
    Route(
        "POST",
        UA + "/concepts/{concept_id}/relations",
        "PostConceptRelations",
        "MultiConceptRelationResponse",
        A.post_concept_relations,
    ),
    Route(
        "DELETE", UA + "/concepts/{concept_id}/relations", "DeleteConceptRelations", "BaseResponse", A.delete_concept_relations
    ),
    Route("GET", UA + "/models", "ListModels", "MultiModelResponse", M.list_models),
    Route("GET", U + "/models", "ListModels", "MultiModelResponse", A.across_apps(M.list_models, "models")),
    Route("GET", UA + "/models/{model_id}", "GetModel", "SingleModelResponse", M.get_model),
    Route("GET", UA + "/models/{model_id}/output_info", "GetModelOutputInfo", "SingleModelResponse", M.get_model),
    Route(
        "GET",
        UA + "/models/{model_id}/versions/{version_id}/output_info",
        "GetModelOutputInfo",
        "SingleModelResponse",
        M.get_model,
    ),
    Route("POST", UA + "/models", "PostModels", "SingleModelResponse", M.post_models),
    Route("PATCH", UA + "/models", "PatchModels", "MultiModelResponse", M.patch_models),
    Route("DELETE", UA + "/models/{model_id}", "DeleteModel", "BaseResponse", M.delete_model),
    Route("DELETE", UA + "/models", "DeleteModels", "BaseResponse", M.delete_models),
    Route("GET", UA + "/models/types", "ListModelTypes", "MultiModelTypeResponse", M.list_model_types),
    Route("GET", UA + "/models/types/{model_type_id}", "GetModelType", "SingleModelTypeResponse", M.get_model_type),
    Route("POST", UA + "/models/{model_id}/versions", "PostModelVersions", "SingleModelResponse", M.post_model_versions),
    Route("GET", UA + "/models/{model_id}/versions", "ListModelVersions", "MultiModelVersionResponse", M.list_model_versions),
    Route(
        "GET",
        UA + "/models/{model_id}/versions/{version_id}",
        "GetModelVersion",
        "SingleModelVersionResponse",
        M.get_model_version,
    ),
    Route(
        "DELETE", UA + "/models/{model_id}/versions/{version_id}", "DeleteModelVersion", "BaseResponse", M.delete_model_version
    ),
    Route("GET", UA + "/workflows", "ListWorkflows", "MultiWorkflowResponse", W.list_workflows),
    Route("GET", U + "/workflows", "ListWorkflows", "MultiWorkflowResponse", A.across_apps(W.list_workflows, "workflows")),
    Route("GET", UA + "/workflows/{workflow_id}", "GetWorkflow", "SingleWorkflowResponse", W.get_workflow),
    Route("POST", UA + "/workflows", "PostWorkflows", "MultiWorkflowResponse", W.post_workflows),
    Route("PATCH", UA + "/workflows", "PatchWorkflows", "MultiWorkflowResponse", W.patch_workflows),
    Route("DELETE", UA + "/workflows/{workflow_id}", "DeleteWorkflow", "BaseResponse", W.delete_workflow),
    Route("DELETE", UA + "/workflows", "DeleteWorkflows", "BaseResponse", W.delete_workflows),
    Route("POST", UA + "/inputs", "PostInputs", "MultiInputResponse", W.post_inputs),
    Route("PATCH", UA + "/inputs", "PatchInputs", "MultiInputResponse", W.patch_inputs),
    Route("GET", UA + "/inputs", "ListInputs", "MultiInputResponse", W.list_inputs),
    Route("GET", UA + "/inputs/status", "GetInputCount", "SingleInputCountResponse", A.get_input_count),
    Route("GET", UA + "/inputs/{input_id}", "GetInput", "SingleInputResponse", W.get_input),
    Route("DELETE", UA + "/inputs/{input_id}", "DeleteInput", "BaseResponse", W.delete_input),
    Route("DELETE", UA + "/inputs", "DeleteInputs", "BaseResponse", W.delete_inputs),
    Route("GET", UA + "/annotations", "ListAnnotations", "MultiAnnotationResponse", W.list_annotations),
    Route("POST", UA + "/annotations", "PostAnnotations", "MultiAnnotationResponse", W.post_annotations),
    Route("PATCH", UA + "/annotations", "PatchAnnotations", "MultiAnnotationResponse", W.patch_annotations),
    Route(
        "POST",
        UA + "/workflows/{workflow_id}/results",
        "PostWorkflowResults",
        "PostWorkflowResultsResponse",
        R.post_workflow_results,
    ),
    Route(
        "POST",
        UA + "/workflows/{workflow_id}/versions/{version_id}/results",
        "PostWorkflowResults",
        "PostWorkflowResultsResponse",
        R.post_workflow_results,
    ),
    Route("GET", UA + "/collaborators", "ListCollaborators", "MultiCollaboratorsResponse", T.list_collaborators),
    Route("POST", UA + "/collaborators", "PostCollaborators", "MultiCollaboratorsResponse", T.post_collaborators),
    Route("PATCH", UA + "/collaborators", "PatchCollaborators", "MultiCollaboratorsResponse", T.patch_collaborators),
    Route("DELETE", UA + "/collaborators", "DeleteCollaborators", "BaseResponse", T.delete_collaborators),
    Route("GET", UA + "/tasks", "ListTasks", "MultiTaskResponse", T.list_tasks),
    Route("GET", UA + "/tasks/{task_id}", "GetTask", "SingleTaskResponse", T.get_task),
    Route("POST", UA + "/tasks", "PostTasks", "MultiTaskResponse", T.post_tasks),
    Route("PATCH", UA + "/tasks", "PatchTasks", "MultiTaskResponse", T.patch_tasks),
    Route("DELETE", UA + "/tasks", "DeleteTasks", "BaseResponse", T.delete_tasks),
    Route(
        "PUT", UA + "/tasks/{task_id}/assignments", "PutTaskAssignments", "MultiTaskAssignmentResponse", T.put_task_assignments
    ),
    Route(
        "GET",
        UA + "/tasks/{task_id}/assignments",
        "ListNextTaskAssignments",
        "MultiInputResponse",
        T.list_next_task_assignments,
    ),
    Route("GET", UA + "/datasets", "ListDatasets", "MultiDatasetResponse", D.list_datasets),
    Route("GET", UA + "/datasets/{dataset_id}", "GetDataset", "SingleDatasetResponse", D.get_dataset),
    Route("POST", UA + "/datasets", "PostDatasets", "MultiDatasetResponse", D.post_datasets),
    Route("PATCH", UA + "/datasets", "PatchDatasets", "MultiDatasetResponse", D.patch_datasets),
    Route("DELETE", UA + "/datasets", "DeleteDatasets", "BaseResponse", D.delete_datasets),
    Route(
        "GET",
        UA + "/datasets/{dataset_id}/versions",
        "ListDatasetVersions",
        "MultiDatasetVersionResponse",
        D.list_dataset_versions,
    ),
    Route(
        "GET",
        UA + "/datasets/{dataset_id}/versions/{dataset_version_id}",
        "GetDatasetVersion",
        "SingleDatasetVersionResponse",
        D.get_dataset_version,
    ),
    Route(
        "POST",
        UA + "/datasets/{dataset_id}/versions",
        "PostDatasetVersions",
        "MultiDatasetVersionResponse",
        D.post_dataset_versions,
    ),
    Route("DELETE", UA + "/datasets/{dataset_id}/versions", "DeleteDatasetVersions", "BaseResponse", D.delete_dataset_versions),
    Route("GET", UA + "/datasets/{dataset_id}/inputs", "ListDatasetInputs", "MultiDatasetInputResponse", D.list_dataset_inputs),
    Route("POST", UA + "/datasets/{dataset_id}/inputs", "PostDatasetInputs", "MultiDatasetInputResponse", D.post_dataset_inputs),
    Route("DELETE", UA + "/datasets/{dataset_id}/inputs", "DeleteDatasetInputs", "BaseResponse", D.delete_dataset_inputs),
    Route(
        "POST",
        UA + "/models/{model_id}/versions/{version_id}/outputs",
        "PostModelOutputs",
        "MultiOutputResponse",
        P.post_model_outputs,
    ),
    Route("POST", UA + "/models/{model_id}/outputs", "PostModelOutputs", "MultiOutputResponse", P.post_model_outputs),
)

#: (method, path after the app prefix) of the primary routes that also have an app-less binding.
#: Concept relations, ListCollaborators and versioned workflow results have none in clarifai-grpc.
APP_KEY_FORMS = frozenset(
    {
        ("GET", "/concepts"),
        ("GET", "/concepts/{concept_id}"),
        ("POST", "/concepts"),
        ("PATCH", "/concepts"),
        ("GET", "/models"),
        ("GET", "/models/{model_id}"),
        ("GET", "/models/{model_id}/output_info"),
        ("GET", "/models/{model_id}/versions/{version_id}/output_info"),
        ("POST", "/models"),
        ("PATCH", "/models"),
        ("DELETE", "/models/{model_id}"),
        ("DELETE", "/models"),
        ("GET", "/models/types"),
        ("GET", "/models/types/{model_type_id}"),
        ("POST", "/models/{model_id}/versions"),
        ("GET", "/models/{model_id}/versions"),
        ("GET", "/models/{model_id}/versions/{version_id}"),
        ("DELETE", "/models/{model_id}/versions/{version_id}"),
        ("GET", "/workflows"),
        ("GET", "/workflows/{workflow_id}"),
        ("POST", "/workflows"),
        ("PATCH", "/workflows"),
        ("DELETE", "/workflows/{workflow_id}"),
        ("DELETE", "/workflows"),
        ("POST", "/workflows/{workflow_id}/results"),
        ("POST", "/inputs"),
        ("PATCH", "/inputs"),
        ("GET", "/inputs"),
        ("GET", "/inputs/{input_id}"),
        ("DELETE", "/inputs/{input_id}"),
        ("DELETE", "/inputs"),
        ("GET", "/annotations"),
        ("POST", "/annotations"),
        ("PATCH", "/annotations"),
        ("GET", "/datasets"),
        ("GET", "/datasets/{dataset_id}"),
        ("POST", "/datasets"),
        ("PATCH", "/datasets"),
        ("DELETE", "/datasets"),
    }
)

ROUTES = ROUTES + tuple(
    Route(r.method, "/v2" + r.template[len(UA) :], r.rpc, r.response, r.handler)
    for r in ROUTES
    if r.template.startswith(UA + "/") and (r.method, r.template[len(UA) :]) in APP_KEY_FORMS
)

#: Path parameters that may be empty: an empty workflow id in PostWorkflowResults is the app default.
_MAY_BE_EMPTY = {("PostWorkflowResults", "{workflow_id}")}


def _bind(route: Route, parts: list[str]) -> tuple[tuple[int, ...], dict[str, str]] | None:
    """(priority key, params) if `parts` fits the template; lower keys are more literal."""
    segs = route.segments
    if len(segs) != len(parts):
        return None
    params: dict[str, str] = {}
    rank: list[int] = []
    for seg, part in zip(segs, parts):
        if seg.startswith("{") and seg.endswith("}"):
            if not part and (route.rpc, seg) not in _MAY_BE_EMPTY:
                return None
            params[seg[1:-1]] = part
            rank.append(1)
        elif seg == part:
            rank.append(0)
        else:
            return None
    return tuple(rank), params


def match(method: str, path: str) -> tuple[Route | None, dict[str, str], bool]:
    """(route, path params, path_known). `path_known` with no route means: wrong method."""
    from urllib.parse import unquote

    parts = [unquote(p) for p in path.strip("/").split("/")]
    best: dict[str, tuple[tuple[int, ...], Route, dict[str, str]]] = {}
    for r in ROUTES:
        bound = _bind(r, parts)
        if bound is None:
            continue
        rank, params = bound
        if r.method not in best or rank < best[r.method][0]:
            best[r.method] = (rank, r, params)
    if not best:
        return None, {}, False
    # the most literal template over all methods decides which resource the path names
    top = min(v[0] for v in best.values())
    hit = best.get(method)
    if hit is None or hit[0] != top:
        return None, {}, True
    return hit[1], hit[2], True
