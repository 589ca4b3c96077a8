"""Shared harness for end-to-end tests: a fresh sandbox, a client on it (in process, through
the client's raw-path WSGI transport), and the pipeline load → read live → plan → apply, with the sandbox's
request log to count calls."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any


from reconciler.apply import apply_plan
from reconciler.client import Client, sandbox_transport
from reconciler.live import fingerprint, read_live
from reconciler.manifest import load, load_text
from reconciler.plan import Plan, make_plan
from reconciler.sandbox.app import DEFAULT_KEY, DEFAULT_USER, Sandbox
from reconciler.state import State

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
#: A recognisable PAT: the Harness authenticates with it (the sandbox accepts it beside its default
#: key), and conftest fails any test whose captured output or failure text shows it.
SECRET_PAT = "pat-RECOGNISABLE-5ecret-0d5c8e1f9a7b4c2e"


class Harness:
    def __init__(self, tmp_path: Path, **sandbox_kw: Any):
        sandbox_kw.setdefault("training_delay_s", 0)
        sandbox_kw.setdefault("keys", {DEFAULT_KEY: DEFAULT_USER, SECRET_PAT: DEFAULT_USER})
        self.sandbox = Sandbox(str(tmp_path / "sandbox.sqlite"), **sandbox_kw)
        self.client = self.make_client()

    def make_client(self, **kw: Any) -> Client:
        kw.setdefault("rate_limit", 0)
        return Client("http://sandbox.local", SECRET_PAT, user_id=DEFAULT_USER,
                      transport=sandbox_transport(self.sandbox), **kw)

    # --- pipeline ---
    @staticmethod
    def desired(manifest: str | Path, text: str | None = None) -> State:
        state = load_text(text, str(manifest)) if text is not None else load(str(manifest))
        return state if state.user_id else dataclasses.replace(state, user_id=DEFAULT_USER)

    def live(self, app_id: str, desired: State | None = None) -> State | None:
        want = {m.id for m in desired.models} if desired else None
        return read_live(self.client, app_id, user_id=DEFAULT_USER, want_models=want)

    def plan(self, desired: State, **kw: Any) -> Plan:
        live = self.live(desired.app.id, desired)
        return make_plan(desired, live, live_fingerprint=fingerprint(live) if live else "", **kw)

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
