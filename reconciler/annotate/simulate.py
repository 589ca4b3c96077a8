"""`reconciler simulate`: forecast, offline, what a manifest's workflow would annotate.

Contract: `simulate(state, predictions, workflow_id=None) -> Report` runs the workflow (default:
the app's default workflow) once per input of the recorded predictions, with the SAME operator
code the sandbox runs (`operators.run_workflow`), and counts:

- total: inputs with at least one SUCCESS annotation (`success`), inputs with at least one
  annotation awaiting a human (`pending`: PENDING, AWAITING_REVIEW, AWAITING_CONSENSUS_REVIEW),
  inputs with no annotation at all (`none`). An input can count as both success and pending.
- per concept of the app: inputs whose SUCCESS annotation holds the concept, inputs whose
  pending annotation holds it, inputs where no annotation holds it.
- automation rate = success / inputs, review load (the PENDING share) = pending / inputs.

`sweep(state, predictions, spec)` re-runs the simulation across thresholds. `--sweep C=A:B:S`
sets concept C's threshold to A, A+S, ... B (B included when the steps land on it) in EVERY
concept-thresholder of the workflow that has a threshold for C (thresholders without one are
left alone: giving them one would change what they pass); its rows are C's per-concept numbers.
`--sweep all=A:B:S` sets every threshold of every thresholder of the workflow to the value; its
rows are the totals. Nothing here touches the network.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler.annotate.operators import REVIEW_STATUSES, AppView, RunNode, run_workflow, written_annotations
from reconciler.annotate.predictions import Predictions
from reconciler.core.errors import ReconcilerError
from reconciler.core.modeltypes import THRESHOLDER, canonical_type
from reconciler.core.state import State, Workflow
from reconciler.planning.graph import select_workflow

FORMAT_VERSION = 1
MAX_SWEEP_POINTS = 1001


@dataclass
class Counts:
    success: int = 0
    pending: int = 0
    none: int = 0

    def as_dict(self, inputs: int) -> dict[str, Any]:
        return {
            "success": self.success,
            "pending": self.pending,
            "none": self.none,
            "automation_rate": _rate(self.success, inputs),
            "review_load": _rate(self.pending, inputs),
        }


def _rate(n: int, d: int) -> float:
    return round(n / d, 6) if d else 0.0


@dataclass
class Report:
    app: str
    workflow: str
    inputs: int
    total: Counts
    concepts: dict[str, Counts]
    annotations: dict[str, int] = field(default_factory=dict)  # status name -> annotations written

    def as_dict(self) -> dict[str, Any]:
        return {
            "app": self.app,
            "workflow": self.workflow,
            "inputs": self.inputs,
            "total": self.total.as_dict(self.inputs),
            "concepts": {c: n.as_dict(self.inputs) for c, n in self.concepts.items()},
            "annotations": dict(self.annotations),
        }


def app_view(state: State) -> AppView:
    return AppView(
        owner=state.user_id or "(app owner)", concepts={c.id: c.name or c.id for c in state.concepts}, relations=state.relations
    )


def run_nodes(state: State, wf: Workflow) -> list[RunNode]:
    """The workflow's nodes with their manifest configs; external models are recorded-only."""
    out = []
    for n in wf.nodes:
        m = None if n.model.external else state.model(n.model.id)
        out.append(
            RunNode(
                id=n.id,
                model=n.model,
                type=m.type if m else "",
                config=dict(m.config) if m else {},
                inputs=n.inputs,
                suppress_output=n.suppress_output,
            )
        )
    return out


def simulate_nodes(state: State, wf: Workflow, nodes: list[RunNode], predictions: Predictions) -> Report:
    app = app_view(state)
    keys = predictions.inputs()
    total = Counts()
    per = {c: Counts() for c in app.concepts}
    statuses: dict[str, int] = {}
    for key in keys:
        anns = written_annotations(run_workflow(nodes, app, lambda node: predictions.lookup([key], node.model), key))  # noqa: B023 (called within this iteration)
        for a in anns:
            statuses[a.status] = statuses.get(a.status, 0) + 1
        ok = {c for a in anns if a.status == "SUCCESS" for c, _n, _v in a.concepts}
        review = {c for a in anns if a.status in REVIEW_STATUSES for c, _n, _v in a.concepts}
        written = {c for a in anns for c, _n, _v in a.concepts}
        total.success += any(a.status == "SUCCESS" for a in anns)
        total.pending += any(a.status in REVIEW_STATUSES for a in anns)
        total.none += not anns
        for c, counts in per.items():
            counts.success += c in ok
            counts.pending += c in review
            counts.none += c not in written
    return Report(state.app.id, wf.id, len(keys), total, per, dict(sorted(statuses.items())))


def unmatched_warning(state: State, predictions: Predictions, workflow_id: str | None = None) -> str | None:
    """A warning when no recorded line names the model of any node of the workflow: every node
    then outputs nothing and the forecast is "no annotation" for every input, which looks like a
    result but only means the file was recorded for other models (or spelled them differently)."""
    wf = select_workflow(state, workflow_id)
    recorded = set(predictions.models())
    if not recorded or any(k in recorded for n in wf.nodes for k in Predictions.model_keys(n.model)):
        return None
    named = sorted(recorded)
    shown = ", ".join(named[:5]) + (f" and {len(named) - 5} more" if len(named) > 5 else "")
    wanted = ", ".join(dict.fromkeys(Predictions.model_keys(n.model)[0] for n in wf.nodes))
    return (
        f"no recorded prediction matches any node of workflow {wf.id}: the file names {shown}; "
        f"the workflow's nodes run {wanted} (a line's \"model\" is the model id, or USER/APP/MODEL "
        "for another app's model)"
    )


def simulate(state: State, predictions: Predictions, workflow_id: str | None = None) -> Report:
    wf = select_workflow(state, workflow_id)
    return simulate_nodes(state, wf, run_nodes(state, wf), predictions)


# --- sweeps -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepSpec:
    concept: str  # a concept id, or "all"
    start: float
    stop: float
    step: float

    def values(self) -> list[float]:
        n = int(round((self.stop - self.start) / self.step + 1e-9))
        vals = [round(self.start + i * self.step, 10) for i in range(n + 1)]
        return [v for v in vals if v <= self.stop + 1e-9]


def parse_sweep(text: str) -> SweepSpec:
    concept, sep, rng = text.partition("=")
    parts = rng.split(":")
    if not sep or not concept or len(parts) != 3:
        raise ReconcilerError(f"--sweep {text!r}: expected CONCEPT=START:STOP:STEP (or all=START:STOP:STEP)")
    try:
        start, stop, step = (float(p) for p in parts)
    except ValueError:
        raise ReconcilerError(f"--sweep {text!r}: START, STOP and STEP must be numbers") from None
    if not step > 0 or start > stop:
        raise ReconcilerError(f"--sweep {text!r}: need STEP > 0 and START <= STOP")
    spec = SweepSpec(concept, start, stop, step)
    if len(spec.values()) > MAX_SWEEP_POINTS:
        raise ReconcilerError(f"--sweep {text!r}: more than {MAX_SWEEP_POINTS} thresholds; use a larger STEP")
    return spec


def _with_threshold(nodes: Iterable[RunNode], concept: str, value: float) -> list[RunNode]:
    out = []
    for n in nodes:
        th = n.config.get("thresholds") if canonical_type(n.type) == THRESHOLDER else None
        if th:
            new = {c: (value if concept in ("all", c) else v) for c, v in th.items()}
            n = dataclasses.replace(n, config={**n.config, "thresholds": new})
        out.append(n)
    return out


def sweep(state: State, predictions: Predictions, spec: SweepSpec, workflow_id: str | None = None) -> dict[str, Any]:
    wf = select_workflow(state, workflow_id)
    base = run_nodes(state, wf)
    thresholded = [n for n in base if canonical_type(n.type) == THRESHOLDER and n.config.get("thresholds")]
    if spec.concept != "all" and not any(spec.concept in n.config["thresholds"] for n in thresholded):
        raise ReconcilerError(f"--sweep: no concept-thresholder of workflow {wf.id} has a threshold for {spec.concept!r}")
    if not thresholded:
        raise ReconcilerError(f"--sweep: workflow {wf.id} has no concept-thresholder with thresholds")
    rows = []
    for t in spec.values():
        rep = simulate_nodes(state, wf, _with_threshold(base, spec.concept, t), predictions)
        c = rep.total if spec.concept == "all" else rep.concepts.get(spec.concept, Counts(none=rep.inputs))
        rows.append({"threshold": t, "inputs": rep.inputs, **c.as_dict(rep.inputs)})
    return {
        "concept": spec.concept,
        "workflow": wf.id,
        "thresholders": [n.id for n in thresholded if spec.concept == "all" or spec.concept in n.config["thresholds"]],
        "rows": rows,
    }


# --- text ---------------------------------------------------------------------------------------


def _pct(x: float) -> str:
    return f"{x * 100:.1f}%"


def render_text(report: dict[str, Any], sweeps: Sequence[dict[str, Any]] = (), source: str = "") -> str:
    n = report["inputs"]
    src = f" ({source})" if source else ""
    lines = [f"Simulated workflow {report['workflow']} of app {report['app']} on {n} input(s){src}", ""]
    width = max([len("concept"), len("total")] + [len(c) for c in report["concepts"]])
    head = f"  {'concept':<{width}}  {'SUCCESS':>7}  {'PENDING':>7}  {'none':>5}  {'automation':>10}  {'review load':>11}"
    lines.append(head)

    def row(name: str, c: dict[str, Any]) -> str:
        return (
            f"  {name:<{width}}  {c['success']:>7}  {c['pending']:>7}  {c['none']:>5}  "
            f"{_pct(c['automation_rate']):>10}  {_pct(c['review_load']):>11}"
        )

    for cid, c in report["concepts"].items():
        lines.append(row(cid, c))
    lines.append("  " + "-" * (len(head) - 2))
    lines.append(row("total", report["total"]))
    lines.append("")
    anns = ", ".join(f"{k} {v}" for k, v in report["annotations"].items()) or "none"
    lines.append(f"Annotations written: {anns}.")
    lines.append("SUCCESS / PENDING: inputs that would get such an annotation (holding the concept); none: no annotation.")
    for s in sweeps:
        lines += [
            "",
            f"Sweep of {'all thresholds' if s['concept'] == 'all' else 'the threshold of ' + s['concept']}"
            f" in {', '.join(s['thresholders'])}:",
            "",
            f"  {'threshold':>9}  {'SUCCESS':>7}  {'PENDING':>7}  {'none':>5}  {'automation':>10}  {'review load':>11}",
        ]
        for r in s["rows"]:
            lines.append(
                f"  {r['threshold']:>9g}  {r['success']:>7}  {r['pending']:>7}  {r['none']:>5}  "
                f"{_pct(r['automation_rate']):>10}  {_pct(r['review_load']):>11}"
            )
    return "\n".join(lines) + "\n"
