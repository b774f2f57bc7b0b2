"""Caching and refresh: lazily resolved once, refreshed ahead of expiry (in the
background while the current credentials are valid), one refresh at a time,
failures survived while the current credentials last, any event loop."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections.abc import Callable
from datetime import timedelta

import pytest

from amazon_polly_streaming.credentials import (
    AwsCredentials,
    CredentialsError,
    DefaultCredentialsChain,
)
from tests.credentials.fakes import FakeClock, FakeContainer, FakeServer, Secrets

MakeChain = Callable[..., DefaultCredentialsChain]
Serve = Callable[..., FakeServer]


@pytest.fixture
def container(
    env: dict[str, str], serve: Serve, secrets: Secrets, clock: FakeClock
) -> tuple[FakeContainer, FakeServer]:
    """A container endpoint issuing credentials valid for an hour from the clock."""
    fake = FakeContainer(secrets, now=clock)
    server = serve(fake)
    env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = server.url + fake.path
    return fake, server


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.005)


async def async_wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.005)


def key(n: int) -> str:
    return f"ASIAECS{n:04d}"


async def test_resolved_once_then_cached(
    make_chain: MakeChain, container: tuple[FakeContainer, FakeServer], clock: FakeClock
) -> None:
    _, server = container
    chain = make_chain()
    first = await chain.get_credentials()
    clock.advance(timedelta(minutes=54))  # 6 minutes left: outside the 5-minute margin
    assert await chain.get_credentials() is first
    assert len(server.requests) == 1


async def test_refresh_runs_behind_while_credentials_are_valid(
    make_chain: MakeChain, container: tuple[FakeContainer, FakeServer], clock: FakeClock
) -> None:
    """Inside the margin, callers keep the current credentials (no wait) while
    one background refresh replaces them."""
    _, server = container
    chain = make_chain()
    assert (await chain.get_credentials()).access_key_id == key(1)
    clock.advance(timedelta(minutes=56))
    server.gate.clear()  # hold the refresh at the fake
    assert (await chain.get_credentials()).access_key_id == key(1)
    assert (await chain.get_credentials()).access_key_id == key(1)
    await async_wait_for(lambda: len(server.requests) == 2)
    refreshed = asyncio.ensure_future(chain.refresh())  # joins the one in flight
    await asyncio.sleep(0.01)
    server.gate.set()
    assert (await refreshed).access_key_id == key(2)
    assert (await chain.get_credentials()).access_key_id == key(2)
    assert len(server.requests) == 2


async def test_callers_wait_when_credentials_are_about_to_expire(
    make_chain: MakeChain, container: tuple[FakeContainer, FakeServer], clock: FakeClock
) -> None:
    _, server = container
    chain = make_chain()
    await chain.get_credentials()
    clock.advance(timedelta(minutes=59, seconds=55))  # 5 s left: not handed out
    got = await chain.get_credentials()
    assert got.access_key_id == key(2)
    assert got.expiration == clock.now + timedelta(hours=1)
    assert len(server.requests) == 2


async def test_custom_refresh_margin(
    make_chain: MakeChain, container: tuple[FakeContainer, FakeServer], clock: FakeClock
) -> None:
    _, server = container
    chain = make_chain(refresh_margin=timedelta(minutes=20))
    await chain.get_credentials()
    clock.advance(timedelta(minutes=41))
    await chain.get_credentials()
    await async_wait_for(lambda: len(server.requests) == 2)


async def test_failed_refresh_keeps_valid_credentials(
    make_chain: MakeChain,
    container: tuple[FakeContainer, FakeServer],
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake, server = container
    chain = make_chain()
    await chain.get_credentials()
    fake.fail_with = 503
    clock.advance(timedelta(minutes=56))
    server.gate.clear()
    assert (await chain.get_credentials()).access_key_id == key(1)
    refreshed = asyncio.ensure_future(chain.refresh())
    await asyncio.sleep(0.01)
    server.gate.set()
    with pytest.raises(CredentialsError, match="HTTP 503 Boom: failed on purpose"):
        await refreshed  # refresh() reports the failure...
    # ...get_credentials() keeps the valid ones, and waits before trying again.
    assert "refreshing AWS credentials failed, still using those from container" in (
        caplog.text
    )
    assert any(r.levelno == logging.WARNING for r in caplog.records)
    requests = len(server.requests)
    assert (await chain.get_credentials()).access_key_id == key(1)
    clock.advance(timedelta(seconds=20))
    assert (await chain.get_credentials()).access_key_id == key(1)
    assert len(server.requests) == requests
    fake.fail_with = None
    clock.advance(timedelta(seconds=11))  # 30 s after the failure: try again
    assert (await chain.get_credentials()).access_key_id == key(1)
    await async_wait_for(lambda: len(fake.issue.issued) == 2)
    await async_wait_for(lambda: chain._pending is None)
    assert (await chain.get_credentials()).access_key_id == key(2)


async def test_failed_refresh_after_expiry_raises(
    make_chain: MakeChain, container: tuple[FakeContainer, FakeServer], clock: FakeClock
) -> None:
    fake, _ = container
    chain = make_chain()
    await chain.get_credentials()
    fake.fail_with = 500
    clock.advance(timedelta(hours=1))
    with pytest.raises(CredentialsError, match="HTTP 500"):
        await chain.get_credentials()


async def test_short_lived_credentials_are_not_refetched_on_every_call(
    make_chain: MakeChain, container: tuple[FakeContainer, FakeServer], clock: FakeClock
) -> None:
    """Credentials that arrive inside the margin are refreshed 30 s later at most."""
    fake, server = container
    fake.issue.lifetime = timedelta(minutes=2)
    chain = make_chain()
    await chain.get_credentials()
    for _ in range(5):
        await chain.get_credentials()
    assert len(server.requests) == 1
    clock.advance(timedelta(seconds=31))
    await chain.get_credentials()
    await async_wait_for(lambda: len(server.requests) == 2)


async def test_forced_refresh(
    make_chain: MakeChain, container: tuple[FakeContainer, FakeServer]
) -> None:
    chain = make_chain()
    assert (await chain.get_credentials()).access_key_id == key(1)
    assert (await chain.refresh()).access_key_id == key(2)
    assert (await chain.get_credentials()).access_key_id == key(2)


async def test_non_expiring_credentials_are_never_refreshed(
    make_chain: MakeChain, env: dict[str, str], secrets: Secrets, clock: FakeClock
) -> None:
    env["AWS_ACCESS_KEY_ID"] = "AKIDFOREVER"
    env["AWS_SECRET_ACCESS_KEY"] = secrets.new("forever")
    chain = make_chain()
    first = await chain.get_credentials()
    env["AWS_ACCESS_KEY_ID"] = "AKIDCHANGED"
    clock.advance(timedelta(days=3650))
    assert await chain.get_credentials() is first


async def test_twenty_concurrent_callers_share_one_fetch(
    make_chain: MakeChain, container: tuple[FakeContainer, FakeServer]
) -> None:
    _, server = container
    chain = make_chain()
    server.gate.clear()
    callers = [asyncio.ensure_future(chain.get_credentials()) for _ in range(20)]
    await async_wait_for(lambda: len(server.requests) == 1)
    await asyncio.sleep(0.01)  # every caller is waiting by now
    server.gate.set()
    results = await asyncio.gather(*callers)
    assert len(server.requests) == 1
    assert all(r is results[0] for r in results)


async def test_a_cancelled_caller_does_not_cancel_the_shared_refresh(
    make_chain: MakeChain, container: tuple[FakeContainer, FakeServer]
) -> None:
    _, server = container
    chain = make_chain()
    server.gate.clear()
    impatient = asyncio.ensure_future(chain.get_credentials())
    patient = asyncio.ensure_future(chain.get_credentials())
    await async_wait_for(lambda: len(server.requests) == 1)
    impatient.cancel()
    await asyncio.sleep(0)
    server.gate.set()
    assert (await patient).access_key_id == key(1)
    assert impatient.cancelled()
    assert len(server.requests) == 1


def test_one_provider_across_event_loops(
    make_chain: MakeChain, container: tuple[FakeContainer, FakeServer], clock: FakeClock
) -> None:
    """As under functools.cache + asyncio.run per request: a refresh started while
    one loop ran completes into the next loop; nothing is bound to a loop."""
    _, server = container
    chain = make_chain()

    # Loop 1: first resolution.
    assert asyncio.run(chain.get_credentials()).access_key_id == key(1)

    # Loop 2: inside the margin; returns at once, the refresh is held at the fake.
    clock.advance(timedelta(minutes=58))
    server.gate.clear()
    assert asyncio.run(chain.get_credentials()).access_key_id == key(1)
    wait_for(lambda: len(server.requests) == 2)

    # Loop 3: joins the refresh loop 2 started.
    async def join_then_release() -> AwsCredentials:
        refreshed = asyncio.ensure_future(chain.refresh())
        await asyncio.sleep(0.01)
        server.gate.set()
        return await refreshed

    assert asyncio.run(join_then_release()).access_key_id == key(2)

    # Loops 4 and 5: expired -> a blocking refresh; then served from the cache.
    clock.advance(timedelta(hours=2))
    assert asyncio.run(chain.get_credentials()).access_key_id == key(3)
    assert asyncio.run(chain.get_credentials()).access_key_id == key(3)
    assert len(server.requests) == 3


def test_concurrent_callers_from_several_threads_and_loops(
    make_chain: MakeChain, container: tuple[FakeContainer, FakeServer]
) -> None:
    """Each thread runs its own event loop; all share the one fetch."""
    _, server = container
    chain = make_chain()
    server.gate.clear()

    async def two_callers() -> list[AwsCredentials]:
        return list(
            await asyncio.gather(chain.get_credentials(), chain.get_credentials())
        )

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(asyncio.run, two_callers()) for _ in range(4)]
        wait_for(lambda: len(server.requests) == 1)
        time.sleep(0.02)
        server.gate.set()
        results = [c for f in futures for c in f.result(5)]
    assert len(results) == 8
    assert {c.access_key_id for c in results} == {key(1)}
    assert len(server.requests) == 1


async def test_state_left_by_a_forked_parent_is_dropped(
    make_chain: MakeChain, container: tuple[FakeContainer, FakeServer]
) -> None:
    """In a child after fork(), a refresh the parent had in flight never ends
    (its thread is not there): the child starts its own."""
    chain = make_chain()
    await chain.get_credentials()
    orphan: concurrent.futures.Future[AwsCredentials] = concurrent.futures.Future()
    orphan.set_running_or_notify_cancel()
    chain._pending = orphan
    chain._pid = -1  # as if this process were the child of the one that forked
    got = await asyncio.wait_for(chain.refresh(), 5)
    assert got.access_key_id == key(2)
    assert not orphan.done()
