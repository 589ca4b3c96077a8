"""Task-based auto-annotation (issue 22, item 3): a task names the model that labels its inputs and,
per concept, the score ranges and the status each is written with. The sandbox runs it (on the
task's inputs when it is made, on new inputs after), `simulate --task` forecasts the same counts,
reviews go through the task, `record --task` reads them back, and `tune --task --write` moves the
ranges in the manifest, which plan and apply then change in place."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from e2e import EXAMPLES, Harness
from tune_synth import write_files

from reconciler.annotate import labels as L
from reconciler.annotate.predictions import load as load_predictions
from reconciler.annotate.record import RecordOptions, record
from reconciler.annotate.taskflow import simulate_task, task_thresholders
from reconciler.cli import main
from reconciler.core.errors import ReconcilerError
from reconciler.manifest.load import load_text

pytestmark = pytest.mark.slow  # a few seconds: 300 inputs annotated, reviewed and recorded

CONCEPTS = ["walker", "runner", "bike_rider", "rollerblader", "stroller"]
CLASSIFIER = EXAMPLES.joinpath("auto-annotation", "manifest.yaml").read_text().split("  - id: park-activity-classifier\n")[1]
CLASSIFIER = "  - id: park-activity-classifier\n" + CLASSIFIER.split("\n\n")[0] + "\n"
MANIFEST = f"""
app:
  id: park-auto
concepts:
""" + "".join(f"  - id: {c}\n" for c in CONCEPTS) + f"""
collaborators:
  - id: carol
models:
{CLASSIFIER}
tasks:
  - id: auto-park
    name: Auto-annotate park activity
    type: TYPE_NOT_SET
    worker_strategy: FULL
    review: {{strategy: MANUAL, reviewers: [carol]}}
    auto_annotation:
      model: park-activity-classifier
      concepts:
        walker:
          - {{status: SUCCESS, lower: 0.9}}
          - {{status: PENDING, lower: 0.5, upper: 0.9}}
        runner:
          - {{status: SUCCESS, lower: 0.9}}
          - {{status: PENDING, lower: 0.5, upper: 0.9}}
"""
N = 300


class Auto:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.preds, self.truth_file = write_files(tmp, CONCEPTS, N, N, seed=3)
        self.truth = L.load(self.truth_file)
        self.h = Harness(tmp, predictions=str(self.preds))
        self.manifest = tmp / "manifest.yaml"
        self.manifest.write_text(MANIFEST)
        self.desired = self.h.desired(self.manifest)
        self.h.apply(self.desired)
        self.base = self.h.base("park-auto")
        self.ids = [f"in-{i:06d}" for i in range(N)]

    def add_inputs(self) -> None:
        for k in range(0, N, 100):
            self.h.client.post(self.base + "/inputs", {"inputs": [
                {"id": i, "data": {"image": {"url": f"https://x/{i}.jpg"}}} for i in self.ids[k:k + 100]]})

    def task(self) -> dict:
        [t] = self.h.client.list_all(self.base + "/tasks", "tasks")
        return t

    def annotations(self) -> list[dict]:
        return self.h.client.list_all(self.base + "/annotations", "annotations",
                                      {"task_id": self.task()["id"], "list_all_annotations": "true"})


@pytest.fixture
def auto(tmp_path: Path) -> Auto:
    return Auto(tmp_path)


def test_apply_makes_an_auto_annotation_task_pinned_to_the_model_and_converges(auto: Auto):
    t = auto.task()
    [classifier] = [v for v in auto.h.client.list_all(auto.base + "/models/park-activity-classifier/versions", "model_versions")
                    if v["status"]["code"] == 21100]
    assert t["worker"]["workers"] == [{"model": {"id": "park-activity-classifier", "user_id": "sandbox", "app_id": "park-auto",
                                                 "model_version": {"id": classifier["id"]}}}]
    ranges = [(c["concept"]["id"], c["auto_annotation_config"]["status_code"], c["auto_annotation_config"]["threshold_range"])
              for c in t["concepts"]]
    assert ("walker", 24150, {"is_lower_inclusive": True, "is_upper_inclusive": True, "lower": pytest.approx(0.9), "upper": 1.0}) in ranges
    assert ("walker", 24151, {"is_lower_inclusive": True, "is_upper_inclusive": False, "lower": 0.5, "upper": pytest.approx(0.9)}) in ranges
    assert auto.h.plan(auto.desired).empty


def test_the_sandbox_runs_the_task_as_simulate_forecasts(auto: Auto):
    auto.add_inputs()
    anns = auto.annotations()
    by_status: dict[int, set[str]] = {}
    for a in anns:
        by_status.setdefault(a["status"]["code"], set()).add(a["input_id"])
        assert a["worker"]["model"]["id"] == "park-activity-classifier" and a["task_id"] == auto.task()["id"]
    report = simulate_task(auto.desired, load_predictions(str(auto.preds)), "auto-park").as_dict()
    assert report["total"]["success"] == len(by_status.get(24150, ())) > 0
    assert report["total"]["pending"] == len(by_status.get(24151, ())) > 0
    # the values written are the model's scores, each in its range
    preds = {json.loads(line)["input"]: json.loads(line)["concepts"] for line in auto.preds.read_text().splitlines()}
    for a in anns:
        for c in a["data"]["concepts"]:
            s = preds[a["input_id"]][c["id"]]
            assert (s >= 0.9) if a["status"]["code"] == 24150 else (0.5 <= s < 0.9 + 1e-6), (a, s)
    # a task made after the inputs labels them at once; adding no input twice
    again = len(auto.annotations())
    auto.h.apply(auto.desired)
    assert len(auto.annotations()) == again


def test_review_record_tune_write_then_plan_updates_the_task_in_place(auto: Auto, capsys):
    auto.add_inputs()
    carol = auto.h.client_as("carol")
    path = f"{auto.base}/tasks/{auto.task()['id']}/assignments"
    pending = {a["input_id"]: a for a in auto.annotations() if a["status"]["code"] == 24151}
    while batch := carol.put(path, {"action": "REVIEW_START", "review_start_config": {}}).get("task_assignments"):
        for a in batch:
            # carol rejects an annotation that is all wrong; one partly right she corrects (the
            # wrong concepts set to 0) and approves
            ann = pending[a["input"]["id"]]
            wrong = [c["id"] for c in ann["data"]["concepts"] if not auto.truth.label(ann["input_id"], c["id"])]
            if len(wrong) == len(ann["data"]["concepts"]):
                carol.put(path, {"action": "REVIEW_REJECT", "review_reject_config": {"task_assignments": [{"id": a["id"]}]}})
                continue
            if wrong:
                carol.patch(auto.base + "/annotations", {"action": "merge", "annotations": [
                    {"id": ann["id"], "data": {"concepts": [{"id": c, "value": 0.0} for c in wrong]}}]})
            carol.put(path, {"action": "REVIEW_APPROVE", "review_approve_config": {"task_assignments": [{"id": a["id"]}]}})
    labels, preds = auto.tmp / "labels-out.jsonl", auto.tmp / "recorded.jsonl"
    summary = record(auto.h.client, auto.desired, RecordOptions(predictions=str(preds), labels=str(labels), task="auto-park"))
    assert summary.startswith(f"Recorded {N + len(CONCEPTS)} prediction(s)")  # + the inputs the classifier trained on
    got = L.load(labels)
    # labels only where a review happened: the PENDING range's inputs, never the auto-accepted ones
    assert set(got.by_input) == set(pending)
    for iid, concepts in got.by_input.items():
        assert concepts and all(v == bool(auto.truth.label(iid, c)) for c, v in concepts.items())
    th = task_thresholders(auto.desired, "auto-park")
    assert (th.accepting.config["comparator"], th.accepting.config["thresholds"]) == ("GREATER_THAN_OR_EQUAL", {"walker": 0.9, "runner": 0.9})
    rc = main(["tune", str(auto.manifest), "--predictions", str(preds), "--labels", str(labels), "--task", "auto-park",
               "--target-precision", "0.9", "--absent", "unknown", "--write"])
    out = capsys.readouterr().out
    assert rc == 0 and "task auto-park: walker SUCCESS range lower" in out, out
    tuned = load_text(auto.manifest.read_text(), "m.yaml").task("auto-park")
    walker = {r.status: r for r in tuned.auto_annotation.ranges if r.concept == "walker"}
    assert walker["SUCCESS"].lower < 0.9 and walker["PENDING"].upper == walker["SUCCESS"].lower  # the review range follows
    desired = auto.h.desired(auto.manifest)
    plan = auto.h.plan(desired)
    assert [(a.op.value, a.address) for a in plan.actions] == [("update", "task/auto-park")]
    task_id = auto.task()["id"]
    auto.h.apply(desired)
    assert auto.task()["id"] == task_id and auto.h.plan(desired).empty


def test_a_new_model_version_repoints_the_task(auto: Auto):
    text = MANIFEST.replace("concepts_mutually_exclusive: false", "concepts_mutually_exclusive: true")
    desired = auto.h.desired("m.yaml", text)
    plan = auto.h.plan(desired)
    ops = [(a.op.value, a.address) for a in plan.actions]
    assert ("new_version", "model/park-activity-classifier") in ops and ("update", "task/auto-park") in ops
    task_action = next(a for a in plan.actions if a.address == "task/auto-park")
    assert [c.path for c in task_action.changes] == ["auto_annotation.model.version"]
    auto.h.apply(desired)
    assert auto.h.plan(desired).empty
    versions = auto.h.client.list_all(auto.base + "/models/park-activity-classifier/versions", "model_versions")
    trained = sorted((v for v in versions if v["status"]["code"] == 21100), key=lambda v: v["created_at"])
    assert len(trained) == 2  # the first, and the one the new configuration made
    assert auto.task()["worker"]["workers"][0]["model"]["model_version"]["id"] == trained[-1]["id"]


def test_tasks_tune_cannot_read_are_refused_in_one_line():
    text = MANIFEST.replace("- {status: SUCCESS, lower: 0.9}\n          - {status: PENDING, lower: 0.5, upper: 0.9}\n        runner",
                            "- {status: SUCCESS, lower: 0.9, upper: 0.95}\n        runner", 1)
    state = load_text(text, "m.yaml")
    with pytest.raises(ReconcilerError, match="walker's SUCCESS ranges are not one range up to 1"):
        task_thresholders(state, "auto-park")
    with pytest.raises(ReconcilerError, match="task 'nope' is not in the manifest"):
        task_thresholders(state, "nope")
