"""Writes the INPUTS of the golden plan cases (desired.yaml, live.json, targets.txt) from the two
examples. Run by hand when a scenario is added: `python tests/cases/make_inputs.py`. The expected
outputs are then made with `UPDATE_GOLDEN=1 pytest tests/test_plan_golden.py` and reviewed by eye.

Each live.json is what the live reader would return for the app in that scenario: the example
applied (one version per model, `<model>-v1`, nodes pinned to them), then changed out of band.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE.parent))

from plan_fixtures import applied, model, vid, with_model, with_workflow  # noqa: E402

from reconciler.core.state import (  # noqa: E402
    LABELER_SCOPES,
    Collaborator,
    Concept,
    ConceptRef,
    ConceptRelation,
    Dataset,
    DatasetVersion,
    Kind,
    ModelRef,
    ModelVersion,
    Node,
    State,
    Task,
    Workflow,
)
from reconciler.manifest.load import load  # noqa: E402
from reconciler.planning.serialize import state_to_dict  # noqa: E402

#: the auto-annotation example as it was before it gained its review side (issue 22): the cases
#: are about the walkthrough's resources; `review-task` adds the review side to it
AA = HERE / "walkthrough.yaml"
PS = ROOT / "examples" / "people-synonyms" / "manifest.yaml"


def base(path: Path) -> State:
    # the examples leave app.user_id out; the live read knows the owner
    return applied(dataclasses.replace(load(path), user_id="me"))


def text(path: Path, *edits: tuple[str, str]) -> str:
    t = path.read_text()
    for old, new in edits:
        assert old in t, old
        t = t.replace(old, new, 1)
    return t


def repin(state: State, wf: str, node: str, version: str) -> State:
    w = state.workflow(wf)
    return with_workflow(state, wf, nodes=tuple(
        dataclasses.replace(n, model=dataclasses.replace(n.model, version=version)) if n.id == node else n
        for n in w.nodes))


def add_version(state: State, mid: str, n: int, **thresholds: float) -> tuple[State, str]:
    """Give model `mid` a newer version (`<mid>-v<n>`) whose thresholds differ."""
    m = state.model(mid)
    cfg = {**m.config, "thresholds": {**m.config["thresholds"], **thresholds}}
    v = ModelVersion(vid(mid, n), cfg, created_at=f"2024-02-0{n}T00:00:00Z")
    return with_model(state, mid, config=cfg, version_id=v.id, versions=(v, *m.versions)), v.id


GT_WALKER = ("      walker: 0.9\n      runner: 0.9\n      bike_rider: 0.85\n      rollerblader: 0.8\n"
             "      stroller: 0.85\n\n  # ... and")


def case_drift() -> State:
    s = base(AA)
    s, _ = add_version(s, "less-than", 2, walker=0.5)  # someone made a version and pinned it
    s = repin(s, "auto-annotate", "less-than", vid("less-than", 2))
    s = dataclasses.replace(s, app=dataclasses.replace(s.app, default_workflow="something-else"),
                            concepts=tuple(dataclasses.replace(c, name="Walker") if c.id == "walker" else c
                                           for c in s.concepts))
    w = s.workflow("auto-annotate")
    return with_workflow(s, "auto-annotate", nodes=tuple(n for n in w.nodes if n.id != "write-pending"))


def case_threshold_revert() -> State:
    s, v2 = add_version(base(AA), "greater-than", 2, walker=0.85)
    return repin(s, "auto-annotate", "greater-than", v2)


def extra_workflow(protect: bool) -> Callable[[], State]:
    def make() -> State:
        s = base(AA)
        review = Workflow("review-only", description="confident predictions only", protect=protect, nodes=(
            Node("greater-than", ModelRef("greater-than", version=vid("greater-than"))),
            Node("old", ModelRef("old-thresholder", version=vid("old-thresholder")), ("greater-than",))))
        old = dataclasses.replace(model("old-thresholder", "concept-thresholder", thresholds={"walker": 0.5},
                                        protect=protect), version_id=vid("old-thresholder"))
        return dataclasses.replace(s, workflows=(*s.workflows, review), models=(*s.models, old))
    return make


def case_unmanaged() -> State:
    s = base(AA)
    hand = dataclasses.replace(model("hand-made-filter", "concept-thresholder", thresholds={"dog": 0.3}),
                               managed=False, version_id="hm1")
    return dataclasses.replace(
        s, models=(*s.models, hand),
        workflows=(*s.workflows, Workflow("portal-workflow", managed=False)),
        concepts=(*s.concepts, *(Concept(f"legacy-{i}", f"legacy {i}") for i in range(8))),
        relations=(ConceptRelation("legacy-0", "synonym", ConceptRef("ai_l8TKp2h5", "clarifai", "main"),
                                   server_id="rel-1"),))


def case_adopt() -> State:
    s = applied(dataclasses.replace(load(AA), user_id="me"), managed=False)
    # built by hand: unmarked (so no metadata of ours), one description differs, and the
    # greater-than thresholder was made with another walker threshold
    s = with_model(s, "write-success-as-me", description="made in the portal")
    gt = s.model("greater-than")
    cfg = {**gt.config, "thresholds": {**gt.config["thresholds"], "walker": 0.8}}
    return with_model(s, "greater-than", config=cfg, versions=(dataclasses.replace(gt.versions[0], config=cfg),))


def case_relations() -> State:
    s = base(PS)
    stale = ConceptRelation("man", "hyponym", ConceptRef("people"), server_id="rel-9")
    other = ConceptRelation("woman", "synonym", ConceptRef("ai_x6hPmrNb", "clarifai", "main"), server_id="rel-10")
    return dataclasses.replace(s, relations=(*s.relations[1:], stale, other))


def case_type_change() -> State:
    return with_model(base(AA), "less-than", type="annotation-writer", config={"annotation_status": "PENDING"})


NEW_NODE = text(AA, ("workflows:\n", """  - id: write-review
    type: annotation-writer
    description: Everything below the threshold also goes to a review task
    annotation_status: AWAITING_REVIEW
    task_id: review-task

workflows:
"""), ("      - id: write-pending\n        model: write-pending-as-me\n        inputs: [less-than]\n",
       "      - id: write-pending\n        model: write-pending-as-me\n        inputs: [less-than]\n"
       "      - id: write-review\n        model: write-review\n        inputs: [less-than]\n"
       "        suppress_output: true\n"))

REVIEW = text(AA, ("    annotation_status: PENDING\n", "    annotation_status: PENDING\n    task: review-park\n")) + """
collaborators:
  - id: alice
  - id: carol

datasets:
  - id: park-eval
    description: Randomly chosen park photos, labelled for evaluation
    version:
      description: audit round 2

tasks:
  - id: review-park
    name: Review park activity
    concepts: [walker, runner, bike_rider, rollerblader, stroller]
    workers: [alice]
    review: {strategy: MANUAL, reviewers: [carol, alice], sample_percentage: 100}
"""


def case_review_task() -> State:
    """The review side applied a while ago: carol was not a collaborator yet, the task had alice
    alone as reviewer, and the dataset's newest version is of the first audit round."""
    live = base(AA)
    live = with_model(live, "write-pending-as-me", config={**live.model("write-pending-as-me").config, "task_id": "t-park-1"},
                      versions=(dataclasses.replace(live.model("write-pending-as-me").versions[0],
                                                    config={**live.model("write-pending-as-me").config, "task_id": "t-park-1"}),))
    task = Task(
        id="review-park", name="Review park activity", concepts=("walker", "runner", "bike_rider", "rollerblader", "stroller"),
        workers=("alice",), review_strategy="MANUAL", reviewers=("alice",), review_params={"sample_percentage": 100.0},
        server_id="t-park-1",
    )
    v1 = DatasetVersion("ds-v1", {"description": "audit round 1"}, created_at="2024-01-01T00:00:00Z", status_code=64015)
    dataset = Dataset(id="park-eval", description="Randomly chosen park photos, labelled for evaluation",
                      version=v1.spec, versions=(v1,))
    return dataclasses.replace(
        live, collaborators=(Collaborator("alice", LABELER_SCOPES, server_id="c-alice"),), datasets=(dataset,), tasks=(task,),
        sections=frozenset({Kind.COLLABORATOR, Kind.DATASET, Kind.TASK}),
    )


CASES: dict[str, tuple[str, Callable[[], State | None], list[str]]] = {
    "review-task": (REVIEW, case_review_task, []),
    # name: (desired.yaml text, live state, targets)
    "create-app": (AA.read_text(), lambda: None, []),
    "no-changes": (AA.read_text(), lambda: base(AA), []),
    "threshold-change": (text(AA, (GT_WALKER, GT_WALKER.replace("walker: 0.9", "walker: 0.85"))), lambda: base(AA), []),
    "threshold-revert": (AA.read_text(), case_threshold_revert, []),
    "drift": (AA.read_text(), case_drift, []),
    "workflow-removed": (AA.read_text(), extra_workflow(protect=False), []),
    "protected-removed": (AA.read_text(), extra_workflow(protect=True), []),
    "unmanaged-left-alone": (AA.read_text(), case_unmanaged, []),
    "adopt": (AA.read_text(), case_adopt, []),
    "relations": (PS.read_text(), case_relations, []),
    "protect-added": (text(AA, ("    comparator: GREATER_THAN\n", "    comparator: GREATER_THAN\n    protect: true\n"),
                           ("  - id: auto-annotate\n", "  - id: auto-annotate\n    protect: true\n")),
                      lambda: base(AA), []),
    "new-node": (NEW_NODE, lambda: base(AA), []),
    "target-model": (text(AA, (GT_WALKER, GT_WALKER.replace("walker: 0.9", "walker: 0.85")),
                          ("  - id: stroller\n", "  - id: skater\n  - id: stroller\n")),
                     lambda: base(AA), ["model/greater-than"]),
    "model-type-change": (AA.read_text(), case_type_change, []),
}


def main() -> None:
    for name, (desired, live, targets) in CASES.items():
        d = HERE / name
        d.mkdir(exist_ok=True)
        (d / "desired.yaml").write_text(desired.replace("../../schemas/", "../../../schemas/"))
        state = live()
        (d / "live.json").write_text(json.dumps(state_to_dict(state) if state else None, indent=1) + "\n")
        if targets:
            (d / "targets.txt").write_text("".join(t + "\n" for t in targets))
        print("wrote", d.relative_to(ROOT))


if __name__ == "__main__":
    main()
