"""Executors for the app: create, update (overwrite, keeping what the manifest does not manage), set the default workflow."""

from __future__ import annotations

from typing import Any

from reconciler.api.codecs import AppCodec
from reconciler.apply.base import (
    ExecutorBase,
    _desired,
    _is_duplicate,
    _kept_app_fields,
    _merged_metadata,
    executes,
)
from reconciler.core.errors import ApiError, ApplyError
from reconciler.core.state import (
    App,
    Kind,
)
from reconciler.planning.actions import Action, Op


class AppExecutors(ExecutorBase):
    # --- app -------------------------------------------------------------------------------
    @executes((Op.CREATE, Kind.APP))
    def _create_app(self, actions: list[Action]) -> None:
        for a in actions:
            self._create_one_app(a)

    def _create_one_app(self, a: Action) -> None:
        app = _desired(a, App)
        sent = AppCodec.to_api(app)
        body = {"apps": [sent]}
        try:
            self._write("post", self.apps_path, body)
        except ApiError as err:
            if not _is_duplicate(err):
                raise
            self._update_one_app(a)
            return
        self._app_sent = sent

    def _live_app(self, a: Action) -> dict[str, Any]:
        """The app as the API last showed it: what this apply wrote to it, else the plan's live
        read, else (a plan without one, e.g. a golden case) a fresh GetApp."""
        if self._app_sent is not None:
            return self._app_sent
        if isinstance(a.live, App) and a.live.raw:
            return a.live.raw
        return self.client.get(self.base).get("app", {})

    @executes((Op.UPDATE, Kind.APP))
    def _update_app(self, actions: list[Action]) -> None:
        for a in actions:
            self._update_one_app(a)

    def _update_one_app(self, a: Action) -> None:
        app = _desired(a, App)
        raw = self._live_app(a)
        meta = _merged_metadata(raw.get("metadata") or {}, app.metadata, AppCodec.to_api(app)["metadata"])
        sent = {**_kept_app_fields(raw), **AppCodec.to_api(app), "metadata": meta}
        body = {"apps": [sent], "action": "overwrite", "metadata_action": {"op": "overwrite"}}
        self._write("patch", self.apps_path, body)
        self._app_sent = {**raw, **sent}

    @executes((Op.SET_DEFAULT, Kind.APP))
    def _set_default_app(self, actions: list[Action]) -> None:
        for a in actions:
            self._set_default_one_app(a)

    def _set_default_one_app(self, a: Action) -> None:
        """PatchApps with the `default_workflow` object (the proto's field; the deprecated
        `default_workflow_id` is not sent) and the manifest's `reindex` choice. If the answer does
        not show the new default -- a server that honours only the deprecated field (quirk
        default-workflow-object-ignored) -- it is sent again with both fields, so the next plan
        does not set the default again forever; if even that does not show it, GetApp decides and
        a default the API still does not show is one error line."""
        app = _desired(a, App)
        raw = self._live_app(a)
        kept = {k: v for k, v in _kept_app_fields(raw).items() if k not in ("default_workflow", "default_workflow_id")}
        for k in ("description", "metadata"):  # the app update (if any) ran before: keep what it wrote
            if raw.get(k) is not None:
                kept[k] = raw[k]
        item: dict[str, Any] = {**kept, "id": app.id, "default_workflow": AppCodec.default_ref(app, self._owner())}
        body: dict[str, Any] = {"apps": [item], "action": "overwrite", "reindex": bool(app.reindex)}
        if "metadata" in kept:
            body["metadata_action"] = {"op": "overwrite"}
        if self._shows_default(self._write("patch", self.apps_path, body), app):
            return
        item["default_workflow_id"] = app.default_workflow or ""
        if self._shows_default(self._write("patch", self.apps_path, body), app):
            return
        if AppCodec.default_of(self.client.get(self.base).get("app") or {}) != app.default_workflow:
            raise ApplyError(
                f"app/{app.id}: PatchApps succeeded but the app's default workflow is still not "
                f"{app.default_workflow} (sent as default_workflow and as default_workflow_id)"
            )

    @staticmethod
    def _shows_default(answer: dict[str, Any], app: App) -> bool:
        apps = answer.get("apps")
        shown = apps[0] if isinstance(apps, list) and apps and isinstance(apps[0], dict) else {}
        return AppCodec.default_of(shown) == app.default_workflow
