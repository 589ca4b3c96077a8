"""render.py: the machine dict, text (rendered from the dict), Markdown with Mermaid."""

from __future__ import annotations

import dataclasses
import json

from hypothesis import given, settings, strategies as st

from plan_fixtures import CONCEPTS, applied, desired_state, with_workflow
from reconciler.plan import make_plan
from reconciler.render import (NO_CHANGES, format_value, plan_to_dict, render_markdown, render_text,
                               summary_line)
from reconciler.state import Workflow


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
