"""The pool's state machine without sockets: FIFO leases, idle cache, fork."""

from __future__ import annotations

import asyncio
import os
import threading

import pytest

from amazon_polly_streaming.pool import IdleCache, LeaseLimiter
from amazon_polly_streaming.transport import Connection, Endpoint, TlsSettings

ENDPOINT = Endpoint("polly.example", 443, TlsSettings(None))


class FakeConnection(Connection):
    """A connection whose health the test decides (unit level only)."""

    def __init__(self, endpoint: Endpoint = ENDPOINT) -> None:
        super().__init__(None, endpoint)
        self.open = True
        self.closed = False

    @property
    def is_open(self) -> bool:
        return self.open and not self.closed

    def close_soon(self) -> None:
        self.closed = True


async def test_leases_are_fifo_beyond_the_limit() -> None:
    limiter = LeaseLimiter(2)
    order: list[int] = []

    async def user(i: int) -> None:
        await limiter.acquire()
        order.append(i)
        await asyncio.sleep(0.01)
        limiter.release()

    tasks = []
    for i in range(6):
        tasks.append(asyncio.create_task(user(i)))
        await asyncio.sleep(0)
    await asyncio.sleep(0.001)
    assert (limiter.leased, limiter.waiting) == (2, 4)
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2, 3, 4, 5]
    assert (limiter.leased, limiter.waiting) == (0, 0)


async def test_a_cancelled_waiter_leaves_the_queue_and_loses_no_slot() -> None:
    limiter = LeaseLimiter(1)
    await limiter.acquire()
    waiter = asyncio.create_task(limiter.acquire())
    second = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)
    assert limiter.waiting == 2
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert limiter.waiting == 1
    limiter.release()
    await second  # the slot went to the next live waiter
    assert (limiter.leased, limiter.waiting) == (1, 0)
    limiter.release()
    assert limiter.leased == 0


async def test_a_slot_handed_over_as_the_waiter_is_cancelled_is_passed_on() -> None:
    limiter = LeaseLimiter(1)
    await limiter.acquire()
    first = asyncio.create_task(limiter.acquire())
    second = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)
    limiter.release()  # hands the slot to `first`...
    first.cancel()  # ...which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await first
    await second
    assert limiter.leased == 1


def test_leases_work_across_event_loops_and_threads() -> None:
    limiter = LeaseLimiter(1)
    asyncio.run(limiter.acquire())
    done = threading.Event()

    def other_loop() -> None:
        asyncio.run(limiter.acquire())
        done.set()

    thread = threading.Thread(target=other_loop)
    thread.start()
    assert not done.wait(0.1)  # waiting on its own loop
    limiter.release()
    thread.join(5)
    assert done.is_set()
    assert limiter.leased == 1


def test_idle_cache_hands_out_healthy_connections_only() -> None:
    cache = IdleCache(max_idle=60)
    healthy, dead = FakeConnection(), FakeConnection()
    cache.put(healthy)
    cache.put(dead)
    dead.open = False  # received GOAWAY / failed while idle
    assert cache.take(ENDPOINT) is healthy
    assert dead.closed
    assert cache.take(ENDPOINT) is None
    other = Endpoint("polly.example", 443, TlsSettings("/ca.pem"))
    cache.put(FakeConnection(other))
    assert cache.take(ENDPOINT) is None  # keyed by endpoint and TLS settings
    assert cache.count(other) == 1


def test_idle_connections_expire() -> None:
    cache = IdleCache(max_idle=0.0)
    stale = FakeConnection()
    cache.put(stale)
    assert cache.take(ENDPOINT) is None
    assert stale.closed


def test_a_closed_connection_is_never_cached() -> None:
    cache = IdleCache()
    conn = FakeConnection()
    conn.open = False
    cache.put(conn)
    assert cache.count() == 0
    assert conn.closed


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
@pytest.mark.filterwarnings(
    "ignore:This process .* is multi-threaded:DeprecationWarning"
)
def test_a_forked_child_starts_with_an_empty_cache() -> None:
    cache = IdleCache()
    parent_conn = FakeConnection()
    cache.put(parent_conn)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        try:
            found = cache.take(ENDPOINT)
            os.write(
                write, b"empty" if found is None and not parent_conn.closed else b"full"
            )
        finally:
            os._exit(0)
    os.close(write)
    answer = os.read(read, 16)
    os.waitpid(pid, 0)
    assert answer == b"empty"  # and the parent's connection was not closed
    assert cache.take(ENDPOINT) is parent_conn  # the parent keeps it
