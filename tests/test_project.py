"""Projects (issue 21, item 2): reconciler.yaml with many apps and environments.

The project of tests/projects/three (one base manifest with a dev and a prod overlay, one other
app) validates, plans, applies and selects by --app from a subfolder, with one Markdown comment;
plan sets (plan --out DIR, apply DIR, show DIR); --changed-since with squash merges; the project
file's errors at file:line:col; exit codes that combine. Through `cli.main`, on the embedded
sandbox (no credentials), in a temporary git repository."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from reconciler.api.client import Client
from reconciler.api.live import read_live
from reconciler.api.transport import sandbox_transport
from reconciler.cli import main
from reconciler.core.exitcodes import combine_exit_codes
from reconciler.core.state import Model
from reconciler.sandbox.app import DEFAULT_KEY, DEFAULT_USER, Sandbox

THREE = Path(__file__).resolve().parent / "projects" / "three"
NAMES = ["shelf-dev", "shelf-prod", "people"]


def git(repo: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com", "PATH": "/usr/bin:/bin", "HOME": str(repo)}
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path, monkeypatch) -> Path:
    """The three-app project in a fresh git repository; the embedded sandbox in tmp_path."""
    for var in ("CLARIFAI_PAT", "CLARIFAI_API_BASE", "CLARIFAI_USER_ID", "CI", "RECONCILER_PROJECT",
                "RECONCILER_REQUIRE_CREDENTIALS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("RECONCILER_SANDBOX_DB", str(tmp_path / "sandbox.sqlite"))
    root = tmp_path / "repo"
    shutil.copytree(THREE, root)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "three apps")
    monkeypatch.chdir(root)
    return root


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err and "internal error" not in err, err
    return code, out, err


def live(tmp_path: Path, app_id: str) -> tuple[set[str], dict[str, Model], dict]:
    """The live app as the tool reads it: (concept ids, {model id: Model}, app metadata)."""
    sb = Sandbox(str(tmp_path / "sandbox.sqlite"))
    try:
        client = Client("http://sandbox.local", DEFAULT_KEY, user_id=DEFAULT_USER, transport=sandbox_transport(sb), rate_limit=0)
        state = read_live(client, app_id, user_id=DEFAULT_USER)
    finally:
        sb.close()
    if state is None:
        return set(), {}, {}
    return {c.id for c in state.concepts}, {m.id: m for m in state.models}, dict(state.app.metadata)


# --- the three-app project, end to end ---------------------------------------------------------


def test_three_apps_validate_plan_apply_and_select_by_app_from_a_subfolder(repo, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(repo / "apps" / "shelf")  # found upward, as git finds .git
    code, out, _ = run(capsys, "validate")
    assert code == 0
    assert out.splitlines()[:3] == [
        "shelf-dev: valid (apps/shelf/manifest.yaml + apps/shelf/dev.yaml)",
        "shelf-prod: valid (apps/shelf/manifest.yaml + apps/shelf/prod.yaml)",
        "people: valid (apps/people/manifest.yaml)",
    ]
    assert out.splitlines()[-1] == "Project: 3 apps: 3 valid."

    code, out, _ = run(capsys, "plan", "--detailed-exitcode")
    assert code == 2
    headers = [ln for ln in out.splitlines() if ln.startswith("== ")]
    assert [h.split()[1] for h in headers] == NAMES  # one section per app, in project order
    assert "shelf-dev (sandbox/shelf-dev @ local sandbox at" in headers[0]
    assert out.splitlines()[-1] == "Project: 3 apps: 3 with changes."
    table = out.split("\n\n")[-1].splitlines()
    assert table[0].split() == ["app", "environment", "result", "+", "~", "-", "±", "notes"]
    assert table[1].split()[:4] == ["shelf-dev", "dev", "changes", "6"]

    code, out, err = run(capsys, "apply", "--auto-approve", "--app", "people", "--app", "shelf-dev")
    assert code == 0, err
    # the app is created first (its lease lives in it), then the plan's other actions are counted
    assert "[people] created app people" in err and "[people] [1/2]" in err and "[shelf-dev] Apply complete" in err
    assert [h.split()[1] for h in out.splitlines() if h.startswith("== ")] == ["shelf-dev", "people"]
    assert out.splitlines()[-1] == "Project: 2 apps: 2 applied."

    code, out, _ = run(capsys, "plan", "--detailed-exitcode")
    assert code == 2 and out.splitlines()[-1] == "Project: 3 apps: 1 with changes, 2 unchanged."
    assert run(capsys, "apply", "--auto-approve")[0] == 0
    code, out, _ = run(capsys, "plan", "--detailed-exitcode")
    assert code == 0 and out.splitlines()[-1] == "Project: 3 apps: 3 unchanged."

    # each app got its own overlay, var file and vars
    dev_concepts, dev_models, _ = live(tmp_path, "shelf-dev")
    prod_concepts, prod_models, _ = live(tmp_path, "shelf-prod")
    assert dev_concepts == {"cereal", "soap"} and prod_concepts == {"cereal", "soap", "detergent"}
    assert dev_models["confident"].description == "dev thresholds are the defaults"
    assert dev_models["confident"].config["thresholds"] == {"cereal": 0.8, "soap": 0.8}
    assert prod_models["confident"].config["thresholds"] == {"cereal": 0.95, "soap": 0.95}  # prod.vars.yaml
    assert live(tmp_path, "people")[2]["team"] == "faces"  # vars: {team: faces}


def test_one_markdown_comment_for_the_whole_project(repo, capsys):
    code, md, _ = run(capsys, "plan", "--markdown")
    assert code == 0
    assert md.startswith("## Clarifai plan: 3 apps: 3 with changes.")
    assert md.count("<details open><summary><b>") == 3  # open: every app has changes
    for name in NAMES:
        assert f"| `{name}` |" in md and f"### Plan for Clarifai app `{name}`" in md
    # within a small budget every app is still named, and the comment stays under it
    code, small, _ = run(capsys, "plan", "--markdown", "--max-chars", "1500")
    assert code == 0 and len(small) <= 1500
    assert all(f"<b>{name}</b>" in small for name in NAMES)
    assert "plans/shelf-prod.plan.json" in small  # where the full plan is shown
    # applied apps fold away: closed, and the table says they are unchanged
    assert run(capsys, "apply", "--auto-approve", "--app", "people")[0] == 0
    _, md, _ = run(capsys, "plan", "--markdown")
    assert "<details><summary><b>people</b>: No changes." in md
    assert "| `people` | people | no changes | 0 | 0 | 0 | 0 |" in md


def test_json_is_one_document_listing_the_apps_plans(repo, capsys):
    (repo / "apps" / "people" / "manifest.yaml").write_text("variables: {team: {}}\napp: {id: people}\nmodels: 3\n")
    code, out, err = run(capsys, "plan", "--json")
    assert code == 1  # one app failed: the project fails, the others are still planned
    doc = json.loads(out)
    assert doc["format_version"] == 1 and doc["kind"] == "reconciler-project-plan"
    assert doc["project"] == "reconciler.yaml" and doc["exit_code"] == 1
    assert [a["name"] for a in doc["apps"]] == NAMES
    dev, _, people = doc["apps"]
    assert dev["result"] == "changes" and dev["environment"] == "dev" and dev["error"] is None
    assert dev["plan"]["desired"]["app"]["id"] == "shelf-dev"  # the full desired state, for policies
    assert people["result"] == "failed" and people["plan"] is None
    assert people["error"]["problems"][0]["file"].endswith("apps/people/manifest.yaml")
    assert doc["summary"] == {"apps": 3, "changes": 2, "failed": 1}
    assert "error: app people: apps/people/manifest.yaml:3:9: 'models' must be a list" in err


def test_a_failing_app_fails_alone_with_one_line(repo, capsys):
    (repo / "apps" / "shelf" / "prod.yaml").write_text(
        "overlay: true\napp: {id: shelf-prod}\nmodels:\n  - id: confident\n    thresholds: {cereal: 7}\n")
    code, out, err = run(capsys, "plan")
    assert code == 1
    assert "Project: 3 apps: 2 with changes, 1 failed." in out
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert lines == ["error: app shelf-prod: apps/shelf/prod.yaml:5:26: threshold 7 for concept 'cereal' is outside [0, 1]"]
    code, out, _ = run(capsys, "apply", "--auto-approve", "--app", "shelf-dev", "--app", "shelf-prod")
    assert code == 1 and "1 applied, 1 failed" in out


# --- plan sets: plan --out DIR, apply DIR, show DIR ----------------------------------------------


def test_plan_set_is_applied_as_reviewed(repo, capsys, tmp_path):
    code, _, err = run(capsys, "plan", "--out", "plans")
    assert code == 0 and "Saved 3 plan(s) and index.json to plans" in err
    index = json.loads((repo / "plans" / "index.json").read_text())
    assert index["kind"] == "reconciler-plan-set" and [a["name"] for a in index["apps"]] == NAMES
    assert set(index["apps"][1]["inputs"]) == {"apps/shelf/manifest.yaml", "apps/shelf/prod.yaml", "apps/shelf/prod.vars.yaml"}
    assert index["git"]["head"] == git(repo, "rev-parse", "HEAD")

    code, shown, _ = run(capsys, "show", "plans", "--app", "people")
    assert code == 0 and "Plan for app people" in shown and "shelf" not in shown.split("\n\n")[0]
    code, out, err = run(capsys, "apply", "plans", "--app", "shelf-prod")
    assert code == 0, err
    assert "Project: 1 app: 1 applied." in out
    assert live(tmp_path, "shelf-prod")[0] == {"cereal", "soap", "detergent"}
    # the same plan again: the live app changed since it was made
    code, out, err = run(capsys, "apply", "plans", "--app", "shelf-prod")
    assert code == 1 and "changed since the plan in" in err
    # an input edited after the plan: refused before anything is read or written
    (repo / "apps" / "shelf" / "dev.yaml").write_text((repo / "apps" / "shelf" / "dev.yaml").read_text() + "# edited\n")
    code, _, err = run(capsys, "apply", "plans", "--app", "shelf-dev")
    assert code == 1 and "error: app shelf-dev: apps/shelf/dev.yaml changed since the plan; make a new plan" in err
    assert live(tmp_path, "shelf-dev")[0] == set()
    # an edited plan file: its sha256 is not the index's
    plan_file = repo / "plans" / "people.plan.json"
    plan_file.write_text(plan_file.read_text().replace('"people counting"', '"People counting"') + " ")
    code, _, err = run(capsys, "apply", "plans", "--app", "people")
    assert code == 1 and "its sha256 differs" in err


def test_plan_set_age_and_selection(repo, capsys):
    assert run(capsys, "plan", "--out", "plans")[0] == 0
    index_file = repo / "plans" / "index.json"
    index = json.loads(index_file.read_text())
    index["created_at"] = "2020-01-01T00:00:00Z"
    index_file.write_text(json.dumps(index))
    code, _, err = run(capsys, "apply", "plans", "--max-plan-age", "72h")
    assert code == 1 and "more than --max-plan-age 3d; make a new plan" in err
    code, _, err = run(capsys, "apply", "plans", "--app", "nope")
    assert code == 1 and "--app nope: not in the plan set plans; it holds: shelf-dev, shelf-prod, people" in err
    code, _, err = run(capsys, "apply", "plans", "--max-plan-age", "soon")
    assert code == 1 and "--max-plan-age" in err
    index_file.write_text("{}")
    code, _, err = run(capsys, "apply", "plans")
    assert code == 1 and 'plans is not a usable plan set: index.json has no "kind": "reconciler-plan-set"' in err


def test_a_plan_set_whose_plan_wants_other_than_its_files_is_refused(repo, capsys, tmp_path):
    """The index vouches for the files, but the plan was made from something else."""
    import hashlib

    assert run(capsys, "plan", "--out", "plans")[0] == 0
    plan_file = repo / "plans" / "people.plan.json"
    doc = json.loads(plan_file.read_text())
    for res in [doc["desired"]["app"]] + [a["desired"] for a in doc["actions"] if a["kind"] == "app"]:
        res["metadata"] = {"team": "someone-else"}
    for a in doc["actions"]:
        a["changes"] = [c if c["path"] != "metadata.team" else {**c, "after": "someone-else"} for c in a["changes"]]
    text = json.dumps(doc, indent=1)
    plan_file.write_text(text)
    index_file = repo / "plans" / "index.json"
    index = json.loads(index_file.read_text())
    index["apps"][2]["sha256"] = hashlib.sha256(text.encode()).hexdigest()
    index_file.write_text(json.dumps(index))
    code, _, err = run(capsys, "apply", "plans", "--app", "people")
    assert code == 1 and "the plan of app people does not want what its files say now" in err
    assert not live(tmp_path, "people")[1]


def test_show_lists_the_project_for_a_ci_matrix(repo, capsys):
    code, out, _ = run(capsys, "show", "--json")
    assert code == 0
    rows = json.loads(out)
    assert [(r["name"], r["environment"], r["app_id"]) for r in rows] == [
        ("shelf-dev", "dev", "shelf-dev"), ("shelf-prod", "prod", "shelf-prod"), ("people", "people", "people")]
    assert rows[1]["var_files"] == ["apps/shelf/prod.vars.yaml"] and rows[0]["pat_env"] == "CLARIFAI_PAT"
    code, out, _ = run(capsys, "show")
    assert code == 0 and out.splitlines()[0].split()[:2] == ["shelf-dev", "[dev]"]


def test_drift_of_every_app(repo, capsys, tmp_path):
    assert run(capsys, "apply", "--auto-approve")[0] == 0
    code, out, _ = run(capsys, "drift")
    assert code == 0 and out.splitlines()[-1] == "Project: 3 apps: 3 clean."
    # someone changes the people app outside git
    other = tmp_path / "other.yaml"
    other.write_text((repo / "apps" / "people" / "manifest.yaml").read_text().replace("People counting", "Changed by hand"))
    assert run(capsys, "apply", other, "--auto-approve", "--var", "team=faces")[0] == 0
    code, out, _ = run(capsys, "drift", "--json")
    assert code == 2
    doc = json.loads(out)
    assert [(a["name"], a["result"]) for a in doc["apps"]] == [("shelf-dev", "clean"), ("shelf-prod", "clean"), ("people", "drift")]
    assert doc["apps"][2]["drift"]["drift"] is True


# --- selecting apps -------------------------------------------------------------------------------


def test_changed_since_selects_by_files_and_survives_squash_merges(repo, capsys):
    main_before = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "-b", "feature")
    (repo / "apps" / "shelf" / "dev.yaml").write_text((repo / "apps" / "shelf" / "dev.yaml").read_text() + "# tuned\n")
    git(repo, "commit", "-qam", "tune dev")
    code, out, _ = run(capsys, "show", "--changed-since", "main")
    assert code == 0 and [ln.split()[0] for ln in out.splitlines()[:-1]] == ["shelf-dev"]
    # squash-merge, then delete the branch: the PR's commits are gone; main's previous tip still works
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--squash", "feature")
    git(repo, "commit", "-qm", "squashed")
    git(repo, "branch", "-q", "-D", "feature")
    code, out, _ = run(capsys, "show", "--changed-since", main_before)
    assert [ln.split()[0] for ln in out.splitlines()[:-1]] == ["shelf-dev"]
    # uncommitted and untracked changes count; a shared base manifest selects both its apps
    (repo / "apps" / "shelf" / "manifest.yaml").write_text((repo / "apps" / "shelf" / "manifest.yaml").read_text() + "\n")
    code, out, _ = run(capsys, "show", "--changed-since", "HEAD")
    assert [ln.split()[0] for ln in out.splitlines()[:-1]] == ["shelf-dev", "shelf-prod"]
    # reconciler.yaml itself changed: every app
    (repo / "reconciler.yaml").write_text((repo / "reconciler.yaml").read_text() + "\n")
    code, out, _ = run(capsys, "show", "--changed-since", "HEAD")
    assert len(out.splitlines()) == 4
    # nothing changed: nothing to do, exit 0
    git(repo, "commit", "-qam", "more")
    code, out, _ = run(capsys, "plan", "--changed-since", "HEAD")
    assert code == 0 and out == "no app of reconciler.yaml changed since HEAD: nothing to do.\n"
    code, _, err = run(capsys, "plan", "--changed-since", "no-such-branch")
    assert code == 1 and err.startswith("error: --changed-since no-such-branch: git does not know this commit")


def test_unknown_app_and_project_flags_with_a_manifest(repo, capsys):
    code, _, err = run(capsys, "plan", "--app", "shelf", "--app", "people")
    assert code == 1
    assert err == "error: --app shelf: no such app in reconciler.yaml; its apps are: shelf-dev, shelf-prod, people\n"
    code, _, err = run(capsys, "plan", "apps/people/manifest.yaml", "--app", "people")
    assert code == 1 and "--app select apps of a project: give them without FILE or -f" in err
    code, _, err = run(capsys, "plan", "--var", "cut=0.1")
    assert code == 1 and "--var cannot be used on a whole project" in err


def test_a_manifest_argument_inside_a_project_is_single_manifest_mode(repo, capsys):
    code, out, _ = run(capsys, "plan", "apps/people/manifest.yaml", "--var", "team=x")
    assert code == 0 and out.startswith("Plan for app people (user sandbox):") and "== " not in out


# --- the project file -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("apps:\n  - name: a\n    manifest: m.yaml\n    overlay: [x.yaml]\n", "reconciler.yaml:4:5: unknown field 'overlay' (did you mean 'overlays'?)"),
        ("apps:\n  - name: Shelf\n    manifest: m.yaml\n", "reconciler.yaml:2:11: apps[0].name 'Shelf': lowercase letters"),
        ("apps:\n  - name: a\n    manifest: m.yaml\n  - name: a\n    manifest: m.yaml\n", "reconciler.yaml:4:11: app name 'a' is used twice (first at line 2)"),
        ("apps:\n  - name: a\n    manifest: nope.yaml\n", "reconciler.yaml:3:15: apps[0].manifest: no such file nope.yaml"),
        ("apps:\n  - name: a\n    manifest: m.yaml\n    var_files: [apps]\n", "reconciler.yaml:4:17: apps[0].var_files[0]: apps is not a regular file"),
        ("apps:\n  - name: a\n", "reconciler.yaml:2:5: missing required field 'manifest'"),
        ("apps: []\n", "reconciler.yaml:1:7: apps must list at least one app"),
        ("- a\n", "reconciler.yaml:1:1: a project file is a mapping with 'apps:'"),
        ("", "reconciler.yaml:1:1: a project file is a mapping with 'apps:'"),
        ("apps:\n  - name: a\n    manifest: m.yaml\n    vars: {2x: 1}\n", "reconciler.yaml:4:12: '2x' is not a variable name"),
        ("apps:\n  - name: a\n    manifest: m.yaml\n    pat_env: my-pat\n", "reconciler.yaml:4:14: pat_env 'my-pat' is not an environment variable name"),
        ("version: 2\napps:\n  - name: a\n    manifest: m.yaml\n", "reconciler.yaml:1:10: version must be 1, not 2"),
        ("apps:\n  - name: a\n    manifest: m.yaml\n  name: b\n", "reconciler.yaml:4:3: YAML syntax error"),
    ],
)
def test_project_file_problems_are_one_line_at_file_line_col(text, expected, repo, capsys, tmp_path):
    (repo / "reconciler.yaml").write_text(text)
    (repo / "m.yaml").write_text("app: {id: a}\n")
    for verb in (["validate"], ["plan"], ["apply", "--auto-approve"]):
        code, out, err = run(capsys, *verb)
        assert code == 1
        assert err.splitlines()[0].startswith(expected), err
        assert len(err.splitlines()) == 1, err
    assert not (tmp_path / "sandbox.sqlite").exists()  # no API call: the sandbox was never opened


def test_the_project_is_found_upward_and_not_past_the_repository(repo, capsys, tmp_path, monkeypatch):
    deep = repo / "apps" / "people"
    monkeypatch.chdir(deep)
    assert run(capsys, "show")[0] == 0
    # a folder that is its own repository does not see the project above it
    inner = repo / "vendored"
    inner.mkdir()
    git(inner, "init", "-q")
    monkeypatch.chdir(inner)
    code, _, err = run(capsys, "plan")
    assert code == 1 and "give a manifest: FILE" in err and "or run inside a project (reconciler.yaml)" in err
    # --project and RECONCILER_PROJECT name it outright
    code, out, _ = run(capsys, "show", "--project", str(repo))
    assert code == 0 and "shelf-dev" in out
    monkeypatch.setenv("RECONCILER_PROJECT", str(repo / "reconciler.yaml"))
    assert run(capsys, "show")[0] == 0
    monkeypatch.setenv("RECONCILER_PROJECT", str(repo / "nope.yaml"))
    code, _, err = run(capsys, "show")
    assert code == 1 and "RECONCILER_PROJECT names" in err


def test_the_embedded_sandbox_lives_next_to_the_project_file(repo, capsys, monkeypatch):
    monkeypatch.delenv("RECONCILER_SANDBOX_DB")
    if any((p / ".reconciler").is_dir() for p in repo.parents):
        pytest.skip("a .reconciler/ above the temporary folder would be found first")
    monkeypatch.chdir(repo / "apps" / "shelf")
    assert run(capsys, "apply", "--auto-approve", "--app", "people")[0] == 0
    assert (repo / ".reconciler" / "sandbox.sqlite").is_file()
    assert not (repo / "apps" / "shelf" / ".reconciler").exists()


def test_two_apps_declaring_the_same_model_on_one_live_app_are_refused(repo, capsys, tmp_path):
    text = (repo / "reconciler.yaml").read_text()
    (repo / "reconciler.yaml").write_text(text + "  - name: shelf-dev-copy\n    manifest: apps/shelf/manifest.yaml\n    overlays: [apps/shelf/dev.yaml]\n")
    code, out, err = run(capsys, "apply", "--auto-approve")
    assert code == 1
    assert ("error: app shelf-dev: model/confident on app shelf-dev is declared by both shelf-dev and shelf-dev-copy "
            "(and 2 more): two apps of the project would rewrite each other's resources") in err
    assert "Project: 4 apps: 2 applied, 2 failed." in out
    assert not live(tmp_path, "shelf-dev")[1]


# --- credentials and exit codes ---------------------------------------------------------------------


def test_apps_on_one_credential_share_a_client_and_its_rate_limit(repo, monkeypatch):
    """One client per (API base, PAT): the limiter and connections are shared; each app a copy."""
    import argparse

    from reconciler.commands.project import Connections, load_runs

    text = (repo / "reconciler.yaml").read_text().replace("    vars: {team: faces}", "    vars: {team: faces}\n    pat_env: PEOPLE_PAT")
    (repo / "reconciler.yaml").write_text(text)
    monkeypatch.setenv("CLARIFAI_PAT", "pat-one-0123456789abcdef")
    monkeypatch.setenv("PEOPLE_PAT", "pat-two-0123456789abcdef")
    monkeypatch.setenv("CLARIFAI_API_BASE", "http://127.0.0.1:9")  # never contacted: clients are only made
    args = argparse.Namespace(apps=[], changed_since=None, project=None, api_base=None, pat_file=None, user_id=None,
                              rate_limit=15.0, debug=False, timeout=30.0, require_credentials=False, var=[], var_file=[], target=[])
    _project, runs, conns = load_runs(args)
    assert isinstance(conns, Connections)
    clients = [conns.client(run) for run in runs]
    dev, prod, people = clients
    assert dev is not prod and dev.limiter is prod.limiter and dev._http is prod._http
    assert people.limiter is not dev.limiter
    assert "pat-one" not in repr(conns.key(runs[0].entry)) and conns.key(runs[0].entry) != conns.key(runs[2].entry)
    conns.close()


@pytest.mark.parametrize(("codes", "combined"), [
    ([], 0), ([0, 0], 0), ([0, 2], 2), ([2, 3, 0], 3), ([3, 1, 2], 1), ([1], 1)])
def test_exit_codes_combine(codes, combined):
    assert combine_exit_codes(codes) == combined


def test_validate_json_is_the_list_of_problems_for_the_project_file_too(repo, capsys):
    (repo / "reconciler.yaml").write_text("apps:\n  - name: a\n    manifest: nope.yaml\n")
    code, out, _ = run(capsys, "validate", "--json")
    assert code == 1
    (problem,) = json.loads(out)
    assert (problem["file"], problem["line"], problem["column"]) == ("reconciler.yaml", 3, 15)


def test_ctrl_c_starts_no_more_apps_and_waits_for_the_ones_in_flight():
    import os
    import signal
    import time

    from reconciler.project.load import AppEntry
    from reconciler.project.run import AppRun, run_lanes

    runs = [AppRun(AppEntry(f"app-{i}", Path(f"m{i}.yaml"))) for i in range(3)]
    finished = []

    def step(run):
        if run.name == "app-0":
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C, heard by the main thread waiting on the lanes
            time.sleep(0.3)
        finished.append(run.name)
        run.result = "applied"

    with pytest.raises(KeyboardInterrupt):
        run_lanes(runs, step, parallel=1, key_of=lambda r: (r.name,))
    assert finished == ["app-0"]  # the one in flight finished; none started after
    assert [r.result for r in runs] == ["applied", "failed", "failed"]
    assert runs[1].error == "not started: interrupted"
