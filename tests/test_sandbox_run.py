"""The sandbox runs workflows: the examples applied with plan/apply (Harness), inputs added, the
default workflow writes SUCCESS / PENDING annotations from the recorded predictions, and
`simulate` on the same predictions gives exactly the same counts. Every response is parsed into
its proto (conftest's ResponseChecker)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import ResponseChecker
from e2e import EXAMPLES, Harness

from reconciler.annotate import predictions as P
from reconciler.annotate.simulate import simulate
from reconciler.sandbox.app import DEFAULT_KEY, DEFAULT_USER

AA = EXAMPLES / "auto-annotation"
PS = EXAMPLES / "people-synonyms"
SUCCESS, PENDING = 24150, 24151


class Run:
    def __init__(self, tmp_path: Path, example: Path) -> None:
        self.recorded = P.load(example / "predictions.jsonl")
        self.h = Harness(tmp_path, predictions=self.recorded)
        self.desired = self.h.desired(example / "manifest.yaml")
        self.h.apply(self.desired)
        self.checker = ResponseChecker(self.h.sandbox)
        self.http = httpx.Client(transport=httpx.WSGITransport(app=self.checker), base_url="http://sandbox.local",
                                 headers={"Authorization": f"Key {DEFAULT_KEY}"})
        self.base = self.h.base(self.desired.app.id)

    def ok(self, resp: httpx.Response) -> dict[str, Any]:
        body = resp.json()
        assert resp.status_code == 200 and body["status"]["code"] == 10000, body
        return body

    def annotations(self, **params: Any) -> list[dict[str, Any]]:
        return self.ok(self.http.get(self.base + "/annotations", params=params))["annotations"]

    def close(self) -> None:
        self.http.close()
        assert not self.checker.problems, self.checker.problems
        assert not self.h.sandbox.internal_errors, self.h.sandbox.internal_errors
        self.h.sandbox.close()


@pytest.fixture
def park(tmp_path: Path) -> Iterator[Run]:
    run = Run(tmp_path, AA)
    yield run
    run.close()


@pytest.fixture
def people(tmp_path: Path) -> Iterator[Run]:
    run = Run(tmp_path, PS)
    yield run
    run.close()


def counts_from_sandbox(anns: list[dict[str, Any]], input_ids: list[str], concepts: list[str]) -> dict[str, Any]:
    by_input: dict[str, list[dict[str, Any]]] = {i: [] for i in input_ids}
    for a in anns:
        by_input[a["input_id"]].append(a)
    total = Counter()
    per = {c: Counter() for c in concepts}
    for iid, got in by_input.items():
        codes = {a["status"]["code"] for a in got}
        total["success"] += SUCCESS in codes
        total["pending"] += PENDING in codes
        total["none"] += not got
        for c in concepts:
            holding = {a["status"]["code"] for a in got if c in {x["id"] for x in a["data"]["concepts"]}}
            per[c]["success"] += SUCCESS in holding
            per[c]["pending"] += PENDING in holding
            per[c]["none"] += not holding
    return {"total": dict(total), "concepts": {c: dict(v) for c, v in per.items()}}


def counts_from_simulate(report: dict[str, Any]) -> dict[str, Any]:
    keep = ("success", "pending", "none")
    return {"total": {k: report["total"][k] for k in keep},
            "concepts": {c: {k: v[k] for k in keep} for c, v in report["concepts"].items()}}


def test_auto_annotation_writes_success_and_pending_and_simulate_agrees(park: Run):
    ids = park.recorded.inputs()
    inputs = [{"id": i, "data": {"image": {"url": f"https://example.com/park/{i}.jpg"}}} for i in ids]
    park.ok(park.http.post(park.base + "/inputs", json={"inputs": inputs}))
    anns = park.annotations(list_all_annotations="True")
    by = {(a["input_id"], a["status"]["code"]): {c["id"]: c["value"] for c in a["data"]["concepts"]} for a in anns}
    assert len(by) == len(anns)  # one annotation per input and writer
    # a confident jogger: runner trusted at once, the rest sent to review
    assert set(by[("park-001", SUCCESS)]) == {"runner"}
    assert set(by[("park-001", PENDING)]) == {"walker", "bike_rider", "rollerblader", "stroller"}
    assert by[("park-001", SUCCESS)]["runner"] == pytest.approx(0.97, abs=1e-6)
    # unsure between walking and running: nothing trusted
    assert ("park-006", SUCCESS) not in by and set(by[("park-006", PENDING)]) >= {"walker", "runner"}
    # exactly at walker's 0.9 threshold: neither greater nor less, so walker is not written at all
    assert "walker" not in by.get(("park-007", SUCCESS), {}) and "walker" not in by[("park-007", PENDING)]
    # the classifier returned nothing: no annotation
    assert not [a for a in anns if a["input_id"] == "park-011"]
    # written as the writer's user (the app owner: no annotation_user_id), with the writer's version
    assert {a["user_id"] for a in anns} == {DEFAULT_USER}
    assert {a["worker"]["user"]["id"] for a in anns} == {DEFAULT_USER}
    wf = park.ok(park.http.get(park.base + "/workflows/auto-annotate"))["workflow"]
    writer_versions = {n["model"]["id"]: n["model"]["model_version"]["id"] for n in wf["nodes"]}
    for a in anns:
        want = "write-success-as-me" if a["status"]["code"] == SUCCESS else "write-pending-as-me"
        assert a["model_version_id"] == writer_versions[want]
    # simulate on the same predictions: exactly the same counts
    report = simulate(park.desired, park.recorded).as_dict()
    concepts = [c.id for c in park.desired.concepts]
    assert counts_from_sandbox(anns, ids, concepts) == counts_from_simulate(report)
    assert report["total"] == {"success": 7, "pending": 11, "none": 1,
                               "automation_rate": round(7 / 12, 6), "review_load": round(11 / 12, 6)}
    assert Counter(a["status"]["code"] for a in anns) == {SUCCESS: report["annotations"]["SUCCESS"],
                                                          PENDING: report["annotations"]["PENDING"]}


def test_list_annotations_filters_by_status_user_and_input(park: Run):
    park.ok(park.http.post(park.base + "/inputs", json={"inputs": [
        {"id": i, "data": {"image": {"url": f"https://example.com/{i}.jpg"}}} for i in ("park-001", "park-002")]}))
    trusted = park.annotations()  # the default: trusted (SUCCESS) annotations only
    assert {(a["input_id"], a["status"]["code"]) for a in trusted} == {("park-001", SUCCESS), ("park-002", SUCCESS)}
    for params in ({"statuses": "24151"}, {"statuses.code": "24151"}, {"statuses": "ANNOTATION_PENDING"},
                   {"statuses": "PENDING"}):
        got = park.annotations(**params)
        assert {a["status"]["code"] for a in got} == {PENDING} and len(got) == 2, params
    assert len(park.annotations(statuses=["24150", "24151"])) == 4
    assert park.annotations(statuses="code", list_all_annotations="True") == park.annotations(list_all_annotations="True")
    assert len(park.annotations(user_ids=DEFAULT_USER)) == 4
    assert park.annotations(user_ids="someone-else") == []
    assert {a["input_id"] for a in park.annotations(input_ids="park-002", list_all_annotations="True")} == {"park-002"}
    bad = park.http.get(park.base + "/annotations", params={"statuses": "BANANA"})
    assert bad.status_code == 400 and bad.json()["status"]["code"] == 24155


def test_post_workflow_results_returns_each_nodes_output_and_writes_nothing(park: Run):
    # the inputs labelled before the classifier trained (conftest) are there from the start
    inputs_before = park.ok(park.http.get(park.base + "/inputs"))["inputs"]
    body = {"inputs": [{"id": "park-004", "data": {"image": {"url": "https://example.com/p4.jpg"}}}]}
    res = park.ok(park.http.post(park.base + "/workflows/auto-annotate/results", json=body))
    assert res["workflow"]["id"] == "auto-annotate"
    [result] = res["results"]
    assert result["input"]["id"] == "park-004" and result["status"]["code"] == 10000
    out = {o["model"]["id"]: {c["id"]: round(c["value"], 4) for c in o["data"].get("concepts", [])}
           for o in result["outputs"]}
    assert list(out) == ["general-image-embedding", "park-activity-classifier", "activity-mapper", "greater-than",
                         "write-success-as-me", "less-than", "write-pending-as-me", "audit-sample", "write-audit"]
    assert out["general-image-embedding"] == {}  # an embedding: no concepts
    assert out["park-activity-classifier"] == out["activity-mapper"] == \
        {"walker": 0.64, "runner": 0.41, "bike_rider": 0.07, "rollerblader": 0.03, "stroller": 0.88}
    assert out["greater-than"] == out["write-success-as-me"] == {"stroller": 0.88}
    assert out["less-than"] == {"walker": 0.64, "runner": 0.41, "bike_rider": 0.07, "rollerblader": 0.03}
    # the audit draw of park-004 is above 0.1 (operators.sample_draw): not sent to review
    assert out["audit-sample"] == out["write-audit"] == {}
    assert all(o["status"]["code"] == 10000 for o in result["outputs"])
    # an empty workflow id is the app's default; a pinned current version works, another does not
    default = park.ok(park.http.post(park.base + "/workflows//results", json=body))
    assert [o["data"] for o in default["results"][0]["outputs"]] == [o["data"] for o in result["outputs"]]
    vid = park.ok(park.http.get(park.base + "/workflows/auto-annotate"))["workflow"]["version"]["id"]
    park.ok(park.http.post(park.base + f"/workflows/auto-annotate/versions/{vid}/results", json=body))
    wrong = park.http.post(park.base + "/workflows/auto-annotate/versions/0123/results", json=body)
    assert wrong.status_code == 404 and wrong.json()["status"]["code"] == 22102
    missing = park.http.post(park.base + "/workflows/nope/results", json=body)
    assert missing.status_code == 404
    # a dry run writes nothing
    assert park.annotations(list_all_annotations="True") == []
    assert park.ok(park.http.get(park.base + "/inputs"))["inputs"] == inputs_before
    # no recorded prediction for an input: the classifier outputs nothing, so nothing passes
    other = park.ok(park.http.post(park.base + "/workflows/auto-annotate/results", json={
        "inputs": [{"data": {"image": {"url": "https://example.com/unrecorded.jpg"}}}]}))
    assert all(not o["data"].get("concepts") for o in other["results"][0]["outputs"])


def test_people_synonyms_maps_main_concepts_and_routes_by_0_5_0_5_0_95(people: Run):
    urls = people.recorded.inputs()
    people.ok(people.http.post(people.base + "/inputs", json={
        "inputs": [{"data": {"image": {"url": u}}} for u in urls]}))  # no ids: looked up by URL
    inputs = people.ok(people.http.get(people.base + "/inputs"))["inputs"]
    url_of = {i["id"]: i["data"]["image"]["url"] for i in inputs}
    anns = people.annotations(user_ids=DEFAULT_USER)
    got: dict[tuple[str, int], set[str]] = {}
    for a in anns:
        got[(url_of[a["input_id"]].rsplit("/", 1)[1], a["status"]["code"])] = {c["id"] for c in a["data"]["concepts"]}
    assert got == {
        # people 0.84 > 0.5 trusted; man 0.44 < 0.5 and adult 0.61 < 0.95 to review
        ("metro-north.jpg", SUCCESS): {"people"}, ("metro-north.jpg", PENDING): {"man", "adult"},
        ("wedding.jpg", SUCCESS): {"people", "man", "adult"},
        ("face-det.jpg", SUCCESS): {"people", "man", "adult"},
        ("travel-flight-attendant.jpg", SUCCESS): {"people"},
        ("travel-flight-attendant.jpg", PENDING): {"man", "adult"},
    }  # no people-related concept predicted for the elephants and the puppy: no annotation
    report = simulate(people.desired, people.recorded).as_dict()
    assert counts_from_sandbox(anns, list(url_of), ["people", "man", "adult"]) == counts_from_simulate(report)


def test_sandbox_without_predictions_writes_nothing_and_bad_predictions_are_located(tmp_path: Path):
    h = Harness(tmp_path)
    desired = h.desired(PS / "manifest.yaml")
    h.apply(desired)
    base = h.base(desired.app.id)
    h.client.post(base + "/inputs", {"inputs": [{"data": {"image": {"url": "https://samples.clarifai.com/metro-north.jpg"}}}]})
    assert h.client.get(base + "/annotations", params={"list_all_annotations": "True"})["annotations"] == []
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"input": "a", "model": "m", "concepts": {"x": 0.5}}\n{"input": "b"}\n')
    with pytest.raises(P.PredictionsError, match=r"bad\.jsonl:2: "):
        h.sandbox.set_predictions(str(bad))
    h.sandbox.close()
