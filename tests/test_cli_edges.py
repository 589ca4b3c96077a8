"""Issue 20, finding 17 (the parts outside `tune --write`; each test failed before its fix):
`--quirks pessimistic,bogus` and `--quirks ""` are errors naming the valid quirks; `show --markdown
--max-chars 400` never cuts a row in two (harden-b's budget rework; `--max-chars` is at least 200); a closed stderr
(`apply ... 2>&1 >/dev/null | head -3`) no longer stops an apply part-way; the sandbox server
closes a trickling (slowloris) connection at an overall per-request deadline."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from e2e import ROOT

from reconciler.cli import main
from reconciler.sandbox import quirks as Q
from reconciler.sandbox.app import DEFAULT_KEY, Sandbox
from reconciler.sandbox.server import running_server

#: 61 actions, none of them a training wait: an apply whose progress fills a pipe quickly
MANY = "app: {id: many}\nconcepts:\n" + "".join(f"  - id: c{i}\n" for i in range(40)) + "models:\n" + "".join(
    f"  - {{id: m{i}, type: concept-thresholder, comparator: GREATER_THAN, thresholds: {{c{i}: 0.5}}}}\n" for i in range(20))


@pytest.fixture
def embedded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A manifest and the embedded sandbox the CLI uses for it (no PAT)."""
    for var in ("CLARIFAI_PAT", "CLARIFAI_API_BASE", "CLARIFAI_USER_ID", "CI", "RECONCILER_REQUIRE_CREDENTIALS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("RECONCILER_SANDBOX_DB", str(tmp_path / "sandbox.sqlite"))
    manifest = tmp_path / "many.yaml"
    manifest.write_text(MANY)
    return manifest


# --- --quirks ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("spec, words", [
    ("pessimistic,bogus", ["unknown sandbox quirk 'bogus'"]),
    ("bogus,all", ["unknown sandbox quirk 'bogus'"]),
    ("", ["names no quirk"]),
    (" , ", ["names no quirk"]),
])
def test_quirks_that_name_nothing_or_a_typo_are_one_line(spec: str, words: list[str], tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.sandbox import server

    def stop_at_once(self: Any, poll_interval: float = 0.5) -> None:
        raise KeyboardInterrupt  # a serve that (wrongly) starts returns at once instead of serving on

    monkeypatch.setattr(server._Server, "serve_forever", stop_at_once)
    db = tmp_path / "s.sqlite"
    rc = main(["sandbox", "serve", "--port", "0", "--db", str(db), "--quirks", spec])
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1 and err.startswith("error: --quirks"), err
    for w in words + ["pessimistic (all)", *Q.QUIRKS]:
        assert w in err, err
    assert not db.exists()  # refused before the database is opened
    if spec.strip(" ,"):
        with pytest.raises(ValueError, match="unknown sandbox quirk 'bogus'"):
            Q.parse(spec)


# --- Markdown budget: whole rows only -------------------------------------------------------------

def test_markdown_max_chars_cuts_at_row_boundaries_and_counts_the_rest(embedded: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    plan_file = embedded.parent / "plan.json"
    assert main(["plan", str(embedded), "--out", str(plan_file)]) == 0
    capsys.readouterr()
    for budget in (200, 400, 700, 1500):
        assert main(["show", str(plan_file), "--markdown", "--max-chars", str(budget)]) == 0
        md = capsys.readouterr().out.removesuffix("\n")
        assert len(md) <= budget, (budget, len(md))
        lines = md.splitlines()
        for line in lines:
            if line.startswith("|"):
                assert line.endswith("|"), f"a row cut in two at --max-chars {budget}: {line!r}"
        assert "left out" in md or "more" in md, md  # what does not fit is counted, never dropped silently


def test_cut_at_lines_keeps_whole_lines_and_counts_the_others() -> None:
    """The last resort of the Markdown budget (a budget smaller than the lines it always keeps)."""
    from reconciler.planning.render import cut_at_lines

    rows = [f"| `+` | `concept/c{i:03d}` | create | `name`: (none) → \"c{i}\" |" for i in range(40)]
    text = "\n".join(["### Plan", "", "| | Resource | Action | Changes |", "|---|---|---|---|", *rows]) + "\n"
    assert cut_at_lines(text, len(text)) == text
    for budget in (200, 333, 1000, len(text) - 1):
        out = cut_at_lines(text, budget)
        assert len(out) <= budget
        body, note = out.rsplit("\n\n", 1)
        kept = body.splitlines()
        assert text.startswith(body + "\n") and kept == text.splitlines()[: len(kept)]
        assert note == f"_… {len(text.splitlines()) - len(kept)} more line(s) left out to stay under {budget} characters " \
                       "(`reconciler show PLAN` has them all)._\n"


def test_max_chars_below_a_usable_size_is_a_usage_error(embedded: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(embedded), "--markdown", "--max-chars", "50"]) == 1
    err = capsys.readouterr().err
    assert "--max-chars: must be at least 200" in err and err.count("\n") == 1, err


# --- a closed stderr ------------------------------------------------------------------------------

class _ClosesAfter(io.StringIO):
    """A stderr whose reader goes away after `n` writes (what `| head -3` does to a pipe)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.left = n

    def write(self, text: str) -> int:
        if self.left <= 0:
            raise BrokenPipeError(32, "Broken pipe")
        self.left -= 1
        return super().write(text)

    def flush(self) -> None:
        if self.left <= 0:
            raise BrokenPipeError(32, "Broken pipe")


def test_apply_goes_on_when_stderr_is_closed(embedded: Path, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    with capsys.disabled(), monkeypatch.context() as m:
        m.setattr(sys, "stderr", _ClosesAfter(3))
        m.setattr(sys, "stdout", io.StringIO())
        rc = main(["apply", str(embedded), "--auto-approve"])
    assert rc == 0
    rc = main(["plan", str(embedded), "--detailed-exitcode"])
    out = capsys.readouterr().out
    assert rc == 0 and "No changes" in out, out  # every action was applied


def test_apply_piped_into_head_finishes_and_exits_0(embedded: Path) -> None:
    """The issue's own command line, through a real pipe that `head -3` closes."""
    env = {k: v for k, v in os.environ.items() if k not in ("CLARIFAI_PAT", "CLARIFAI_API_BASE", "CI")}
    env["RECONCILER_SANDBOX_DB"] = os.environ["RECONCILER_SANDBOX_DB"]
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    script = f'"{sys.executable}" -m reconciler apply "{embedded}" --auto-approve 2>&1 >/dev/null | head -3; exit ${{PIPESTATUS[0]}}'
    proc = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert len(proc.stdout.splitlines()) == 3
    plan = subprocess.run([sys.executable, "-m", "reconciler", "plan", str(embedded), "--detailed-exitcode"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert plan.returncode == 0, plan.stdout + plan.stderr


def test_stderr_closed_from_the_start_is_not_an_error(embedded: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`reconciler ... 2>&-`: Python starts with sys.stderr None; notes and errors are dropped,
    the exit code still tells."""
    bad = embedded.parent / "bad.yaml"
    bad.write_text("app: {id: x, descripton: typo}\n")
    monkeypatch.setattr(sys, "stderr", None)
    assert main(["validate", str(bad)]) == 1
    assert main(["apply", str(embedded), "--auto-approve"]) == 0
    assert main(["plan", str(embedded), "--detailed-exitcode"]) == 0


# --- slowloris ------------------------------------------------------------------------------------

def _trickle(url: str, data: bytes, every: float, limit: float) -> tuple[float, bool]:
    """Send `data` a byte at a time, `every` seconds apart, for at most `limit` seconds; returns
    (seconds until the server closed the connection, whether it did)."""
    host, port = url.split("//", 1)[1].rsplit(":", 1)
    t0 = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=limit) as s:
        s.settimeout(every)
        for byte in data:
            if time.monotonic() - t0 > limit:
                return time.monotonic() - t0, False
            try:
                s.sendall(bytes([byte]))
                got = s.recv(65536)  # times out while the server waits; b"" or a reset once it hangs up
                if got == b"" or got.startswith(b"HTTP/"):
                    return time.monotonic() - t0, True
            except TimeoutError:
                continue
            except (ConnectionResetError, BrokenPipeError):
                return time.monotonic() - t0, True
    return time.monotonic() - t0, False


@pytest.mark.parametrize("part", ["request-line", "headers", "body"])
def test_sandbox_closes_a_trickling_connection_at_the_request_deadline(tmp_path: Path, part: str) -> None:
    sandbox = Sandbox(str(tmp_path / "srv.sqlite"))
    head = b"POST /v2/users/me/apps HTTP/1.1\r\nHost: x\r\nAuthorization: Key " + DEFAULT_KEY.encode() + b"\r\n"
    data: dict[str, Any] = {
        "request-line": b"GET /v2/users/me/apps/" + b"a" * 200 + b" HTTP/1.1\r\n",
        "headers": head + b"X-Slow: " + b"b" * 200 + b"\r\n\r\n",
        "body": head + b"Content-Length: 300\r\n\r\n" + b"{" + b" " * 299,
    }
    with running_server(sandbox, read_timeout=0.5, request_deadline=0.8) as url:
        # a byte every 0.05 s never leaves the connection silent for read_timeout
        elapsed, closed = _trickle(url, data[part], every=0.05, limit=6.0)
        assert closed, f"the server still read the trickle after {elapsed:.1f} s"
        assert 0.7 < elapsed < 4.0, elapsed
        # and it serves a normal request afterwards
        host, port = url.split("//", 1)[1].rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=5) as s:
            s.sendall(b"GET /v2/users/me/apps HTTP/1.0\r\nAuthorization: Key " + DEFAULT_KEY.encode() + b"\r\n\r\n")
            assert s.recv(100).startswith(b"HTTP/1.0 200")
    assert not sandbox.internal_errors, sandbox.internal_errors
    sandbox.close()
