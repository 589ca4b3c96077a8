"""Executors for concepts (batched, at most 128 a call) and concept relations (one call per subject concept)."""

from __future__ import annotations

from reconciler.api.codecs import ConceptCodec, RelationCodec
from reconciler.apply.base import (
    CONCEPT_BATCH,
    ExecutorBase,
    _desired,
    _is_duplicate,
    _is_not_found,
    _live,
    executes,
)
from reconciler.core.errors import ApiError
from reconciler.core.state import (
    Concept,
    ConceptRelation,
    Kind,
)
from reconciler.planning.actions import Action, Op


class ConceptExecutors(ExecutorBase):
    # --- concepts (batched) ----------------------------------------------------------------
    @executes((Op.CREATE, Kind.CONCEPT), batched=True)
    def _create_concept(self, group: list[Action]) -> None:
        concepts = [_desired(a, Concept) for a in group]
        for i in range(0, len(concepts), CONCEPT_BATCH):
            batch = concepts[i : i + CONCEPT_BATCH]
            try:
                self._write("post", self._at("concepts"), {"concepts": [ConceptCodec.to_api(c) for c in batch]})
            except ApiError as err:
                if not _is_duplicate(err):
                    raise
                self._converge_concepts(batch)

    def _converge_concepts(self, batch: list[Concept]) -> None:
        """Some of the batch exist already (an earlier run was cut off): create the rest one call,
        overwrite the existing ones whose fields differ."""
        existing = {c["id"]: c for c in self.client.list_all(self._at("concepts"), "concepts")}
        missing = [c for c in batch if c.id not in existing]
        if missing:
            self._write("post", self._at("concepts"), {"concepts": [ConceptCodec.to_api(c) for c in missing]})
        differ = [c for c in batch if c.id in existing and ConceptCodec.differs(c, existing[c.id])]
        if differ:
            self._write(
                "patch",
                self._at("concepts"),
                {"concepts": [ConceptCodec.to_api(c, existing[c.id]) for c in differ], "action": "overwrite"},
            )

    @executes((Op.UPDATE, Kind.CONCEPT), batched=True)
    def _update_concept(self, group: list[Action]) -> None:
        # PatchConcepts takes only "overwrite", which may replace the whole concept: send back the
        # user's metadata, which the manifest does not manage (quirk patch-overwrite-replaces), as
        # the live read returned it (no second listing); read them again only if that is missing.
        existing = {a.id: a.live.raw for a in group if isinstance(a.live, Concept) and a.live.raw}
        if len(existing) < len(group):
            existing = {str(c.get("id", "")): c for c in self.client.list_all(self._at("concepts"), "concepts")}
        concepts = [_desired(a, Concept) for a in group]
        for i in range(0, len(concepts), CONCEPT_BATCH):
            batch = concepts[i : i + CONCEPT_BATCH]
            self._write(
                "patch",
                self._at("concepts"),
                {"concepts": [ConceptCodec.to_api(c, existing.get(c.id)) for c in batch], "action": "overwrite"},
            )

    # --- relations (one call per subject) --------------------------------------------------
    @executes((Op.CREATE, Kind.RELATION), batched=True)
    def _create_concept_relation(self, group: list[Action]) -> None:
        by_subject: dict[str, list[ConceptRelation]] = {}
        for a in group:
            r = _desired(a, ConceptRelation)
            by_subject.setdefault(r.subject, []).append(r)
        for subject, rels in by_subject.items():
            path = self._at("concepts", subject, "relations")
            try:
                self._write("post", path, {"concept_relations": [RelationCodec.to_api(r) for r in rels]})
            except ApiError as err:
                if not _is_duplicate(err):
                    raise
                # Some exist: create only the ones still missing.
                live = self.client.list_all(path, "concept_relations")
                app = self.plan.app_id
                have = {RelationCodec.signature(x, app) for x in live}
                rest = [r for r in rels if RelationCodec.signature(RelationCodec.to_api(r, with_subject=True), app) not in have]
                if rest:
                    self._write("post", path, {"concept_relations": [RelationCodec.to_api(r) for r in rest]})

    @executes((Op.DELETE, Kind.RELATION), batched=True)
    def _delete_concept_relation(self, group: list[Action]) -> None:
        by_subject: dict[str, list[ConceptRelation]] = {}
        for a in group:
            r = _live(a, ConceptRelation)
            if r.server_id:
                by_subject.setdefault(r.subject, []).append(r)
        for subject, rels in by_subject.items():
            try:
                self._write("delete", self._at("concepts", subject, "relations"), {"ids": [r.server_id for r in rels]})
            except ApiError as err:
                if not _is_not_found(err):
                    raise
                # Gone already (an earlier run), or stored on its other side: a listing may show a
                # relation from its object's side (quirk relation-inverse-listing). One at a time.
                for r in rels:
                    self._delete_relation_from_either_side(r)

    def _delete_relation_from_either_side(self, r: ConceptRelation) -> None:
        sides = [r.subject] + ([r.object.id] if not r.object.external else [])
        for side in sides:
            try:
                self._write("delete", self._at("concepts", side, "relations"), {"ids": [r.server_id]})
                return
            except ApiError as err:
                if not _is_not_found(err):
                    raise
