"""Connections: a process-wide idle cache, and per-client leases with a FIFO queue.

One HTTP/2 connection carries one Polly stream at a time. A **lease** holds a
connection for one stream, until the stream is closed in both directions;
then the connection goes back to the **idle cache** if it is healthy, or is
closed. States of a connection: ``idle`` (cached, no stream), ``leased``
(carrying a stream), ``closed``.

* The idle cache is **process-wide**, keyed by endpoint and TLS settings, so
  clients for one endpoint reuse each other's connections (the TLS handshake
  and SETTINGS exchange are paid once).
* Each client bounds its own concurrent leases with ``pool_size``; callers
  beyond it wait in **FIFO** order (latency, never an error).
* A connection that failed, received GOAWAY (it reports itself not open), or
  sat idle longer than its ``max_idle`` (the client's ``max_idle_time``) is
  discarded, never handed out again.
* **Warm connections** (``PollyStreamingClient.prewarm`` and
  ``min_idle_connections``): opened ahead of need, put here, and replaced by
  ``take_stale`` + a fresh connect before they grow old enough for a server
  to close them idle.
* Nothing is bound to an event loop: state is guarded by a ``threading.Lock``,
  and a waiter is woken through its own loop, so a client cached across
  ``asyncio.run`` calls keeps working.
* After ``fork()`` the child starts with an empty cache (the parent's
  connections are left alone: closing them from the child would write on the
  parent's sockets).

``stats()`` makes the state visible to tests and debugging.
"""

from __future__ import annotations

import asyncio
import collections
import os
import threading
import time
from dataclasses import dataclass

from .transport import Connection, Endpoint

DEFAULT_MAX_IDLE = 60.0
"""Seconds an idle connection is kept (servers close idle connections too)."""


@dataclass(frozen=True, slots=True)
class PoolStats:
    """A snapshot of connection states."""

    idle: int
    """Idle connections in the process-wide cache (for this endpoint, if asked)."""
    leased: int
    """Streams running under this client's leases."""
    waiting: int
    """Callers queued for a lease (FIFO)."""
    connections_opened: int
    """Connections this process opened since it started (or forked)."""


@dataclass(slots=True)
class _Idle:
    connection: Connection
    since: float
    max_idle: float


class IdleCache:
    """The process-wide idle connections, by endpoint (LIFO: the warmest first)."""

    def __init__(self, max_idle: float = DEFAULT_MAX_IDLE) -> None:
        self.max_idle = max_idle
        self._lock = threading.Lock()
        self._idle: dict[Endpoint, list[_Idle]] = {}
        self.connections_opened = 0
        self._pid = os.getpid()

    def take(self, endpoint: Endpoint) -> Connection | None:
        """A healthy idle connection to ``endpoint``, or ``None``."""
        stale: list[Connection] = []
        found: Connection | None = None
        now = time.monotonic()
        with self._lock:
            self._check_fork()
            entries = self._idle.get(endpoint, [])
            while entries:
                entry = entries.pop()
                if now - entry.since > entry.max_idle or not entry.connection.is_open:
                    stale.append(entry.connection)
                    continue
                found = entry.connection
                break
        for connection in stale:
            connection.close_soon()
        return found

    def put(self, connection: Connection, max_idle: float | None = None) -> None:
        """Keep a connection whose stream ended cleanly (closed ones are dropped);
        it is discarded once idle longer than ``max_idle`` (else the cache's)."""
        if not connection.is_open:
            connection.close_soon()
            return
        limit = self.max_idle if max_idle is None else max_idle
        with self._lock:
            self._check_fork()
            self._idle.setdefault(connection.endpoint, []).append(
                _Idle(connection, time.monotonic(), limit)
            )

    def take_stale(self, endpoint: Endpoint, older_than: float) -> list[Connection]:
        """Remove and return the idle connections to ``endpoint`` idle longer
        than ``older_than`` seconds, or no longer open (to replace them)."""
        now = time.monotonic()
        with self._lock:
            self._check_fork()
            entries = self._idle.get(endpoint, [])
            stale = [
                e
                for e in entries
                if now - e.since > older_than or not e.connection.is_open
            ]
            if stale:
                self._idle[endpoint] = [e for e in entries if e not in stale]
        return [e.connection for e in stale]

    def count(self, endpoint: Endpoint | None = None) -> int:
        with self._lock:
            if endpoint is not None:
                return len(self._idle.get(endpoint, []))
            return sum(len(v) for v in self._idle.values())

    def opened(self) -> None:
        with self._lock:
            self.connections_opened += 1

    def clear(self) -> None:
        """Close every idle connection."""
        with self._lock:
            entries = [e for v in self._idle.values() for e in v]
            self._idle.clear()
        for entry in entries:
            entry.connection.close_soon()

    def _check_fork(self) -> None:
        pid = os.getpid()
        if pid != self._pid:
            # In a forked child: forget the parent's connections, never close them.
            _ABANDONED_AFTER_FORK.extend(e for v in self._idle.values() for e in v)
            self._idle = {}
            self.connections_opened = 0
            self._pid = pid


_ABANDONED_AFTER_FORK: list[_Idle] = []
IDLE_CONNECTIONS = IdleCache()
"""The process-wide cache every client shares."""


class LeaseLimiter:
    """At most ``size`` leases at once; more callers wait, first come first served."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._leased = 0
        self._waiters: collections.deque[
            tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]
        ] = collections.deque()

    @property
    def leased(self) -> int:
        return self._leased

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    async def acquire(self) -> None:
        """Wait for a lease slot (FIFO). Cancellation leaves the queue intact."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._leased < self.size and not self._waiters:
                self._leased += 1
                return
            future: asyncio.Future[None] = loop.create_future()
            self._waiters.append((loop, future))
        try:
            await future
        except asyncio.CancelledError:
            with self._lock:
                if (loop, future) in self._waiters:
                    self._waiters.remove((loop, future))
                    raise
            # The slot was handed to us just as we were cancelled: pass it on.
            self.release()
            raise

    def release(self) -> None:
        """Free a slot: hand it to the oldest live waiter, or return it."""
        while True:
            with self._lock:
                if not self._waiters:
                    self._leased -= 1
                    return
                loop, future = self._waiters.popleft()
            if loop.is_closed():
                continue
            try:
                loop.call_soon_threadsafe(_wake, future)
            except RuntimeError:
                continue  # its loop closed meanwhile
            return


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
        return
    # Cancelled before the hand-over arrived: acquire() released it already.
