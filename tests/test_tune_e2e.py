"""End to end, offline: the park example applied to a sandbox (over loopback HTTP, through the
CLI), inputs added (the default workflow annotates them from recorded predictions), some labelled
by hand through the API, then `record` (predictions and labels) -> `tune --write` -> `plan` shows
exactly the threshold changes -> `apply` -> `plan` is empty."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e import EXAMPLES
from tune_synth import write_files

from reconciler.annotate import labels as L
from reconciler.annotate import predictions as P
from reconciler.cli import main
from reconciler.sandbox.app import DEFAULT_KEY, DEFAULT_USER, Sandbox
from reconciler.sandbox.server import running_server

CONCEPTS = ["walker", "runner", "bike_rider", "rollerblader", "stroller"]
N_INPUTS, N_LABELLED = 400, 300


def run(capsys: pytest.CaptureFixture[str], *argv: Any) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def park(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    for var in ("CLARIFAI_PAT", "CLARIFAI_API_BASE", "CLARIFAI_USER_ID"):
        monkeypatch.delenv(var, raising=False)
    truth_dir = tmp_path / "truth"
    truth_dir.mkdir()
    preds, truth = write_files(truth_dir, CONCEPTS, N_INPUTS, N_LABELLED, seed=7)
    manifest = tmp_path / "manifest.yaml"
    shutil.copy(EXAMPLES / "auto-annotation" / "manifest.yaml", manifest)
    sandbox = Sandbox(str(tmp_path / "sandbox.sqlite"), training_delay_s=0, predictions=str(preds))
    with running_server(sandbox) as url:
        http = httpx.Client(base_url=url, headers={"Authorization": f"Key {DEFAULT_KEY}"})
        yield {"url": url, "http": http, "manifest": manifest, "preds": preds, "truth": truth, "tmp": tmp_path,
               "sandbox": sandbox, "base": f"/v2/users/{DEFAULT_USER}/apps/park-activity"}
        http.close()
    assert not sandbox.internal_errors, sandbox.internal_errors
    sandbox.close()


def ok(resp: httpx.Response) -> dict[str, Any]:
    body = resp.json()
    assert resp.status_code == 200 and body["status"]["code"] == 10000, body
    return body


def add_inputs_and_label(p: dict[str, Any]) -> dict[str, dict[str, bool]]:
    http, base = p["http"], p["base"]
    ids = [f"in-{i:06d}" for i in range(N_INPUTS)]
    for k in range(0, len(ids), 128):  # PostInputs takes up to 128 inputs per request
        ok(http.post(base + "/inputs", json={"inputs": [
            {"id": i, "data": {"image": {"url": f"https://samples.example/{i}.jpg"}}} for i in ids[k:k + 128]]}))
    truth = L.load(p["truth"]).by_input
    labelled = dict(list(truth.items())[:N_LABELLED])
    anns = [{"input_id": i, "data": {"concepts": [{"id": c, "value": 1 if v else 0} for c, v in cs.items()]}}
            for i, cs in labelled.items()]
    for k in range(0, len(anns), 128):
        ok(http.post(base + "/annotations", json={"annotations": anns[k:k + 128]}))
    return labelled


def test_record_tune_write_plan_apply_converges(park: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    url, manifest, tmp = park["url"], park["manifest"], park["tmp"]
    code, _out, err = run(capsys, "apply", manifest, "--auto-approve", "--api-base", url, "--rate-limit", 0)
    assert code == 0, err
    # The inputs labelled so that the classifier could train (conftest seeds them; the README's
    # "label some inputs first" walk is tests/test_training.py) have done their job: remove them,
    # so the app holds exactly the inputs this test adds and labels.
    seeded = [i["id"] for i in ok(park["http"].get(park["base"] + "/inputs"))["inputs"]]
    if seeded:
        ok(park["http"].request("DELETE", park["base"] + "/inputs", json={"ids": seeded}))
    labelled = add_inputs_and_label(park)
    # the default workflow wrote annotations from the recorded predictions: some SUCCESS, some PENDING
    written = ok(park["http"].get(park["base"] + "/annotations", params={"list_all_annotations": "true",
                                                                       "per_page": 1000}))["annotations"]
    assert any(a.get("model_version_id") for a in written)

    out_p, out_l = tmp / "recorded.jsonl", tmp / "labels.jsonl"
    code, out, err = run(capsys, "record", manifest, "--predictions", out_p, "--labels", out_l,
                         "--api-base", url, "--rate-limit", 0)
    assert code == 0, err
    assert "record: park-activity-classifier: 400/400 input(s) predicted" in err
    # the recorded predictions are exactly the sandbox's, through PostModelOutputs (float32 values)
    rec, src = P.load(out_p), P.load(park["preds"])
    assert {(p.input, p.model): dict(p.concepts) for p in rec.lines} == \
        {(p.input, p.model): dict(p.concepts) for p in src.lines}
    # labels: exactly the hand-made annotations; the workflow's SUCCESS annotations are not ground truth
    assert L.load(out_l).by_input == labelled

    # re-running records nothing new (resumable) and keeps the file
    code, out, err = run(capsys, "record", manifest, "--predictions", out_p, "--api-base", url, "--rate-limit", 0)
    assert code == 0 and "Recorded 0 prediction(s)" in out and "(400 already there)" in out
    assert len(out_p.read_text().splitlines()) == N_INPUTS

    before = manifest.read_text()
    code, out, err = run(capsys, "tune", manifest, "--predictions", out_p, "--labels", out_l,
                         "--target-precision", 0.9, "--write", "--json")
    assert code == 0, err
    report = json.loads(out)
    changes = report["changes"]
    assert changes and {c["model"] for c in changes} == {"greater-than", "less-than"}
    after = manifest.read_text()
    # only the threshold values changed, byte for byte elsewhere
    old_lines, new_lines = before.splitlines(keepends=True), after.splitlines(keepends=True)
    assert len(old_lines) == len(new_lines)
    diff = [(a, b) for a, b in zip(old_lines, new_lines) if a != b]
    assert len(diff) == len(changes)
    for a, b in diff:
        assert a.split(":")[0] == b.split(":")[0] and a.split(":")[0].strip() in CONCEPTS

    code, out, err = run(capsys, "plan", manifest, "--json", "--api-base", url, "--rate-limit", 0)
    assert code == 0, err
    plan = json.loads(out)
    acts = [(a["op"], a["kind"], a["id"]) for a in plan["actions"]]
    # exactly: a new version of each tuned thresholder, the workflow repointed to them
    assert sorted(acts) == [("new_version", "model", "greater-than"), ("new_version", "model", "less-than"),
                            ("repoint", "workflow", "auto-annotate")], acts
    for a in plan["actions"]:
        if a["kind"] == "model":
            paths = {c["path"] for c in a["changes"]}
            want = {f"config.thresholds.{c['concept']}" for c in changes if c["model"] == a["id"]}
            assert paths == want, (paths, want)

    code, out, err = run(capsys, "apply", manifest, "--auto-approve", "--api-base", url, "--rate-limit", 0)
    assert code == 0, err
    code, out, err = run(capsys, "plan", manifest, "--detailed-exitcode", "--api-base", url, "--rate-limit", 0)
    assert code == 0, out + err
