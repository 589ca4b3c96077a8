"""Secrets: a recognisable PAT never appears in any stdout, stderr, log record, plan file, debug
trace, exported file or exception text.

The whole suite already runs with it: the e2e Harness authenticates with `SECRET_PAT` and
conftest fails any test whose captured output or failure text shows it. Here every verb runs with
``--pat-file`` (and once with ``CLARIFAI_PAT``) against a served sandbox that accepts that PAT, with
``--debug``, ``--out`` and failures injected, capturing everything it produces; and an ApiError is
built from a server that echoes the Authorization header back in its error body.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from typing import Any

import pytest
from e2e import EXAMPLES, ROOT, SECRET_PAT

from reconciler.api.client import Client
from reconciler.cli import main
from reconciler.core.errors import ApiError
from reconciler.sandbox.app import Sandbox
from reconciler.sandbox.server import running_server

EXAMPLE = EXAMPLES / "auto-annotation" / "manifest.yaml"


@pytest.fixture
def served(tmp_path, monkeypatch):
    for var in ("CLARIFAI_PAT", "CLARIFAI_API_BASE", "CLARIFAI_USER_ID"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("reconciler.api.client.random.uniform", lambda a, b: 0.0)
    sandbox = Sandbox(str(tmp_path / "s.sqlite"), keys={SECRET_PAT: "sandbox"}, training_delay_s=0)
    (tmp_path / "pat").write_text(SECRET_PAT + "\n")
    with running_server(sandbox) as url:
        yield sandbox, url, tmp_path
    sandbox.close()


def _no_secret(*texts: Any) -> None:
    for t in texts:
        text = str(t)
        assert SECRET_PAT not in text, f"the PAT leaked into: {text.replace(SECRET_PAT, '<THE PAT>')[:400]}"


def test_every_verb_with_debug_out_and_failures_never_shows_the_pat(served, capsys, caplog):
    sandbox, url, tmp = served
    caplog.set_level(logging.DEBUG)
    conn = ["--api-base", url, "--pat-file", str(tmp / "pat"), "--debug"]
    m = str(EXAMPLE)
    outputs: list[str] = []

    def run(*argv: str) -> int:
        code = main(list(argv))
        out, err = capsys.readouterr()
        outputs.extend([out, err])
        return code

    assert run("validate", m) == 0
    assert run("plan", m, *conn, "--out", str(tmp / "plan.json")) == 0
    assert run("plan", m, *conn, "--json") == 0
    assert run("plan", m, *conn, "--markdown") == 0
    assert run("apply", str(tmp / "plan.json"), *conn) == 0
    assert "[http]" in outputs[-1] and "Key ***" in outputs[-1], "the debug trace ran"
    assert run("drift", m, *conn) == 0, outputs[-2][:3000]
    assert run("export", "--app", "park-activity", "-o", str(tmp / "exported.yaml"), *conn) == 0
    # failures: a 500 mid-apply (retries off would be the same text), a dropped connection
    changed = tmp / "changed.yaml"
    changed.write_text(EXAMPLE.read_text().replace("0.85", "0.5"))
    sandbox.faults.fail_request(len(sandbox.request_log) + 14, mode="http500", when="before")
    for _ in range(7):  # enough 500s in a row that the client gives up and apply stops
        sandbox.faults.fail_request(len(sandbox.request_log) + 15 + _, mode="http500", when="before")
    run("apply", str(changed), "--auto-approve", *conn)
    sandbox.faults.clear()
    assert run("apply", str(changed), "--auto-approve", *conn) == 0
    assert run("plan", str(changed), *conn, "--detailed-exitcode") == 0
    # a wrong key, and an unreachable endpoint, with the PAT
    assert run("plan", m, "--api-base", "http://127.0.0.1:9", "--pat-file", str(tmp / "pat"), "--debug",
               "--timeout", "0.2", "--rate-limit", "0") == 1
    _no_secret(*outputs, *(r.getMessage() for r in caplog.records))
    _no_secret((tmp / "plan.json").read_text(), (tmp / "exported.yaml").read_text())
    for p in tmp.rglob("*"):
        if p.is_file() and p.suffix in (".json", ".yaml", ".txt", ".tmp"):
            _no_secret(p.read_text(errors="replace"))


def test_the_pat_from_the_environment_is_not_shown_either(served, capsys, monkeypatch):
    _sandbox, url, _tmp = served
    monkeypatch.setenv("CLARIFAI_PAT", SECRET_PAT)
    code = main(["apply", str(EXAMPLE), "--auto-approve", "--api-base", url, "--debug"])
    out, err = capsys.readouterr()
    assert code == 0, err
    _no_secret(out, err)


def test_as_a_subprocess_with_debug(served):
    _sandbox, url, tmp = served
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLARIFAI_")}
    env.update(PYTHONPATH=str(ROOT), CLARIFAI_PAT=SECRET_PAT)
    p = subprocess.run([sys.executable, "-m", "reconciler", "apply", str(EXAMPLE), "--auto-approve",
                        "--api-base", url, "--debug"], env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "[http]" in p.stderr
    _no_secret(p.stdout, p.stderr)


class Echo:
    """A server that puts the request's Authorization header into its error body (some proxies
    and debug endpoints do): description, details, and a nested field."""

    def __call__(self, environ, start_response):
        auth = environ.get("HTTP_AUTHORIZATION", "")
        body = json.dumps({"status": {"code": 11008, "description": f"bad key: {auth}",
                                      "details": f"you sent {auth}", "req_id": auth},
                           "echo": {"headers": [auth]}}).encode()
        start_response("401 Unauthorized", [("Content-Type", "application/json"),
                                            ("Content-Length", str(len(body)))])
        return [body]


def test_an_api_error_built_from_an_echoing_server_carries_no_pat():
    with running_server(Echo()) as url:  # type: ignore[arg-type]
        client = Client(url, SECRET_PAT, rate_limit=0, max_retries=0, debug=False)
        with pytest.raises(ApiError) as info:
            client.get("/v2/users/me/apps/x")
        err = info.value
        _no_secret(str(err), repr(err), err.description, err.req_id, json.dumps(err.details), repr(client),
                   err.args)
        for name, value in vars(err).items():
            _no_secret(f"{name}={value!r}")


def test_apply_with_a_pat_and_no_user_id_converges(served, capsys):
    """Found by this file: with only a PAT (no --user, no app.user_id, no CLARIFAI_USER_ID) a fresh
    apply wrote the annotation writers without their default user (the owner was unknown at plan
    time), so the next plan showed new versions for them. Apply now asks the API for the owner."""
    _sandbox, url, tmp = served
    conn = ["--api-base", url, "--pat-file", str(tmp / "pat")]
    assert main(["apply", str(EXAMPLE), "--auto-approve", *conn]) == 0
    assert main(["plan", str(EXAMPLE), "--detailed-exitcode", *conn]) == 0, capsys.readouterr().out
    _no_secret(*capsys.readouterr())


# --- issue 11: a PAT HTTP cannot carry; the PAT inside values the API returns -------------------------

_HALVES = (SECRET_PAT[:12], SECRET_PAT[12:])


@pytest.mark.parametrize("flaw, inserted", [("a NUL byte", "\x00"), ("a line break", "\n"),
                                            ("a line break", "\r"), ("a non-ASCII character", "é"),
                                            ("a non-ASCII character", "\u2028"),
                                            ("a control character", "\x7f")])
@pytest.mark.parametrize("source", ["pat-file", "env"])
def test_a_pat_http_cannot_carry_is_refused_up_front_by_source_never_by_value(flaw, inserted, source, served,
                                                                               capsys, monkeypatch):
    sandbox, url, tmp = served
    bad = _HALVES[0] + inserted + _HALVES[1]
    argv = ["plan", str(EXAMPLE), "--api-base", url, "--debug"]
    if source == "pat-file":
        (tmp / "badpat").write_bytes(bad.encode("utf-8") + b"\n")
        argv += ["--pat-file", str(tmp / "badpat")]
        named = f"the PAT in {tmp / 'badpat'}"
    else:
        if inserted == "\x00":
            pytest.skip("an environment variable cannot hold a NUL byte")
        monkeypatch.setenv("CLARIFAI_PAT", bad)
        named = "the CLARIFAI_PAT environment variable"
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 1
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines == [f"error: {named} contains {flaw}: a PAT is one token of visible ASCII, the only "
                     "kind an HTTP header carries safely; check the value (not shown here)"], err
    for half in _HALVES:
        assert half not in out + err
    assert len(sandbox.request_log) == 0, "a request was sent with the bad PAT"


def test_the_client_itself_refuses_such_a_pat_without_showing_it():
    from reconciler.core.errors import ReconcilerError

    for inserted in ("\x00", "\n", "é"):
        with pytest.raises(ReconcilerError) as info:
            Client("http://127.0.0.1:9", _HALVES[0] + inserted + _HALVES[1], rate_limit=0)
        for half in _HALVES:
            assert half not in str(info.value) and half not in repr(info.value)


def test_a_pat_inside_values_the_api_returns_is_masked_in_every_output_and_file(served, capsys):
    """A description or metadata value that holds the PAT (pasted by mistake, or echoed) is shown
    with the PAT as ***, everywhere: text, JSON and Markdown plans, the saved plan, drift, export,
    errors. conftest also fails this test if the PAT shows in anything captured."""
    sandbox, url, tmp = served
    client = Client(url, SECRET_PAT, rate_limit=0)
    client.post("/v2/users/me/apps", {"apps": [{"id": "park-activity", "description": f"key {SECRET_PAT} oops",
                                                "metadata": {"note": SECRET_PAT, "nested": [SECRET_PAT]}}]})
    client.close()
    conn = ["--api-base", url, "--pat-file", str(tmp / "pat")]
    outputs: list[str] = []
    for argv in (["plan", str(EXAMPLE)], ["plan", str(EXAMPLE), "--json"], ["plan", str(EXAMPLE), "--markdown"],
                 ["plan", str(EXAMPLE), "--out", str(tmp / "plan.json")], ["drift", str(EXAMPLE)],
                 ["drift", str(EXAMPLE), "--json"],
                 ["export", "--app", "park-activity", "-o", str(tmp / "exported.yaml")],
                 ["export", "--app", "park-activity"]):
        main([*argv, *conn])
        out, err = capsys.readouterr()
        outputs += [out, err]
    files = [(tmp / "plan.json").read_text(), (tmp / "exported.yaml").read_text()]
    _no_secret(*outputs, *files)
    shown = "\n".join(outputs + files)
    assert "key *** oops" in shown, "the description is shown, with the PAT masked"
    assert "key *** oops" in files[1], files[1][:800]


# --- issue 20, findings 7 and 8: escaped forms, a PAT in a bad URL, record, a PAT too short ---------

QUOTED_PAT = 'Zq9sec"ret\\PAT-0d5c8e1f9a7b'  # a " and a \: JSON writes it as Zq9sec\"ret\\PAT-...


def _forms_of(pat: str) -> list[str]:
    return [pat, json.dumps(pat)[1:-1], repr(pat)[1:-1]]


def test_a_pat_echoed_by_the_server_is_masked_in_its_json_escaped_form_too(tmp_path, capsys, monkeypatch):
    for var in ("CLARIFAI_PAT", "CLARIFAI_API_BASE", "CLARIFAI_USER_ID"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    sandbox = Sandbox(str(tmp_path / "s.sqlite"), keys={QUOTED_PAT: "sandbox"}, training_delay_s=0)
    (tmp_path / "pat").write_text(QUOTED_PAT + "\n")
    with running_server(sandbox) as url:
        client = Client(url, QUOTED_PAT, rate_limit=0)
        client.post("/v2/users/me/apps", {"apps": [{"id": "park-activity", "description": f"key {QUOTED_PAT} oops",
                                                    "metadata": {"note": QUOTED_PAT}}]})
        client.close()
        conn = ["--api-base", url, "--pat-file", str(tmp_path / "pat")]
        outputs = []
        for extra in (["--json"], ["--markdown"], [], ["--out", str(tmp_path / "plan.json")]):
            assert main(["plan", str(EXAMPLE), *conn, *extra]) == 0
            outputs += list(capsys.readouterr())
        assert main(["drift", str(EXAMPLE), *conn, "--json"]) == 2
        outputs += list(capsys.readouterr())
        assert main(["export", "--app", "park-activity", *conn, "-o", str(tmp_path / "e.yaml")]) == 0
        outputs += list(capsys.readouterr())
    sandbox.close()
    files = [(tmp_path / "plan.json").read_text(), (tmp_path / "e.yaml").read_text()]
    for text in outputs + files:
        for form in _forms_of(QUOTED_PAT):
            assert form not in text, f"the PAT leaked as {form!r}"
    assert json.loads(outputs[0])["actions"], "plan --json is still JSON"
    assert "key *** oops" in json.loads(outputs[0])["actions"][0]["changes"][0]["before"]
    # the saved plan and the export are still what the tool reads back: valid JSON and YAML
    assert json.loads(files[0])["kind"] == "reconciler-plan"
    assert main(["validate", str(tmp_path / "e.yaml")]) == 0, capsys.readouterr()


@pytest.mark.parametrize("base", ["http://u:{pat}@[::1", "http://{pat}@127.0.0.1:abc", "http://[{pat}]/",
                                  "http://u:{pat}@127.0.0.1:9", "http://127.0.0.1:9/{pat}\nx"])
def test_a_pat_inside_a_malformed_api_base_is_never_printed(base, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CLARIFAI_PAT", SECRET_PAT)
    monkeypatch.chdir(tmp_path)
    code = main(["plan", str(EXAMPLE), "--api-base", base.format(pat=SECRET_PAT)])
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert len(err.splitlines()) == 1 and err.startswith("error: --api-base '") and "is not a usable URL" in err, err
    assert "***" in err
    _no_secret(out, err)


def test_record_never_writes_a_pat_a_server_returns_as_an_input_id(tmp_path):
    from e2e import Harness

    from reconciler.annotate.record import RecordOptions, record

    h = Harness(tmp_path)
    desired = h.desired(EXAMPLE)
    h.apply(desired)
    base = h.base("park-activity")
    ids = ["in-ok", SECRET_PAT]  # an input whose id is the PAT (made by someone, or echoed)
    h.client.post(base + "/inputs", {"inputs": [{"id": i, "data": {"image": {"url": f"https://x.example/{n}.jpg"}}}
                                                for n, i in enumerate(ids)]})
    lines: list[str] = []
    out = tmp_path / "p.jsonl"
    record(h.client, desired, RecordOptions(predictions=str(out), input_ids=tuple(ids)), progress=lines.append)
    text = out.read_text()
    assert SECRET_PAT not in text and "in-ok" in text
    assert any("left out an output whose input or concept id holds the PAT" in line for line in lines)
    h.sandbox.close()


@pytest.mark.parametrize("pat", ["a", "x1", "1234567"])
@pytest.mark.parametrize("source", ["env", "pat-file"])
def test_a_pat_too_short_to_be_one_is_refused_in_one_line_before_any_request(pat, source, served, capsys,
                                                                                 monkeypatch):
    sandbox, url, tmp = served
    argv = ["plan", str(EXAMPLE), "--api-base", url]
    if source == "env":
        monkeypatch.setenv("CLARIFAI_PAT", pat)
        named = "the CLARIFAI_PAT environment variable"
    else:
        (tmp / "short").write_text(pat + "\n")
        argv += ["--pat-file", str(tmp / "short")]
        named = f"the PAT in {tmp / 'short'}"
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert err.splitlines() == [f"error: {named} is {len(pat)} character(s) long: too short to be a PAT (Clarifai's "
                                "are 32 characters; at least 8 are needed); check the value (not shown here)"]
    assert "***" not in err and len(sandbox.request_log) == 0


def test_redaction_never_changes_what_apply_recognises_in_a_server_error():
    """A PAT that is part of a word ("a" in "duplicate") is redacted from the error shown, but
    the outcome is recognised from the server's words as sent: a duplicate stays a duplicate."""
    from reconciler.apply.base import _is_duplicate, _is_not_found

    class Dup:
        def __call__(self, environ, start_response):
            body = json.dumps({"status": {"code": 40003, "description": "Invalid request",
                                          "details": "Duplicate concept id: 'walker' already exists",
                                          "req_id": "r1"}}).encode()
            start_response("400 Bad Request", [("Content-Type", "application/json"),
                                               ("Content-Length", str(len(body)))])
            return [body]

    with running_server(Dup()) as url:  # type: ignore[arg-type]
        for pat in ("a", "plicat", "already"):
            client = Client(url, pat, rate_limit=0, max_retries=0)
            with pytest.raises(ApiError) as info:
                client.post("/v2/users/me/apps/x/concepts", {"concepts": [{"id": "walker"}]})
            client.close()
            err = info.value
            assert pat not in str(err) and "***" in str(err)  # shown redacted
            assert _is_duplicate(err) and not _is_not_found(err), pat  # recognised as sent
