"""Fault injection and the request log of the sandbox.

Contract:
- `Faults` holds the fault settings, thread-safe: fixed latency per request (`latency_ms`), a rate
  limit in requests/second (`rate_limit`, 0 = none; a token bucket holding one second's worth of
  requests, so bursts up to the rate pass), and planned failures: request number k (1-based,
  counting every non-admin request since the sandbox started or the log was last reset) fails
  with mode "http500" (an HTTP 500 with a Clarifai-shaped INTERNAL_UNCATEGORIZED body) or "drop"
  (the connection is dropped: `DroppedConnection` raised out of the WSGI app, which the HTTP
  server turns into a closed socket with no response), "before" its change commits (nothing is
  written) or "after" it commits (the change is kept, the client never hears).
- `LogEntry` is one line of the request log: method, path (no query string), HTTP status, Clarifai
  status code, and whether the connection was dropped.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

MODES = ("http500", "drop")
WHEN = ("before", "after")


class DroppedConnection(ConnectionResetError):
    """Raised out of the WSGI app to simulate a connection dropped by the server."""


@dataclass(frozen=True)
class LogEntry:
    method: str
    path: str
    status: int
    code: int = 0
    dropped: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Failure:
    request: int
    mode: str = "http500"
    when: str = "before"

    def __post_init__(self) -> None:
        if self.mode not in MODES or self.when not in WHEN or self.request < 1:
            raise ValueError(f"bad failure {self}: mode in {MODES}, when in {WHEN}, request >= 1")


class Faults:
    def __init__(self, latency_ms: float = 0.0, rate_limit: float = 0.0) -> None:
        self._lock = threading.Lock()
        self.latency_ms = 0.0
        self.rate_limit = 0.0
        self._failures: dict[int, Failure] = {}
        self._tokens = 0.0
        self._last = time.monotonic()
        self.set(latency_ms=latency_ms, rate_limit=rate_limit)

    def set(self, *, latency_ms: float | None = None, rate_limit: float | None = None) -> None:
        """Change latency and/or rate limit; None leaves a setting as it is."""
        with self._lock:
            if latency_ms is not None:
                if latency_ms < 0:
                    raise ValueError("latency_ms must be >= 0")
                self.latency_ms = float(latency_ms)
            if rate_limit is not None:
                if rate_limit < 0:
                    raise ValueError("rate_limit must be >= 0")
                self.rate_limit = float(rate_limit)
                self._tokens = max(1.0, self.rate_limit)
                self._last = time.monotonic()

    def fail_request(self, k: int, *, mode: str = "http500", when: str = "before") -> None:
        """Make request number k fail (see the module docstring)."""
        f = Failure(int(k), mode, when)
        with self._lock:
            self._failures[f.request] = f

    def clear(self) -> None:
        """No latency, no rate limit, no planned failures."""
        with self._lock:
            self._failures.clear()
        self.set(latency_ms=0.0, rate_limit=0.0)

    def take(self, n: int) -> Failure | None:
        with self._lock:
            return self._failures.pop(n, None)

    def throttle(self) -> float | None:
        """None if the request may pass, else the seconds after which one would."""
        with self._lock:
            if self.rate_limit <= 0:
                return None
            now = time.monotonic()
            self._tokens = min(max(1.0, self.rate_limit), self._tokens + (now - self._last) * self.rate_limit)
            self._last = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return None
            return (1.0 - self._tokens) / self.rate_limit

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "latency_ms": self.latency_ms,
                "rate_limit": self.rate_limit,
                "fail": [asdict(f) for f in sorted(self._failures.values(), key=lambda f: f.request)],
            }

    def configure(self, spec: dict[str, Any]) -> None:
        """Apply an admin-endpoint body: {clear?, latency_ms?, rate_limit?, fail?: [{request, mode?, when?}]}."""
        if not isinstance(spec, dict):
            raise ValueError("expected a JSON object")
        failures = [
            Failure(int(f["request"]), str(f.get("mode", "http500")), str(f.get("when", "before")))
            for f in spec.get("fail") or []
        ]
        lat, rate = spec.get("latency_ms"), spec.get("rate_limit")
        for v in (lat, rate):
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
                raise ValueError("latency_ms and rate_limit must be numbers")
        if spec.get("clear"):
            self.clear()
        self.set(latency_ms=lat, rate_limit=rate)
        for f in failures:
            self.fail_request(f.request, mode=f.mode, when=f.when)
