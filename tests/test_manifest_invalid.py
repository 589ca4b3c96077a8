"""The invalid-manifest corpus: every file under tests/manifests/invalid/ goes through the real CLI
(`main(["validate", file])`) and must exit 1 with exactly the `line:col: message` lines of its
`.expected` sidecar, no traceback, quickly. Files are one rule each (a few show a rule's natural
second problem); the huge-file case is generated here instead of committed."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from reconciler.cli import main
from reconciler.manifest.yamlload import MAX_BYTES

CORPUS = Path(__file__).parent / "manifests" / "invalid"
CASES = sorted(CORPUS.glob("*.yaml"))


def test_corpus_is_big_enough_and_complete() -> None:
    assert len(CASES) >= 30
    for case in CASES:
        assert case.with_suffix(".expected").is_file(), f"{case.name} has no .expected file"


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str, float]:
    t0 = time.perf_counter()
    rc = main(argv)
    elapsed = time.perf_counter() - t0
    out, err = capsys.readouterr()
    return rc, out, err, elapsed


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_invalid_manifest(case: Path, capsys: pytest.CaptureFixture[str]) -> None:
    expected = case.with_suffix(".expected").read_text("utf-8").splitlines()
    rc, out, err, elapsed = _run(["validate", str(case)], capsys)
    assert rc == 1
    assert out == ""
    assert "Traceback" not in err and "internal error" not in err
    assert err.splitlines() == [f"{case}:{line}" for line in expected]
    # Not a benchmark: a guard that hostile inputs (alias bombs, deep nesting) are refused early.
    assert elapsed < 1.0, f"{case.name} took {elapsed:.2f} s"


@pytest.mark.parametrize("case", CASES[:6] + [CORPUS / "workflow-cycle.yaml"], ids=lambda c: c.stem)
def test_invalid_manifest_json(case: Path, capsys: pytest.CaptureFixture[str]) -> None:
    expected = case.with_suffix(".expected").read_text("utf-8").splitlines()
    rc, out, err, _ = _run(["validate", "--json", str(case)], capsys)
    assert rc == 1
    problems = json.loads(out)
    assert isinstance(problems, list)
    assert [f"{p['line']}:{p['column']}: {p['message']}" for p in problems] == expected
    for p in problems:
        assert set(p) == {"file", "line", "column", "path", "message"}
        assert p["file"] == str(case)


def test_huge_file_is_refused_without_parsing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    big = tmp_path / "huge.yaml"
    line = b"# padding padding padding padding padding padding padding padding padding\n"
    with big.open("wb") as f:
        f.write(b"app: {id: demo}\n")
        f.write(line * (MAX_BYTES // len(line) + 1))
    rc, out, err, elapsed = _run(["validate", str(big)], capsys)
    assert rc == 1
    assert err.splitlines() == [f"{big}:1:1: file is larger than the 10 MiB limit for a manifest"]
    assert elapsed < 1.0


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.yaml"
    rc, _, err, _ = _run(["validate", str(missing)], capsys)
    assert rc == 1
    assert err.splitlines() == [f"{missing}:1:1: cannot read manifest: No such file or directory"]


def test_problems_of_every_file_in_one_run(capsys: pytest.CaptureFixture[str]) -> None:
    a, b = CORPUS / "empty.yaml", CORPUS / "workflow-cycle.yaml"
    rc, _, err, _ = _run(["validate", str(a), "examples/auto-annotation/manifest.yaml", str(b)], capsys)
    assert rc == 1
    lines = err.splitlines()
    assert any(line.startswith(f"{a}:") for line in lines)
    assert any(line.startswith(f"{b}:") for line in lines)
    assert not any("auto-annotation" in line for line in lines)
