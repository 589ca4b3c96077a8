"""`reconciler init` writes a starter manifest that validates, applies and then plans empty on the
embedded sandbox; `reconciler completion` prints a script naming every verb (issue 23)."""

from __future__ import annotations

import re

import pytest

from reconciler import cli


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.delenv("CLARIFAI_PAT", raising=False)
    monkeypatch.delenv("CLARIFAI_API_BASE", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_init_then_apply_then_plan_is_empty(here, capsys):
    assert cli.main(["init", "--app", "starter-app"]) == 0
    text = (here / "manifest.yaml").read_text()
    assert "id: starter-app" in text and text.count("\n#") >= 3  # commented
    assert cli.main(["validate", "manifest.yaml"]) == 0
    assert cli.main(["apply", "manifest.yaml", "--auto-approve"]) == 0
    assert cli.main(["plan", "manifest.yaml", "--detailed-exitcode"]) == 0


def test_init_names_the_app_after_the_folder_and_never_overwrites(here, capsys):
    assert cli.main(["init"]) == 0
    expected = re.sub(r"[^A-Za-z0-9_-]+", "-", here.name).strip("-_")[:32]
    assert f"  id: {expected}\n" in (here / "manifest.yaml").read_text()
    assert cli.main(["validate", "manifest.yaml"]) == 0
    before = (here / "manifest.yaml").read_text()
    (here / "manifest.yaml").write_text(before + "# mine\n")
    assert cli.main(["init"]) == 1
    assert "exists; not replaced" in capsys.readouterr().err
    assert (here / "manifest.yaml").read_text().endswith("# mine\n")
    assert cli.main(["init", "--app", "bad id!"]) == 1


def test_completion_scripts_name_every_verb(capsys):
    for shell in ("bash", "zsh"):
        assert cli.main(["completion", shell]) == 0
        script = capsys.readouterr().out
        for module in cli.VERBS:
            name = module.__name__.rsplit(".", 1)[-1]
            assert name in script, (shell, name)
        assert "--auto-approve" in script
