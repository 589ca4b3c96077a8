"""Workflow operators with their real semantics, and the workflow runner. Pure: no I/O, no API.

The sandbox (PostWorkflowResults, PostInputs on an app with a default workflow) and `reconciler
simulate` both call `run_workflow` with the same inputs, so they cannot disagree.

Concepts flowing between nodes are `{ConceptRef: score}`; `ConceptRef(id)` (no app) is a concept
of this app, `ConceptRef(id, "clarifai", "main")` one of clarifai/main.

- Nodes run in dependency order. A node's input is the union of the outputs of the nodes it lists
  in `inputs`; a concept output by several of them keeps its highest score. An operator with no
  input node receives no concepts.
- Models that cannot run here (everything but the three operators below: clarifai/main's models,
  embedding-classifier, ...) output exactly what `recorded(node)` returns, recorded predictions,
  whatever their inputs; nothing recorded means no concepts.
- concept-synonym-mapper: follows the app's concept relations (only those of its
  `knowledge_graph_id` when that is set; "" = every relation of the app). A relation gives
  "implies" edges: synonym both ways; `A hyponym B` ("A is a kind of B") A -> B; `A hypernym B`
  ("A is a parent of B") B -> A. So a prediction of a concept also predicts its synonyms and every
  more general concept, never a more specific one. The closure is followed transitively. The output
  is every concept OF THIS APP reached, with the input's score (highest if reached several ways). A
  concept that is already an app concept passes through unchanged (it reaches itself); a
  concept of another app with no path to an app concept is dropped.
- concept-thresholder: a concept passes when `score <comparator> threshold` for its id's threshold
  (both compared as float32, as the API stores them). A concept with NO threshold does not pass
  (the safe choice: an unlisted concept is never auto-written). CONCEPT_THRESHOLD_NOT_SET is
  read as GREATER_THAN, the API's default.
- random-sample: passes every incoming concept on for a `keep_fraction` share of the inputs,
  nothing for the others (Clarifai's Random Sample: "if keep_fraction > rand() then output this
  input", each input on its own; Clarifai/docs docs/portal-guide/model/agent-system-operators/
  filter.md). The draw here is not `rand()` but a hash of the node's model id and the input's key
  (`sample_draw`): uniform on [0, 1), independent of the scores, and the same every time, so the
  sandbox and `simulate` pick the same inputs and a re-run picks them again.
- task ranges (`TASK_RANGES`, no Clarifai model type: how a task's auto-annotation is run, see
  `taskflow`): passes the incoming concepts whose score lies in one of the node's ranges for that
  concept (`state.ThresholdRange.holds`, as float32).
- annotation-writer: writes the incoming concepts that are concepts of this app (others are
  dropped) as ONE annotation per input and writer, with the writer's `annotation_status`, as
  `annotation_user_id` (default: the app's owner) and `task_id`; concept values are the incoming
  scores. No app concept in, no annotation. Its output is what it wrote.
"""

from __future__ import annotations

import functools
import graphlib
import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.core.modeltypes import MAPPER, RANDOM_SAMPLE, THRESHOLDER, WRITER, canonical_type, f32
from reconciler.core.state import ConceptRef, ConceptRelation, ModelRef

Scores = dict[ConceptRef, float]

#: statuses that send an annotation to a human (the "review load")
REVIEW_STATUSES = frozenset({"PENDING", "AWAITING_REVIEW", "AWAITING_CONSENSUS_REVIEW"})

_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "GREATER_THAN": lambda v, t: v > t,
    "GREATER_THAN_OR_EQUAL": lambda v, t: v >= t,
    "LESS_THAN": lambda v, t: v < t,
    "LESS_THAN_OR_EQUAL": lambda v, t: v <= t,
    "EQUAL": lambda v, t: v == t,
    "CONCEPT_THRESHOLD_NOT_SET": lambda v, t: v > t,
}


@dataclass(frozen=True)
class RunNode:
    """One workflow node, resolved: what it runs and its canonical config (`modeltypes`)."""

    id: str
    model: ModelRef  # this app's model: user_id/app_id None
    type: str
    config: Mapping[str, Any] = field(default_factory=dict)
    inputs: tuple[str, ...] = ()
    version_id: str = ""
    suppress_output: bool = False


@dataclass(frozen=True)
class AppView:
    """What the operators need to know about the app."""

    owner: str
    concepts: Mapping[str, str]  # concept id -> name
    relations: tuple[ConceptRelation, ...] = ()


@dataclass(frozen=True)
class WrittenAnnotation:
    node_id: str
    model_id: str
    version_id: str
    status: str  # annotation status name, e.g. "SUCCESS"
    user_id: str
    task_id: str | None
    concepts: tuple[tuple[str, str, float], ...]  # (id, name, value)


@dataclass(frozen=True)
class NodeOutput:
    node: RunNode
    concepts: Scores
    annotation: WrittenAnnotation | None = None


# --- the three operators ---------------------------------------------------------------------------


def _norm(ref: ConceptRef, app: AppView) -> ConceptRef:
    if ref.app_id == "main" and not ref.user_id:  # the docs' `{app_id: main}` means clarifai/main
        return ConceptRef(ref.id, "clarifai", "main")
    return ref


def implies_edges(relations: Iterable[ConceptRelation], knowledge_graph_id: str = "") -> dict[ConceptRef, set[ConceptRef]]:
    """concept -> concepts a prediction of it also predicts (see the module docstring)."""
    edges: dict[ConceptRef, set[ConceptRef]] = {}
    for r in relations:
        if knowledge_graph_id and r.knowledge_graph_id != knowledge_graph_id:
            continue
        s = ConceptRef(r.subject)
        o = r.object if r.object.external else ConceptRef(r.object.id)
        if o.app_id == "main" and not o.user_id:
            o = ConceptRef(o.id, "clarifai", "main")
        if r.predicate == "synonym":
            pairs = [(s, o), (o, s)]
        elif r.predicate == "hyponym":
            pairs = [(s, o)]
        elif r.predicate == "hypernym":
            pairs = [(o, s)]
        else:
            pairs = []
        for a, b in pairs:
            edges.setdefault(a, set()).add(b)
    return edges


@functools.lru_cache(maxsize=16)
def _mapper_table(
    relations: tuple[ConceptRelation, ...], knowledge_graph_id: str, concepts: frozenset[str]
) -> tuple[dict[ConceptRef, set[ConceptRef]], dict[ConceptRef, tuple[ConceptRef, ...]]]:
    """The implies-edges of an app's relations and a memo of each start concept's reach: the reach
    depends only on the relations and the app's concepts, so it is computed once per concept, not
    once per input (simulate and tune run the mapper on every recorded input)."""
    return implies_edges(relations, knowledge_graph_id), {}


def _reach(start: ConceptRef, edges: dict[ConceptRef, set[ConceptRef]], concepts: Iterable[str]) -> tuple[ConceptRef, ...]:
    seen, todo = {start}, [start]
    while todo:
        cur = todo.pop()
        for nxt in sorted(edges.get(cur, ()), key=str):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    known = set(concepts)
    return tuple(sorted((c for c in seen if not c.external and c.id in known), key=lambda c: c.id))


def map_concepts(scores: Scores, app: AppView, knowledge_graph_id: str = "") -> Scores:
    edges, memo = _mapper_table(tuple(app.relations), knowledge_graph_id, frozenset(app.concepts))
    out: Scores = {}
    for ref, value in scores.items():
        start = _norm(ref, app)
        reached = memo.get(start)
        if reached is None:
            reached = memo[start] = _reach(start, edges, app.concepts)
        for c in reached:
            out[c] = max(out.get(c, value), value)
    return out


def passes(value: float, comparator: str, threshold: float) -> bool:
    """`value <comparator> threshold`, both as float32."""
    try:
        op = _COMPARE[comparator]
    except KeyError:
        raise ValueError(f"unknown comparator {comparator!r}") from None
    return op(f32(value), f32(threshold))


def threshold_concepts(scores: Scores, config: Mapping[str, Any]) -> Scores:
    comparator = str(config.get("comparator", "GREATER_THAN"))
    thresholds: Mapping[str, float] = config.get("thresholds") or {}
    return {ref: v for ref, v in scores.items() if ref.id in thresholds and passes(v, comparator, thresholds[ref.id])}


def sample_draw(model_id: str, input_key: str) -> float:
    """A random-sample node's draw for one input: uniform on [0, 1), fixed by the model and input."""
    digest = hashlib.sha256(f"{model_id}\x00{input_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def sample_keeps(node: RunNode, input_key: str) -> bool:
    """Whether a random-sample node passes this input on: ``keep_fraction > draw``."""
    return float(node.config.get("keep_fraction", 0.0)) > sample_draw(node.model.id, input_key)


def write_annotation(node: RunNode, scores: Scores, app: AppView) -> WrittenAnnotation | None:
    concepts = tuple(
        (ref.id, app.concepts[ref.id], v) for ref, v in scores.items() if not ref.external and ref.id in app.concepts
    )
    if not concepts:
        return None
    cfg = node.config
    return WrittenAnnotation(
        node_id=node.id,
        model_id=node.model.id,
        version_id=node.version_id,
        status=str(cfg.get("annotation_status", "SUCCESS")),
        user_id=str(cfg.get("annotation_user_id") or app.owner),
        task_id=cfg.get("task_id") or None,
        concepts=concepts,
    )


#: The type of a node that applies a task's auto-annotation ranges for one status (`taskflow`).
TASK_RANGES = "task-ranges"


def range_concepts(scores: Scores, config: Mapping[str, Any]) -> Scores:
    """The concepts whose score is in one of their ranges (``config["ranges"]``: concept id ->
    [ThresholdRange, ...])."""
    ranges: Mapping[str, Any] = config.get("ranges") or {}
    return {ref: v for ref, v in scores.items() if not ref.external and any(r.holds(f32(v)) for r in ranges.get(ref.id, ()))}


# --- the runner --------------------------------------------------------------------------------------


def run_workflow(
    nodes: Iterable[RunNode], app: AppView, recorded: Callable[[RunNode], Scores | None], input_key: str = ""
) -> list[NodeOutput]:
    """Run every node for one input (`input_key`: its id, what random-sample nodes draw by);
    results in the nodes' declared order."""
    nodes = list(nodes)
    by_id = {n.id: n for n in nodes}
    order = graphlib.TopologicalSorter({n.id: [i for i in n.inputs if i in by_id] for n in nodes}).static_order()
    outputs: dict[str, NodeOutput] = {}
    for nid in order:
        node = by_id[nid]
        incoming: Scores = {}
        for src in node.inputs:
            for ref, v in outputs[src].concepts.items() if src in outputs else ():
                incoming[ref] = max(incoming.get(ref, v), v)
        t = canonical_type(node.type)
        ann = None
        if t == MAPPER:
            got = map_concepts(incoming, app, str(node.config.get("knowledge_graph_id", "") or ""))
        elif t == THRESHOLDER:
            got = threshold_concepts(incoming, node.config)
        elif t == RANDOM_SAMPLE:
            got = incoming if incoming and sample_keeps(node, input_key) else {}
        elif t == TASK_RANGES:
            got = range_concepts(incoming, node.config)
        elif t == WRITER:
            ann = write_annotation(node, incoming, app)
            got = {ConceptRef(cid): v for cid, _name, v in ann.concepts} if ann else {}
        else:
            got = dict(recorded(node) or {})
        outputs[nid] = NodeOutput(node, got, ann)
    return [outputs[n.id] for n in nodes]


def written_annotations(results: Iterable[NodeOutput]) -> list[WrittenAnnotation]:
    return [r.annotation for r in results if r.annotation is not None]
