"""`reconciler tune`: per-concept thresholds that certify a precision target, from recorded
predictions and reviewed labels. Pure: no network; `thresholdwrite` puts the result in a manifest.

Contract: `tune(state, predictions, labels, options) -> dict` (the `--json` report, format_version 1).

- The accepting thresholder is the workflow's concept-thresholder with a GREATER_THAN /
  GREATER_THAN_OR_EQUAL comparator that feeds an annotation-writer writing SUCCESS (`--thresholder`
  picks one when there are several). Its paired review thresholders are the LESS_THAN /
  LESS_THAN_OR_EQUAL thresholders with the same inputs that feed a writer of a review status
  (PENDING, ...); unless `follow_review=False` their threshold for a tuned concept follows the
  accepting one, so an input is still either accepted or sent to review.
- Scores: what the workflow's nodes up to the accepting thresholder output for each recorded input,
  with the operator code `simulate` and the sandbox use (`operators.run_workflow`, mapper
  included); the concept's score at the thresholder is the highest one its input nodes output, as
  the runner does. When only recorded models and mappers feed the thresholder, each recorded
  concept's route is found once with that code and the scores are gathered per concept
  (`score_columns`), the same numbers without running the nodes per input.
- Precision at threshold t of concept c: among LABELLED inputs whose score passes t (they would get
  a SUCCESS annotation holding c), the share labelled c = true (`labels.Labels.label`).
- The certified choice (the guarantee): `certify.py` (Learn-then-Test with a fallback chain; the
  statistics are in docs/tune.md). The labelled inputs used to choose are split at random by input
  id (seeded with `seed`): 10% learn where to spend the error budget 1 - confidence, the other 90%
  test. For i.i.d. labelled inputs the chance that a concept's certified threshold has a true
  precision below the target is at most 1 - confidence, whatever the calibration curve.
- Too few labels to test any threshold, or no test passes: the current threshold is kept and the
  report says why (the failing tests, with their support and right counts).
- `holdout` > 0: that share of labelled inputs (shuffled with `seed`) is kept out of the choice and
  the precision reached on it at the proposal is reported.
- Automation and review load, per concept, before/after: the share of all recorded inputs whose
  score passes the accepting (SUCCESS) thresholder, and the paired review (PENDING) thresholder
  (the first, if there are several), at the current and the proposed thresholds -- the numbers
  `simulate` gives for those writers (a test holds the two equal), counted by binary search over
  the sorted scores so that 100,000 inputs x 50 concepts take seconds.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from itertools import compress, repeat
from operator import is_not, not_
from typing import Any, cast

from reconciler.annotate import stats
from reconciler.annotate.certify import LEARN_SHARE, PROCEDURE, Choice, certify, grid, split_indices
from reconciler.annotate.labels import Absent, Labels
from reconciler.annotate.operators import passes
from reconciler.annotate.predictions import Predictions
from reconciler.annotate.thresholders import (
    REVIEWING,
    Thresholders,
    find_thresholders,
    score_columns,
)
from reconciler.core.errors import ReconcilerError
from reconciler.core.modeltypes import f32
from reconciler.core.state import State

FORMAT_VERSION = 1


@dataclass(frozen=True)
class Options:
    target: float
    confidence: float = 0.95
    thresholder: str | None = None
    workflow: str | None = None
    min_support: int = 0
    holdout: float = 0.0
    seed: int = 0
    step: float = 0.01
    absent: Absent = "negative"
    follow_review: bool = True

    def check(self) -> None:
        if not 0.0 < self.target < 1.0:
            raise ReconcilerError(f"--target-precision {self.target:g}: must be strictly between 0 and 1")
        if not 0.0 < self.confidence < 1.0:
            raise ReconcilerError(f"--confidence {self.confidence:g}: must be strictly between 0 and 1")
        if not 0.0 <= self.holdout < 1.0:
            raise ReconcilerError(f"--holdout {self.holdout:g}: must be in [0, 1)")
        if not 0.0 < self.step <= 0.5:
            raise ReconcilerError(f"--step {self.step:g}: must be in (0, 0.5]")
        if self.min_support < 0:
            raise ReconcilerError(f"--min-support {self.min_support}: must be >= 0")


# --- the certified choice ---------------------------------------------------------------------------


class Ranked:
    """Scores, each sorted from high to low, of points that are right and of points that are not:
    how many points a threshold passes (and how many of them are right) is then a binary search in
    each, with the operators' own `passes` as the test, instead of a pass over every point. Sorting
    the right and the other points apart sorts every score once; `pooled` adds sets of points
    without sorting them again."""

    def __init__(self, points: Iterable[tuple[float, bool]] = ()):
        pts = list(points)
        self.runs_right = [sorted((s for s, ok in pts if ok), reverse=True)]
        self.runs_other = [sorted((s for s, ok in pts if not ok), reverse=True)]

    @classmethod
    def of_scores(cls, scores: Iterable[float], right: Iterable[float] = ()) -> Ranked:
        """From the scores of the points that are not right, and of those that are."""
        r = cls()
        r.runs_other = [sorted(scores, reverse=True)]
        r.runs_right = [sorted(right, reverse=True)]
        return r

    @classmethod
    def pooled(cls, *parts: Ranked) -> Ranked:
        """The points of every part together."""
        r = cls()
        r.runs_right = [run for p in parts for run in p.runs_right]
        r.runs_other = [run for p in parts for run in p.runs_other]
        return r

    def __len__(self) -> int:
        return sum(map(len, self.runs_right)) + sum(map(len, self.runs_other))

    def top_score(self, m: int) -> float | None:
        """The m-th highest score (None: fewer than m points)."""
        if m < 1 or m > len(self):
            return None
        runs = [run for run in self.runs_right + self.runs_other if run]
        *_, last = (s for _, s in zip(range(m), heapq.merge(*runs, reverse=True), strict=False))
        return last

    def passing(self, comparator: str, t: float) -> tuple[int, int]:
        """(points whose score passes `comparator t`, how many of them are right)."""
        right = sum(_count_passing(run, comparator, t) for run in self.runs_right if run)
        return right + sum(_count_passing(run, comparator, t) for run in self.runs_other if run), right


def _count_passing(desc: list[float], comparator: str, t: float) -> int:
    """How many of the scores `desc` (high to low) pass `comparator t`. Equal scores all pass or
    all fail, so the passing ones are a prefix (GREATER_...) or a suffix (LESS_...)."""
    lo, hi = 0, len(desc)
    if comparator in REVIEWING:  # the passing scores are the lowest: a suffix
        while lo < hi:
            mid = (lo + hi) // 2
            if passes(desc[mid], comparator, t):
                hi = mid
            else:
                lo = mid + 1
        return len(desc) - lo
    while lo < hi:  # the passing scores are the highest: a prefix
        mid = (lo + hi) // 2
        if passes(desc[mid], comparator, t):
            lo = mid + 1
        else:
            hi = mid
    return lo


def _precision(ranked: Ranked, comparator: str, t: float | None, confidence: float) -> dict[str, Any]:
    n, k = ranked.passing(comparator, t) if t is not None else (0, 0)
    if not n:
        return {"accepted": 0, "correct": 0, "precision": None, "lower": None, "upper": None}
    return {
        "accepted": n,
        "correct": k,
        "precision": round(k / n, 6),
        "lower": round(stats.cp_lower(k, n, confidence), 6),
        "upper": round(stats.cp_upper(k, n, confidence), 6),
    }


def _learn_split(ids: set[str], seed: int) -> tuple[set[str], set[str]]:
    """The labelled inputs used to choose, split at random into (learning, testing) (`certify`)."""
    order = sorted(ids)
    learn, test = split_indices(len(order), seed)
    return {order[i] for i in learn}, {order[i] for i in test}


def _certificate(choice: Choice) -> dict[str, Any]:
    """The `--json` report's account of how a concept's threshold was certified (docs/tune.md)."""
    return {
        "procedure": PROCEDURE,
        "learning": choice.learning,
        "testing": choice.testing,
        "positions": [
            {"threshold": p.threshold, "level": round(p.level, 6), "kind": p.kind}
            | ({"inputs": p.inputs} if p.kind == "top-inputs" else {})
            for p in choice.positions
        ],
        "threshold": choice.threshold,
        "kind": choice.kind or None,
        "level": round(choice.level, 6) if choice.threshold is not None else None,
        "support": choice.support,
        "correct": choice.correct,
        "lower": round(choice.lower, 6) if choice.lower is not None else None,
        "failed": [
            {"threshold": t.threshold, "level": round(t.level, 6), "support": t.support, "correct": t.correct, "kind": t.kind}
            for t in choice.failed[:5]
        ],
    }


def _note(c: str, choice: Choice, opts: Options, positives: int) -> str:
    """Why a concept keeps its current threshold, in words ("" when it was certified)."""
    target = f"{opts.target:g} at {opts.confidence * 100:g}%"
    if choice.reason == "insufficient":
        return (
            f"{c}: {positives} labelled positive{'s' if positives != 1 else ''}, cannot certify {target} "
            f"(needs at least {choice.need} accepted labelled inputs, all right, among the "
            f"{choice.testing} that test); keeping the current threshold"
        )
    if choice.reason == "not-certified":
        fails = "; ".join(_failure(t, opts) for t in choice.failed[:3])
        return f"{c}: no threshold certifies {target} ({fails}); keeping the current threshold"
    return ""


def _failure(t: Any, opts: Options) -> str:
    what = f"{t.threshold:g}" if t.kind == "chain" else f"{t.threshold:g} (the {t.support} top-scored)"
    if t.support < max(opts.min_support, 1):
        return f"at {what} only {t.support} testing labels accepted"
    k = stats.critical(t.support, opts.target, t.level)
    needs = "none could pass" if k > t.support else f"needs {k}"
    return f"at {what}: {t.correct} of {t.support} testing labels right, {needs} at error budget {t.level * 100:.3g}%"


def _split(ids: list[str], holdout: float, seed: int) -> tuple[set[str], set[str]]:
    order = sorted(ids)
    random.Random(seed).shuffle(order)
    cut = int(round(len(order) * holdout))
    return set(order[cut:]), set(order[:cut])


def _curve(everyone: Ranked, labelled: Ranked, comparator: str, total: int, step: float) -> list[dict[str, Any]]:
    """Per grid threshold: automation (share of all inputs accepted) and labelled precision."""
    rows = []
    for t in grid(step):
        accepted, _ = everyone.passing(comparator, t)
        n, k = labelled.passing(comparator, t)
        rows.append(
            {
                "threshold": t,
                "automation": round(accepted / total, 6) if total else 0.0,
                "precision": round(k / n, 6) if n else None,
                "accepted": n,
            }
        )
    return rows


def tune(
    state: State, predictions: Predictions, labels: Labels, opts: Options, curves: bool = False, *, direct: bool = True
) -> dict[str, Any]:
    """The report (module docstring); `curves` adds each concept's precision/automation curve;
    `direct=False` runs the operators once per input for the scores (`score_columns`), for tests."""
    opts.check()
    th = find_thresholders(state, opts.workflow, opts.thresholder)
    inputs = predictions.inputs()
    if not inputs:
        raise ReconcilerError(f"{predictions.source}: no recorded predictions")
    if not labels.by_input:
        raise ReconcilerError(f"{labels.source}: no labels")
    known = set(inputs)
    stray = [i for i in labels.by_input if i not in known]
    if stray:
        raise ReconcilerError(
            f"{labels.source}:{labels.line_of[stray[0]]}: input {stray[0]!r} has no recorded "
            f"prediction in {predictions.source}" + (f" (and {len(stray) - 1} more)" if len(stray) > 1 else "")
        )
    app_concepts = {c.id for c in state.concepts}
    for iid, cs in labels.by_input.items():
        if cs.keys() <= app_concepts:
            continue
        bad = sorted(set(cs) - app_concepts)
        if bad:
            raise ReconcilerError(
                f"{labels.source}:{labels.line_of[iid]}: concept {bad[0]!r} is not a concept of app {state.app.id}"
            )
    acc = th.accepting
    comparator = str(acc.config.get("comparator", "GREATER_THAN"))
    current: dict[str, float] = dict(acc.config["thresholds"])
    cols = score_columns(state, th, predictions, current, direct=direct)
    calib, hold = _split(list(labels.by_input), opts.holdout, opts.seed) if opts.holdout else (set(labels.by_input), set())
    position = {k: i for i, k in enumerate(inputs)}
    absent = False if opts.absent == "negative" else None

    def labelled_at(ids: set[str]) -> tuple[list[int], list[dict[str, bool]]]:
        """The positions (in `inputs`) and label lines of the labelled inputs in `ids`."""
        keys = [k for k in labels.by_input if k in ids]
        return [position[k] for k in keys], [labels.by_input[k] for k in keys]

    def points(concept: str, at: tuple[list[int], list[dict[str, bool]]]) -> tuple[Ranked, int, int, list[float]]:
        """The scores for `concept` of the labelled inputs at `at`, ranked (right: labelled true);
        how many inputs are labelled for it / positive; the scores of those not labelled for it."""
        idx, lines = at
        if not idx:
            return Ranked(), 0, 0, []
        col = cols[concept]
        # C-level maps, not Python loops: this runs for every (labelled input, concept)
        labs: list[bool | None] = list(map(dict.get, lines, repeat(concept), repeat(absent)))
        scored: list[float | None] = list(map(col.__getitem__, idx))
        unlabelled: list[float | None] = []
        if None in labs:  # absent read as unknown: the input does not count for this concept
            unlabelled = [s for s, lab in zip(scored, labs, strict=True) if lab is None]
            scored = [s for s, lab in zip(scored, labs, strict=True) if lab is not None]
            labs = [lab for lab in labs if lab is not None]
        right = _present(list(compress(scored, labs)))
        other = _present(list(compress(scored, map(not_, labs))))
        return Ranked.of_scores(other, right), len(labs), sum(map(bool, labs)), _present(unlabelled)

    learn_ids, test_ids = _learn_split(calib, opts.seed)
    learn_at, test_at = labelled_at(learn_ids), labelled_at(test_ids)
    hold_at = labelled_at(hold)
    in_labels = set(learn_at[0]) | set(test_at[0]) | set(hold_at[0])
    no_label = [i for i in range(len(inputs)) if i not in in_labels]  # inputs with no label line

    review = th.review[0] if th.review else None  # the paired review thresholder (the first, if several)
    review_cmp = str(review.config.get("comparator")) if review else ""
    review_now: dict[str, float] = dict(review.config.get("thresholds") or {}) if review else {}
    follows = opts.follow_review and review is not None
    total = len(inputs)
    concepts: dict[str, dict[str, Any]] = {}
    proposed: dict[str, float] = {}
    for c in current:
        learning, n_learn, pos_learn, learn_unlabelled = points(c, learn_at)
        testing, n_test, pos_test, test_unlabelled = points(c, test_at)
        ranked = Ranked.pooled(learning, testing)  # every labelled input used to choose
        labelled, positives, calib_unlabelled = n_learn + n_test, pos_learn + pos_test, learn_unlabelled + test_unlabelled
        held, _, _, hold_unlabelled = points(c, hold_at)
        choice = certify(learning, testing, comparator, opts.target, opts.confidence, opts.step, opts.min_support)
        new = choice.threshold if choice.threshold is not None else current[c]
        if choice.threshold is not None and f32(new) != f32(current[c]):
            proposed[c] = new
        note = _note(c, choice, opts, positives)
        # automation / review load: the share of ALL recorded inputs whose score passes the
        # accepting (SUCCESS) and the review (PENDING) thresholder, before and after
        col = cols[c]
        unlabelled = _present(list(map(col.__getitem__, no_label))) + calib_unlabelled + hold_unlabelled
        everyone = Ranked.pooled(ranked, held, Ranked.of_scores(unlabelled))
        rev_before = review_now.get(c)
        rev_after = new if (follows and rev_before is not None) else rev_before
        row: dict[str, Any] = {
            "current": current[c],
            "proposed": new,
            "status": choice.reason,
            "changed": c in proposed,
            "labelled": labelled,
            "positives": positives,
            "tested_thresholds": choice.tested,
            "certificate": _certificate(choice),
            "precision_current": _precision(ranked, comparator, current[c], opts.confidence),
            "precision_proposed": _precision(ranked, comparator, new, opts.confidence),
            "automation_before": _share(everyone.passing(comparator, current[c])[0], total),
            "automation_after": _share(everyone.passing(comparator, new)[0], total),
            "review_before": _share(everyone.passing(review_cmp, rev_before)[0], total) if rev_before is not None else 0.0,
            "review_after": _share(everyone.passing(review_cmp, rev_after)[0], total) if rev_after is not None else 0.0,
        }
        if hold:
            row["holdout"] = _precision(held, comparator, new, opts.confidence)
        if note:
            row["note"] = note
        if curves:
            row["curve"] = _curve(everyone, ranked, comparator, total, opts.step)
        concepts[c] = row
    review_ids = [n.id for n in th.review] if opts.follow_review else []
    changes = {acc.id: dict(proposed)}
    for n in th.review:
        if n.id in review_ids:
            changes[n.id] = {c: v for c, v in proposed.items() if c in (n.config.get("thresholds") or {})}
    models = {n.id: n.model.id for n in th.nodes}
    return {
        "format_version": FORMAT_VERSION,
        "app": state.app.id,
        "workflow": th.workflow.id,
        "target_precision": opts.target,
        "confidence": opts.confidence,
        "absent": opts.absent,
        "inputs": total,
        "labelled_inputs": len(calib),
        "holdout_inputs": len(hold),
        "thresholder": {"node": acc.id, "model": acc.model.id, "comparator": comparator},
        "review_thresholders": [{"node": n.id, "model": n.model.id, "follows": n.id in review_ids} for n in th.review],
        "concepts": concepts,
        "changes": [
            {"model": models[nid], "concept": c, "from": _current_of(th, nid, c), "to": v}
            for nid, cs in changes.items()
            for c, v in cs.items()
        ],
    }


def _present(scores: list[float | None]) -> list[float]:
    """The scores that are there (None: the input has no score for the concept)."""
    if None not in scores:
        return cast(list[float], scores)
    return list(filter(partial(is_not, None), scores))  # type: ignore[arg-type]


def _share(n: int, total: int) -> float:
    return round(n / total, 6) if total else 0.0


def _current_of(th: Thresholders, node_id: str, concept: str) -> float:
    node = next(n for n in th.nodes if n.id == node_id)
    return node.config["thresholds"][concept]


# --- text ---------------------------------------------------------------------------------------------


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:.1f}%"


def _budget(level: float) -> str:
    return f"{level * 100:.3g}%"


def _how(cert: dict[str, Any]) -> str:
    """Which test certified a concept's threshold, in words."""
    evidence = (
        f"{cert['correct']} of {cert['support']} testing labels right, precision at least "
        f"{cert['lower'] * 100:.1f}% (error budget {_budget(cert['level'])})"
    )
    if cert["kind"] == "top-inputs":
        return (
            f"{cert['threshold']:g} by one test of the {cert['support']} highest-scored testing labels: {evidence}; "
            "too few labels near the top for a chain of tests"
        )
    starts = [p for p in cert["positions"] if p["kind"] == "chain"]
    where = " and ".join(f"{p['threshold']:g} ({_budget(p['level'])})" for p in starts)
    shot = [p for p in cert["positions"] if p["kind"] == "top-inputs"]
    also = f", besides one test of the {shot[0]['inputs']} top-scored ({_budget(shot[0]['level'])})" if shot else ""
    return (
        f"{cert['threshold']:g}: {evidence}; the tests went down the grid from {where}{also}, "
        "each passing threshold handing its budget to the next"
    )


def render_text(report: dict[str, Any]) -> str:
    r = report
    lines = [
        f"Tuned thresholder {r['thresholder']['model']} ({r['thresholder']['comparator']}) of workflow "
        f"{r['workflow']}, app {r['app']}: target precision {r['target_precision']:g} at "
        f"{r['confidence'] * 100:g}% confidence",
        f"{r['inputs']} input(s) with predictions, {r['labelled_inputs']} labelled used to choose"
        + (f", {r['holdout_inputs']} held out" if r["holdout_inputs"] else "")
        + f"; absent concepts read as {'false' if r['absent'] == 'negative' else 'unlabelled'}.",
        "",
    ]
    width = max([len("concept")] + [len(c) for c in r["concepts"]])
    head = (
        f"  {'concept':<{width}}  {'current':>7}  {'proposed':>8}  {'precision [interval]':>26}  {'support':>9}  "
        f"{'automation':>15}  {'review load':>15}" + ("  holdout" if r["holdout_inputs"] else "")
    )
    lines.append(head)
    for c, row in r["concepts"].items():
        p = row["precision_proposed"]
        prec = "-" if p["precision"] is None else f"{_pct(p['precision'])} [{_pct(p['lower'])}, {_pct(p['upper'])}]"
        mark = "" if row["changed"] else " ="
        line = (
            f"  {c:<{width}}  {row['current']:>7g}  {str(format(row['proposed'], 'g')) + mark:>8}  {prec:>26}  "
            f"{str(p['correct']) + '/' + str(p['accepted']):>9}  "
            f"{_pct(row['automation_before']) + ' -> ' + _pct(row['automation_after']):>15}  "
            f"{_pct(row['review_before']) + ' -> ' + _pct(row['review_after']):>15}"
        )
        if "holdout" in row:
            h = row["holdout"]
            line += f"  {_pct(h['precision'])} ({h['correct']}/{h['accepted']})"
        lines.append(line)
    lines.append("")
    lines.append(
        "precision: of the labelled inputs the proposed threshold accepts, the share labelled right "
        f"(one-sided {r['confidence'] * 100:g}% Clopper-Pearson bounds); support: right/accepted."
    )
    if any(row["certificate"]["threshold"] is not None for row in r["concepts"].values()):
        lines.append(
            f"How each threshold was certified (Learn-then-Test, docs/tune.md): a random {LEARN_SHARE:.0%} of the "
            f"labels used to choose picked where to test, the other {1 - LEARN_SHARE:.0%} tested; per concept, the "
            "chance that the certified threshold's true precision is below the target is at most "
            f"{(1 - r['confidence']) * 100:g}%."
        )
    for c, row in r["concepts"].items():
        if row["certificate"]["threshold"] is not None:
            lines.append(f"  {c}: {_how(row['certificate'])}")
    for _c, row in r["concepts"].items():
        if "note" in row:
            lines.append(f"note: {row['note']}")
    if r["changes"]:
        lines.append("")
        lines.append(
            "Changes: " + ", ".join(f"{ch['model']}.{ch['concept']} {ch['from']:g} -> {ch['to']:g}" for ch in r["changes"])
        )
    else:
        lines.append("No threshold changes.")
    return "\n".join(lines) + "\n"
