"""Issue 20's findings on what `tune --write` / `--write-to` and `plan --out` may change (each test
failed before its fix):

1. never overwrite a file that is not the tool's own output kind: `--write-to` the manifest is
   refused, an existing overlay is merged into (its `app: {id: park-prod}` kept), `plan --out` the
   manifest is refused, and the `plan` hint names each file once;
3. `--write` through a symlink edits the real file and keeps the link; a hard-linked or read-only
   manifest is refused in one line; the mode is kept;
4. a threshold inside an anchor an alias shares, or reached through an alias or a merge key, is
   refused with file:line:col (editing it would change the alias too: a change nobody reviewed);
17. a quoted model id and `walker:<TAB>0.9`, which `validate` accepts, are written.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from e2e import EXAMPLES
from tune_synth import write_files

from reconciler.cli import main
from reconciler.manifest.load import load, load_overlays

PARK = EXAMPLES / "auto-annotation" / "manifest.yaml"
CONCEPTS = ["walker", "runner", "bike_rider", "rollerblader", "stroller"]
GT = "      walker: 0.9\n      runner: 0.9\n      bike_rider: 0.85\n      rollerblader: 0.8\n      stroller: 0.85\n"


def run(capsys: pytest.CaptureFixture[str], *argv: Any) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def park(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    for var in ("CLARIFAI_PAT", "CLARIFAI_API_BASE", "CLARIFAI_USER_ID"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("RECONCILER_SANDBOX_DB", str(tmp_path / "sandbox.sqlite"))
    preds, labels = write_files(tmp_path, CONCEPTS, 1500, 1200, seed=3)
    manifest = tmp_path / "manifest.yaml"
    shutil.copy(PARK, manifest)
    tune = ["--predictions", preds, "--labels", labels, "--target-precision", 0.95]
    return {"manifest": manifest, "tune": tune, "tmp": tmp_path}


def one_line(code: int, err: str, *words: str) -> None:
    assert code == 1, err
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err, err
    for w in words:
        assert w in err, err


# --- 1. --write-to and plan --out ---------------------------------------------------------------

def test_write_to_the_manifest_itself_is_refused_untouched(park: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    m = park["manifest"]
    before = m.read_bytes()
    code, _out, err = run(capsys, "tune", m, *park["tune"], "--write-to", m)
    one_line(code, err, f"--write-to {m}: that is the manifest itself", "use --write")
    assert m.read_bytes() == before
    # the same file by another name (a relative path) is the same file
    os.chdir(park["tmp"])
    code, _out, err = run(capsys, "tune", m, *park["tune"], "--write-to", "manifest.yaml")
    one_line(code, err, "that is the manifest itself")
    assert m.read_bytes() == before


def test_write_to_an_existing_overlay_merges_into_it(park: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    m, prod = park["manifest"], park["tmp"] / "prod.yaml"
    prod.write_text("# production\noverlay: true\napp: {id: park-prod}  # the prod app\n")
    code, out, err = run(capsys, "tune", m, "-f", prod, *park["tune"], "--write-to", prod)
    assert code == 0, err
    text = prod.read_text()
    assert text.startswith("# production\noverlay: true\napp: {id: park-prod}  # the prod app\nmodels:\n"), text
    merged = load_overlays([str(m), str(prod)])
    assert merged.app.id == "park-prod"  # the next plan still targets the prod app
    th = merged.model("greater-than").config["thresholds"]
    assert th != load(str(m)).model("greater-than").config["thresholds"]
    hint = next(line for line in out.splitlines() if line.startswith("Next:"))
    assert hint.count(str(prod)) == 1 and f"reconciler plan -f {m} -f {prod}`" in hint, hint
    # a second run changes nothing, and says so without rewriting the file
    code, out, err = run(capsys, "tune", m, "-f", prod, *park["tune"], "--write-to", prod)
    assert code == 0 and "Nothing to write" in out and prod.read_text() == text, out + err


def test_merge_edits_values_in_place_and_adds_the_rest_in_the_file_style(park: dict[str, Any],
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    m, over = park["manifest"], park["tmp"] / "over.yaml"
    # greater-than: a flow mapping with one concept; less-than: no thresholds key yet; CRLF endings
    original = ("overlay: true\r\napp:\r\n  id: park-prod\r\nmodels:\r\n  - id: greater-than  # keep me\r\n"
                "    thresholds: {walker: 0.9}\r\n  - id: less-than\r\n    description: Unsure\r\n")
    over.write_bytes(original.encode())
    code, out, err = run(capsys, "tune", m, "-f", over, *park["tune"], "--write-to", over, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["written"] == str(over)
    text = over.read_bytes().decode()
    assert "\n" not in text.replace("\r\n", "")  # every new line ends as the file's do
    assert text.startswith("overlay: true\r\napp:\r\n  id: park-prod\r\nmodels:\r\n  - id: greater-than  # keep me\r\n    thresholds: {walker: 0.")
    assert "  - id: less-than\r\n    description: Unsure\r\n    thresholds:\r\n      " in text
    merged = load_overlays([str(m), str(over)])
    for ch in report["changes"]:
        assert merged.model(ch["model"]).config["thresholds"][ch["concept"]] == pytest.approx(ch["to"])
    assert merged.model("less-than").description == "Unsure"


def test_write_to_an_overlay_a_later_file_overrides_is_refused(park: dict[str, Any],
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    m, a, b = park["manifest"], park["tmp"] / "a.yaml", park["tmp"] / "b.yaml"
    a.write_text("overlay: true\napp: {id: park-prod}\n")
    b.write_text("overlay: true\napp: {description: later}\n")
    code, _out, err = run(capsys, "tune", m, "-f", a, "-f", b, *park["tune"], "--write-to", a)
    one_line(code, err, f"--write-to {a}: it is not the last -f file")
    assert a.read_text() == "overlay: true\napp: {id: park-prod}\n"


@pytest.mark.parametrize("content", [b'{"input": "a", "model": "m", "concepts": {}}\n{"input": "b"}\n',
                                     b"\x1f\x8b\x08\x00binary", b"- just\n- a list\n", b'{"theme": "dark"}',
                                     b"a: " + b"[" * 3000 + b"]" * 3000 + b"\n", b"# only a comment\n"],
                         ids=["jsonl", "binary", "list", "json", "deep", "comment"])
def test_write_to_a_file_that_is_not_an_overlay_is_refused_untouched(park: dict[str, Any], content: bytes,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    other = park["tmp"] / "other.file"
    other.write_bytes(content)
    code, _out, err = run(capsys, "tune", park["manifest"], *park["tune"], "--write-to", other)
    one_line(code, err, str(other))
    assert other.read_bytes() == content


def test_plan_out_never_replaces_a_manifest(park: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    m = park["manifest"]
    before = m.read_bytes()
    code, _out, err = run(capsys, "plan", m, "--out", m)
    assert code == 1 and m.read_bytes() == before
    assert f"error: --out {m}: the file exists and is not a saved plan" in err and "delete it first" in err, err
    other = park["tmp"] / "notes.txt"
    other.write_text("my notes\n")
    assert run(capsys, "plan", m, "--out", other)[0] == 1 and other.read_text() == "my notes\n"
    # a saved plan may be replaced by a saved plan, and an empty file (mktemp) filled
    saved, empty = park["tmp"] / "plan.json", park["tmp"] / "empty.json"
    empty.write_text("")
    assert run(capsys, "plan", m, "--out", saved)[0] == 0
    assert run(capsys, "plan", m, "--out", saved)[0] == 0
    assert run(capsys, "plan", m, "--out", empty)[0] == 0
    assert json.loads(empty.read_text())["kind"] == "reconciler-plan"


@pytest.mark.parametrize("verb", ["tune", "simulate"])
def test_a_chart_never_replaces_a_manifest(park: dict[str, Any], capsys: pytest.CaptureFixture[str], verb: str) -> None:
    m = park["manifest"]
    before = m.read_bytes()
    if verb == "tune":
        argv: list[Any] = ["tune", m, *park["tune"], "--svg", m]
    else:
        argv = ["simulate", m, "--predictions", park["tune"][1], "--sweep", "walker=0.5:0.9:0.2", "--svg", m]
    code, _out, err = run(capsys, *argv)
    one_line(code, err, f"--svg {m}: the file exists and is not an SVG chart")
    assert m.read_bytes() == before
    # a chart replaces a chart
    chart = park["tmp"] / "chart.svg"
    argv[-1] = chart
    assert run(capsys, *argv)[0] == 0
    assert run(capsys, *argv)[0] == 0 and chart.read_text().startswith("<svg")


# --- 3. symlinks, hard links, modes -------------------------------------------------------------

def _write(park: dict[str, Any], capsys: pytest.CaptureFixture[str], path: Path) -> tuple[int, str, str]:
    return run(capsys, "tune", path, *park["tune"], "--write")


def test_write_through_a_symlink_edits_the_real_file_and_keeps_the_link(park: dict[str, Any],
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    real_dir = park["tmp"] / "repo"
    real_dir.mkdir()
    real = real_dir / "manifest.yaml"
    shutil.move(park["manifest"], real)
    link = park["tmp"] / "work.yaml"
    link.symlink_to(real)
    before = real.read_text()
    code, out, err = _write(park, capsys, link)
    assert code == 0 and "Wrote 10 threshold change(s)" in out, err
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_text() != before
    assert load(str(real)).model("greater-than").config["thresholds"] != load(str(PARK)).model("greater-than").config["thresholds"]
    assert not list(real_dir.glob(".*.tmp")) and not list(park["tmp"].glob(".*.tmp"))


def test_a_hard_linked_manifest_is_refused_not_split(park: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    m = park["manifest"]
    twin = park["tmp"] / "twin.yaml"
    os.link(m, twin)
    before = m.read_bytes()
    code, _out, err = _write(park, capsys, m)
    one_line(code, err, f"cannot write {m}", "2 hard links")
    assert m.read_bytes() == before and os.stat(m).st_ino == os.stat(twin).st_ino


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o664])
def test_write_keeps_the_file_mode(park: dict[str, Any], capsys: pytest.CaptureFixture[str], mode: int) -> None:
    m = park["manifest"]
    os.chmod(m, mode)
    code, _out, err = _write(park, capsys, m)
    assert code == 0, err
    assert (os.stat(m).st_mode & 0o7777) == mode, oct(os.stat(m).st_mode)


def test_a_read_only_manifest_is_refused_in_one_line(park: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    m = park["manifest"]
    before = m.read_bytes()
    os.chmod(m, 0o444)
    try:
        code, _out, err = _write(park, capsys, m)
        one_line(code, err, f"cannot write {m}: it is read-only (mode 0444)")
        assert m.read_bytes() == before and (os.stat(m).st_mode & 0o777) == 0o444
    finally:
        os.chmod(m, 0o644)


def test_outputs_keep_the_mode_of_the_file_they_replace(tmp_path: Path) -> None:
    from reconciler.core.fileio import ReadOnlyFile, write_atomic

    out = tmp_path / "export.yaml"
    out.write_text("old\n")
    os.chmod(out, 0o640)
    write_atomic(out, "new\n")
    assert out.read_text() == "new\n" and (os.stat(out).st_mode & 0o777) == 0o640
    os.chmod(out, 0o440)
    with pytest.raises(ReadOnlyFile):
        write_atomic(out, "newer\n")
    assert out.read_text() == "new\n"


# --- 4. anchors, aliases and merge keys ---------------------------------------------------------

@pytest.mark.parametrize("less_than, flags", [
    ("    thresholds: *th\n", ["--keep-review-thresholds"]),
    ("    thresholds:\n      <<: *th\n", ["--keep-review-thresholds"]),
    ("    thresholds: *th\n", []),
    ("    thresholds:\n      <<: *th\n", []),
], ids=["alias-keep-review", "merge-keep-review", "alias", "merge"])
def test_thresholds_shared_through_an_anchor_are_refused(park: dict[str, Any], capsys: pytest.CaptureFixture[str],
                                                         less_than: str, flags: list[str]) -> None:
    m = park["manifest"]
    text = m.read_text()
    gt_at = text.index("    thresholds:\n" + GT)
    text = text[:gt_at] + "    thresholds: &th\n" + text[gt_at + len("    thresholds:\n"):]
    lt_at = text.index("    thresholds:\n" + GT)
    text = text[:lt_at] + less_than + text[lt_at + len("    thresholds:\n" + GT):]
    m.write_text(text)
    assert load(str(m)).model("less-than").config["thresholds"]["walker"] == 0.9  # a valid manifest
    code, _out, err = run(capsys, "tune", m, *park["tune"], *flags, "--write")
    one_line(code, err, "change it by hand")
    assert m.read_text() == text
    line = text[: text.index("&th")].count("\n") + 1
    # greater-than's thresholds are edited first: the anchor its values sit in is what is refused
    assert f"error: {m}:{line}:17: model greater-than's thresholds" in err, err
    assert "is inside the YAML anchor &th, which an alias shares" in err, err


def test_an_anchor_no_alias_uses_is_edited(park: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    m = park["manifest"]
    m.write_text(m.read_text().replace("    thresholds:\n" + GT, "    thresholds: &th\n" + GT, 1))
    code, out, err = run(capsys, "tune", m, *park["tune"], "--write")
    assert code == 0 and "Wrote 10 threshold change(s)" in out, err


def test_a_model_merged_from_another_is_refused(park: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    """less-than takes greater-than's whole item through a merge key: both thresholds move together."""
    m = park["manifest"]
    text = m.read_text().replace("  - id: greater-than\n", "  - &gt\n    id: greater-than\n", 1)
    at = text.index("  - id: less-than\n")
    end = text.index("    thresholds:\n" + GT, at) + len("    thresholds:\n" + GT)
    text = text[:at] + "  - <<: *gt\n    id: less-than\n    comparator: LESS_THAN\n" + text[end:]
    m.write_text(text)
    assert load(str(m)).model("less-than").config["thresholds"]["walker"] == 0.9
    code, _out, err = run(capsys, "tune", m, *park["tune"], "--keep-review-thresholds", "--write")
    one_line(code, err, "model greater-than is inside the YAML anchor &gt")
    assert m.read_text() == text
    code, _out, err = run(capsys, "tune", m, *park["tune"], "--write")
    one_line(code, err, "anchor &gt")
    assert m.read_text() == text


# --- 17. what validate accepts, --write writes ----------------------------------------------------

@pytest.mark.parametrize("edit", [
    ("  - id: greater-than\n", '  - id: "greater-than"\n'),
    ("  - id: less-than\n", "  - id: 'less-than'\n"),
    ("    thresholds:\n      walker: 0.9\n", "    thresholds:\n      walker:\t0.9\n"),
    ("    thresholds:\n      walker: 0.9\n", '    thresholds:\n      "walker": 0.9\n'),
], ids=["double-quoted-id", "single-quoted-id", "tab-after-colon", "quoted-concept"])
def test_write_accepts_what_validate_accepts(park: dict[str, Any], capsys: pytest.CaptureFixture[str],
                                            edit: tuple[str, str]) -> None:
    m = park["manifest"]
    text = m.read_text().replace(*edit, 1)
    assert text != m.read_text()
    m.write_text(text)
    assert run(capsys, "validate", m)[0] == 0
    code, out, err = run(capsys, "tune", m, *park["tune"], "--write")
    assert code == 0 and "Wrote 10 threshold change(s)" in out, err
    new = m.read_text()
    assert edit[1].splitlines()[0] in new  # the quoting / tab stays as written
    assert load(str(m)).model("greater-than").config["thresholds"] != load(str(PARK)).model("greater-than").config["thresholds"]
