"""Voice-agent features against the emulator: barge-in, metrics, prewarm and
warm connections, rollover past the stream-duration limit."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from emulated import client_for, collect

from amazon_polly_streaming import (
    AudioEvent,
    PollyStreamingClient,
    ServiceQuotaExceededException,
    StreamMetrics,
    ValidationException,
    _crt_native,
)
from amazon_polly_streaming.testing import Fault, PollyEmulator

pytestmark = pytest.mark.usefixtures("no_leaks")

HELLO = "hello world, how are you today"
LONG = " ".join(
    f"This is sentence number {n}, which is long enough to make several events."
    for n in range(12)
)


async def settled(emu: PollyEmulator) -> list[str]:
    """The outcomes of the emulator's requests, once none is still open (the
    emulator sees a reset a moment after the client sent it)."""
    for _ in range(200):
        if all(r.outcome != "open" for r in emu.requests):
            break
        await asyncio.sleep(0.01)
    return [r.outcome for r in emu.requests]


async def assert_next_call_reuses(
    client: PollyStreamingClient, emu: PollyEmulator
) -> None:
    """The lease is free, the connection idle, and the next call runs on it."""
    stats = client.pool_stats()
    assert (stats.leased, stats.waiting, stats.idle) == (0, 0, 1)
    audio = client.start_speech_synthesis_stream(text=HELLO, voice_id="Matthew")
    assert await collect(audio) == emu.expected_audio(HELLO, voice_id="Matthew")
    assert audio.metrics.connection_reused is True
    first, last = emu.requests[0], emu.requests[-1]
    assert last.connection_id == first.connection_id
    assert len(emu.connections) == 1


# Barge-in ---------------------------------------------------------------------


async def test_session_cancel_resets_the_stream_and_keeps_the_connection(
    emulators: Callable[..., Any],
) -> None:
    emu: PollyEmulator = await emulators(audio_event_bytes=1024)
    client = client_for(emu)
    async with client.open_stream(voice_id="Matthew", output_format="pcm") as stream:
        await stream.send(LONG, flush=True)
        events = stream.events()
        first = await anext(events)
        assert isinstance(first, AudioEvent)
        stream.cancel()
        stream.cancel()  # idempotent
        assert [event async for event in events] == []  # nothing more, no error
        assert stream.cancelled
        with pytest.raises(RuntimeError, match="after close_input"):
            await stream.send("more")
    assert stream.metrics.outcome == "cancelled"
    assert stream.metrics.audio_events == 1
    assert await settled(emu) == ["reset_by_client"]
    await assert_next_call_reuses(client, emu)


async def test_leaving_the_block_early_is_a_barge_in(
    emulators: Callable[..., Any],
) -> None:
    emu: PollyEmulator = await emulators(audio_event_bytes=1024)
    client = client_for(emu)
    async with client.open_stream(voice_id="Matthew", output_format="pcm") as stream:
        await stream.send(LONG, flush=True)
        async for _ in stream.audio():
            break
    assert await settled(emu) == ["reset_by_client"]
    await assert_next_call_reuses(client, emu)


async def test_aclose_of_the_audio_stops_it(emulators: Callable[..., Any]) -> None:
    emu: PollyEmulator = await emulators(audio_event_bytes=1024)
    client = client_for(emu)
    async with client.start_speech_synthesis_stream(
        text=LONG, voice_id="Matthew", output_format="pcm"
    ) as audio:
        async for _ in audio:
            break
    assert audio.metrics.outcome == "cancelled"
    assert await settled(emu) == ["reset_by_client"]
    await assert_next_call_reuses(client, emu)


async def test_cancelling_the_consuming_task_stops_it(
    emulators: Callable[..., Any],
) -> None:
    emu: PollyEmulator = await emulators(audio_event_bytes=1024, synthesis_delay=0.2)
    client = client_for(emu)
    got_audio = asyncio.Event()

    async def consume() -> None:
        async with client.start_speech_synthesis_stream(
            text=LONG, voice_id="Matthew", output_format="pcm"
        ) as audio:
            async for _ in audio:
                got_audio.set()

    task = asyncio.create_task(consume())
    await got_audio.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await settled(emu) == ["reset_by_client"]
    await assert_next_call_reuses(client, emu)


async def test_cancel_from_another_task_ends_iteration_quietly(
    emu: PollyEmulator,
) -> None:
    seen: list[StreamMetrics] = []
    client = client_for(emu, on_metrics=seen.append)
    never = asyncio.Event()

    async def text() -> AsyncIterator[str]:
        yield "One. "
        await never.wait()  # the model is still thinking when the user speaks
        yield "Two."

    audio = client.start_speech_synthesis_stream(
        text=text(), voice_id="Matthew", output_format="pcm"
    )
    chunks: list[bytes] = []

    async def consume() -> None:
        async for chunk in audio:
            chunks.append(chunk)

    one = emu.expected_audio("One.", voice_id="Matthew", output_format="pcm")
    task = asyncio.create_task(consume())
    while sum(map(len, chunks)) < len(one):
        await asyncio.sleep(0.01)
    audio.cancel()  # the consumer is waiting for more audio
    await asyncio.wait_for(task, 1)  # ends at once, without an error
    assert b"".join(chunks) == one
    assert seen == [audio.metrics]
    assert audio.metrics.outcome == "cancelled"
    assert await settled(emu) == ["reset_by_client"]
    await assert_next_call_reuses(client, emu)


async def test_without_awscrt_reset_the_connection_is_closed_instead(
    emulators: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_crt_native, "reset_stream", lambda *_: False)
    emu: PollyEmulator = await emulators(audio_event_bytes=1024)
    client = client_for(emu)
    async with client.open_stream(voice_id="Matthew", output_format="pcm") as stream:
        await stream.send(LONG, flush=True)
        async for _ in stream.audio():
            stream.cancel()
        assert stream.cancelled
    assert client.pool_stats().idle == 0  # in doubt: closed, never reused
    assert await collect(
        client.start_speech_synthesis_stream(text=HELLO, voice_id="Matthew")
    ) == emu.expected_audio(HELLO, voice_id="Matthew")
    assert [c.id for c in emu.connections] == [0, 1]


async def test_many_barge_ins_on_one_connection_leave_it_healthy(
    emulators: Callable[..., Any],
) -> None:
    emu: PollyEmulator = await emulators(audio_event_bytes=16384)
    client = client_for(emu)
    for _ in range(20):
        async with client.start_speech_synthesis_stream(
            text=LONG * 3, voice_id="Matthew", output_format="pcm"
        ) as audio:
            async for _ in audio:
                break
    # Flow-control windows were not eaten by the audio of the reset streams.
    text = LONG * 4
    audio = client.start_speech_synthesis_stream(
        text=text, voice_id="Matthew", output_format="pcm"
    )
    assert await collect(audio) == emu.expected_audio(
        text, voice_id="Matthew", output_format="pcm"
    )
    assert len(emu.connections) == 1
    assert [r.outcome for r in emu.requests] == ["reset_by_client"] * 20 + ["completed"]


# Metrics ----------------------------------------------------------------------


async def test_metrics_of_a_completed_call(emu: PollyEmulator) -> None:
    seen: list[StreamMetrics] = []
    client = client_for(emu, on_metrics=seen.append)
    for reused in (False, True):
        audio = client.start_speech_synthesis_stream(text=HELLO, voice_id="Matthew")
        data = await collect(audio)
        record = emu.requests[-1]
        m = audio.metrics
        assert (m.outcome, m.error, m.attempts, m.segments) == ("completed", None, 1, 1)
        assert m.connection_reused is reused
        assert m.request_id == record.request_id == audio.request_id
        assert m.request_ids == [record.request_id]
        assert (m.audio_bytes, m.audio_events) == (len(data), record.audio_events)
        assert m.request_characters == record.request_characters == len(HELLO)
        assert m.time_to_first_audio is not None and m.total_time is not None
        assert 0 < m.time_to_first_audio <= m.total_time
        assert seen[-1] is m
    assert len(seen) == 2


async def test_metrics_count_retries_and_name_the_error(emu: PollyEmulator) -> None:
    emu.faults.add(Fault.throttle(), times=1)
    seen: list[StreamMetrics] = []
    client = client_for(emu, on_metrics=seen.append)
    audio = client.start_speech_synthesis_stream(text=HELLO, voice_id="Matthew")
    await collect(audio)
    assert (audio.metrics.attempts, audio.metrics.segments) == (2, 1)
    bad = client.start_speech_synthesis_stream(text=HELLO, voice_id="Nobody")
    with pytest.raises(ValidationException):
        await collect(bad)
    assert (bad.metrics.outcome, bad.metrics.error) == ("failed", "ValidationException")
    assert bad.metrics.request_id == emu.requests[-1].request_id
    assert seen == [audio.metrics, bad.metrics]


async def test_a_failing_metrics_callback_does_not_break_the_audio(
    emu: PollyEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(_: StreamMetrics) -> None:
        raise ZeroDivisionError

    client = client_for(emu, on_metrics=broken)
    with caplog.at_level(logging.WARNING, logger="amazon_polly_streaming"):
        audio = await collect(
            client.start_speech_synthesis_stream(text=HELLO, voice_id="Matthew")
        )
    assert audio == emu.expected_audio(HELLO, voice_id="Matthew")
    assert [r.getMessage() for r in caplog.records] == ["on_metrics callback failed"]


def test_on_metrics_must_be_callable() -> None:
    with pytest.raises(TypeError, match="on_metrics must be callable, got int"):
        PollyStreamingClient("eu-central-1", on_metrics=3)  # type: ignore[arg-type]


async def test_debug_logs_carry_request_ids_and_no_secrets(
    emu: PollyEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    client = client_for(emu)
    with caplog.at_level(logging.DEBUG, logger="amazon_polly_streaming"):
        await collect(
            client.start_speech_synthesis_stream(text=HELLO, voice_id="Matthew")
        )
    request_id = emu.requests[0].request_id
    messages = [r.getMessage() for r in caplog.records]
    assert any(f"stream started request_id={request_id}" in m for m in messages)
    assert any(
        f"call ended outcome=completed request_ids={request_id}" in m for m in messages
    )
    secret = emu.credentials.secret_access_key
    assert not any(secret in m for m in messages)
    token = emu.credentials.session_token
    assert token is None or not any(token in m for m in messages)


# Prewarm and warm connections --------------------------------------------------


async def test_prewarm_opens_connections_ahead(emu: PollyEmulator) -> None:
    client = client_for(emu)
    opened = client.pool_stats().connections_opened  # process-wide
    assert await client.prewarm(2) == 2
    stats = client.pool_stats()
    assert (stats.idle, stats.connections_opened) == (2, opened + 2)
    for _ in range(100):  # the emulator logs a connection once it serves it
        if len(emu.connections) == 2:
            break
        await asyncio.sleep(0.01)
    assert [c.streams for c in emu.connections] == [0, 0]  # handshaken, unused
    assert await client.prewarm(2) == 0  # already there
    audio = client.start_speech_synthesis_stream(text=HELLO, voice_id="Matthew")
    await collect(audio)
    assert audio.metrics.connection_reused is True
    assert client.pool_stats().connections_opened == opened + 2


async def test_prewarm_checks_its_argument(emu: PollyEmulator) -> None:
    client = client_for(emu, pool_size=2)
    with pytest.raises(ValueError, match=r"between 1 and pool_size \(2\), got 3"):
        await client.prewarm(3)
    with pytest.raises(TypeError, match="connections must be an int, got str"):
        await client.prewarm("2")  # type: ignore[arg-type]
    assert emu.connections == []


async def test_warm_connections_are_refreshed_before_the_server_closes_them(
    emulators: Callable[..., Any],
) -> None:
    emu: PollyEmulator = await emulators(connection_idle_timeout=1.0)
    async with client_for(emu, min_idle_connections=1, max_idle_time=0.8) as client:
        await client.prewarm(1)
        await asyncio.sleep(2.6)  # the server would have closed it twice over
        assert client.pool_stats().idle == 1
        audio = client.start_speech_synthesis_stream(text=HELLO, voice_id="Matthew")
        assert await collect(audio) == emu.expected_audio(HELLO, voice_id="Matthew")
        assert audio.metrics.connection_reused is True
    assert len(emu.connections) >= 3  # replaced at 0.6 s of idleness
    assert not any(c.closed_idle for c in emu.connections)


async def test_a_connection_the_server_closed_idle_is_never_handed_out(
    emulators: Callable[..., Any],
) -> None:
    emu: PollyEmulator = await emulators(connection_idle_timeout=0.3)
    client = client_for(emu)
    await collect(client.start_speech_synthesis_stream(text=HELLO, voice_id="Matthew"))
    await asyncio.sleep(0.8)
    assert emu.connections[0].closed_idle
    audio = client.start_speech_synthesis_stream(text=HELLO, voice_id="Matthew")
    assert await collect(audio) == emu.expected_audio(HELLO, voice_id="Matthew")
    assert audio.metrics.connection_reused is False
    assert [r.connection_id for r in emu.requests] == [0, 1]


# Rollover ---------------------------------------------------------------------

SENTENCES = [f"Sentence {n} has a few words in it, spoken slowly." for n in range(8)]


async def slow_words(delay: float) -> AsyncIterator[str]:
    for sentence in SENTENCES:
        for word in sentence.split(" "):
            await asyncio.sleep(delay)
            yield word + " "


async def test_a_long_session_rolls_over_with_no_audio_lost_or_repeated(
    emulators: Callable[..., Any],
) -> None:
    emu: PollyEmulator = await emulators(max_stream_duration=1.5)
    client = client_for(emu, rollover_after=0.5)
    audio = client.start_speech_synthesis_stream(
        text=slow_words(0.05), voice_id="Matthew", output_format="pcm"
    )
    data = await collect(audio)  # ~3 s of text: twice the stream limit
    whole = " ".join(SENTENCES) + " "
    assert data == emu.expected_audio(whole, voice_id="Matthew", output_format="pcm")
    records = emu.requests
    assert len(records) >= 3
    assert {r.outcome for r in records} == {"completed"}
    m = audio.metrics
    assert m.segments == len(records)
    assert m.request_ids == [r.request_id for r in records]
    assert m.request_characters == sum(r.request_characters or 0 for r in records)
    sent = "".join(e.text or "" for r in records for e in r.events)
    assert sent.replace(" ", "") == whole.replace(" ", "")  # each word once
    assert len({r.connection_id for r in records}) == 1


async def test_without_rollover_the_limit_ends_the_stream(
    emulators: Callable[..., Any],
) -> None:
    emu: PollyEmulator = await emulators(max_stream_duration=1.5)
    client = client_for(emu, rollover_after=None)
    audio = client.start_speech_synthesis_stream(
        text=slow_words(0.05), voice_id="Matthew", output_format="pcm"
    )
    with pytest.raises(ServiceQuotaExceededException):
        await collect(audio)


def test_rollover_after_is_checked() -> None:
    with pytest.raises(ValueError, match="rollover_after must be a positive"):
        PollyStreamingClient("eu-central-1", rollover_after=0)
    with pytest.raises(ValueError, match="min_idle_connections must be between 0"):
        PollyStreamingClient("eu-central-1", pool_size=2, min_idle_connections=3)


async def test_a_reset_before_the_response_headers_is_clean(
    emulators: Callable[..., Any],
) -> None:
    """A caller cancelled while the service is still silent: the stream is
    reset before any response, the emulator sees the reset (no error of its
    own when it would have answered), and the connection carries the next."""
    emu: PollyEmulator = await emulators()
    emu.faults.add(Fault.delay_headers(0.3), times=1)
    client = client_for(emu)

    async def consume() -> None:
        await collect(
            client.start_speech_synthesis_stream(text=HELLO, voice_id="Matthew")
        )

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.4)  # past the moment the emulator would have answered
    assert await settled(emu) == ["reset_by_client"]
    assert emu.log.internal_errors == []
    await assert_next_call_reuses(client, emu)


async def test_a_connection_whose_caller_gave_up_serves_the_next_call(
    emu: PollyEmulator,
) -> None:
    """Cancelled while connecting (awscrt cannot abort an attempt): the
    connection that still comes goes idle, and the next call uses it rather
    than dialling again (a burst of barge-ins is not a burst of handshakes)."""
    client = client_for(emu)
    task = asyncio.create_task(
        collect(client.start_speech_synthesis_stream(text=HELLO, voice_id="Matthew"))
    )
    for _ in range(3):  # into connect(), not further
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(100):
        if client.pool_stats().idle:
            break
        await asyncio.sleep(0.01)
    assert client.pool_stats().idle == 1
    assert emu.requests == []  # the caller was gone before any request
    audio = client.start_speech_synthesis_stream(text=HELLO, voice_id="Matthew")
    assert await collect(audio) == emu.expected_audio(HELLO, voice_id="Matthew")
    assert audio.metrics.connection_reused is True
    assert len(emu.connections) == 1
