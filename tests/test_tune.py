"""`reconciler tune`: scores through the manifest's mapper, the report, labels' absent reading,
holdout, `--write` byte for byte, `--write-to` overlays, `--svg`, and bad input (one line, exit 1)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from e2e import EXAMPLES
from tune_synth import write_files

from reconciler.annotate import labels as L
from reconciler.annotate import predictions as P
from reconciler.annotate.thresholders import find_thresholders, thresholder_scores
from reconciler.annotate.tune import Options, tune
from reconciler.cli import main
from reconciler.core.errors import ReconcilerError
from reconciler.manifest.load import load, load_overlays

PARK = EXAMPLES / "auto-annotation" / "manifest.yaml"
PEOPLE = EXAMPLES / "people-synonyms" / "manifest.yaml"
CONCEPTS = ["walker", "runner", "bike_rider", "rollerblader", "stroller"]


def run(capsys: pytest.CaptureFixture[str], *argv: Any) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def park(tmp_path: Path) -> dict[str, Path]:
    preds, labels = write_files(tmp_path, CONCEPTS, 1500, 1200, seed=3)
    manifest = tmp_path / "manifest.yaml"
    shutil.copy(PARK, manifest)
    return {"manifest": manifest, "preds": preds, "labels": labels, "tmp": tmp_path}


# --- the choice, through the workflow -----------------------------------------------------------

def test_scores_go_through_the_mapper_as_simulate_runs_it() -> None:
    """people-synonyms: clarifai/main's ai_... concepts reach the thresholder as the app's concepts
    only through the synonym relations."""
    state = load(str(PEOPLE))
    recorded = P.load(EXAMPLES / "people-synonyms" / "predictions.jsonl")
    th = find_thresholders(state, None, None)
    assert (th.accepting.id, [n.id for n in th.review]) == ("greater-than", ["less-than"])
    scores = thresholder_scores(state, th, recorded)
    first = scores["https://samples.clarifai.com/metro-north.jpg"]
    assert first == pytest.approx({"people": 0.84, "adult": 0.61, "man": 0.44})


def test_report_proposes_certified_thresholds_and_the_review_thresholder_follows(park: dict[str, Path]) -> None:
    report = tune(load(str(park["manifest"])), P.load(park["preds"]), L.load(park["labels"]),
                  Options(target=0.95))
    assert report["thresholder"] == {"node": "greater-than", "model": "greater-than", "comparator": "GREATER_THAN"}
    for c, row in report["concepts"].items():
        assert row["status"] == "certified", row
        p = row["precision_proposed"]
        assert p["lower"] >= 0.95 and p["lower"] <= p["precision"] <= p["upper"]
        assert row["automation_after"] > row["automation_before"]  # the guessed thresholds were too strict
        assert row["review_after"] < row["review_before"]
    acc = {ch["concept"]: ch["to"] for ch in report["changes"] if ch["model"] == "greater-than"}
    rev = {ch["concept"]: ch["to"] for ch in report["changes"] if ch["model"] == "less-than"}
    assert acc and acc == rev


def test_keep_review_thresholds_leaves_less_than_alone(park: dict[str, Path]) -> None:
    report = tune(load(str(park["manifest"])), P.load(park["preds"]), L.load(park["labels"]),
                  Options(target=0.95, follow_review=False))
    assert {ch["model"] for ch in report["changes"]} == {"greater-than"}
    assert report["review_thresholders"] == [{"node": "less-than", "model": "less-than", "follows": False}]


def test_too_few_labels_keeps_the_current_threshold_and_says_why(tmp_path: Path) -> None:
    preds, labels = write_files(tmp_path, CONCEPTS, 200, 40, seed=1)
    report = tune(load(str(PARK)), P.load(preds), L.load(labels), Options(target=0.98))
    walker = report["concepts"]["walker"]
    assert walker["status"] == "insufficient" and walker["proposed"] == walker["current"] == 0.9
    assert f"walker: {walker['positives']} labelled positives, cannot certify 0.98 at 95%" in walker["note"]
    assert "needs at least 149" in walker["note"]
    assert report["changes"] == []


def test_absent_concepts_read_as_negative_by_default_or_as_unlabelled(tmp_path: Path) -> None:
    labels = L.parse('{"input": "a", "concepts": {"walker": true}}\n', "l.jsonl")
    assert labels.label("a", "walker") is True
    assert labels.label("a", "runner") is False
    assert labels.label("a", "runner", "unknown") is None
    assert labels.label("zzz", "walker") is None


def test_absent_reading_changes_the_count(park: dict[str, Path]) -> None:
    # keep only the positive labels: read as negative, every other concept is wrong; as unknown,
    # nothing is wrong
    rows = [json.loads(line) for line in park["labels"].read_text().splitlines()]
    only_true = park["tmp"] / "only-true.jsonl"
    only_true.write_text("".join(json.dumps({"input": r["input"], "concepts": {c: v for c, v in r["concepts"].items() if v}})
                                 + "\n" for r in rows))
    state, recorded = load(str(park["manifest"])), P.load(park["preds"])
    neg = tune(state, recorded, L.load(only_true), Options(target=0.95))
    unk = tune(state, recorded, L.load(only_true), Options(target=0.95, absent="unknown"))
    w_neg, w_unk = neg["concepts"]["walker"], unk["concepts"]["walker"]
    assert w_neg["labelled"] == 1200 and w_unk["labelled"] == w_unk["positives"] < 1200
    assert w_unk["precision_proposed"]["precision"] == 1.0


def test_holdout_reports_the_precision_reached_on_unseen_labels(park: dict[str, Path]) -> None:
    report = tune(load(str(park["manifest"])), P.load(park["preds"]), L.load(park["labels"]),
                  Options(target=0.9, holdout=0.3, seed=5))
    assert (report["labelled_inputs"], report["holdout_inputs"]) == (840, 360)
    for row in report["concepts"].values():
        h = row["holdout"]
        assert h["accepted"] > 0 and h["precision"] == round(h["correct"] / h["accepted"], 6)
    again = tune(load(str(park["manifest"])), P.load(park["preds"]), L.load(park["labels"]),
                 Options(target=0.9, holdout=0.3, seed=5))
    assert again == report  # the split is reproducible from the seed


# --- the CLI: --write, --write-to, --svg --------------------------------------------------------

def test_write_changes_only_the_threshold_values(park: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    m = park["manifest"]
    # comments, quoting and odd spacing around the values must survive
    text = m.read_text().replace("      walker: 0.9\n      runner: 0.9\n      bike_rider: 0.85",
                                 "      walker: 0.9   # guessed\n      'runner': 0.9\n      bike_rider:    0.85", 1)
    m.write_text(text)
    code, out, err = run(capsys, "tune", m, "--predictions", park["preds"], "--labels", park["labels"],
                         "--target-precision", 0.95, "--write")
    assert code == 0, err
    assert "Wrote 10 threshold change(s) to" in out and f"reconciler plan {m}" in out
    new = m.read_text()
    report = tune(load(str(PARK)), P.load(park["preds"]), L.load(park["labels"]), Options(target=0.95))
    state = load(str(m))  # the file now holds the certified numbers
    for model in ("greater-than", "less-than"):
        cfg = state.model(model).config["thresholds"]
        for c in CONCEPTS:
            want = next(ch["to"] for ch in report["changes"] if ch["model"] == model and ch["concept"] == c)
            assert cfg[c] == pytest.approx(want)
    assert new.count("# guessed") == 1 and "'runner': " in new and "bike_rider:    0." in new
    old_lines, new_lines = text.splitlines(), new.splitlines()
    assert len(old_lines) == len(new_lines)
    changed = [i for i, (a, b) in enumerate(zip(old_lines, new_lines)) if a != b]
    assert len(changed) == 10
    for i in changed:  # same line up to the number
        a, b = old_lines[i], new_lines[i]
        assert a.split(":")[0] == b.split(":")[0]
    # a second run is a no-op: the thresholds are already the certified ones
    code, out, _ = run(capsys, "tune", m, "--predictions", park["preds"], "--labels", park["labels"],
                       "--target-precision", 0.95, "--write")
    assert code == 0 and "Nothing to write" in out and m.read_text() == new


def test_write_to_overlay_merges_onto_the_base(park: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    m, overlay = park["manifest"], park["tmp"] / "thresholds.yaml"
    before = m.read_text()
    code, out, err = run(capsys, "tune", m, "--predictions", park["preds"], "--labels", park["labels"],
                         "--target-precision", 0.95, "--write-to", overlay, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert m.read_text() == before and report["written"] == str(overlay)
    merged = load_overlays([str(m), str(overlay)])
    for ch in report["changes"]:
        assert merged.model(ch["model"]).config["thresholds"][ch["concept"]] == pytest.approx(ch["to"])


def test_svg_draws_a_curve_and_the_chosen_point_per_concept(park: dict[str, Path],
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    svg = park["tmp"] / "tune.svg"
    code, out, err = run(capsys, "tune", park["manifest"], "--predictions", park["preds"], "--labels", park["labels"],
                         "--target-precision", 0.95, "--svg", svg)
    assert code == 0, err
    text = svg.read_text()
    assert text.startswith("<svg") and text.rstrip().endswith("</svg>")
    for c in CONCEPTS:
        assert f'<polyline data-concept="{c}"' in text
        assert f'<circle data-concept="{c}" data-chosen="true"' in text
    assert 'data-target="0.95"' in text


def test_write_refuses_a_threshold_given_by_a_variable(park: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    m = park["manifest"]
    text = m.read_text().replace("version: 1\n", "version: 1\nvariables:\n  walker_t: {default: 0.9}\n", 1)
    text = text.replace("      walker: 0.9\n", "      walker: ${var.walker_t}\n", 1)
    m.write_text(text)
    code, out, err = run(capsys, "tune", m, "--predictions", park["preds"], "--labels", park["labels"],
                         "--target-precision", 0.95, "--write")
    assert code == 1 and m.read_text() == text
    line = text[: text.index("${var.walker_t}")].count("\n") + 1  # where the example writes it
    assert err.count("\n") == 1 and "not a plain number" in err and f"{m}:{line}:15:" in err, err


# --- bad input: one line, exit 1 ----------------------------------------------------------------

@pytest.mark.parametrize("labels_text,message", [
    ('{"input": "nope", "concepts": {"walker": true}}\n', "input 'nope' has no recorded prediction"),
    ('{"input": "in-000000", "concepts": {"unicorn": true}}\n', "concept 'unicorn' is not a concept of app park-activity"),
    ('{"input": "in-000000", "concepts": {"walker": 1}}\n', "label must be true or false"),
    ('{"input": "in-000000"}\n', "'concepts' must be an object"),
    ('not json\n', "not valid JSON"),
    ('', "no labels"),
    ('{"input": "in-000000", "concepts": {}}\n{"input": "in-000000", "concepts": {}}\n', "already labelled on line 1"),
])
def test_bad_labels_are_one_line(park: dict[str, Path], capsys: pytest.CaptureFixture[str], labels_text: str,
                                 message: str) -> None:
    bad = park["tmp"] / "bad.jsonl"
    bad.write_text(labels_text)
    before = park["manifest"].read_text()
    code, out, err = run(capsys, "tune", park["manifest"], "--predictions", park["preds"], "--labels", bad,
                         "--target-precision", 0.9, "--write")
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and message in err and "Traceback" not in err, err
    assert park["manifest"].read_text() == before


@pytest.mark.parametrize("flag,value,message", [
    ("--target-precision", 0, "must be strictly between 0 and 1"),
    ("--target-precision", 1, "must be strictly between 0 and 1"),
    ("--target-precision", 1.5, "must be strictly between 0 and 1"),
    ("--target-precision", -0.2, "must be strictly between 0 and 1"),
    ("--confidence", 1, "--confidence 1: must be strictly between 0 and 1"),
    ("--holdout", 1, "--holdout 1: must be in [0, 1)"),
])
def test_bad_numbers_are_one_line(park: dict[str, Path], capsys: pytest.CaptureFixture[str], flag: str, value: float,
                                  message: str) -> None:
    args = ["tune", park["manifest"], "--predictions", park["preds"], "--labels", park["labels"],
            "--target-precision", 0.9, flag, value]
    code, out, err = run(capsys, *args)
    assert code == 1 and err.count("\n") == 1 and message in err, err


def test_empty_predictions_file_is_one_line(park: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    empty = park["tmp"] / "empty.jsonl"
    empty.write_text("")
    code, out, err = run(capsys, "tune", park["manifest"], "--predictions", empty, "--labels", park["labels"],
                         "--target-precision", 0.9)
    assert code == 1 and err.count("\n") == 1 and "no recorded predictions" in err


def test_no_accepting_thresholder_is_one_line(park: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    m = park["manifest"]
    m.write_text(m.read_text().replace("annotation_status: SUCCESS", "annotation_status: PENDING"))
    code, out, err = run(capsys, "tune", m, "--predictions", park["preds"], "--labels", park["labels"],
                         "--target-precision", 0.9)
    assert code == 1 and err.count("\n") == 1 and "has no accepting thresholder" in err, err


def test_unknown_thresholder_is_one_line(park: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "tune", park["manifest"], "--predictions", park["preds"], "--labels",
                         park["labels"], "--target-precision", 0.9, "--thresholder", "less-than")
    assert code == 1 and err.count("\n") == 1 and "not an accepting thresholder" in err


def test_missing_files_are_one_line(park: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "tune", park["manifest"], "--predictions", park["tmp"] / "nope.jsonl",
                         "--labels", park["labels"], "--target-precision", 0.9)
    assert code == 1 and err.count("\n") == 1 and "no such predictions file" in err
    code, out, err = run(capsys, "tune", park["manifest"], "--predictions", park["preds"],
                         "--labels", park["tmp"] / "nope.jsonl", "--target-precision", 0.9)
    assert code == 1 and err.count("\n") == 1 and "no such labels file" in err


def test_write_with_overlays_points_to_write_to(park: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "tune", "-f", park["manifest"], "-f", park["manifest"], "--predictions",
                         park["preds"], "--labels", park["labels"], "--target-precision", 0.9, "--write")
    assert code == 1 and "use --write-to" in err


def test_options_check_directly() -> None:
    with pytest.raises(ReconcilerError, match="strictly between 0 and 1"):
        Options(target=1.0).check()
    Options(target=0.5).check()


@pytest.mark.parametrize("which", ["park", "people"])
def test_automation_and_review_load_agree_with_simulate(park: dict[str, Path], which: str) -> None:
    """tune counts by binary search over the thresholder's scores; simulate runs every node on
    every input: before and after the proposal, their per-concept numbers must be the same."""
    import dataclasses

    from reconciler.annotate.simulate import simulate

    if which == "park":
        state, recorded, labels = load(str(park["manifest"])), P.load(park["preds"]), L.load(park["labels"])
        # tune's review load is the review thresholder's share; the example's audit branch also sends
        # a random tenth of the accepted inputs to review, which simulate counts as pending too: the
        # two agree on the workflow without it
        wf = state.workflows[0]
        wf = dataclasses.replace(wf, nodes=tuple(n for n in wf.nodes if n.id not in ("audit", "write-audit")))
        state = dataclasses.replace(state, workflows=(wf,))
    else:  # people-synonyms: scores reach the thresholders through the synonym mapper
        state = load(str(PEOPLE))
        recorded = P.load(EXAMPLES / "people-synonyms" / "predictions.jsonl")
        labels = L.parse("\n".join(json.dumps({"input": i, "concepts": {"people": True}}) for i in recorded.inputs()))
    report = tune(state, recorded, labels, Options(target=0.9))
    before = simulate(state, recorded).as_dict()["concepts"]
    new = {m.id: m for m in state.models}
    for ch in report["changes"]:
        m = new[ch["model"]]
        new[m.id] = dataclasses.replace(m, config={**m.config, "thresholds": {**m.config["thresholds"], ch["concept"]: ch["to"]}})
    after = simulate(dataclasses.replace(state, models=tuple(new[m.id] for m in state.models)), recorded).as_dict()["concepts"]
    if which == "park":
        assert report["changes"]  # the comparison covers a real change
    for c, row in report["concepts"].items():
        assert row["automation_before"] == before[c]["automation_rate"]
        assert row["review_before"] == before[c]["review_load"]
        assert row["automation_after"] == after[c]["automation_rate"]
        assert row["review_after"] == after[c]["review_load"]


def test_write_in_place_keeps_flow_style_and_crlf(tmp_path: Path) -> None:
    from reconciler.annotate.thresholdwrite import write_in_place

    src = (EXAMPLES / "people-synonyms" / "manifest.yaml").read_text()
    m = tmp_path / "m.yaml"
    m.write_bytes(src.replace("\n", "\r\n").encode())
    write_in_place(str(m), [{"model": "greater-than", "concept": "man", "from": 0.5, "to": 0.73},
                            {"model": "less-than", "concept": "adult", "from": 0.95, "to": 0.875}])
    want = src.replace("thresholds: {people: 0.5, man: 0.5, adult: 0.95}",
                       "thresholds: {people: 0.5, man: 0.73, adult: 0.95}", 1)
    i = want.index("thresholds: {people: 0.5, man: 0.5, adult: 0.95}")
    want = want[:i] + "thresholds: {people: 0.5, man: 0.5, adult: 0.875}" + want[i + len("thresholds: {people: 0.5, man: 0.5, adult: 0.95}"):]
    assert m.read_bytes() == want.replace("\n", "\r\n").encode()
    state = load(str(m))
    assert state.model("greater-than").config["thresholds"]["man"] == pytest.approx(0.73)
    assert state.model("less-than").config["thresholds"]["adult"] == pytest.approx(0.875)
