"""`tune` gathers each concept's scores directly when the workflow's shape allows it
(`tune._direct_columns`); these tests hold that path to the general one (the operators run once per
input, as `simulate` runs them): on many random workflows -- mapper chains, knowledge graphs,
clarifai/main models reaching the app through relations, several models merging, thresholds for a
subset of the concepts -- and random predictions and labels (concepts absent from lines, inputs
missing from the labels or from a model's lines, ties with the thresholds), the two give the SAME
scores and the same `--json` report, byte for byte."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
import yaml

from reconciler.annotate import labels as L
from reconciler.annotate import predictions as P
from reconciler.annotate.thresholders import _direct_columns, find_thresholders, score_columns, thresholder_scores
from reconciler.annotate.tune import Options, tune
from reconciler.core.errors import ReconcilerError
from reconciler.core.state import State
from reconciler.manifest.load import load_text

EXTERNAL = {"id": "general-image-recognition", "user_id": "clarifai", "app_id": "main",
            "version": "aa7f35c01e0642fda5cf400f543e7c40"}
EMBED = {"id": "general-image-embedding", "user_id": "clarifai", "app_id": "main",
         "version": "bb186755eda04f9cbb6fe32e816be104"}
AI = [f"ai_{i}" for i in range(4)]


def _manifest(rng: random.Random, upstream_thresholder: bool) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """A random manifest, and per recorded model key the concepts its lines may name."""
    concepts = [f"c{i}" for i in range(rng.randint(2, 7))]
    relations, seen = [], set()
    for _ in range(rng.randint(0, 10)):
        subj = rng.choice(concepts)
        obj: Any = rng.choice(AI) if rng.random() < 0.5 else rng.choice(concepts)
        pred = rng.choice(["synonym", "hyponym", "hypernym"])
        kg = rng.choice(["", "", "kg1"])
        key = (subj, pred, obj, kg)
        if obj not in AI and pred == "hyponym":  # the manifest's normal form: "b hyponym a" is "a hypernym b"
            key = (obj, "hypernym", subj, kg)
        elif obj not in AI and pred == "synonym":
            key = (min(obj, subj), pred, max(obj, subj), kg)
        if obj == subj or key in seen:
            continue
        seen.add(key)
        rel: dict[str, Any] = {"subject": subj, "predicate": pred,
                               "object": {"id": obj, "user_id": "clarifai", "app_id": "main"} if obj in AI else obj}
        if kg:
            rel["knowledge_graph_id"] = kg
        relations.append(rel)

    def thresholds(k_min: int = 1) -> dict[str, float]:
        picked = rng.sample(concepts, rng.randint(k_min, len(concepts)))
        return {c: rng.choice([0.0, 0.1, 0.25, 0.5, 0.55, 0.7, 0.8, 0.9, 0.95, 1.0]) for c in picked}

    models: list[dict[str, Any]] = [
        {"id": "clf", "type": "embedding-classifier", "concepts": concepts, "base_embed_model": EMBED},
        {"id": "clf2", "type": "embedding-classifier", "concepts": concepts, "base_embed_model": EMBED},
        {"id": "map-all", "type": "concept-synonym-mapper", "knowledge_graph_id": ""},
        {"id": "map-kg", "type": "concept-synonym-mapper", "knowledge_graph_id": "kg1"},
        {"id": "gt", "type": "concept-thresholder", "comparator": rng.choice(["GREATER_THAN", "GREATER_THAN_OR_EQUAL"]),
         "thresholds": thresholds()},
        {"id": "lt", "type": "concept-thresholder", "comparator": rng.choice(["LESS_THAN", "LESS_THAN_OR_EQUAL"]),
         "thresholds": thresholds()},
        {"id": "pre", "type": "concept-thresholder", "comparator": "GREATER_THAN", "thresholds": thresholds()},
        {"id": "ok", "type": "annotation-writer", "annotation_status": "SUCCESS"},
        {"id": "review", "type": "annotation-writer", "annotation_status": "PENDING"},
    ]
    nodes: list[dict[str, Any]] = [{"id": "embed", "model": EMBED}]
    sources = ["classify"]
    nodes.append({"id": "classify", "model": "clf", "inputs": ["embed"]})
    recorded = {"clf": concepts + ["not-an-app-concept"]}
    if rng.random() < 0.4:
        nodes.append({"id": "classify2", "model": "clf2", "inputs": ["embed"]})
        sources.append("classify2")
        recorded["clf2"] = concepts
    if rng.random() < 0.6:
        nodes.append({"id": "general", "model": EXTERNAL})
        sources.append("general")
        recorded["clarifai/main/general-image-recognition"] = AI + concepts[:1]
    available = list(sources)
    for i in range(rng.choice([0, 1, 1, 2, 3])):
        mid = f"map{i}"
        ins = rng.sample(available, rng.randint(1, min(2, len(available))))
        if "general" in available and "general" not in ins and rng.random() < 0.5:
            ins.append("general")  # clarifai/main's concepts reach the app only through a mapper
        nodes.append({"id": mid, "model": rng.choice(["map-all", "map-all", "map-kg"]), "inputs": ins})
        available.append(mid)
    if upstream_thresholder:
        nodes.append({"id": "pre", "model": "pre", "inputs": [rng.choice(available)]})
        available.append("pre")
        gt_inputs = ["pre"] + rng.sample(available[:-1], rng.randint(0, 1))
    else:
        gt_inputs = rng.sample(available, rng.randint(1, min(2, len(available))))
        if len(available) > len(sources) and rng.random() < 0.5:
            gt_inputs = [available[-1]] + [i for i in gt_inputs if i != available[-1]][:1]  # the last mapper
    lt_inputs = list(gt_inputs) if rng.random() < 0.8 else [rng.choice(available)]
    nodes += [
        {"id": "gt", "model": "gt", "inputs": gt_inputs},
        {"id": "ok", "model": "ok", "inputs": ["gt"]},
        {"id": "lt", "model": "lt", "inputs": lt_inputs},
        {"id": "review", "model": "review", "inputs": ["lt"]},
    ]
    manifest = {
        "version": 1,
        "app": {"id": "paths", "default_workflow": "wf"},
        "concepts": [{"id": c} for c in concepts],
        "concept_relations": relations,
        "models": models,
        "workflows": [{"id": "wf", "nodes": nodes}],
    }
    return manifest, recorded


def _score(rng: random.Random, shows: bool) -> float:
    # mostly high when the input shows the concept (so that some thresholds certify); a coarse grid,
    # so that scores tie with each other and with the thresholds, and finer values
    if rng.random() < 0.3:
        return rng.choice([0.0, 1.0, 0.5, 0.9, round(rng.random(), 2)])
    x = 0.6 + 0.4 * rng.random() if shows else 0.7 * rng.random()
    return round(x, rng.choice([2, 6]))


def _predictions(rng: random.Random, recorded: dict[str, list[str]], n: int, truth: dict[tuple[int, str], bool]) -> str:
    lines = []
    for model, names in recorded.items():
        aligned = rng.random() < 0.5  # every input, the same concepts in the same order (the transposed case)
        fixed = rng.sample(names, rng.randint(0, len(names)))
        for i in range(n):
            if not aligned and rng.random() < 0.15:
                continue  # no line for this input and model
            picked = fixed if aligned else rng.sample(names, rng.randint(0, len(names)))
            lines.append(json.dumps({"input": f"in-{i:03d}", "model": model,
                                     "concepts": {c: _score(rng, truth.get((i, c), False)) for c in picked}}))
    rng.shuffle(lines)
    return "\n".join(lines) + "\n"


def _labels(rng: random.Random, concepts: list[str], inputs: list[str], truth: dict[tuple[int, str], bool]) -> str:
    out = []
    for iid in rng.sample(inputs, rng.randint(1, len(inputs))):  # some inputs have no label line
        i = int(iid.removeprefix("in-"))
        picked = concepts if rng.random() < 0.5 else rng.sample(concepts, rng.randint(0, len(concepts)))
        out.append(json.dumps({"input": iid, "concepts": {c: truth[(i, c)] for c in picked}}))
    return "\n".join(out) + "\n"


def _options(rng: random.Random) -> Options:
    return Options(
        target=rng.choice([0.5, 0.6, 0.7, 0.8, 0.9]),
        confidence=rng.choice([0.5, 0.8, 0.9, 0.95]),
        min_support=rng.choice([0, 0, 3, 10]),
        holdout=rng.choice([0.0, 0.0, 0.3]),
        seed=rng.randrange(1000),
        step=rng.choice([0.01, 0.05, 0.1]),
        absent=rng.choice(["negative", "unknown"]),
        follow_review=rng.random() < 0.7,
    )


def _case(seed: int, upstream_thresholder: bool = False) -> tuple[State, P.Predictions, L.Labels, Options]:
    rng = random.Random(seed)
    manifest, recorded = _manifest(rng, upstream_thresholder)
    state = load_text(yaml.safe_dump(manifest, sort_keys=False), f"case-{seed}.yaml")
    n, concepts = rng.randint(20, 120), [c.id for c in state.concepts]
    truth = {(i, c): rng.random() < 0.5 for i in range(n) for c in concepts}
    preds = P.parse(_predictions(rng, recorded, n, truth), "p.jsonl")
    labels = L.parse(_labels(rng, concepts, preds.inputs(), truth), "l.jsonl")
    return state, preds, labels, _options(rng)


def _report(state: State, preds: P.Predictions, labels: L.Labels, opts: Options, direct: bool) -> str:
    try:
        return json.dumps(tune(state, preds, labels, opts, curves=True, direct=direct), sort_keys=False)
    except ReconcilerError as err:
        return f"error: {err}"


@pytest.mark.parametrize("seed", range(300))
def test_direct_scores_and_report_equal_the_operator_path(seed: int) -> None:
    state, preds, labels, opts = _case(seed)
    th = find_thresholders(state, None, None)
    concepts = list(th.accepting.config["thresholds"])
    direct = _direct_columns(state, th, preds, preds.inputs(), concepts)
    assert direct is not None  # no thresholder upstream: this shape is the direct path's
    general = score_columns(state, th, preds, concepts, direct=False)
    assert direct == general
    # and the operator path's per-input dicts, read per concept, are those columns
    per_input = thresholder_scores(state, th, preds)
    assert general == {c: [per_input[k].get(c) for k in preds.inputs()] for c in concepts}
    assert _report(state, preds, labels, opts, True) == _report(state, preds, labels, opts, False)


def test_the_random_cases_reach_the_interesting_shapes() -> None:
    """The cases above are not all trivial: scores reach concepts through relations from
    clarifai/main, some concepts have no score on some inputs, and thresholds are certified."""
    through_relations = some_missing = certified = merged = 0
    main_model = "clarifai/main/general-image-recognition"
    for seed in range(300):
        state, preds, labels, opts = _case(seed)
        th = find_thresholders(state, None, None)
        concepts = list(th.accepting.config["thresholds"])
        cols = score_columns(state, th, preds, concepts)
        general = thresholder_scores(state, th, preds)
        # clarifai/main's scores reach the app's concepts through relations: without its lines, they change
        own = P.Predictions(preds.source, [p for p in preds.lines if p.model != main_model])
        through_relations += score_columns(state, th, own, concepts) != {
            c: [col[preds.inputs().index(k)] for k in own.inputs()] for c, col in cols.items()
        }
        some_missing += any(None in col and any(v is not None for v in col) for col in cols.values())
        merged += len(th.accepting.inputs) > 1
        report = tune(state, preds, labels, opts)
        certified += any(r["status"] == "certified" for r in report["concepts"].values())
        assert set(general) == set(preds.inputs())
    assert through_relations >= 20 and some_missing >= 80 and merged >= 100 and certified >= 20


@pytest.mark.parametrize("seed", range(60))
def test_a_thresholder_upstream_takes_the_operator_path(seed: int) -> None:
    """A thresholder before the accepting one passes a concept or not by its score: the direct path
    declines the shape (None) and `tune` runs the operators, giving the operator path's report."""
    state, preds, labels, opts = _case(seed, upstream_thresholder=True)
    th = find_thresholders(state, None, None)
    assert _direct_columns(state, th, preds, preds.inputs(), list(th.accepting.config["thresholds"])) is None
    assert _report(state, preds, labels, opts, True) == _report(state, preds, labels, opts, False)
