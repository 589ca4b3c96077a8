"""Executors for workflows: create (one call), overwrite (read, merge, overwrite), delete; pins
resolved to the versions this apply made."""

from __future__ import annotations

from typing import Any

from reconciler.api.codecs import WorkflowCodec
from reconciler.apply.base import (
    WORKFLOW_KEPT,
    TrainingNotReady,
    _desired,
    _is_duplicate,
    _is_not_found,
    _marked,
    _merged_metadata,
    _trainable,
    executes,
    image_to_send,
)
from reconciler.apply.models import ModelExecutors
from reconciler.core.errors import ApiError, ApplyError
from reconciler.core.state import (
    Kind,
    ModelRef,
    Workflow,
)
from reconciler.planning.actions import Action, Op, is_new_pin, new_pin, new_pin_model


class WorkflowExecutors(ModelExecutors):
    # --- workflows -------------------------------------------------------------------------
    def _workflow_json(self, a: Action, metadata: dict[str, Any]) -> dict[str, Any]:
        w = _desired(a, Workflow)
        pins = dict(a.pins)
        versions: dict[str, str] = {}
        for n in w.nodes:
            if n.model.external:
                continue
            pin = pins.get(n.id, "")
            if pin and not is_new_pin(pin) and any(c.path == f"nodes.{n.id}.model.version" for c in a.changes):
                self._await_reused_version(n.model.id, pin)
            versions[n.id] = self._resolved_pin(n.id, n.model, pins)
        return WorkflowCodec.to_api(w, metadata, versions)

    @staticmethod
    def _kept_workflow_fields(raw: dict[str, Any]) -> dict[str, Any]:
        """Workflow fields the manifest does not manage, to send back with an overwrite (an image
        only as a url: `image_to_send`)."""
        out = {k: raw[k] for k in WORKFLOW_KEPT if raw.get(k) is not None and k != "image"}
        image = image_to_send(raw.get("image"))
        if image is not None:
            out["image"] = image
        return out

    def _await_reused_version(self, model_id: str, version_id: str) -> None:
        """A node newly pinned to an existing version of a trainable model: the plan reuses
        versions still queued or training (an earlier apply may have stopped at its timeout), so
        wait for this one too before the workflow points at it."""
        m = self.plan.desired.model(model_id)
        if m is None or not _trainable(m) or version_id in self._trained_ok:
            return
        v = self._read_version(model_id, version_id)
        try:
            self._await_trained(m, {**v, "id": version_id})
        except TrainingNotReady as err:  # it failed after the plan was made: this workflow cannot go on
            raise ApplyError(err.line) from None
        self._trained_ok.add(version_id)

    def _resolved_pin(self, node_id: str, ref: ModelRef, pins: dict[str, str]) -> str:
        """The version a node on a local model is pinned to: a new version this apply made
        (``new:<model>``) resolved to its id."""
        pin = pins.get(node_id) or ref.version or new_pin(ref.id)
        model_id = new_pin_model(pin)
        if model_id is not None:
            if model_id not in self.result.new_versions:
                raise ApplyError(f"node {node_id}: no version of model {model_id} was made by this apply")
            pin = self.result.new_versions[model_id]
        return pin

    @executes((Op.CREATE, Kind.WORKFLOW), batched=True)
    def _create_workflow(self, group: list[Action]) -> None:
        """One PostWorkflows for the whole group; if some exist already (an earlier run was cut
        off), fall back to one call each: create the missing, overwrite the existing."""
        body = {"workflows": [self._workflow_json(a, _marked(_desired(a, Workflow))) for a in group]}
        try:
            self._write("post", self._at("workflows"), body)
            return
        except ApiError as err:
            if not _is_duplicate(err):
                raise
        for a in group:
            try:
                self._write(
                    "post", self._at("workflows"), {"workflows": [self._workflow_json(a, _marked(_desired(a, Workflow)))]}
                )
            except ApiError as err:
                if not _is_duplicate(err):
                    raise
                self._overwrite_workflow(a)

    @executes((Op.UPDATE, Kind.WORKFLOW), (Op.ADOPT, Kind.WORKFLOW), (Op.REPOINT, Kind.WORKFLOW))
    def _update_workflow(self, actions: list[Action]) -> None:
        for a in actions:
            self._overwrite_workflow(a)

    def _overwrite_workflow(self, a: Action) -> None:
        w = _desired(a, Workflow)
        # the plan's live read has the workflow as it is; a plan without one (a golden case, a
        # create that met an existing workflow) reads it now
        raw = (
            a.live.raw
            if isinstance(a.live, Workflow) and a.live.raw
            else self.client.get(self._at("workflows", w.id)).get("workflow") or {}
        )
        live_meta = raw.get("metadata") or {}
        meta = _merged_metadata(live_meta, w.metadata, _marked(w))
        body = {"workflows": [{**self._kept_workflow_fields(raw), **self._workflow_json(a, meta)}], "action": "overwrite"}
        self._write("patch", self._at("workflows"), body)

    @executes((Op.DELETE, Kind.WORKFLOW))
    def _delete_workflow(self, actions: list[Action]) -> None:
        for a in actions:
            try:
                self._write("delete", self._at("workflows", a.id), None)
            except ApiError as err:
                if not _is_not_found(err):
                    raise
