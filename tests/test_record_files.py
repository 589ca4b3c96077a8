"""Issue 20, findings 2 and 10: `record` checks its files whole before changing a byte of them, and
never waits on a FIFO (each test failed before its fix).

2. a .tgz given as --predictions is refused untouched (it used to lose its unterminated last line
   before "not UTF-8" was reported); a one-line settings.json without a final newline is refused,
   not emptied and refilled; a whole last line without its newline is kept; --labels never
   replaces a file that is not a labels file;
10. `mkfifo ff.jsonl; record m.yaml --predictions ff.jsonl` is one line, not a wait for a writer
   (the README: files read must be regular files); so are FIFOs given to `tune --labels`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e import EXAMPLES
from test_record import N, Park

from reconciler.annotate import predictions as P
from reconciler.cli import main
from reconciler.core.errors import ReconcilerError


@pytest.fixture
def park(tmp_path: Path) -> Iterator[Park]:
    p = Park(tmp_path)
    yield p
    p.close()


def refused_untouched(park: Park, path: Path, content: bytes, *words: str, **kw: Any) -> None:
    path.write_bytes(content)
    park.h.clear_log()
    with pytest.raises(ReconcilerError) as err:
        park.record(predictions=str(path), **kw)
    assert path.read_bytes() == content
    assert park.h.log() == [], "a request was sent before the file was checked"
    message = str(err.value)
    assert "\n" not in message and "was left as it was" in message, message
    for w in words:
        assert w in message, message


def test_a_tgz_is_refused_untouched(park: Park) -> None:
    tgz = bytes(range(256)) * 3 + b"\n" + b"\x1f\x8b\x08\x00 tail without a newline \xff\xfe"
    refused_untouched(park, park.tmp / "b.tgz", tgz, "not UTF-8 text")


def test_a_one_line_settings_file_without_a_final_newline_is_refused_not_emptied(park: Park) -> None:
    refused_untouched(park, park.tmp / "settings.json", b'{"theme": "dark", "fontSize": 14}', "settings.json:1:")


@pytest.mark.parametrize("content", [
    b'{"input": "a", "model": "m", "concepts": {}}\nnot json\n{"input": "b", "model": "m", "concepts": {}}\n',
    b'{"input": "a", "model": "m", "concepts": {}}\n{"input": "b", "model": "m", "concepts": {"x": 2}}',
    b"# notes\nremember the milk",
], ids=["bad-middle-line", "bad-whole-last-line", "text-notes"])
def test_a_file_with_a_line_that_is_not_a_prediction_is_refused_untouched(park: Park, content: bytes) -> None:
    refused_untouched(park, park.tmp / "p.jsonl", content)


def test_a_labels_file_that_is_not_one_is_refused_untouched(park: Park) -> None:
    manifest = park.tmp / "manifest.yaml"
    manifest.write_bytes((EXAMPLES / "auto-annotation" / "manifest.yaml").read_bytes())
    before = manifest.read_bytes()
    out = park.tmp / "out.jsonl"
    with pytest.raises(ReconcilerError, match="not a labels file"):
        park.record(labels=str(manifest))
    assert manifest.read_bytes() == before and not out.exists()


def test_a_whole_last_line_without_its_newline_is_kept(park: Park) -> None:
    park.record(limit=10)
    out = park.tmp / "out.jsonl"
    out.write_bytes(out.read_bytes().rstrip(b"\n"))
    kept = out.read_text()
    park.record()
    text = out.read_text()
    assert text.startswith(kept + "\n")
    assert len(P.load(out).lines) == N


def test_a_torn_last_line_is_still_dropped(park: Park) -> None:
    park.record(limit=10)
    out = park.tmp / "out.jsonl"
    whole = out.read_text()
    for torn in ('{"input": "in-000010", "model": "park-acti', '{"in'):
        out.write_text(whole + torn)
        park.record(limit=10)
        assert out.read_text() == whole


# --- FIFOs ------------------------------------------------------------------------------------------

def _finishes(fn: Callable[[], Any], seconds: float = 10.0) -> Any:
    """`fn()`'s result or exception, failing (not hanging) if it waits longer than `seconds`."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as err:  # noqa: BLE001 - handed back to the test
            box["error"] = err

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(seconds)
    if t.is_alive():  # the timer of `_unblock_later` lets the thread end later
        pytest.fail(f"still waiting after {seconds} s (a FIFO read blocks)")
    return box


def _unblock_later(fifo: Path) -> threading.Timer:
    """Should the code under test wait on `fifo`, a writer comes after 15 s so the suite goes on."""
    def open_write() -> None:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            os.close(fd)
        except OSError:
            pass

    timer = threading.Timer(15, open_write)
    timer.daemon = True
    timer.start()
    return timer


def test_record_refuses_a_fifo_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("CLARIFAI_PAT", "CLARIFAI_API_BASE", "CLARIFAI_USER_ID"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("RECONCILER_SANDBOX_DB", str(tmp_path / "sandbox.sqlite"))
    fifo = tmp_path / "ff.jsonl"
    os.mkfifo(fifo)
    timer = _unblock_later(fifo)
    box = _finishes(lambda: main(["record", str(EXAMPLES / "auto-annotation" / "manifest.yaml"), "--predictions", str(fifo)]))
    timer.cancel()
    _out, err = capsys.readouterr()
    assert box.get("value") == 1, box
    assert f"error: cannot read {fifo}: not a regular file (a FIFO)" in err, err
    assert err.count("error:") == 1 and "Traceback" not in err


def test_tune_refuses_a_labels_fifo_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tune_synth import write_files

    preds, _labels = write_files(tmp_path, ["walker", "runner", "bike_rider", "rollerblader", "stroller"], 50, 50, seed=1)
    fifo = tmp_path / "labels-fifo.jsonl"
    os.mkfifo(fifo)
    timer = _unblock_later(fifo)
    box = _finishes(lambda: main(["tune", str(EXAMPLES / "auto-annotation" / "manifest.yaml"), "--predictions", str(preds),
                                  "--labels", str(fifo), "--target-precision", "0.9"]))
    timer.cancel()
    _out, err = capsys.readouterr()
    assert box.get("value") == 1, box
    assert "not a regular file (a FIFO)" in err and err.count("\n") == 1, err
