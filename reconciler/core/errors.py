"""Error types. Every error a user can cause is a ReconcilerError; `cli.main` is the only place
that turns them into one line on stderr and an exit code (1; `ApplyDeferred`: 3).

Errors carry data (not only a message) so that `--json` output and tests can inspect them. No
error's text may contain a PAT: the client redacts before raising.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class ReconcilerError(Exception):
    """Base class: something the user can fix. `str(err)` is the one line shown to them.

    `exit_code` is the CLI's exit code for it (`core.exitcodes`), and `apply_result` the word
    `apply --json`'s summary event gives it (`apply.events.RESULTS`); subclasses override them."""

    exit_code: int = 1
    apply_result: str = "failed"


@dataclass(frozen=True, order=True)
class Problem:
    """One problem found in a manifest, located at `file:line:col` (1-based)."""

    file: str
    line: int
    column: int
    message: str
    path: str = ""  # JSON-pointer-like path into the document, e.g. "/models/2/thresholds/cat"

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"

    def as_dict(self) -> dict[str, object]:
        return {"file": self.file, "line": self.line, "column": self.column, "path": self.path, "message": self.message}


class ManifestError(ReconcilerError):
    """A manifest (or several) failed to load. Holds every problem found, not only the first."""

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class PlanError(ReconcilerError):
    """A plan cannot be made or a saved plan cannot be used (e.g. the live app changed since)."""


class StalePlan(PlanError):
    """A saved plan whose live app changed since it was made: make a new plan."""

    apply_result = "stale_plan"


@dataclass
class ApiError(ReconcilerError):
    """The Clarifai API answered with a non-success status, or could not be reached.

    `code` is the Clarifai status code (0 when there was no parsable answer), `http_status` the HTTP
    status (0 when the connection failed)."""

    message: str
    code: int = 0
    http_status: int = 0
    description: str = ""
    req_id: str = ""
    method: str = ""
    path: str = ""
    details: dict[str, object] = field(default_factory=dict)
    #: the outcome words (`api.status.OUTCOME_WORDS`: "duplicate", "does not exist", ...) the
    #: server's own text held, found BEFORE the PAT was redacted from it: redaction must never
    #: change what apply recognises ("duplicate" with a PAT "a" masked is "duplic***te"). None
    #: when not computed (an ApiError built by hand): then description and details are read.
    said: frozenset[str] | None = None

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class ApplyError(ReconcilerError):
    """Apply stopped part-way. Says what was done and what was not; re-running apply converges."""

    def __init__(self, message: str, done: list[str] | None = None, not_done: list[str] | None = None, writes: int = 0):
        self.done = list(done or [])
        self.not_done = list(not_done or [])
        self.writes = writes  # write calls made before it stopped
        super().__init__(message)


class ApplyDeferred(ApplyError):
    """Apply did everything it could, but some actions wait for a trainable model that cannot
    train yet (no labelled inputs): they are left for a later apply. Not a failure of the apply
    itself, so the CLI gives it its own exit code (3, `core.exitcodes.EXIT_DEFERRED`)."""

    exit_code = 3
    apply_result = "deferred"


class LeaseHeld(ReconcilerError):
    """Another apply holds the app's lease (`apply/lease.py`). `holder` is the lease record as a
    dict (lease_id, holder, host, pid, operation, created, expires, ...), for `--json` output."""

    def __init__(self, message: str, holder: dict[str, object] | None = None):
        self.holder = dict(holder or {})
        super().__init__(message)


class LeaseLost(ReconcilerError):
    """The app lease this apply held expired or was taken over while it ran: nothing more may be
    written. The applier stops as on any failure ("N of M actions were applied")."""
