"""`reconciler sandbox label`: the auto-annotation example's labelling step is one command reading
the labels file the example ships; then its first apply succeeds and the plan is empty (issue 23)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from reconciler import cli

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "auto-annotation"


@pytest.fixture
def example(tmp_path, monkeypatch):
    for var in ("CLARIFAI_PAT", "CLARIFAI_API_BASE", "RECONCILER_SANDBOX_DB", "CI"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".git").mkdir()  # a repository: one sandbox at its root
    target = tmp_path / "examples" / "auto-annotation"
    shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns(".reconciler"))
    return target


def test_label_then_the_first_apply_succeeds_and_plans_empty(example, tmp_path, capsys):
    assert cli.main(["sandbox", "label", str(example / "labels.yaml")]) == 0
    out = capsys.readouterr()
    assert "Labelled 5 input(s) in app park-activity" in out.out
    assert (tmp_path / ".reconciler" / "sandbox.sqlite").exists()
    manifest = str(example / "manifest.yaml")
    assert cli.main(["apply", manifest, "--auto-approve"]) == 0
    assert cli.main(["plan", manifest, "--detailed-exitcode"]) == 0
    # labelling again posts nothing new
    assert cli.main(["sandbox", "label", str(example / "labels.yaml")]) == 0
    assert "Labelled 0 input(s) in app park-activity (5 already there)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("app: park-activity\ninputs:\n  - url: ftp://x\n    concepts: [walker]\n", ":3:10: url"),
        ("app: park-activity\ninputs:\n  - url: https://x/a.jpg\n    concepts: [not ok]\n", ":4:15: concepts"),
        ("app: bad id\ninputs: []\n", ":1:6: app"),
        ("app: a\ninput: []\n", ":2:1: unknown field 'input'"),
    ],
)
def test_a_bad_labels_file_is_one_located_line_and_sends_nothing(example, tmp_path, capsys, text, where):
    bad = tmp_path / "labels.yaml"
    bad.write_text(text)
    assert cli.main(["sandbox", "label", str(bad)]) == 1
    err = capsys.readouterr().err
    assert where in err and "Traceback" not in err
    assert not (tmp_path / ".reconciler").exists()  # nothing was opened, let alone sent
