"""Benchmark: `reconciler tune` on N labelled inputs x 50 concepts (default N = 100,000), and how
its time grows with N. Prints numbers; asserts nothing (tests never assert wall-clock times).

    PYTHONPATH=. python bench/bench_tune.py            # 25k, 50k, 100k
    PYTHONPATH=. python bench/bench_tune.py 100000     # one size

The workflow is the park example's shape (classifier -> mapper -> GREATER_THAN / LESS_THAN ->
SUCCESS / PENDING writers) with 50 concepts; predictions and labels come from `tests/tune_synth`
(known calibration). Reading the JSONL files is timed apart from `tune` itself; times are CPU seconds of this process
(`time.process_time`), so other work on the machine does not inflate them.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from tune_synth import write_files  # noqa: E402

from reconciler.annotate import labels as L
from reconciler.annotate import predictions as P
from reconciler.annotate.tune import Options, tune
from reconciler.manifest.load import load_text  # noqa: E402

N_CONCEPTS = 50


def manifest(concepts: list[str]) -> str:
    th = "\n".join(f"      {c}: 0.9" for c in concepts)
    return f"""version: 1
app: {{id: bench-tune, default_workflow: wf}}
concepts:
{chr(10).join(f"  - id: {c}" for c in concepts)}
models:
  - id: clf
    type: embedding-classifier
    concepts: [{", ".join(concepts)}]
    base_embed_model: {{id: general-image-embedding, user_id: clarifai, app_id: main,
                        version: bb186755eda04f9cbb6fe32e816be104}}
  - {{id: mapper, type: concept-synonym-mapper, knowledge_graph_id: ""}}
  - id: gt
    type: concept-thresholder
    comparator: GREATER_THAN
    thresholds:
{th}
  - id: lt
    type: concept-thresholder
    comparator: LESS_THAN
    thresholds:
{th}
  - {{id: ok, type: annotation-writer, annotation_status: SUCCESS}}
  - {{id: review, type: annotation-writer, annotation_status: PENDING}}
workflows:
  - id: wf
    nodes:
      - {{id: classify, model: clf}}
      - {{id: map, model: mapper, inputs: [classify]}}
      - {{id: gt, model: gt, inputs: [map]}}
      - {{id: ok, model: ok, inputs: [gt]}}
      - {{id: lt, model: lt, inputs: [map]}}
      - {{id: review, model: review, inputs: [lt]}}
"""


def one(n: int) -> tuple[float, float]:
    concepts = [f"c{i:02d}" for i in range(N_CONCEPTS)]
    state = load_text(manifest(concepts), "bench.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        preds_path, labels_path = write_files(Path(tmp), concepts, n, n, seed=1, model="clf")
        t0 = time.process_time()
        preds, labels = P.load(preds_path), L.load(labels_path)
        t1 = time.process_time()
        report = tune(state, preds, labels, Options(target=0.95))
        t2 = time.process_time()
    certified = sum(r["status"] == "certified" for r in report["concepts"].values())
    print(f"{n:>8} inputs x {N_CONCEPTS} concepts: read {t1 - t0:6.2f} CPU s, tune {t2 - t1:6.2f} CPU s "
          f"({(t2 - t1) / n * 1e6:5.1f} us/input); {certified}/{N_CONCEPTS} concepts certified", flush=True)
    return t1 - t0, t2 - t1


def main(argv: list[str]) -> None:
    sizes = [int(a) for a in argv] or [25_000, 50_000, 100_000]
    times = [one(n) for n in sizes]
    if len(sizes) > 1:
        base_n, (_r, base_t) = sizes[0], times[0]
        for n, (_r, t) in zip(sizes[1:], times[1:]):
            print(f"  x{n / base_n:g} inputs -> x{t / base_t:.2f} tune time (linear would be x{n / base_n:g})")


if __name__ == "__main__":
    main(sys.argv[1:])
