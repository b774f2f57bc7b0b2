"""Shared test configuration and fixtures."""

from collections.abc import AsyncIterator, Callable
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
