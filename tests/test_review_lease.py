"""The review side (issue 22) beside the app lease, owners and saved plans of issue 21: the lease's
datasets are no manifest's datasets (never read, never declared), tasks and datasets are applied
under the lease, carry their owner, and round-trip through a saved plan (format 3, with its live
state); a dataset's dropped metadata key goes by an overwrite (PatchDatasets' "remove" only
removes the image)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from e2e import Harness

from reconciler.api.live import fingerprint, read_live
from reconciler.apply.lease import LEASE_DATASET, STEAL_PREFIX, Lease, LeaseOptions
from reconciler.apply.locked import apply_app
from reconciler.cli import main
from reconciler.core.errors import ManifestError
from reconciler.core.state import MARKER_KEY
from reconciler.manifest.load import load_text
from reconciler.planning.drift import check_drift, report_to_dict
from reconciler.planning.export import export_manifest
from reconciler.planning.render import plan_to_dict
from reconciler.sandbox.app import DEFAULT_USER

APP = "park"
DATASETS = f"/v2/users/{DEFAULT_USER}/apps/{APP}/datasets"

MANIFEST = """
app:
  id: park
concepts:
  - id: walker
collaborators:
  - id: alice
datasets:
  - id: park-eval
    description: audit sample
    metadata: {team: vision, round: 1}
    version: {description: round 1}
tasks:
  - id: review-park
    name: Review park activity
    concepts: [walker]
    input_source: {type: DATASET, dataset: park-eval}
    workers: [alice]
"""


def ops(plan) -> list[tuple[str, str]]:
    return [(a.op.value, a.address) for a in plan.actions]


def raw_dataset(h: Harness, dataset_id: str) -> dict:
    return h.client.get(f"{DATASETS}/{dataset_id}")["dataset"]


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


# --- the lease's datasets are not the manifest's ---------------------------------------------------


def test_the_lease_datasets_are_not_read_beside_managed_datasets(h: Harness) -> None:
    desired = Harness.desired("m.yaml", MANIFEST)
    apply_app(h.client, desired, poll_s=0.01)

    def views() -> tuple[str, ...]:
        live = read_live(h.client, APP, user_id=DEFAULT_USER, sections=None)  # every kind, as export reads
        assert live is not None
        return (
            json.dumps(plan_to_dict(h.plan(desired))),
            json.dumps(export_manifest(live)),
            json.dumps(report_to_dict(check_drift(h.client, desired))),
            json.dumps(sorted(d.id for d in live.datasets)),
            fingerprint(live),
        )

    before = views()
    holder = Lease(h.make_client(), APP, DEFAULT_USER, options=LeaseOptions(holder="alice"), unlock_hint="unlock")
    holder.acquire()
    h.client.post(DATASETS, {"datasets": [{"id": STEAL_PREFIX + "feedfeedfeed", "metadata": {"x": 1}}]})
    ids = {d["id"] for d in h.client.list_all(DATASETS, "datasets")}
    assert {LEASE_DATASET, STEAL_PREFIX + "feedfeedfeed", "park-eval"} <= ids  # the app does hold them
    during = views()
    holder.release()
    assert during == before
    assert json.loads(during[3]) == ["park-eval"]
    plan = h.plan(desired)
    assert plan.empty and not any("reconciler-" in n for n in plan.notes)


@pytest.mark.parametrize(
    "edit,where",
    [
        (("id: park-eval\n", f"id: {LEASE_DATASET}\n"), "m.yaml:9:9"),
        (("id: park-eval\n", f"id: {STEAL_PREFIX}0123abcd\n"), "m.yaml:9:9"),
        (("dataset: park-eval}", f"dataset: {LEASE_DATASET}}}"), "m.yaml:17:44"),
    ],
)
def test_a_manifest_cannot_declare_a_lease_dataset(edit, where) -> None:
    with pytest.raises(ManifestError) as err:
        load_text(MANIFEST.replace(*edit), "m.yaml")
    lines = str(err.value).splitlines()
    mine = [line for line in lines if "reserved for the app lease" in line]
    assert len(mine) == 1 and mine[0].startswith(f"{where}: dataset id 'reconciler-"), lines


def test_validate_refuses_the_lease_id_in_one_line(tmp_path: Path, capsys) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(MANIFEST.replace("id: park-eval\n", f"id: {LEASE_DATASET}\n").replace("dataset: park-eval", "dataset: x"))
    assert main(["validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert re.search(rf"{re.escape(str(path))}:9:9: dataset id '{LEASE_DATASET}' is reserved for the app lease", err)
    assert "Traceback" not in err


# --- applied under the lease -------------------------------------------------------------------


def test_apply_app_makes_the_review_side_under_the_lease_and_converges(h: Harness) -> None:
    h.client.post(f"/v2/users/{DEFAULT_USER}/apps", {"apps": [{"id": APP}]})
    desired = Harness.desired("m.yaml", MANIFEST)
    h.clear_log()
    out = apply_app(h.client, desired, poll_s=0.01)
    assert out.result is not None
    writes = [(m, p) for m, p, _ in h.writes()]
    assert writes[0] == ("POST", DATASETS) and writes[-1] == ("DELETE", DATASETS)  # the lease, around every write
    assert len(writes) == out.result.writes + 2
    assert {d["id"] for d in h.client.list_all(DATASETS, "datasets")} == {"park-eval"}  # the lease is gone
    [task] = h.client.list_all(f"/v2/users/{DEFAULT_USER}/apps/{APP}/tasks", "tasks")
    assert task["input_source"]["id"] == "park-eval"
    assert h.plan(desired).empty


# --- owners --------------------------------------------------------------------------------------


def test_another_owners_dataset_and_task_are_not_deleted_and_are_adopted_when_named(h: Harness) -> None:
    ours = Harness.desired("a.yaml", "owner: team-a\n" + MANIFEST)
    apply_app(h.client, ours, poll_s=0.01)
    marker = raw_dataset(h, "park-eval")["metadata"][MARKER_KEY]
    assert marker["owner"] == "team-a"
    others = Harness.desired("b.yaml", "owner: team-b\napp:\n  id: park\ndatasets: []\ntasks: []\n")
    plan = h.plan(others)
    assert not [a for a in plan.actions if a.op.value == "delete"]
    assert "dataset/park-eval is managed by team-a, not by team-b: not deleted" in plan.notes
    assert "task/review-park is managed by team-a, not by team-b: not deleted" in plan.notes
    taking = Harness.desired("b.yaml", "owner: team-b\n" + MANIFEST)
    plan = h.plan(taking)
    assert set(ops(plan)) == {("adopt", "dataset/park-eval"), ("update", "task/review-park")}
    for a in plan.actions:
        assert any(c.path == "owner" and (c.before, c.after) == ("team-a", "team-b") for c in a.changes)
    apply_app(h.client, taking, poll_s=0.01)
    assert raw_dataset(h, "park-eval")["metadata"][MARKER_KEY]["owner"] == "team-b"
    [task] = h.client.list_all(f"/v2/users/{DEFAULT_USER}/apps/{APP}/tasks", "tasks")
    assert task["metadata"][MARKER_KEY]["owner"] == "team-b"
    assert h.plan(taking).empty


# --- a dropped metadata key ---------------------------------------------------------------------


@pytest.mark.parametrize("quirks", [None, "patch-overwrite-replaces"])
@pytest.mark.parametrize(
    "before,after,kept",
    [
        ("{team: vision, round: 1}", "{team: vision}", {"team": "vision"}),  # a key dropped
        ("{team: vision, cfg: {a: 1, b: [1, 2]}}", "{team: vision, cfg: {a: 1}}", {"team": "vision", "cfg": {"a": 1}}),
    ],
)
def test_dropped_dataset_metadata_is_removed_and_the_users_own_is_kept(tmp_path: Path, quirks, before, after, kept) -> None:
    h = Harness(tmp_path, quirks=quirks)
    start = MANIFEST.replace("{team: vision, round: 1}", before)
    apply_app(h.client, Harness.desired("m.yaml", start), poll_s=0.01)
    h.client.patch(DATASETS, {"action": "merge", "datasets": [{"id": "park-eval", "notes": "by hand", "metadata": {"mine": 7}}]})
    dropped = Harness.desired("m.yaml", start.replace(before, after))
    plan = h.plan(dropped)
    assert ops(plan) == [("update", "dataset/park-eval")]
    apply_app(h.client, dropped, poll_s=0.01)
    raw = raw_dataset(h, "park-eval")
    assert {k: v for k, v in raw["metadata"].items() if k != MARKER_KEY} == {**kept, "mine": 7}
    assert json.loads(raw["metadata"][MARKER_KEY]["keys"]) == sorted(kept)
    assert (raw["notes"], raw["description"]) == ("by hand", "audit sample")
    assert h.plan(dropped).empty


# --- a saved plan ----------------------------------------------------------------------------------


def test_a_saved_plan_with_a_task_and_a_dataset_shows_and_applies(tmp_path: Path, monkeypatch, capsys) -> None:
    for var in ("CLARIFAI_PAT", "CLARIFAI_API_BASE", "CLARIFAI_USER_ID", "CI"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("RECONCILER_SANDBOX_DB", str(tmp_path / "sandbox.sqlite"))
    monkeypatch.chdir(tmp_path)
    manifest = tmp_path / "m.yaml"
    manifest.write_text(MANIFEST)

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out, err = capsys.readouterr()
        assert "Traceback" not in out + err
        return code, out, err

    for round_ in (1, 2):  # the first plan creates the app; the second changes it (a live state saved)
        if round_ == 2:
            manifest.write_text(MANIFEST.replace("round 1", "round 2").replace("name: Review park activity", "name: Review"))
        assert run("plan", str(manifest), "--out", "p.json")[0] == 0
        saved = json.loads((tmp_path / "p.json").read_text())
        assert saved["format_version"] == 3
        assert {d["id"] for d in saved["desired"]["datasets"]} == {"park-eval"}
        assert [t["id"] for t in saved["desired"]["tasks"]] == ["review-park"]
        if round_ == 2:
            assert [d["id"] for d in saved["live"]["datasets"]] == ["park-eval"]
            assert [t["name"] for t in saved["live"]["tasks"]] == ["Review park activity"]
            assert {(a["op"], a["kind"]) for a in saved["actions"]} == {("new_version", "dataset"), ("update", "task")}
        code, out, _ = run("show", "p.json")
        assert code == 0 and "dataset/park-eval" in out and "task/review-park" in out
        code, out, err = run("apply", "p.json", "--auto-approve")
        assert code == 0, err
        assert run("plan", str(manifest), "--detailed-exitcode")[0] == 0
