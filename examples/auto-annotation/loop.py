"""The whole auto-annotation loop, offline, on a local sandbox: what docs/annotation-loop.md shows.

    python examples/auto-annotation/loop.py [WORKDIR]

1. A sandbox is served on 127.0.0.1 with the classifier's predictions recorded for 300 park
   photos (made up here, with a known truth) and a key for carol, the reviewer. Every reconciler
   command below talks to it as it would to api.clarifai.com (CLARIFAI_API_BASE, CLARIFAI_PAT).
2. `reconciler apply`: the app, its review task, carol and alice as collaborators, the workflow
   (after one labelled input per concept, which the classifier trains on).
3. The photos are added; the default workflow writes SUCCESS annotations for confident
   predictions, PENDING ones into the review task for unsure predictions and for a random tenth
   of the confident ones (the audit).
4. carol reviews through the task (PutTaskAssignments): she approves what is right, rejects what is
   wrong, and sets to 0 the concepts that are wrong in an annotation she otherwise approves.
5. `reconciler record` reads the predictions and the review outcomes back; `reconciler audit`
   reports the audited precision of the SUCCESS annotations; `reconciler tune --write` moves the
   thresholds to the lowest that certifies the target precision, in manifest.yaml itself.
6. `reconciler plan` shows the new thresholder versions; `reconciler apply` makes them; the next
   `reconciler plan` is empty.

Nothing leaves the machine. The script exits 0 when the loop closed (the last plan is empty).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CONCEPTS = ["walker", "runner", "bike_rider", "rollerblader", "stroller"]
PHOTOS = 300
OWNER, OWNER_KEY = "sandbox", "sandbox-key"
REVIEWER, REVIEWER_KEY = "carol", "carol-key"
TARGET = "0.9"


def made_up_photos(seed: int = 22) -> tuple[list[dict[str, Any]], dict[str, set[str]]]:
    """The classifier's predictions for each photo, and what is really on it: one activity per
    photo, scored above 0.55; now and then another activity scores between 0.5 and 0.7 too."""
    rng = random.Random(seed)
    lines, truth = [], {}
    for i in range(PHOTOS):
        iid = f"park-{i:03d}"
        true = rng.choice(CONCEPTS)
        scores = {c: round(rng.uniform(0.0, 0.35), 3) for c in CONCEPTS}
        scores[true] = round(rng.uniform(0.55, 1.0), 3)
        if rng.random() < 0.06:  # a mistake: another activity scores fairly high too
            scores[rng.choice([c for c in CONCEPTS if c != true])] = round(rng.uniform(0.5, 0.7), 3)
        lines.append({"input": iid, "model": "park-activity-classifier", "concepts": scores})
        truth[iid] = {true}
    return lines, truth


def reconciler(*argv: str) -> int:
    """One reconciler command, as typed in a shell (run in this process)."""
    from reconciler.cli import main

    print(f"\n$ reconciler {' '.join(argv)}", flush=True)
    return main(list(argv))


def review(client: Any, base: str, task_id: str, truth: dict[str, set[str]]) -> tuple[int, int, int]:
    """carol works through the review task until nothing waits for her: (approved, rejected, corrected)."""
    approved = rejected = corrected = 0
    while True:
        got = client.put(f"{base}/tasks/{task_id}/assignments", {"action": "REVIEW_START", "review_start_config": {}})
        batch = got.get("task_assignments") or []
        if not batch:
            return approved, rejected, corrected
        ids = [a["input"]["id"] for a in batch]
        listed = client.list_all(
            f"{base}/annotations", "annotations", {"task_id": task_id, "input_ids": ids, "list_all_annotations": "true"}
        )
        for assignment in batch:
            iid = assignment["input"]["id"]
            anns = [a for a in listed if a["input_id"] == iid]
            shown = {c["id"] for a in anns for c in (a.get("data") or {}).get("concepts") or []}
            right = shown & truth[iid]
            config = {"task_assignments": [{"id": assignment["id"]}]}
            if not right:
                client.put(f"{base}/tasks/{task_id}/assignments", {"action": "REVIEW_REJECT", "review_reject_config": config})
                rejected += 1
                continue
            wrong = shown - right
            if wrong:  # approve what is there, but say the wrong concepts are not
                patch = [
                    {
                        "id": a["id"],
                        "data": {"concepts": [{"id": c["id"], "value": 0.0} for c in a["data"]["concepts"] if c["id"] in wrong]},
                    }
                    for a in anns
                    if any(c["id"] in wrong for c in (a.get("data") or {}).get("concepts") or [])
                ]
                client.patch(f"{base}/annotations", {"action": "merge", "annotations": patch})
                corrected += 1
            client.put(f"{base}/tasks/{task_id}/assignments", {"action": "REVIEW_APPROVE", "review_approve_config": config})
            approved += 1


def main(workdir: str | None = None) -> int:
    from reconciler.api.client import Client
    from reconciler.sandbox.opening import open_sandbox
    from reconciler.sandbox.server import running_server

    work = Path(workdir or tempfile.mkdtemp(prefix="annotation-loop-")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    manifest = work / "manifest.yaml"
    shutil.copy(HERE / "manifest.yaml", manifest)
    lines, truth = made_up_photos()
    (work / "classifier-outputs.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    os.chdir(work)

    sandbox = open_sandbox(str(work / "sandbox.sqlite"), predictions=str(work / "classifier-outputs.jsonl"), training_delay_s=0)
    sandbox.add_key(REVIEWER_KEY, REVIEWER)
    with running_server(sandbox) as url:
        os.environ.update({"CLARIFAI_API_BASE": url, "CLARIFAI_PAT": OWNER_KEY, "CLARIFAI_USER_ID": OWNER})
        owner = Client(url, OWNER_KEY, user_id=OWNER, rate_limit=0)  # a local sandbox: no need to pace
        carol = Client(url, REVIEWER_KEY, user_id=OWNER, rate_limit=0)
        base = f"/v2/users/{OWNER}/apps/park-activity"

        # the classifier trains on labelled inputs: one per concept, before the first apply
        owner.post(f"/v2/users/{OWNER}/apps", {"apps": [{"id": "park-activity"}]})
        owner.post(
            f"{base}/inputs",
            {
                "inputs": [
                    {
                        "id": f"seed-{c}",
                        "data": {"image": {"url": f"https://samples.example/{c}.jpg"}, "concepts": [{"id": c, "value": 1}]},
                    }
                    for c in CONCEPTS
                ]
            },
        )
        if reconciler("apply", str(manifest), "--auto-approve") != 0:
            return 1

        print(f"\n# {PHOTOS} photos are added; the default workflow annotates each", flush=True)
        for i in range(0, PHOTOS, 100):
            owner.post(
                f"{base}/inputs",
                {
                    "inputs": [
                        {"id": x["input"], "data": {"image": {"url": f"https://samples.example/{x['input']}.jpg"}}}
                        for x in lines[i : i + 100]
                    ]
                },
            )
        [task] = [t for t in owner.list_all(f"{base}/tasks", "tasks") if t.get("name") == "Review park activity"]
        approved, rejected, corrected = review(carol, base, task["id"], truth)
        print(f"# carol reviewed the task: {approved} approved ({corrected} of them corrected), {rejected} rejected", flush=True)

        steps = [
            ("record", str(manifest), "--predictions", "recorded.jsonl", "--labels", "labels.jsonl"),
            ("audit", str(manifest), "--target-precision", TARGET),
            (
                "tune",
                str(manifest),
                "--predictions",
                "recorded.jsonl",
                "--labels",
                "labels.jsonl",
                "--target-precision",
                TARGET,
                "--absent",
                "unknown",
                "--write",
            ),
        ]
        for step in steps:
            if reconciler(*step) not in (0, 2):  # audit: 2 = below the target, still a report
                return 1
        if reconciler("plan", str(manifest), "--detailed-exitcode") != 2:
            print("expected the plan to show the tuned thresholds", file=sys.stderr)
            return 1
        if reconciler("apply", str(manifest), "--auto-approve") != 0:
            return 1
        if reconciler("plan", str(manifest), "--detailed-exitcode") != 0:
            print("the loop did not close: the last plan is not empty", file=sys.stderr)
            return 1
    sandbox.close()
    print(f"\nThe loop closed: tuned thresholds applied, nothing left to plan. Files in {work}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else None))
