"""The whole auto-annotation loop, end to end and offline (issue 22, item 7): the runnable script
of docs/annotation-loop.md, examples/auto-annotation/loop.py, run in this process (so every request
it sends goes through the request check): apply -> inputs added -> the default workflow writes
SUCCESS and PENDING annotations, the PENDING ones into the review task -> carol approves and
rejects through PutTaskAssignments -> record -> tune --write -> plan shows the new thresholds ->
apply -> plan is empty. Then what each step left behind is checked."""

from __future__ import annotations

import importlib.util
import json
import sqlite3
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # ~15 s: 300 inputs reviewed over loopback HTTP

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "examples" / "auto-annotation" / "loop.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("annotation_loop", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_loop_closes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)  # the script changes directory and environment: both restored after
    for var in ("CLARIFAI_API_BASE", "CLARIFAI_PAT", "CLARIFAI_USER_ID"):
        monkeypatch.setenv(var, "")
    work = tmp_path / "loop"
    loop = _load_script()
    assert loop.main(str(work)) == 0
    out = capsys.readouterr().out
    assert "The loop closed" in out

    # the workflow wrote SUCCESS annotations and PENDING ones into the task; the review changed
    # the PENDING ones in place to SUCCESS (approved) or REVIEW_DENIED (rejected)
    db = sqlite3.connect(work / "sandbox.sqlite")
    docs = lambda kind: [json.loads(b) for (b,) in db.execute("SELECT body FROM docs WHERE kind=?", (kind,))]  # noqa: E731
    [task] = docs("task")
    anns = docs("annotation")
    in_task = [a for a in anns if a.get("task_id") == task["id"]]
    assert in_task and {a["status"]["code"] for a in in_task} == {24150, 24158}  # every one reviewed
    assert any(a["status"]["code"] == 24150 and not a.get("task_id") for a in anns)  # auto-accepted
    assignments = docs("task_assignment")
    assert {a["status"]["code"] for a in assignments} == {54200, 54204}

    # record read the outcomes back: approvals as positives, rejections as negatives
    labels = [json.loads(line) for line in (work / "labels.jsonl").read_text().splitlines()]
    values = [v for line in labels for v in line["concepts"].values()]
    assert True in values and False in values

    # tune wrote new thresholds into the manifest, the plan showed them, apply made them
    assert "Wrote " in out and "threshold change(s)" in out
    assert "new version" in out.split("reconciler tune")[1]
    manifest = (work / "manifest.yaml").read_text()
    assert manifest != (ROOT / "examples" / "auto-annotation" / "manifest.yaml").read_text()
    assert out.rstrip().splitlines()[-1].startswith("The loop closed")
