"""Export of the review side (a part of `export.export_manifest`): collaborators, datasets and the
tasks the tool manages, as manifest sections that plan empty against the app they came from.

- collaborators: their user ids; scopes only when they are not the default (`LABELER_SCOPES`);
- datasets: description, metadata, protect and the newest version's definition (`version`);
- tasks: the managed ones, by their manifest id, every field the manifest has (defaults left
  out). A task without the tool's marker cannot be adopted (its manifest id is unknown, and a task
  exported under its API id would be created anew): it is left out with a warning; so is a second
  task carrying the same manifest id.
A section is written only when the app has something in it (an absent section is left alone by
plans; an empty one would claim there is nothing).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reconciler.core.state import LABELER_SCOPES, Dataset, State, Task

Warn = Callable[[str], None]


def add_sections(data: dict[str, Any], live: State, warn: Warn) -> None:
    if live.collaborators:
        data["collaborators"] = [_collaborator(c.user_id, c.scopes) for c in sorted(live.collaborators, key=lambda c: c.user_id)]
    if live.datasets:
        data["datasets"] = [_dataset(d) for d in sorted(live.datasets, key=lambda d: d.id)]
    tasks = []
    for t in sorted(live.tasks, key=lambda t: t.id):
        if not t.managed:
            warn(f"task {t.id} ({t.name or 'no name'}) is not managed by the tool: left out (a task cannot be adopted)")
        elif "~" in t.id:
            warn(f"task {t.server_id} repeats the manifest id of another task: left out (a plan deletes it)")
        else:
            tasks.append(_task(t))
    if tasks:
        data["tasks"] = tasks


def _collaborator(user_id: str, scopes: tuple[str, ...] | None) -> dict[str, Any]:
    out: dict[str, Any] = {"id": user_id}
    if scopes is not None and tuple(sorted(scopes)) != LABELER_SCOPES:
        out["scopes"] = list(scopes)
    return out


def _dataset(d: Dataset) -> dict[str, Any]:
    out: dict[str, Any] = {"id": d.id}
    if d.description:
        out["description"] = d.description
    if d.metadata:
        out["metadata"] = dict(d.metadata)
    if d.protect:
        out["protect"] = True
    if d.version is not None:
        out["version"] = dict(d.version)
    return out


def _task(t: Task) -> dict[str, Any]:
    out: dict[str, Any] = {"id": t.id}
    if t.name and t.name != t.id:
        out["name"] = t.name
    if t.type != "CONCEPTS_CLASSIFICATION":
        out["type"] = t.type
    if t.description:
        out["description"] = t.description
    if t.concepts:
        out["concepts"] = list(t.concepts)
    if t.input_source != "ALL_INPUTS":
        source: dict[str, Any] = {"type": t.input_source}
        if t.input_source_id:
            source["dataset" if t.input_source == "DATASET" else "id"] = t.input_source_id
        out["input_source"] = source
    if t.worker_strategy != "DYNAMIC":
        out["worker_strategy"] = t.worker_strategy
    if t.workers:
        out["workers"] = list(t.workers)
    if t.partition:
        out["partition"] = dict(t.partition)
    if t.review_strategy != "NONE":
        review: dict[str, Any] = {"strategy": t.review_strategy}
        if t.reviewers:
            review["reviewers"] = list(t.reviewers)
        review.update(t.review_params)
        out["review"] = review
    if t.priority:
        out["priority"] = t.priority
    if t.sample_ms:
        out["sample_ms"] = t.sample_ms
    if t.metadata:
        out["metadata"] = dict(t.metadata)
    if t.protect:
        out["protect"] = True
    auto = t.auto_annotation
    if auto is not None:
        a: dict[str, Any] = {}
        if auto.model is not None:
            ref = auto.model
            a["model"] = (
                {"id": ref.id, "user_id": ref.user_id or "", "app_id": ref.app_id or "", "version": ref.version or ""}
                if ref.external
                else ref.id
            )
        if auto.workflow:
            a["workflow"] = auto.workflow
        concepts: dict[str, list[dict[str, Any]]] = {}
        for r in auto.ranges:
            rule: dict[str, Any] = {"status": r.status}
            if r.lower:
                rule["lower"] = r.lower
            if not r.lower_inclusive:
                rule["lower_inclusive"] = False
            if r.upper != 1.0 or not r.upper_inclusive:
                rule["upper"] = r.upper
                if r.upper_inclusive:
                    rule["upper_inclusive"] = True
            concepts.setdefault(r.concept, []).append(rule)
        a["concepts"] = concepts
        out["auto_annotation"] = a
    return out
