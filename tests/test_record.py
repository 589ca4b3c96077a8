"""`reconciler record` and the sandbox's PostModelOutputs: batched predictions on the pinned
version, resumable, interrupted runs keep their lines, a torn line is dropped, labels only from
annotations people made or reviewed; every sandbox response parses into its proto."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import ResponseChecker
from e2e import EXAMPLES, Harness
from tune_synth import write_files

from reconciler.annotate import labels as L
from reconciler.annotate import predictions as P
from reconciler.annotate.record import RecordOptions, record
from reconciler.cli import main
from reconciler.core.errors import ReconcilerError
from reconciler.sandbox.app import DEFAULT_KEY

CONCEPTS = ["walker", "runner", "bike_rider", "rollerblader", "stroller"]
N = 150


class Park:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.preds, self.truth = write_files(tmp_path, CONCEPTS, N, N, seed=11)
        self.h = Harness(tmp_path, predictions=str(self.preds))
        self.desired = self.h.desired(EXAMPLES / "auto-annotation" / "manifest.yaml")
        self.h.apply(self.desired)
        self.checker = ResponseChecker(self.h.sandbox)
        self.http = httpx.Client(transport=httpx.WSGITransport(app=self.checker), base_url="http://sandbox.local",
                                 headers={"Authorization": f"Key {DEFAULT_KEY}"})
        self.base = self.h.base("park-activity")
        # The inputs labelled so that the classifier could train (conftest seeds them) have done
        # their job: remove them, so the app holds exactly the N inputs these tests record.
        seeded = [i["id"] for i in self.ok(self.http.get(self.base + "/inputs"))["inputs"]]
        if seeded:
            self.ok(self.http.request("DELETE", self.base + "/inputs", json={"ids": seeded}))
        ids = [f"in-{i:06d}" for i in range(N)]
        for k in range(0, N, 128):
            self.ok(self.http.post(self.base + "/inputs", json={"inputs": [
                {"id": i, "data": {"image": {"url": f"https://samples.example/{i}.jpg"}}} for i in ids[k:k + 128]]}))
        self.h.clear_log()

    def ok(self, resp: httpx.Response) -> dict[str, Any]:
        body = resp.json()
        assert resp.status_code == 200 and body["status"]["code"] == 10000, body
        return body

    def record(self, **kw: Any) -> str:
        kw.setdefault("predictions", str(self.tmp / "out.jsonl"))
        progress = kw.pop("progress", lambda _m: None)
        return record(self.h.client, self.desired, RecordOptions(**kw), progress=progress)

    def predicts(self) -> list[str]:
        return [p for m, p, _s in self.h.log() if m == "POST" and p.endswith("/outputs")]

    def close(self) -> None:
        self.http.close()
        assert not self.checker.problems, self.checker.problems
        assert not self.h.sandbox.internal_errors, self.h.sandbox.internal_errors
        self.h.sandbox.close()


@pytest.fixture
def park(tmp_path: Path) -> Iterator[Park]:
    p = Park(tmp_path)
    yield p
    p.close()


# --- the sandbox's PostModelOutputs ---------------------------------------------------------------

def _version(park: Park, model: str) -> str:
    wf = park.ok(park.http.get(park.base + "/workflows/auto-annotate"))["workflow"]
    return next(n["model"]["model_version"]["id"] for n in wf["nodes"] if n["model"]["id"] == model)


def test_post_model_outputs_returns_the_recorded_scores(park: Park) -> None:
    v = _version(park, "park-activity-classifier")
    body = park.ok(park.http.post(f"{park.base}/models/park-activity-classifier/versions/{v}/outputs", json={
        "inputs": [{"id": "in-000001", "data": {"image": {"url": "https://samples.example/in-000001.jpg"}}},
                   {"data": {"image": {"url": "https://elsewhere.example/unknown.jpg"}}}]}))
    first, second = body["outputs"]
    assert first["input"]["id"] == "in-000001" and first["model"]["model_version"]["id"] == v
    recorded = dict(next(p.concepts for p in P.load(park.preds).lines if p.input == "in-000001"))
    got = {c["id"]: c["value"] for c in first["data"]["concepts"]}
    assert got == pytest.approx(recorded, abs=1e-7)
    values = [c["value"] for c in first["data"]["concepts"]]
    assert values == sorted(values, reverse=True)
    assert second["data"] == {}  # nothing recorded: no concepts invented
    # by the id of an input of the app; the latest version when none is given
    body = park.ok(park.http.post(f"{park.base}/models/park-activity-classifier/outputs",
                                  json={"inputs": [{"id": "in-000002"}]}))
    assert body["outputs"][0]["data"]["concepts"]
    assert park.checker.checked >= 3 and not park.checker.problems


@pytest.mark.parametrize("path,body,code", [
    ("/models/nope/versions/abc/outputs", {"inputs": [{"id": "in-000001"}]}, 21200),
    ("/models/park-activity-classifier/versions/nope/outputs", {"inputs": [{"id": "in-000001"}]}, 21200),
    ("/models/park-activity-classifier/outputs", {"inputs": []}, 30104),
    ("/models/park-activity-classifier/outputs", {"inputs": [{"id": f"x{i}", "data": {"image": {"url": "u"}}}
                                                             for i in range(129)]}, 30104),
    ("/models/greater-than/outputs", {"inputs": [{"id": "in-000001"}]}, 30104),
])
def test_post_model_outputs_errors(park: Park, path: str, body: dict[str, Any], code: int) -> None:
    resp = park.http.post(park.base + path, json=body)
    assert resp.status_code != 200 and resp.json()["status"]["code"] == code


def test_post_model_outputs_writes_nothing(park: Park) -> None:
    before = park.ok(park.http.get(park.base + "/annotations", params={"list_all_annotations": "true",
                                                                       "per_page": 1000}))["annotations"]
    park.ok(park.http.post(park.base + "/models/park-activity-classifier/outputs",
                           json={"inputs": [{"id": "in-000003"}]}))
    after = park.ok(park.http.get(park.base + "/annotations", params={"list_all_annotations": "true",
                                                                      "per_page": 1000}))["annotations"]
    assert after == before


# --- record ------------------------------------------------------------------------------------

def test_record_batches_on_the_pinned_version_with_progress(park: Park) -> None:
    lines: list[str] = []
    summary = park.record(batch_size=64, progress=lines.append)
    assert summary.startswith(f"Recorded {N} prediction(s)")
    v = _version(park, "park-activity-classifier")
    calls = park.predicts()
    assert len(calls) == 3 and all(c.endswith(f"/models/park-activity-classifier/versions/{v}/outputs") for c in calls)
    assert lines[-1] == f"record: park-activity-classifier: {N}/{N} input(s) predicted"
    assert "record: park-activity-classifier: 64/150 input(s) predicted" in lines
    out = P.load(park.tmp / "out.jsonl")
    src = {(p.input, p.model): dict(p.concepts) for p in P.load(park.preds).lines}
    assert {(p.input, p.model): dict(p.concepts) for p in out.lines} == src


def test_record_is_resumable_and_skips_what_is_there(park: Park) -> None:
    park.record(limit=40)
    assert len((park.tmp / "out.jsonl").read_text().splitlines()) == 40
    park.h.clear_log()
    summary = park.record(batch_size=128)
    assert "(40 already there)" in summary
    assert len(park.predicts()) == 1  # the 110 others fit in one batch
    out = P.load(park.tmp / "out.jsonl")  # parses: no input recorded twice
    assert len(out.lines) == N


def test_an_interrupted_run_keeps_its_lines_and_a_rerun_finishes(park: Park) -> None:
    def stop(msg: str) -> None:
        if "50/" in msg:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        park.record(batch_size=50, progress=stop)
    kept = (park.tmp / "out.jsonl").read_text().splitlines()
    assert len(kept) == 50 and all(json.loads(line) for line in kept)
    park.record(batch_size=50)
    assert len(P.load(park.tmp / "out.jsonl").lines) == N


def test_a_torn_last_line_is_dropped_before_resuming(park: Park) -> None:
    park.record(limit=10)
    out = park.tmp / "out.jsonl"
    out.write_text(out.read_text() + '{"input": "in-000010", "model": "park-acti')
    park.record()
    assert len(P.load(out).lines) == N


def test_record_input_ids_and_unknown_ids(park: Park) -> None:
    park.record(input_ids=("in-000005", "in-000007"))
    assert [p.input for p in P.load(park.tmp / "out.jsonl").lines] == ["in-000005", "in-000007"]
    with pytest.raises(ReconcilerError, match="input 'nope' is not in the app"):
        park.record(input_ids=("in-000005", "nope"), predictions=str(park.tmp / "other.jsonl"))


def test_labels_come_only_from_people(park: Park) -> None:
    # the default workflow wrote SUCCESS and PENDING annotations when the inputs were added
    anns = park.ok(park.http.get(park.base + "/annotations", params={"list_all_annotations": "true",
                                                                     "per_page": 1000}))["annotations"]
    machine_success = [a for a in anns if a["status"]["code"] == 24150 and a.get("model_version_id")]
    pending = [a for a in anns if a["status"]["code"] == 24151]
    assert machine_success and pending
    # a person labels in-000000 (runner false) ...
    park.ok(park.http.post(park.base + "/annotations", json={"annotations": [
        {"input_id": "in-000000", "data": {"concepts": [{"id": "walker", "value": 1}, {"id": "runner", "value": 0}]}}]}))
    # ... and a reviewer accepts one PENDING annotation
    reviewed = next(a for a in pending if a["input_id"] != "in-000000")
    park.ok(park.http.patch(park.base + "/annotations", json={"action": "merge", "annotations": [
        {"id": reviewed["id"], "status": {"code": 24150}}]}))
    park.record(labels=str(park.tmp / "labels.jsonl"))
    got = L.load(park.tmp / "labels.jsonl").by_input
    want_reviewed = {c["id"]: c["value"] > 0 for c in reviewed["data"]["concepts"]}
    expected = {"in-000000": {"runner": False, "walker": True}, reviewed["input_id"]: dict(sorted(want_reviewed.items()))}
    assert got == expected
    assert not any(a["input_id"] in got for a in machine_success if a["input_id"] not in expected)


# --- the CLI: bad input --------------------------------------------------------------------------

@pytest.mark.parametrize("extra,message", [
    (["--batch-size", "0"], "--batch-size 0: must be 1..128"),
    (["--batch-size", "129"], "--batch-size 129: must be 1..128"),
    (["--limit", "0"], "--limit 0: must be at least 1"),
])
def test_record_bad_options_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch,
                                         extra: list[str], message: str) -> None:
    for var in ("CLARIFAI_PAT", "CLARIFAI_API_BASE", "CLARIFAI_USER_ID"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("RECONCILER_SANDBOX_DB", str(tmp_path / "sandbox.sqlite"))
    code = main(["record", str(EXAMPLES / "auto-annotation" / "manifest.yaml"), "--predictions",
                 str(tmp_path / "o.jsonl"), *extra])
    _out, err = capsys.readouterr()
    assert code == 1 and message in err and err.strip().count("\n") <= 1, err  # the sandbox note + one error


def test_record_before_apply_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    for var in ("CLARIFAI_PAT", "CLARIFAI_API_BASE", "CLARIFAI_USER_ID"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("RECONCILER_SANDBOX_DB", str(tmp_path / "sandbox.sqlite"))
    code = main(["record", str(EXAMPLES / "auto-annotation" / "manifest.yaml"), "--predictions",
                 str(tmp_path / "o.jsonl")])
    _out, err = capsys.readouterr()
    assert code == 1 and "error:" in err and "Traceback" not in err
    assert not (tmp_path / "o.jsonl").exists()


def test_writer_version_reads_every_shape_of_worker() -> None:
    from reconciler.annotate.record import writer_version

    assert writer_version({"worker": {"user": {"id": "me"}}}) == ""  # a person
    assert writer_version({}) == ""
    assert writer_version({"model_version_id": "v1"}) == "v1"  # the deprecated field
    assert writer_version({"worker": {"model": {"id": "w", "model_version": {"id": "v2"}}}}) == "v2"
    assert writer_version({"worker": {"workflow": {"id": "auto-annotate"}}}) is None  # writer unknown
    assert writer_version({"worker": {"model": {"id": "w"}}}) is None
