"""Synthetic recorded predictions and labels with KNOWN calibration, for the tune tests and the
benchmark. Each (input, concept): the concept is present with probability `prevalence`; its score
is drawn from Beta(8, 2) when present and Beta(2, 8) when absent. So the true precision of
"score > t" is known exactly (`true_precision`), and so is the automation (`true_automation`)."""

from __future__ import annotations

import json
import random
from pathlib import Path

from reconciler.annotate.stats import betainc

A1, B1, A0, B0 = 8.0, 2.0, 2.0, 8.0


def true_automation(t: float, prevalence: float) -> float:
    return prevalence * (1 - betainc(A1, B1, t)) + (1 - prevalence) * (1 - betainc(A0, B0, t))


def true_precision(t: float, prevalence: float) -> float:
    p1 = prevalence * (1 - betainc(A1, B1, t))
    p0 = (1 - prevalence) * (1 - betainc(A0, B0, t))
    return p1 / (p1 + p0) if p1 + p0 > 0 else 1.0


def sample(rng: random.Random, n: int, prevalence: float) -> list[tuple[float, bool]]:
    out = []
    for _ in range(n):
        y = rng.random() < prevalence
        out.append((rng.betavariate(A1, B1) if y else rng.betavariate(A0, B0), y))
    return out


def write_files(dirpath: Path, concepts: list[str], n_inputs: int, n_labelled: int, *, seed: int = 0,
                model: str = "park-activity-classifier", prevalence: float = 0.3) -> tuple[Path, Path]:
    """predictions.jsonl (every input) and labels.jsonl (the first `n_labelled`, every concept)."""
    rng = random.Random(seed)
    preds, labels = dirpath / "predictions.jsonl", dirpath / "labels.jsonl"
    with open(preds, "w") as pf, open(labels, "w") as lf:
        for i in range(n_inputs):
            iid = f"in-{i:06d}"
            drawn = {c: sample(rng, 1, prevalence)[0] for c in concepts}
            pf.write(json.dumps({"input": iid, "model": model,
                                 "concepts": {c: round(s, 6) for c, (s, _y) in drawn.items()}}) + "\n")
            if i < n_labelled:
                lf.write(json.dumps({"input": iid, "concepts": {c: y for c, (_s, y) in drawn.items()}}) + "\n")
    return preds, labels
