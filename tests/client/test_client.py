"""PollyStreamingClient against the emulator: real HTTP/2 + TLS, real signatures."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from emulated import client_for, collect

import amazon_polly_streaming.client as client_module
from amazon_polly_streaming import (
    FLUSH,
    PollyStreamingClient,
    ServiceException,
    ServiceFailureException,
    ServiceQuotaExceededException,
    ThrottlingException,
    ValidationException,
)
from amazon_polly_streaming.errors import (
    ResponseTimeoutError,
    StreamInterruptedError,
    TransportError,
    UnexpectedResponseError,
)
from amazon_polly_streaming.testing import Fault, PollyEmulator

HELLO = "hello world, how are you today"

# Every test here must leave no thread, fd or connection behind.
pytestmark = pytest.mark.usefixtures("no_leaks")


# Basics -----------------------------------------------------------------------


async def test_the_brief_example_yields_the_exact_audio(emu: PollyEmulator) -> None:
    client = client_for(emu)
    audio = await collect(
        client.start_speech_synthesis_stream(text=HELLO, voice_id="Matthew")
    )
    assert audio == emu.expected_audio(HELLO, voice_id="Matthew")
    (record,) = emu.requests
    assert record.signature_ok
    assert all(e.signature_ok for e in record.events)
    assert record.final_envelope
    assert record.client_end_stream
    assert record.outcome == "completed"
    assert record.header("x-amzn-languagecode") == "en-US"
    assert record.header("content-type") == "application/vnd.amazon.eventstream"
    assert record.header("host") is None  # signed, carried by :authority
    assert "host" in record.signed_headers


async def test_audio_is_yielded_as_it_arrives(emu: PollyEmulator) -> None:
    client = client_for(emu)
    chunks = [
        c
        async for c in client.start_speech_synthesis_stream(
            text="One. Two. Three.", voice_id="Joanna", output_format="pcm"
        )
    ]
    assert len(chunks) == emu.requests[0].audio_events > 1


async def test_construction_does_no_io(emu: PollyEmulator) -> None:
    client = client_for(emu)
    stream = client.start_speech_synthesis_stream(text=HELLO, voice_id="Matthew")
    await asyncio.sleep(0.05)
    assert emu.connections == []
    await collect(stream)
    assert len(emu.connections) == 1


@pytest.mark.parametrize(
    ("output_format", "sample_rate"),
    [("pcm", None), ("ogg_opus", None), ("mulaw", "8000"), ("ogg_vorbis", "16000")],
)
async def test_every_format_passes_through(
    emu: PollyEmulator, output_format: str, sample_rate: str | None
) -> None:
    client = client_for(emu)
    audio = await collect(
        client.start_speech_synthesis_stream(
            text="Formats.",
            voice_id="Ruth",
            output_format=output_format,
            sample_rate=sample_rate,
        )
    )
    rate = None if sample_rate is None else int(sample_rate)
    expected = emu.expected_audio(
        "Formats.", voice_id="Ruth", output_format=output_format, sample_rate=rate
    )
    assert audio == expected


# Pool ------------------------------------------------------------------------


async def test_sequential_calls_reuse_one_connection(emu: PollyEmulator) -> None:
    client = client_for(emu)
    for _ in range(5):
        await collect(
            client.start_speech_synthesis_stream(text=HELLO, voice_id="Matthew")
        )
    assert len(emu.connections) == 1  # one TLS handshake
    assert emu.connections[0].streams == 5
    stats = client.pool_stats()
    assert (stats.idle, stats.leased, stats.waiting) == (1, 0, 0)


async def test_two_clients_share_idle_connections(emu: PollyEmulator) -> None:
    first, second = client_for(emu), client_for(emu)
    await collect(first.start_speech_synthesis_stream(text=HELLO, voice_id="Matthew"))
    await collect(second.start_speech_synthesis_stream(text=HELLO, voice_id="Matthew"))
    assert len(emu.connections) == 1


async def test_pool_size_bounds_concurrency_fifo(emulators: Callable[..., Any]) -> None:
    emu = await emulators(max_concurrent_streams=1, synthesis_delay=0.05)
    client = client_for(emu, pool_size=2)
    order: list[int] = []
    peak_waiting = 0

    async def one(i: int) -> None:
        await collect(
            client.start_speech_synthesis_stream(text=f"Call {i}.", voice_id="Matthew")
        )
        order.append(i)

    async def watch() -> None:
        nonlocal peak_waiting
        for _ in range(200):
            peak_waiting = max(peak_waiting, client.pool_stats().waiting)
            await asyncio.sleep(0.005)

    watcher = asyncio.create_task(watch())
    tasks = []
    for i in range(6):
        tasks.append(asyncio.create_task(one(i)))
        await asyncio.sleep(0.002)  # a definite arrival order
    await asyncio.gather(*tasks)
    watcher.cancel()
    assert peak_waiting == 4
    assert len(emu.connections) == 2  # two leases at most, each reused
    assert all(c.max_concurrent_streams_seen == 1 for c in emu.connections)
    assert all(c.protocol_errors == [] for c in emu.connections)
    assert order[:2] == [0, 1] or sorted(order[:2]) == [0, 1]
    assert client.pool_stats().leased == 0


async def test_use_pool_false_uses_and_closes_a_dedicated_connection(
    emu: PollyEmulator,
) -> None:
    client = client_for(emu)
    for _ in range(2):
        await collect(
            client.start_speech_synthesis_stream(
                text=HELLO, voice_id="Matthew", use_pool=False
            )
        )
    assert len(emu.connections) == 2
    assert client.pool_stats().idle == 0


def test_a_cached_client_survives_one_event_loop_after_another() -> None:
    with PollyEmulator().running_in_thread() as emu:
        client = client_for(emu)
        for _ in range(3):
            audio = asyncio.run(
                collect(
                    client.start_speech_synthesis_stream(text=HELLO, voice_id="Matthew")
                )
            )
            assert audio == emu.expected_audio(HELLO, voice_id="Matthew")
        PollyStreamingClient.close_idle_connections()


# Errors ----------------------------------------------------------------------


async def test_modeled_http_error_maps_to_its_class(emu: PollyEmulator) -> None:
    client = client_for(emu)
    with pytest.raises(ValidationException) as raised:
        await collect(
            client.start_speech_synthesis_stream(text=HELLO, voice_id="Aditi")
        )
    error = raised.value
    assert error.reason == "fieldValidationFailed"
    assert error.fields is not None
    assert error.fields[0].name == "VoiceId"
    assert error.request_id == emu.requests[0].request_id
    assert not isinstance(error, RuntimeError)
    assert len(emu.requests) == 1  # a validation error is never retried


@pytest.mark.parametrize(
    ("fault", "error_class"),
    [
        (Fault.throttle(mid_stream=True, after_audio_events=1), ThrottlingException),
        (
            Fault.service_failure(mid_stream=True, after_audio_events=1),
            ServiceFailureException,
        ),
        (Fault.quota(after_audio_events=1), ServiceQuotaExceededException),
    ],
)
async def test_exception_event_after_audio_is_raised_there(
    emu: PollyEmulator, fault: Fault, error_class: type[ServiceException]
) -> None:
    emu.faults.add(fault)
    client = client_for(emu)
    received: list[bytes] = []
    with pytest.raises(error_class) as raised:
        async for chunk in client.start_speech_synthesis_stream(
            text="A first sentence. A second one.",
            voice_id="Matthew",
            output_format="pcm",
        ):
            received.append(chunk)
    assert len(received) == 1  # the audio before the error was yielded
    assert raised.value.request_id == emu.requests[0].request_id
    assert len(emu.requests) == 1  # never retried after audio


async def test_unknown_exception_event_is_a_plain_service_exception(
    emu: PollyEmulator,
) -> None:
    emu.faults.add(
        Fault.unknown_exception_event("ShinyNewException", after_audio_events=0)
    )
    client = client_for(emu)
    with pytest.raises(ServiceException) as raised:
        await collect(
            client.start_speech_synthesis_stream(text=HELLO, voice_id="Matthew")
        )
    assert type(raised.value) is ServiceException
    assert raised.value.code == "ShinyNewException"


async def test_unknown_http_error_is_a_runtime_error_with_status(
    emu: PollyEmulator,
) -> None:
    emu.faults.add(Fault.http_error(418, "TeapotException"))
    client = client_for(emu)
    with pytest.raises(UnexpectedResponseError) as raised:
        await collect(
            client.start_speech_synthesis_stream(text=HELLO, voice_id="Matthew")
        )
    error = raised.value
    assert isinstance(error, RuntimeError)
    assert (error.status, error.error_type) == (418, "TeapotException")
    assert error.request_id == emu.requests[0].request_id
    assert "418" in str(error)


async def test_throttling_before_the_stream_is_retried(emu: PollyEmulator) -> None:
    emu.faults.add(Fault.throttle(), times=2)
    client = client_for(emu, max_attempts=3)
    audio = await collect(
        client.start_speech_synthesis_stream(text=HELLO, voice_id="Matthew")
    )
    assert audio == emu.expected_audio(HELLO, voice_id="Matthew")
    assert [r.status for r in emu.requests] == [400, 400, 200]


async def test_retries_stop_at_max_attempts(
    emu: PollyEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    emu.faults.add(Fault.throttle(), times=5)
    client = client_for(emu)
    with pytest.raises(ThrottlingException):
        await collect(
            client.start_speech_synthesis_stream(text=HELLO, voice_id="Matthew")
        )
    assert len(emu.requests) == 2


@pytest.mark.parametrize(
    "fault",
    [
        Fault.drop_connection(after_audio_events=1),
        Fault.rst_stream(after_audio_events=1),
        Fault.goaway(after_audio_events=1),
        Fault.end_without_close(after_audio_events=1),
    ],
    ids=["drop", "rst", "goaway", "end-without-close"],
)
async def test_a_stream_that_ends_early_raises(
    emu: PollyEmulator, fault: Fault
) -> None:
    emu.faults.add(fault)
    client = client_for(emu)
    received: list[bytes] = []
    with pytest.raises(TransportError) as raised:
        async for chunk in client.start_speech_synthesis_stream(
            text="A first sentence. A second one.",
            voice_id="Matthew",
            output_format="pcm",
        ):
            received.append(chunk)
    assert isinstance(raised.value, RuntimeError)
    assert len(received) == 1
    if fault.kind == "end_without_close":
        assert isinstance(raised.value, StreamInterruptedError)
    # The pool is healthy afterwards: the next call succeeds.
    assert client.pool_stats().leased == 0
    audio = await collect(
        client.start_speech_synthesis_stream(text=HELLO, voice_id="Matthew")
    )
    assert audio == emu.expected_audio(HELLO, voice_id="Matthew")


async def test_response_headers_past_first_byte_timeout(emu: PollyEmulator) -> None:
    emu.faults.add(Fault.delay_headers(2.0))
    client = client_for(emu, first_byte_timeout=0.3, max_attempts=1)
    with pytest.raises(
        ResponseTimeoutError, match=r"no response headers within 0\.3 s"
    ):
        await collect(
            client.start_speech_synthesis_stream(text=HELLO, voice_id="Matthew")
        )


# Beyond the brief --------------------------------------------------------------


async def test_incremental_text_with_keepalive(
    emulators: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_module, "KEEPALIVE_INTERVAL", 0.1)
    emu = await emulators(idle_timeout=0.4)

    async def tokens() -> AsyncIterator[str]:
        for word in ["Hello", " streaming", " world."]:
            yield word
            await asyncio.sleep(0.6)  # longer than the idle limit

    client = client_for(emu)
    audio = await collect(
        client.start_speech_synthesis_stream(text=tokens(), voice_id="Matthew")
    )
    record = emu.requests[0]
    sent = [e.text or "" for e in record.events if e.event_type == "TextEvent"]
    assert audio == emu.expected_audio(sent, voice_id="Matthew")
    assert "".join(sent).split() == ["Hello", "streaming", "world."]
    keepalives = [e for e in record.events if e.text == " "]
    assert len(keepalives) >= 6
    # Keep-alive spaces inside a sentence are part of its text (and its count).
    assert record.request_characters == len("".join(sent).strip())


async def test_sync_iterable_text_and_flush_marker(emu: PollyEmulator) -> None:
    client = client_for(emu)
    audio = await collect(
        client.start_speech_synthesis_stream(
            text=["No sentence end", FLUSH, " but more."],
            voice_id="Matthew",
            output_format="pcm",
        )
    )
    record = emu.requests[0]
    sent = [(e.text, e.flush) for e in record.events if e.event_type == "TextEvent"]
    assert sent == [("No sentence end", False), (" ", True), (" but more.", False)]
    assert len(audio) == len("No sentence endbut more.") * 0.040 * 16000 * 2


async def test_long_text_is_split_at_sentence_boundaries(emu: PollyEmulator) -> None:
    text = " ".join(f"Sentence number {i} is here." for i in range(200))
    client = client_for(emu)
    await collect(
        client.start_speech_synthesis_stream(
            text=text, voice_id="Matthew", output_format="pcm"
        )
    )
    events = [
        e.text or "" for e in emu.requests[0].events if e.event_type == "TextEvent"
    ]
    assert len(events) > 1
    assert all(len(t) <= 1500 for t in events)
    assert "".join(events) == text
    assert all(t.rstrip().endswith(".") for t in events)


async def test_ssml_documents_are_sent_whole(emu: PollyEmulator) -> None:
    ssml = "<speak>" + "Long SSML. " * 300 + "</speak>"
    client = client_for(emu)
    await collect(
        client.start_speech_synthesis_stream(
            text=ssml, voice_id="Matthew", text_type="ssml", output_format="pcm"
        )
    )
    events = [e for e in emu.requests[0].events if e.event_type == "TextEvent"]
    assert [e.text for e in events] == [ssml]
    assert events[0].text_type == "ssml"


async def test_full_duplex_session(emu: PollyEmulator) -> None:
    client = client_for(emu)
    async with client.open_stream(voice_id="Matthew", output_format="pcm") as stream:
        await stream.send("Hello there.")
        events = stream.events()
        first = await anext(events)
        assert first.__class__.__name__ == "AudioEvent"
        await stream.send("No end yet", flush=True)
        await stream.close_input()
        rest = [e async for e in events]
    assert rest[-1].__class__.__name__ == "StreamClosedEvent"
    assert stream.request_characters == len("Hello there.No end yet")
    assert stream.request_id == emu.requests[0].request_id


async def test_breaking_out_releases_the_lease_and_stops_the_stream(
    emu: PollyEmulator,
) -> None:
    emu.faults.add(Fault.slow_audio(0.05))
    client = client_for(emu)
    stream = client.start_speech_synthesis_stream(
        text="A first sentence. A second one. A third.",
        voice_id="Matthew",
        output_format="pcm",
    )
    async for _chunk in stream:
        break
    await stream.aclose()  # type: ignore[attr-defined]
    assert client.pool_stats().leased == 0
    await asyncio.sleep(0.1)
    assert emu.requests[0].outcome in {"connection_lost", "reset_by_client"}
    audio = await collect(
        client.start_speech_synthesis_stream(text=HELLO, voice_id="Matthew")
    )
    assert audio == emu.expected_audio(HELLO, voice_id="Matthew")


async def test_cancelling_the_task_releases_the_lease(emu: PollyEmulator) -> None:
    emu.faults.add(Fault.slow_audio(0.2))
    client = client_for(emu)
    task = asyncio.create_task(
        collect(client.start_speech_synthesis_stream(text=HELLO, voice_id="Matthew"))
    )
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert client.pool_stats().leased == 0
    assert await collect(
        client.start_speech_synthesis_stream(text="Again.", voice_id="Matthew")
    )


@pytest.mark.parametrize(
    ("fault", "error_class"),
    [
        # As a non-2xx response...
        (Fault.validation("bad request"), ValidationException),
        (Fault.throttle(), ThrottlingException),
        (Fault.service_failure(), ServiceFailureException),
        (
            Fault.http_error(402, "ServiceQuotaExceededException"),
            ServiceQuotaExceededException,
        ),
        # ...and as an exception event before any audio.
        (Fault.validation("bad event", mid_stream=True), ValidationException),
        (Fault.throttle(mid_stream=True), ThrottlingException),
        (Fault.service_failure(mid_stream=True), ServiceFailureException),
        (Fault.quota(), ServiceQuotaExceededException),
    ],
    ids=lambda v: getattr(v, "kind", getattr(v, "__name__", str(v))),
)
async def test_each_modeled_error_from_both_arrival_paths(
    emu: PollyEmulator, fault: Fault, error_class: type[ServiceException]
) -> None:
    emu.faults.add(fault)
    client = client_for(emu, max_attempts=1)
    with pytest.raises(error_class) as raised:
        await collect(
            client.start_speech_synthesis_stream(text=HELLO, voice_id="Matthew")
        )
    assert type(raised.value) is error_class
    assert raised.value.request_id == emu.requests[0].request_id
    assert client.pool_stats().leased == 0
