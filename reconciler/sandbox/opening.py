"""Opening the sandbox's database file for the CLI (`reconciler plan` with no credentials, and
`reconciler sandbox serve`).

Contract: `open_sandbox(db, **kwargs) -> Sandbox` returns a `Sandbox(db, **kwargs)` whose file was
checked (`Store.check`, SQLite's quick_check). A path that is not a regular file, a file that is not
an SQLite database, truncated or corrupt, or that cannot be opened is a `ReconcilerError` naming the
file, in one line -- not a traceback, and not an "internal error" answered to every request later.
"""

from __future__ import annotations

import os
import sqlite3
from typing import Any

from reconciler.core.errors import ReconcilerError
from reconciler.sandbox.app import Sandbox


def open_sandbox(db: str, **kwargs: Any) -> Sandbox:
    """The sandbox on database file `db`, checked: a file that is not a regular file, not an SQLite
    database, truncated or corrupt, or cannot be opened is a ReconcilerError naming the file (one
    line), not a traceback or a retried "internal error" per request later."""
    what = f"cannot open the sandbox database {db}"
    try:
        if os.path.exists(db) and not os.path.isfile(db):
            raise ReconcilerError(f"{what}: not a regular file")
        sandbox = Sandbox(db, **kwargs)
    except (sqlite3.Error, OSError) as exc:
        raise ReconcilerError(f"{what}: {exc}; move it away to start afresh") from None
    try:
        sandbox.store.check()
    except sqlite3.Error as exc:
        sandbox.close()
        raise ReconcilerError(f"{what}: {exc}; move it away to start afresh") from None
    return sandbox
