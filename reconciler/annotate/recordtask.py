"""`reconciler record --task ID`: record for a task that auto-annotates (`taskflow`) what `record`
records for a workflow -- its model's predictions and the labels its reviews gave.

- Model: the task's worker model, on the version the LIVE task pins (ListTasks, the task found by
  the manifest id in its marker); a workflow worker: that workflow's recorded models, as `record`
  finds them. PostModelOutputs as `record` calls it.
- Labels: the task's own annotations (ListAnnotations `task_id`, clarifai-grpc
  ListAnnotationsRequest.task_id), each a review outcome or not:
  - REVIEW_DENIED (a reviewer rejected it, PutTaskAssignments REVIEW_REJECT): its concepts are
    false (negative evidence);
  - SUCCESS: one status for two stories -- written SUCCESS by the task (an auto-accepted score:
    not ground truth) or written for review and approved. The task's ranges tell them apart: a
    concept whose value lies in one of its SUCCESS ranges (the manifest's) was auto-accepted and is
    skipped; any other was reviewed: true when its value is above 0, false when a reviewer set it
    to 0. Record before changing the ranges: an annotation written under old ranges is judged by
    the new ones;
  - any other status: not reviewed yet, skipped.
"""

from __future__ import annotations

from typing import Any

from reconciler.annotate.labels import dumps_line, dumps_source
from reconciler.annotate.taskflow import find_task
from reconciler.api.client import Client
from reconciler.api.transport import api_path
from reconciler.core.errors import ReconcilerError
from reconciler.core.fileio import write_atomic
from reconciler.core.modeltypes import ANNOTATION_STATUSES, f32
from reconciler.core.state import State, Task, marker_key

SUCCESS, DENIED = ANNOTATION_STATUSES["SUCCESS"], ANNOTATION_STATUSES["REVIEW_DENIED"]


def live_task(client: Client, state: State, task_id: str) -> dict[str, Any]:
    base = client.app_path(state.app.id, state.user_id)
    for raw in client.list_all(base + api_path("tasks"), "tasks"):
        meta = raw.get("metadata") if isinstance(raw.get("metadata"), dict) else None
        if marker_key(meta) == task_id:
            return raw
    raise ReconcilerError(f"task {task_id} is not in the live app (apply the manifest first)")


def worker_target(client: Client, state: State, task: Task, raw: dict[str, Any]) -> tuple[str, str]:
    """(the model as the predictions file names it, its PostModelOutputs path) for a model worker."""
    model = next((w["model"] for w in (raw.get("worker") or {}).get("workers") or [] if isinstance(w.get("model"), dict)), None)
    if model is None:
        raise ReconcilerError(f"task {task.id} in the live app has no model worker; apply the manifest first")
    version = (model.get("model_version") or {}).get("id") or ""
    if not version:
        raise ReconcilerError(f"task {task.id} in the live app pins no version of model {model.get('id')}")
    ref = task.auto_annotation.model if task.auto_annotation else None
    if ref is not None and ref.external:
        owner = client.app_path(ref.app_id or "", ref.user_id)
        return f"{ref.user_id}/{ref.app_id}/{ref.id}", f"{owner}/models/{ref.id}/versions/{version}/outputs"
    base = client.app_path(state.app.id, state.user_id)
    return str(model["id"]), f"{base}/models/{model['id']}/versions/{version}/outputs"


def _in_success_range(task: Task, concept: str, value: float) -> bool:
    ranges = task.auto_annotation.ranges if task.auto_annotation else ()
    return any(r.concept == concept and r.status == "SUCCESS" and r.holds(f32(value)) for r in ranges)


def record_task_labels(
    client: Client, state: State, task_id: str, inputs: list[dict[str, Any]], out_path: str, source: dict[str, str] | None = None
) -> int:
    task = find_task(state, task_id)
    raw = live_task(client, state, task_id)
    base = client.app_path(state.app.id, state.user_id)
    anns = client.list_all(
        base + api_path("annotations"), "annotations", {"task_id": str(raw.get("id") or ""), "list_all_annotations": "true"}
    )
    concepts = {c.id for c in state.concepts}
    wanted = {i.get("id", "") for i in inputs}
    by_input: dict[str, dict[str, tuple[str, bool]]] = {}
    for a in anns:
        code = (a.get("status") or {}).get("code")
        iid = a.get("input_id", "")
        if code not in (SUCCESS, DENIED) or iid not in wanted:
            continue
        when = str(a.get("modified_at") or a.get("created_at") or "")
        slot = by_input.setdefault(iid, {})
        for c in (a.get("data") or {}).get("concepts") or []:
            cid, value = c.get("id"), float(c.get("value", 1.0) or 0.0)
            if cid not in concepts or (code == SUCCESS and _in_success_range(task, cid, value)):
                continue  # auto-accepted: the task's own answer, not a label
            if cid not in slot or slot[cid][0] <= when:
                slot[cid] = (when, code == SUCCESS and value > 0)
    lines = [dumps_source(source)] if source else []
    lines += [
        dumps_line(i.get("id", ""), {c: v for c, (_w, v) in sorted(by_input[i["id"]].items())})
        for i in inputs
        if by_input.get(i.get("id", ""))
    ]
    try:
        write_atomic(out_path, "".join(line + "\n" for line in lines))
    except OSError as err:
        raise ReconcilerError(f"cannot write {out_path}: {err.strerror or err}") from None
    return len(lines) - (1 if source else 0)
