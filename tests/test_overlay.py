"""Overlays (`-f base.yaml -f prod.yaml`): every merge rule, every removal error, and problems
located in the file (and line) where the offending text was written."""

from __future__ import annotations

import textwrap

import pytest

from reconciler import cli
from reconciler.core.errors import ManifestError
from reconciler.manifest.load import load_overlays, load_text, read_inputs

BASE = """\
variables:
  cut: {default: 0.5}
app:
  id: dev-app
  description: the dev app
  metadata: {team: ml, tier: dev}
  default_workflow: flow
concepts:
  - id: cat
  - id: dog
    name: Dog
concept_relations:
  - {subject: cat, predicate: synonym, object: {id: ai_l8TKp2h5, user_id: clarifai, app_id: main}}
  - {subject: dog, predicate: hyponym, object: cat}
models:
  - id: gate
    type: concept-thresholder
    comparator: GREATER_THAN
    thresholds: {cat: "${var.cut}", dog: 0.4}
  - id: writer
    type: annotation-writer
    annotation_status: SUCCESS
workflows:
  - id: flow
    nodes:
      - id: g
        model: gate
      - id: w
        model: writer
        inputs: [g]
"""


@pytest.fixture
def files(tmp_path):
    """The files of `texts`: the first is the base, each later one an overlay, which declares
    itself (`overlay: true`, appended so that line numbers in expected problems stay put)."""
    def make(*texts: str) -> list[str]:
        paths = []
        for i, t in enumerate(texts):
            p = tmp_path / ("base.yaml" if i == 0 else f"overlay{i}.yaml")
            p.write_text(textwrap.dedent(t) + ("\noverlay: true\n" if i else ""))
            paths.append(str(p))
        return paths
    return make


def problems(paths, **kw) -> list[str]:
    with pytest.raises(ManifestError) as err:
        load_overlays(paths, **kw)
    return [str(p) for p in err.value.problems]


def test_no_overlay_is_the_base(files):
    (base,) = files(BASE)
    assert load_overlays([base]) == load_text(BASE)


def test_maps_merge_and_scalars_override(files):
    paths = files(BASE, """\
        app:
          id: prod-app
          metadata: {tier: prod, region: eu}
        """)
    s = load_overlays(paths)
    assert s.app.id == "prod-app"
    assert s.app.description == "the dev app"  # kept
    assert s.app.metadata == {"team": "ml", "tier": "prod", "region": "eu"}
    assert s.app.default_workflow == "flow"


def test_lists_of_ids_merge_by_id_in_place_and_append(files):
    paths = files(BASE, """\
        concepts:
          - id: bird
          - id: dog
            description: a dog
        models:
          - id: gate
            thresholds: {dog: 0.9, bird: 0.7}
        workflows:
          - id: flow
            nodes:
              - id: w
                inputs: [g]
                suppress_output: true
          - id: second
            nodes: [{id: only, model: writer}]
        """)
    s = load_overlays(paths)
    assert [c.id for c in s.concepts] == ["cat", "dog", "bird"]
    dog = s.concepts[1]
    assert (dog.name, dog.description) == ("Dog", "a dog")  # merged into the existing item
    assert s.model("gate").config["thresholds"] == {"bird": 0.7, "cat": 0.5, "dog": 0.9}
    assert s.model("gate").config["comparator"] == "GREATER_THAN"
    flow = s.workflow("flow")
    assert [n.id for n in flow.nodes] == ["g", "w"] and flow.nodes[1].suppress_output
    assert flow.nodes[1].model.id == "writer"
    assert [w.id for w in s.workflows] == ["flow", "second"]


def test_other_lists_are_replaced(files):
    paths = files(BASE, """\
        workflows:
          - id: flow
            nodes:
              - id: extra
                model: gate
              - id: w
                inputs: [extra]
        """)
    flow = load_overlays(paths).workflow("flow")
    assert [n.id for n in flow.nodes] == ["g", "w", "extra"]
    assert flow.nodes[1].inputs == ("extra",)  # the inputs list replaced, not appended to


def test_remove_items_keys_and_relations(files):
    paths = files(BASE, """\
        app:
          default_workflow: null
          metadata: {tier: null}
        concepts:
          - {id: dog, $remove: true}
        concept_relations:
          - {subject: dog, predicate: hyponym, object: cat, $remove: true}
          - {subject: cat, predicate: synonym, object: {id: ai_l8TKp2h5, user_id: clarifai, app_id: main}}
        models:
          - id: gate
            thresholds: {dog: null}
          - {id: writer, $remove: true}
        workflows:
          - {id: flow, $remove: true}
        """)
    s = load_overlays(paths)
    assert [c.id for c in s.concepts] == ["cat"]
    assert [r.key for r in s.relations] == ["cat synonym clarifai/main/ai_l8TKp2h5"]  # the same relation: no duplicate
    assert [m.id for m in s.models] == ["gate"]
    assert s.model("gate").config["thresholds"] == {"cat": 0.5}
    assert s.workflows == () and s.app.default_workflow is None
    assert s.app.metadata == {"team": "ml"}


def test_overlays_fold_in_order_and_can_re_add(files):
    paths = files(BASE, "concepts: [{id: dog, $remove: true}]\n", "concepts: [{id: dog, name: back}]\n",
                  "app: {description: last}\n")
    s = load_overlays(paths)
    assert [(c.id, c.name) for c in s.concepts] == [("cat", "cat"), ("dog", "back")]
    assert s.app.description == "last"


def test_overlay_overrides_a_variable_default(files):
    paths = files(BASE, "variables: {cut: {default: 0.8}}\n")
    assert load_overlays(paths).model("gate").config["thresholds"]["cat"] == 0.8
    assert load_overlays(paths, inputs=read_inputs(["cut=0.1"])).model("gate").config["thresholds"]["cat"] == 0.1


def test_removal_errors(files):
    paths = files(BASE, """\
        concepts:
          - {id: horse, $remove: true}
          - {id: cat, $remove: yes please}
          - {id: dog, $remove: true, name: x}
        concept_relations:
          - {subject: cat, predicate: hypernym, object: dog, $remove: true}
        app:
          nothing_here: null
        """)
    base, over = paths
    assert problems(paths) == [
        f"{over}:2:5: cannot remove 'horse': no such item in the files before this one",
        f"{over}:3:24: '$remove' must be true",
        f"{over}:4:30: an item with '$remove' names the item to remove and nothing else: 'name'",
        f"{over}:6:5: cannot remove this relation: no such relation in the files before this one",
        f"{over}:8:3: cannot remove 'nothing_here': it is not set in the files before this one",
    ]


def test_remove_outside_an_overlay_is_an_error(files):
    text = BASE.replace("  - id: cat\n", "  - id: cat\n    $remove: true\n")
    (base,) = files(text)
    assert problems([base])[0] == f"{base}:10:5: '$remove' only removes items of an earlier file in an overlay (-f base.yaml -f overlay.yaml)"
    with pytest.raises(ManifestError):
        load_text(text)


def test_problems_point_at_the_file_and_line_written(files):
    paths = files(BASE.replace("dog: 0.4", "dog: 4"), """\
        # prod
        models:
          - id: gate
            thresholds: {cat: 1.5}
          - id: new-model
            type: annotation-writer
            annotation_status: MAYBE
        workflows:
          - id: flow
            nodes:
              - id: w
                inputs: [ghost]
        """)
    base, over = paths
    got = problems(paths)
    assert f"{base}:19:42: threshold 4 for concept 'dog' is outside [0, 1]" in got
    assert f"{over}:4:23: threshold 1.5 for concept 'cat' is outside [0, 1]" in got
    assert any(p.startswith(f"{over}:7:24: 'annotation_status' must be one of") for p in got)
    assert f"{over}:12:18: input 'ghost' is not a node of workflow 'flow'" in got
    assert len(got) == 4


def test_yaml_errors_in_any_file_are_reported(files):
    paths = files(BASE, "app: [\n", "concepts: {id: x}\n")
    got = problems(paths)
    assert got[0].startswith(paths[1] + ":")


def test_cli_plan_and_validate_with_f(files, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("CLARIFAI_PAT", raising=False)
    monkeypatch.delenv("CLARIFAI_API_BASE", raising=False)
    monkeypatch.chdir(tmp_path)
    base, over = files(BASE, "app: {id: prod-app}\n")
    assert cli.main(["validate", "-f", base, "-f", over]) == 0
    assert cli.main(["plan", "-f", base, "-f", over, "--json"]) == 0
    assert '"id": "prod-app"' in capsys.readouterr().out
    assert cli.main(["apply", "-f", base, "-f", over, "--auto-approve"]) == 0
    assert cli.main(["drift", "-f", base, "-f", over]) == 0
    assert cli.main(["drift", base]) == 2  # dev-app was never applied
    # a positional FILE is the base when combined with -f
    assert cli.main(["plan", base, "-f", over, "--detailed-exitcode"]) == 0
    assert cli.main(["plan", base, over]) == 1
    assert "exactly one manifest" in capsys.readouterr().err


# --- overlay guards: an overlay declares itself, and is never taken for a manifest ---------------


def test_an_overlay_given_as_the_manifest_is_refused(tmp_path, capsys):
    over = tmp_path / "dev.yaml"
    over.write_text("overlay: true\nmodels:\n  - {id: gate, $remove: true}\n")
    expected = f"{over}:1:1: this file is an overlay (overlay: true), not a manifest: give it after its base, e.g. -f manifest.yaml -f dev.yaml"
    assert problems([str(over)]) == [expected]  # alone, or as the first -f
    with pytest.raises(ManifestError) as err:
        load_text(over.read_text(), str(over))
    assert [str(p) for p in err.value.problems] == [expected]
    base = tmp_path / "base.yaml"
    base.write_text(BASE)
    assert problems([str(over), str(base)])[0] == expected
    for argv in (["validate", str(over)], ["plan", str(over)], ["apply", str(over), "--auto-approve"],
                 ["validate", "-f", str(over), "-f", str(base)]):
        assert cli.main(argv) == 1
        err_text = capsys.readouterr().err
        assert expected in err_text and "Traceback" not in err_text


def test_a_later_file_must_declare_overlay_true(tmp_path, capsys):
    base, other = tmp_path / "base.yaml", tmp_path / "other.yaml"
    base.write_text(BASE)
    other.write_text("app: {id: prod-app}\n")  # a manifest-looking file in an overlay's place
    expected = (f"{other}:1:1: files after the first -f are overlays and must declare overlay: true at the top "
                "(the manifest is the first file, here base.yaml)")
    assert problems([str(base), str(other)]) == [expected]
    assert cli.main(["plan", "-f", str(base), "-f", str(other)]) == 1
    assert capsys.readouterr().err.strip() == expected
    other.write_text("app: {id: prod-app}\noverlay: true\n")
    assert load_overlays([str(base), str(other)]).app.id == "prod-app"


def test_overlay_must_be_true_when_given(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text(BASE + "overlay: false\n")
    got = problems([str(base)])
    assert len(got) == 1 and got[0] == f"{base}:31:10: 'overlay' must be True, not False", got


def test_remove_needs_a_file_that_declares_overlay(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text(BASE)
    over = tmp_path / "dev.yaml"
    over.write_text("workflows:\n  - {id: flow, $remove: true}\napp: {default_workflow: null}\n")
    assert "must declare overlay: true" in problems([str(base), str(over)])[0]
    over.write_text(over.read_text() + "overlay: true\n")
    assert load_overlays([str(base), str(over)]).workflows == ()
