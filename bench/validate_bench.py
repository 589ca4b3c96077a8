"""Benchmark: time to validate a generated manifest of 10,000 concepts and 500 models.

Usage: python bench/validate_bench.py [--concepts N] [--models M] [--profile]
Prints the manifest size; the best of 3 wall-clock times for `manifest.load_text` (YAML parse,
JSON Schema, semantic checks, State); the schema stage alone, the fast check (`schemacheck`)
against jsonschema on the same data; and the whole process, `python -m reconciler validate FILE`
(interpreter start and imports included). Target (issue 12): whole process under 0.5 s.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import jsonschema

from reconciler.manifest import load as manifest
from reconciler.manifest import schemacheck
from reconciler.manifest.yamlload import load_yaml


def generate(n_concepts: int, n_models: int) -> str:
    lines = ["version: 1", "app:", "  id: bench-app", "  default_workflow: wf-0", "concepts:"]
    for i in range(n_concepts):
        lines += [f"  - id: concept-{i}", f"    name: Concept {i}", f"    description: generated concept {i}"]
    lines.append("models:")
    kinds = ("concept-thresholder", "annotation-writer", "concept-synonym-mapper", "embedding-classifier",
             "visual-classifier")
    for i in range(n_models):
        kind = kinds[i % len(kinds)]
        lines += [f"  - id: model-{i}", f"    type: {kind}", f"    description: generated model {i}"]
        picked = [f"concept-{(i * 7 + k) % n_concepts}" for k in range(10)]
        if kind == "concept-thresholder":
            lines += ["    comparator: GREATER_THAN", "    thresholds:"]
            lines += [f"      {c}: 0.{(i + k) % 9 + 1}" for k, c in enumerate(picked)]
        elif kind == "annotation-writer":
            lines.append("    annotation_status: PENDING")
        elif kind == "concept-synonym-mapper":
            lines.append('    knowledge_graph_id: ""')
        elif kind == "embedding-classifier":
            lines.append(f"    concepts: [{', '.join(picked)}]")
        else:
            lines += ["    output_info:", "      params: {max_concepts: 20, min_value: 0.5}"]
    lines.append("workflows:")
    for w in range(max(1, n_models // 10)):
        lines += [f"  - id: wf-{w}", "    nodes:"]
        for k in range(10):
            lines += [f"      - id: node-{k}", f"        model: model-{w * 10 + k}"]
            if k:
                lines.append(f"        inputs: [node-{k - 1}]")
    return "\n".join(lines) + "\n"


def _best(fn: Callable[[], Any], n: int = 3) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--concepts", type=int, default=10_000)
    ap.add_argument("--models", type=int, default=500)
    ap.add_argument("--profile", action="store_true", help="print the top functions by cumulative time")
    args = ap.parse_args()
    text = generate(args.concepts, args.models)
    manifest.load_text("app: {id: warm-up}\n", "warmup.yaml")  # build the validator once, as a CLI run does
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        state = manifest.load_text(text, "bench.yaml")
        times.append(time.perf_counter() - t0)
    print(f"manifest: {len(text) / 1024:.0f} KiB, {text.count(chr(10))} lines, "
          f"{len(state.concepts)} concepts, {len(state.models)} models, {len(state.workflows)} workflows")
    print(f"validate in process: best {min(times):.3f} s, worst {max(times):.3f} s")
    data = load_yaml(text.encode(), "bench.yaml").data
    inlined = manifest._inline(manifest.schema(), manifest.schema()["$defs"])
    fast = schemacheck.compile_schema(inlined)
    slow = jsonschema.Draft202012Validator(inlined)
    print(f"schema stage: fast check {_best(lambda: fast(data)) * 1000:.0f} ms, "
          f"jsonschema {_best(lambda: slow.is_valid(data)) * 1000:.0f} ms (same answer: {fast(data) == slow.is_valid(data)})")
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(text)
    try:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in [os.getcwd(), os.environ.get("PYTHONPATH")] if p)}
        whole = _best(lambda: subprocess.run([sys.executable, "-m", "reconciler", "validate", f.name], env=env,
                                             check=True, capture_output=True), n=5)
    finally:
        os.unlink(f.name)
    print(f"whole process (python -m reconciler validate): best of 5 {whole:.3f} s (target < 0.5 s)")
    if args.profile:
        prof = cProfile.Profile()
        prof.runcall(manifest.load_text, text, "bench.yaml")
        pstats.Stats(prof).sort_stats("cumulative").print_stats(25)


if __name__ == "__main__":
    main()
