"""Built-in data: the model types the sandbox knows, the request-field whitelist, and the read-only
public `clarifai/main` app (its models at their published version ids, and the concepts the
auto-annotation docs link to).

Contract: `seed_main(tx, now)` is idempotent (inserts only what is missing), so every start of a
sandbox on an existing file leaves clarifai/main as documented here.
"""

from __future__ import annotations

from typing import Any

from reconciler.core.idrules import MAIN_APP, MAIN_USER
from reconciler.sandbox.store import Tx
from reconciler.sandbox.wire import rfc3339

#: Older names Clarifai's docs used; the sandbox stores and returns the current name.
TYPE_ALIASES = {"concept-threshold": "concept-thresholder", "embed-classifier": "embedding-classifier"}
DEFAULT_TYPE = "embedding-classifier"  # Clarifai's default when model_type_id is omitted


def _t(
    id: str, title: str, desc: str, inputs: list[str], outputs: list[str], trainable: bool, creatable: bool = True
) -> dict[str, Any]:
    return {
        "id": id,
        "title": title,
        "description": desc,
        "input_fields": inputs,
        "output_fields": outputs,
        "trainable": trainable,
        "creatable": creatable,
    }


MODEL_TYPES: list[dict[str, Any]] = [
    _t(
        "concept-thresholder",
        "Concept Thresholder",
        "Passes concepts whose value compares to a per-concept threshold (concept_threshold_type).",
        ["concepts"],
        ["concepts"],
        False,
    ),
    _t(
        "region-thresholder",
        "Region Thresholder",
        "Passes regions whose concept values pass a threshold.",
        ["regions"],
        ["regions"],
        False,
    ),
    _t(
        "annotation-writer",
        "Annotation Writer",
        "Writes incoming concepts and regions as annotations with annotation_status.",
        ["concepts", "regions"],
        ["concepts", "regions"],
        False,
    ),
    _t(
        "concept-synonym-mapper",
        "Synonym Mapper",
        "Maps concepts to their synonyms in the app's knowledge graph.",
        ["concepts"],
        ["concepts"],
        False,
    ),
    _t(
        "random-sample",
        "Random Sample",
        "Passes an input on when keep_fraction > rand(), each input on its own.",
        ["any"],
        ["any"],
        False,
    ),
    _t(
        "embedding-classifier",
        "Transfer Learn",
        "Classifier trained on top of an embedding model.",
        ["embeddings"],
        ["concepts"],
        True,
    ),
    _t("visual-classifier", "Visual Classifier", "Classifies images and video frames.", ["image"], ["concepts"], True),
    _t(
        "visual-embedder",
        "Visual Embedder",
        "Embeds images into a vector space.",
        ["image"],
        ["embeddings"],
        True,
        creatable=False,
    ),
    _t("clusterer", "Clusterer", "Clusters embeddings.", ["embeddings"], ["clusters"], True, creatable=False),
    _t("visual-detector", "Visual Detector", "Detects regions in images.", ["image"], ["regions"], True),
    _t("text-classifier", "Text Classifier", "Classifies text.", ["text"], ["concepts"], True),
]
TYPES_BY_ID = {t["id"]: t for t in MODEL_TYPES}

# --- request-field whitelist -----------------------------------------------------------------------
# The sandbox echoes what it stores, so it refuses fields the proto message does not declare (a
# test checks every name below against clarifai-grpc's descriptors). None = not checked deeper.

_CONCEPT = (
    "id",
    "name",
    "value",
    "created_at",
    "language",
    "app_id",
    "definition",
    "vocab_id",
    "visibility",
    "user_id",
    "keypoint_info",
    "extra_info",
    "metadata",
    "image",
)
FIELDS: dict[str, dict[str, str | None]] = {
    "Concept": {k: None for k in _CONCEPT},
    "Data": {
        **{
            k: None
            for k in (
                "image",
                "video",
                "metadata",
                "geo",
                "colors",
                "clusters",
                "embeddings",
                "regions",
                "frames",
                "text",
                "audio",
                "tracks",
                "time_segments",
                "hits",
                "heatmaps",
                "parts",
                "ndarray",
                "int_value",
                "float_value",
                "bytes_value",
                "bool_value",
                "string_value",
                "struct_value",
            )
        },
        "concepts": "Concept",
    },
    "OutputInfo": {
        "data": "Data",
        "output_config": "OutputConfig",
        "message": None,
        "fields_map": None,
        "params": None,
        "params_specs": None,
    },
    "OutputConfig": {
        k: None
        for k in (
            "concepts_mutually_exclusive",
            "existing_model_id",
            "language",
            "hyper_parameters",
            "max_concepts",
            "min_value",
            "select_concepts",
            "training_timeout",
            "sample_ms",
            "hyper_params",
            "embed_model_version_id",
            "fail_on_missing_positive_examples",
            "model_metadata",
        )
    },
    "InputInfo": {"fields_map": None, "params": None, "base_embed_model": "Model"},
    "ModelVersion": {
        **{
            k: None
            for k in (
                "id",
                "created_at",
                "status",
                "active_concept_count",
                "metrics",
                "total_input_count",
                "pretrained_model_config",
                "completed_at",
                "description",
                "visibility",
                "app_id",
                "user_id",
                "modified_at",
                "metadata",
                "license",
                "train_info",
                "import_info",
                "train_log",
                "inference_compute_info",
                "build_info",
                "method_signatures",
                "special_handling",
                "num_threads",
            )
        },
        "output_info": "OutputInfo",
        "input_info": "InputInfo",
    },
    "Model": {
        **{
            k: None
            for k in (
                "id",
                "name",
                "created_at",
                "modified_at",
                "app_id",
                "display_name",
                "user_id",
                "default_eval_info",
                "model_type_id",
                "task",
                "visibility",
                "description",
                "metadata",
                "presets",
                "notes",
                "toolkits",
                "use_cases",
                "languages",
                "languages_full",
                "check_consents",
                "is_starred",
                "star_count",
                "workflow_recommended",
                "bookmark_origin",
                "image",
                "license_type",
                "source",
                "creator",
                "version_count",
                "billing_type",
                "featured_order",
                "deploy_restriction",
                "replica_count",
                "open_router_info",
            )
        },
        "output_info": "OutputInfo",
        "model_version": "ModelVersion",
    },
    "WorkflowNode": {
        "id": None,
        "model": "Model",
        "node_inputs": None,
        "suppress_output": None,
        "output_info_override": "OutputInfo",
    },
    "Workflow": {
        **{
            k: None
            for k in (
                "id",
                "app_id",
                "created_at",
                "metadata",
                "visibility",
                "user_id",
                "modified_at",
                "version",
                "is_starred",
                "star_count",
                "description",
                "notes",
                "use_cases",
                "check_consents",
                "bookmark_origin",
                "image",
            )
        },
        "nodes": "WorkflowNode",
    },
    "Input": {
        "id": None,
        "data": "Data",
        "created_at": None,
        "modified_at": None,
        "status": None,
        "dataset_ids": None,
        "settings": None,
    },
    "Annotation": {
        **{
            k: None
            for k in (
                "id",
                "input_id",
                "annotation_info",
                "user_id",
                "model_version_id",
                "embed_model_version_id",
                "status",
                "created_at",
                "modified_at",
                "trusted",
                "input_level",
                "consensus_info",
                "task_id",
                "worker",
            )
        },
        "data": "Data",
    },
    "Task": {
        k: None
        for k in (
            "id",
            "created_at",
            "modified_at",
            "type",
            "description",
            "worker",
            "concept_ids",
            "input_source",
            "sample_ms",
            "ai_assistant",
            "review",
            "status",
            "name",
            "ai_assist_params",
            "visibility",
            "app_id",
            "user_id",
            "label_order_id",
            "concepts",
            "delete_previous_annotations",
            "metrics",
            "priority",
            "metadata",
        )
    },
    "Collaborator": {k: None for k in ("id", "app", "user", "scopes", "endpoints", "created_at", "modified_at", "deleted_at")},
    "Dataset": {
        k: None
        for k in (
            "id",
            "created_at",
            "modified_at",
            "app_id",
            "user_id",
            "description",
            "metadata",
            "visibility",
            "default_annotation_filter",
            "default_processing_info",
            "notes",
            "version",
            "is_starred",
            "star_count",
            "bookmark_origin",
            "image",
        )
    },
    "DatasetVersion": {
        k: None
        for k in (
            "id",
            "created_at",
            "modified_at",
            "app_id",
            "user_id",
            "dataset_id",
            "annotation_filter_config",
            "model_predict_config",
            "status",
            "description",
            "processing_info",
            "metrics",
            "export_info",
            "metadata",
            "visibility",
            "embed_model_version_ids",
            "request_origin",
        )
    },
}


def unknown_field(obj: Any, message: str, path: str) -> str | None:
    """The dotted path of the first field `obj` has that `message` does not declare, or None."""
    spec = FIELDS[message]
    items = obj if isinstance(obj, list) else [obj]
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            continue
        where = f"{path}[{i}]" if isinstance(obj, list) else path
        for k, v in item.items():
            if k not in spec:
                return f"{where}.{k}"
            sub = spec[k]
            if sub and v is not None:
                bad = unknown_field(v, sub, f"{where}.{k}")
                if bad:
                    return bad
    return None


# --- clarifai/main ---------------------------------------------------------------------------------

MAIN_MODELS = [
    (
        "general-image-recognition",
        "aa7f35c01e0642fda5cf400f543e7c40",
        "visual-classifier",
        "Recognizes over 11,000 visual concepts in images.",
    ),
    (
        "general-image-embedding",
        "bb186755eda04f9cbb6fe32e816be104",
        "visual-embedder",
        "Embeds images into a 1024-dimensional vector space.",
    ),
    ("general-clusterering", "cc2074cff6dc4c02b6f4e1b8606dcb54", "clusterer", "Clusters general image embeddings."),
    # The ids Clarifai/clarifai-python-grpc's client tests use (tests/common.py GENERAL_MODEL_ID and
    # MODERATION_MODEL_ID, with the versions tests/client/test_workflow_crud.py pins): the General
    # model under its older id, and the public moderation model.
    (
        "aaa03c23b3724a16a56b629203edc62c",
        "aa7f35c01e0642fda5cf400f543e7c40",
        "visual-classifier",
        "General (the older id of general-image-recognition).",
    ),
    (
        "d16f390eb32cad478c7ae150069bd2c6",
        "aa8be956dbaa4b7a858826a84253cab9",
        "visual-classifier",
        "Moderation: recognizes inappropriate content.",
    ),
]
MAIN_CONCEPTS = [("ai_l8TKp2h5", "people"), ("ai_dxSG2s86", "man"), ("ai_VPmHr5bm", "adult")]
MAIN_WORKFLOWS = [
    ("Empty", []),
    ("General", [("general-concept", "general-image-recognition", "aa7f35c01e0642fda5cf400f543e7c40")]),
]
_EPOCH = 1_600_000_000.0  # fixed creation time: the seed must not change between restarts


def seed_main(tx: Tx) -> None:
    u, a = MAIN_USER, MAIN_APP
    ts = rfc3339(_EPOCH)
    pub = {"gettable": 50}
    tx.insert(
        u,
        a,
        "app",
        a,
        {
            "id": a,
            "name": a,
            "user_id": u,
            "created_at": ts,
            "modified_at": ts,
            "default_language": "en",
            "metadata": {},
            "visibility": pub,
            "description": "Clarifai's public models (sandbox copy)",
        },
    )
    for cid, name in MAIN_CONCEPTS:
        tx.insert(
            u,
            a,
            "concept",
            cid,
            {"id": cid, "name": name, "created_at": ts, "language": "en", "app_id": a, "user_id": u, "visibility": pub},
        )
    for mid, vid, mtype, desc in MAIN_MODELS:
        tx.insert(
            u,
            a,
            "model",
            mid,
            {
                "id": mid,
                "name": mid,
                "created_at": ts,
                "modified_at": ts,
                "app_id": a,
                "user_id": u,
                "model_type_id": mtype,
                "visibility": pub,
                "description": desc,
                "metadata": {},
            },
        )
        tx.insert(
            u,
            a,
            "version",
            vid,
            {
                "id": vid,
                "created_at": ts,
                "modified_at": ts,
                "app_id": a,
                "user_id": u,
                "visibility": pub,
                "metadata": {},
                "output_info": {},
                "_t": _EPOCH,
                "_delay": 0.0,
            },
            parent=mid,
        )
    for wid, nodes in MAIN_WORKFLOWS:
        tx.insert(
            u,
            a,
            "workflow",
            wid,
            {
                "id": wid,
                "app_id": a,
                "user_id": u,
                "created_at": ts,
                "modified_at": ts,
                "metadata": {},
                "visibility": pub,
                "nodes": [
                    {"id": nid, "model": {"id": mid, "user_id": u, "app_id": a, "model_version": {"id": vid}}}
                    for nid, mid, vid in nodes
                ],
                "version": {"id": "1" * 32, "workflow_id": wid, "created_at": ts, "modified_at": ts},
            },
        )
