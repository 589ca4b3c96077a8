"""Benchmark: plan/apply requests and wall time against the sandbox served over loopback HTTP with
injected latency (default 50 ms a request), for a generated app of N concepts, M models and W
workflows (default 5,000 / 100 / 20).

Prints a Markdown table: for a fresh apply, a no-op plan and a one-threshold change, the requests
sent (reads / writes, counted in the sandbox's request log), the minimum possible, and wall time.

    python bench/plan_bench.py [--concepts 5000] [--models 100] [--workflows 20] [--latency-ms 50]
                               [--rate-limit 0]

The minimum for a fresh apply, with batching: 1 PostApps + ceil(N/128) PostConcepts + one
PostModels per model (the API answers PostModels with a single model, so models cannot share a
call) + 1 PostWorkflows (it takes a list) + 1 PatchApps for the default workflow. The floor for a
no-op plan: GetApp + every page of ListConcepts, the relations, ListModels and ListWorkflows + one
ListModelVersions per managed model (model configuration lives in versions, which ListModels does
not return in full). A listing of `count` items costs count // 1000 + 1 pages: the last page is
short, or empty when the count is a multiple of 1000 (nothing else proves the end).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from e2e import labelled_before_training  # noqa: E402

from reconciler.api.client import Client
from reconciler.apply.scheduler import apply_plan
from reconciler.core import modeltypes
from reconciler.manifest.load import load_text  # noqa: E402
from reconciler.planning.pipeline import plan_app  # noqa: E402
from reconciler.sandbox.app import DEFAULT_KEY, DEFAULT_USER, Sandbox  # noqa: E402
from reconciler.sandbox.server import running_server  # noqa: E402


def generate(n_concepts: int, n_models: int, n_workflows: int) -> str:
    lines = ["app:", "  id: bench-app", "  default_workflow: wf-0", "concepts:"]
    lines += [f"  - id: c{i}" for i in range(n_concepts)]
    lines.append("models:")
    pairs = n_models // 2
    for i in range(pairs):
        lines += [f"  - id: th-{i}", "    type: concept-thresholder", "    comparator: GREATER_THAN",
                  "    thresholds:"]
        lines += [f"      c{(i * 10 + j) % n_concepts}: 0.{50 + j}" for j in range(10)]
        lines += [f"  - id: wr-{i}", "    type: annotation-writer", "    annotation_status: SUCCESS"]
    lines.append("workflows:")
    for w in range(n_workflows):
        lines += [f"  - id: wf-{w}", "    nodes:",
                  "      - id: embed",
                  "        model: {id: general-image-embedding, user_id: clarifai, app_id: main, "
                  "version: bb186755eda04f9cbb6fe32e816be104}"]
        for k in range(5):
            i = (w * 5 + k) % pairs
            lines += [f"      - id: th{k}", f"        model: th-{i}", "        inputs: [embed]",
                      f"      - id: wr{k}", f"        model: wr-{i}", f"        inputs: [th{k}]"]
    return "\n".join(lines) + "\n"


def count(sandbox: Sandbox) -> tuple[int, int]:
    log = list(sandbox.request_log)
    reads = sum(1 for e in log if e.method == "GET")
    return reads, len(log) - reads


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--concepts", type=int, default=5000)
    ap.add_argument("--models", type=int, default=100)
    ap.add_argument("--workflows", type=int, default=20)
    ap.add_argument("--latency-ms", type=float, default=50.0)
    ap.add_argument("--rate-limit", type=float, default=0.0, help="client-side requests/s (0 = off)")
    args = ap.parse_args()

    desired = load_text(generate(args.concepts, args.models, args.workflows), "bench.yaml")
    desired = dataclasses.replace(desired, user_id=DEFAULT_USER)
    n_models = len(desired.models)
    # PostModels per model, plus PostModelVersions (the version that trains) per trainable model
    n_trainable = sum(1 for m in desired.models if m.type in modeltypes.TRAINABLE_TYPES)
    min_fresh = 1 + math.ceil(args.concepts / 128) + n_models + n_trainable + 1 + 1
    # every listing ends on a short page: count // 1000 + 1 pages (an empty last page when the count
    # is a multiple of 1000); relations: one synonym-free app here, so one (empty) page
    min_noop = (1 + args.concepts // 1000 + 1 + 1 + n_models // 1000 + 1 + args.workflows // 1000 + 1
                + n_models)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        sandbox = Sandbox(str(Path(tmp) / "bench.sqlite"), latency_ms=args.latency_ms, training_delay_s=0)
        # the app's inputs are labelled before the classifier trains, as on the real API
        with running_server(labelled_before_training(sandbox)) as url:  # type: ignore[arg-type]
            client = Client(url, DEFAULT_KEY, user_id=DEFAULT_USER, rate_limit=args.rate_limit)

            def plan_once():
                return plan_app(client, state)

            def measure(label: str, do_apply: bool, minimum: str) -> None:
                sandbox.request_log.clear()
                t0 = time.perf_counter()
                plan = plan_once()
                t_plan = time.perf_counter() - t0
                p_reads, p_writes = count(sandbox)
                if do_apply and not plan.empty:
                    apply_plan(client, plan, poll_s=0.05)
                wall = time.perf_counter() - t0
                reads, writes = count(sandbox)
                rows.append((label, len(plan.actions), reads, writes, reads + writes, minimum,
                             f"{t_plan:.2f}", f"{wall:.2f}"))

            state = desired
            measure("fresh apply (plan + apply)", True, f"{min_fresh} writes")
            measure("no-op plan", False, f"{min_noop} reads")
            th = next(m for m in desired.models if m.type == "concept-thresholder")
            first = next(iter(th.config["thresholds"]))
            changed = dataclasses.replace(th, config={**th.config, "thresholds": {**th.config["thresholds"], first: 0.42}})
            state = dataclasses.replace(desired, models=tuple(changed if m.id == th.id else m for m in desired.models))
            uses = sum(1 for w in desired.workflows if any(n.model.id == th.id for n in w.nodes))
            measure("one threshold change (plan + apply)", True, f"{1 + uses} writes")
            state = desired
            measure("revert that threshold (plan + apply)", True, f"{uses} writes")

    print(f"### plan/apply: {args.concepts} concepts, {n_models} models, {args.workflows} workflows, "
          f"{args.latency_ms:g} ms latency, client rate limit {args.rate_limit or 'off'}\n")
    print("| scenario | actions | reads | writes | requests | minimum | plan s | total s |")
    print("|---|---:|---:|---:|---:|---|---:|---:|")
    for r in rows:
        print("| " + " | ".join(str(x) for x in r) + " |")
    print(f"\nSerial wall time of the no-op plan's requests at this latency would be about "
          f"{rows[1][4] * args.latency_ms / 1000:.1f} s; reads are overlapped on a thread pool.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
