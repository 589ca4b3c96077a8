"""Round trips in sequence ("depth") of a run, measured on the client side.

`TimingTransport` wraps an httpx transport and records each request's (start, end) wall-clock
interval. `depth(intervals)` is the longest chain of requests each of which started after the
previous one ended: the number of round trips the run waited for one after another, which times
the latency is the floor of its wall time. Requests that overlap count once per chain.
"""

from __future__ import annotations

import threading
import time

import httpx


class TimingTransport(httpx.BaseTransport):
    def __init__(self, inner: httpx.BaseTransport | None = None) -> None:
        self.inner = inner or httpx.HTTPTransport()
        self.intervals: list[tuple[float, float]] = []
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        t0 = time.perf_counter()
        resp = self.inner.handle_request(request)
        resp.read()
        with self._lock:
            self.intervals.append((t0, time.perf_counter()))
        return resp

    def close(self) -> None:
        self.inner.close()

    def clear(self) -> None:
        with self._lock:
            self.intervals.clear()


def depth(intervals: list[tuple[float, float]]) -> int:
    """Longest chain i1, i2, ... with start(i[k+1]) >= end(i[k]). In start order, every interval
    that ended before this one starts was already scored, so a running maximum over the intervals
    admitted in end order is all that is needed: O(n log n)."""
    starts = sorted(intervals)
    by_end = sorted(range(len(starts)), key=lambda k: starts[k][1])
    chain = [0] * len(starts)
    running = admitted = 0
    for i, (start, _end) in enumerate(starts):
        while admitted < len(by_end) and starts[by_end[admitted]][1] <= start:
            running = max(running, chain[by_end[admitted]])
            admitted += 1
        chain[i] = 1 + running
    return max(chain, default=0)
