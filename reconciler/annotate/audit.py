"""`reconciler audit`: how precise the auto-accepted (SUCCESS) annotations are, measured on the
random share of them that was sent to review -- and whether that falls below a target.

The audit pattern (docs/annotation-loop.md): beside the writer of SUCCESS annotations, the accepting
thresholder feeds a `random-sample` node (`keep_fraction`: each input kept on its own, Clarifai's
"keep_fraction > rand()") whose output an annotation-writer writes with a review status (PENDING)
into the review task. Those are the audit annotations: a random sample of what was auto-accepted,
so their review outcomes estimate the precision of the SUCCESS annotations without bias.

Contract: `audit(client, state, options) -> dict` (the `--json` report, format_version 1).

- Audit writers: the workflow's (`--workflow`, default the app's default) annotation-writers of a
  review status that a random-sample node feeds, directly or through other nodes. Their annotations
  are found by the writing model version (every version of those models: `record.writer_version`).
  None: a ReconcilerError saying how to add the pattern.
- Outcomes per annotation (statuses set in place by PutTaskAssignments; clarifai-grpc service.proto,
  PutTaskAssignmentsRequestAction): SUCCESS = approved (its concepts were right), REVIEW_DENIED =
  rejected (wrong), any other status = not reviewed yet (not counted).
- Per concept: n reviewed, k approved, precision k / n, and the one-sided Clopper-Pearson bounds at
  `confidence` (`stats.cp_lower`, `stats.cp_upper`). Verdicts: "below" -- the upper bound is under
  the target: precision below the target, with that confidence; "at-risk" -- the estimate is under
  the target but the bound does not exclude it yet; "holds" -- the lower bound reaches the target;
  "unsure" -- the estimate reaches the target, the bound does not yet; "no-audits" -- nothing
  reviewed. `below` is true when any concept is "below" (the command then exits 2).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from reconciler.annotate import stats
from reconciler.annotate.operators import REVIEW_STATUSES
from reconciler.annotate.record import writer_version
from reconciler.api.client import Client
from reconciler.api.transport import api_path
from reconciler.core.errors import ReconcilerError
from reconciler.core.modeltypes import ANNOTATION_STATUSES, RANDOM_SAMPLE, WRITER, canonical_type
from reconciler.core.state import State, Workflow
from reconciler.planning.graph import select_workflow

FORMAT_VERSION = 1
APPROVED = ANNOTATION_STATUSES["SUCCESS"]
REJECTED = ANNOTATION_STATUSES["REVIEW_DENIED"]


@dataclass(frozen=True)
class AuditOptions:
    target: float
    confidence: float = 0.95
    workflow: str | None = None

    def check(self) -> None:
        if not 0.0 < self.target < 1.0:
            raise ReconcilerError(f"--target-precision {self.target:g}: must be strictly between 0 and 1")
        if not 0.0 < self.confidence < 1.0:
            raise ReconcilerError(f"--confidence {self.confidence:g}: must be strictly between 0 and 1")


def audit_writers(state: State, wf: Workflow) -> list[str]:
    """Model ids of the review-status writers a random-sample node feeds (see the module docstring)."""
    types = {n.id: canonical_type(m.type) if (m := state.model(n.model.id)) and not n.model.external else "" for n in wf.nodes}
    inputs = {n.id: n.inputs for n in wf.nodes}

    def sampled(nid: str, seen: frozenset[str] = frozenset()) -> bool:
        return any(types.get(i) == RANDOM_SAMPLE or (i not in seen and sampled(i, seen | {nid})) for i in inputs.get(nid, ()))

    out = []
    for n in wf.nodes:
        m = state.model(n.model.id) if not n.model.external else None
        if m is None or types[n.id] != WRITER or str(m.config.get("annotation_status")) not in REVIEW_STATUSES:
            continue
        if sampled(n.id) and m.id not in out:
            out.append(m.id)
    return out


def _versions(client: Client, base: str, model_ids: Iterable[str]) -> set[str]:
    out: set[str] = set()
    for mid in model_ids:
        out |= {str(v.get("id") or "") for v in client.list_all(base + api_path("models", mid, "versions"), "model_versions")}
    return out - {""}


def verdict(k: int, n: int, target: float, confidence: float) -> dict[str, Any]:
    """One concept's audited precision, its bounds and verdict (module docstring)."""
    if n == 0:
        return {"reviewed": 0, "approved": 0, "precision": None, "lower": None, "upper": None, "verdict": "no-audits"}
    lower, upper = stats.cp_lower(k, n, confidence), stats.cp_upper(k, n, confidence)
    p = k / n
    word = "below" if upper < target else "at-risk" if p < target else "holds" if lower >= target else "unsure"
    return {
        "reviewed": n,
        "approved": k,
        "precision": round(p, 6),
        "lower": round(lower, 6),
        "upper": round(upper, 6),
        "verdict": word,
    }


def audit(client: Client, state: State, opts: AuditOptions) -> dict[str, Any]:
    opts.check()
    wf = select_workflow(state, opts.workflow)
    writers = audit_writers(state, wf)
    if not writers:
        raise ReconcilerError(
            f"workflow {wf.id} has no audit branch: add a random-sample model (keep_fraction) fed by the "
            "accepting thresholder, feeding an annotation-writer with a review status (docs/annotation-loop.md)"
        )
    base = client.app_path(state.app.id, state.user_id)
    versions = _versions(client, base, writers)
    concepts = {c.id for c in state.concepts}
    counts: dict[str, list[int]] = {c: [0, 0, 0] for c in sorted(concepts)}  # approved, rejected, waiting
    for a in client.list_all(base + api_path("annotations"), "annotations", {"list_all_annotations": "true"}):
        if writer_version(a) not in versions:
            continue
        code = (a.get("status") or {}).get("code")
        slot = 0 if code == APPROVED else 1 if code == REJECTED else 2
        for c in (a.get("data") or {}).get("concepts") or []:
            if c.get("id") in counts:
                counts[c["id"]][slot] += 1
    rows = {}
    for cid, (ok, bad, waiting) in counts.items():
        rows[cid] = {**verdict(ok, ok + bad, opts.target, opts.confidence), "waiting": waiting}
    return {
        "format_version": FORMAT_VERSION,
        "app": state.app.id,
        "workflow": wf.id,
        "audit_writers": writers,
        "target_precision": opts.target,
        "confidence": opts.confidence,
        "concepts": rows,
        "below": any(r["verdict"] == "below" for r in rows.values()),
    }


def render_text(report: dict[str, Any]) -> str:
    r = report
    pct = lambda x: "-" if x is None else f"{x * 100:.1f}%"  # noqa: E731
    lines = [
        f"Audit of the SUCCESS annotations of workflow {r['workflow']}, app {r['app']} (audit writers: "
        f"{', '.join(r['audit_writers'])}): target precision {r['target_precision']:g} at {r['confidence'] * 100:g}% confidence",
        "",
    ]
    width = max([len("concept")] + [len(c) for c in r["concepts"]])
    lines.append(
        f"  {'concept':<{width}}  {'reviewed':>8}  {'approved':>8}  {'precision [interval]':>26}  {'waiting':>7}  verdict"
    )
    for cid, row in r["concepts"].items():
        interval = "-" if row["precision"] is None else f"{pct(row['precision'])} [{pct(row['lower'])}, {pct(row['upper'])}]"
        lines.append(
            f"  {cid:<{width}}  {row['reviewed']:>8}  {row['approved']:>8}  {interval:>26}  {row['waiting']:>7}  {row['verdict']}"
        )
    lines.append("")
    below = [c for c, row in r["concepts"].items() if row["verdict"] == "below"]
    if below:
        lines.append(
            f"BELOW TARGET: {', '.join(below)}: the audited precision's upper bound is under "
            f"{r['target_precision']:g}; raise their thresholds (record, then tune) or review more."
        )
    else:
        lines.append("No concept is below the target with this confidence.")
    return "\n".join(lines) + "\n"
