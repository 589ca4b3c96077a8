"""A task's auto-annotation as workflow nodes, so that the sandbox, `simulate`, `record` and `tune`
run it with the operator code they run workflows with (`operators.run_workflow`).

A task that auto-annotates (Clarifai's TaskConceptAutoAnnotationConfig: per concept, a
ThresholdRange and the status_code its annotations get; docs api-guide/annotate/tasks.md,
code_snippets/api-guide/annotate/tasks/auto_annotation.sh) becomes:

    worker ─┬─▶ ranges(SUCCESS) ─▶ write(SUCCESS)
            └─▶ ranges(PENDING) ─▶ write(PENDING)      one pair per status its ranges name

- `worker`: the task's model (its recorded outputs), or its workflow's nodes, whose concepts reach
  the range nodes together (the highest score per concept, as a node's inputs merge);
- ranges(S): a `TASK_RANGES` node passing the concepts whose score is in one of their ranges of
  status S; write(S): an annotation-writer of status S into the task (`task_id`), as the app owner.
  One annotation per input and status, holding every concept that status got [unverified: how the
  real service groups a task's annotations is not published].

`task_thresholders` is the same task as `tune` sees it: its SUCCESS ranges as one accepting
concept-thresholder (threshold = a range's `lower`, GREATER_THAN_OR_EQUAL when the lower bound is
inclusive), its review ranges (PENDING, AWAITING_REVIEW, ...) as the paired LESS_THAN thresholder
(threshold = their `upper`). That reading holds for ranges of the usual shape -- SUCCESS
``[t, 1]``, review ``[l, t)`` -- and `task_thresholders` refuses others with one line. The
thresholders are named ``task:<id>`` and ``task:<id>:review`` (`TASK_PREFIX`), which
`thresholdwrite` knows how to write back (the range bounds in the manifest).
"""

from __future__ import annotations

from collections.abc import Sequence

from reconciler.annotate.operators import REVIEW_STATUSES, TASK_RANGES, RunNode
from reconciler.annotate.predictions import Predictions
from reconciler.annotate.simulate import Report, run_nodes, simulate_nodes
from reconciler.annotate.thresholders import Thresholders
from reconciler.core.errors import ReconcilerError
from reconciler.core.modeltypes import THRESHOLDER, WRITER
from reconciler.core.state import ModelRef, State, Task, ThresholdRange, Workflow

TASK_PREFIX = "task:"
REVIEW_SUFFIX = ":review"


def find_task(state: State, task_id: str) -> Task:
    t = state.task(task_id)
    if t is None:
        raise ReconcilerError(
            f"task {task_id!r} is not in the manifest (tasks: {', '.join(x.id for x in state.tasks) or 'none'})"
        )
    if t.auto_annotation is None or not t.auto_annotation.ranges:
        raise ReconcilerError(f"task {task_id} has no auto_annotation: nothing labels its inputs but people")
    return t


def worker_nodes(state: State, task: Task) -> list[RunNode]:
    """The nodes that label the task's inputs: its model, or its workflow's nodes (ids prefixed)."""
    auto = task.auto_annotation
    assert auto is not None
    if auto.model is not None:
        m = None if auto.model.external else state.model(auto.model.id)
        return [RunNode("worker", auto.model, m.type if m else "", dict(m.config) if m else {})]
    wf = state.workflow(auto.workflow or "")
    if wf is None:
        raise ReconcilerError(f"task {task.id}: workflow {auto.workflow!r} is not in the manifest")
    return [
        RunNode(
            f"worker/{n.id}", n.model, n.type, n.config, tuple(f"worker/{i}" for i in n.inputs), n.version_id, n.suppress_output
        )
        for n in run_nodes(state, wf)
    ]


def task_nodes(task: Task, workers: Sequence[RunNode], *, task_api_id: str = "", owner: str = "") -> list[RunNode]:
    """The task's whole flow (module docstring); `task_api_id` goes in the writers' `task_id`."""
    auto = task.auto_annotation
    assert auto is not None
    feeding = tuple(n.id for n in workers if n.type != WRITER)
    nodes = list(workers)
    by_status: dict[str, dict[str, list[ThresholdRange]]] = {}
    for r in auto.ranges:
        by_status.setdefault(r.status, {}).setdefault(r.concept, []).append(r)
    for status, ranges in by_status.items():
        nodes.append(RunNode(f"ranges/{status}", ModelRef(f"{TASK_PREFIX}{task.id}"), TASK_RANGES, {"ranges": ranges}, feeding))
        cfg = {"annotation_status": status, "task_id": task_api_id}
        if owner:
            cfg["annotation_user_id"] = owner
        nodes.append(RunNode(f"write/{status}", ModelRef(f"{TASK_PREFIX}{task.id}"), WRITER, cfg, (f"ranges/{status}",)))
    return nodes


def task_workflow(task: Task) -> Workflow:
    """A stand-in Workflow for reports: its id names the task."""
    return Workflow(id=f"task/{task.id}")


def task_thresholders(state: State, task_id: str) -> Thresholders:
    """The task as `tune` sees it (module docstring)."""
    task = find_task(state, task_id)
    auto = task.auto_annotation
    assert auto is not None
    workers = worker_nodes(state, task)
    feeding = tuple(n.id for n in workers if n.type != WRITER)
    accept: dict[str, float] = {}
    review: dict[str, float] = {}
    inclusive: set[bool] = set()
    review_inclusive: set[bool] = set()
    for r in auto.ranges:
        if r.status == "SUCCESS":
            if r.upper < 1.0 or not r.upper_inclusive or r.concept in accept:
                raise ReconcilerError(
                    f"task {task.id}: concept {r.concept}'s SUCCESS ranges are not one range up to 1: tune reads a task's "
                    "SUCCESS range as a threshold (lower bound) and cannot tune this one"
                )
            accept[r.concept] = r.lower
            inclusive.add(r.lower_inclusive)
        elif r.status in REVIEW_STATUSES:
            if r.concept in review:
                raise ReconcilerError(f"task {task.id}: concept {r.concept} has several review ranges; tune follows one")
            review[r.concept] = r.upper
            review_inclusive.add(r.upper_inclusive)
    if not accept:
        raise ReconcilerError(f"task {task.id} has no SUCCESS range: nothing is auto-accepted, so there is no threshold to tune")
    if len(inclusive) > 1 or len(review_inclusive) > 1:
        raise ReconcilerError(f"task {task.id}: the ranges' inclusive bounds differ between concepts; tune needs one comparator")
    comparator = "GREATER_THAN_OR_EQUAL" if inclusive == {True} else "GREATER_THAN"
    nodes = list(workers)
    acc = RunNode(
        "accept", ModelRef(f"{TASK_PREFIX}{task.id}"), THRESHOLDER, {"comparator": comparator, "thresholds": accept}, feeding
    )
    nodes += [
        acc,
        RunNode("write-accepted", ModelRef(f"{TASK_PREFIX}{task.id}"), WRITER, {"annotation_status": "SUCCESS"}, ("accept",)),
    ]
    pairs = []
    if review:
        rev = RunNode(
            "review",
            ModelRef(f"{TASK_PREFIX}{task.id}{REVIEW_SUFFIX}"),
            THRESHOLDER,
            {"comparator": "LESS_THAN_OR_EQUAL" if review_inclusive == {True} else "LESS_THAN", "thresholds": review},
            feeding,
        )
        nodes += [rev, RunNode("write-review", ModelRef(rev.model.id), WRITER, {"annotation_status": "PENDING"}, ("review",))]
        pairs.append(rev)
    return Thresholders(task_workflow(task), nodes, acc, pairs)


def simulate_task(state: State, predictions: Predictions, task_id: str) -> Report:
    """`simulate` for a task's auto-annotation: the same counts, from its flow (`task_nodes`)."""
    task = find_task(state, task_id)
    return simulate_nodes(state, task_workflow(task), task_nodes(task, worker_nodes(state, task)), predictions)
