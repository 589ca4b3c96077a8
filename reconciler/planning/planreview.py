"""The planner's review side (a part of `plan._Planner`): collaborators, datasets and tasks, and the
annotation-writers that write into a task of the manifest.

Rules (README "Review tasks"):
- collaborators, identified by user id (no metadata, no marker): `create`; `update` when the
  manifest names scopes that differ (PatchCollaborators "overwrite"); `delete` of a collaborator the
  manifest's `collaborators:` list does not name -- a manifest with that list declares all of them;
- datasets follow models: `create`, `update` / `adopt` (description, metadata, protect; an owner
  change ``owner: theirs -> ours`` for one whose marker names another owner), and their
  versions are immutable: a definition (`version:`) that no live version has is a `new_version`;
  a managed dataset the manifest dropped is deleted unless protected or another owner's (a note);
  the app lease's datasets are never read (`api/livereview`, `idrules.is_lease_dataset`);
- tasks are found by the manifest id in their marker: `create`, `update` (PatchTasks replaces the
  whole task, in place: the task keeps its API id; one whose marker names another owner is
  updated with the change ``owner: theirs -> ours``), `delete` (never another owner's); a task
  without a marker naming a manifest id is left alone (unmanaged). An auto-annotating model of
  this app is pinned like a workflow node: to the version matching the manifest, or the version
  this plan makes (``new:<model>``).
- workers and reviewers must be the app owner or declared collaborators (`check_task_users`).
- an annotation-writer's ``task: KEY`` becomes its `task_id` (`resolve_writer_tasks`): the live
  task's API id, or ``new:task/KEY`` when this plan creates the task -- apply puts the new id in
  its place -- so a writer whose task is recreated (a new id) gets a new version.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from reconciler.core.errors import PlanError
from reconciler.core.state import NEW_TASK, Dataset, Kind, ModelRef, State, Task
from reconciler.planning.actions import Note, Op, is_new_pin
from reconciler.planning.diff import Change, created_fields, diff_dicts, diff_resources


def resolve_writer_tasks(desired: State, live: State | None) -> State:
    """Writers' manifest `task` -> `task_id` (see the module docstring)."""
    if not any(isinstance(m.config.get("task"), str) for m in desired.models):
        return desired
    live_tasks = {t.id: t for t in (live.tasks if live else ()) if t.managed}
    models = []
    for m in desired.models:
        key = m.config.get("task")
        if isinstance(key, str):
            lt = live_tasks.get(key)
            tid = lt.server_id if lt is not None and lt.server_id else NEW_TASK + key
            cfg = {k: v for k, v in m.config.items() if k != "task"}
            m = dataclasses.replace(m, config={**cfg, "task_id": tid})
        models.append(m)
    return dataclasses.replace(desired, models=tuple(models))


def check_task_users(desired: State, live: State | None) -> None:
    """Every task's workers and reviewers are the app owner or declared collaborators (validate
    decides this when the manifest names the owner; here the owner is known)."""
    owner = desired.user_id or (live.user_id if live else None)
    allowed = {c.user_id for c in desired.collaborators} | ({owner} if owner else set())
    for t in desired.tasks:
        stray = [u for u in t.users if u not in allowed]
        if stray:
            raise PlanError(
                f"task {t.id}: {', '.join(stray)} {'is' if len(stray) == 1 else 'are'} neither the app owner "
                f"({owner or 'unknown'}) nor a collaborator; add {'it' if len(stray) == 1 else 'them'} under collaborators"
            )


def _as_compared(t: Task, lt: Task) -> Task:
    """`t` as compared with the live task: a MANUAL review's `sample_percentage` only when the app
    shows one. The proto calls it "Deprecated: Not used" (TaskReviewManualStrategyInfo, clarifai-grpc
    resources.proto), so a server may drop it; a value it drops is no difference to plan forever."""
    if "sample_percentage" in t.review_params and "sample_percentage" not in lt.review_params:
        params = {k: v for k, v in t.review_params.items() if k != "sample_percentage"}
        return dataclasses.replace(t, review_params=params)
    return t


class ReviewPlanning:
    """The review side's planner methods; `plan._Planner` mixes them in and provides these."""

    desired: State
    live: State | None
    lv: State
    notes: list[Note]
    unmanaged: list[str]
    pin_target: dict[str, str]
    matching: dict[str, set[str]]

    def _add(self, op: Op, kind: Kind, id: str, **kw: Any) -> None:  # pragma: no cover - _Planner's
        raise NotImplementedError

    def _leftovers(self, kind: Kind, live: Mapping[str, Any]) -> None:  # pragma: no cover - _Planner's
        raise NotImplementedError

    def _foreign_owner(self, res: Dataset | Task) -> str | None:  # pragma: no cover - _Planner's
        raise NotImplementedError

    # --- collaborators --------------------------------------------------------------------------
    def _collaborators(self) -> None:
        if Kind.COLLABORATOR not in self.desired.sections:
            return
        live = {c.user_id: c for c in self.lv.collaborators}
        for c in self.desired.collaborators:
            lc = live.pop(c.user_id, None)
            if lc is None:
                self._add(Op.CREATE, Kind.COLLABORATOR, c.id, desired=c, changes=created_fields(c))
                continue
            compared = lc if c.scopes is not None else dataclasses.replace(lc, scopes=None)
            if compared != c:
                # the live collaborator's API id goes with the desired one (PatchCollaborators names it)
                want = dataclasses.replace(c, server_id=lc.server_id)
                self._add(Op.UPDATE, Kind.COLLABORATOR, c.id, desired=want, live=lc, changes=diff_resources(compared, c))
        for uid in sorted(live):
            self._add(
                Op.DELETE,
                Kind.COLLABORATOR,
                uid,
                live=live[uid],
                reason="not in the manifest's collaborators (the list names all of them)",
            )

    # --- datasets -------------------------------------------------------------------------------
    def _datasets(self) -> None:
        if Kind.DATASET not in self.desired.sections:
            return
        live = {d.id: d for d in self.lv.datasets}
        for d in self.desired.datasets:
            ld = live.pop(d.id, None)
            if ld is None:
                self._add(Op.CREATE, Kind.DATASET, d.id, desired=d, changes=created_fields(d))
                continue
            changes = diff_resources(ld, d, exclude=("version",))
            theirs = self._foreign_owner(ld)
            if not ld.managed or theirs:
                self._add(
                    Op.ADOPT,
                    Kind.DATASET,
                    d.id,
                    desired=d,
                    live=ld,
                    changes=[*changes, Change("owner", theirs, self.desired.owner)] if theirs else changes,
                    reason=f"managed by {theirs}: take ownership"
                    if theirs
                    else "in the app but not marked as managed: take ownership",
                )
            elif changes:
                self._add(Op.UPDATE, Kind.DATASET, d.id, desired=d, live=ld, changes=changes)
            if d.version is not None and not any(v.spec == d.version for v in ld.versions):
                newest = ld.versions[0].spec if ld.versions else None
                self._add(
                    Op.NEW_VERSION,
                    Kind.DATASET,
                    d.id,
                    desired=d,
                    live=ld,
                    changes=diff_dicts(newest, d.version, "version") or [Change("version", newest, d.version)],
                    reason="dataset versions are immutable: no version has this definition",
                )
        self._leftovers(Kind.DATASET, live)

    # --- tasks ----------------------------------------------------------------------------------
    def _tasks(self) -> None:
        if Kind.TASK not in self.desired.sections:
            return
        live = {t.id: t for t in self.lv.tasks}
        for t in self.desired.tasks:
            lt = live.pop(t.id, None)
            pins, pin_changes, why = self._task_pin(t, lt)
            if lt is None:
                self._add(Op.CREATE, Kind.TASK, t.id, desired=t, changes=created_fields(t) + pin_changes, pins=pins, reason=why)
                continue
            changes = diff_resources(lt, _as_compared(t, lt)) + pin_changes
            theirs = self._foreign_owner(lt)
            if theirs:
                changes.append(Change("owner", theirs, self.desired.owner))
                why = "; ".join(filter(None, [f"managed by {theirs}: take ownership", why]))
            if changes:
                # the task is overwritten in place: its API id and the fields read go with it
                want = dataclasses.replace(t, server_id=lt.server_id, raw=lt.raw)
                self._add(Op.UPDATE, Kind.TASK, t.id, desired=want, live=lt, changes=changes, pins=pins, reason=why)
        self._leftovers(Kind.TASK, live)

    def _task_pin(self, t: Task, lt: Task | None) -> tuple[tuple[tuple[str, str], ...], list[Change], str]:
        """The pin of an auto-annotating model of this app (as `_Planner._pins` pins nodes)."""
        auto = t.auto_annotation
        if auto is None or auto.model is None or auto.model.external:
            return (), [], ""
        mid = auto.model.id
        if mid not in self.pin_target:
            raise PlanError(f"task {t.id}: auto_annotation uses model {mid}, which is not in the manifest")
        la = lt.auto_annotation if lt is not None else None
        old_ref: ModelRef | None = la.model if la is not None else None
        old = old_ref.version if old_ref is not None and not old_ref.external and old_ref.id == mid else None
        pin = old if old and old in self.matching.get(mid, set()) else self.pin_target[mid]
        if pin == old:
            return (("worker", pin),), [], ""
        why = f"{mid} gets a new version" if is_new_pin(pin) else f"existing version {pin} of {mid} matches the manifest (reused)"
        return (("worker", pin),), [Change("auto_annotation.model.version", old, pin)], why
