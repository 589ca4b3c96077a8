"""Export round trips against the sandbox (issue 5): export then plan against the same app is
empty (an app built by this tool), or only `adopt` with no field changes (an app built by raw API
calls, the documented walkthrough) and empty after one apply, which recreates nothing; the
exported file applied to an empty app gives an app whose plan, like the source's, is empty."""

from __future__ import annotations

import json

import dataclasses
from pathlib import Path

import pytest
from e2e import EXAMPLES, Harness
from walkthrough import APP, build_walkthrough

from reconciler.api.live import read_live
from reconciler.manifest.load import load_text
from reconciler.planning.export import export_app, export_manifest
from reconciler.sandbox.app import DEFAULT_USER
from reconciler.sandbox.quirks import QUIRKS

EXAMPLE_FILES = [EXAMPLES / "auto-annotation" / "manifest.yaml", EXAMPLES / "people-synonyms" / "manifest.yaml"]


@pytest.fixture(params=[None, "pessimistic"], ids=["sandbox", "pessimistic"])
def h(tmp_path, request):
    """A sandbox, normal and pessimistic (README, "Pessimistic sandbox mode")."""
    return Harness(tmp_path, quirks=request.param)


def export(h, app_id):
    text, warnings = export_app(h.client, app_id, user_id=DEFAULT_USER)
    return text, warnings


def retarget(state, app_id):
    return dataclasses.replace(state, app=dataclasses.replace(state.app, id=app_id))


def ops(plan):
    return [(a.op, a.address) for a in plan.actions]


@pytest.mark.parametrize("manifest", EXAMPLE_FILES, ids=lambda p: p.parent.name)
def test_export_of_a_managed_app_plans_empty_and_copies_to_an_empty_app(h, manifest):
    h.apply(h.desired(manifest))
    app_id = h.desired(manifest).app.id
    text, warnings = export(h, app_id)
    assert warnings == []
    exported = h.desired("exported.yaml", text)
    assert h.plan(exported).empty, ops(h.plan(exported))
    # deterministic: a second export is byte-identical
    assert export(h, app_id)[0] == text
    # the exported file applied to an empty app, then both apps plan empty
    copy = retarget(exported, "copy-of-" + app_id)
    first = h.apply(copy)
    assert first.actions[0].op == "create"
    assert h.plan(copy).empty
    assert h.plan(exported).empty
    # the copy exports to the same manifest, but for its id
    assert export(h, copy.app.id)[0].replace("copy-of-" + app_id, app_id) == text


def test_walkthrough_app_built_by_raw_calls_is_adopted_without_recreating(h):
    versions = build_walkthrough(h.client, DEFAULT_USER)
    text, warnings = export(h, APP)
    assert any("adopt" in w for w in warnings)
    exported = h.desired("exported.yaml", text)
    # everything the walkthrough made is captured, with typed fields
    assert {m.id: m.type for m in exported.models} == {
        "synonym-model-id": "concept-synonym-mapper", "greater-than-model-id": "concept-thresholder",
        "less-than-model-id": "concept-thresholder", "write-success-as-me": "annotation-writer",
        "write-pending-as-me": "annotation-writer"}
    gt = exported.model("greater-than-model-id")
    assert gt.config == {"comparator": "GREATER_THAN", "thresholds": {"adultID": 0.95, "manID": 0.5, "peopleID": 0.5}}
    assert exported.model("write-pending-as-me").config == {"annotation_status": "PENDING"}
    assert exported.app.default_workflow == "auto-annotation-workflow-id"
    assert len(exported.relations) == 3 and all(r.object.app_id == "main" for r in exported.relations)
    assert "clarifai" not in {m.id for m in exported.models}  # clarifai/main stays external
    wf = exported.workflow("auto-annotation-workflow-id")
    assert [n.model.app_id for n in wf.nodes[:3]] == ["main"] * 3

    plan = h.plan(exported)
    assert {a.op for a in plan.actions} == {"adopt"}
    assert all(a.changes == () and a.reuse_version is None for a in plan.actions)
    assert sorted(ops(plan)) == sorted([("adopt", f"model/{m}") for m in versions]
                                       + [("adopt", "workflow/auto-annotation-workflow-id")])
    h.clear_log()
    h.apply(exported)
    writes = h.writes()
    # ownership is taken by PATCHing metadata: no model, version or workflow is POSTed
    assert writes and all(w[0] == "PATCH" for w in writes), writes
    assert h.plan(exported).empty
    live = read_live(h.client, APP, user_id=DEFAULT_USER)
    assert {m.id: m.version_id for m in live.models} == versions  # the same versions, none new
    pins = {n.id: n.model.version for n in live.workflow("auto-annotation-workflow-id").nodes if not n.model.external}
    assert pins["greater-than"] == versions["greater-than-model-id"]
    # and a copy made from the export converges
    copy = retarget(exported, "walkthrough-copy")
    h.apply(copy)
    assert h.plan(copy).empty and h.plan(exported).empty


#: The walkthrough's own raw PatchApps sends only the default workflow: under the quirk
#: patch-overwrite-replaces that clears the description this hand-written manifest names, so that
#: test runs under every other quirk.
ALL_BUT_OVERWRITE = sorted(set(QUIRKS) - {"patch-overwrite-replaces"})


@pytest.mark.parametrize("h", [None, ALL_BUT_OVERWRITE], ids=["sandbox", "pessimistic-but-overwrite"], indirect=True)
def test_handwritten_manifest_adopts_the_walkthrough_app(h):
    """A manifest written by hand (not exported) naming the hand-made resources: adopt, no recreate."""
    versions = build_walkthrough(h.client, DEFAULT_USER)
    text = f"""
app: {{id: {APP}, description: "auto annotation, by hand"}}
concepts: [{{id: peopleID, name: people}}, {{id: manID, name: man}}, {{id: adultID, name: adult}}]
concept_relations:
  - {{subject: peopleID, predicate: synonym, object: {{id: ai_l8TKp2h5, user_id: clarifai, app_id: main}}}}
  - {{subject: manID, predicate: synonym, object: {{id: ai_dxSG2s86, user_id: clarifai, app_id: main}}}}
  - {{subject: adultID, predicate: synonym, object: {{id: ai_VPmHr5bm, user_id: clarifai, app_id: main}}}}
models:
  - {{id: greater-than-model-id, type: concept-threshold, comparator: GREATER_THAN,
     thresholds: {{peopleID: 0.5, manID: 0.5, adultID: 0.95}}}}
"""
    desired = h.desired("hand.yaml", text)
    plan = h.plan(desired)
    assert ops(plan) == [("adopt", "model/greater-than-model-id")]
    assert any("unmanaged" in n for n in plan.notes)
    h.clear_log()
    h.apply(desired)
    assert not [w for w in h.writes() if w[0] == "POST"]
    assert h.plan(desired).empty
    live = read_live(h.client, APP, user_id=DEFAULT_USER)
    assert live.model("greater-than-model-id").version_id == versions["greater-than-model-id"]


def test_export_takes_the_pinned_version_not_a_newer_unused_one(h):
    build_walkthrough(h.client, DEFAULT_USER)
    base = h.base(APP)
    # a newer version nobody pins
    h.client.post(f"{base}/models/greater-than-model-id/versions", {"model_versions": [
        {"output_info": {"data": {"concepts": [{"id": "peopleID", "value": 0.1}]},
                         "params": {"concept_threshold_type": "GREATER_THAN"}}}]})
    text, warnings = export(h, APP)
    exported = h.desired("exported.yaml", text)
    assert exported.model("greater-than-model-id").config["thresholds"]["peopleID"] == 0.5
    plan = h.plan(exported)
    assert {a.op for a in plan.actions} == {"adopt"}
    assert all(not a.changes for a in plan.actions)


def test_export_warns_when_nodes_pin_versions_with_different_configs(h):
    build_walkthrough(h.client, DEFAULT_USER)
    base = h.base(APP)
    other = h.client.post(f"{base}/models/greater-than-model-id/versions", {"model_versions": [
        {"output_info": {"data": {"concepts": [{"id": "peopleID", "value": 0.1}]},
                         "params": {"concept_threshold_type": "GREATER_THAN"}}}]})["model"]["model_version"]["id"]
    raw = h.client.get(f"{base}/workflows/auto-annotation-workflow-id")["workflow"]
    nodes = raw["nodes"] + [{"id": "greater-too", "model": {"id": "greater-than-model-id",
                                                            "model_version": {"id": other}},
                             "node_inputs": [{"node_id": "mapper"}]}]
    h.client.post(f"{base}/workflows", {"workflows": [{"id": "second", "nodes": nodes}]})
    text, warnings = export(h, APP)
    msg = [w for w in warnings if "greater-than-model-id" in w]
    assert msg and "different configurations" in msg[0] and "greater-too" in msg[0]
    exported = h.desired("exported.yaml", text)
    # two nodes pin the old version (one per workflow), one the new: the majority config is exported
    assert exported.model("greater-than-model-id").config["thresholds"]["peopleID"] == 0.5
    plan = h.plan(exported)
    repointed = [a for a in plan.actions if a.op == "adopt" and a.id == "second"]
    assert [c.path for c in repointed[0].changes] == ["nodes.greater-too.model.version"]


def test_exported_yaml_is_schema_valid_and_quotes_number_like_ids():
    from reconciler.core.state import App, Concept, State

    live = State(app=App(id="a1"), concepts=(Concept("1e3", "1e3"), Concept("yes", "yes"), Concept("x", "multi\nline")),
                 user_id="u")
    from reconciler.manifest.yamldump import dump_yaml

    text = dump_yaml(export_manifest(live))
    state = load_text(text)
    assert [c.id for c in state.concepts] == ["1e3", "x", "yes"]
    assert state.concepts[1].name == "multi\nline"


def test_cli_export_then_plan_is_empty(tmp_path, monkeypatch, capsys):
    from reconciler import cli

    monkeypatch.delenv("CLARIFAI_PAT", raising=False)
    monkeypatch.delenv("CLARIFAI_API_BASE", raising=False)
    monkeypatch.chdir(tmp_path)
    manifest = str(EXAMPLE_FILES[1])
    assert cli.main(["apply", manifest, "--auto-approve"]) == 0
    out = tmp_path / "apps" / "exported.yaml"
    out.parent.mkdir()
    assert cli.main(["schema", "-o", str(tmp_path / "schemas" / "manifest.schema.json")]) == 0  # the repository's copy
    assert cli.main(["export", "--app", "people-synonyms", "-o", str(out)]) == 0
    assert out.read_text().startswith("# yaml-language-server: $schema=../schemas/manifest.schema.json\n")
    assert cli.main(["validate", str(out)]) == 0
    assert cli.main(["plan", str(out), "--detailed-exitcode"]) == 0
    assert cli.main(["export", "--app", "no-such-app"]) == 1
    assert "does not exist" in capsys.readouterr().err


def _script_commands(script: Path) -> list[list[str]]:
    """Every `reconciler ...` call in a CI script, as argv: the scripts' variables replaced by
    sample values, expansions of optional flag lists and redirections dropped."""
    import shlex

    values = {'"$PLANS"': "plans", '"$app"': "shelf-prod", '"${MAX_PLAN_AGE:-72h}"': "72h", '"$BASE"': "origin/main"}
    cmds = []
    for line in script.read_text().splitlines():
        line = line.strip()
        if "$(reconciler " in line:  # a command substitution: apps=$(reconciler show ... | ...)
            line = line.split("$(", 1)[1]
        if not line.startswith("reconciler "):
            continue
        line = line.split("|")[0].rstrip(")")
        for name, value in values.items():
            line = line.replace(name, value)
        for dropped in ('"${since[@]}"', "${APPLY_ARGS:-}", '"$@"'):
            line = line.replace(dropped, "")
        words = shlex.split(line)[1:]
        redirect = {i for i, w in enumerate(words) if w in (">", ">>")}
        cmds.append([w for i, w in enumerate(words) if i not in redirect and i - 1 not in redirect])
    return cmds


def test_ci_recipe_commands_all_parse_and_it_applies_the_reviewed_plan():
    """The CI recipes' steps are scripts (issue 21; tests/test_ci_recipes.py runs them): every
    reconciler call in them parses, the merge applies the reviewed plan set (no fresh plan), and
    the install step installs this package from its git repository (it is not on PyPI)."""
    import re

    from packaging.requirements import Requirement

    from reconciler.cli import build_parser

    scripts = EXAMPLES / "ci" / "scripts"
    commands = {p.name: _script_commands(p) for p in sorted(scripts.glob("*.sh"))}
    assert sum(len(c) for c in commands.values()) >= 6
    assert ["show", "--json"] in commands["select.sh"]  # the job matrix
    for cmds in commands.values():
        for argv in cmds:
            build_parser().parse_args(argv)  # raises on an unknown verb or flag
    verbs = {name: [argv[0] for argv in cmds] for name, cmds in commands.items() if cmds}
    assert verbs["plan.sh"] == ["validate", "plan"] and verbs["apply.sh"] == ["apply"] and verbs["drift.sh"] == ["drift"]
    (plan,) = [c for c in commands["plan.sh"] if c[0] == "plan"]
    assert plan[plan.index("--out") + 1] == "plans" and "--markdown" in plan and "--detailed-exitcode" in plan
    (apply,) = commands["apply.sh"]
    assert apply[:2] == ["apply", "plans"] and "--json" in apply and "--max-plan-age" in apply  # the reviewed set
    default = re.search(r'RECONCILER_SPEC:-([^}]*)\}', (scripts / "install.sh").read_text())
    assert default is not None
    req = Requirement(default.group(1))
    assert req.name == "clarifai-reconciler" and req.url and req.url.startswith("git+https://")


def test_pre_commit_hook_matches_manifests_not_overlays():
    import re

    import yaml

    hooks = yaml.safe_load((EXAMPLES.parent / ".pre-commit-hooks.yaml").read_text())
    hook = hooks[0]
    assert hook["id"] == "reconciler-validate" and hook["entry"] == "reconciler validate"
    files = re.compile(hook["files"])  # pre-commit uses re.search
    for path in ("manifest.yaml", "clarifai/manifest.yml", "apps/shop.manifest.yaml",
                 "examples/auto-annotation/manifest.yaml"):
        assert files.search(path), path
    for path in ("clarifai/prod.yaml", "notmanifest.yaml", "manifest.yaml.bak", "manifest.json",
                 "a.manifest/prod.yaml"):
        assert not files.search(path), path
    # every manifest in this repository that the hook would pick is valid on its own
    from reconciler.cli import main

    picked = [str(p) for p in EXAMPLES.rglob("*") if files.search(p.relative_to(EXAMPLES.parent).as_posix())]
    assert picked and main(["validate", *picked]) == 0


def test_export_never_writes_a_machine_path_as_its_schema(tmp_path, monkeypatch, capsys):
    """No copy of the schema in the repository: no modeline and a note saying how to make one, never
    a path into site-packages or an absolute path (issue 23)."""
    from reconciler import cli

    monkeypatch.delenv("CLARIFAI_PAT", raising=False)
    monkeypatch.delenv("CLARIFAI_API_BASE", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".git").mkdir()  # the project root: the search for a schema copy stops here
    assert cli.main(["apply", str(EXAMPLE_FILES[1]), "--auto-approve"]) == 0
    capsys.readouterr()
    out = tmp_path / "exported.yaml"
    assert cli.main(["export", "--app", "people-synonyms", "-o", str(out)]) == 0
    text = out.read_text()
    assert "$schema" not in text and "site-packages" not in text and str(tmp_path) not in text
    assert "reconciler schema -o schemas/manifest.schema.json" in capsys.readouterr().err
    assert cli.main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out)["$schema"] == "https://json-schema.org/draft/2020-12/schema"
