"""render.py: the machine dict, text (rendered from the dict), Markdown with Mermaid."""

from __future__ import annotations

import dataclasses
import json

from hypothesis import given, settings
from hypothesis import strategies as st
from plan_fixtures import CONCEPTS, applied, desired_state, with_workflow

from reconciler.core.state import Workflow
from reconciler.planning.plan import make_plan
from reconciler.planning.render import NO_CHANGES, format_value, plan_to_dict, render_markdown, render_text, summary_line


def test_empty_plan_text():
    d = desired_state()
    text = render_text(plan_to_dict(make_plan(d, applied(d))))
    assert text == "Plan for app auto-annotation (user me):\n\nNo changes. The app matches the manifest.\n"


def test_glyphs_and_field_level_changes():
    live = applied(desired_state())
    live = dataclasses.replace(live, workflows=(*live.workflows, Workflow("gone")))
    text = render_text(plan_to_dict(make_plan(desired_state(walker=0.9), live)))
    assert "  ± model/greater-than  new version\n" in text
    assert "      config.thresholds.walker: 0.95 → 0.9\n" in text
    assert "  ~ workflow/auto-annotate  repoint\n" in text
    assert '"greater-than-v1" → (new version of greater-than)' in text
    assert "  - workflow/gone  delete\n" in text
    assert text.endswith("Plan: 0 to create, 0 to update, 1 new model version, 1 to repoint, 1 to delete.\n")
    assert "\033[" not in text


def test_create_glyph_and_color_only_when_asked():
    doc = plan_to_dict(make_plan(desired_state(), None))
    plain, colored = render_text(doc), render_text(doc, color=True)
    assert "  + concept/walker  create\n" in plain
    assert "\033[32m+\033[0m" in colored
    assert "\033[" not in plain


def test_summary_line():
    assert summary_line(dict.fromkeys(("create", "delete"), 0)) == NO_CHANGES
    assert summary_line({"create": 3, "update": 1, "new_version": 2, "repoint": 1, "delete": 0}) == \
        "Plan: 3 to create, 1 to update, 2 new model versions, 1 to repoint, 0 to delete."
    assert summary_line({"adopt": 2, "set_default": 1}) == \
        "Plan: 0 to create, 0 to update, 2 to adopt, 1 default workflow change, 0 to delete."


def test_values():
    assert format_value(None) == "(none)"
    assert format_value("a") == '"a"'
    assert format_value(0.5) == "0.5"
    assert format_value(False) == "false"
    assert format_value(["a", "b"]) == '["a", "b"]'
    assert format_value("new:m", "nodes.x.model.version") == "(new version of m)"
    assert format_value("new:m", "description") == '"new:m"'


def test_machine_format_shape():
    doc = plan_to_dict(make_plan(desired_state(walker=0.9), applied(desired_state()), live_fingerprint="fp"))
    assert doc["format_version"] == 1
    assert doc["app"] == {"id": "auto-annotation", "user_id": "me"}
    assert doc["live_fingerprint"] == "fp" and doc["empty"] is False
    assert set(doc["summary"]) == {"create", "update", "adopt", "new_version", "repoint", "set_default", "delete"}
    a = doc["actions"][0]
    assert set(a) == {"op", "kind", "id", "changes", "pins", "reuse_version", "reason"}
    assert a["changes"] == [{"path": "config.thresholds.walker", "before": 0.95, "after": 0.9}]
    json.dumps(doc)  # JSON-able


def test_markdown_has_table_and_mermaid_with_changed_node_highlighted():
    plan = make_plan(desired_state(walker=0.9), applied(desired_state()))
    md = render_markdown(plan_to_dict(plan), plan)
    assert "| `±` | `model/greater-than` | new version |" in md
    assert "```mermaid\nflowchart LR\n" in md
    assert 'n2["greater-than<br/>greater-than (concept-thresholder)' in md
    assert "walker #62; 0.9" in md  # ">" escaped for Mermaid
    assert "  n1 --> n2\n" in md
    assert "  class n2 changed\n" in md


def test_markdown_lists_removed_nodes_and_deleted_workflows():
    d = desired_state()
    live = applied(d)
    live = dataclasses.replace(live, workflows=(*live.workflows, Workflow("gone")))
    d2 = with_workflow(d, "auto-annotate", nodes=d.workflow("auto-annotate").nodes[:-1])
    plan = make_plan(d2, live)
    md = render_markdown(plan_to_dict(plan), plan)
    assert "Nodes removed: `write-pending`" in md
    assert "**Workflow `gone`** (delete)" in md


def test_markdown_of_an_empty_plan():
    d = desired_state()
    plan = make_plan(d, applied(d))
    md = render_markdown(plan_to_dict(plan), plan)
    assert f"**{NO_CHANGES}**" in md and "mermaid" not in md


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(st.sampled_from(CONCEPTS), st.floats(0, 1, allow_nan=False), max_size=5),
       st.dictionaries(st.sampled_from(CONCEPTS), st.floats(0, 1, allow_nan=False), max_size=5))
def test_invariants(live_thresholds, desired_thresholds):
    """Whatever the thresholds: planning an applied state is empty; the plan is deterministic; a
    changed thresholder means exactly one new version and one repoint; text == text(json(dict))."""
    live = applied(desired_state(**live_thresholds))
    d = desired_state(**desired_thresholds)
    assert make_plan(d, applied(d)).empty
    plan = make_plan(d, live)
    assert plan == make_plan(d, live)
    changed = live.model("greater-than").config != d.model("greater-than").config
    assert [a.op for a in plan.actions] == (["new_version", "repoint"] if changed else [])
    doc = plan_to_dict(plan)
    assert render_text(json.loads(json.dumps(doc))) == render_text(doc)


# --- PR comments that fit (issue 11) ------------------------------------------------------------

def _big_change(n_concepts: int = 10_000):
    """A threshold change (new version + repoint), a removed node, and `n_concepts` new concepts."""
    from reconciler.core.state import Concept

    d = desired_state()
    live = applied(d)
    d2 = with_workflow(desired_state(walker=0.9), "auto-annotate", nodes=d.workflow("auto-annotate").nodes[:-1])
    d2 = dataclasses.replace(d2, concepts=(*d2.concepts, *(Concept(f"c{i:05d}", f"concept {i}")
                                                          for i in range(n_concepts))))
    return make_plan(d2, live, endpoint="https://api.clarifai.com")


def test_markdown_of_10000_concepts_fits_and_keeps_models_and_workflows():
    plan = _big_change()
    doc = plan_to_dict(plan)
    assert len(doc["actions"]) > 10_000
    md = render_markdown(doc, plan)
    assert len(md) <= 60_000
    # nothing about models and workflows is cut in favour of concepts
    for a in doc["actions"]:
        if a["kind"] in ("model", "workflow"):
            assert f"`{a['kind']}/{a['id']}`" in md
    assert "`config.thresholds.walker`: 0.95 → 0.9" in md
    assert "```mermaid" in md
    # concepts are summarised per kind, collapsed and counted, never silently dropped
    assert "| concepts | 10000 |" in md
    assert "<details><summary>10000 concepts (10000 create)</summary>" in md
    shown = md.count("| `+` | `concept/c")
    assert 0 < shown < 10_000
    assert f"… and {10_000 - shown} more concepts (the full list: `reconciler show PLAN`)" in md
    assert md.index("`workflow/auto-annotate`") < md.index("<details>")


def test_markdown_budget_is_a_hard_limit():
    plan = _big_change(3_000)
    doc = plan_to_dict(plan)
    for budget in (60_000, 20_000, 5_000, 2_000, 800):
        md = render_markdown(doc, plan, max_chars=budget)
        assert len(md) <= budget, budget
        assert "`model/greater-than`" in md  # models come before concepts at every budget
    tiny = render_markdown(doc, plan, max_chars=2_000)
    assert "concept/c00000" not in tiny


def test_small_plans_are_unchanged_by_the_budget():
    plan = make_plan(desired_state(walker=0.9), applied(desired_state()))
    doc = plan_to_dict(plan)
    assert render_markdown(doc, plan, max_chars=60_000) == render_markdown(doc, plan)
    assert "<details>" not in render_markdown(doc, plan)


def test_removed_nodes_are_drawn_in_the_deleted_style():
    d = desired_state()
    d2 = with_workflow(d, "auto-annotate", nodes=d.workflow("auto-annotate").nodes[:-1])
    plan = make_plan(d2, applied(d))
    md = render_markdown(plan_to_dict(plan), plan)
    chart = md[md.index("```mermaid"):]
    removed = d.workflow("auto-annotate").nodes[-1]
    n = len(d2.workflow("auto-annotate").nodes)
    assert f'  n{n}["{removed.id}' in chart
    assert f"  class n{n} deleted\n" in chart
    assert f" -.-> n{n}\n" in chart  # its edges dotted
    assert f"n{n} changed" not in chart and f",n{n} changed" not in chart  # deleted, not also changed


# --- repoints and drift in words (issue 11) ------------------------------------------------------

def _repointed_to_an_older_version():
    """The live workflow pins greater-than-v2 (walker 0.8); the manifest matches v1 (walker 0.95)."""
    from plan_fixtures import vid, with_model

    from reconciler.core.state import ModelVersion

    d = desired_state()
    live = applied(d)
    gt = live.model("greater-than")
    v1 = gt.versions[0]
    v2 = ModelVersion(vid("greater-than", 2), {**v1.config, "thresholds": {**v1.config["thresholds"], "walker": 0.8}})
    live = with_model(live, "greater-than", versions=(v2, v1), version_id=v2.id, config=v2.config)
    wf = live.workflow("auto-annotate")
    live = with_workflow(live, "auto-annotate", nodes=tuple(
        dataclasses.replace(n, model=dataclasses.replace(n.model, version=v2.id)) if n.id == "greater-than" else n
        for n in wf.nodes))
    return d, live


def test_repoint_to_an_existing_version_shows_the_configuration_difference():
    from reconciler.planning import drift
    from reconciler.planning.serialize import plan_from_file_dict, plan_to_file_dict

    d, live = _repointed_to_an_older_version()
    plan = make_plan(d, live)
    assert [a.op for a in plan.actions] == ["repoint"]
    doc = plan_to_dict(plan)
    change = doc["actions"][0]["changes"][0]
    assert change == {"path": "nodes.greater-than.model.version", "before": "greater-than-v2",
                      "after": "greater-than-v1",
                      "config_changes": [{"path": "thresholds.walker", "before": 0.8, "after": 0.95}]}
    text = render_text(doc)
    assert ('      nodes.greater-than.model.version: "greater-than-v2" → "greater-than-v1"\n'
            "        thresholds.walker: 0.8 → 0.95\n") in text
    assert "<br>&nbsp;&nbsp;thresholds.walker: 0.8 → 0.95<br>" in render_markdown(doc, plan)
    drift_text = drift.render_text({**doc, "drift": True})
    assert ('nodes.greater-than.model.version: live "greater-than-v2", manifest "greater-than-v1"\n'
            "        thresholds.walker: 0.8 → 0.95\n") in drift_text
    # saved plans keep the words, so `show` prints them too
    back = plan_from_file_dict(json.loads(json.dumps(plan_to_file_dict(plan))))
    assert render_text(plan_to_dict(back)) == text


def test_a_new_version_pin_has_no_configuration_words():
    plan = make_plan(desired_state(walker=0.9), applied(desired_state()))
    doc = plan_to_dict(plan)
    assert all("config_changes" not in c for a in doc["actions"] for c in a["changes"])


# --- issue 20 finding 15, issue 21 item 4: Markdown keeps every model, workflow and app row ----------

def _thresholders(n_concepts: int = 2_000, n_models: int = 5):
    """An app with `n_concepts` concepts and `n_models` thresholders over all of them, in one
    workflow (the desired state)."""
    from plan_fixtures import USER, model

    from reconciler.core.state import App, Concept, ModelRef, Node, State, Workflow

    ids = [f"c{i:04d}" for i in range(n_concepts)]
    models = tuple(model(f"thresholder-{k}", "concept-thresholder", comparator="GREATER_THAN",
                         thresholds={c: 0.5 for c in ids}) for k in range(n_models))
    wf = Workflow("auto-annotate", nodes=tuple(Node(m.id, ModelRef(m.id)) for m in models))
    return State(app=App("big-app", default_workflow="auto-annotate"), concepts=tuple(Concept(c, name=c) for c in ids),
                 models=models, workflows=(wf,), user_id=USER, source="manifest.yaml")


def _rows(md: str) -> list[str]:
    return [line for line in md.splitlines() if line.startswith("| `")]


def test_markdown_of_a_change_to_thousands_of_thresholds_names_every_changed_model_and_workflow():
    d = _thresholders()
    live = applied(d)
    # three resources change: two thresholders move every threshold, and so the workflow repoints
    d2 = dataclasses.replace(d, models=tuple(
        dataclasses.replace(m, config={**m.config, "thresholds": {c: 0.7 for c in m.config["thresholds"]}})
        if m.id in ("thresholder-1", "thresholder-3") else m for m in d.models))
    plan = make_plan(d2, live, endpoint="https://api.clarifai.com")
    doc = plan_to_dict(plan)
    assert sorted(a["id"] for a in doc["actions"]) == ["auto-annotate", "thresholder-1", "thresholder-3"]
    for budget in (60_000, 20_000, 3_000):
        md = render_markdown(doc, plan, max_chars=budget)
        assert len(md) <= budget
        for a in doc["actions"]:
            assert f"`{a['kind']}/{a['id']}`" in md, (budget, a["id"])
        # every long cell is cut with a count, and the rows share the room: both models show changes
        for mid in ("thresholder-1", "thresholder-3"):
            row = next(r for r in _rows(md) if f"`model/{mid}`" in r)
            shown = row.count("`config.thresholds.c")
            assert shown >= (10 if budget >= 20_000 else 0)
            assert f"… and {2_000 - shown} more change(s) (the full list: `reconciler show PLAN`)" in row, row[-300:]
        assert all(not line.startswith("| | … and") for line in md.splitlines()), "a model or workflow row was cut"


def test_markdown_of_a_new_app_with_2000_thresholds_per_model_keeps_every_row():
    """Issue 21: the plan creating an app whose two models carry 2,000 thresholds each showed only
    the app's row and "… and 3 more model, workflow and app actions"."""
    d = _thresholders(n_models=2)
    plan = make_plan(d, None, endpoint="https://api.clarifai.com")
    doc = plan_to_dict(plan)
    md = render_markdown(doc, plan)
    assert len(md) <= 60_000
    major = [a for a in doc["actions"] if a["kind"] in ("app", "model", "workflow")]
    assert len(major) == 5  # the app, its default workflow, two models, the workflow
    rows = _rows(md)
    for a in major:
        assert sum(f"`{a['kind']}/{a['id']}`" in r for r in rows) >= 1, a
    assert "<details><summary>2000 concepts (2000 create)</summary>" in md
    assert "more model, workflow and app actions" not in md


def test_a_create_lists_fields_as_assignments_and_folds_node_references():
    """A resource being made reads `field = value` (no "(none) →"), and a node's model reference is
    one line (issue 23: a calmer plan)."""
    from reconciler.planning.render import render_text

    plan = {
        "app": {"id": "a"}, "endpoint": "", "notes": [], "summary": {"create": 1},
        "actions": [{"op": "create", "kind": "workflow", "id": "wf", "reason": "", "changes": [
            {"path": "nodes.n.v1.model.id", "before": None, "after": "general"},
            {"path": "nodes.n.v1.model.user_id", "before": None, "after": "clarifai"},
            {"path": "nodes.n.v1.model.app_id", "before": None, "after": "main"},
            {"path": "nodes.n.v1.model.version", "before": None, "after": "abc123"},
            {"path": "nodes.n.v1.inputs", "before": None, "after": []},
            {"path": "nodes.t.model.id", "before": None, "after": "gt"},
            {"path": "nodes.t.model.version", "before": None, "after": "new:gt"},
        ]}],
    }
    text = render_text(plan)
    assert "(none)" not in text
    assert "      nodes.n.v1.model = clarifai/main/general @ abc123\n" in text  # a node id with a dot
    assert "      nodes.n.v1.inputs = []\n" in text
    assert "      nodes.t.model = gt @ (new version of gt)\n" in text


def test_a_change_that_prints_alike_says_what_differs():
    from reconciler.planning.render import change_words

    assert change_words({"path": "config.k", "before": 1, "after": 1.0}) == "config.k: 1 → 1.0"
    same = change_words({"path": "config.k", "before": True, "after": 1})
    assert same == "config.k: true → 1"

    class Odd(float):  # a value that prints as another does but is not equal to it
        def __eq__(self, other: object) -> bool:
            return False

        def __ne__(self, other: object) -> bool:
            return True

        __hash__ = float.__hash__

    words = change_words({"path": "config.k", "before": 0.5, "after": Odd(0.5)})
    assert words.startswith("config.k: 0.5 → 0.5 (same text") and "Odd" in words
