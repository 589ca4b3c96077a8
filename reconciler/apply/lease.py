"""The app lease: at most one apply writes to an app at a time.

Clarifai has no conditional update (no ETag, no compare-and-set), so the lease rests on the one
operation its server makes atomic: creating a resource with a client-chosen id (a second create
of the same id is refused). The resource is a **dataset** of the app with the fixed id
`reconciler-lease`:

- A second PostDatasets with an existing id is refused, and atomically: "Add datasets to an app.
  The process is atomic, i.e. either all or no datasets are added. If there is an error for one
  dataset, the process will stop, revert the transaction and return the error"
  (Clarifai/clarifai-python-grpc `clarifai_grpc/grpc/api/service_pb2_grpc.py`, PostDatasets;
  Clarifai/clarifai-nodejs-grpc `proto/clarifai/api/service.proto`). Dataset ids are chosen by the
  client and unique in the app: "you can initiate the creation of a dataset by specifying a unique
  dataset ID" (Clarifai/docs, SDK page "Managing Datasets"); the SDK's `App.create_dataset(dataset_id)`
  raises on any non-SUCCESS answer (Clarifai/clarifai-python `clarifai/client/app.py`); an object
  whose id is taken is DATABASE_DUPLICATE_KEY 40010, "Object has a duplicate ID; another object
  with same ID already exist" (Clarifai/docs `docs/resources/api-overview/status-codes.md`). No
  published test posts one dataset id twice (Clarifai/clarifai-python-grpc's only dataset test,
  `tests/client/test_dataset_version_export.py`, makes a fresh uuid id), so the code of that
  answer is [UNVERIFIED]: this module never branches on it. After ANY failed create it reads the
  record back and decides from what is there (ours, someone else's, nothing).
  `tests/test_live_acceptance.py::test_dataset_create_twice_is_refused` (`-m live`) checks the
  refusal, and the metadata merge renewals rely on, on the real API.
- A dataset carries `description` and a `metadata` Struct (clarifai-grpc `resources.proto`
  message Dataset), which hold who holds the lease; PatchDatasets `merge` updates the metadata
  (Clarifai/docs `docs/api-guide/data/datasets/dataset-basics.md`,
  `docs/api-guide/advanced-topics/patching.md`), DeleteDatasets `{dataset_ids}` removes it
  (Clarifai/clarifai-python-grpc `tests/client/test_dataset_version_export.py`).
- A dataset has no side effect on what the tool manages: no inference, no training, never read by
  `api/live.read_live` (which lists concepts, relations, models and workflows only), so the lease
  never shows in plan, export or drift. The other candidates fail a requirement: concepts cannot be
  deleted (Clarifai/docs `api-guide/concepts/create-get-update.md`), so a concept lease could never
  be released; models and workflows are what the tool plans, are listed by every plan, and a
  workflow needs a model node; an API key carries no metadata and is a credential.

Protocol (after Terraform's state lock, hashicorp/terraform `internal/states/statemgr/locker.go`:
LockInfo ID, Operation, Who, Version, Created, Info; `LockWithContext` retries 1 s doubling to 16 s):

- **Acquire**: PostDatasets `reconciler-lease` with our record (`LeaseRecord`: a fresh uuid
  `lease_id`, holder, host, pid, operation, created, expires = now + ttl). Created: held. Any
  error: GetDataset. Ours (the create's answer was lost): held. Absent (released meanwhile): try
  again. Someone else's and not expired: `LeaseHeld` at once (`lock_timeout_s` 0), or wait (1 s
  doubling to 16 s, a line every 30 s) until `lock_timeout_s`. Expired: take it over (below).
- **Expired** (client-go's skew-tolerant rule, kubernetes/client-go
  `tools/leaderelection/leaderelection.go`): `expires + skew_s` is past by our wall clock, or the
  same record (lease id, renewal count) has been seen unchanged for `ttl_s + skew_s` of our own
  monotonic clock.
- **Renew** every ttl/3 (a daemon thread): GetDataset (another lease id: lost), then PatchDatasets
  `merge` of one metadata key, `RENEW_KEY: {expires, renewed}`, which carries no identity: a
  renewal racing a takeover can only extend the new holder's expiry, never make two holders. The
  holder's own deadline is the send time of its last successful renewal + 3/4 ttl (monotonic),
  before any contender's `expires + skew`; past it `check()` raises `LeaseLost` and the holder
  writes nothing more, not even a release.
- **Take over** an expired record N: a plain delete-then-create would let two contenders that both
  saw N expired delete each other's fresh lease. So the contender first creates the breaker
  `reconciler-steal-<N's lease id[:12]>` -- again an atomic create, which exactly one contender
  wins --, reads the lease again (no longer N: someone else replaced it; stop), deletes N, creates
  its own record, and deletes the breaker. A breaker left by a contender that died is itself
  expired after its ttl and removed the same way (one level deep; past that the message names
  `reconciler unlock`).
- **Release** (in a `finally`, so also on failure, Ctrl-C and SIGTERM): stop renewing; GetDataset;
  DeleteDatasets when the record is still ours; a line when it is not. A holder killed by SIGKILL
  leaves its record, which expires.
- **Unlock** (`commands/unlock.py`, after Terraform's `force-unlock LOCK_ID`): `read_lease` and
  `break_lease`, which deletes the record only when its lease id is the one given.

The lease needs the app to exist (a dataset lives in an app): `AppMissing` says it does not; the
apply creates the app first (`apply/locked.py`). Nothing here prints: lines go to `progress`.
"""

from __future__ import annotations

import getpass
import math
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from reconciler import __version__
from reconciler.api.client import Client
from reconciler.api.live import app_exists
from reconciler.api.transport import api_path
from reconciler.apply.base import _is_duplicate, _is_not_found
from reconciler.apply.events import Emit
from reconciler.core.errors import ApiError, LeaseHeld, LeaseLost, ReconcilerError
from reconciler.core.idrules import LEASE_DATASET
from reconciler.core.idrules import LEASE_STEAL_PREFIX as STEAL_PREFIX
from reconciler.core.status_codes import BY_NAME

__all__ = [
    "LEASE_DATASET",
    "STEAL_PREFIX",
    "AppMissing",
    "Lease",
    "LeaseOptions",
    "LeaseRecord",
    "break_lease",
    "check_lease_id",
    "describe_duration",
    "read_lease",
]

# The dataset whose existence is the lease is `LEASE_DATASET`; breakers are
# `STEAL_PREFIX + <the replaced record's lease id>[:12]` (29 characters). Both are said once in
# `core/idrules.py`, which the live read and the manifest checks use to leave them alone.
#: The metadata key holding the record's identity (never changed after the create).
LEASE_KEY = "clarifai-reconciler-lease"
#: The metadata key renewals write: {"expires", "renewed"} (no identity: see the module docstring).
RENEW_KEY = "clarifai-reconciler-lease-renewal"
DESCRIPTION = (
    "Held by clarifai-reconciler while an apply runs on this app; do not delete it by hand: "
    "if that apply is gone, use `reconciler unlock`"
)
DEFAULT_TTL_S = 120.0
DEFAULT_SKEW_S = 60.0
#: Waiting: first pause, longest pause (Terraform's LockWithContext), and a line at most this often.
FIRST_WAIT_S, MAX_WAIT_S, WAIT_REPORT_EVERY_S = 1.0, 16.0, 30.0
CONN_INSUFFICIENT_SCOPES = BY_NAME["CONN_INSUFFICIENT_SCOPES"]

Progress = Callable[[str], None]


class AppMissing(ReconcilerError):
    """The app does not exist, so it has no lease to take (create it first)."""


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(value: Any) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00")).timestamp()
    except ValueError:
        return None


def describe_duration(seconds: float) -> str:
    """30s, 10m, 1m35s, 1h30m: how `--lock-timeout` values are written back in messages."""
    total = int(round(seconds))
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return "".join(f"{n}{unit}" for n, unit in ((h, "h"), (m, "m"), (s, "s")) if n) or "0s"


@dataclass(frozen=True)
class LeaseRecord:
    """One lease (or breaker) record, as its dataset carries it."""

    dataset_id: str
    lease_id: str
    holder: str
    host: str
    pid: int
    operation: str
    created: str
    expires: str
    ttl_s: float
    version: str = __version__
    renewed: int = 0
    info: str = ""

    @property
    def short_id(self) -> str:
        return self.lease_id[:8]

    def describe(self) -> str:
        """ "apply by alice on runner-7 (pid 4242) since 2026-05-02T10:11:12Z" """
        return f"{self.operation} by {self.holder} on {self.host} (pid {self.pid}) since {self.created}"

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def to_api(self) -> dict[str, Any]:
        ident = {k: v for k, v in asdict(self).items() if k != "dataset_id"}
        return {"id": self.dataset_id, "description": DESCRIPTION, "metadata": {LEASE_KEY: ident}}

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> LeaseRecord:
        """The record a dataset holds; ReconcilerError when it is not one of ours (a dataset that
        happens to have the lease's id is never taken for a lease, nor deleted)."""
        dataset_id = str(raw.get("id") or "")
        meta = raw.get("metadata") if isinstance(raw.get("metadata"), dict) else {}
        ident = meta.get(LEASE_KEY) if isinstance(meta, dict) else None
        renewal = meta.get(RENEW_KEY) if isinstance(meta, dict) else None
        if not isinstance(ident, dict) or not isinstance(ident.get("lease_id"), str) or not ident["lease_id"]:
            raise ReconcilerError(
                f"the app has a dataset {dataset_id!r} that is not a reconciler lease (no {LEASE_KEY!r} in its "
                "metadata); rename or delete that dataset: the lease needs its id"
            )
        renewal = renewal if isinstance(renewal, dict) else {}

        def num(value: Any, default: float) -> float:
            return (
                float(value)
                if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
                else default
            )

        def txt(value: Any) -> str:
            return value if isinstance(value, str) else ""

        return cls(
            dataset_id=dataset_id,
            lease_id=ident["lease_id"],
            holder=txt(ident.get("holder")) or "someone",
            host=txt(ident.get("host")) or "an unknown host",
            pid=int(num(ident.get("pid"), 0)),
            operation=txt(ident.get("operation")) or "apply",
            created=txt(ident.get("created")),
            expires=txt(renewal.get("expires")) or txt(ident.get("expires")),
            ttl_s=min(max(num(ident.get("ttl_s"), DEFAULT_TTL_S), 1.0), 24 * 3600.0),
            version=txt(ident.get("version")),
            renewed=int(num(renewal.get("renewed"), num(ident.get("renewed"), 0))),
            info=txt(ident.get("info")),
        )


def holder_name(environ: Mapping[str, str]) -> str:
    """Who holds a lease: RECONCILER_LEASE_HOLDER, else the CI's actor (GitHub, GitLab), else the
    login name."""
    for var in ("RECONCILER_LEASE_HOLDER", "GITHUB_ACTOR", "GITLAB_USER_LOGIN"):
        if environ.get(var):
            return environ[var]
    try:
        return getpass.getuser()
    except (OSError, KeyError, ImportError):
        return "unknown"


def run_info(environ: Mapping[str, str]) -> str:
    """The CI run's URL, when there is one (GitHub Actions, GitLab CI)."""
    if environ.get("GITHUB_RUN_ID") and environ.get("GITHUB_REPOSITORY"):
        server = environ.get("GITHUB_SERVER_URL") or "https://github.com"
        return f"{server}/{environ['GITHUB_REPOSITORY']}/actions/runs/{environ['GITHUB_RUN_ID']}"
    return environ.get("CI_JOB_URL", "")


@dataclass(frozen=True)
class LeaseOptions:
    """How long a lease lives unrenewed, how much clock skew to allow between machines, how long
    to wait for a held lease (0: fail at once), and the clocks (injectable for tests)."""

    ttl_s: float = DEFAULT_TTL_S
    skew_s: float = DEFAULT_SKEW_S
    lock_timeout_s: float = 0.0
    operation: str = "apply"
    holder: str = "unknown"
    info: str = ""
    wall: Callable[[], float] = field(default=time.time, repr=False)
    monotonic: Callable[[], float] = field(default=time.monotonic, repr=False)
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **kw: Any) -> LeaseOptions:
        """Options with RECONCILER_LEASE_TTL / RECONCILER_LEASE_SKEW (seconds) and the holder's
        identity from the environment; `kw` overrides."""

        def seconds(name: str, default: float) -> float:
            text = environ.get(name, "")
            try:
                value = float(text) if text else default
            except ValueError:
                raise ReconcilerError(f"{name}={text!r} is not a number of seconds") from None
            if not math.isfinite(value) or not 0 < value <= 24 * 3600:
                raise ReconcilerError(f"{name}={text!r}: give seconds, more than 0 and at most 86400")
            return value

        base = cls(
            ttl_s=seconds("RECONCILER_LEASE_TTL", DEFAULT_TTL_S),
            skew_s=seconds("RECONCILER_LEASE_SKEW", DEFAULT_SKEW_S),
            holder=holder_name(environ),
            info=run_info(environ),
        )
        return replace(base, **kw)


# --- reading and writing records --------------------------------------------------------------


def _datasets_path(client: Client, app_id: str, user_id: str | None) -> str:
    return client.app_path(app_id, user_id) + api_path("datasets")


def _get(client: Client, app_id: str, user_id: str | None, dataset_id: str) -> LeaseRecord | None:
    """The record `dataset_id` holds, or None when the app has no such dataset."""
    path = _datasets_path(client, app_id, user_id) + api_path(dataset_id)
    try:
        raw = client.get(path).get("dataset")
    except ApiError as err:
        if _is_not_found(err):
            return None
        raise
    if not isinstance(raw, dict):
        raise ApiError(f"GET {path}: unexpected response shape: 'dataset' is not a JSON object", method="GET", path=path)
    return LeaseRecord.from_api(raw)


def _delete(client: Client, app_id: str, user_id: str | None, dataset_id: str) -> None:
    """DeleteDatasets; a record already gone counts as deleted."""
    try:
        client.delete(_datasets_path(client, app_id, user_id), {"dataset_ids": [dataset_id]})
    except ApiError as err:
        if not _is_not_found(err):
            raise


def read_lease(client: Client, app_id: str, user_id: str | None = None) -> LeaseRecord | None:
    """The lease the app holds now, or None (`reconciler unlock`)."""
    try:
        return _get(client, app_id, user_id, LEASE_DATASET)
    except ApiError as err:
        _scope_error(err)
        raise


def break_lease(client: Client, app_id: str, user_id: str | None, lease_id: str) -> LeaseRecord:
    """Delete the app's lease if its id is `lease_id` (the full id, or its first 8+ characters),
    and the breakers of it; the record broken. ReconcilerError (nothing changed) otherwise."""
    current = read_lease(client, app_id, user_id)
    if current is None:
        raise ReconcilerError(f"app {app_id} is not locked; nothing was changed")
    check_lease_id(current, lease_id)
    _delete(client, app_id, user_id, LEASE_DATASET)
    _delete(client, app_id, user_id, STEAL_PREFIX + current.lease_id[:12])
    return current


def check_lease_id(current: LeaseRecord, given: str) -> None:
    """Refuse (nothing changed) a lease id that is not the held lease's: its full id, or its
    first 8 or more characters (what messages show)."""
    want, got = current.lease_id.lower(), given.strip().lower()
    if not (got == want or (len(got) >= 8 and want.startswith(got))):
        raise ReconcilerError(f"lease id {given!r} does not match the lease held ({current.short_id}); nothing was changed")


def _scope_error(err: ApiError) -> None:
    if err.code == CONN_INSUFFICIENT_SCOPES or err.http_status == 403:
        raise ReconcilerError(
            f"cannot take the app lease: the key lacks dataset permissions ({err.description or 'CONN_INSUFFICIENT_SCOPES'} "
            f"{err.code or err.http_status}); grant it Datasets read and write, or pass --no-lock (not recommended)"
        ) from None


# --- the lease ---------------------------------------------------------------------------------


class Lease:
    """The lease on one app for one apply (see the module docstring). Use `acquire()`, then
    `check()` before each write, then `release()` in a `finally`; or `with lease:`."""

    def __init__(
        self,
        client: Client,
        app_id: str,
        user_id: str | None = None,
        *,
        options: LeaseOptions | None = None,
        progress: Progress | None = None,
        unlock_hint: str = "reconciler unlock MANIFEST",
        events: Emit | None = None,
    ) -> None:
        self.client, self.app_id, self.user_id = client, app_id, user_id
        self.options = options or LeaseOptions()
        self.progress = progress or (lambda _line: None)
        #: `apply --json`'s `lease_*` events (`apply.events.LEASE_EVENTS`), each with the record
        self.emit: Emit | None = events
        self.unlock_hint = unlock_hint
        self.record: LeaseRecord | None = None  # ours, while held
        self._deadline = 0.0  # monotonic: no write after it
        self._lost: str | None = None
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None
        self._lock = threading.Lock()
        #: (dataset id, lease id, renewed, expires) -> when this contender first saw it (monotonic)
        self._seen: dict[tuple[str, str, int, str], float] = {}

    # --- public ---------------------------------------------------------------------------------
    def __enter__(self) -> Lease:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    @property
    def held(self) -> bool:
        return self.record is not None and self._lost is None

    def acquire(self) -> LeaseRecord:
        """Hold the app's lease, waiting up to `options.lock_timeout_s` for another holder."""
        opts = self.options
        started = opts.monotonic()
        pause, reported, churn = FIRST_WAIT_S, None, 0
        while True:
            try:
                holder = self._attempt()
            except ApiError as err:
                _scope_error(err)
                raise
            if holder is None:
                assert self.record is not None
                self._event("lease_acquired", self.record)
                self._start_renewing()
                return self.record
            if holder == "again":  # released between our create and our read: at once, a few times
                churn += 1
                if churn <= 3:
                    continue
                holder = self._get(LEASE_DATASET)
                if holder is None:
                    holder = LeaseRecord(LEASE_DATASET, "?" * 8, "another apply", "?", 0, "apply", "", "", opts.ttl_s)
            assert isinstance(holder, LeaseRecord)
            churn = 0
            waited = opts.monotonic() - started
            if waited >= opts.lock_timeout_s:
                raise LeaseHeld(self._held_message(holder, timed_out=opts.lock_timeout_s > 0), holder.as_dict())
            now = opts.monotonic()
            if reported is None or now - reported >= WAIT_REPORT_EVERY_S:
                self.progress(f"waiting for the lease on app {self.app_id} ({holder.describe()}, lease {holder.short_id})")
                self._event("lease_waiting", holder)
                reported = now
            opts.sleep(max(0.0, min(pause, opts.lock_timeout_s - waited)))
            pause = min(pause * 2, MAX_WAIT_S)

    def check(self) -> None:
        """Raise `LeaseLost` once the lease is lost or past its deadline: write nothing more."""
        if self.record is None:
            return
        if self._lost is None and self.options.monotonic() > self._deadline:
            self._lose("it was not renewed in time")
        if self._lost is not None:
            raise LeaseLost(f"the lease on app {self.app_id} was lost ({self._lost})")

    def release(self) -> None:
        """Stop renewing and delete our record if it is still ours; never raises for the API."""
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
            self._renewer = None
        mine, self.record = self.record, None
        if mine is None:
            return
        if self._lost is not None or self.options.monotonic() > self._deadline:
            self.progress(f"  the lease on app {self.app_id} was lost ({self._lost or 'not renewed in time'}); not released")
            return
        try:
            current = self._get(LEASE_DATASET)
            if current is not None and current.lease_id == mine.lease_id:
                _delete(self.client, self.app_id, self.user_id, LEASE_DATASET)
                self._event("lease_released", mine)
            elif current is not None:
                self.progress(f"  the lease on app {self.app_id} was taken over by {current.describe()}; not released")
        except (ApiError, ReconcilerError) as err:
            self.progress(f"  could not release the lease on app {self.app_id} ({err}); it expires at {mine.expires}")

    # --- acquiring ------------------------------------------------------------------------------
    def _new_record(self, dataset_id: str, *, operation: str | None = None) -> LeaseRecord:
        opts = self.options
        now = opts.wall()
        return LeaseRecord(
            dataset_id=dataset_id,
            lease_id=uuid.uuid4().hex,
            holder=opts.holder,
            host=socket.gethostname() or "localhost",
            pid=os.getpid(),
            operation=operation or opts.operation,
            created=rfc3339(now),
            expires=rfc3339(now + opts.ttl_s),
            ttl_s=opts.ttl_s,
            info=opts.info,
        )

    def _post(self, record: LeaseRecord) -> None:
        self.client.post(_datasets_path(self.client, self.app_id, self.user_id), {"datasets": [record.to_api()]})

    def _get(self, dataset_id: str) -> LeaseRecord | None:
        return _get(self.client, self.app_id, self.user_id, dataset_id)

    def _attempt(self) -> LeaseRecord | str | None:
        """One try: None when we hold the lease now, "again" when it was released under us, else
        the record of whoever holds it."""
        mine = self._new_record(LEASE_DATASET)
        sent = self.options.monotonic()
        try:
            self._post(mine)
        except ApiError as err:
            current = self._get(LEASE_DATASET)
            if current is None:
                if _is_duplicate(err):
                    return "again"
                if not app_exists(self.client, self.app_id, user_id=self.user_id):
                    raise AppMissing(f"app {self.app_id} does not exist") from None
                if _is_not_found(err):
                    return "again"  # the app was created after our create was refused
                raise  # a failure that is not about the lease (the record is not there)
            if current.lease_id == mine.lease_id:  # our create committed; its answer was lost
                self._hold(mine, sent)
                return None
            if self._expired(current):
                # taken over by us; or else the record changed under us, a stale breaker was
                # cleared, or another contender is taking it over: look again at once
                return None if self._take_over(current, depth=0) else "again"
            return current
        self._hold(mine, sent)
        return None

    def _expired(self, record: LeaseRecord) -> bool:
        opts = self.options
        expires = _parse_time(record.expires)
        if expires is not None and expires + opts.skew_s < opts.wall():
            return True
        key = (record.dataset_id, record.lease_id, record.renewed, record.expires)
        first = self._seen.setdefault(key, opts.monotonic())
        return opts.monotonic() - first > record.ttl_s + opts.skew_s

    def _take_over(self, target: LeaseRecord, depth: int) -> bool:
        """Replace the expired record `target` (see the module docstring); True when we now hold
        the lease (only at depth 0: deeper calls clear a stale breaker and return False). False:
        not taken over (it changed meanwhile, or another contender is on it)."""
        steal_id = STEAL_PREFIX + target.lease_id[:12]
        breaker = self._new_record(steal_id, operation=f"take over {target.dataset_id} {target.short_id}")
        try:
            self._post(breaker)
        except ApiError:
            other = self._get(steal_id)
            if other is None:
                return False  # the other contender finished meanwhile: look again
            if other.lease_id != breaker.lease_id:  # else ours: its answer was lost; go on
                if not self._expired(other):
                    return False  # someone else is taking it over
                if depth >= 1:
                    raise ReconcilerError(
                        f"app {self.app_id}: the lease's takeover records are stale ({steal_id}); "
                        f"break the lease by hand: {self.unlock_hint} {target.short_id}"
                    ) from None
                self._take_over(other, depth + 1)  # clears the stale breaker
                return False
        try:
            current = self._get(target.dataset_id)
            if current is None or current.lease_id != target.lease_id:
                return False
            _delete(self.client, self.app_id, self.user_id, target.dataset_id)
            if depth > 0:
                return False
            mine = self._new_record(LEASE_DATASET)
            sent = self.options.monotonic()
            try:
                self._post(mine)
            except ApiError:
                got = self._get(LEASE_DATASET)
                if got is None or got.lease_id != mine.lease_id:
                    return False  # a plain acquirer came in after the delete: fine, it holds
            self._hold(mine, sent)
            self.progress(f"took over the expired lease on app {self.app_id} ({target.describe()}, lease {target.short_id})")
            self._event("lease_takeover", target)
            return True
        finally:
            try:
                _delete(self.client, self.app_id, self.user_id, steal_id)
            except ApiError:
                pass  # it expires; the next contender clears it

    def _hold(self, record: LeaseRecord, sent: float) -> None:
        self.record = record
        self._lost = None
        self._deadline = sent + self.options.ttl_s * 0.75

    def _held_message(self, holder: LeaseRecord, *, timed_out: bool) -> str:
        expires = holder.expires[11:] if len(holder.expires) > 11 else holder.expires
        what = (
            f"app {self.app_id} is still locked after --lock-timeout {describe_duration(self.options.lock_timeout_s)}"
            if timed_out
            else f"app {self.app_id} is locked"
        )
        wait = "" if timed_out else "wait with --lock-timeout 10m, or "
        return (
            f"{what}: {holder.describe()}, lease {holder.short_id}, expires {expires}; "
            f"{wait}if that apply is gone: {self.unlock_hint} {holder.short_id}"
        )

    # --- renewing -------------------------------------------------------------------------------
    def _start_renewing(self) -> None:
        self._stop.clear()
        self._renewer = threading.Thread(target=self._renew_loop, name="lease-renewer", daemon=True)
        self._renewer.start()

    def _renew_loop(self) -> None:
        interval = self.options.ttl_s / 3
        while not self._stop.wait(interval):
            try:
                self._renew_once()
            except (ApiError, ReconcilerError):
                pass  # a passing failure: the deadline decides whether the lease is lost
            if self._lost is not None:
                return
            if self.options.monotonic() > self._deadline:
                self._lose("it could not be renewed in time")
                return

    def _renew_once(self) -> None:
        mine = self.record
        if mine is None:
            return
        sent = self.options.monotonic()
        current = self._get(LEASE_DATASET)
        if current is None or current.lease_id != mine.lease_id:
            self._lose("it was deleted" if current is None else f"it was taken over by {current.describe()}")
            return
        if self._stop.is_set() or sent > self._deadline:
            return
        renewed = current.renewed + 1
        expires = rfc3339(self.options.wall() + self.options.ttl_s)
        body = {
            "datasets": [
                {
                    "id": LEASE_DATASET,
                    "metadata": {RENEW_KEY: {"expires": expires, "renewed": renewed}},
                }
            ],
            "action": "merge",
        }
        self.client.patch(_datasets_path(self.client, self.app_id, self.user_id), body)
        with self._lock:
            self._deadline = max(self._deadline, sent + self.options.ttl_s * 0.75)
        self._event("lease_renewed", replace(mine, renewed=renewed, expires=expires))

    def _event(self, kind: str, record: LeaseRecord) -> None:
        if self.emit is not None:
            self.emit(kind, lease=record.as_dict())

    def _lose(self, why: str) -> None:
        with self._lock:
            if self._lost is None:
                self._lost = why
                if self.record is not None:
                    self._event("lease_lost", self.record)
