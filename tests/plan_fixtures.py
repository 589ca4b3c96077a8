"""States for the diff/plan/render/serialize tests: the auto-annotation app (desired), and what the
live reader would return for it after an apply (`applied`). Also used to (re)build the inputs of
the golden cases under tests/cases/ (see tests/test_plan_golden.py)."""

from __future__ import annotations

import dataclasses
from typing import Any

from reconciler.core.modeltypes import canonical_config
from reconciler.core.state import App, Concept, ConceptRef, ConceptRelation, Model, ModelRef, ModelVersion, Node, State, Workflow

USER = "me"
EMBED = ModelRef("general-image-embedding", "clarifai", "main", "bb186755eda04f9cbb6fe32e816be104")
CONCEPTS = ("walker", "runner", "bike_rider", "rollerblader", "stroller")


def model(mid: str, mtype: str, **fields: Any) -> Model:
    meta = fields.pop("metadata", {})
    protect = fields.pop("protect", False)
    desc = fields.pop("description", "")
    return Model(mid, mtype, description=desc, metadata=meta, protect=protect,
                 config=canonical_config(mtype, fields))


def desired_state(**thresholds: float) -> State:
    """The auto-annotation manifest as the loader gives it. `thresholds` override greater-than's."""
    gt = {c: 0.95 for c in CONCEPTS} | thresholds
    return State(
        app=App("auto-annotation", description="Park activity auto-annotation",
                default_workflow="auto-annotate", metadata={"team": "vision"}),
        concepts=tuple(Concept(c, name=c.replace("_", " ")) for c in CONCEPTS),
        models=(
            model("park-classifier", "embedding-classifier", concepts=list(CONCEPTS),
                  base_embed_model={"user_id": "clarifai", "app_id": "main", "id": "general-image-embedding",
                                    "version": EMBED.version}),
            model("greater-than", "concept-thresholder", comparator="GREATER_THAN", thresholds=gt),
            model("less-than", "concept-thresholder", comparator="LESS_THAN", thresholds={c: 0.95 for c in CONCEPTS}),
            model("write-success", "annotation-writer", annotation_status="SUCCESS",
                  description="write success as me"),
            model("write-pending", "annotation-writer", annotation_status="PENDING",
                  description="write pending as me"),
        ),
        workflows=(Workflow("auto-annotate", description="auto-annotation", nodes=(
            Node("embed", EMBED),
            Node("classify", ModelRef("park-classifier"), ("embed",)),
            Node("greater-than", ModelRef("greater-than"), ("classify",)),
            Node("less-than", ModelRef("less-than"), ("classify",)),
            Node("write-success", ModelRef("write-success"), ("greater-than",)),
            Node("write-pending", ModelRef("write-pending"), ("less-than",)),
        )),),
        user_id=USER, source="manifest.yaml",
    )


def vid(model_id: str, n: int = 1) -> str:
    return f"{model_id}-v{n}"


def applied(desired: State, *, managed: bool = True) -> State:
    """What reading the app back after applying `desired` gives: one version per model (`<id>-v1`),
    writers carrying the owner's user id, nodes pinned, bookkeeping filled in."""
    models = []
    # the live reader gives unmarked resources no metadata: none of it is the manifest's
    keep_meta = (lambda meta: meta) if managed else (lambda meta: {})
    for m in desired.models:
        cfg = dict(m.config)
        if m.type == "annotation-writer" and "annotation_user_id" not in cfg:
            cfg["annotation_user_id"] = desired.user_id
        v = ModelVersion(vid(m.id), cfg, created_at="2024-01-01T00:00:00Z")
        models.append(dataclasses.replace(m, config=cfg, managed=managed, version_id=v.id, versions=(v,),
                                          metadata=keep_meta(m.metadata)))
    workflows = tuple(dataclasses.replace(w, managed=managed, metadata=keep_meta(w.metadata), nodes=tuple(
        n if n.model.external else dataclasses.replace(n, model=dataclasses.replace(n.model, version=vid(n.model.id)))
        for n in w.nodes)) for w in desired.workflows)
    app = desired.app if managed else dataclasses.replace(desired.app, metadata={})
    return State(app=app, concepts=desired.concepts, relations=desired.relations,
                 models=tuple(models), workflows=workflows, user_id=desired.user_id, source="live")


def with_model(state: State, model_id: str, **changes: Any) -> State:
    return dataclasses.replace(state, models=tuple(
        dataclasses.replace(m, **changes) if m.id == model_id else m for m in state.models))


def with_workflow(state: State, workflow_id: str, **changes: Any) -> State:
    return dataclasses.replace(state, workflows=tuple(
        dataclasses.replace(w, **changes) if w.id == workflow_id else w for w in state.workflows))


def people_synonyms() -> State:
    """The people-synonyms variant: concepts linked to clarifai/main concepts."""
    main = {"people": "ai_l8TKp2h5", "man": "ai_dxSG2s86", "adult": "ai_VPmHr5bm"}
    return State(
        app=App("people-synonyms"),
        concepts=tuple(Concept(c, name=c) for c in main),
        relations=tuple(ConceptRelation(c, "synonym", ConceptRef(ext, "clarifai", "main")) for c, ext in main.items()),
        models=(model("synonyms", "concept-synonym-mapper"),),
        user_id=USER, source="manifest.yaml",
    )
