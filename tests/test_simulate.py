"""`reconciler simulate`: the predictions format and its errors, the counts on both examples, the
sweep (definition, table, JSON) and its SVG chart (well-formed, holding the sweep's points)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from reconciler.annotate import predictions as P
from reconciler.annotate.simulate import parse_sweep, simulate, sweep
from reconciler.annotate.sweepchart import render_svg
from reconciler.cli import main
from reconciler.core.errors import ReconcilerError
from reconciler.core.state import ConceptRef, ModelRef
from reconciler.manifest.load import load

ROOT = Path(__file__).resolve().parent.parent
AA, PS = ROOT / "examples" / "auto-annotation", ROOT / "examples" / "people-synonyms"
SVG = "{http://www.w3.org/2000/svg}"


# --- the predictions format ---------------------------------------------------------------------

def test_lookup_by_input_then_full_model_reference_then_bare_id():
    rec = P.parse("\n".join([
        '{"input": "img-1", "model": "clarifai/main/general-image-recognition", "concepts": {"ai_a": 0.9}}',
        '',
        '{"input": "https://x/y.jpg", "model": "general-image-recognition", "concepts": {"ai_b": 0.95}}',
        '{"input": "img-1", "model": "my-classifier", "concepts": {"cat": 0.25}}',
    ]), "p.jsonl")
    main_model = ModelRef("general-image-recognition", "clarifai", "main", "v")
    assert rec.lookup(["img-1", "https://x/y.jpg"], main_model) == {ConceptRef("ai_a", "clarifai", "main"): 0.9}
    assert rec.lookup(["img-2", "https://x/y.jpg"], main_model) == {ConceptRef("ai_b", "clarifai", "main"): 0.95}
    assert rec.lookup(["img-1"], ModelRef("my-classifier")) == {ConceptRef("cat"): 0.25}
    assert rec.lookup(["img-3"], ModelRef("my-classifier")) is None
    assert rec.inputs() == ["img-1", "https://x/y.jpg"]
    assert rec.lookup(["img-1"], main_model)[ConceptRef("ai_a", "clarifai", "main")] == 0.9  # float32, shortest


@pytest.mark.parametrize("line,message", [
    ("not json", "not valid JSON"),
    ("[1, 2]", "expected a JSON object"),
    ('{"input": "a", "model": "m", "concepts": {}, "extra": 1}', "unknown key 'extra'"),
    ('{"model": "m", "concepts": {}}', "'input' must be a non-empty string"),
    ('{"input": "a", "model": "", "concepts": {}}', "'model' must be a non-empty string"),
    ('{"input": "a", "model": "a/b", "concepts": {}}', "expected MODEL_ID or USER/APP/MODEL_ID"),
    ('{"input": "a", "model": "m", "concepts": [1]}', "'concepts' must be an object"),
    ('{"input": "a", "model": "m", "concepts": {"c": "high"}}', "score must be a number"),
    ('{"input": "a", "model": "m", "concepts": {"c": true}}', "score must be a number"),
    ('{"input": "a", "model": "m", "concepts": {"c": 1.5}}', "outside [0, 1]"),
    ('{"input": "a", "model": "m", "concepts": {"c": NaN}}', "NaN"),
])
def test_bad_lines_are_one_located_error(line, message):
    with pytest.raises(P.PredictionsError) as err:
        P.parse('{"input": "ok", "model": "m", "concepts": {"c": 0.1}}\n' + line, "rec.jsonl")
    text = str(err.value)
    assert text.startswith("rec.jsonl:2: ") and message in text and "\n" not in text


def test_duplicates_and_more_problems_are_counted():
    line = '{"input": "a", "model": "m", "concepts": {"c": 0.1}}'
    with pytest.raises(P.PredictionsError, match=r"^r:3: .*already recorded on line 1 \(and 1 more problem\)$"):
        P.parse("\n".join([line, "", line, "{"]), "r")


def test_cli_reports_a_bad_predictions_file_in_one_line(tmp_path, capsys):
    bad = tmp_path / "p.jsonl"
    bad.write_text('{"input": "a", "model": "m", "concepts": {"c": 2}}\n')
    assert main(["simulate", str(AA / "manifest.yaml"), "--predictions", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.strip() == f"error: {bad}:1: concept 'c': score 2 is outside [0, 1]"
    assert main(["simulate", str(AA / "manifest.yaml"), "--predictions", str(tmp_path / "none.jsonl")]) == 1
    assert "no such predictions file" in capsys.readouterr().err


# --- simulate --------------------------------------------------------------------------------------

def test_auto_annotation_counts():
    rep = simulate(load(str(AA / "manifest.yaml")), P.load(AA / "predictions.jsonl")).as_dict()
    assert (rep["workflow"], rep["inputs"]) == ("auto-annotate", 12)
    assert rep["total"] == {"success": 7, "pending": 11, "none": 1,
                            "automation_rate": round(7 / 12, 6), "review_load": round(11 / 12, 6)}
    # walker: 0.95 and 0.92 pass 0.9; 0.9 exactly passes neither; park-011 has no prediction
    assert rep["concepts"]["walker"] == {"success": 2, "pending": 8, "none": 2,
                                         "automation_rate": round(2 / 12, 6), "review_load": round(8 / 12, 6)}
    assert rep["annotations"] == {"PENDING": 11, "SUCCESS": 7}


def test_people_synonyms_counts_follow_the_docs_thresholds():
    rep = simulate(load(str(PS / "manifest.yaml")), P.load(PS / "predictions.jsonl")).as_dict()
    c = {k: (v["success"], v["pending"], v["none"]) for k, v in rep["concepts"].items()}
    # people > 0.5 in all 4 inputs where it is predicted; man split 2/2 at 0.5; adult 0.96, 0.97 > 0.95
    assert c == {"people": (4, 0, 2), "man": (2, 2, 2), "adult": (2, 2, 2)}
    assert (rep["total"]["success"], rep["total"]["pending"], rep["total"]["none"]) == (4, 2, 2)


def test_unknown_workflow_and_cli_text_and_json(capsys):
    with pytest.raises(ReconcilerError, match="workflow 'nope' is not in the manifest"):
        simulate(load(str(AA / "manifest.yaml")), P.load(AA / "predictions.jsonl"), "nope")
    args = [str(AA / "manifest.yaml"), "--predictions", str(AA / "predictions.jsonl")]
    assert main(["simulate", *args]) == 0
    out = capsys.readouterr().out
    assert "on 12 input(s)" in out and "  total" in out and "58.3%" in out and "91.7%" in out
    assert main(["simulate", *args, "--json", "--workflow", "auto-annotate"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["format_version"] == 1 and data["total"]["success"] == 7 and "sweeps" not in data


# --- sweeps ----------------------------------------------------------------------------------------

def test_sweep_spec_parsing():
    assert parse_sweep("walker=0.5:0.7:0.1").values() == [0.5, 0.6, 0.7]
    assert parse_sweep("all=0:1:0.25").values() == [0, 0.25, 0.5, 0.75, 1]
    assert parse_sweep("x=0.5:0.75:0.1").values() == [0.5, 0.6, 0.7]  # STOP only when a step lands on it
    for bad in ("walker", "walker=0.5:0.7", "walker=a:b:c", "walker=0.7:0.5:0.1", "walker=0:1:0", "=0:1:0.1",
                "walker=0:1:0.0001"):
        with pytest.raises(ReconcilerError):
            parse_sweep(bad)


def test_sweep_varies_the_concept_in_every_thresholder_and_matches_simulate():
    state, rec = load(str(AA / "manifest.yaml")), P.load(AA / "predictions.jsonl")
    s = sweep(state, rec, parse_sweep("walker=0.5:1:0.1"))
    assert s["thresholders"] == ["greater-than", "less-than"]
    rows = {r["threshold"]: (r["success"], r["pending"], r["none"]) for r in s["rows"]}
    assert rows[0.9] == (2, 8, 2)  # the manifest's own threshold: the same as simulate
    assert rows[0.5] == (6, 5, 1)  # 0.95 0.64 0.71 0.92 0.58 0.9 > 0.5
    assert rows[1.0] == (0, 11, 1)
    assert [r["automation_rate"] for r in s["rows"]] == sorted((r["automation_rate"] for r in s["rows"]), reverse=True)
    with pytest.raises(ReconcilerError, match="no concept-thresholder .* has a threshold for 'cyclist'"):
        sweep(state, rec, parse_sweep("cyclist=0:1:0.5"))
    total = sweep(state, rec, parse_sweep("all=0.85:0.9:0.05"))
    # every threshold at 0.85: park-007's walker 0.9 now passes (8); at 0.9 stroller 0.88 no longer does (6)
    assert [r["success"] for r in total["rows"]] == [8, 6] and total["rows"][-1]["pending"] == 11


def test_sweep_cli_writes_a_well_formed_svg_with_the_sweeps_points(tmp_path, capsys):
    svg_path = tmp_path / "chart.svg"
    assert main(["simulate", str(AA / "manifest.yaml"), "--predictions", str(AA / "predictions.jsonl"),
                 "--sweep", "walker=0.5:1:0.1", "--sweep", "all=0.6:0.9:0.1", "--svg", str(svg_path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [s["concept"] for s in data["sweeps"]] == ["walker", "all"] and data["svg"] == str(svg_path)
    root = ET.parse(svg_path).getroot()
    assert root.tag == SVG + "svg"
    lines = {p.get("data-series"): p for p in root.iter(SVG + "polyline")}
    assert set(lines) == {"automation rate (walker)", "review load (walker)",
                          "automation rate (all thresholds)", "review load (all thresholds)"}
    for s in data["sweeps"]:
        who = "all thresholds" if s["concept"] == "all" else s["concept"]
        for series, key in ((f"automation rate ({who})", "automation_rate"), (f"review load ({who})", "review_load")):
            pts = [(float(c.get("data-threshold")), float(c.get("data-value")))
                   for c in root.iter(SVG + "circle") if c.get("data-series") == series]
            assert pts == [(pytest.approx(r["threshold"]), pytest.approx(r["review_load" if key == "review_load"
                                                                              else "automation_rate"], abs=1e-5))
                           for r in s["rows"]]
            assert len(lines[series].get("points").split()) == len(s["rows"])
    texts = "".join(t.text or "" for t in root.iter(SVG + "text"))
    assert "threshold" in texts and "100%" in texts


def test_text_sweep_table_and_svg_escape(tmp_path, capsys):
    assert main(["simulate", str(PS / "manifest.yaml"), "--predictions", str(PS / "predictions.jsonl"),
                 "--sweep", "adult=0.9:1:0.05", "--svg", str(tmp_path / "s.svg")]) == 0
    out = capsys.readouterr().out
    assert "Sweep of the threshold of adult in greater-than, less-than" in out
    assert "Wrote the chart to" in out
    svg = render_svg([{"concept": "a<b&c", "rows": [{"threshold": 0.5, "automation_rate": 0.5, "review_load": 0.25}]}])
    ET.fromstring(svg)  # a single point and odd characters still give well-formed XML


def test_warns_when_no_recorded_prediction_matches_any_node(tmp_path, capsys):
    other = tmp_path / "other.jsonl"
    other.write_text('{"input": "a", "model": "someone-elses-model", "concepts": {"walker": 0.9}}\n'
                     '{"input": "b", "model": "Park-Activity-Classifier", "concepts": {"walker": 0.9}}\n')
    args = [str(AA / "manifest.yaml"), "--predictions", str(other)]
    assert main(["simulate", *args]) == 0
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and err.startswith("warning: no recorded prediction matches any node of "
                                                   "workflow auto-annotate: the file names "
                                                   "Park-Activity-Classifier, someone-elses-model;")
    assert "park-activity-classifier" in err  # what the nodes would have matched
    assert "on 2 input(s)" in out
    assert main(["simulate", *args, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["warnings"]) == 1 and "no recorded prediction matches" in data["warnings"][0]


def test_no_warning_when_a_node_is_recorded(capsys):
    assert main(["simulate", str(AA / "manifest.yaml"), "--predictions", str(AA / "predictions.jsonl"), "--json"]) == 0
    out, err = capsys.readouterr()
    assert err == "" and json.loads(out)["warnings"] == []


def test_a_sweep_writes_no_chart_unless_asked(tmp_path, monkeypatch, capsys):
    """simulate --sweep prints its table; a chart file appears only with --svg (issue 23)."""
    monkeypatch.chdir(tmp_path)
    assert main(["simulate", str(AA / "manifest.yaml"), "--predictions", str(AA / "predictions.jsonl"), "--sweep", "walker=0.5:1:0.1"]) == 0
    out = capsys.readouterr().out
    assert "walker" in out and "Wrote the chart" not in out
    assert not list(tmp_path.rglob("*.svg"))
    assert main(["simulate", str(AA / "manifest.yaml"), "--predictions", str(AA / "predictions.jsonl"), "--svg", "x.svg"]) == 1
    assert "give --sweep" in capsys.readouterr().err
