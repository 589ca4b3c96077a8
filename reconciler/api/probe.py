"""The probe: settle, against a real API, each plausible reading the sandbox plays as a quirk.

A maintainer with a PAT runs `reconciler probe --app THROWAWAY` once (commands/probe.py). The
probe creates that app (refusing one that exists), makes the fewest calls that tell each reading
from the normal one, records every raw answer, judges, and deletes the app. Nothing here trains a
model on data or re-indexes inputs: the app has no inputs, and the one version of a trainable type
it posts fails at once for want of data (which is itself evidence the tool relies on).

Contract:
- `PROBES` maps each quirk name of the sandbox (`sandbox/quirks.py`; a test holds the two sets
  equal) to the reading it plays, in words.
- `run(client, app_id) -> Recording`: the calls, in order; every answer is recorded raw through
  `Client.observe` (before the client turns status names into numbers), the PAT redacted.
- `judge(exchanges) -> list[Verdict]`: pure, from the recorded exchanges alone, so a recording
  replays (tests/parity/test_probe_replay.py): "observed" (the quirk's reading holds), "not
  observed" (the normal reading holds) or "unknown" (the evidence is missing or unexpected).
- `masked(recording)`: user ids replaced by `USER_MASK` everywhere (paths and bodies);
  `corpus_files(recording, verdicts, source)`: the parity corpus's case format (tests/parity/
  corpus.py: rpc, app_id, source, note, format "json", http_status, body), one file per answer
  plus `request` and `label`, and `verdicts.json`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from reconciler.api.client import Client
from reconciler.api.codecs import AppCodec
from reconciler.api.transport import api_path
from reconciler.core.errors import ApiError, ReconcilerError
from reconciler.core.status_codes import BY_NAME

#: The reading each quirk plays (the quirk observed means: the real API does this).
PROBES: dict[str, str] = {
    "listing-without-config": "model versions are listed without output_info.data / params",
    "main-models-listed": "ListModels of an app also lists clarifai/main's models despite dont_fetch_from_main",
    "relation-inverse-listing": "the app-wide relation listing shows a hypernym as the inverse hyponym",
    "patch-overwrite-replaces": "PatchApps overwrite clears the fields it does not send",
    "duplicate-invalid-request": "a duplicate model answers 40003 Invalid request (HTTP 400), not 40010 / 409",
    "timestamp-precision": "timestamps carry varying numbers of fractional digits",
    "status-code-names": "status codes in answers are enum names, not numbers",
    "delete-body-refused": "a DELETE sending a body its binding does not declare is refused",
    "server-filled-config": "a new version's output_info gets params / output_config never sent",
    "base-embed-model-filled": "an embedding-classifier version without base_embed_model gets one filled in",
    "default-workflow-id-ignored": "PatchApps ignores the deprecated default_workflow_id",
    "default-workflow-object-ignored": "PatchApps ignores the default_workflow object",
    "hosted-image": "an app image reads back hosted, without its url",
    "workflow-max-20-nodes": "PostWorkflows refuses a workflow of more than 20 nodes",
    "knowledge-graph-must-exist": "a relation in a knowledge graph the app lacks is refused",
}

USER_MASK = "@userID"
OBSERVED, NOT_OBSERVED, UNKNOWN = "observed", "not observed", "unknown"
#: Ids the probe makes in its app (concept ids at most 32 characters).
A, B = "probe-a", "probe-b"
GT, CLS, SPARE = "probe-gt", "probe-cls", "probe-spare"
W1, W2, WIDE = "probe-w1", "probe-w2", "probe-wide"
MISSING_GRAPH = "probe-missing-graph"
IMAGE_URL = "https://samples.clarifai.com/metro-north.jpg"
NOTES = "probe notes"
INVALID_REQUEST = {BY_NAME["CONCEPTS_INVALID_REQUEST"], BY_NAME["CONN_INVALID_REQUEST"], BY_NAME["MODEL_INVALID_REQUEST"]}


@dataclass
class Exchange:
    """One answer: which probe call made it (`label`, "<step>/<what>"), the RPC, the request as
    sent and the answer as received (JSON; None when not JSON)."""

    label: str
    rpc: str
    method: str
    path: str
    query: dict[str, Any]
    request: Any
    http_status: int
    body: Any


@dataclass
class Recording:
    app_id: str
    api_base: str
    exchanges: list[Exchange] = field(default_factory=list)
    #: user ids seen (the client's, the app's owner): masked in what is written
    user_ids: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Verdict:
    quirk: str
    reading: str
    observed: str
    evidence: str

    def line(self) -> str:
        """ "quirk: reading -> observed (evidence)"."""
        return f"{self.quirk}: {self.reading} -> {self.observed}" + (f" ({self.evidence})" if self.evidence else "")


# --- running ---------------------------------------------------------------------------------------


class _Prober:
    def __init__(self, client: Client, app_id: str) -> None:
        self.client, self.app_id = client, app_id
        self.base = client.app_path(app_id)
        self.apps = api_path("v2", "users", client.user_id or "me", "apps")
        self.rec = Recording(app_id=app_id, api_base=client.base_url)
        if client.user_id and client.user_id != "me":
            self.rec.user_ids.add(client.user_id)
        self._label, self._rpc = "", ""

    def observe(self, method: str, path: str, params: Any, body: Any, resp: httpx.Response) -> None:
        try:
            answer: Any = json.loads(self.client.redact(resp.text))
        except ValueError:
            answer = None
        self.rec.exchanges.append(
            Exchange(self._label, self._rpc, method, path, dict(params or {}), body, resp.status_code, answer)
        )

    def call(
        self, label: str, rpc: str, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None
    ) -> dict[str, Any] | None:
        """One request; its answer, or None when the API refused it (recorded either way)."""
        self._label, self._rpc = label, rpc
        try:
            return self.client.request(method, self.base + path, body=body, params=params, retry=method == "GET")
        except ApiError as err:
            if not err.http_status:  # unreachable: nothing to judge, nothing recorded
                raise
            return None

    def version_of(self, answer: dict[str, Any] | None) -> str:
        return str((((answer or {}).get("model") or {}).get("model_version") or {}).get("id") or "")

    def run(self, keep: bool) -> Recording:
        c = self.client
        c.observe = self.observe
        try:
            self._label, self._rpc = "setup/post-app", "PostApps"
            try:
                made = c.post(self.apps, {"apps": [{"id": self.app_id}]}, retry=False)
            except ApiError as err:
                if err.http_status and 400 <= err.http_status < 500 and err.http_status not in (401, 403, 429):
                    raise ReconcilerError(
                        f"cannot make the throwaway app {self.app_id} ({err}): the probe makes its own app and "
                        "deletes it at the end; give an id no app of yours has"
                    ) from None
                raise
            owner = str(((made.get("apps") or [{}])[0] or {}).get("user_id") or "")
            if owner:
                self.rec.user_ids.add(owner)
            try:
                self._steps(owner)
            finally:
                if not keep:
                    self._label, self._rpc = "cleanup/delete-app", "DeleteApp"
                    c.delete(self.base, None)
        finally:
            c.observe = None
        return self.rec

    def _steps(self, owner: str) -> None:
        self.call("setup/input-count", "GetInputCount", "GET", "/inputs/status")
        self.call("setup/concepts", "PostConcepts", "POST", "/concepts", {"concepts": [{"id": A}, {"id": B}]})
        # a thresholder: PostModels bare, its configuration in PostModelVersions
        self.call(
            "setup/post-model", "PostModels", "POST", "/models", {"models": [{"id": GT, "model_type_id": "concept-thresholder"}]}
        )
        oi = {"data": {"concepts": [{"id": A, "value": 0.5}]}, "params": {"concept_threshold_type": 1}}
        gt = self.version_of(
            self.call(
                "setup/post-version",
                "PostModelVersions",
                "POST",
                f"/models/{GT}/versions",
                {"model_versions": [{"output_info": oi}]},
            )
        )
        self.call("listing-without-config/list-versions", "ListModelVersions", "GET", f"/models/{GT}/versions")
        self.call("main-models-listed/list-models", "ListModels", "GET", "/models", params={"dont_fetch_from_main": True})
        rel = {"object_concept": {"id": B}, "predicate": "hypernym"}
        self.call(
            "relation-inverse-listing/post",
            "PostConceptRelations",
            "POST",
            f"/concepts/{A}/relations",
            {"concept_relations": [rel]},
        )
        self.call("relation-inverse-listing/list", "ListConceptRelations", "GET", "/concepts/relations")
        self.call(
            "duplicate-invalid-request/post-again",
            "PostModels",
            "POST",
            "/models",
            {"models": [{"id": GT, "model_type_id": "concept-thresholder"}]},
        )
        self.call(
            "delete-body-refused/setup",
            "PostModels",
            "POST",
            "/models",
            {"models": [{"id": SPARE, "model_type_id": "annotation-writer"}]},
        )
        if self.call("delete-body-refused/with-body", "DeleteModel", "DELETE", f"/models/{SPARE}", {}) is None:
            self.call("delete-body-refused/without-body", "DeleteModel", "DELETE", f"/models/{SPARE}")
        apps = self.apps
        self._label, self._rpc = "patch-overwrite-replaces/set-notes", "PatchApps"
        self._patch_app(apps, {"id": self.app_id, "notes": NOTES})
        self._label = "patch-overwrite-replaces/overwrite"
        self._patch_app(apps, {"id": self.app_id, "description": "reconciler probe"})
        self.call("patch-overwrite-replaces/get", "GetApp", "GET", "")
        node = {"id": "n", "model": {"id": GT, "model_version": {"id": gt}}}
        wide = [{"id": f"n{i}", "model": node["model"]} for i in range(21)]
        self.call(
            "workflow-max-20-nodes/post", "PostWorkflows", "POST", "/workflows", {"workflows": [{"id": WIDE, "nodes": wide}]}
        )
        # an embedding-classifier version with nothing but its concept: trains on no data (fails at once)
        self.call(
            "server-filled-config/post-model",
            "PostModels",
            "POST",
            "/models",
            {"models": [{"id": CLS, "model_type_id": "embedding-classifier"}]},
        )
        cls_version = {"output_info": {"data": {"concepts": [{"id": A}]}}}
        cls = self.version_of(
            self.call(
                "server-filled-config/post-version",
                "PostModelVersions",
                "POST",
                f"/models/{CLS}/versions",
                {"model_versions": [cls_version]},
            )
        )
        if cls:
            self.call(
                "server-filled-config/output-info", "GetModelOutputInfo", "GET", f"/models/{CLS}/versions/{cls}/output_info"
            )
            self.call("base-embed-model-filled/get-version", "GetModelVersion", "GET", f"/models/{CLS}/versions/{cls}")
        for wid in (W1, W2):
            self.call(
                "default-workflow/setup", "PostWorkflows", "POST", "/workflows", {"workflows": [{"id": wid, "nodes": [node]}]}
            )
        ref = {"id": W1, "app_id": self.app_id, **({"user_id": owner} if owner else {})}
        self._label = "default-workflow-object-ignored/patch"
        self._patch_app(apps, {"id": self.app_id, "default_workflow": ref}, reindex=False)
        self.call("default-workflow-object-ignored/get", "GetApp", "GET", "")
        self._label = "default-workflow-id-ignored/patch"
        self._patch_app(apps, {"id": self.app_id, "default_workflow_id": W2}, reindex=False)
        self.call("default-workflow-id-ignored/get", "GetApp", "GET", "")
        self._label = "hosted-image/set"
        self._patch_app(apps, {"id": self.app_id, "image": {"url": IMAGE_URL}})
        shown = self.call("hosted-image/get", "GetApp", "GET", "") or {}
        image = (shown.get("app") or {}).get("image")
        if isinstance(image, dict) and not image.get("url"):
            self._label = "hosted-image/send-back"
            self._patch_app(apps, {"id": self.app_id, "image": image})
        kg = {"object_concept": {"id": A}, "predicate": "synonym", "knowledge_graph_id": MISSING_GRAPH}
        self.call(
            "knowledge-graph-must-exist/post",
            "PostConceptRelations",
            "POST",
            f"/concepts/{B}/relations",
            {"concept_relations": [kg]},
        )

    def _patch_app(self, apps_path: str, item: dict[str, Any], reindex: bool | None = None) -> None:
        self._rpc = "PatchApps"
        body: dict[str, Any] = {"apps": [item], "action": "overwrite"}
        if reindex is not None:
            body["reindex"] = reindex
        try:
            self.client.patch(apps_path, body, retry=False)
        except ApiError as err:
            if not err.http_status:
                raise


def run(client: Client, app_id: str, *, keep: bool = False) -> Recording:
    """Probe the API behind `client` with a new app `app_id` (see the module docstring)."""
    return _Prober(client, app_id).run(keep)


# --- judging -------------------------------------------------------------------------------------


def _find(exchanges: list[Exchange], label: str) -> Exchange | None:
    """The last answer of the call `label` (a retried call answers more than once)."""
    return next((e for e in reversed(exchanges) if e.label == label), None)


def _code(body: Any) -> int:
    code = ((body or {}).get("status") or {}).get("code") if isinstance(body, dict) else None
    if isinstance(code, str):
        return BY_NAME.get(code, int(code) if code.isdigit() else 0)
    return code if isinstance(code, int) else 0


def _ok(e: Exchange | None) -> bool:
    return e is not None and e.http_status == 200 and _code(e.body) == BY_NAME["SUCCESS"]


def _refused(e: Exchange | None) -> bool:
    return e is not None and 400 <= e.http_status < 500


def _walk(obj: Any) -> Iterator[tuple[str, Any]]:
    stack = [obj]
    while stack:
        cur = stack.pop()
        if isinstance(cur, dict):
            for k, v in cur.items():
                yield k, v
                stack.append(v)
        elif isinstance(cur, list):
            stack.extend(cur)


_FRACTION = re.compile(r"T\d\d:\d\d:\d\d(?:\.(\d+))?(?:Z|[+-]\d\d:\d\d)$")


def _refusal(e: Exchange | None, label: str = "refused") -> tuple[str, str]:
    if _refused(e):
        assert e is not None
        return OBSERVED, f"{label}: HTTP {e.http_status}, code {_code(e.body)}"
    if _ok(e):
        return NOT_OBSERVED, "accepted"
    return UNKNOWN, "no answer" if e is None else f"HTTP {e.http_status}, code {_code(e.body)}"


def _answer(ex: list[Exchange], label: str) -> dict[str, Any] | None:
    """The body of the call `label` when it succeeded, else None."""
    e = _find(ex, label)
    return e.body if _ok(e) and e is not None and isinstance(e.body, dict) else None


Judged = tuple[str, str]
Judge = Callable[[list[Exchange], str], Judged]


def _listing(ex: list[Exchange], app_id: str) -> Judged:
    posted = _answer(ex, "setup/post-version") or {}
    vid = str(((posted.get("model") or {}).get("model_version") or {}).get("id") or "")
    listed = [
        v for v in (_answer(ex, "listing-without-config/list-versions") or {}).get("model_versions") or [] if v.get("id") == vid
    ]
    if not vid or not listed:
        return UNKNOWN, "the configured version was not listed"
    oi = listed[0].get("output_info") or {}
    missing = [k for k in ("data", "params") if not oi.get(k)]
    return (OBSERVED, f"listed without output_info.{' / '.join(missing)}") if missing else (NOT_OBSERVED, "")


def _main_models(ex: list[Exchange], app_id: str) -> Judged:
    body = _answer(ex, "main-models-listed/list-models")
    if body is None:
        return UNKNOWN, "ListModels failed"
    others = sorted({str(m.get("app_id")) for m in body.get("models") or [] if m.get("app_id") not in (None, "", app_id)})
    return (OBSERVED, f"models of {', '.join(others)} listed") if others else (NOT_OBSERVED, "")


def _inverse(ex: list[Exchange], app_id: str) -> Judged:
    shown = {
        ((r.get("subject_concept") or {}).get("id"), r.get("predicate"), (r.get("object_concept") or {}).get("id"))
        for r in (_answer(ex, "relation-inverse-listing/list") or {}).get("concept_relations") or []
    }
    if (B, "hyponym", A) in shown:
        return OBSERVED, f"listed as {B} hyponym {A}"
    return (NOT_OBSERVED, "") if (A, "hypernym", B) in shown else (UNKNOWN, "the relation was not listed")


def _overwrite(ex: list[Exchange], app_id: str) -> Judged:
    body = _answer(ex, "patch-overwrite-replaces/get")
    if body is None:
        return UNKNOWN, "GetApp failed"
    return (NOT_OBSERVED, "") if (body.get("app") or {}).get("notes") == NOTES else (OBSERVED, "notes cleared")


def _duplicate(ex: list[Exchange], app_id: str) -> Judged:
    e = _find(ex, "duplicate-invalid-request/post-again")
    if e is None or not _refused(e):
        return UNKNOWN, "the duplicate was not refused" if _ok(e) else "no answer"
    code = _code(e.body)
    if code in INVALID_REQUEST and e.http_status == 400:
        return OBSERVED, f"code {code}, HTTP 400"
    return NOT_OBSERVED, f"code {code}, HTTP {e.http_status}"


def _timestamps(ex: list[Exchange], app_id: str) -> Judged:
    digits = set()
    for e in ex:
        for k, v in _walk(e.body):
            m = _FRACTION.search(v) if k.endswith("_at") and isinstance(v, str) else None
            if m:
                digits.add(len(m.group(1) or ""))
    if not digits:
        return UNKNOWN, "no timestamp seen"
    seen = ", ".join(str(d) for d in sorted(digits))
    return (OBSERVED, f"fractional digits {seen}") if len(digits) > 1 else (NOT_OBSERVED, f"always {seen} digits")


def _names(ex: list[Exchange], app_id: str) -> Judged:
    codes = [v.get("code") for e in ex for k, v in _walk(e.body) if k == "status" and isinstance(v, dict) and "code" in v]
    if not codes:
        return UNKNOWN, "no status seen"
    names = sorted({c for c in codes if isinstance(c, str)})
    return (OBSERVED, ", ".join(names[:3])) if names else (NOT_OBSERVED, "")


def _filled(ex: list[Exchange], app_id: str) -> Judged:
    body = _answer(ex, "server-filled-config/output-info")
    if body is None:
        return UNKNOWN, "GetModelOutputInfo not answered"
    oi = (body.get("model") or {}).get("output_info") or {}
    filled = sorted(set(oi.get("params") or {}) | {f"output_config.{k}" for k in (oi.get("output_config") or {})})
    return (OBSERVED, "filled: " + ", ".join(filled)) if filled else (NOT_OBSERVED, "")


def _embed(ex: list[Exchange], app_id: str) -> Judged:
    body = _answer(ex, "base-embed-model-filled/get-version")
    if body is None:
        return UNKNOWN, "GetModelVersion not answered"
    ref = ((body.get("model_version") or {}).get("input_info") or {}).get("base_embed_model") or {}
    return (OBSERVED, f"filled: {ref.get('id')}") if ref.get("id") else (NOT_OBSERVED, "")


def _default(field: str, want: str) -> Judge:
    def judge_default(ex: list[Exchange], app_id: str) -> Judged:
        body = _answer(ex, f"default-workflow-{field}-ignored/get")
        if body is None:
            return UNKNOWN, "GetApp failed"
        shown = AppCodec.default_of(body.get("app") or {})
        return (NOT_OBSERVED, "") if shown == want else (OBSERVED, f"the default stayed {shown or '(none)'}")

    return judge_default


def _hosted(ex: list[Exchange], app_id: str) -> Judged:
    body = _answer(ex, "hosted-image/get")
    image = (body or {}).get("app", {}).get("image") if body is not None else None
    if not isinstance(image, dict) or not image:
        return UNKNOWN, "no image shown"
    if image.get("url"):
        return NOT_OBSERVED, ""
    back = _find(ex, "hosted-image/send-back")
    return OBSERVED, "no url; sent back: " + ("refused" if _refused(back) else "accepted" if _ok(back) else "not sent")


def _refusal_of(label: str, what: str) -> Judge:
    def judge_refusal(ex: list[Exchange], app_id: str) -> Judged:
        return _refusal(_find(ex, label), what)

    return judge_refusal


_JUDGES: dict[str, Judge] = {
    "listing-without-config": _listing,
    "main-models-listed": _main_models,
    "relation-inverse-listing": _inverse,
    "patch-overwrite-replaces": _overwrite,
    "duplicate-invalid-request": _duplicate,
    "timestamp-precision": _timestamps,
    "status-code-names": _names,
    "delete-body-refused": _refusal_of("delete-body-refused/with-body", "refused"),
    "server-filled-config": _filled,
    "base-embed-model-filled": _embed,
    "default-workflow-id-ignored": _default("id", W2),
    "default-workflow-object-ignored": _default("object", W1),
    "hosted-image": _hosted,
    "workflow-max-20-nodes": _refusal_of("workflow-max-20-nodes/post", "21 nodes refused"),
    "knowledge-graph-must-exist": _refusal_of("knowledge-graph-must-exist/post", "refused"),
}


def judge(exchanges: list[Exchange], app_id: str) -> list[Verdict]:
    """A verdict per quirk, from the recorded exchanges alone (see the module docstring)."""
    out = []
    for quirk, reading in PROBES.items():
        observed, evidence = _JUDGES[quirk](exchanges, app_id)
        out.append(Verdict(quirk, reading, observed, evidence))
    return out


# --- recording -------------------------------------------------------------------------------------


def _mask(value: Any, ids: list[str]) -> Any:
    if isinstance(value, str):
        for uid in ids:
            value = value.replace(uid, USER_MASK)
        return value
    if isinstance(value, dict):
        return {_mask(k, ids): _mask(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(v, ids) for v in value]
    return value


def masked(rec: Recording) -> Recording:
    """`rec` with every user id it saw replaced by `USER_MASK` (longest first)."""
    ids = sorted((u for u in rec.user_ids if u and u != "me"), key=len, reverse=True)
    return Recording(
        app_id=rec.app_id,
        api_base=rec.api_base,
        exchanges=[
            Exchange(
                e.label,
                e.rpc,
                e.method,
                _mask(e.path, ids),
                _mask(e.query, ids),
                _mask(e.request, ids),
                e.http_status,
                _mask(e.body, ids),
            )
            for e in rec.exchanges
        ],
        user_ids=set(),
    )


def corpus_files(rec: Recording, verdicts: list[Verdict], source: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """File name -> JSON document: one parity-corpus case per answer (`probe-NN-<label>.json`) and
    `verdicts.json`. `rec` should be `masked` first."""
    files: dict[str, dict[str, Any]] = {}
    for n, e in enumerate(rec.exchanges, 1):
        slug = re.sub(r"[^a-z0-9]+", "-", e.label.lower()).strip("-")
        files[f"probe-{n:02d}-{slug}.json"] = {
            "rpc": e.rpc,
            "app_id": rec.app_id,
            "source": source,
            "note": f"Recorded by `reconciler probe` (step {e.label}) from {rec.api_base}; user ids masked as "
            f"{USER_MASK}, the PAT never recorded.",
            "format": "json",
            "http_status": e.http_status,
            "body": e.body,
            "label": e.label,
            "request": {"method": e.method, "path": e.path, "query": e.query, "body": e.request},
        }
    files["verdicts.json"] = {
        "app_id": rec.app_id,
        "source": source,
        "verdicts": [{"quirk": v.quirk, "reading": v.reading, "observed": v.observed, "evidence": v.evidence} for v in verdicts],
    }
    return files


def exchanges_from_files(docs: list[dict[str, Any]]) -> list[Exchange]:
    """The exchanges of recorded case files (`corpus_files`), in recording order."""
    out = []
    for d in docs:
        req = d.get("request") or {}
        out.append(
            Exchange(
                str(d.get("label", "")),
                str(d.get("rpc", "")),
                str(req.get("method", "")),
                str(req.get("path", "")),
                dict(req.get("query") or {}),
                req.get("body"),
                int(d.get("http_status") or 0),
                d.get("body"),
            )
        )
    return out
