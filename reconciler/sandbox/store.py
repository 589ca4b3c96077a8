"""SQLite persistence of the sandbox: one table of JSON documents keyed by
(user_id, app_id, kind, parent, id), ordered by insertion (`seq`).

Contract:
- `Store.transaction()` is the only way to touch data: a context manager that holds the store's
  lock, opens `BEGIN IMMEDIATE`, and commits on normal exit or rolls back on any exception. The
  sandbox opens exactly one per request, so one request is one transaction, and requests from
  many threads are serialised (SQLite allows one writer anyway; the work per request is tiny).
- Documents are the resource's JSON as the API shows it, minus computed fields; keys starting with
  "_" are private bookkeeping the handlers strip before answering.
- The file survives restarts; WAL journaling keeps readers of the file (e.g. a second process
  opening it later) consistent.
"""

from __future__ import annotations

import builtins
import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS docs (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id TEXT NOT NULL,
    app_id  TEXT NOT NULL,
    kind    TEXT NOT NULL,
    parent  TEXT NOT NULL DEFAULT '',
    id      TEXT NOT NULL,
    body    TEXT NOT NULL,
    UNIQUE (user_id, app_id, kind, parent, id)
);
CREATE INDEX IF NOT EXISTS docs_scope ON docs (user_id, app_id, kind, parent);
"""


class Tx:
    """Document operations inside one open transaction."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._c = conn

    def get(self, user: str, app: str, kind: str, id: str, parent: str = "") -> dict[str, Any] | None:
        row = self._c.execute(
            "SELECT body FROM docs WHERE user_id=? AND app_id=? AND kind=? AND parent=? AND id=?", (user, app, kind, parent, id)
        ).fetchone()
        return json.loads(row[0]) if row else None

    def list(
        self,
        user: str,
        app: str,
        kind: str,
        parent: str | None = "",
        *,
        newest_first: bool = False,
        page: tuple[int, int] | None = None,
    ) -> list[dict[str, Any]]:
        """Documents in insertion order (or newest first). `page=(page, per_page)` (1-based) reads
        only that page, in SQL: with `parent` given, `docs_scope` serves both the filter and the
        order (an index entry ends with the rowid, which `seq` is), so a page of a 10,000-row
        listing reads and decodes per_page rows, not the table."""
        sql = "SELECT body FROM docs WHERE user_id=? AND app_id=? AND kind=?"
        args: list[Any] = [user, app, kind]
        if parent is not None:
            sql += " AND parent=?"
            args.append(parent)
        sql += " ORDER BY seq DESC" if newest_first else " ORDER BY seq"
        if page is not None:
            number, per_page = page
            sql += " LIMIT ? OFFSET ?"
            args += [per_page, (number - 1) * per_page]
        return [json.loads(r[0]) for r in self._c.execute(sql, args)]

    def insert(self, user: str, app: str, kind: str, id: str, body: dict[str, Any], parent: str = "") -> bool:
        """False (and nothing written) when the id is taken."""
        try:
            self._c.execute(
                "INSERT INTO docs (user_id, app_id, kind, parent, id, body) VALUES (?,?,?,?,?,?)",
                (user, app, kind, parent, id, json.dumps(body)),
            )
        except sqlite3.IntegrityError:
            return False
        return True

    def update(self, user: str, app: str, kind: str, id: str, body: dict[str, Any], parent: str = "") -> None:
        self._c.execute(
            "UPDATE docs SET body=? WHERE user_id=? AND app_id=? AND kind=? AND parent=? AND id=?",
            (json.dumps(body), user, app, kind, parent, id),
        )

    def delete(self, user: str, app: str, kind: str, id: str, parent: str = "") -> bool:
        cur = self._c.execute(
            "DELETE FROM docs WHERE user_id=? AND app_id=? AND kind=? AND parent=? AND id=?", (user, app, kind, parent, id)
        )
        return cur.rowcount > 0

    def delete_children(self, user: str, app: str, kind: str, parent: str) -> None:
        self._c.execute("DELETE FROM docs WHERE user_id=? AND app_id=? AND kind=? AND parent=?", (user, app, kind, parent))

    def delete_app(self, user: str, app: str) -> None:
        self._c.execute("DELETE FROM docs WHERE user_id=? AND app_id=?", (user, app))

    def apps_of(self, user: str) -> builtins.list[dict[str, Any]]:  # `list` is a method here
        return [
            json.loads(r[0])
            for r in self._c.execute("SELECT body FROM docs WHERE user_id=? AND kind='app' ORDER BY seq", (user,))
        ]


class Store:
    def __init__(self, path: str) -> None:
        # check_same_thread=False: the lock below, not the thread, guards the connection.
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._lock = threading.Lock()
        with self._lock:
            if path != ":memory:":
                self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.executescript(_SCHEMA)

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield Tx(self._conn)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            else:
                self._conn.execute("COMMIT")

    def latest_stamp(self) -> str | None:
        """The latest `created_at` / `modified_at` any stored document holds, or None. They are
        all written by `wire.rfc3339` (six fractional digits, UTC), so the string maximum is the
        latest time."""
        with self._lock:
            row = self._conn.execute(
                "SELECT max(json_extract(body, '$.created_at')), max(json_extract(body, '$.modified_at')) FROM docs"
            ).fetchone()
        stamps = [v for v in row if isinstance(v, str)] if row else []
        return max(stamps) if stamps else None

    def check(self) -> None:
        """Raise sqlite3.DatabaseError when the file is damaged (a truncated or corrupt database
        can open fine and only fail on the pages a later request touches)."""
        with self._lock:
            rows = self._conn.execute("PRAGMA quick_check").fetchall()
        if [tuple(r) for r in rows] != [("ok",)]:
            raise sqlite3.DatabaseError(f"database disk image is malformed ({str(rows[0][0])[:120]})")

    def close(self) -> None:
        with self._lock:
            self._conn.close()
