"""After many streams (completed, failed, abandoned), nothing is left behind."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from typing import Any

import pytest
from emulated import client_for

from amazon_polly_streaming import PollyStreamingClient, TransportError
from amazon_polly_streaming.testing import Fault, PollyEmulator

# Every test here must leave no thread, fd or connection behind.
pytestmark = pytest.mark.usefixtures("no_leaks")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_no_task_thread_fd_or_lease_outlives_its_stream(
    emulators: Callable[..., Any],
) -> None:
    emu: PollyEmulator = await emulators()
    client = client_for(emu, pool_size=4, max_attempts=1)

    async def complete() -> None:
        async for _ in client.start_speech_synthesis_stream(
            text="Fine.", voice_id="Ruth"
        ):
            pass

    async def abandon() -> None:
        stream = client.start_speech_synthesis_stream(
            text="One. Two. Three.", voice_id="Ruth", output_format="pcm"
        )
        async for _ in stream:
            break
        await stream.aclose()  # type: ignore[attr-defined]

    async def fail() -> None:
        emu.faults.add(
            Fault.drop_connection(after_audio_events=1),
            when=lambda request: request.voice_id == "Danielle",
        )
        try:
            async for _ in client.start_speech_synthesis_stream(
                text="One. Two.", voice_id="Danielle", output_format="pcm"
            ):
                pass
        except TransportError:
            pass

    await complete()  # warm up: awscrt's static threads, the first connection
    threads = {t.ident for t in threading.enumerate()}
    fds = open_fds()
    for _ in range(5):
        await asyncio.gather(complete(), abandon(), fail(), complete())
    PollyStreamingClient.close_idle_connections()
    await asyncio.sleep(0.2)  # closed connections finish shutting down

    assert asyncio.all_tasks() == {asyncio.current_task()}
    assert {t.ident for t in threading.enumerate()} <= threads
    assert client.pool_stats().leased == 0
    assert client.pool_stats().waiting == 0
    assert client.pool_stats().idle == 0
    assert open_fds() <= fds
    assert all(r.outcome != "open" for r in emu.requests)
