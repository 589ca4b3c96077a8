"""`connect()`: where the PAT, user and base URL come from, and its one-line errors."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from reconciler.commands.connect import connect, sandbox_db_path
from reconciler.core.errors import ReconcilerError

PAT = "PAT-SECRET-xyz123"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in ("CLARIFAI_PAT", "CLARIFAI_USER_ID", "CLARIFAI_API_BASE", "RECONCILER_SANDBOX_DB"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)


def test_env_pat_and_default_base(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLARIFAI_PAT", PAT)
    monkeypatch.setenv("CLARIFAI_USER_ID", "env-user")
    c = connect()
    assert c.base_url == "https://api.clarifai.com" and c.user_id == "env-user"
    assert c._pat.reveal() == PAT and PAT not in repr(c)
    assert c.limiter.interval == pytest.approx(1 / 15)


def test_user_precedence_flag_then_manifest_then_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLARIFAI_PAT", PAT)
    monkeypatch.setenv("CLARIFAI_USER_ID", "env-user")
    assert connect(manifest_user_id="owner").user_id == "owner"
    assert connect(user_id="flag", manifest_user_id="owner").user_id == "flag"
    monkeypatch.delenv("CLARIFAI_USER_ID")
    c = connect()
    assert c.user_id is None and c.app_path("a") == "/v2/users/me/apps/a"


def test_pat_file_and_api_base(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CLARIFAI_PAT", "from-env")
    f = tmp_path / "pat"
    f.write_text(PAT + "\n")
    c = connect(pat_file=str(f), api_base="https://example.test/v2/", rate_limit=3)
    assert c._pat.reveal() == PAT and c.base_url == "https://example.test"
    assert c.limiter.interval == pytest.approx(1 / 3)
    monkeypatch.setenv("CLARIFAI_API_BASE", "http://10.0.0.1:9000")
    assert connect().base_url == "http://10.0.0.1:9000"


@pytest.mark.parametrize("content,needle", [(None, "cannot read PAT file"), ("", "exactly one token"),
                                            ("a b", "exactly one token")])
def test_pat_file_errors_are_one_line(tmp_path: Path, content: str | None, needle: str) -> None:
    f = tmp_path / "pat"
    if content is not None:
        f.write_text(content)
    with pytest.raises(ReconcilerError) as ei:
        connect(pat_file=str(f))
    assert needle in str(ei.value) and "\n" not in str(ei.value)


def test_bad_base_and_missing_pat_for_remote_base() -> None:
    with pytest.raises(ReconcilerError, match="http:// or https://"):
        connect(api_base="api.clarifai.com")
    with pytest.raises(ReconcilerError, match="no PAT for https://api.clarifai.com"):
        connect(api_base="https://api.clarifai.com")


def test_debug_trace_goes_to_given_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLARIFAI_PAT", PAT)
    err = io.StringIO()
    assert connect(debug=True, stderr=err).debug is err
    assert connect(stderr=err).debug is None


def test_sandbox_db_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert sandbox_db_path() == tmp_path / ".reconciler" / "sandbox.sqlite"
    monkeypatch.setenv("RECONCILER_SANDBOX_DB", str(tmp_path / "x.sqlite"))
    assert sandbox_db_path() == tmp_path / "x.sqlite"


def test_missing_pat_fails_closed_in_ci_and_when_required(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    err = io.StringIO()
    for setup in (lambda: monkeypatch.setenv("CI", "true"),
                  lambda: monkeypatch.setenv("RECONCILER_REQUIRE_CREDENTIALS", "1")):
        monkeypatch.delenv("CI", raising=False)
        monkeypatch.delenv("RECONCILER_REQUIRE_CREDENTIALS", raising=False)
        setup()
        with pytest.raises(ReconcilerError, match="no Clarifai credentials") as ei:
            connect(stderr=err)
        assert "\n" not in str(ei.value)
    monkeypatch.delenv("RECONCILER_REQUIRE_CREDENTIALS")
    with pytest.raises(ReconcilerError, match="--require-credentials is given"):
        connect(require_credentials=True, stderr=err)
    assert err.getvalue() == "" and not (tmp_path / ".reconciler").exists()
    # a PAT, or an explicitly named loopback server, is fine in CI
    monkeypatch.setenv("CI", "true")
    monkeypatch.setenv("CLARIFAI_PAT", PAT)
    assert connect().endpoint == "https://api.clarifai.com"
    monkeypatch.delenv("CLARIFAI_PAT")
    assert connect(api_base="http://127.0.0.1:9").endpoint == "http://127.0.0.1:9"


def test_embedded_sandbox_is_found_upwards_and_named_as_endpoint(tmp_path: Path) -> None:
    from reconciler.commands.connect import find_sandbox

    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    assert find_sandbox(deep) == (deep / ".reconciler" / "sandbox.sqlite",
                                  "a new .reconciler/ next to the manifest: none was found there or above it")
    (tmp_path / "a" / ".reconciler").mkdir()
    assert find_sandbox(deep) == (tmp_path / "a" / ".reconciler" / "sandbox.sqlite",
                                  "the nearest .reconciler/ above the manifest")
    assert find_sandbox(tmp_path / "a")[1] == "the .reconciler/ next to the manifest"
    err = io.StringIO()
    c = connect(sandbox_from=deep, stderr=err)
    assert c.endpoint == f"local sandbox at {tmp_path / 'a' / '.reconciler' / 'sandbox.sqlite'}"
    assert "the nearest .reconciler/ above the manifest" in err.getvalue()
    c.close()


def test_a_new_sandbox_goes_to_the_project_root(tmp_path: Path) -> None:
    """One sandbox per project: with no .reconciler/ anywhere, the new one is made at the folder of
    reconciler.yaml, else of .git, so a plan on an example's manifest and `sandbox serve` at the top
    of the repository share it (issue 23)."""
    from reconciler.commands.connect import find_sandbox

    deep = tmp_path / "repo" / "examples" / "one"
    deep.mkdir(parents=True)
    (tmp_path / "repo" / ".git").mkdir()
    path, how = find_sandbox(deep)
    assert path == tmp_path / "repo" / ".reconciler" / "sandbox.sqlite"
    assert "project root" in how
    assert find_sandbox(tmp_path / "repo")[0] == path  # run at the top: the same file
    (tmp_path / "repo" / "examples" / "reconciler.yaml").write_text("apps: []\n")
    assert find_sandbox(deep)[0] == tmp_path / "repo" / "examples" / ".reconciler" / "sandbox.sqlite"


def test_sandbox_flag_wins_over_a_pat(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CLARIFAI_PAT", PAT)
    monkeypatch.setenv("CI", "true")  # explicit --sandbox is not a missing credential
    err = io.StringIO()
    c = connect(force_sandbox=True, sandbox_from=tmp_path, stderr=err)
    assert c.endpoint.startswith("local sandbox at ")
    assert "--sandbox is given: using the embedded local sandbox" in err.getvalue()
    assert PAT not in repr(c) and PAT not in err.getvalue()
    c.close()
    with pytest.raises(ReconcilerError, match="cannot be combined with --api-base"):
        connect(force_sandbox=True, api_base="http://127.0.0.1:9")
    with pytest.raises(ReconcilerError, match="contradict"):
        connect(force_sandbox=True, require_credentials=True)


# --- issue 20, finding 13: a malformed API base is one clear line, never "internal error" ------------

@pytest.mark.parametrize("base, why", [
    ("http://[::1", "Invalid IPv6 URL"),
    ("http://[zz]/", "does not appear to be an IPv4 or IPv6 address"),
    ("http://127.0.0.1:abc", "Port could not be cast to integer"),
    ("http://127.0.0.1:99999", "Port out of range"),
    ("http://127.0.0.1:9/\nx", "line break or control character"),
    ("http://127.0.0.1:9/\x1b[2J", "line break or control character"),
    ("http://a b", "line break or control character"),
    ("http://", "names no host"),
    ("http://user:pw@127.0.0.1:9", "holds a user name or password"),
    ("http://127.0.0.1:9/?x=1", "query or fragment"),
])
@pytest.mark.parametrize("source", ["--api-base", "CLARIFAI_API_BASE"])
def test_a_malformed_api_base_is_one_clear_line(base: str, why: str, source: str, capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.cli import main

    monkeypatch.setenv("CLARIFAI_PAT", PAT)
    argv = ["plan", str(Path(__file__).parent.parent / "examples" / "auto-annotation" / "manifest.yaml")]
    if source == "--api-base":
        argv += ["--api-base", base]
    else:
        monkeypatch.setenv("CLARIFAI_API_BASE", base)
    assert main(argv) == 1
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1, err
    assert err.startswith(f"error: {source} '") and why in err and "internal error" not in err, err
    assert "\x1b" not in err
