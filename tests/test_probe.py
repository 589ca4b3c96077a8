"""`reconciler probe` (reconciler/api/probe.py, commands/probe.py): against the sandbox it
identifies each quirk as observed when the sandbox plays it, and none when it plays none; its
recording is the parity corpus's format, masks user ids, never holds the PAT, and replays
(tests/parity/test_probe_replay.py). Every request it sends is a valid V2 request but one: the
DELETE that sends a body on purpose, to see whether the API refuses it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import REQUESTS
from e2e import SECRET_PAT

from reconciler.api import probe
from reconciler.api.client import Client
from reconciler.api.transport import sandbox_transport
from reconciler.sandbox import quirks as Q
from reconciler.sandbox.app import DEFAULT_USER, Sandbox
from tests.parity.test_probe_replay import replay

ROOT = Path(__file__).resolve().parent.parent
APP = "probe-app"
DELIBERATE = ("DELETE", f"/v2/users/{DEFAULT_USER}/apps/{APP}/models/{probe.SPARE}")


@contextmanager
def _checked() -> Iterator[None]:
    """Every request sent inside is a valid V2 request except the probe's deliberate DELETE with a
    body (then dropped from the session's record, so the test does not fail for it), and each
    recorded RPC name is the one clarifai-grpc's bindings give."""
    with REQUESTS.watching() as seen:
        yield
    bad = [c for c in seen if c.problems]
    assert all((c.method, c.path) == DELIBERATE and c.rpc == "DeleteModel" for c in bad), bad
    assert len(bad) == 1, bad
    REQUESTS.forget(bad)


def _probe(tmp_path: Path, quirks: str | None) -> dict[str, probe.Verdict]:
    sb = Sandbox(str(tmp_path / "sb.sqlite"), training_delay_s=0, quirks=quirks, keys={SECRET_PAT: DEFAULT_USER})
    client = Client("http://sandbox.local", SECRET_PAT, user_id=DEFAULT_USER, transport=sandbox_transport(sb), rate_limit=0)
    with _checked():
        rec = probe.run(client, APP)
    verdicts = probe.judge(probe.masked(rec).exchanges, APP)
    # the app is gone again, and the recorded RPC names are the right ones
    assert sb.store is not None and not any(a["id"] == APP for a in _apps(sb))
    sb.close()
    return {v.quirk: v for v in verdicts}


def _apps(sb: Sandbox) -> list[dict[str, object]]:
    with sb.store.transaction() as tx:
        return list(tx.apps_of(DEFAULT_USER))


def test_every_quirk_has_a_probe_and_every_probe_a_quirk() -> None:
    assert set(probe.PROBES) == set(Q.QUIRKS)


def test_the_normal_sandbox_shows_no_quirk(tmp_path: Path) -> None:
    verdicts = _probe(tmp_path, None)
    assert {q: v.observed for q, v in verdicts.items()} == dict.fromkeys(Q.QUIRKS, probe.NOT_OBSERVED)


@pytest.mark.parametrize("quirk", sorted(Q.QUIRKS))
def test_the_probe_identifies_each_quirk(quirk: str, tmp_path: Path) -> None:
    verdicts = _probe(tmp_path, quirk)
    observed = {q for q, v in verdicts.items() if v.observed == probe.OBSERVED}
    assert observed == {quirk}, {q: (v.observed, v.evidence) for q, v in verdicts.items()}
    assert all(v.observed == probe.NOT_OBSERVED for q, v in verdicts.items() if q != quirk)
    assert verdicts[quirk].line().startswith(f"{quirk}: {probe.PROBES[quirk]} -> observed")


def test_the_pessimistic_sandbox_shows_every_quirk_but_one_default_workflow_reading(tmp_path: Path) -> None:
    verdicts = _probe(tmp_path, "pessimistic")
    missing = {q for q, v in verdicts.items() if v.observed != probe.OBSERVED}
    # both default-workflow quirks together: each app plays one of them (quirks.default_workflow_fields)
    assert missing in ({Q.DEFAULT_WORKFLOW_ID_IGNORED}, {Q.DEFAULT_WORKFLOW_OBJECT_IGNORED}), missing


def test_judging_needs_the_evidence() -> None:
    verdicts = probe.judge([], APP)
    assert {v.observed for v in verdicts} == {probe.UNKNOWN}


# --- the verb, its recording, and the served sandbox ----------------------------------------------

@contextmanager
def _served(workdir: Path, quirks: str) -> Iterator[str]:
    out_path = workdir / "serve.out"
    with open(out_path, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "reconciler", "sandbox", "serve", "--host", "127.0.0.1", "--port", "0",
                                 "--db", str(workdir / "served.sqlite"), "--quirks", quirks],
                                cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"},
                                stdout=out, stderr=subprocess.DEVNULL)
    try:
        deadline, url = time.monotonic() + 30, None
        while url is None and time.monotonic() < deadline and proc.poll() is None:
            found = re.search(r"http://127\.0\.0\.1:\d+", out_path.read_text())
            url = found.group(0) if found else None
            time.sleep(0.05)
        assert url, out_path.read_text()
        yield url
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_the_verb_against_sandbox_serve_records_and_replays(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.cli import main

    monkeypatch.delenv("CLARIFAI_PAT", raising=False)
    quirks = [Q.HOSTED_IMAGE, Q.STATUS_CODE_NAMES]
    record = tmp_path / "rec"
    record.mkdir()
    (record / "probe-99-stale.json").write_text("{}")  # an earlier recording is replaced
    with _served(tmp_path, ",".join(quirks)) as url, _checked():
        rc = main(["probe", "--app", APP, "--api-base", url, "--record", str(record)])
    out = capsys.readouterr().out
    assert rc == 0
    lines = [ln for ln in out.splitlines() if " -> " in ln]
    assert len(lines) == len(Q.QUIRKS)
    for q in Q.QUIRKS:
        want = probe.OBSERVED if q in quirks else probe.NOT_OBSERVED
        assert any(ln.startswith(f"{q}: {probe.PROBES[q]} -> {want}") for ln in lines), (q, out)
    assert f"in {record}" in out and not (record / "probe-99-stale.json").exists()
    verdicts = replay(record)
    assert {q for q, v in verdicts.items() if v == probe.OBSERVED} == set(quirks)
    text = "".join(p.read_text() for p in record.glob("*.json"))
    assert DEFAULT_USER not in text  # user ids masked (the sandbox's user is "sandbox")
    assert probe.USER_MASK in text and SECRET_PAT not in text
    case = json.loads(next(record.glob("probe-01-*.json")).read_text())
    assert set(case) >= {"rpc", "app_id", "source", "note", "format", "http_status", "body", "label", "request"}
    assert case["format"] == "json" and case["source"]["probe"] == "reconciler probe"


def test_the_verb_with_no_pat_uses_the_embedded_sandbox_and_refuses_an_existing_app(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.cli import main

    monkeypatch.delenv("CLARIFAI_PAT", raising=False)
    monkeypatch.delenv("CLARIFAI_API_BASE", raising=False)
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("RECONCILER_SANDBOX_DB", str(tmp_path / "embedded.sqlite"))
    with _checked():
        assert main(["probe", "--app", APP, "--no-record", "--keep"]) == 0
    captured = capsys.readouterr()
    assert "embedded local sandbox" in captured.err and captured.out.count(" -> not observed") == len(Q.QUIRKS)
    with REQUESTS.watching() as seen:
        assert main(["probe", "--app", APP, "--no-record"]) == 1  # kept: it exists now
    err = [ln for ln in capsys.readouterr().err.splitlines() if not ln.startswith("note: ")]
    assert len(err) == 1 and f"cannot make the throwaway app {APP}" in err[0] and "Traceback" not in err[0]
    assert [c.rpc for c in seen] == ["PostApps"]  # refused before anything else was sent


@pytest.mark.parametrize("bad", ["", "has space", "x" * 49])
def test_a_bad_app_id_is_one_line_and_no_request(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    from reconciler.cli import main

    with REQUESTS.watching() as seen:
        assert main(["probe", "--app", bad, "--no-record", "--api-base", "http://127.0.0.1:9"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--app" in err and seen == []
