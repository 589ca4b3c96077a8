"""Benchmark table (Markdown on stdout): requests, round trips in sequence and wall time of a fresh
apply, a no-op plan and a one-threshold change, for the auto-annotation example and generated apps
(default 1,000 concepts scaled by `manifest_gen.scale`, and 5,000 concepts / 100 models / 20
workflows), beside

(a) the minimum possible requests: the reads a plan needs plus the fewest writes the API allows.
    A listing ends on a page shorter than `per_page` (1000), so it costs count // 1000 + 1 pages:
    the final empty page is unavoidable when the count is a multiple of the page size;
(b) the depth bound: the dependency depth of the scenario in round trips (see `bounds`), which
    times the latency is the floor of any client's wall time; beside it the depth measured (the
    longest chain of requests each sent after the previous one returned, `depth.py`); and
(c) the documented way: the walkthrough's calls issued one by one through clarifai-grpc's JSON
    client (`ClarifaiChannel.get_json_channel`), against the same served sandbox at the same
    injected latency -- PostApps, PostConcepts (a list, 128 a call), one PostConceptRelations per
    relation, one PostModels and one PostModelVersions per model (today's API: PostModels makes
    no version), one PostWorkflows per workflow, PatchApps for the default.
    A no-op "plan" the documented way is reading everything back (GetApp, ListConcepts,
    ListConceptRelations, GetModel + ListModelVersions per model, GetWorkflow per workflow); a
    threshold change is ListWorkflows (to find the users of the model), PostModelVersions, and one
    PatchWorkflows per workflow using the model (the person doing it by hand already knows what
    to change, so no read of the rest of the app is counted for them).

Then the achieved request rate of a fresh apply against a sandbox that throttles at 15 requests/s
(Clarifai's documented default; the client's limiter at its default 15/s too), at 50 and 150 ms
latency: requests / wall time as a share of the 15/s ceiling, and the throttled answers seen.

Then the plan CPU curve: CPU seconds of load + diff + plan (fresh: no live app) at several sizes,
with CPU microseconds per resource, which stays about flat when growth is linear.

    python bench/bench_table.py [--latency-ms 50] [--sizes 1000,5000/100/20] [--rate-latencies 50,150]
                                [--curve 1000,5000,20000]

A size is N (models and workflows scaled) or N/M/W.

Counts come from the sandbox's request log. Nothing here asserts times (benchmarks print numbers).
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
sys.path.insert(0, str(Path(__file__).resolve().parent))  # depth.py
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # manifest_gen.py, e2e.py

from depth import TimingTransport, depth  # noqa: E402
from e2e import labelled_before_training  # noqa: E402
from manifest_gen import generate, scale  # noqa: E402

from reconciler.api.client import Client
from reconciler.apply.scheduler import apply_plan
from reconciler.core import modeltypes
from reconciler.core.state import State  # noqa: E402
from reconciler.manifest.load import load, load_text  # noqa: E402
from reconciler.planning.pipeline import plan_app  # noqa: E402
from reconciler.planning.plan import make_plan
from reconciler.sandbox.app import DEFAULT_KEY, DEFAULT_USER, Sandbox  # noqa: E402
from reconciler.sandbox.server import running_server  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "auto-annotation" / "manifest.yaml"


def _state(text: str | None) -> State:
    s = load(str(EXAMPLE)) if text is None else load_text(text, "bench.yaml")
    return dataclasses.replace(s, user_id=DEFAULT_USER)


def _threshold_change(s: State) -> tuple[State, int]:
    th = next(m for m in s.models if m.type == "concept-thresholder")
    first = next(iter(th.config["thresholds"]))
    new = dataclasses.replace(th, config={**th.config, "thresholds": {**th.config["thresholds"], first: 0.42}})
    uses = sum(1 for w in s.workflows if any(n.model.id == th.id for n in w.nodes))
    return dataclasses.replace(s, models=tuple(new if m.id == th.id else m for m in s.models)), uses


PER_PAGE = 1000


def pages(count: int) -> int:
    """Pages of a listing of `count` items: the last one is short, or empty when count is a multiple."""
    return count // PER_PAGE + 1


def _trainable(s: State) -> int:
    return sum(1 for m in s.models if modeltypes.canonical_type(m.type) in modeltypes.TRAINABLE_TYPES)


def minimums(s: State) -> dict[str, int]:
    n_c = len(s.concepts)
    subjects = len({r.subject for r in s.relations})
    # fresh: one read (GetApp: absent), then PostApps, PostConcepts per 128, PostConceptRelations per
    # subject, PostModels per model (one model a call, and it makes no version), PostModelVersions
    # per model (the version the workflows pin), one PostWorkflows (a list), PatchApps
    fresh = (1 + 1 + math.ceil(n_c / 128) + subjects + 2 * len(s.models) + 1
             + (1 if s.app.default_workflow else 0))
    # no-op: every page of every listing, ListModelVersions per model (configuration lives in versions)
    noop = 1 + pages(n_c) + pages(len(s.relations)) + pages(len(s.models)) + pages(len(s.workflows)) + len(s.models)
    _, uses = _threshold_change(s)
    # a threshold: the no-op reads, then PostModelVersions and one PatchWorkflows per user
    return {"fresh": fresh, "noop": noop, "threshold": noop + 1 + uses}


def bounds(s: State) -> dict[str, int]:
    """Dependency depth in round trips. Reading: GetApp and every listing (concept pages too: their
    number follows from the manifest) at once, then the versions of the models the listing shows:
    2. A fresh apply: the read (1), then app -> concepts and models (PostModels makes a bare model
    and never a version, so it runs alongside the concepts; only a version names them) ->
    relations and the models' versions -> the read that sees trainable versions trained ->
    workflows -> default workflow, each level one round trip with its calls in parallel. The training read is part of
    the bound: the real PostModelVersions answers MODEL_QUEUED_FOR_TRAINING (Clarifai/docs
    code_output_examples/train_model.js) and a workflow may not point at an untrained version, so
    every client reads the version again before creating the workflow. A threshold change: the
    read (2), the new version, the workflow repoints."""
    levels = [True, bool(s.concepts or s.models), bool(s.relations or s.models), _trainable(s) > 0,
              bool(s.workflows), bool(s.app.default_workflow)]
    return {"fresh": 1 + sum(levels), "noop": 2, "threshold": 2 + 1 + 1}


def ours(url: str, sandbox: Sandbox, s: State, rate_limit: float = 0) -> dict[str, tuple[int, float, int]]:
    """(requests, wall s, depth) per scenario."""
    timing = TimingTransport()
    client = Client(url, DEFAULT_KEY, user_id=DEFAULT_USER, rate_limit=rate_limit, transport=timing)
    out: dict[str, tuple[int, float, int]] = {}

    def run(label: str, state: State, do_apply: bool) -> None:
        sandbox.request_log.clear()
        timing.clear()
        t0 = time.perf_counter()
        plan = plan_app(client, state)
        if do_apply and not plan.empty:
            apply_plan(client, plan, poll_s=0.02)
        out[label] = (len(sandbox.request_log), time.perf_counter() - t0, depth(timing.intervals))

    run("fresh", s, True)
    run("noop", s, False)
    changed, _ = _threshold_change(s)
    run("threshold", changed, True)
    client.close()
    return out


def documented(url: str, sandbox: Sandbox, s: State) -> dict[str, tuple[int, float]]:
    """The walkthrough's calls, one by one, through clarifai-grpc's JSON channel."""
    from clarifai_grpc.channel.clarifai_channel import ClarifaiChannel
    from clarifai_grpc.grpc.api import resources_pb2 as r
    from clarifai_grpc.grpc.api import service_pb2 as sv
    from clarifai_grpc.grpc.api import service_pb2_grpc
    from google.protobuf.struct_pb2 import Struct

    from reconciler.core import modeltypes

    stub = service_pb2_grpc.V2Stub(ClarifaiChannel.get_json_channel(base_url=url))
    meta = (("authorization", f"Key {DEFAULT_KEY}"),)
    app_id = s.app.id + "-documented"
    uid = r.UserAppIDSet(user_id=DEFAULT_USER, app_id=app_id)
    out: dict[str, tuple[int, float]] = {}

    def ok(resp):
        if resp.status.code != 10000:
            raise RuntimeError(f"documented way failed: {resp.status}")
        return resp

    def model_pb(m) -> r.Model:
        api = modeltypes.to_api(m.type, {**m.config, **({"annotation_user_id": DEFAULT_USER}
                                                        if m.type == "annotation-writer" else {})})
        oi = api.get("output_info", {})
        params = Struct()
        params.update(oi.get("params", {}))
        info = r.OutputInfo(params=params)
        concepts = ((oi.get("data") or {}).get("concepts")) or []
        if concepts:
            info.data.CopyFrom(r.Data(concepts=[r.Concept(id=c["id"], value=c["value"]) for c in concepts]))
        pb = r.Model(id=m.id, model_type_id=m.type, description=m.description, output_info=info)
        if "input_info" in api:
            base = api["input_info"].get("base_embed_model") or {}
            pb.model_version.input_info.base_embed_model.CopyFrom(r.Model(
                id=base.get("id", ""), user_id=base.get("user_id", ""), app_id=base.get("app_id", ""),
                model_version=r.ModelVersion(id=(base.get("model_version") or {}).get("id", ""))))
        return pb

    versions: dict[str, str] = {}

    def workflow_pb(w) -> r.Workflow:
        nodes = []
        for n in w.nodes:
            ref = n.model
            mv = r.ModelVersion(id=ref.version if ref.external else versions[ref.id])
            nodes.append(r.WorkflowNode(id=n.id, model=r.Model(id=ref.id, user_id=ref.user_id or "",
                                                                app_id=ref.app_id or "", model_version=mv),
                                        node_inputs=[r.NodeInput(node_id=i) for i in n.inputs],
                                        suppress_output=n.suppress_output))
        return r.Workflow(id=w.id, description=w.description, nodes=nodes)

    sandbox.request_log.clear()
    t0 = time.perf_counter()
    ok(stub.PostApps(sv.PostAppsRequest(user_app_id=r.UserAppIDSet(user_id=DEFAULT_USER),
                                        apps=[r.App(id=app_id, description=s.app.description)]), metadata=meta))
    concepts = list(s.concepts)
    for i in range(0, len(concepts), 128):
        ok(stub.PostConcepts(sv.PostConceptsRequest(user_app_id=uid, concepts=[
            r.Concept(id=c.id, name=c.name, definition=c.description) for c in concepts[i:i + 128]]), metadata=meta))
    for rel in s.relations:
        obj = r.Concept(id=rel.object.id, app_id=rel.object.app_id or "", user_id=rel.object.user_id or "")
        ok(stub.PostConceptRelations(sv.PostConceptRelationsRequest(
            user_app_id=uid, concept_id=rel.subject, concept_relations=[r.ConceptRelation(
                object_concept=obj, predicate=rel.predicate)]), metadata=meta))
    for m in s.models:
        pb = model_pb(m)
        if m.type in modeltypes.TRAINABLE_TYPES:
            # the custom-model walkthrough: inputs labelled with the concepts first
            ok(stub.PostInputs(sv.PostInputsRequest(user_app_id=uid, inputs=[r.Input(data=r.Data(
                image=r.Image(url="https://samples.clarifai.com/metro-north.jpg"),
                concepts=[r.Concept(id=c.id, value=1.0)])) for c in pb.output_info.data.concepts]), metadata=meta))
        # today's API, for every type: PostModels makes the model only; PostModelVersions makes
        # the version (and starts a trainable one's training) and names it
        ok(stub.PostModels(sv.PostModelsRequest(user_app_id=uid, models=[r.Model(
            id=m.id, model_type_id=m.type, description=m.description)]), metadata=meta))
        resp = ok(stub.PostModelVersions(sv.PostModelVersionsRequest(
            user_app_id=uid, model_id=m.id, model_versions=[r.ModelVersion(
                output_info=pb.output_info, input_info=pb.model_version.input_info)]), metadata=meta))
        versions[m.id] = resp.model.model_version.id
        if m.type in modeltypes.TRAINABLE_TYPES:  # the walkthrough waits for training before use
            while True:
                v = ok(stub.GetModelVersion(sv.GetModelVersionRequest(user_app_id=uid, model_id=m.id,
                                                                      version_id=versions[m.id]), metadata=meta))
                if v.model_version.status.code == 21100:
                    break
                if v.model_version.status.code not in (21101, 21103):  # queued / training
                    raise RuntimeError(f"documented way: {m.id} did not train: {v.model_version.status}")
                time.sleep(0.02)
    for w in s.workflows:
        ok(stub.PostWorkflows(sv.PostWorkflowsRequest(user_app_id=uid, workflows=[workflow_pb(w)]), metadata=meta))
    if s.app.default_workflow:
        ok(stub.PatchApps(sv.PatchAppsRequest(user_app_id=r.UserAppIDSet(user_id=DEFAULT_USER), action="overwrite",
                                              apps=[r.App(id=app_id, default_workflow_id=s.app.default_workflow)]),
                          metadata=meta))
    out["fresh"] = (len(sandbox.request_log), time.perf_counter() - t0)

    sandbox.request_log.clear()
    t0 = time.perf_counter()
    ok(stub.GetApp(sv.GetAppRequest(user_app_id=uid), metadata=meta))
    page = 1
    while ok(stub.ListConcepts(sv.ListConceptsRequest(user_app_id=uid, page=page, per_page=1000),
                               metadata=meta)).concepts:
        page += 1
    ok(stub.ListConceptRelations(sv.ListConceptRelationsRequest(user_app_id=uid, per_page=1000), metadata=meta))
    for m in s.models:
        ok(stub.GetModel(sv.GetModelRequest(user_app_id=uid, model_id=m.id), metadata=meta))
        ok(stub.ListModelVersions(sv.ListModelVersionsRequest(user_app_id=uid, model_id=m.id), metadata=meta))
    for w in s.workflows:
        ok(stub.GetWorkflow(sv.GetWorkflowRequest(user_app_id=uid, workflow_id=w.id), metadata=meta))
    out["noop"] = (len(sandbox.request_log), time.perf_counter() - t0)

    changed, _ = _threshold_change(s)
    th = next(m for m in changed.models if m.type == "concept-thresholder")
    sandbox.request_log.clear()
    t0 = time.perf_counter()
    ok(stub.ListWorkflows(sv.ListWorkflowsRequest(user_app_id=uid, per_page=1000), metadata=meta))
    pb = model_pb(th)
    resp = ok(stub.PostModelVersions(sv.PostModelVersionsRequest(
        user_app_id=uid, model_id=th.id, model_versions=[r.ModelVersion(output_info=pb.output_info)]), metadata=meta))
    versions[th.id] = resp.model.model_version.id
    for w in changed.workflows:
        if any(n.model.id == th.id for n in w.nodes):
            ok(stub.PatchWorkflows(sv.PatchWorkflowsRequest(user_app_id=uid, action="overwrite",
                                                            workflows=[workflow_pb(w)]), metadata=meta))
    out["threshold"] = (len(sandbox.request_log), time.perf_counter() - t0)
    return out


def plan_cpu(n_concepts: int) -> tuple[int, float, float]:
    """(resources, CPU s of load, CPU s of diff + plan) for a fresh plan of a generated manifest."""
    n_models, n_wf = scale(n_concepts)
    text = generate(n_concepts, n_models, n_wf)
    t0 = time.process_time()
    s = _state(text)
    t1 = time.process_time()
    make_plan(s, None)
    t2 = time.process_time()
    return len(s.concepts) + len(s.relations) + len(s.models) + len(s.workflows), t1 - t0, t2 - t1


def rates(s: State, latency_ms: float) -> tuple[int, float, int, str]:
    """A fresh apply against a sandbox throttling at 15 requests/s: (requests, wall s, throttled
    answers, error surfaced or "none")."""
    with tempfile.TemporaryDirectory() as tmp:
        sandbox = Sandbox(str(Path(tmp) / "rate.sqlite"), latency_ms=latency_ms, rate_limit=15, training_delay_s=0)
        with running_server(labelled_before_training(sandbox)) as url:  # type: ignore[arg-type]
            surfaced = "none"
            try:
                n, wall, _ = ours_fresh(url, sandbox, s)
            except Exception as exc:  # a benchmark reports, it does not stop
                n, wall, surfaced = len(sandbox.request_log), float("nan"), type(exc).__name__
            throttled = sum(1 for e in sandbox.request_log if e.status == 429)
        sandbox.close()
    return n, wall, throttled, surfaced


def ours_fresh(url: str, sandbox: Sandbox, s: State) -> tuple[int, float, int]:
    client = Client(url, DEFAULT_KEY, user_id=DEFAULT_USER, rate_limit=15.0)
    sandbox.request_log.clear()
    t0 = time.perf_counter()
    plan = plan_app(client, s)
    apply_plan(client, plan, poll_s=0.02)
    wall = time.perf_counter() - t0
    client.close()
    return len(sandbox.request_log), wall, 0


def _cases(sizes: str) -> list[tuple[str, State]]:
    cases: list[tuple[str, State]] = [("auto-annotation example", _state(None))]
    for size in (x for x in sizes.split(",") if x):
        parts = [int(p) for p in size.split("/")]
        n = parts[0]
        m, w = (parts[1], parts[2]) if len(parts) == 3 else scale(n)
        cases.append((f"{n:,} concepts / {m} models / {w} workflows", _state(generate(n, m, w))))
    return cases


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--latency-ms", type=float, default=50.0)
    ap.add_argument("--sizes", default="1000,5000/100/20")
    ap.add_argument("--rate-latencies", default="50,150")
    ap.add_argument("--curve", default="1000,2500,5000,10000,20000")
    args = ap.parse_args()

    cases = _cases(args.sizes)

    print(f"### Requests, depth and wall time (sandbox over loopback HTTP, {args.latency_ms:g} ms injected "
          "latency per request, no rate limit)\n")
    print("| app | scenario | requests | minimum | depth | depth bound | wall s | bound s "
          "| documented way requests (= depth) | documented way s | speed-up |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    names = {"fresh": "fresh apply (plan + apply)", "noop": "no-op plan", "threshold": "one threshold change"}
    for label, s in cases:
        with tempfile.TemporaryDirectory() as tmp:
            sandbox = Sandbox(str(Path(tmp) / "bench.sqlite"), latency_ms=args.latency_ms, training_delay_s=0)
            # labelled inputs before training, as a real app needs (the documented way posts its own)
            with running_server(labelled_before_training(sandbox)) as url:  # type: ignore[arg-type]
                mine = ours(url, sandbox, s)
                doc = documented(url, sandbox, s)
            sandbox.close()
        mins, bound = minimums(s), bounds(s)
        for key in ("fresh", "noop", "threshold"):
            n, wall, d = mine[key]
            print(f"| {label} | {names[key]} | {n} | {mins[key]} | {d} | {bound[key]} | {wall:.2f} | "
                  f"{bound[key] * args.latency_ms / 1000:.2f} | {doc[key][0]} | {doc[key][1]:.2f} | "
                  f"{doc[key][1] / wall:.1f}x |", flush=True)

    print("\n### Fresh apply under a 15 requests/s limit (sandbox throttles at 15/s; client limiter 15/s)\n")
    print("| app | latency ms | requests | wall s | achieved requests/s | share of the 15/s ceiling "
          "| throttled answers | error surfaced |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for label, s in cases:
        for lat in (float(x) for x in args.rate_latencies.split(",") if x):
            n, wall, throttled, surfaced = rates(s, lat)
            rate = n / wall if wall == wall and wall > 0 else float("nan")
            print(f"| {label} | {lat:g} | {n} | {wall:.2f} | {rate:.1f} | {rate / 15:.0%} | {throttled} | "
                  f"{surfaced} |", flush=True)

    print("\n### Plan CPU time (load + diff + plan of a fresh plan; one core)\n")
    print("| concepts | resources | load CPU s | diff + plan CPU s | total CPU s | µs per resource |")
    print("|---:|---:|---:|---:|---:|---:|")
    for n in (int(x) for x in args.curve.split(",") if x):
        res, t_load, t_plan = plan_cpu(n)
        total = t_load + t_plan
        print(f"| {n:,} | {res:,} | {t_load:.3f} | {t_plan:.3f} | {total:.3f} | {total / res * 1e6:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
