"""Shared test configuration and fixtures."""

import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from amazon_polly_streaming import PollyStreamingClient
from amazon_polly_streaming.testing import PollyEmulator

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def repo() -> Path:
    """The repository root."""
    return REPO


@pytest.fixture
async def emulators() -> AsyncIterator[Callable[..., Any]]:
    """Start emulators with given settings (on the test's loop); all are
    stopped after the test, which fails if any hit an internal error."""
    started: list[PollyEmulator] = []

    async def start(**settings: Any) -> PollyEmulator:
        emu = PollyEmulator(**settings)
        await emu.start()
        started.append(emu)
        return emu

    yield start
    PollyStreamingClient.close_idle_connections()
    for emu in started:
        await emu.stop()
        emu.close()
        assert emu.log.internal_errors == []


@pytest.fixture
async def emu(emulators: Callable[..., Any]) -> PollyEmulator:
    """A running emulator with default settings."""
    emulator: PollyEmulator = await emulators()
    return emulator


def _open_fds() -> set[int]:
    return {int(fd) for fd in os.listdir("/proc/self/fd")}


@pytest.fixture
def no_leaks() -> Iterator[None]:
    """Fail the test if it leaves threads, file descriptors (sockets included)
    or idle connections behind. Apply it first (``usefixtures``), so that it
    checks after every other fixture of the test was torn down."""
    PollyStreamingClient.close_idle_connections()
    threads = set(threading.enumerate())
    fds = _open_fds()
    yield
    PollyStreamingClient.close_idle_connections()
    deadline = time.monotonic() + 3
    while True:  # connections and threads finish closing asynchronously
        extra_threads = [
            t for t in threading.enumerate() if t not in threads and t.is_alive()
        ]
        extra_fds = {fd for fd in _open_fds() - fds if not _process_singleton(fd)}
        if (not extra_threads and not extra_fds) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert extra_threads == [], f"threads left behind: {extra_threads}"
    described = {fd: _describe(fd) for fd in extra_fds}
    assert described == {}, f"file descriptors left open: {described}"


def _process_singleton(fd: int) -> bool:
    """awscrt's static event loop (epoll, eventfd, timerfd) and s2n's random
    source open once per process, on first use, and stay: not leaks."""
    name = _describe(fd)
    return name.startswith("anon_inode:") or name == "/dev/urandom"


def _describe(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return "?"
