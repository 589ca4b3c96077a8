"""`reconciler convert`: the Clarifai SDK's workflow YAML -> a manifest (tests/sdk_workflows/):
pinned versions become external references, described models with params become typed or raw
manifest models, multi-branch graphs keep their edges; the output validates, applies to the
sandbox and re-plans empty."""

from __future__ import annotations

from pathlib import Path

import pytest
from e2e import Harness

from reconciler import cli
from reconciler.core.errors import ManifestError
from reconciler.core.state import ModelRef
from reconciler.manifest.convert import convert_file
from reconciler.manifest.load import load_text

FIXTURES = Path(__file__).parent / "sdk_workflows"


def convert(name: str, **kw):
    text, warnings = convert_file(str(FIXTURES / name), **kw)
    return load_text(text, name), text, warnings


def test_pinned_versions_become_external_references():
    state, text, warnings = convert("pinned_public.yml")
    assert state.app.id == "face-crop" and state.models == ()
    (wf,) = state.workflows
    assert [n.model for n in wf.nodes] == [
        ModelRef("face-detection", "clarifai", "main", "fe995da8cb73490f8556416ecf25cea3"),
        ModelRef("margin-110-image-crop", "clarifai", "main", "b9987421b40a46649566826ef9325303")]
    assert wf.nodes[1].inputs == ("detector",)
    # the node that named no owner is reported, once
    assert len(warnings) == 1 and "margin-110-image-crop" in warnings[0] and "clarifai/main" in warnings[0]
    assert text.startswith("# Converted from the Clarifai SDK workflow file")


def test_model_owner_and_app_options():
    state, _, _ = convert("pinned_public.yml", app_id="my-app", model_owner=("me", "models"))
    assert state.app.id == "my-app"
    assert state.workflows[0].nodes[1].model.user_id == "me"
    assert state.workflows[0].nodes[0].model.user_id == "clarifai"  # named explicitly: kept


def test_described_models_with_params_become_typed_models():
    state, _, warnings = convert("auto_annotation.yml")
    assert [c.id for c in state.concepts] == ["adult", "people"]  # the thresholders' concepts, declared
    by = {m.id: m for m in state.models}
    assert by["synonym-mapper"].type == "concept-synonym-mapper"
    assert by["synonym-mapper"].description == "maps predictions through the app's relations"
    assert by["greater-than"].config == {"comparator": "GREATER_THAN", "thresholds": {"adult": 0.95, "people": 0.5}}
    assert by["less-than"].config == {"comparator": "LESS_THAN", "thresholds": {"people": 0.5}}
    assert by["write-success"].config == {"annotation_status": "SUCCESS", "annotation_user_id": "alice"}
    assert by["write-pending"].config == {"annotation_status": "PENDING", "task_id": "review-task"}
    assert any("annotation_info" in w and "dropped" in w for w in warnings)
    (wf,) = state.workflows
    edges = {n.id: n.inputs for n in wf.nodes}
    assert edges == {"general-concept": (), "mapper": ("general-concept",), "greater-than": ("mapper",),
                     "write-success": ("greater-than",), "less-than": ("mapper",), "write-pending": ("less-than",)}
    assert all(n.model.external is (n.id == "general-concept") for n in wf.nodes)


def test_multi_branch_graph_and_raw_passthrough():
    state, _, warnings = convert("multi_branch_custom.yml")
    (crop,) = state.models  # used by two nodes, declared once
    assert crop.type == "image-crop" and crop.config == {"output_info": {"params": {"margin": 1.3}}}
    (wf,) = state.workflows
    edges = {n.id: n.inputs for n in wf.nodes}
    assert edges == {"detector": (), "cropper": ("detector",), "face-sentiment": ("cropper",),
                     "moderation": ("detector",), "second-crop": ("detector", "moderation")}
    mod = next(n for n in wf.nodes if n.id == "moderation").model
    assert (mod.user_id, mod.app_id) == ("partner", "safety")
    assert sum("names no user_id/app_id" in w for w in warnings) == 2


def test_invalid_sdk_file_reports_every_problem_located():
    with pytest.raises(ManifestError) as err:
        convert_file(str(FIXTURES / "invalid.yml"))
    f = str(FIXTURES / "invalid.yml")
    assert [str(p) for p in err.value.problems] == [
        f"{f}:8:11: node a: model_version_id cannot be combined with 'model_type_id' (a pinned version is an existing model)",
        f"{f}:11:11: node b: model m2 has neither model_version_id (an existing model to pin) nor model_type_id (a model to create)",
        f"{f}:13:20: node b: input 'later' is not a node declared before it",
        f"{f}:16:11: node later: give both user_id and app_id of model m3, or neither",
    ]


def test_differently_described_model_is_an_error(tmp_path):
    text = (FIXTURES / "multi_branch_custom.yml").read_text()
    p = tmp_path / "wf.yml"
    p.write_text(text[::-1].replace("3.1 :nigram", "4.1 :nigram", 1)[::-1])  # the second crop's margin
    with pytest.raises(ManifestError) as err:
        convert_file(str(p))
    assert "described differently than on line 12" in str(err.value)


def test_not_an_sdk_file(tmp_path):
    p = tmp_path / "m.yml"
    p.write_text("app: {id: x}\n")
    with pytest.raises(ManifestError, match="expected a top-level 'workflow' mapping"):
        convert_file(str(p))


def test_converted_manifest_applies_and_replans_empty(tmp_path):
    # (the multi-branch fixture uses model types and public models the sandbox does not have)
    h = Harness(tmp_path)
    text, _ = convert_file(str(FIXTURES / "auto_annotation.yml"))
    desired = h.desired("auto_annotation.yml", text)
    h.apply(desired)
    assert h.plan(desired).empty


def test_cli_convert_writes_a_valid_manifest(tmp_path, capsys):
    out = tmp_path / "manifest.yaml"
    assert cli.main(["schema", "-o", str(tmp_path / "schemas" / "manifest.schema.json")]) == 0  # the repository's copy
    assert cli.main(["convert", str(FIXTURES / "auto_annotation.yml"), "-o", str(out), "--app", "annot"]) == 0
    assert "warning:" in capsys.readouterr().err
    assert out.read_text().startswith("# yaml-language-server: $schema=schemas/manifest.schema.json\n")
    assert cli.main(["validate", str(out)]) == 0
    assert cli.main(["convert", str(FIXTURES / "invalid.yml")]) == 1
    assert "invalid.yml:8:11:" in capsys.readouterr().err
    assert cli.main(["convert", str(FIXTURES / "pinned_public.yml"), "--model-owner", "nope"]) == 1
