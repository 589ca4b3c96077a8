"""Apply: execute a `plan.Plan` against the API, action by action, in plan order.

Contract:
- One dispatcher over (op, kind); each executor is small and idempotent: "already exists" on a
  create means an earlier, interrupted run got there first, so we read back and carry on; "not
  found" on a delete means done. A re-run of apply after any failure converges (plan again: what
  was done no longer shows).
- Writes are batched where the API takes lists (concepts: at most 128 a call; relations: one call
  per subject concept; new workflows: one call). PostModels answers with a single model, so models
  are created one call each.
- Model versions: a `create` or `new_version` records the version it made; workflow pins written
  as ``new:<model_id>`` resolve to it. A trainable model's version must reach MODEL_TRAINED before
  any workflow is pointed at it (bounded wait, clear failure).
- Non-idempotent writes (PostModelVersions) are sent without transport-level retries: a retry of a
  request whose response was lost could create a second version. Instead, after a failure we read
  the model's versions back and reuse one that already has the desired config.
- Ownership: every model and workflow we write carries `metadata[MARKER_KEY] = {"managed": true,
  "protect": bool, "keys": [the metadata keys the manifest manages]}`; the user's other metadata
  keys are never sent back changed (models: PATCH action "merge"; workflows: read, merge, overwrite).
- Progress goes to the `progress` callback (the CLI prints it on stderr); nothing here prints.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

from reconciler import modeltypes
from reconciler.client import api_path, app_path
from reconciler.errors import ApiError, ApplyError, ReconcilerError
from reconciler.plan import Action, Plan
from reconciler.state import (MARKER_KEY, App, make_marker, read_marker, Concept, ConceptRelation, Kind, Model, ModelRef,
                              Workflow)

CONCEPT_BATCH = 128
MODEL_TRAINED = 21100
MODEL_UNTRAINED = 21102
TRAINING_FAILED = frozenset({21106, *range(21110, 21120)})

# --- outcome recognition ---------------------------------------------------------------------
# Clarifai's error codes are per resource and not uniform, so an outcome is recognised by code AND
# by what the status says. Sources:
# - a duplicate concept is CONCEPTS_INVALID_REQUEST (40003), description "Invalid request", with
#   "duplicate" only in `details` (Clarifai/clarifai-python-grpc tests/client/test_concept_crud.py,
#   test_concept_post_get_patch); HTTP 400 is the REST gateway's code for an invalid request;
# - DATABASE_DUPLICATE_KEY (40010) "Object has a duplicate ID; another object with same ID already
#   exist" (Clarifai docs' status-code table); WORKFLOW_DUPLICATE (22100), INPUT_DUPLICATE (30100)
#   (clarifai-grpc status_code.proto); HTTP 409 wherever a gateway maps a conflict;
# - a concept the app does not have is CONN_DOES_NOT_EXIST (11101) "Resource does not exist"
#   (test_concept_crud.py, test_patching_public_concept_fails); MODEL_DOES_NOT_EXIST (21200),
#   WORKFLOW_DOES_NOT_EXIST (22102), INPUT_DOES_NOT_EXIST (30102) name themselves.
# 40003 is every invalid concept request, so by itself it means neither outcome.

#: Codes that mean "an object with this id already exists" whatever the text says. MIXED_STATUS
#: (10010) answers a batch in which some items failed: the create paths then read back and converge,
#: which is right whatever the cause, and re-raise anything that is not a duplicate.
DUPLICATE_CODES = frozenset({40010, 22100, 30100, 10010})
#: Codes of "invalid request" families that mean a duplicate only when the status says so.
INVALID_REQUEST_CODES = frozenset({40003, 11102, 21203, 22999, 39999})
#: Codes that mean "not found" whatever the text says.
NOT_FOUND_CODES = frozenset({11101, 21200, 22102, 30102})
_DUPLICATE_WORDS = ("duplicate", "already exist")
_NOT_FOUND_WORDS = ("does not exist", "not found", "doesn't exist")

Progress = Callable[[str], None]


def _status_text(err: ApiError) -> str:
    """The server's own words (status description and details), lower-cased: never the request
    path, which holds ids that may themselves contain such words."""
    body = err.details.get("response") if isinstance(err.details, dict) else None
    status = body.get("status") if isinstance(body, dict) else None
    details = status.get("details") if isinstance(status, dict) else ""
    return f"{err.description} {details if isinstance(details, str) else ''}".lower()


def _is_duplicate(err: ApiError) -> bool:
    if err.code in DUPLICATE_CODES or err.http_status == 409:
        return True
    if not any(w in _status_text(err) for w in _DUPLICATE_WORDS):
        return False
    return err.code in INVALID_REQUEST_CODES or (400 <= err.http_status < 500 and err.http_status != 429)


def _is_not_found(err: ApiError) -> bool:
    if err.code in NOT_FOUND_CODES or err.http_status == 404:
        return True
    return err.code in INVALID_REQUEST_CODES and any(w in _status_text(err) for w in _NOT_FOUND_WORDS)


def metadata_with_marker(res: Model | Workflow) -> dict[str, Any]:
    return {**res.metadata, MARKER_KEY: make_marker(res.protect, res.metadata)}


@dataclass
class ApplyResult:
    done: list[str] = field(default_factory=list)
    writes: int = 0
    new_versions: dict[str, str] = field(default_factory=dict)


class Applier:
    def __init__(self, client: Any, plan: Plan, *, progress: Progress | None = None,
                 train_timeout_s: float = 600.0, poll_s: float = 0.5):
        self.client = client
        self.plan = plan
        self.progress = progress or (lambda _msg: None)
        self.train_timeout_s = train_timeout_s
        self.poll_s = poll_s
        self.result = ApplyResult()
        self._owner_id: str | None = None  # resolved on first need, see `_owner`
        user = plan.user_id or "me"
        self.base = app_path(plan.app_id, user)
        self.apps_path = api_path("v2", "users", user, "apps")

    # --- driver ----------------------------------------------------------------------------
    def run(self) -> ApplyResult:
        actions = list(self.plan.actions)
        groups = _group(actions)
        total = len(actions)
        n = 0
        for group in groups:
            label = _label(group)
            try:
                self._dispatch(group)
                n += len(group)
                self.result.done.extend(_describe(a) for a in group)
                self.progress(f"[{n}/{total}] {label}: done")
            except (ReconcilerError, KeyboardInterrupt) as err:
                why = f": {err}" if isinstance(err, ReconcilerError) else " (interrupted)"
                done = set(self.result.done)
                not_done = [d for g in groups[groups.index(group):] for d in map(_describe, g) if d not in done]
                raise ApplyError(
                    f"apply stopped at {label}{why}. {len(self.result.done)} of {total} actions "
                    f"were applied; {len(not_done)} were not. Run apply again to converge: it plans "
                    f"from the live app and does only what is left.",
                    done=self.result.done, not_done=not_done) from None
        return self.result

    def _dispatch(self, group: list[Action]) -> None:
        a = group[0]
        handler = getattr(self, f"_{a.op}_{a.kind.value}", None)
        if handler is None:
            raise ApplyError(f"no executor for {a.op} {a.kind.value}")
        if _batched(a):
            handler(group)
        else:
            handler(a)

    # --- HTTP helpers ----------------------------------------------------------------------
    def _at(self, *segments: str) -> str:
        """A path under the app; ids are encoded one segment each (`client.api_path`)."""
        return self.base + api_path(*segments)

    def _write(self, method: str, path: str, body: dict[str, Any], *, retry: bool = True) -> dict[str, Any]:
        self.result.writes += 1
        fn = getattr(self.client, method)
        if retry:
            return fn(path, body)
        return fn(path, body, retry=False)

    # --- app -------------------------------------------------------------------------------
    def _create_app(self, a: Action) -> None:
        app: App = a.desired  # type: ignore[assignment]
        body = {"apps": [{"id": app.id, "description": app.description,
                          "metadata": _app_metadata(app)}]}
        try:
            self._write("post", self.apps_path, body)
        except ApiError as err:
            if not _is_duplicate(err):
                raise
            self._update_app(a)

    def _update_app(self, a: Action) -> None:
        app: App = a.desired  # type: ignore[assignment]
        raw = self.client.get(self.base).get("app", {})
        meta = _merged_metadata(raw.get("metadata") or {}, app.metadata, _app_metadata(app))
        body = {"apps": [{"id": app.id, "description": app.description, "metadata": meta}],
                "action": "overwrite", "metadata_action": {"op": "overwrite"}}
        self._write("patch", self.apps_path, body)

    _adopt_app = _update_app

    def _set_default_app(self, a: Action) -> None:
        app: App = a.desired  # type: ignore[assignment]
        body = {"apps": [{"id": app.id, "default_workflow_id": app.default_workflow or ""}],
                "action": "overwrite"}
        self._write("patch", self.apps_path, body)

    # --- concepts (batched) ----------------------------------------------------------------
    def _create_concept(self, group: list[Action]) -> None:
        concepts = [a.desired for a in group]
        for i in range(0, len(concepts), CONCEPT_BATCH):
            batch: list[Concept] = concepts[i:i + CONCEPT_BATCH]  # type: ignore[assignment]
            try:
                self._write("post", self._at("concepts"), {"concepts": [_concept_json(c) for c in batch]})
            except ApiError as err:
                if not _is_duplicate(err):
                    raise
                self._converge_concepts(batch)
            if len(concepts) > CONCEPT_BATCH:
                self.progress(f"  concepts: {min(i + CONCEPT_BATCH, len(concepts))}/{len(concepts)} created")

    def _converge_concepts(self, batch: list[Concept]) -> None:
        """Some of the batch exist already (an earlier run was cut off): create the rest one call,
        overwrite the existing ones whose fields differ."""
        existing = {c["id"]: c for c in self.client.list_all(self._at("concepts"), "concepts")}
        missing = [c for c in batch if c.id not in existing]
        if missing:
            self._write("post", self._at("concepts"), {"concepts": [_concept_json(c) for c in missing]})
        differ = [c for c in batch if c.id in existing and (
            existing[c.id].get("name", "") != c.name or existing[c.id].get("definition", "") != c.description)]
        if differ:
            self._write("patch", self._at("concepts"),
                        {"concepts": [_concept_json(c) for c in differ], "action": "overwrite"})

    def _update_concept(self, group: list[Action]) -> None:
        concepts = [a.desired for a in group]
        for i in range(0, len(concepts), CONCEPT_BATCH):
            batch = concepts[i:i + CONCEPT_BATCH]
            self._write("patch", self._at("concepts"),
                        {"concepts": [_concept_json(c) for c in batch], "action": "overwrite"})  # type: ignore[arg-type]

    # --- relations (one call per subject) --------------------------------------------------
    def _create_concept_relation(self, group: list[Action]) -> None:
        by_subject: dict[str, list[ConceptRelation]] = {}
        for a in group:
            r: ConceptRelation = a.desired  # type: ignore[assignment]
            by_subject.setdefault(r.subject, []).append(r)
        for subject, rels in by_subject.items():
            path = self._at("concepts", subject, "relations")
            try:
                self._write("post", path, {"concept_relations": [_relation_json(r) for r in rels]})
            except ApiError as err:
                if not _is_duplicate(err):
                    raise
                # Some exist: create only the ones still missing.
                live = self.client.list_all(path, "concept_relations")
                app = self.plan.app_id
                have = {_relation_sig(x, app) for x in live}
                rest = [r for r in rels if _relation_sig(
                    _relation_json(r) | {"subject_concept": {"id": subject}}, app) not in have]
                if rest:
                    self._write("post", path, {"concept_relations": [_relation_json(r) for r in rest]})

    def _delete_concept_relation(self, group: list[Action]) -> None:
        by_subject: dict[str, list[str]] = {}
        for a in group:
            r: ConceptRelation = a.live  # type: ignore[assignment]
            if r.server_id:
                by_subject.setdefault(r.subject, []).append(r.server_id)
        for subject, ids in by_subject.items():
            try:
                self._write("delete", self._at("concepts", subject, "relations"), {"ids": ids})
            except ApiError as err:
                if not _is_not_found(err):
                    raise

    # --- models ----------------------------------------------------------------------------
    def _create_model(self, a: Action) -> None:
        m: Model = a.desired  # type: ignore[assignment]
        api = modeltypes.to_api(m.type, self._resolve_config(m))
        model_json: dict[str, Any] = {"id": m.id, "model_type_id": m.type, "description": m.description,
                                      "metadata": metadata_with_marker(m)}
        if "output_info" in api:
            model_json["output_info"] = api["output_info"]
        if "input_info" in api:
            model_json["model_version"] = {"input_info": api["input_info"], "output_info": api.get("output_info", {})}
        try:
            resp = self._write("post", self._at("models"), {"models": [model_json]}, retry=False)
            version = ((resp.get("model") or {}).get("model_version") or {})
        except ApiError as err:
            if not (_is_duplicate(err) or err.http_status == 0 or err.http_status >= 500):
                raise
            # Created by a run whose answer was lost, or by someone else: adopt what is there.
            version = self._ensure_version(m)
            self._patch_model_fields(m)
        vid = version.get("id", "")
        self.result.new_versions[m.id] = vid
        self._await_trained(m, version)

    def _update_model(self, a: Action) -> None:
        m: Model = a.desired  # type: ignore[assignment]
        self._patch_model_fields(m, a.live)  # type: ignore[arg-type]

    def _adopt_model(self, a: Action) -> None:
        self._update_model(a)

    def _patch_model_fields(self, m: Model, live: Model | None = None) -> None:
        body = {"models": [{"id": m.id, "description": m.description, "metadata": metadata_with_marker(m)}],
                "action": "merge"}
        self._write("patch", self._at("models"), body)
        gone = sorted(set(live.metadata) - set(m.metadata)) if live is not None else []
        if gone:
            self._write("patch", self._at("models"),
                        {"models": [{"id": m.id, "metadata": {k: True for k in gone}}], "action": "remove"})

    def _new_version_model(self, a: Action) -> None:
        m: Model = a.desired  # type: ignore[assignment]
        # The plan saw no version with this config, so post at once; `_settle_version` then
        # resolves a race with another apply that posted the same config meanwhile.
        version = self._ensure_version(m, look_first=False)
        self.result.new_versions[m.id] = version.get("id", "")
        self._await_trained(m, version)

    def _ensure_version(self, m: Model, *, look_first: bool = True) -> dict[str, Any]:
        """Reuse the newest version whose config equals the desired one, else post a new one.
        The post is sent without retries; on a lost answer we look again before giving up."""
        want = self._resolve_config(m)
        if look_first:
            found = self._find_version(m, want)
            if found is not None:
                return found
        body = {"model_versions": [modeltypes.to_api(m.type, want)]}
        try:
            resp = self._write("post", self._at("models", m.id, "versions"), body, retry=False)
        except ApiError as err:
            if err.http_status and err.http_status < 500 and err.http_status != 429:
                raise
            found = self._find_version(m, want)  # did the lost request commit?
            if found is not None:
                return found
            resp = self._write("post", self._at("models", m.id, "versions"), body, retry=False)
        posted = (resp.get("model") or {}).get("model_version") or {}
        return self._settle_version(m, want, posted)

    def _settle_version(self, m: Model, want: dict[str, Any], posted: dict[str, Any]) -> dict[str, Any]:
        """Two applies running at once can both post the same config (each checked first and saw
        none). Rule: the OLDEST version with the desired config wins; a poster that finds an
        older twin of its fresh version deletes its own (nothing points at it yet) and uses the
        twin. Each racer checks after its own post committed, so exactly one twin survives."""
        pid = posted.get("id", "")
        versions = self.client.list_all(self._at("models", m.id, "versions"), "model_versions")
        # newest first by created_at; a stable sort keeps the server's (newest-first) order on ties
        versions = sorted(versions, key=lambda v: str(v.get("created_at") or ""), reverse=True)
        twins = [v for v in versions if modeltypes.from_api(m.type, v) == want]
        if not pid or not twins or twins[-1].get("id") == pid:
            return posted
        if any(v.get("id") == pid for v in twins):
            try:
                self._write("delete", self._at("models", m.id, "versions", pid), {})
            except ApiError as err:
                if not _is_not_found(err):
                    raise
            self.progress(f"  model/{m.id}: another apply made the same version first; using {twins[-1].get('id')}")
        return twins[-1]

    def _find_version(self, m: Model, want: dict[str, Any]) -> dict[str, Any] | None:
        try:
            versions = self.client.list_all(self._at("models", m.id, "versions"), "model_versions")
        except ApiError as err:
            if _is_not_found(err):
                return None
            raise
        for v in versions:  # newest first
            if modeltypes.from_api(m.type, v) == want:
                return v
        return None

    def _await_trained(self, m: Model, version: dict[str, Any]) -> None:
        if modeltypes.canonical_type(m.type) not in modeltypes.TRAINABLE_TYPES:
            return
        vid = version.get("id", "")
        deadline = time.monotonic() + self.train_timeout_s
        code = int(((version.get("status") or {}).get("code")) or 0)
        while code != MODEL_TRAINED:
            if code in TRAINING_FAILED:
                raise ApplyError(f"model {m.id}: version {vid} failed to train (status {code})")
            if time.monotonic() > deadline:
                raise ApplyError(f"model {m.id}: version {vid} not trained after {self.train_timeout_s:.0f}s "
                                 f"(status {code}); workflows were not pointed at it")
            self.progress(f"  model/{m.id}: waiting for version {vid} to train (status {code})")
            time.sleep(self.poll_s)
            v = self.client.get(self._at("models", m.id, "versions", vid)).get("model_version") or {}
            code = int(((v.get("status") or {}).get("code")) or 0)

    def _delete_model(self, a: Action) -> None:
        try:
            self._write("delete", self._at("models", a.id), {})
        except ApiError as err:
            if not _is_not_found(err):
                raise

    def _resolve_config(self, m: Model) -> dict[str, Any]:
        """Fill the annotation writer's default user (the app owner) if the manifest left it out."""
        cfg = dict(m.config)
        if modeltypes.canonical_type(m.type) == modeltypes.WRITER and not cfg.get("annotation_user_id"):
            owner = self._owner()
            if owner:
                cfg["annotation_user_id"] = owner
        return cfg

    def _owner(self) -> str | None:
        """The app owner's user id: the plan's, else (a PAT with no user id given, planned before
        the app existed) the app's `user_id` as the API reports it -- the same source the next
        plan's live read uses, so a writer created here does not show up as changed there."""
        if self.plan.user_id:
            return self.plan.user_id
        if self._owner_id is None:
            try:
                raw = self.client.get(self.base).get("app") or {}
            except ApiError:
                raw = {}
            self._owner_id = str(raw.get("user_id") or "") if isinstance(raw, dict) else ""
        return self._owner_id or None

    # --- workflows -------------------------------------------------------------------------
    def _workflow_json(self, a: Action, metadata: dict[str, Any]) -> dict[str, Any]:
        w: Workflow = a.desired  # type: ignore[assignment]
        pins = dict(a.pins)
        nodes = []
        for n in w.nodes:
            nodes.append({"id": n.id, "model": self._node_model(n.id, n.model, pins),
                          "node_inputs": [{"node_id": i} for i in n.inputs],
                          "suppress_output": n.suppress_output})
        return {"id": w.id, "description": w.description, "metadata": metadata, "nodes": nodes}

    def _node_model(self, node_id: str, ref: ModelRef, pins: dict[str, str]) -> dict[str, Any]:
        if ref.external:
            out: dict[str, Any] = {"id": ref.id, "user_id": ref.user_id, "app_id": ref.app_id}
            if ref.version:
                out["model_version"] = {"id": ref.version}
            return out
        pin = pins.get(node_id) or ref.version or f"new:{ref.id}"
        if pin.startswith("new:"):
            model_id = pin[4:]
            if model_id not in self.result.new_versions:
                raise ApplyError(f"node {node_id}: no version of model {model_id} was made by this apply")
            pin = self.result.new_versions[model_id]
        return {"id": ref.id, "model_version": {"id": pin}}

    def _create_workflow(self, group: list[Action]) -> None:
        """One PostWorkflows for the whole group; if some exist already (an earlier run was cut
        off), fall back to one call each: create the missing, overwrite the existing."""
        body = {"workflows": [self._workflow_json(a, metadata_with_marker(a.desired)) for a in group]}  # type: ignore[arg-type]
        try:
            self._write("post", self._at("workflows"), body)
            return
        except ApiError as err:
            if not _is_duplicate(err):
                raise
        for a in group:
            try:
                self._write("post", self._at("workflows"),
                            {"workflows": [self._workflow_json(a, metadata_with_marker(a.desired))]})  # type: ignore[arg-type]
            except ApiError as err:
                if not _is_duplicate(err):
                    raise
                self._update_workflow(a)

    def _update_workflow(self, a: Action) -> None:
        w: Workflow = a.desired  # type: ignore[assignment]
        raw = self.client.get(self._at("workflows", w.id)).get("workflow") or {}
        live_meta = raw.get("metadata") or {}
        meta = _merged_metadata(live_meta, w.metadata, metadata_with_marker(w))
        body = {"workflows": [self._workflow_json(a, meta)], "action": "overwrite"}
        self._write("patch", self._at("workflows"), body)

    _adopt_workflow = _update_workflow
    _repoint_workflow = _update_workflow

    def _delete_workflow(self, a: Action) -> None:
        try:
            self._write("delete", self._at("workflows", a.id), {})
        except ApiError as err:
            if not _is_not_found(err):
                raise


# --- helpers ---------------------------------------------------------------------------------

def _batched(a: Action) -> bool:
    """Actions whose API call takes a list: consecutive ones of the same op share calls."""
    return ((a.kind in (Kind.CONCEPT, Kind.RELATION) and a.op in ("create", "update", "delete"))
            or (a.kind == Kind.WORKFLOW and a.op == "create"))


def _group(actions: list[Action]) -> list[list[Action]]:
    """Consecutive batchable actions of the same kind and op run as one group."""
    groups: list[list[Action]] = []
    for a in actions:
        if (groups and _batched(a) and groups[-1][0].kind == a.kind and groups[-1][0].op == a.op):
            groups[-1].append(a)
        else:
            groups.append([a])
    return groups


def _describe(a: Action) -> str:
    return f"{a.op} {a.kind.value}/{a.id}"


def _label(group: list[Action]) -> str:
    if len(group) == 1:
        return _describe(group[0])
    return f"{group[0].op} {len(group)} {group[0].kind.value}s"


def _concept_json(c: Concept) -> dict[str, Any]:
    out: dict[str, Any] = {"id": c.id, "name": c.name or c.id}
    if c.description:
        out["definition"] = c.description
    return out


def _relation_json(r: ConceptRelation) -> dict[str, Any]:
    obj: dict[str, Any] = {"id": r.object.id}
    if r.object.external:
        obj.update(app_id=r.object.app_id, user_id=r.object.user_id)
    return {"object_concept": obj, "predicate": r.predicate, "knowledge_graph_id": r.knowledge_graph_id}


def _relation_sig(x: dict[str, Any], app_id: str) -> tuple[str, str, str, str, str]:
    """A relation's content; an object in this app reads the same with or without its app id."""
    obj = x.get("object_concept") or {}
    obj_app = obj.get("app_id") or ""
    return ((x.get("subject_concept") or {}).get("id", ""), x.get("predicate", ""), obj.get("id", ""),
            "" if obj_app == app_id else obj_app, x.get("knowledge_graph_id", "") or "")


def _app_metadata(app: App) -> dict[str, Any]:
    return {**app.metadata, MARKER_KEY: make_marker(False, app.metadata)}


def _merged_metadata(live_raw: dict[str, Any], desired: dict[str, Any], with_marker: dict[str, Any]) -> dict[str, Any]:
    """The user's own keys stay; keys the manifest managed before but dropped now go; the
    manifest's keys and the marker are written."""
    previously_managed = set(read_marker(live_raw)[2])
    keep = {k: v for k, v in live_raw.items() if k != MARKER_KEY and k not in previously_managed}
    return {**keep, **with_marker}


def apply_plan(client: Any, plan: Plan, *, progress: Progress | None = None,
               train_timeout_s: float = 600.0, poll_s: float = 0.5) -> ApplyResult:
    return Applier(client, plan, progress=progress, train_timeout_s=train_timeout_s, poll_s=poll_s).run()

