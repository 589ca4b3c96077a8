"""PostModelOutputs (predict) in the sandbox, from recorded predictions.

Routes (clarifai-grpc's V2 descriptor, its `google.api.http` options; Clarifai/docs
`code_snippets/api-guide/model/curl/predict_with_model.sh` and `.../create_get_update_delete/curl/
predict_model.sh`): POST `.../models/{model_id}/versions/{version_id}/outputs`, and
`.../models/{model_id}/outputs` for the model's latest version.

Semantics:
- The model must exist in the app addressed by the path (clarifai/main's models are readable by
  every key), and the version, when given, must be one of its versions: MODEL_DOES_NOT_EXIST
  otherwise, as GetModelVersion answers.
- `inputs` (required, at most 128: the documented predict batch limit, "The batch size should not
  exceed 128", https://docs.clarifai.com/compute/inference/advanced; clarifai-python
  `MAX_MODEL_PREDICT_INPUTS`): each by `data` (and optionally `id`), or
  by the `id` of an input already in the app, as PostWorkflowResults takes them.
- The response is a MultiOutputResponse (fields.txt: `outputs[]` of Output `{id, status,
  created_at, model, input, data}`), one output per input in request order. `data.concepts` are
  the scores recorded for (input id, then image URL; model) in the sandbox's predictions file,
  `{id, name, value, app_id}`, highest first; nothing recorded means no concepts -- the sandbox
  never invents an output. Nothing is written.
"""

from __future__ import annotations

import copy
from typing import Any

from reconciler.core.modeltypes import OPERATOR_TYPES, canonical_type
from reconciler.core.state import ModelRef
from reconciler.sandbox.ctx import MAIN_APP, MAIN_USER, Ctx
from reconciler.sandbox.wire import (
    INPUT_INVALID_ARGUMENT,
    MODEL_DOES_NOT_EXIST,
    SUCCESS,
    Fail,
    check_id,
    f32_concepts,
    get,
    new_id,
    objects,
    rfc3339,
    status,
)

MAX_PREDICT_INPUTS = 128


def post_model_outputs(ctx: Ctx) -> dict[str, Any]:
    ctx.app()
    mid = ctx.params["model_id"]
    model = ctx.tx.get(ctx.user_id, ctx.app_id, "model", mid)
    if model is None:
        raise Fail(MODEL_DOES_NOT_EXIST, f"model {mid!r} does not exist in app {ctx.user_id}/{ctx.app_id}")
    vid = ctx.params.get("version_id") or ""
    if vid:
        version = ctx.tx.get(ctx.user_id, ctx.app_id, "version", vid, parent=mid)
    else:
        versions = ctx.tx.list(ctx.user_id, ctx.app_id, "version", mid, newest_first=True)
        version = versions[0] if versions else None
    if version is None:
        raise Fail(
            MODEL_DOES_NOT_EXIST,
            f"model {mid!r} has no version {vid!r}" if vid else f"model {mid!r} has no version to predict with",
        )
    items = objects(ctx.body, "inputs")
    if not items:
        raise Fail(INPUT_INVALID_ARGUMENT, "inputs is required")
    if len(items) > MAX_PREDICT_INPUTS:
        raise Fail(INPUT_INVALID_ARGUMENT, f"at most {MAX_PREDICT_INPUTS} inputs per predict request, got {len(items)}")
    if canonical_type(model.get("model_type_id", "")) in OPERATOR_TYPES:
        raise Fail(INPUT_INVALID_ARGUMENT, f"model {mid!r} is a workflow operator; run it in a workflow (PostWorkflowResults)")
    local_app = (ctx.user_id, ctx.app_id) != (MAIN_USER, MAIN_APP)
    ref = ModelRef(mid) if local_app else ModelRef(mid, ctx.user_id, ctx.app_id, version["id"])
    preds = ctx.extra.get("predictions")
    names = {c["id"]: c.get("name") or c["id"] for c in ctx.tx.list(ctx.user_id, ctx.app_id, "concept")}
    ts = rfc3339(ctx.now)
    model_out = {
        "id": mid,
        "user_id": ctx.user_id,
        "app_id": ctx.app_id,
        "model_type_id": model.get("model_type_id", ""),
        "model_version": {"id": version["id"]},
    }
    outputs = []
    for item in items:
        data = get(item, "data", dict, {})
        iid = get(item, "id", str, "")
        if not data:
            stored = ctx.tx.get(ctx.user_id, ctx.app_id, "input", iid) if iid else None
            if stored is None:
                raise Fail(INPUT_INVALID_ARGUMENT, f"input {iid!r} has no data and is not an input of the app")
            data = stored["data"]
        inp = {"id": check_id(iid, "input", INPUT_INVALID_ARGUMENT) if iid else new_id(), "data": copy.deepcopy(data)}
        keys = [iid, ((data.get("image") or {}).get("url") or "")]
        scores = preds.lookup(keys, ref) if preds is not None else None
        concepts = [
            {"id": r.id, "name": names.get(r.id, r.id), "value": v, "app_id": ctx.app_id}
            for r, v in sorted((scores or {}).items(), key=lambda kv: -kv[1])
        ]
        outputs.append(
            {
                "id": new_id(),
                "status": status(SUCCESS, ctx.req_id),
                "created_at": ts,
                "model": copy.deepcopy(model_out),
                "input": inp,
                "data": f32_concepts({"concepts": concepts}) if concepts else {},
            }
        )
    return {"outputs": outputs}
