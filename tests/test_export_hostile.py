"""Issue 20, finding 12: `export` of hostile live apps writes what `validate` and `plan` take back
exactly, or refuses in one line naming the resource and the field (each failed before the fix):
metadata nested 900 deep (was an internal RecursionError) or 100 deep (was exit 0 and a file
`validate` refuses), a lone surrogate (was exit 0 and a YAML syntax error), and U+0085 (read back
as a space, so the export did not plan empty)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e import Harness

from reconciler.cli import main
from reconciler.core.errors import ReconcilerError
from reconciler.manifest.load import load_text
from reconciler.manifest.yamlload import MAX_DEPTH
from reconciler.planning.export import export_app
from reconciler.sandbox.app import DEFAULT_KEY, DEFAULT_USER

APP = "hostile"


def nest(levels: int) -> Any:
    value: Any = "x"
    for _ in range(levels):
        value = {"k": value}
    return value


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    harness = Harness(tmp_path)
    harness.apply(harness.desired("m.yaml", f"app: {{id: {APP}}}\nconcepts: [{{id: cat}}]\n"))
    return harness


def raw_patch(h: Harness, path: str, body: dict[str, Any]) -> None:
    """Out-of-band data another client wrote: straight to the sandbox, not through `Client` (whose
    requests the suite checks against clarifai-grpc's messages, which cannot hold 900 levels)."""
    with httpx.Client(transport=httpx.WSGITransport(app=h.sandbox), base_url="http://sandbox.local",
                      headers={"Authorization": f"Key {DEFAULT_KEY}"}) as http:
        resp = http.patch(path, content=json.dumps(body), headers={"Content-Type": "application/json"})
    assert resp.status_code == 200, resp.text


def set_app(h: Harness, description: str = "", **metadata: Any) -> None:
    """The app's description and metadata (the marker names the keys, so export claims them)."""
    md = dict(metadata, **{"clarifai-reconciler": {"managed": True, "protect": False, "keys": json.dumps(sorted(metadata))}})
    raw_patch(h, f"/v2/users/{DEFAULT_USER}/apps", {"action": "overwrite", "apps": [
        {"id": APP, "description": description, "metadata": md}]})


def set_concept(h: Harness, name: str, definition: str) -> None:
    raw_patch(h, f"/v2/users/{DEFAULT_USER}/apps/{APP}/concepts", {"action": "overwrite", "concepts": [
        {"id": "cat", "name": name, "definition": definition}]})


def exported_state_plans_empty(h: Harness) -> Any:
    text, _warnings = export_app(h.client, APP, user_id=DEFAULT_USER)
    state = load_text(text, "exported.yaml")  # what validate takes
    plan = h.plan(state)
    assert plan.empty, [(a.op, a.address, a.changes) for a in plan.actions]
    return state


@pytest.fixture
def pat_in_use(monkeypatch: pytest.MonkeyPatch) -> None:
    """A PAT registered for masking, as after any connection: export then masks the data too."""
    from reconciler.api import secrets

    monkeypatch.setattr(secrets, "_IN_USE", dict(secrets._IN_USE))
    secrets.remember_secret("pat-registered-for-masking-0123456789")


@pytest.mark.parametrize("levels", [900, 100, MAX_DEPTH])
def test_metadata_nested_too_deep_is_one_line(h: Harness, levels: int, pat_in_use: None) -> None:
    set_app(h, d=nest(levels))
    with pytest.raises(ReconcilerError) as err:
        export_app(h.client, APP, user_id=DEFAULT_USER)
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"cannot export app/{APP} metadata.d.k"), message
    assert f"nested deeper than the {MAX_DEPTH} levels a manifest allows" in message


def test_metadata_as_deep_as_a_manifest_allows_exports_and_plans_empty(h: Harness) -> None:
    # the document, app, metadata and d's own mapping are 4 levels; a manifest allows 64 in all
    set_app(h, d=nest(MAX_DEPTH - 3))
    state = exported_state_plans_empty(h)
    assert state.app.metadata["d"] == nest(MAX_DEPTH - 3)


@pytest.mark.parametrize("where", ["description", "metadata-value", "metadata-key"])
def test_a_lone_surrogate_is_one_line_naming_the_field(h: Harness, where: str) -> None:
    if where == "description":
        set_app(h, description="a\ud800b")
        field = "description"
    elif where == "metadata-value":
        set_app(h, note="x\udfffy")
        field = "metadata.note"
    else:
        set_app(h, **{"bad\ud800key": "v"})
        field = "metadata.bad\\ud800key"
    with pytest.raises(ReconcilerError) as err:
        export_app(h.client, APP, user_id=DEFAULT_USER)
    message = str(err.value)
    assert "\n" not in message and f"cannot export app/{APP} {field}:" in message, message
    assert "lone surrogate" in message


@pytest.mark.parametrize("text", ["\x85at the start", "in the\x85middle", "end\x85", "\x85\x85", "line\u2028sep",
                                  "para\u2029sep", "\ufeffbom", "tab\tand  spaces ", " lead", "a\r\nb", "\x1b[4Aesc"])
def test_characters_yaml_folds_read_back_exactly(h: Harness, text: str) -> None:
    set_app(h, description=text, note=text)
    set_concept(h, name=text, definition=text)
    state = exported_state_plans_empty(h)
    assert state.app.description == text and state.app.metadata["note"] == text
    cat = next(c for c in state.concepts if c.id == "cat")
    assert (cat.name, cat.description) == (text, text)


def test_cli_export_refuses_in_one_line_and_writes_nothing(h: Harness, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                           monkeypatch: pytest.MonkeyPatch, pat_in_use: None) -> None:
    for var in ("CLARIFAI_PAT", "CLARIFAI_API_BASE", "CLARIFAI_USER_ID"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("RECONCILER_SANDBOX_DB", str(tmp_path / "sandbox.sqlite"))
    set_app(h, d=nest(900))
    out = tmp_path / "exported.yaml"
    code = main(["export", "--app", APP, "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 1 and not out.exists()
    lines = [line for line in err.splitlines() if not line.startswith("note:")]
    assert lines == [lines[0]] and lines[0].startswith(f"error: cannot export app/{APP} metadata.d.k"), err
    assert "internal error" not in err and "Recursion" not in err
