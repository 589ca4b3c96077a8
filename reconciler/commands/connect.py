"""Choosing the endpoint: flags and environment -> a `Client`, the embedded sandbox when no
credentials are set (opening the sandbox belongs here, with the commands, not in the API client).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TextIO
from urllib.parse import urlsplit

from reconciler.api.client import Client
from reconciler.api.endpoint import DEFAULT_API_BASE, check_api_base, sandbox_endpoint
from reconciler.api.secrets import check_pat, check_pat_length, read_pat_file, remember_secret
from reconciler.api.transport import sandbox_transport
from reconciler.core.errors import ReconcilerError
from reconciler.core.printable import printable


def _is_loopback(base: str) -> bool:
    host = urlsplit(base).hostname or ""
    return host in ("localhost", "::1") or host.startswith("127.")


#: Where the embedded sandbox keeps its data inside a `.reconciler/` directory.
SANDBOX_DIR, SANDBOX_FILE = ".reconciler", "sandbox.sqlite"


def find_sandbox(start: Path | None = None) -> tuple[Path, str]:
    """Where the embedded sandbox keeps its data, and how it was found (for the note).

    ``$RECONCILER_SANDBOX_DB`` if set; else the nearest ``.reconciler/`` directory in `start` or
    one of its parents -- the way git finds ``.git`` -- so a plan run from a subfolder (or on a
    manifest kept in one) sees the same sandbox as one run at the top; else a new ``.reconciler/``
    at the project root (`project_root`: the folder of ``reconciler.yaml``, else of ``.git``), else
    in `start` itself. `start` is the manifest's folder; None means the current directory.
    """
    env = os.environ.get("RECONCILER_SANDBOX_DB")
    if env:
        return Path(env).absolute(), "set by RECONCILER_SANDBOX_DB"
    where = "the manifest" if start is not None else "the current directory"
    here = (start or Path.cwd()).absolute()
    for folder in (here, *here.parents):
        if (folder / SANDBOX_DIR).is_dir():
            how = f"the {SANDBOX_DIR}/ next to {where}" if folder == here else f"the nearest {SANDBOX_DIR}/ above {where}"
            return folder / SANDBOX_DIR / SANDBOX_FILE, how
    root = project_root(here)
    if root is not None and root != here:
        return (
            root / SANDBOX_DIR / SANDBOX_FILE,
            f"a new {SANDBOX_DIR}/ at the project root ({root}): none was found next to {where} or above it",
        )
    return (here / SANDBOX_DIR / SANDBOX_FILE, f"a new {SANDBOX_DIR}/ next to {where}: none was found there or above it")


def project_root(start: Path) -> Path | None:
    """The project's root folder at or above `start`: the folder of its `reconciler.yaml` (found as
    the project commands find it, `project.load.find_project`), else the nearest folder holding
    `.git`, else None. A new embedded sandbox is made there, so that every command run anywhere in
    one repository (plan on an example's manifest, `sandbox serve` at the top) shares one sandbox."""
    from reconciler.project.load import find_project

    found = find_project(start)
    if found is not None:
        return found.parent
    return next((folder for folder in (start, *start.parents) if (folder / ".git").exists()), None)


def sandbox_db_path(start: Path | None = None) -> Path:
    """`find_sandbox`'s path alone."""
    return find_sandbox(start)[0]


def credentials_required(flag: bool = False) -> str | None:
    """Why a missing PAT is an error rather than a reason to use the embedded sandbox, or None.

    Fail closed where a silent local sandbox could hurt: in CI (``CI`` set and non-empty, as GitHub
    Actions, GitLab CI and most others set it) a job whose PAT secret is empty (a fork, a typo)
    must fail, not plan and "apply" against a throwaway local file and exit 0.
    """
    if flag:
        return "--require-credentials is given"
    if os.environ.get("RECONCILER_REQUIRE_CREDENTIALS", "").strip() not in ("", "0"):
        return "RECONCILER_REQUIRE_CREDENTIALS is set"
    if os.environ.get("CI", "").strip():
        return "CI is set"
    return None


def connect(
    *,
    api_base: str | None = None,
    pat_file: str | None = None,
    user_id: str | None = None,
    manifest_user_id: str | None = None,
    rate_limit: float | None = None,
    debug: bool = False,
    stderr: TextIO | None = None,
    max_retries: int = 5,
    timeout: float = 30.0,
    require_credentials: bool = False,
    sandbox_from: Path | None = None,
    sandbox_db: Path | None = None,
    force_sandbox: bool = False,
    sandbox_reason: str = "--sandbox is given",
    pat_env: str = "CLARIFAI_PAT",
) -> Client:
    """A Client for the CLI.

    - PAT: `pat_file` (``--pat-file``) if given, else the environment variable `pat_env`
      (``CLARIFAI_PAT``; a project's app may name another, `project.load`).
    - Base URL: `api_base` (``--api-base``), else ``CLARIFAI_API_BASE``, else api.clarifai.com when
      a PAT is set. No PAT and no base URL: the embedded sandbox, in process, with its data in
      `sandbox_db` if given (a saved plan's own sandbox), else `find_sandbox(sandbox_from)`
      (`sandbox_from`: the manifest's folder); one line on stderr says so, names the file and
      says how it was found. Refused (one line) when `credentials_required(require_credentials)`.
    - The Client's `endpoint` names where it writes: the API base, or "local sandbox at PATH".
    - A base URL on loopback with no PAT (``reconciler sandbox serve``) uses the sandbox's default key.
    - User: `user_id` (a flag), else the manifest's ``app.user_id``, else ``CLARIFAI_USER_ID``; the
      manifest wins over the environment because it names the owner of this particular app, the
      environment only a default. Unknown: "me" in paths, which Clarifai resolves to the PAT's
      owner -- but some calls with a PAT want an explicit user id, so set one for real use.
    - Rate limit: `rate_limit` requests/s; None means 15 (Clarifai's default per-user limit). The
      embedded sandbox does not throttle (and runs in process), so it never gets a limit.
    """
    err = stderr if stderr is not None else sys.stderr
    if force_sandbox:
        if api_base or pat_file:
            other = "--api-base" if api_base else "--pat-file"
            raise ReconcilerError(f"--sandbox uses the embedded local sandbox: it cannot be combined with {other}")
        if require_credentials:
            raise ReconcilerError("--sandbox and --require-credentials contradict each other: give one")
    pat = "" if force_sandbox else (read_pat_file(pat_file) if pat_file else (os.environ.get(pat_env) or "").strip())
    if pat and not pat_file:
        check_pat(pat, f"the {pat_env} environment variable")
    if pat:
        # too short to be a PAT: refused before it is registered for masking (masking "a" would
        # rewrite every "a" printed); then registered before anything can quote it (a PAT pasted
        # into --api-base, say)
        check_pat_length(pat, f"the PAT in {pat_file}" if pat_file else f"the {pat_env} environment variable")
        remember_secret(pat)
    base = "" if force_sandbox else (api_base or os.environ.get("CLARIFAI_API_BASE") or "").strip()
    user = user_id or manifest_user_id or os.environ.get("CLARIFAI_USER_ID") or None
    trace: TextIO | None = err if debug else None

    def say(line: str) -> None:  # a retry line quotes the server's words: escaped
        print(printable(line), file=err, flush=True)

    if not pat and not base:
        from reconciler.sandbox.app import DEFAULT_KEY, DEFAULT_USER
        from reconciler.sandbox.opening import open_sandbox

        why = None if force_sandbox else credentials_required(require_credentials)
        if why:
            raise ReconcilerError(
                f"no Clarifai credentials: {pat_env} is empty and no --pat-file was "
                f"given, and {why}, so the embedded local sandbox is not used; set "
                f"{pat_env} (or --pat-file), or name a server with --api-base"
            )
        if sandbox_db is not None:
            db, how = sandbox_db.absolute(), "the saved plan's sandbox"
        else:
            db, how = find_sandbox(sandbox_from)
        try:
            db.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ReconcilerError(f"cannot create {db.parent} for the embedded sandbox: {exc.strerror}") from None
        why_local = sandbox_reason if force_sandbox else f"{pat_env} and --api-base are not set"
        print(f"note: {why_local}: using the embedded local sandbox (data in {printable(db)}; {how})", file=err)
        transport = sandbox_transport(open_sandbox(str(db)))
        return Client(
            "http://sandbox.local",
            DEFAULT_KEY,
            user_id=user or DEFAULT_USER,
            transport=transport,
            rate_limit=0,
            max_retries=max_retries,
            timeout=timeout,
            debug=trace,
            label=f"the embedded sandbox ({db})",
            endpoint=sandbox_endpoint(db),
            on_retry=say,
        )
    source = "--api-base" if api_base else "CLARIFAI_API_BASE" if base else "API base"
    base = check_api_base(base or DEFAULT_API_BASE, source)
    if not pat:
        if not _is_loopback(base):
            raise ReconcilerError(f"no PAT for {base}: set {pat_env} or pass --pat-file")
        from reconciler.sandbox.app import DEFAULT_KEY, DEFAULT_USER

        pat, user = DEFAULT_KEY, user or DEFAULT_USER
    return Client(
        base,
        pat,
        user_id=user,
        rate_limit=15.0 if rate_limit is None else rate_limit,
        max_retries=max_retries,
        timeout=timeout,
        debug=trace,
        on_retry=say,
    )
