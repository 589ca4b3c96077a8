"""CI recipes that hold (issue 21, item 6): every step of examples/ci is a script, and here the
scripts run for real -- in a temporary git repository holding the three-app project, against
`reconciler sandbox serve` on 127.0.0.1 (started and stopped here) and a fake forge on loopback
standing in for the GitHub and GitLab APIs (tests/ci_forge.py) -- so they cannot rot:

- a pull request's plan of only the apps it changes, its one comment (made, then updated);
- after a squash merge whose branch is deleted: the reviewed plan found from the merge commit,
  the matrix of apps with changes, each applied (exit 0), the project then planning empty; the
  same plan again is stale (exit 1); an input edited after the review (exit 1); a model that
  cannot train yet (exit 3, "applied, some parts deferred");
- apply before merge (Atlantis-style): the gate's refusals, apply, merge with the head, verify;
- GitLab: the reviewed plan from the merge commit, the generated child pipeline run job by job,
  the note, the gate and the merge;
- the YAML files call nothing but those scripts, with concurrency on applies only.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from ci_forge import Forge, running_forge

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "examples" / "ci" / "scripts"
GITHUB_YML = ROOT / "examples" / "ci" / "clarifai-reconciler.yml"
GITLAB_YML = ROOT / "examples" / "ci" / "gitlab-ci.yml"
THREE = Path(__file__).resolve().parent / "projects" / "three"
REPO = "/repos/acme/shelves"


# --- the YAML only wires scripts (fast) --------------------------------------------------------------


def _github_steps() -> Iterator[tuple[str, dict]]:
    doc = yaml.safe_load(GITHUB_YML.read_text())
    for name, job in doc["jobs"].items():
        for step in job["steps"]:
            yield name, step


def _script_call(line: str) -> Path:
    """The script a CI line runs: `examples/ci/scripts/NAME.sh [args]` (a redirect allowed)."""
    command = line.strip().split()[0]
    assert command.startswith("examples/ci/scripts/") and command.endswith(".sh"), f"not a script call: {line!r}"
    script = ROOT / command
    assert script.is_file() and os.access(script, os.X_OK), f"{command} is missing or not executable"
    return script


def test_the_github_workflow_runs_only_the_scripts():
    runs = [(job, step["run"]) for job, step in _github_steps() if "run" in step]
    assert len(runs) >= 15
    for _job, line in runs:
        assert "\n" not in line.strip(), f"a multi-line step hides logic the tests do not run: {line!r}"
        _script_call(line)
    for job, step in _github_steps():
        assert set(step) & {"run", "uses"}, (job, step)
        if "uses" in step:  # only GitHub's own checkout / python / artifact actions
            assert step["uses"].split("@")[0] in {
                "actions/checkout", "actions/setup-python", "actions/upload-artifact", "actions/download-artifact"}, step


def test_github_concurrency_is_on_applies_only_and_never_cancels_a_pending_apply():
    doc = yaml.safe_load(GITHUB_YML.read_text())
    assert "concurrency" not in doc  # no workflow-wide group: a plan never waits for an apply
    jobs = doc["jobs"]
    plan = jobs["plan"]["concurrency"]
    assert plan["cancel-in-progress"] is True and "pull_request.number" in plan["group"]
    for name in ("apply", "pr-apply"):
        c = jobs[name]["concurrency"]
        assert c["group"] == "clarifai-apply-${{ matrix.name }}-${{ matrix.environment }}"
        assert c["cancel-in-progress"] is False and c["queue"] == "max"  # a later push queues behind it
        assert jobs[name]["environment"] == "${{ matrix.environment }}"
    groups = {name: job.get("concurrency", {}).get("group", "") for name, job in jobs.items()}
    assert not any("apply" in g for n, g in groups.items() if n not in ("apply", "pr-apply"))
    # the reviewed plan comes from the merge commit, never from git objects of the pull request
    assert "git diff" not in GITHUB_YML.read_text()


def test_the_gitlab_pipeline_runs_only_the_scripts():
    doc = yaml.safe_load(GITLAB_YML.read_text())
    lines = list(doc["default"]["before_script"])
    for name, job in doc.items():
        if isinstance(job, dict) and ("script" in job or "trigger" in job):
            lines += job.get("script", []) + job.get("before_script", [])
    assert len(lines) >= 10
    for line in lines:
        _script_call(line.split(">")[0])
    assert doc["plan"]["interruptible"] is True and "resource_group" not in doc["plan"]
    for name in ("select", "apply-before-merge", "merge"):
        assert doc[name]["interruptible"] is False


# --- the scripts, for real ----------------------------------------------------------------------------

def git(repo: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com", "PATH": os.environ["PATH"], "HOME": str(repo)}
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture
def served(tmp_path) -> Iterator[str]:
    """`reconciler sandbox serve` on 127.0.0.1 (a free port), stopped at the end."""
    missing = [tool for tool in ("bash", "git", "curl", "python3") if shutil.which(tool) is None]
    if missing:  # what the recipes themselves need on a runner
        pytest.skip(f"the CI scripts need {', '.join(missing)}, not installed here")
    proc = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "sandbox", "serve", "--port", "0", "--db", str(tmp_path / "served.sqlite")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        url = ""
        deadline = time.monotonic() + 30
        while not url and time.monotonic() < deadline:
            line = proc.stdout.readline() if proc.stdout else ""
            if not line:
                break
            if "serving the Clarifai v2 API on " in line:
                url = line.split(" on ", 1)[1].strip()
        assert url.startswith("http://127.0.0.1:"), "the sandbox did not start"
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture
def forge() -> Iterator[Forge]:
    with running_forge() as f:
        yield f


class Repo:
    """The three-app project in a git repository, the scripts copied in as a user would."""

    def __init__(self, root: Path, served: str, forge: Forge) -> None:
        self.root = root
        shutil.copytree(THREE, root)
        shutil.copytree(SCRIPTS, root / "examples" / "ci" / "scripts")
        git(root, "init", "-q", "-b", "main")
        git(root, "add", "-A")
        git(root, "commit", "-qm", "three apps")
        self.outputs = root.parent / "github_output"
        self.env = {
            "PATH": os.environ["PATH"], "HOME": str(root.parent), "CI": "true",
            "RECONCILER": f"{sys.executable} -m reconciler",
            "CLARIFAI_API_BASE": served, "CLARIFAI_PAT": "sandbox-key",
            "GITHUB_API_URL": forge.url, "GITHUB_REPOSITORY": "acme/shelves", "GITHUB_TOKEN": "gh-token",
            "GITHUB_OUTPUT": str(self.outputs),
            "CI_API_V4_URL": forge.url + "/api/v4", "CI_PROJECT_ID": "5", "GITLAB_TOKEN": "gl-token",
        }

    def script(self, name: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([f"examples/ci/scripts/{name}", *args], cwd=self.root, capture_output=True, text=True,
                              env={**self.env, **env}, timeout=300)

    def reconciler(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "reconciler", *args], cwd=self.root, capture_output=True, text=True,
                              env=self.env, timeout=300)

    def edit(self, rel: str, old: str, new: str) -> None:
        path = self.root / rel
        text = path.read_text()
        assert old in text
        path.write_text(text.replace(old, new))

    def output(self, name: str) -> str:
        lines = self.outputs.read_text().splitlines() if self.outputs.exists() else []
        return [ln.split("=", 1)[1] for ln in lines if ln.startswith(name + "=")][-1]

    def zipped(self, folder: str, prefix: str = "") -> bytes:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            for f in sorted((self.root / folder).rglob("*")):
                if f.is_file():
                    z.write(f, prefix + str(f.relative_to(self.root / folder)))
        return buf.getvalue()

    def events(self, app: str) -> list[dict]:
        return [json.loads(line) for line in (self.root / f"events-{app}.jsonl").read_text().splitlines()]

    def squash_merge(self, branch: str) -> str:
        git(self.root, "checkout", "-q", "main")
        git(self.root, "merge", "-q", "--squash", branch)
        git(self.root, "commit", "-qm", f"{branch} (squashed)")
        git(self.root, "branch", "-q", "-D", branch)  # the pull request's branch is deleted
        for leftover in ("plans", "plan.md"):  # a fresh checkout has neither
            shutil.rmtree(self.root / leftover, ignore_errors=True) if leftover == "plans" else (self.root / leftover).unlink(missing_ok=True)
        return git(self.root, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path, served, forge) -> Repo:
    r = Repo(tmp_path / "repo", served, forge)
    done = r.reconciler("apply", "--auto-approve")  # the apps as they are on main, live
    assert done.returncode == 0, done.stderr
    return r


def a_pull_request(repo: Repo, forge: Forge) -> str:
    """A branch that tunes prod and changes the people app, planned as its pull request's job;
    its plan set is the artifact of plan run 99. Returns its head sha."""
    git(repo.root, "checkout", "-q", "-b", "tune")
    repo.edit("apps/shelf/prod.vars.yaml", "0.95", "0.97")
    repo.edit("apps/people/manifest.yaml", "People counting", "People counting, tuned")
    git(repo.root, "commit", "-qam", "tune prod and people")
    done = repo.script("plan.sh", BASE="main")
    assert done.returncode == 0, done.stderr
    index = json.loads((repo.root / "plans" / "index.json").read_text())
    assert [a["name"] for a in index["apps"]] == ["shelf-prod", "people"]  # only the apps it changes
    md = (repo.root / "plan.md").read_text()
    assert md.startswith("## Clarifai plan: 2 apps: 2 with changes.") and "shelf-dev" not in md
    head = git(repo.root, "rev-parse", "HEAD")
    forge.route("GET", f"{REPO}/actions/workflows/clarifai-reconciler.yml/runs", {"workflow_runs": [{"id": 99}]})
    forge.route("GET", f"{REPO}/actions/runs/99/artifacts",
                {"artifacts": [{"name": f"clarifai-plans-{head}", "archive_download_url": forge.url + "/dl/99.zip"}]})
    forge.route("GET", "/dl/99.zip", repo.zipped("plans"))
    return head


@pytest.mark.slow
def test_pull_request_plan_comment_then_merge_applies_the_reviewed_plan(repo, forge):
    head = a_pull_request(repo, forge)
    # the comment: made once, then updated in place
    forge.route("GET", f"{REPO}/issues/7/comments", [])
    forge.route("POST", f"{REPO}/issues/7/comments", {"id": 501}, status=201)
    assert repo.script("github-comment.sh", "plan.md", PR="7").returncode == 0
    (posted,) = forge.called("POST", f"{REPO}/issues/7/comments")
    assert posted.body["body"].startswith("<!-- clarifai-reconciler plan -->\n## Clarifai plan: 2 apps")
    assert posted.headers["Authorization"] == "Bearer gh-token"
    forge.route("GET", f"{REPO}/issues/7/comments", [{"id": 500, "body": "lgtm"}, {"id": 501, "body": posted.body["body"]}])
    forge.route("PATCH", f"{REPO}/issues/comments/501", {"id": 501})
    assert repo.script("github-comment.sh", "plan.md", PR="7").returncode == 0
    assert len(forge.called("PATCH", f"{REPO}/issues/comments/501")) == 1

    # squash merge, branch deleted: the reviewed plan is found from the merge commit alone
    merge = repo.squash_merge("tune")
    forge.route("GET", f"{REPO}/commits/{merge}/pulls", [{"number": 7, "merged_at": "2026-05-02T10:00:00Z", "head": {"sha": head}}])
    done = repo.script("github-reviewed-plan.sh", GITHUB_SHA=merge)
    assert done.returncode == 0, done.stderr
    assert repo.output("pr") == "7" and repo.output("head_sha") == head
    (runs,) = forge.called("GET", f"{REPO}/actions/workflows/clarifai-reconciler.yml/runs")
    assert f"head_sha={head}" in runs.query and "event=pull_request" in runs.query and "status=success" in runs.query

    done = repo.script("select.sh")
    assert done.returncode == 0, done.stderr
    matrix = json.loads(done.stdout)
    assert matrix == [{"name": "shelf-prod", "environment": "prod"}, {"name": "people", "environment": "people"}]
    assert json.loads(repo.output("matrix")) == matrix and repo.output("any") == "true"

    for app in ("shelf-prod", "people"):
        done = repo.script("apply.sh", app)
        assert done.returncode == 0, done.stderr
        assert repo.events(app)[-1]["result"] == "applied"
        assert f"apply {app}: applied (exit 0)" in done.stderr
    assert repo.reconciler("plan", "--detailed-exitcode").returncode == 0  # main is live now

    # the same reviewed plan again: the app changed since (it was applied): stale, exit 1
    done = repo.script("apply.sh", "shelf-prod")
    assert done.returncode == 1
    assert repo.events("shelf-prod")[-1]["result"] == "stale_plan"
    assert "re-run the plan" in done.stderr

    # nightly drift: clean, then someone edits the app by hand
    assert repo.script("drift.sh").returncode == 0
    other = repo.root.parent / "by-hand.yaml"
    other.write_text((repo.root / "apps/people/manifest.yaml").read_text().replace("tuned", "by hand"))
    assert repo.reconciler("apply", str(other), "--auto-approve", "--var", "team=faces").returncode == 0
    assert repo.script("drift.sh").returncode == 2


@pytest.mark.slow
def test_a_merge_with_no_reviewed_plan_or_an_edited_input_applies_nothing(repo, forge):
    head = a_pull_request(repo, forge)
    merge = repo.squash_merge("tune")
    # a commit that merged no pull request: no reviewed plan, one line, exit 1
    forge.route("GET", f"{REPO}/commits/{merge}/pulls", [])
    done = repo.script("github-reviewed-plan.sh", GITHUB_SHA=merge)
    assert done.returncode == 1 and "merged no pull request" in done.stderr
    forge.route("GET", f"{REPO}/commits/{merge}/pulls", [{"number": 7, "merged_at": "2026-05-02T10:00:00Z", "head": {"sha": head}}])
    assert repo.script("github-reviewed-plan.sh", GITHUB_SHA=merge).returncode == 0
    # main moved on after the review (a later commit edited an input): refused, nothing written
    repo.edit("apps/shelf/prod.vars.yaml", "0.97", "0.99")
    git(repo.root, "commit", "-qam", "edit after review")
    done = repo.script("apply.sh", "shelf-prod")
    assert done.returncode == 1
    assert "apps/shelf/prod.vars.yaml changed since the plan; make a new plan" in done.stderr
    assert repo.events("shelf-prod")[-1]["result"] == "stale_plan"
    plan = repo.reconciler("plan", "--app", "shelf-prod", "--json")
    assert json.loads(plan.stdout)["apps"][0]["plan"]["summary"]["new_version"] == 1  # still as before


@pytest.mark.slow
def test_applied_with_training_deferred_is_exit_3(repo, forge):
    git(repo.root, "checkout", "-q", "-b", "classifier")
    repo.edit("apps/people/manifest.yaml", "models:\n", (
        "models:\n"
        "  - id: person-classifier\n"
        "    type: embedding-classifier\n"
        "    concepts: [person]\n"
        "    base_embed_model: {id: general-image-embedding, user_id: clarifai, app_id: main, "
        "version: bb186755eda04f9cbb6fe32e816be104}\n"))
    with (repo.root / "apps/people/manifest.yaml").open("a") as f:
        f.write("workflows:\n  - id: classify\n    nodes:\n"
                "      - {id: embed, model: {id: general-image-embedding, user_id: clarifai, app_id: main, "
                "version: bb186755eda04f9cbb6fe32e816be104}}\n"
                "      - {id: classify, model: person-classifier, inputs: [embed]}\n")
    git(repo.root, "commit", "-qam", "a classifier nobody labelled for")
    assert repo.script("plan.sh", BASE="main").returncode == 0
    done = repo.script("apply.sh", "people")
    assert done.returncode == 3, done.stderr  # applied; the workflow waits for training
    summary = repo.events("people")[-1]
    assert summary["result"] == "deferred" and summary["exit_code"] == 3
    assert summary["not_done"] == ["people: create workflow/classify"]
    assert "label its inputs, then apply again" in done.stderr


def _apply_before_merge_routes(forge: Forge, head: str, *, reviews: list, permission: str = "write", mergeable: str = "clean") -> None:
    forge.route("GET", f"{REPO}/collaborators/alice/permission", {"permission": permission})
    forge.route("GET", f"{REPO}/pulls/7", {"number": 7, "state": "open", "mergeable_state": mergeable, "head": {"sha": head}})
    forge.route("GET", f"{REPO}/pulls/7/reviews", reviews)
    forge.route("PUT", f"{REPO}/pulls/7/merge", {"merged": True, "sha": "m"})


@pytest.mark.slow
def test_apply_before_merge_gate_apply_merge_verify(repo, forge):
    main_before = git(repo.root, "rev-parse", "main")
    head = a_pull_request(repo, forge)
    approved = [{"user": {"login": "bob"}, "state": "APPROVED"}]
    cases = [
        ({"reviews": [{"user": {"login": "bob"}, "state": "APPROVED"}, {"user": {"login": "bob"}, "state": "CHANGES_REQUESTED"}]},
         "pull request #7 is changes requested"),
        ({"reviews": []}, "pull request #7 is not approved"),
        ({"reviews": approved, "permission": "read"}, "alice has read permission on acme/shelves"),
        ({"reviews": approved, "mergeable": "blocked"}, "mergeable_state: blocked"),
    ]
    for routes, message in cases:
        _apply_before_merge_routes(forge, head, **routes)
        done = repo.script("github-pr-gate.sh", PR="7", COMMENTER="alice")
        assert done.returncode == 1 and message in done.stderr, done.stderr
    _apply_before_merge_routes(forge, head, reviews=approved)
    shutil.rmtree(repo.root / "plans")  # the gate downloads the plans made for this exact head
    done = repo.script("github-pr-gate.sh", PR="7", COMMENTER="alice")
    assert done.returncode == 0, done.stderr
    assert repo.output("head_sha") == head
    apps = json.loads(repo.script("select.sh").stdout)
    for app in apps:
        assert repo.script("apply.sh", app["name"]).returncode == 0
    done = repo.script("github-merge.sh", PR="7", HEAD_SHA=head)
    assert done.returncode == 0, done.stderr
    (merge,) = forge.called("PUT", f"{REPO}/pulls/7/merge")
    assert merge.body == {"sha": head, "merge_method": "squash"}  # refused by GitHub if the head moved
    repo.squash_merge("tune")
    done = repo.script("verify-applied.sh", BASE=main_before)
    assert done.returncode == 0, done.stderr
    # a merge that was not applied first is caught
    repo.edit("apps/shelf/dev.yaml", "defaults", "defaults, edited")
    git(repo.root, "commit", "-qam", "merged without its apply")
    done = repo.script("verify-applied.sh", BASE=main_before)
    assert done.returncode == 1 and "main differs from the live apps" in done.stderr


@pytest.mark.slow
def test_gitlab_reviewed_plan_child_pipeline_note_gate_and_merge(repo, forge):
    a_pull_request(repo, forge)
    api = "/api/v4/projects/5"
    forge.route("GET", f"{api}/merge_requests/3/notes", [])
    forge.route("POST", f"{api}/merge_requests/3/notes", {"id": 9}, status=201)
    assert repo.script("gitlab-comment.sh", "plan.md", CI_MERGE_REQUEST_IID="3").returncode == 0
    (note,) = forge.called("POST", f"{api}/merge_requests/3/notes")
    assert note.body["body"].startswith("<!-- clarifai-reconciler plan -->") and note.headers["PRIVATE-TOKEN"] == "gl-token"
    artifact = repo.zipped("plans", prefix="plans/")
    sha = git(repo.root, "rev-parse", "HEAD")
    # apply before merge: the gate, then the merge with this head
    forge.route("GET", f"{api}/merge_requests/3/approvals", {"approved": False})
    forge.route("GET", f"{api}/merge_requests/3", {"iid": 3, "sha": sha, "detailed_merge_status": "mergeable"})
    done = repo.script("gitlab-mr-gate.sh", CI_MERGE_REQUEST_IID="3", CI_COMMIT_SHA=sha)
    assert done.returncode == 1 and "is not approved" in done.stderr
    forge.route("GET", f"{api}/merge_requests/3/approvals", {"approved": True})
    assert repo.script("gitlab-mr-gate.sh", CI_MERGE_REQUEST_IID="3", CI_COMMIT_SHA=sha).returncode == 0
    done = repo.script("gitlab-mr-gate.sh", CI_MERGE_REQUEST_IID="3", CI_COMMIT_SHA="0" * 40)
    assert done.returncode == 1 and "re-run the plan" in done.stderr
    forge.route("PUT", f"{api}/merge_requests/3/merge", {"state": "merged"})
    assert repo.script("gitlab-merge.sh", CI_MERGE_REQUEST_IID="3", CI_COMMIT_SHA=sha).returncode == 0
    (merged,) = forge.called("PUT", f"{api}/merge_requests/3/merge")
    assert f"sha={sha}" in merged.query and "squash=true" in merged.query

    # after the (squash) merge: the merge request from the commit, its pipeline, its plan job
    merge = repo.squash_merge("tune")
    forge.route("GET", f"{api}/repository/commits/{merge}/merge_requests", [{"iid": 3, "state": "merged", "sha": sha}])
    forge.route("GET", f"{api}/merge_requests/3/pipelines", [{"id": 41, "status": "success", "sha": sha}])
    forge.route("GET", f"{api}/pipelines/41/jobs", [{"id": 76, "name": "validate"}, {"id": 77, "name": "plan"}])
    forge.route("GET", f"{api}/jobs/77/artifacts", artifact)
    done = repo.script("gitlab-reviewed-plan.sh", CI_COMMIT_SHA=merge)
    assert done.returncode == 0, done.stderr
    assert json.loads((repo.root / "plans" / "index.json").read_text())["apps"][0]["name"] == "shelf-prod"
    done = repo.script("gitlab-child-pipeline.sh", CI_PIPELINE_ID="1234")
    assert done.returncode == 0, done.stderr
    child = yaml.safe_load(done.stdout)
    jobs = {k: v for k, v in child.items() if k.startswith("apply:")}
    assert sorted(jobs) == ["apply:people", "apply:shelf-prod"]
    prod = jobs["apply:shelf-prod"]
    assert prod["resource_group"] == "clarifai-shelf-prod-prod" and prod["interruptible"] is False
    assert prod["environment"] == {"name": "prod"} and prod["needs"] == [{"pipeline": "1234", "job": "select"}]
    for job in jobs.values():  # run each generated job's script line as its runner would
        (line,) = job["script"]
        _script_call(line)
        done = subprocess.run(line.split(), cwd=repo.root, capture_output=True, text=True, env=repo.env, timeout=300)
        assert done.returncode == 0, done.stderr
    assert repo.reconciler("plan", "--detailed-exitcode").returncode == 0
