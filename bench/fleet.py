"""Fleet benchmark (issue 21, item 8): a project of 20 apps (300 concepts, 12 models and 2 workflows
each) applied, planned with no changes, and changed by one threshold, through the CLI against
`reconciler sandbox serve` with 50 ms added latency and a server-side limit of 15 requests/s, all
apps on one credential (so one client-side limit of 15 requests/s, shared).

For each step it prints the wall time, the requests the server saw (its request log), the
ceiling -- the least time those requests can take at the limit, requests / 15 s -- and the share
of the ceiling used (ceiling / wall time; 100 % means the limit was the only thing waited on),
with the 429s the server answered. `--rate-limit 0` runs the same with no limit anywhere, where
the latency and the dependency chains are what is left.

    python bench/fleet.py [--apps 20] [--concepts 300] [--rate-limit 15] [--latency-ms 50]

The arithmetic of a no-op plan: per app GetApp, ListConcepts, ListConceptRelations, ListModels,
ListWorkflows and one ListModelVersions per model (model configuration lives in versions), so
17 requests for 12 models: 340 for 20 apps, which take 340 / 15 = 22.7 s at 15 requests/s however
they are spread. With no limit, the apps are planned at once and it is a few round trips.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

EMBED = "{id: general-image-embedding, user_id: clarifai, app_id: main, version: bb186755eda04f9cbb6fe32e816be104}"


def manifest(app_id: str, n_concepts: int) -> str:
    """One app: `n_concepts` concepts, 12 models (a mapper, 4 + 4 thresholders of 50 concepts
    each, 3 writers; none trainable) and 2 workflows."""
    out = ["version: 1", "app:", f"  id: {app_id}", "  description: fleet app", "  default_workflow: wf-0", "concepts:"]
    out += [f"  - id: c{i}" for i in range(n_concepts)]
    out += ["models:", "  - {id: map, type: concept-synonym-mapper, knowledge_graph_id: ''}"]
    for i in range(8):
        comparator = "GREATER_THAN" if i < 4 else "LESS_THAN"
        out += [f"  - id: th-{i}", "    type: concept-thresholder", f"    comparator: {comparator}", "    thresholds:"]
        out += [f"      c{(i * 37 + j) % n_concepts}: 0.{50 + j % 40}" for j in range(50)]
    for i, status in enumerate(("SUCCESS", "PENDING", "SUCCESS")):
        out.append(f"  - {{id: wr-{i}, type: annotation-writer, annotation_status: {status}}}")
    out.append("workflows:")
    for w in range(2):
        out += [f"  - id: wf-{w}", "    nodes:", f"      - {{id: embed, model: {EMBED}}}", "      - {id: map, model: map, inputs: [embed]}"]
        for k in range(4):
            t = w * 4 + k
            out += [f"      - {{id: th{k}, model: th-{t}, inputs: [map]}}", f"      - {{id: wr{k}, model: wr-{k % 3}, inputs: [th{k}]}}"]
    return "\n".join(out) + "\n"


def write_project(root: Path, n_apps: int, n_concepts: int) -> None:
    lines = ["version: 1", "apps:"]
    for i in range(n_apps):
        name = f"fleet-{i:02d}"
        (root / "apps" / name).mkdir(parents=True)
        (root / "apps" / name / "manifest.yaml").write_text(manifest(name, n_concepts))
        lines += [f"  - name: {name}", f"    manifest: apps/{name}/manifest.yaml"]
    (root / "reconciler.yaml").write_text("\n".join(lines) + "\n")


def admin(url: str, path: str, method: str = "GET") -> dict:
    req = urllib.request.Request(url + path, method=method, data=b"{}" if method == "POST" else None)
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--apps", type=int, default=20)
    ap.add_argument("--concepts", type=int, default=300)
    ap.add_argument("--rate-limit", type=float, default=15.0, help="requests/s, server and client (0 = off)")
    ap.add_argument("--latency-ms", type=float, default=50.0)
    ap.add_argument("--parallel", type=int, default=20)
    args = ap.parse_args()

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "fleet"
        write_project(root, args.apps, args.concepts)
        server = subprocess.Popen(
            [sys.executable, "-m", "reconciler", "sandbox", "serve", "--port", "0", "--db", str(Path(tmp) / "fleet.sqlite"),
             "--latency-ms", str(args.latency_ms), "--rate-limit", str(args.rate_limit)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        try:
            url = ""
            while not url:
                line = server.stdout.readline() if server.stdout else ""
                if not line:
                    raise SystemExit("the sandbox did not start")
                if " on http://" in line:
                    url = line.split(" on ", 1)[1].strip()
            env = {**os.environ, "CLARIFAI_API_BASE": url, "CLARIFAI_PAT": "sandbox-key", "CLARIFAI_USER_ID": "sandbox"}
            env.pop("RECONCILER_PROJECT", None)

            def step(label: str, *argv: str, ok: tuple[int, ...] = (0,)) -> None:
                admin(url, "/_sandbox/reset-log", "POST")
                t0 = time.perf_counter()
                done = subprocess.run(
                    [sys.executable, "-m", "reconciler", *argv, "--parallel", str(args.parallel), "--rate-limit", str(args.rate_limit)],
                    cwd=root, env=env, capture_output=True, text=True,
                )
                wall = time.perf_counter() - t0
                if done.returncode not in ok:
                    raise SystemExit(f"{label}: exit {done.returncode}\n{done.stderr[-2000:]}")
                log = admin(url, "/_sandbox/log")["requests"]
                n = len(log)
                throttled = sum(1 for e in log if e["status"] == 429)
                ceiling = n / args.rate_limit if args.rate_limit else 0.0
                share = f"{100 * ceiling / wall:.0f} %" if args.rate_limit else "-"
                rows.append((label, n, throttled, f"{ceiling:.1f}" if args.rate_limit else "-", f"{wall:.1f}", share))

            step("fresh apply of every app", "apply", "--auto-approve")
            step("no-op plan of every app", "plan", "--detailed-exitcode")
            first = root / "apps" / "fleet-00" / "manifest.yaml"
            first.write_text(first.read_text().replace("c0: 0.50", "c0: 0.42", 1))
            step("one threshold changed, apply", "apply", "--auto-approve")
            step("no-op plan of one app (--app)", "plan", "--app", "fleet-00", "--detailed-exitcode")
        finally:
            server.terminate()
            server.wait(timeout=10)

    limit = f"{args.rate_limit:g} requests/s (server and client, one credential)" if args.rate_limit else "no rate limit"
    print(f"### Fleet: {args.apps} apps x ({args.concepts} concepts, 12 models, 2 workflows), "
          f"{args.latency_ms:g} ms latency, {limit}, --parallel {args.parallel}\n")
    print("| step | requests | 429s | ceiling s | wall s | share of ceiling |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print("| " + " | ".join(str(x) for x in r) + " |")
    print("\nWall time includes starting the CLI (about 0.5 s) and loading the manifests.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
