"""Owners (issue 21 item 3): the ownership marker names the manifest that manages a resource; a
plan never deletes a managed resource of another owner (a note says whose it is) and adopts one
the manifest names; markers written before owners existed count as the managing manifest's and
get the owner on their next update; the default owner is the manifest's path from the git root."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from e2e import EXAMPLES, Harness

from reconciler.core.state import MARKER_KEY, make_marker, read_marker, with_owner
from reconciler.manifest.load import default_owner, load, load_overlays, load_text
from reconciler.planning.serialize import plan_from_file_dict, plan_to_file_dict
from reconciler.sandbox.app import DEFAULT_USER

EXAMPLE = EXAMPLES / "people-synonyms" / "manifest.yaml"
APP = "people-synonyms"
EXTRA = """
  - id: extra-writer-{n}
    type: annotation-writer
    annotation_status: PENDING
"""


def manifest(owner: str | None, *, extra: int | None = None, text: str | None = None) -> str:
    """The example, owned by `owner` (none: no `owner:` line), with an extra model of its own."""
    body = text or EXAMPLE.read_text()
    if extra is not None:
        body = body.replace("\nworkflows:", EXTRA.format(n=extra).rstrip("\n") + "\nworkflows:", 1)
    return (f"owner: {owner}\n" if owner else "") + body


def state(owner: str | None, **kw):
    return Harness.desired(EXAMPLE, manifest(owner, **kw))


def marker_of(h: Harness, kind: str, rid: str) -> dict:
    got = h.client.get(f"/v2/users/{DEFAULT_USER}/apps/{APP}/{kind}s/{rid}")[kind]
    return got["metadata"][MARKER_KEY]


def test_markers_carry_the_owner_and_old_markers_read_as_unowned() -> None:
    assert read_marker({MARKER_KEY: make_marker(True, ["team"], "apps/shelf/manifest.yaml"), "team": "ml"}) == (
        True, True, {"team": "ml"}, "apps/shelf/manifest.yaml")
    old = {MARKER_KEY: {"managed": True, "protect": False, "keys": "[]"}}
    assert read_marker(old).owner is None and read_marker(old).managed
    assert "owner" not in make_marker(False, [])


def test_default_owner_is_the_path_from_the_git_root(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "apps" / "shelf").mkdir(parents=True)
    m = repo / "apps" / "shelf" / "manifest.yaml"
    m.write_text(EXAMPLE.read_text())
    assert default_owner(str(m)) == "apps/shelf/manifest.yaml"
    assert load(m).owner == "apps/shelf/manifest.yaml"
    loose = tmp_path / "loose.yaml"
    loose.write_text(EXAMPLE.read_text())
    assert default_owner(str(loose)) == "loose.yaml"  # outside a repository: the file name
    assert load_text(EXAMPLE.read_text(), "x.yaml").owner is None  # text without a file: no owner


def test_an_explicit_owner_wins_and_reaches_every_model_and_workflow(tmp_path: Path) -> None:
    base = tmp_path / "base.yaml"
    base.write_text(manifest("team-shelf"))
    s = load(base)
    assert s.owner == "team-shelf" and {m.owner for m in s.models} | {w.owner for w in s.workflows} == {"team-shelf"}
    over = tmp_path / "prod.yaml"
    over.write_text("overlay: true\nowner: team-shelf-prod\n")
    assert load_overlays([base, over]).owner == "team-shelf-prod"
    base.write_text(EXAMPLE.read_text())
    assert load_overlays([base, over]).owner == "team-shelf-prod"  # the base names none: the overlay's
    assert load_overlays([base]).owner == "base.yaml"


def test_owner_must_be_one_line_of_text(tmp_path: Path) -> None:
    from reconciler.core.errors import ManifestError

    with pytest.raises(ManifestError, match=r"^m.yaml:1:8: invalid owner 'a\\tb': one line of text, without control characters$"):
        load_text(manifest('"a\\tb"'), "m.yaml")


def test_another_owners_resources_are_never_deleted_and_the_note_says_whose(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.apply(state("team-a", extra=1))
    b = state("team-b", extra=2)
    plan = h.plan(b)
    assert not [a for a in plan.actions if a.op.value == "delete"]
    notes = [n.text for n in plan.notes]
    assert "model/extra-writer-1 is managed by team-a, not by team-b: not deleted" in notes
    # what both name, b adopts from a, saying so
    adopts = {a.address: a for a in plan.actions if a.op.value == "adopt"}
    assert "model/greater-than" in adopts and "workflow/auto-annotation" in adopts
    change = next(c for c in adopts["model/greater-than"].changes if c.path == "owner")
    assert (change.before, change.after) == ("team-a", "team-b")
    assert adopts["model/greater-than"].reason == "managed by team-a: take ownership"
    h.apply(b)
    assert marker_of(h, "model", "greater-than")["owner"] == "team-b"
    assert marker_of(h, "model", "extra-writer-1")["owner"] == "team-a"  # left alone
    assert h.plan(b).empty
    # a itself still deletes its own resources once it drops them
    a_without = state("team-a")
    deletes = [x.address for x in h.plan(a_without).actions if x.op.value == "delete"]
    assert deletes == ["model/extra-writer-1"]


def test_markers_without_an_owner_count_as_ours_and_get_it_on_the_next_update(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    legacy = dataclasses.replace(state(None, extra=1), owner=None)  # as applied by an older reconciler
    h.apply(legacy)
    assert "owner" not in marker_of(h, "model", "greater-than")
    owned = with_owner(state(None, extra=1), "team-a")
    assert h.plan(owned).empty  # adding an owner alone is no change to plan
    described = EXAMPLE.read_text().replace("comparator: GREATER_THAN", "comparator: GREATER_THAN\n    description: sure")
    changed = with_owner(state(None, extra=1, text=described), "team-a")
    assert [a.address for a in h.plan(changed).actions] == ["model/greater-than"]  # the update, and no owner noise
    h.apply(changed)
    assert marker_of(h, "model", "greater-than")["owner"] == "team-a"  # written with the update
    assert "owner" not in marker_of(h, "model", "extra-writer-1")  # not updated: left as it was
    dropped = with_owner(state(None, text=described), "team-a")
    assert [a.address for a in h.plan(dropped).actions if a.op.value == "delete"] == ["model/extra-writer-1"]


def test_saved_plans_keep_the_owner(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    plan = h.plan(state("team-a"))
    back = plan_from_file_dict(json.loads(json.dumps(plan_to_file_dict(plan))))
    assert back.desired.owner == "team-a" and {m.owner for m in back.desired.models} == {"team-a"}
    assert back.actions == plan.actions
