"""Semantic checks of the review side of a manifest (a part of `checks.check`, same contract:
problems are added to the document, nothing raises, any shape is tolerated).

Rules: duplicate collaborator, dataset and task ids; a dataset id (or a task's input-source
dataset) that is one of the app lease's (`idrules.is_lease_dataset`: the tool's own bookkeeping,
which the live read never shows, so such a dataset would be created on every apply); the app owner (`app.user_id`) listed as a
collaborator; a task's concepts that are not declared (or repeated); its workers and reviewers when
they are neither the owner nor a declared collaborator -- decided here when the manifest names the
owner (`app.user_id`), else by the planner, which knows the owner (`plan.check_task_users`); a
review strategy with settings of another one (reviewers without MANUAL/CONSENSUS, MANUAL without
reviewers, consensus thresholds without CONSENSUS, `sample_percentage` without MANUAL); a
`partition` without PARTITIONED, or weights for users who are not workers; an input source
missing its dataset / id, or with one it does not take; auto-annotation with neither or both of
`model` and `workflow`, naming an undeclared model, workflow or concept, or with overlapping ranges
for one concept (a score in both would be written twice); an annotation-writer's `task` that is
not a task of the manifest, or given together with `task_id`.
"""

from __future__ import annotations

from typing import Any

from reconciler.core import modeltypes
from reconciler.core.idrules import LEASE_DATASET, LEASE_STEAL_PREFIX, is_lease_dataset
from reconciler.manifest.checkutil import did_you_mean, items, unique_ids
from reconciler.manifest.yamlload import Document, Path


def check(
    doc: Document,
    data: dict[str, Any],
    concepts: dict[str, Path] | None,
    models: dict[str, Path] | None,
    workflows: dict[str, Path],
) -> None:
    collaborators = unique_ids(
        doc, ((("collaborators", i, "id"), c.get("id")) for i, c in items(data, "collaborators")), "collaborator"
    )
    datasets = unique_ids(doc, ((("datasets", i, "id"), d.get("id")) for i, d in items(data, "datasets")), "dataset id")
    for did, path in datasets.items():
        if is_lease_dataset(did):
            doc.add(path, _lease_id(did))
    tasks = unique_ids(doc, ((("tasks", i, "id"), t.get("id")) for i, t in items(data, "tasks")), "task id")
    app = _mapping(data.get("app"))
    owner = app.get("user_id") if isinstance(app.get("user_id"), str) else None
    if owner and owner in collaborators:
        doc.add(collaborators[owner], f"user '{owner}' owns the app (app.user_id); the owner is not a collaborator")
    # who may work on tasks: known only when the manifest names the owner; else the planner checks
    users = ({owner} | set(collaborators)) if owner else None
    for i, t in items(data, "tasks"):
        _check_task(doc, ("tasks", i), t, concepts, models, workflows, users)
    for i, m in items(data, "models"):
        if not isinstance(m.get("type"), str) or modeltypes.canonical_type(m["type"]) != modeltypes.WRITER:
            continue
        task = m.get("task")
        if isinstance(task, str) and _complete(data, "tasks") and task not in tasks:
            doc.add(("models", i, "task"), f"task '{task}' is not a task of this manifest" + did_you_mean(task, tasks))
        if task is not None and m.get("task_id") is not None:
            doc.add(
                ("models", i, "task_id"), "give `task` (a task of this manifest) or `task_id` (a task made elsewhere), not both"
            )


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _complete(data: dict[str, Any], key: str) -> bool:
    section = data.get(key, [])
    return isinstance(section, list) and all(isinstance(x, dict) and isinstance(x.get("id"), str) for x in section)


def _check_task(
    doc: Document,
    base: Path,
    t: dict[str, Any],
    concepts: dict[str, Path] | None,
    models: dict[str, Path] | None,
    workflows: dict[str, Path],
    users: set[str] | None,
) -> None:
    listed = t.get("concepts")
    if isinstance(listed, list):
        seen: set[str] = set()
        for j, cid in enumerate(listed):
            if not isinstance(cid, str):
                continue
            if cid in seen:
                doc.add(base + ("concepts", j), f"duplicate task concept '{cid}'")
            elif concepts is not None and cid not in concepts:
                doc.add(base + ("concepts", j), f"task concept '{cid}' is not a declared concept" + did_you_mean(cid, concepts))
            seen.add(cid)
    review = _mapping(t.get("review"))
    strategy = review.get("strategy")
    workers = _list(t.get("workers"))
    reviewers = _list(review.get("reviewers"))
    if users is not None:
        for key, people, path in (
            ("worker", workers, base + ("workers",)),
            ("reviewer", reviewers, base + ("review", "reviewers")),
        ):
            for j, u in enumerate(people):
                if isinstance(u, str) and u not in users:
                    doc.add(
                        path + (j,),
                        f"{key} '{u}' is neither the app owner nor a collaborator; add it under collaborators"
                        + did_you_mean(u, users),
                    )
    if isinstance(strategy, str):
        if reviewers and strategy == "NONE":
            doc.add(base + ("review", "reviewers"), "reviewers are set but the review strategy is NONE")
        if strategy == "MANUAL" and not reviewers:
            doc.add(base + ("review",), "a MANUAL review needs reviewers")
        for k in ("approval_threshold_labelers", "approval_threshold_reviewers"):
            if k in review and strategy != "CONSENSUS":
                doc.add(base + ("review", k), f"'{k}' is a setting of CONSENSUS review; this review is {strategy}", at_key=True)
        if "sample_percentage" in review and strategy != "MANUAL":
            doc.add(
                base + ("review", "sample_percentage"),
                f"'sample_percentage' is a setting of MANUAL review; this review is {strategy}",
                at_key=True,
            )
    partition = t.get("partition")
    if isinstance(partition, dict):
        if t.get("worker_strategy") != "PARTITIONED":
            doc.add(base + ("partition",), "'partition' is a setting of worker_strategy PARTITIONED", at_key=True)
        weights = partition.get("weights")
        if isinstance(weights, dict):
            for u in weights:
                if u not in workers:
                    doc.add(
                        base + ("partition", "weights", u), f"weight for '{u}', who is not a worker of this task", at_key=True
                    )
    _check_source(doc, base, t.get("input_source"))
    auto = t.get("auto_annotation")
    if isinstance(auto, dict):
        _check_auto(doc, base + ("auto_annotation",), auto, concepts, models, workflows)


def _check_source(doc: Document, base: Path, source: Any) -> None:
    if not isinstance(source, dict) or not isinstance(source.get("type"), str):
        return
    kind, path = source["type"], base + ("input_source",)
    wants = {"DATASET": "dataset", "SAVED_SEARCH": "id", "INPUT": "id"}.get(kind)
    for key in ("dataset", "id"):
        if key in source and key != wants:
            doc.add(path + (key,), f"'{key}' is not used by input source {kind}", at_key=True)
    if wants and wants not in source:
        doc.add(path, f"input source {kind} needs '{wants}'")
    if wants == "dataset" and isinstance(source.get("dataset"), str) and is_lease_dataset(source["dataset"]):
        doc.add(path + ("dataset",), _lease_id(source["dataset"]))


def _lease_id(dataset_id: str) -> str:
    return (
        f"dataset id '{dataset_id}' is reserved for the app lease ('{LEASE_DATASET}' and '{LEASE_STEAL_PREFIX}*', "
        'docs/gitops.md "App lease"); give the dataset another id'
    )


def _check_auto(
    doc: Document,
    base: Path,
    auto: dict[str, Any],
    concepts: dict[str, Path] | None,
    models: dict[str, Path] | None,
    workflows: dict[str, Path],
) -> None:
    has_model, has_workflow = auto.get("model") is not None, auto.get("workflow") is not None
    if has_model == has_workflow:
        doc.add(base, "auto_annotation needs a model or a workflow (one of them)")
    model = auto.get("model")
    if isinstance(model, str) and models is not None and model not in models:
        doc.add(base + ("model",), f"model '{model}' is not a model of this manifest" + did_you_mean(model, models))
    wf = auto.get("workflow")
    if isinstance(wf, str) and wf not in workflows:
        doc.add(base + ("workflow",), f"workflow '{wf}' is not a workflow of this manifest" + did_you_mean(wf, workflows))
    ranges = auto.get("concepts")
    if not isinstance(ranges, dict):
        return
    for cid, rules in ranges.items():
        if concepts is not None and cid not in concepts:
            doc.add(
                base + ("concepts", cid), f"concept '{cid}' is not a declared concept" + did_you_mean(cid, concepts), at_key=True
            )
        if not isinstance(rules, list):
            continue
        spans: list[tuple[int, tuple[Any, Any, bool, bool]]] = []
        for j, r in enumerate(rules):
            if not isinstance(r, dict):
                continue
            lo, hi = r.get("lower", 0.0), r.get("upper", 1.0)
            if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (lo, hi)):
                continue
            if lo > hi:
                doc.add(base + ("concepts", cid, j), f"range of '{cid}': lower {lo} is above upper {hi}")
                continue
            lo_in = r.get("lower_inclusive", True) is not False
            hi_in = r.get("upper_inclusive", "upper" not in r) is not False
            for k, (lo2, hi2, lo2_in, hi2_in) in spans:
                apart = hi < lo2 or hi2 < lo or (hi == lo2 and not (hi_in and lo2_in)) or (hi2 == lo and not (hi2_in and lo_in))
                if not apart:
                    doc.add(
                        base + ("concepts", cid, j),
                        f"ranges {k} and {j} of '{cid}' overlap: a score in both would be written twice",
                    )
            spans.append((j, (lo, hi, lo_in, hi_in)))
