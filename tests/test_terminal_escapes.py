"""Issue 20, finding 5: a user- or server-controlled string (a metadata KEY as well as a value, an
id, a description, a note) printed raw could erase or reorder the lines above it on a terminal
and hide a threshold change from the reviewer. Every human output escapes control and format
characters with `core.printable.printable`; JSON stays valid (and ASCII) JSON."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from reconciler.cli import main
from reconciler.core.printable import printable, printable_lines
from reconciler.planning import drift, render

#: what a hostile pull request put in a metadata key: move up 4 lines, go to column 0, erase the
#: screen below, then print a harmless-looking action
HOSTILE_KEY = "ticket\x1b[4A\r\x1b[J  ~ model/b-notes  update\n metadata.ticket"
#: C1 CSI, a right-to-left override, a line separator, a zero-width joiner, NBSP, DEL
OTHERS = "a\x9b2Jb\u202eq\u2028r\u200ds\u00a0t\x7fu"


def raw_controls(text: str) -> list[str]:
    """Characters in `text` that a terminal could act on (a line feed ends a line: allowed)."""
    return sorted({repr(ch) for ch in text if ch != "\n" and ch != " " and not ch.isprintable()})


def test_printable_escapes_every_control_and_format_character_and_nothing_else():
    assert printable("walker é 日本 🙂 \\ ok") == "walker é 日本 🙂 \\ ok"
    assert printable("\x1b[2J") == "\\u001b[2J"
    assert printable("a\r\nb\tc") == "a\\r\\nb\\tc"
    assert printable(OTHERS) == "a\\u009b2Jb\\u202eq\\u2028r\\u200ds\\u00a0t\\u007fu"
    assert printable("\ud800x") == "\\ud800x"  # a lone surrogate: printable, and encodable
    assert printable("\U000e0041") == "\\U000e0041"  # a tag character
    assert printable(7) == "7"
    assert printable_lines("one \x1b\ntwo\u202e") == "one \\u001b\ntwo\\u202e"
    for start in range(0, 0x110000, 4096):  # every code point, in chunks
        chunk = "".join(map(chr, range(start, min(start + 4096, 0x110000))))
        assert printable(chunk).isprintable(), hex(start)


def _hostile_doc() -> dict:
    change = {"path": f"metadata.{HOSTILE_KEY}", "before": None, "after": OTHERS}
    repoint = {"path": f"nodes.n{OTHERS}.model.version", "before": "v1", "after": "v2",
               "config_changes": [{"path": f"thresholds.{HOSTILE_KEY}", "before": 0.95, "after": 0.05}]}
    return {
        "format_version": 1, "endpoint": f"http://x/{OTHERS}", "app": {"id": f"app{OTHERS}", "user_id": HOSTILE_KEY},
        "live_fingerprint": "", "targets": [], "empty": False,
        "summary": {"update": 1, "repoint": 1},
        "actions": [
            {"op": "update", "kind": "model", "id": f"m{HOSTILE_KEY}", "changes": [change], "pins": [],
             "reuse_version": None, "reason": f"because {OTHERS}"},
            {"op": "repoint", "kind": "workflow", "id": "wf", "changes": [repoint], "pins": [],
             "reuse_version": None, "reason": ""},
        ],
        "notes": [f"note {HOSTILE_KEY}", OTHERS],
        "drift": True,
    }


class _NoCharts:
    """`render_markdown` draws workflow charts from the Plan; this plan has none."""

    actions = ()
    desired = type("S", (), {"models": ()})()


def test_text_markdown_and_drift_escape_keys_values_ids_reasons_and_notes():
    doc = _hostile_doc()
    text = render.render_text(doc)
    md = render.render_markdown(doc, _NoCharts())  # type: ignore[arg-type]
    dr = drift.render_text(doc)
    for out in (text, md, dr):
        assert raw_controls(out) == [], out
        assert "\\u001b[4A\\r\\u001b[J" in out and "\\u202e" in out and "\\u009b" in out
    # every line the plan has is one line: the key did not add or erase any
    # header, endpoint, blank; 3 lines per action; blank; "Notes:" and 2 notes; blank; summary
    assert len(text.splitlines()) == 3 + 3 + 3 + 1 + 3 + 1 + 1, text
    assert "      thresholds.ticket\\u001b[4A\\r\\u001b[J  ~ model/b-notes  update\\n metadata.ticket: 0.95 → 0.05" in text
    assert "metadata.ticket\\u001b" in dr and "because a\\u009b2Jb\\u202eq" in text


# --- through the CLI, on the embedded sandbox -------------------------------------------------------

MANIFEST = """version: 1
app:
  id: esc-app
  description: "app \\u202e\\x9b"
concepts:
  - id: walker
models:
  - id: gt
    type: concept-thresholder
    comparator: GREATER_THAN
    description: "{desc}"
    metadata:
      "{key}": "{value}"
    thresholds:
      walker: {threshold}
"""


def _manifest(path: Path, threshold: float, key: str = "team", value: str = "vision", desc: str = "") -> Path:
    path.write_text(MANIFEST.format(threshold=threshold, key=key, value=value, desc=desc))
    return path


@pytest.fixture
def embedded(tmp_path, monkeypatch):
    for var in ("CLARIFAI_PAT", "CLARIFAI_API_BASE", "CLARIFAI_USER_ID"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("RECONCILER_SANDBOX_DB", str(tmp_path / "sandbox.sqlite"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_every_human_output_escapes_a_hostile_metadata_key_and_json_stays_json(embedded, capsys, monkeypatch):
    base = _manifest(embedded / "base.yaml", 0.95)
    assert main(["apply", str(base), "--auto-approve"]) == 0
    capsys.readouterr()
    # YAML escapes: \e is ESC, \r CR, \n LF, \x9b C1 CSI, \u202e a right-to-left override
    key = "ticket\\e[4A\\r\\e[J  ~ model/b-notes  update\\n metadata.ticket"
    pr = _manifest(embedded / "pr.yaml", 0.05, key=key, value="v\\u202e\\x9b\\e[2K", desc="d\\e]0;title\\a\\u2066")
    outputs = {}
    for name, argv in {"plan": ["plan", pr], "markdown": ["plan", pr, "--markdown"],
                       "save": ["plan", pr, "--out", embedded / "p.json"], "show": ["show", embedded / "p.json"],
                       "show-md": ["show", embedded / "p.json", "--markdown"], "drift": ["drift", pr],
                       "json": ["plan", pr, "--json"], "drift-json": ["drift", pr, "--json"],
                       "show-json": ["show", embedded / "p.json", "--json"]}.items():
        main([str(a) for a in argv])
        outputs[name] = capsys.readouterr()
    monkeypatch.setattr("sys.stdin", _Terminal("no\n"))  # apply's confirmation, answered "no"
    assert main(["apply", str(pr)]) == 1
    outputs["confirm"] = capsys.readouterr()
    monkeypatch.setattr("sys.stdin", _Terminal("yes\n"))
    assert main(["apply", str(pr)]) == 0
    outputs["apply"] = capsys.readouterr()
    for name, (out, err) in outputs.items():
        assert raw_controls(out + err) == [], (name, out + err)
    assert "0.95 → 0.05" in outputs["plan"].out and "metadata.ticket\\u001b[4A\\r\\u001b[J" in outputs["plan"].out
    assert "Only 'yes' will be accepted" in outputs["confirm"].err
    assert "\\u202e" in outputs["show"].out and "\\u2066" in outputs["drift"].out
    for name in ("json", "drift-json", "show-json"):
        out = outputs[name].out
        assert out.isascii() and json.loads(out)["actions"], name
    changes = [c for a in json.loads(outputs["json"].out)["actions"] for c in a["changes"]]
    assert any(c["path"].startswith("metadata.ticket\x1b[4A\r\x1b[J") for c in changes), "JSON keeps the raw key"


def test_an_error_line_quoting_a_hostile_string_stays_escaped_a_defence_that_held(embedded, capsys):
    bad = embedded / "bad.yaml"
    bad.write_text("version: 1\napp:\n  id: \"x\\e[2J\\ry\"\n")
    assert main(["validate", str(bad)]) == 1
    _, err = capsys.readouterr()
    assert raw_controls(err) == [] and err.count("\n") >= 1, err
    assert main(["plan", str(bad)]) == 1
    _, err = capsys.readouterr()
    assert raw_controls(err) == [], err


def test_a_server_answering_nan_is_refused_so_plan_json_stays_json():
    """`NaN` / `Infinity` are not JSON (RFC 8259 section 6); Python's parser takes them, and they
    would come out of `plan --json` as invalid JSON. The client refuses such an answer."""
    import httpx

    from reconciler.api.client import Client
    from reconciler.core.errors import ApiError

    def nan_app(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b'{"status": {"code": 10000}, "app": {"id": "a", "metadata": {"x": NaN}}}',
                              headers={"Content-Type": "application/json"})

    client = Client("http://api.test", "k" * 32, transport=httpx.MockTransport(nan_app), rate_limit=0, max_retries=0)
    with pytest.raises(ApiError, match="invalid JSON response"):
        client.get("/v2/users/me/apps/a")
    client.close()
