"""Audit sampling (issue 22, item 5) and review outcomes read back (items 4, 5): the random-sample
operator, the example's audit branch in the sandbox and in `simulate`, `record` turning approvals
into positives and rejections into negatives, `record --dataset` and the dataset version `tune`
reports, and `reconciler audit`'s verdicts with their confidence bounds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from e2e import EXAMPLES, Harness
from tune_synth import write_files

from reconciler.annotate import labels as L
from reconciler.annotate import simulate as S
from reconciler.annotate import stats
from reconciler.annotate.audit import AuditOptions, audit, audit_writers, verdict
from reconciler.annotate.operators import RunNode, sample_draw, sample_keeps
from reconciler.annotate.predictions import load as load_predictions
from reconciler.annotate.record import RecordOptions, record
from reconciler.cli import main
from reconciler.core.state import ModelRef

CONCEPTS = ["walker", "runner", "bike_rider", "rollerblader", "stroller"]
EXAMPLE = EXAMPLES / "auto-annotation" / "manifest.yaml"


def test_the_random_sample_draw_is_uniform_fixed_and_per_model():
    n = 20_000
    node = RunNode("audit", ModelRef("audit-sample"), "random-sample", {"keep_fraction": 0.1})
    kept = sum(sample_keeps(node, f"in-{i}") for i in range(n))
    # 0.1 is inside the 99.99% interval of Binomial(n, 0.1) (about +-0.0084 at this n)
    assert abs(kept / n - 0.1) < 0.0084
    assert [sample_keeps(node, f"in-{i}") for i in range(50)] == [sample_keeps(node, f"in-{i}") for i in range(50)]
    other = RunNode("audit", ModelRef("another"), "random-sample", {"keep_fraction": 0.1})
    assert [sample_draw("audit-sample", f"in-{i}") for i in range(20)] != [sample_draw("another", f"in-{i}") for i in range(20)]
    assert not any(sample_keeps(RunNode("a", ModelRef("m"), "random-sample", {"keep_fraction": 0.0}), f"{i}") for i in range(500))
    assert sample_keeps(other, "x") == (0.1 > sample_draw("another", "x"))


class Park:
    """The example applied to a sandbox with recorded predictions for N inputs, which are added."""

    N = 200

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.preds, self.truth_file = write_files(tmp_path, CONCEPTS, self.N, self.N, seed=5)
        self.h = Harness(tmp_path, predictions=str(self.preds))
        self.desired = self.h.desired(EXAMPLE)
        self.h.apply(self.desired)
        self.base = self.h.base("park-activity")
        self.ids = [f"in-{i:06d}" for i in range(self.N)]
        for k in range(0, self.N, 100):
            self.h.client.post(self.base + "/inputs", {"inputs": [
                {"id": i, "data": {"image": {"url": f"https://samples.example/{i}.jpg"}}} for i in self.ids[k:k + 100]]})
        [self.task] = self.h.client.list_all(self.base + "/tasks", "tasks")
        self.carol = self.h.client_as("carol")

    def annotations(self, **query: Any) -> list[dict[str, Any]]:
        return self.h.client.list_all(self.base + "/annotations", "annotations", {"list_all_annotations": "true", **query})

    def versions_of(self, model_id: str) -> set[str]:
        return {v["id"] for v in self.h.client.list_all(f"{self.base}/models/{model_id}/versions", "model_versions")}

    def review_all(self, decide) -> None:
        """carol reviews every waiting input: `decide(input_id) -> "approve" | "reject"`."""
        path = f"{self.base}/tasks/{self.task['id']}/assignments"
        while batch := self.carol.put(path, {"action": "REVIEW_START", "review_start_config": {}}).get("task_assignments"):
            for a in batch:
                action = decide(a["input"]["id"])
                key = {"approve": "review_approve_config", "reject": "review_reject_config"}[action]
                self.carol.put(path, {"action": f"REVIEW_{action.upper()}", key: {"task_assignments": [{"id": a["id"]}]}})


@pytest.fixture
def park(tmp_path: Path) -> Park:
    return Park(tmp_path)


def test_the_audit_branch_sends_the_simulated_sample_to_review(park: Park):
    audited = park.versions_of("write-audit")
    sent = {a["input_id"] for a in park.annotations() if a.get("model_version_id") in audited}
    assert sent and all(a["status"]["code"] == 24151 and a["task_id"] == park.task["id"]
                        for a in park.annotations() if a.get("model_version_id") in audited)
    # simulate runs the same operators with the same draw: the same inputs are audited
    state = park.desired
    wf = state.workflow("auto-annotate")
    nodes = S.run_nodes(state, wf)
    from reconciler.annotate.operators import run_workflow

    predictions = load_predictions(str(park.preds))
    simulated = {k for k in park.ids
                 if any(r.node.id == "write-audit" and r.annotation for r in
                        run_workflow(nodes, S.app_view(state), lambda n, k=k: predictions.lookup([k], n.model), k))}
    assert simulated == sent
    # a tenth of the inputs that got a SUCCESS annotation, give or take the draw
    accepted = {a["input_id"] for a in park.annotations() if a["status"]["code"] == 24150}
    assert sent <= accepted and 0.02 < len(sent) / len(accepted) < 0.25


def test_record_reads_approvals_as_positives_and_rejections_as_negatives(park: Park):
    rejected = set(park.ids[::3])
    park.review_all(lambda iid: "reject" if iid in rejected else "approve")
    out = park.tmp / "labels-out.jsonl"
    record(park.h.client, park.desired, RecordOptions(predictions=str(park.tmp / "p.jsonl"), labels=str(out)))
    labels = L.load(out)
    reviewed = {a["input_id"] for a in park.annotations(task_id=park.task["id"])}
    assert set(labels.by_input) == reviewed
    for iid, concepts in labels.by_input.items():
        assert set(concepts.values()) == ({False} if iid in rejected else {True}), iid


def test_audit_reports_a_precision_below_the_target_with_its_bound(park: Park, capsys, monkeypatch):
    audited = park.versions_of("write-audit")
    sent = sorted({a["input_id"] for a in park.annotations() if a.get("model_version_id") in audited})
    bad = set(sent[: len(sent) // 2])  # half the audited SUCCESS annotations were wrong
    park.review_all(lambda iid: "reject" if iid in bad else "approve")
    report = audit(park.h.client, park.desired, AuditOptions(target=0.95))
    assert report["audit_writers"] == ["write-audit"]
    rows = {c: r for c, r in report["concepts"].items() if r["reviewed"]}
    assert rows and report["below"]
    for r in rows.values():
        assert r["upper"] == round(stats.cp_upper(r["approved"], r["reviewed"], 0.95), 6)
    assert any(r["verdict"] == "below" for r in rows.values())
    # the CLI, on the same sandbox served over loopback: exit 2, the verdict in words
    from e2e import SECRET_PAT

    from reconciler.sandbox.server import running_server

    with running_server(park.h.sandbox) as url:
        monkeypatch.setenv("CLARIFAI_PAT", SECRET_PAT)
        monkeypatch.setenv("CLARIFAI_USER_ID", "sandbox")
        rc = main(["audit", str(EXAMPLE), "--target-precision", "0.95", "--api-base", url])
    out = capsys.readouterr().out
    assert rc == 2 and "BELOW TARGET" in out and "verdict" in out


@pytest.mark.parametrize("k,n,target,word", [
    (0, 0, 0.9, "no-audits"), (20, 40, 0.9, "below"), (28, 30, 0.95, "at-risk"), (100, 100, 0.95, "holds"),
    (10, 10, 0.95, "unsure"),
])
def test_verdicts(k, n, target, word):
    v = verdict(k, n, target, 0.95)
    assert v["verdict"] == word
    if n:
        assert v["lower"] <= k / n <= v["upper"]


def test_a_workflow_without_an_audit_branch_is_one_clear_error(tmp_path: Path):
    from reconciler.core.errors import ReconcilerError
    from reconciler.manifest.load import load_text

    text = EXAMPLE.read_text()
    for cut in ("      - id: audit\n        model: audit-sample\n        inputs: [greater-than]\n",
                "      - id: write-audit\n        model: write-audit\n        inputs: [audit]\n"):
        text = text.replace(cut, "")
    state = load_text(text, "m.yaml")
    assert audit_writers(state, state.workflow("auto-annotate")) == []
    h = Harness(tmp_path)
    with pytest.raises(ReconcilerError, match="has no audit branch: add a random-sample model"):
        audit(h.client, state, AuditOptions(target=0.9))


def test_record_limited_to_a_dataset_names_its_version_and_tune_reports_it(tmp_path: Path, capsys):
    preds, _ = write_files(tmp_path, CONCEPTS, 40, 0, seed=7)
    h = Harness(tmp_path, predictions=str(preds))
    text = EXAMPLE.read_text() + """
datasets:
  - id: park-eval
    description: a random fifth of the photos, kept for evaluation
    version: {description: round 1}
"""
    desired = h.desired("m.yaml", text)
    h.apply(desired)
    base = h.base("park-activity")
    ids = [f"in-{i:06d}" for i in range(40)]
    h.client.post(base + "/inputs", {"inputs": [
        {"id": i, "data": {"image": {"url": f"https://x/{i}.jpg"}}, **({"dataset_ids": ["park-eval"]} if n % 5 == 0 else {})}
        for n, i in enumerate(ids)]})
    [version] = h.client.list_all(base + "/datasets/park-eval/versions", "dataset_versions")
    labels = tmp_path / "labels.jsonl"
    opts = RecordOptions(predictions=str(tmp_path / "p.jsonl"), labels=str(labels), dataset="park-eval")
    summary = record(h.client, desired, opts)
    assert f"dataset park-eval version {version['id']}" in summary
    recorded = {json.loads(line)["input"] for line in (tmp_path / "p.jsonl").read_text().splitlines()}
    assert recorded == set(ids[::5])
    assert L.load(labels).source_info == {"dataset": "park-eval", "dataset_version": version["id"]}
    # tune says where its labels came from (a hand-written label line so there is something to tune)
    labels.write_text(labels.read_text() + json.dumps({"input": ids[0], "concepts": {"walker": True}}) + "\n")
    manifest = tmp_path / "m.yaml"
    manifest.write_text(text)
    rc = main(["tune", str(manifest), "--predictions", str(tmp_path / "p.jsonl"), "--labels", str(labels),
               "--target-precision", "0.9"])
    assert rc == 0
    assert f"Labels from dataset park-eval, version {version['id']}." in capsys.readouterr().out
