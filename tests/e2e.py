"""Shared harness for end-to-end tests: a fresh sandbox, a client on it (in process, through
the client's raw-path WSGI transport), and the pipeline load → read live → plan → apply, with the sandbox's
request log to count calls."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from reconciler.api.client import Client
from reconciler.api.live import read_live
from reconciler.api.transport import sandbox_transport
from reconciler.apply.scheduler import apply_plan
from reconciler.core.state import State
from reconciler.manifest.load import load, load_text
from reconciler.planning.actions import Plan
from reconciler.planning.pipeline import plan_app, read_app
from reconciler.sandbox.app import DEFAULT_KEY, DEFAULT_USER, Sandbox

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
#: A recognisable PAT: the Harness authenticates with it (the sandbox accepts it beside its default
#: key), and conftest fails any test whose captured output or failure text shows it.
SECRET_PAT = "pat-RECOGNISABLE-5ecret-0d5c8e1f9a7b4c2e"
#: People the Harness's sandbox knows besides its owner (a key each): the collaborators, workers and
#: reviewers of the tests' manifests (PostCollaborators takes only users the sandbox knows).
PEOPLE = {"key-alice": "alice", "key-bob": "bob", "key-carol": "carol"}


class Harness:
    def __init__(self, tmp_path: Path, **sandbox_kw: Any):
        sandbox_kw.setdefault("training_delay_s", 0)
        sandbox_kw.setdefault("keys", {DEFAULT_KEY: DEFAULT_USER, SECRET_PAT: DEFAULT_USER, **PEOPLE})
        self.sandbox = Sandbox(str(tmp_path / "sandbox.sqlite"), **sandbox_kw)
        self.client = self.make_client()

    def make_client(self, **kw: Any) -> Client:
        kw.setdefault("rate_limit", 0)
        return Client("http://sandbox.local", SECRET_PAT, user_id=DEFAULT_USER,
                      transport=sandbox_transport(self.sandbox), **kw)

    def client_as(self, person: str, **kw: Any) -> Client:
        """A client with `person`'s key (one of `PEOPLE`): a collaborator working on the owner's app."""
        key = next(k for k, u in PEOPLE.items() if u == person)
        kw.setdefault("rate_limit", 0)
        return Client("http://sandbox.local", key, user_id=DEFAULT_USER,
                      transport=sandbox_transport(self.sandbox), **kw)

    # --- pipeline ---
    @staticmethod
    def desired(manifest: str | Path, text: str | None = None) -> State:
        state = load_text(text, str(manifest)) if text is not None else load(str(manifest))
        return state if state.user_id else dataclasses.replace(state, user_id=DEFAULT_USER)

    def live(self, app_id: str, desired: State | None = None) -> State | None:
        """The live app as a plan for `desired` reads it, or, with no `desired`, all of it."""
        if desired is not None:
            return read_app(self.client, desired)
        return read_live(self.client, app_id, user_id=DEFAULT_USER)

    def plan(self, desired: State, **kw: Any) -> Plan:
        """What `reconciler plan` would make of `desired` (`pipeline.plan_app`; kw: targets)."""
        return plan_app(self.client, desired, **kw)

    def apply(self, desired: State, client: Client | None = None, **kw: Any) -> Plan:
        plan = self.plan(desired)
        apply_plan(client or self.client, plan, poll_s=0.01, **kw)
        return plan

    # --- request log ---
    def log(self) -> list[tuple[str, str, int]]:
        return [(e.method, e.path, e.status) for e in self.sandbox.request_log]

    def writes(self) -> list[tuple[str, str, int]]:
        return [e for e in self.log() if e[0] != "GET"]

    def clear_log(self) -> None:
        self.sandbox.request_log.clear()

    # --- raw API helpers for out-of-band changes ---
    def base(self, app_id: str) -> str:
        return f"/v2/users/{DEFAULT_USER}/apps/{app_id}"


# --- labelled inputs for trainable models ------------------------------------------------------------
# On the real API (and now in the sandbox) a trainable model's version trains only when the app has
# inputs labelled with its concepts. Most tests apply the auto-annotation example, whose classifier
# trains, and are about something else; `conftest.py` gives them a user who labelled inputs first:
# just before the sandbox handles a PostModelVersions, `seed_training_labels` stores one positive
# input per concept of the posted version that has none yet. It writes through the store, not the
# API, so request logs, request numbering (fault injection) and write counts stay what the test
# expects. Tests marked `@pytest.mark.unlabelled` get no seeding and see the real failure codes.

SEED_IMAGE_URL = "https://samples.clarifai.com/metro-north.jpg"
#: Switched off by conftest for tests marked `unlabelled`.
SEED_LABELS = True


def seed_training_labels(sandbox: Sandbox, environ: dict[str, Any]) -> None:
    """If `environ` is a PostModelVersions of a trainable model, store a labelled input for each of
    the version's concepts that has no positive label in that app yet (ids ``seed-<concept>``)."""
    import io
    import json as _json
    import re

    from reconciler.sandbox.h_models import _positive
    from reconciler.sandbox.wire import INPUT_SUCCESS, rfc3339

    if str(environ.get("REQUEST_METHOD", "")).upper() != "POST":
        return
    hit = re.fullmatch(r"/v2/users/([^/]+)/apps/([^/]+)/models/([^/]+)/versions/?", str(environ.get("PATH_INFO", "")))
    if hit is None:
        return
    user, app, model_id = hit.group(1), hit.group(2), hit.group(3)
    if user == "me":
        key = str(environ.get("HTTP_AUTHORIZATION", "")).removeprefix("Key ").strip()
        user = sandbox.keys.get(key, user)
    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(raw)  # the sandbox reads the body again
    try:
        body = _json.loads(raw or b"{}")
        concepts = {c["id"] for v in body.get("model_versions") or []
                    for c in ((v.get("output_info") or {}).get("data") or {}).get("concepts") or []}
    except (ValueError, TypeError, KeyError, AttributeError):
        return  # not ours to judge: the sandbox answers a bad body itself
    import time as _time

    from reconciler.sandbox.seed import TYPES_BY_ID

    with sandbox.store.transaction() as tx:
        model = tx.get(user, app, "model", model_id)
        if model is None or not TYPES_BY_ID.get(model.get("model_type_id"), {}).get("trainable"):
            return  # an operator's version (PostModels makes none: every model gets one this way)
        have = {c["id"] for i in tx.list(user, app, "input") for c in (i.get("data") or {}).get("concepts") or []
                if _positive(c)}
        ts = rfc3339(_time.time())
        for cid in sorted(concepts - have):
            tx.insert(user, app, "input", f"seed-{cid}", {
                "id": f"seed-{cid}", "created_at": ts, "modified_at": ts,
                "data": {"image": {"url": SEED_IMAGE_URL}, "concepts": [{"id": cid, "value": 1.0}]},
                "status": {"code": INPUT_SUCCESS, "description": "Input image modification success"}})


def versions_by_use(client: Any, base: str, model_id: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(versions that trained or need no training, never-trained ones). A trainable model keeps
    the MODEL_UNTRAINED version PostModels made beside the one PostModelVersions trained."""
    versions = client.list_all(f"{base}/models/{model_id}/versions", "model_versions")
    untrained = [v for v in versions if (v.get("status") or {}).get("code") == 21102]
    return [v for v in versions if v not in untrained], untrained


def labelled_before_training(sandbox: Sandbox) -> Any:
    """A WSGI app: `sandbox`, with `seed_training_labels` before each request (for code outside
    pytest, e.g. the benchmarks, where conftest's session-wide seeding does not run)."""
    def app(environ: dict[str, Any], start_response: Any) -> Any:
        seed_training_labels(sandbox, environ)
        return sandbox(environ, start_response)
    return app
