"""The auto-annotation walkthrough built by RAW API calls, in the order of the documented
walkthrough (REFERENCE.md §5.2/5.3), as today's API takes it (each model bare, then its version):
concepts, relations to clarifai/main, a synonym mapper,
greater-/less-than thresholders, SUCCESS/PENDING annotation writers, the workflow, then PATCH the
app's default workflow. Nothing here uses this tool's manifest or planner."""

from __future__ import annotations

from typing import Any

APP = "walkthrough"
MAIN_VERSIONS = {
    "general-image-embedding": "bb186755eda04f9cbb6fe32e816be104",
    "general-image-recognition": "aa7f35c01e0642fda5cf400f543e7c40",
    "general-clusterering": "cc2074cff6dc4c02b6f4e1b8606dcb54",
}


def build_walkthrough(client: Any, user: str, app_id: str = APP) -> dict[str, str]:
    """Create the app the walkthrough's way; returns {model id: version id}."""
    client.post(f"/v2/users/{user}/apps", {"apps": [{"id": app_id, "description": "auto annotation, by hand"}]})
    base = f"/v2/users/{user}/apps/{app_id}"
    # 1. concepts
    client.post(f"{base}/concepts", {"concepts": [{"id": "peopleID", "name": "people"}, {"id": "manID", "name": "man"},
                                                  {"id": "adultID", "name": "adult"}]})
    # 2. one synonym relation per concept, to clarifai/main's concepts
    for cid, main_id in (("peopleID", "ai_l8TKp2h5"), ("manID", "ai_dxSG2s86"), ("adultID", "ai_VPmHr5bm")):
        client.post(f"{base}/concepts/{cid}/relations", {"concept_relations": [
            {"object_concept": {"id": main_id, "app_id": "main"}, "predicate": "synonym"}]})
    versions: dict[str, str] = {}

    def model(body: dict[str, Any]) -> None:
        # today's API: PostModels makes the model only; its configuration goes in with
        # PostModelVersions, whose answer names the version to pin (Clarifai/docs
        # model-version-endpoints.md; clarifai-python `clarifai/client/app.py`)
        client.post(f"{base}/models", {"model": {k: v for k, v in body.items() if k != "output_info"}})
        out = client.post(f"{base}/models/{body['id']}/versions", {"model_versions": [{"output_info": body["output_info"]}]})
        versions[body["id"]] = out["model"]["model_version"]["id"]

    # 3. the synonym mapper
    model({"id": "synonym-model-id", "model_type_id": "concept-synonym-mapper",
           "output_info": {"params": {"knowledge_graph_id": ""}}})
    # 4./5. thresholders, the old docs' numeric comparators and model type alias
    thresholds = [{"id": "peopleID", "value": 0.5}, {"id": "manID", "value": 0.5}, {"id": "adultID", "value": 0.95}]
    model({"id": "greater-than-model-id", "model_type_id": "concept-thresholder",
           "output_info": {"data": {"concepts": thresholds}, "params": {"concept_threshold_type": 1}}})
    model({"id": "less-than-model-id", "model_type_id": "concept-thresholder",
           "output_info": {"data": {"concepts": thresholds}, "params": {"concept_threshold_type": "LESS_THAN"}}})
    # 6./7. writers
    model({"id": "write-success-as-me", "model_type_id": "annotation-writer",
           "output_info": {"params": {"annotation_status": 24150, "annotation_user_id": user}}})
    model({"id": "write-pending-as-me", "model_type_id": "annotation-writer",
           "output_info": {"params": {"annotation_status": 24151, "annotation_user_id": user}}})

    def main(node_id: str, model_id: str) -> dict[str, Any]:
        return {"id": node_id, "model": {"id": model_id, "user_id": "clarifai", "app_id": "main",
                                         "model_version": {"id": MAIN_VERSIONS[model_id]}}}

    def local(node_id: str, model_id: str, src: str) -> dict[str, Any]:
        return {"id": node_id, "model": {"id": model_id, "model_version": {"id": versions[model_id]}},
                "node_inputs": [{"node_id": src}]}

    # 8. the workflow
    client.post(f"{base}/workflows", {"workflows": [{"id": "auto-annotation-workflow-id", "nodes": [
        main("general-embed", "general-image-embedding"),
        main("general-concept", "general-image-recognition"),
        main("general-cluster", "general-clusterering"),
        local("mapper", "synonym-model-id", "general-concept"),
        local("greater-than", "greater-than-model-id", "mapper"),
        local("write-success", "write-success-as-me", "greater-than"),
        local("less-than", "less-than-model-id", "mapper"),
        local("write-pending", "write-pending-as-me", "less-than"),
    ]}]})
    # 9. make it the app's default workflow
    client.patch(f"/v2/users/{user}/apps", {"action": "overwrite", "apps": [
        {"id": app_id, "default_workflow_id": "auto-annotation-workflow-id"}]})
    return versions
