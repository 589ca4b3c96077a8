"""Executors for the review side: collaborators, datasets (and their versions) and tasks.

- Collaborators: PostCollaborators (a duplicate counts as done), PatchCollaborators "overwrite"
  (the only action its proto allows) by the collaborator's API id, DeleteCollaborators by that id.
- Datasets: PostDatasets, then PostDatasetVersions when the manifest defines a version (a duplicate
  dataset is adopted: patched); PatchDatasets "merge"; when a merge would leave metadata the
  manifest dropped (a key, a nested key: `models.stale_metadata`), an "overwrite" of the dataset
  instead (its "remove" only removes the dataset's image: "'remove' can only be used to remove the
  dataset image", clarifai-grpc `proto/clarifai/api/service.proto`, PatchDatasetsRequest.action),
  sending back the user's own metadata keys and the fields the manifest does not manage as read
  (`DATASET_KEPT`); a new version is posted without transport retries (a retried post could
  snapshot twice): on a lost answer the versions are read back and one with the definition is
  used; DeleteDatasets.
- Tasks: Clarifai makes task ids, so PostTasks is not idempotent: it is sent without transport
  retries, and after a lost answer the tasks are read back and the one whose marker names this
  task is used (else it is posted again). The new task's id is recorded (`ApplyResult.new_tasks`)
  for the annotation-writers whose `task_id` is ``new:task/<id>`` (`ExecutorBase._resolve_config`).
  PatchTasks "overwrite" sends the whole task with its API id (the docs: "we only support updating
  a task by providing all information at once"), keeping the user's own metadata keys;
  DeleteTasks by API id (not found counts as done).
"""

from __future__ import annotations

from typing import Any

from reconciler.api.codecs import CollaboratorCodec, DatasetCodec, TaskCodec, metadata_with_marker, task_metadata
from reconciler.apply.base import _desired, _is_duplicate, _is_not_found, _live, executes, image_to_send
from reconciler.apply.models import stale_metadata
from reconciler.apply.workflows import WorkflowExecutors
from reconciler.core.errors import ApiError, ApplyError
from reconciler.core.state import MARKER_KEY, Collaborator, Dataset, Kind, Task, marker_key, read_marker
from reconciler.planning.actions import Action, Op

#: Dataset fields apply never manages but sends back as read with an "overwrite" (which may reset
#: what it does not send: quirk patch-overwrite-replaces); the image goes as `image_to_send`.
DATASET_KEPT = ("notes", "visibility", "default_annotation_filter", "default_processing_info")


def _retryable(err: ApiError) -> bool:
    """A failure after which the request may have committed (no answer, a server error, throttled)."""
    return not err.http_status or err.http_status >= 500 or err.http_status == 429


class ReviewExecutors(WorkflowExecutors):
    # --- collaborators ---------------------------------------------------------------------
    @executes((Op.CREATE, Kind.COLLABORATOR))
    def _create_collaborator(self, actions: list[Action]) -> None:
        for a in actions:
            c = _desired(a, Collaborator)
            try:
                self._write("post", self._at("collaborators"), {"collaborators": [CollaboratorCodec.to_api(c)]})
            except ApiError as err:
                if not _is_duplicate(err):
                    raise

    @executes((Op.UPDATE, Kind.COLLABORATOR))
    def _update_collaborator(self, actions: list[Action]) -> None:
        for a in actions:
            c = _desired(a, Collaborator)
            body = {**CollaboratorCodec.to_api(c), "id": c.server_id or _live(a, Collaborator).server_id or ""}
            self._write("patch", self._at("collaborators"), {"collaborators": [body], "action": "overwrite"})

    @executes((Op.DELETE, Kind.COLLABORATOR))
    def _delete_collaborator(self, actions: list[Action]) -> None:
        for a in actions:
            c = _live(a, Collaborator)
            try:
                self._write("delete", self._at("collaborators"), {"collaborator_ids": [c.server_id or c.user_id]})
            except ApiError as err:
                if not _is_not_found(err):
                    raise

    # --- datasets --------------------------------------------------------------------------
    @executes((Op.CREATE, Kind.DATASET))
    def _create_dataset(self, actions: list[Action]) -> None:
        for a in actions:
            d = _desired(a, Dataset)
            try:
                self._write("post", self._at("datasets"), {"datasets": [DatasetCodec.to_api(d)]})
            except ApiError as err:
                if not _is_duplicate(err):
                    raise
                self._patch_dataset(d, None)
            if d.version is not None:
                self._ensure_dataset_version(d, look_first=True)

    @executes((Op.UPDATE, Kind.DATASET), (Op.ADOPT, Kind.DATASET))
    def _update_dataset(self, actions: list[Action]) -> None:
        for a in actions:
            self._patch_dataset(_desired(a, Dataset), _live(a, Dataset))

    def _patch_dataset(self, d: Dataset, live: Dataset | None) -> None:
        """PatchDatasets "merge" of the manifest's fields and metadata (marker included) when a merge
        ends with the live managed metadata equal to the manifest's (`models.stale_metadata` says
        what it would leave behind: a dropped key, a dropped nested key, a list). Else an
        "overwrite" of the dataset, since "remove" cannot remove metadata (module docstring): the
        user's own metadata keys and the fields in `DATASET_KEPT` (and the image) go back as read."""
        written = metadata_with_marker(d.metadata, d.protect, d.owner)
        raw = live.raw if live is not None and live.raw else None
        if raw is None:  # adopted after a lost answer, or a saved plan: read what is there
            try:
                raw = self.client.get(self._at("datasets", d.id)).get("dataset") or {}
            except ApiError as err:
                if not _is_not_found(err):
                    raise
                raw = {}
        live_meta: dict[str, Any] = raw["metadata"] if isinstance(raw.get("metadata"), dict) else {}
        if not stale_metadata(live_meta, written):
            self._write("patch", self._at("datasets"), {"datasets": [DatasetCodec.to_api(d, written)], "action": "merge"})
            return
        owned = set(read_marker(live_meta).metadata) | set(written)
        own = {k: v for k, v in live_meta.items() if k not in owned and k != MARKER_KEY}
        item = DatasetCodec.to_api(d, {**own, **written})
        item.update({k: raw[k] for k in DATASET_KEPT if raw.get(k) not in (None, "", {})})
        image = image_to_send(raw.get("image"))
        if image is not None:
            item["image"] = image
        self._write("patch", self._at("datasets"), {"datasets": [item], "action": "overwrite"})

    @executes((Op.NEW_VERSION, Kind.DATASET))
    def _new_version_dataset(self, actions: list[Action]) -> None:
        for a in actions:
            self._ensure_dataset_version(_desired(a, Dataset), look_first=False)

    def _ensure_dataset_version(self, d: Dataset, *, look_first: bool) -> str:
        spec = d.version or {}
        path = self._at("datasets", d.id, "versions")
        if look_first:
            found = self._find_dataset_version(d, spec)
            if found:
                return found
        body = {"dataset_versions": [DatasetCodec.version_to_api(spec)]}
        try:
            resp = self._write("post", path, body, retry=False)
        except ApiError as err:
            if not _retryable(err):
                raise
            found = self._find_dataset_version(d, spec)
            if found:
                return found
            resp = self._write("post", path, body, retry=False)
        made = (resp.get("dataset_versions") or [{}])[0]
        return str(made.get("id") or "")

    def _find_dataset_version(self, d: Dataset, spec: dict[str, Any]) -> str | None:
        try:
            versions = self.client.list_all(self._at("datasets", d.id, "versions"), "dataset_versions")
        except ApiError as err:
            if _is_not_found(err):
                return None
            raise
        return next((str(v.get("id")) for v in versions if DatasetCodec.version_spec(v) == spec), None)

    @executes((Op.DELETE, Kind.DATASET))
    def _delete_dataset(self, actions: list[Action]) -> None:
        for a in actions:
            try:
                self._write("delete", self._at("datasets"), {"dataset_ids": [a.id]})
            except ApiError as err:
                if not _is_not_found(err):
                    raise

    # --- tasks -----------------------------------------------------------------------------
    def _task_json(self, a: Action, t: Task, metadata: dict[str, Any]) -> dict[str, Any]:
        version = None
        auto = t.auto_annotation
        if auto is not None and auto.model is not None and not auto.model.external:
            version = self._resolved_pin("worker", auto.model, dict(a.pins))
        return TaskCodec.to_api(t, metadata, version)

    @executes((Op.CREATE, Kind.TASK))
    def _create_task(self, actions: list[Action]) -> None:
        for a in actions:
            t = _desired(a, Task)
            body = {"tasks": [self._task_json(a, t, task_metadata(t))]}
            try:
                resp = self._write("post", self._at("tasks"), body, retry=False)
            except ApiError as err:
                if not _retryable(err):
                    raise
                found = self._find_task(t.id)  # did the lost request commit?
                if found:
                    self._record_task(t.id, found)
                    continue
                resp = self._write("post", self._at("tasks"), body, retry=False)
            made = (resp.get("tasks") or [{}])[0]
            if not made.get("id"):
                raise ApplyError(f"task {t.id}: PostTasks answered without a task id")
            self._record_task(t.id, str(made["id"]))

    def _record_task(self, key: str, server_id: str) -> None:
        with self._lock:
            self.result.new_tasks[key] = server_id

    def _find_task(self, key: str) -> str | None:
        for raw in self.client.list_all(self._at("tasks"), "tasks"):
            meta = raw.get("metadata") if isinstance(raw.get("metadata"), dict) else None
            if marker_key(meta) == key:
                return str(raw.get("id") or "") or None
        return None

    @executes((Op.UPDATE, Kind.TASK))
    def _update_task(self, actions: list[Action]) -> None:
        for a in actions:
            t = _desired(a, Task)
            live = _live(a, Task)
            if not t.server_id and not live.server_id:
                raise ApplyError(f"update task/{t.id}: the plan does not say which task of the app it is")
            sent = self._task_json(a, t, task_metadata(t, live.raw))
            sent["id"] = t.server_id or live.server_id
            self._write("patch", self._at("tasks"), {"tasks": [sent], "action": "overwrite"})

    @executes((Op.DELETE, Kind.TASK))
    def _delete_task(self, actions: list[Action]) -> None:
        for a in actions:
            t = _live(a, Task)
            try:
                self._write("delete", self._at("tasks"), {"ids": [t.server_id or t.id]})
            except ApiError as err:
                if not _is_not_found(err):
                    raise
