"""The workflow's thresholders and the scores that reach them, for `tune`.

The accepting thresholder is the workflow's concept-thresholder with a GREATER_THAN /
GREATER_THAN_OR_EQUAL comparator that feeds an annotation-writer writing SUCCESS; its paired
review thresholders are the LESS_THAN / LESS_THAN_OR_EQUAL ones with the same inputs that feed a
writer of a review status. Scores are what the nodes up to the accepting thresholder output for
each recorded input (`operators.run_workflow`), or, when only recorded models and mappers feed it,
gathered per concept directly (`score_columns`): the same numbers, faster.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from reconciler.annotate.operators import REVIEW_STATUSES, AppView, RunNode, run_workflow
from reconciler.annotate.predictions import Predictions
from reconciler.annotate.simulate import app_view, run_nodes
from reconciler.core.errors import ReconcilerError
from reconciler.core.modeltypes import MAPPER, RANDOM_SAMPLE, THRESHOLDER, WRITER, canonical_type
from reconciler.core.state import ConceptRef, ModelRef, State, Workflow
from reconciler.planning.graph import select_workflow

ACCEPTING = ("GREATER_THAN", "GREATER_THAN_OR_EQUAL", "CONCEPT_THRESHOLD_NOT_SET")
REVIEWING = ("LESS_THAN", "LESS_THAN_OR_EQUAL")


# --- the workflow's thresholders -------------------------------------------------------------------


@dataclass(frozen=True)
class Thresholders:
    workflow: Workflow
    nodes: list[RunNode]
    accepting: RunNode
    review: list[RunNode]


def _consumers(nodes: list[RunNode]) -> dict[str, list[RunNode]]:
    out: dict[str, list[RunNode]] = {}
    for n in nodes:
        for i in n.inputs:
            out.setdefault(i, []).append(n)
    return out


def _feeds_writer(node: RunNode, consumers: dict[str, list[RunNode]], statuses: Iterable[str]) -> bool:
    wanted = set(statuses)
    return any(
        canonical_type(w.type) == WRITER and str(w.config.get("annotation_status", "SUCCESS")) in wanted
        for w in consumers.get(node.id, ())
    )


def find_thresholders(state: State, workflow_id: str | None, thresholder: str | None) -> Thresholders:
    """The workflow's accepting thresholder and its review pair; ``thresholder="task:ID"``: those
    of task ID's auto-annotation instead (`taskflow.task_thresholders`)."""
    if thresholder and thresholder.startswith("task:"):
        from reconciler.annotate.taskflow import task_thresholders  # taskflow builds on this module

        return task_thresholders(state, thresholder[len("task:") :])
    wf = select_workflow(state, workflow_id)
    nodes = run_nodes(state, wf)
    consumers = _consumers(nodes)
    thr = [n for n in nodes if canonical_type(n.type) == THRESHOLDER]
    accepting = [
        n
        for n in thr
        if str(n.config.get("comparator", "GREATER_THAN")) in ACCEPTING and _feeds_writer(n, consumers, ["SUCCESS"])
    ]
    if thresholder:
        pick = [n for n in accepting if thresholder in (n.id, n.model.id)]
        if not pick:
            raise ReconcilerError(
                f"--thresholder {thresholder}: not an accepting thresholder of workflow {wf.id} "
                f"(accepting: {', '.join(n.id for n in accepting) or 'none'})"
            )
        accepting = pick[:1]
    if not accepting:
        raise ReconcilerError(
            f"workflow {wf.id} has no accepting thresholder (a concept-thresholder with "
            "GREATER_THAN or GREATER_THAN_OR_EQUAL feeding an annotation-writer that writes SUCCESS)"
        )
    if len({n.model.id for n in accepting}) > 1:
        raise ReconcilerError(
            f"workflow {wf.id} has several accepting thresholders "
            f"({', '.join(n.id for n in accepting)}); pick one with --thresholder"
        )
    acc = accepting[0]
    if not acc.config.get("thresholds"):
        raise ReconcilerError(f"thresholder {acc.model.id} has no thresholds to tune")
    review = [
        n
        for n in thr
        if n is not acc
        and str(n.config.get("comparator")) in REVIEWING
        and set(n.inputs) == set(acc.inputs)
        and _feeds_writer(n, consumers, REVIEW_STATUSES)
    ]
    return Thresholders(wf, nodes, acc, review)


def _ancestors(nodes: list[RunNode], node: RunNode) -> list[RunNode]:
    by_id = {n.id: n for n in nodes}
    seen: set[str] = set()
    todo = list(node.inputs)
    while todo:
        nid = todo.pop()
        if nid in seen or nid not in by_id:
            continue
        seen.add(nid)
        todo.extend(by_id[nid].inputs)
    return [n for n in nodes if n.id in seen]


def thresholder_scores(state: State, th: Thresholders, predictions: Predictions) -> dict[str, dict[str, float]]:
    """input -> {concept id of this app: score reaching the accepting thresholder}."""
    upstream = _ancestors(th.nodes, th.accepting)
    feeding = set(th.accepting.inputs)
    app = app_view(state)
    out: dict[str, dict[str, float]] = {}
    for key in predictions.inputs():
        got: dict[str, float] = {}
        # the lambda is called within this iteration only
        for r in run_workflow(upstream, app, lambda node: predictions.lookup([key], node.model), key):  # noqa: B023
            if r.node.id not in feeding:
                continue
            for ref, v in r.concepts.items():
                if not ref.external:
                    got[ref.id] = max(got.get(ref.id, v), v)
        out[key] = got
    return out


Column = list[float | None]  # one concept's score per recorded input (predictions.inputs() order); None: no score


def score_columns(
    state: State, th: Thresholders, predictions: Predictions, concepts: Iterable[str], *, direct: bool = True
) -> dict[str, Column]:
    """concept -> its score at the accepting thresholder for every recorded input, for `concepts`.

    The same numbers as `thresholder_scores`. When no thresholder sits upstream of the accepting one
    (the usual shape: models -> mappers -> thresholder) they are gathered directly (`_direct_columns`);
    otherwise, or with `direct=False`, the workflow's operators run once per input."""
    wanted = list(dict.fromkeys(concepts))
    inputs = predictions.inputs()
    cols = _direct_columns(state, th, predictions, inputs, wanted) if direct else None
    if cols is None:
        scores = thresholder_scores(state, th, predictions)
        cols = {c: [scores[k].get(c) for k in inputs] for c in wanted}
    return cols


def _direct_columns(
    state: State, th: Thresholders, predictions: Predictions, inputs: list[str], wanted: list[str]
) -> dict[str, Column] | None:
    """`score_columns` without running the operators per input, or None when the shape needs them.

    Why it gives the same numbers: upstream of the accepting thresholder there are only models that
    output recorded predictions (whatever their inputs) and concept mappers (and, at most, the
    thresholder's own input merge). A mapper moves each incoming concept's score, unchanged, to a set
    of concepts that depends on the concept alone, and every merge keeps the highest score. So a
    concept's score at the thresholder is the highest recorded score among the (node, recorded
    concept) pairs whose route reaches it, and each route is found once by running the same operator
    code (`operators.run_workflow`) on that single concept. A thresholder (it passes a concept or not
    by its score), a random sample (it passes an input or not) or an annotation-writer upstream
    breaks that argument, so then: None."""
    upstream = _ancestors(th.nodes, th.accepting)
    kinds = {n.id: canonical_type(n.type) for n in upstream}
    if any(k in (THRESHOLDER, WRITER, RANDOM_SAMPLE) for k in kinds.values()):
        return None
    app = app_view(state)
    feeding = set(th.accepting.inputs)
    keep = set(wanted)
    merged: dict[str, Column] = {}
    for node in upstream:
        if kinds[node.id] == MAPPER:
            continue
        for cid, col in _recorded_columns(predictions, inputs, node.model).items():
            probe = ConceptRef(cid, node.model.user_id, node.model.app_id)
            for c in _route(upstream, app, node.id, probe, feeding):
                if c in keep:
                    merged[c] = col if c not in merged else _highest(merged[c], col)
    return {c: merged.get(c) or [None] * len(inputs) for c in wanted}


def _recorded_columns(predictions: Predictions, inputs: list[str], model: ModelRef) -> dict[str, Column]:
    """recorded concept id -> its score per input, from the line `predictions.lookup` would use."""
    found = predictions.lines_for(inputs, model)
    first = found[0] if found else None
    if first is not None and len(set(first.concept_ids)) == len(first.concept_ids):
        ids = first.concept_ids
        if all(p is not None and (p.concept_ids is ids or p.concept_ids == ids) for p in found):
            # every input recorded, every line naming the same concepts in the same order (the
            # usual file; the parser shares the ids tuple): transpose the scores at C speed
            scores = [p.scores for p in found if p is not None]
            return dict(zip(ids, map(list, zip(*scores, strict=True)), strict=True))
    out: dict[str, Column] = {}
    n = len(inputs)
    for i, p in enumerate(found):
        if p is None:
            continue
        for cid, v in zip(p.concept_ids, p.scores, strict=True):  # a concept given twice: the last, as in lookup
            col = out.get(cid)
            if col is None:
                col = out[cid] = [None] * n
            col[i] = v
    return out


def _route(upstream: list[RunNode], app: AppView, source: str, probe: ConceptRef, feeding: set[str]) -> set[str]:
    """The ids of this app's concepts that `probe`, output alone by node `source`, reaches at the
    accepting thresholder's input, through the operators themselves."""
    results = run_workflow(upstream, app, lambda node: {probe: 1.0} if node.id == source else None)
    return {ref.id for r in results if r.node.id in feeding for ref in r.concepts if not ref.external}


def _highest(a: Column, b: Column) -> Column:
    """Per input, the higher score of two columns (None: no score)."""
    return [x if y is None or (x is not None and x >= y) else y for x, y in zip(a, b, strict=True)]
