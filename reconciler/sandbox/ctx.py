"""The per-request context handlers receive, and the access rules every handler goes through.

Contract: a handler is ``fn(ctx: Ctx) -> dict`` returning the response payload without `status`
(the app adds it), or raising `wire.Fail`. `ctx.tx` is the request's one open transaction.
Access: a PAT's user reads and writes its own apps; any PAT reads the public `clarifai/main` app;
a collaborator of an app (PostCollaborators) reads it and labels and reviews its tasks (the
handlers that allow it pass `collaborator=True`); every other access is refused with
CONN_INSUFFICIENT_SCOPES (HTTP 403). An app-specific API key
(`key_app` set) reaches only its one app; it may still *refer* to clarifai/main (a workflow node
naming a public model, a relation to a public concept), but not read clarifai/main's routes.
Source: docs.clarifai.com/control/authentication/pat ("An API Key only allows you to access
resources scoped to the app defined by that key ... but not Clarifai's or other public
resources"), and Clarifai/clarifai-python-grpc tests/client/test_workflow_crud.py, which posts a
workflow whose nodes are public models with the app key (`metadata()`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reconciler.core.idrules import MAIN_APP, MAIN_USER
from reconciler.sandbox.store import Tx
from reconciler.sandbox.wire import CONN_DOES_NOT_EXIST, CONN_INSUFFICIENT_SCOPES, Fail


@dataclass
class Ctx:
    tx: Tx
    key_user: str
    params: dict[str, str]
    body: dict[str, Any]
    query: dict[str, list[str]]
    now: float
    req_id: str
    training_delay_s: float = 0.5
    code: int = 10000  # a handler may set MIXED_STATUS
    extra: dict[str, Any] = field(default_factory=dict)
    key_app: str | None = None  # the app an app-specific API key is bound to; None for a PAT
    quirks: frozenset[str] = frozenset()  # the pessimistic readings that are on (quirks.py)

    @property
    def user_id(self) -> str:
        u = self.params.get("user_app_id.user_id", "me")
        return self.key_user if u == "me" else u

    @property
    def app_id(self) -> str:
        return self.params.get("user_app_id.app_id", "")

    def check_user(
        self, user_id: str, app_id: str | None, *, write: bool, reference: bool = False, collaborator: bool = False
    ) -> None:
        """`collaborator`: a write a collaborator of the app may make (labelling and reviewing
        its tasks); collaborators may read the app's every route."""
        main_read = user_id == MAIN_USER and app_id in (None, MAIN_APP) and not write
        if self.key_app is not None:  # an app-specific key: its own app, and references to main
            if (user_id, app_id) == (self.key_user, self.key_app) or (main_read and reference):
                return
        elif user_id == self.key_user or main_read:
            return
        elif app_id and (collaborator or not write) and not reference and self.is_collaborator(user_id, app_id):
            return
        what = f"app {user_id}/{app_id}" if app_id else f"user {user_id}"
        raise Fail(CONN_INSUFFICIENT_SCOPES, f"the key may not {'modify' if write else 'read'} {what}")

    def is_collaborator(self, user_id: str, app_id: str) -> bool:
        """Whether the key's user is a collaborator of `user_id`'s app `app_id` (PostCollaborators)."""
        return any((c.get("user") or {}).get("id") == self.key_user for c in self.tx.list(user_id, app_id, "collaborator"))

    def app(self, *, write: bool = False, collaborator: bool = False) -> dict[str, Any]:
        """The app addressed by the path, after the access check; CONN_DOES_NOT_EXIST if absent."""
        self.check_user(self.user_id, self.app_id, write=write, collaborator=collaborator)
        doc = self.tx.get(self.user_id, self.app_id, "app", self.app_id)
        if doc is None:
            raise Fail(CONN_DOES_NOT_EXIST, f"app {self.user_id}/{self.app_id} does not exist")
        return doc

    def readable_app(self, user_id: str, app_id: str) -> bool:
        """Whether a reference to another app (e.g. a workflow node's clarifai/main model) may be
        followed with this key; no exception, the caller picks the error."""
        try:
            self.check_user(user_id, app_id, write=False, reference=True)
        except Fail:
            return False
        return self.tx.get(user_id, app_id, "app", app_id) is not None


def public(doc: dict[str, Any]) -> dict[str, Any]:
    """A stored document without its private ("_"-prefixed) bookkeeping keys."""
    return {k: v for k, v in doc.items() if not k.startswith("_")}
