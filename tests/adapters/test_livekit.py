"""The LiveKit Agents TTS adapter against the emulator: real HTTP/2 + TLS, real
signatures, LiveKit's own base classes (no job context needed: see
``test_no_job_context_is_needed``)."""

from __future__ import annotations

import asyncio
import importlib
import logging
import sys
from collections.abc import AsyncIterable, Callable
from typing import Any

import pytest

pytest.importorskip("livekit.agents")

from emulated import client_for, credentials_of
from livekit.agents import (
    APIConnectionError,
    APIConnectOptions,
    APIStatusError,
    APITimeoutError,
    tts,
)

import amazon_polly_streaming.adapters.livekit as livekit_adapter
import amazon_polly_streaming.client as client_module
from amazon_polly_streaming import (
    PollyStreamingClient,
    ServiceFailureException,
    ServiceQuotaExceededException,
    ThrottlingException,
    ValidationException,
)
from amazon_polly_streaming.adapters.livekit import PollyTTS
from amazon_polly_streaming.credentials import (
    AwsCredentials,
    CredentialsError,
    NoCredentialsError,
)
from amazon_polly_streaming.errors import (
    ConnectionClosedError,
    ResponseTimeoutError,
    StreamInterruptedError,
    UnexpectedResponseError,
)
from amazon_polly_streaming.testing import Fault, PollyEmulator

# Every test here must leave no thread, fd or connection behind.
pytestmark = pytest.mark.usefixtures("no_leaks")

RATE = 16000
WORDS = ["Hello", " there.", " How", " are", " you"]
TEXT = "".join(WORDS)
NO_RETRY = APIConnectOptions(max_retry=0)


def tts_for(emu: PollyEmulator, **options: Any) -> PollyTTS:
    """A PollyTTS that builds its own client (the path users take)."""
    return PollyTTS(
        region=emu.region,
        endpoint_url=emu.endpoint_url,
        ca_bundle=str(emu.ca_path),
        credentials=credentials_of(emu),
        **options,
    )


def expected(emu: PollyEmulator, text: str | list[str], **options: Any) -> bytes:
    options.setdefault("voice_id", "Matthew")
    options.setdefault("sample_rate", RATE)
    return emu.expected_audio(text, output_format="pcm", **options)


async def collect(
    stream: AsyncIterable[tts.SynthesizedAudio],
) -> tuple[bytes, list[tts.SynthesizedAudio]]:
    frames = [ev async for ev in stream]
    return b"".join(bytes(ev.frame.data) for ev in frames), frames


def text_events(emu: PollyEmulator, index: int = 0) -> list[tuple[str, str, bool]]:
    return [(e.event_type, e.text or "", e.flush) for e in emu.requests[index].events]


async def outcome_of(emu: PollyEmulator, index: int = 0) -> str:
    """The request's outcome once the emulator has seen its end."""
    for _ in range(100):
        outcome = emu.requests[index].outcome
        if outcome != "open":
            return outcome
        await asyncio.sleep(0.02)
    return emu.requests[index].outcome


def stray_tasks(before: set[asyncio.Task[Any]]) -> list[str]:
    """Tasks started since ``before`` that still run, the emulator's aside
    (it serves on this loop; its connection tasks are not ours)."""
    current = asyncio.current_task()
    stray: list[str] = []
    for task in asyncio.all_tasks():
        if task in before or task is current or task.done():
            continue
        code = getattr(task.get_coro(), "cr_code", None)
        filename = getattr(code, "co_filename", "")
        if "/amazon_polly_streaming/testing/" not in filename:
            stray.append(task.get_name())
    return stray


# synthesize() -------------------------------------------------------------------


async def test_synthesize_gives_the_exact_pcm(
    emu: PollyEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    polly = tts_for(emu)
    async with polly.synthesize(TEXT) as chunked:
        audio, frames = await collect(chunked)
    assert audio == expected(emu, TEXT)
    (record,) = emu.requests
    assert record.signature_ok
    assert text_events(emu) == [
        ("TextEvent", TEXT, False),
        ("CloseStreamEvent", "", False),
    ]
    assert (record.voice_id, record.output_format, record.sample_rate) == (
        "Matthew",
        "pcm",
        RATE,
    )
    assert record.header("x-amzn-engine") == "generative"
    assert record.header("x-amzn-languagecode") == "en-US"
    assert {(f.frame.sample_rate, f.frame.num_channels) for f in frames} == {(RATE, 1)}
    assert {f.request_id for f in frames} == {record.request_id}  # Polly's id
    assert frames[-1].is_final
    assert caplog.records == []  # LiveKit had nothing to warn about
    assert polly.client.pool_stats().leased == 0
    await polly.aclose()


async def test_synthesize_at_8000_hz_and_another_voice(emu: PollyEmulator) -> None:
    polly = tts_for(emu, voice_id="Ruth", sample_rate=8000, language_code=None)
    audio, frames = await collect(polly.synthesize("Eight kilohertz."))
    assert audio == expected(emu, "Eight kilohertz.", voice_id="Ruth", sample_rate=8000)
    assert frames[0].frame.sample_rate == polly.sample_rate == 8000
    assert emu.requests[0].header("x-amzn-languagecode") is None


async def test_synthesize_whitespace_makes_no_request(emu: PollyEmulator) -> None:
    polly = tts_for(emu)
    audio, frames = await collect(polly.synthesize("   "))
    assert (audio, frames, emu.requests) == (b"", [], [])


async def test_synthesize_runs_on_a_client_passed_in(emu: PollyEmulator) -> None:
    client = client_for(emu)
    polly = PollyTTS(client=client, voice_id="Joanna")
    assert polly.client is client
    audio, _ = await collect(polly.synthesize("Shared client."))
    assert audio == expected(emu, "Shared client.", voice_id="Joanna")
    await polly.aclose()  # not ours to close: the client still works
    audio, _ = await collect(PollyTTS(client=client).synthesize("Again."))
    assert audio == expected(emu, "Again.")


# stream() -----------------------------------------------------------------------


async def test_stream_word_by_word_with_flush_is_one_polly_stream(
    emu: PollyEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    polly = tts_for(emu)
    async with polly.stream() as stream:
        for word in WORDS:
            stream.push_text(word)
        stream.flush()
        stream.end_input()
        audio, frames = await collect(stream)
    assert audio == expected(emu, WORDS)
    (record,) = emu.requests  # one Polly stream for the LiveKit stream
    assert record.signature_ok
    assert all(e.signature_ok for e in record.events)
    # Each word went out as its own event; LiveKit's flush became Polly's
    # forced flush; end_input()'s own flush had nothing new to flush.
    assert text_events(emu) == [
        *(("TextEvent", w, False) for w in WORDS),
        ("TextEvent", " ", True),
        ("CloseStreamEvent", "", False),
    ]
    assert record.outcome == "completed"
    # One segment, named by Polly's request id; its last frame is final.
    assert {(f.request_id, f.segment_id) for f in frames} == {
        (record.request_id, record.request_id)
    }
    assert [f.is_final for f in frames] == [False] * (len(frames) - 1) + [True]
    assert caplog.records == []
    assert polly.client.pool_stats().leased == 0


async def test_end_input_alone_flushes_then_closes(emu: PollyEmulator) -> None:
    polly = tts_for(emu)
    stream = polly.stream()
    for word in ["No", " full", " stop"]:
        stream.push_text(word)
    stream.end_input()
    audio, _ = await collect(stream)
    await stream.aclose()
    assert audio == expected(emu, "No full stop")
    assert text_events(emu)[-2:] == [
        ("TextEvent", " ", True),
        ("CloseStreamEvent", "", False),
    ]


async def test_audio_arrives_while_text_is_still_being_pushed(
    emu: PollyEmulator,
) -> None:
    polly = tts_for(emu)
    async with polly.stream() as stream:
        for word in WORDS[:3]:  # "Hello there. How": the first sentence is whole
            stream.push_text(word)
        first = await asyncio.wait_for(anext(stream), timeout=5)
        assert not first.is_final
        assert emu.requests[0].outcome == "open"  # input still open
        for word in WORDS[3:]:
            stream.push_text(word)
        stream.end_input()
        rest, _ = await collect(stream)
    assert bytes(first.frame.data) + rest == expected(emu, WORDS)


async def test_a_slow_llm_is_kept_alive(
    emulators: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tokens further apart than Polly's idle limit (a model thinking, a tool
    call): the client's keep-alives hold the one stream open."""
    monkeypatch.setattr(client_module, "KEEPALIVE_INTERVAL", 0.1)
    emu: PollyEmulator = await emulators(idle_timeout=0.4)
    polly = tts_for(emu)
    async with polly.stream() as stream:
        for word in ["Slow", " thinking", " model."]:
            stream.push_text(word)
            await asyncio.sleep(0.6)  # longer than the idle limit
        stream.end_input()
        audio, _ = await collect(stream)
    (record,) = emu.requests
    sent = [e.text or "" for e in record.events if e.event_type == "TextEvent"]
    assert [t for t in sent if t.strip()] == ["Slow", " thinking", " model."]
    assert sent.count(" ") >= 6  # keep-alives (and the final flush)
    assert audio == expected(emu, sent)
    assert record.outcome == "completed"


async def test_livekit_retries_a_stream_with_its_text_replayed(
    emu: PollyEmulator,
) -> None:
    emu.faults.add(Fault.throttle(), times=1)
    polly = tts_for(emu)
    async with polly.stream(conn_options=APIConnectOptions(max_retry=1)) as stream:
        for word in WORDS:
            stream.push_text(word)
        stream.end_input()
        audio, _ = await collect(stream)
    assert audio == expected(emu, WORDS)
    assert [r.status for r in emu.requests] == [400, 200]
    assert text_events(emu, 1) == [
        *(("TextEvent", w, False) for w in WORDS),
        ("TextEvent", " ", True),
        ("CloseStreamEvent", "", False),
    ]


async def test_push_after_flush_is_dropped_by_livekit(emu: PollyEmulator) -> None:
    """Pins the LiveKit behaviour the adapter's one-segment design rests on:
    after ``flush()``, LiveKit itself drops further text (with a deprecation
    warning in its log), so a LiveKit stream is one segment."""
    polly = tts_for(emu)
    async with polly.stream() as stream:
        stream.push_text("First part")
        stream.flush()
        stream.push_text(" dropped by LiveKit.")
        stream.end_input()
        audio, _ = await collect(stream)
    assert audio == expected(emu, "First part")
    assert emu.requests[0].text == "First part "


async def test_stream_without_text_ends_quietly(emu: PollyEmulator) -> None:
    polly = tts_for(emu)
    async with polly.stream() as stream:
        stream.end_input()
        audio, frames = await collect(stream)
    assert (audio, frames) == (b"", [])
    assert text_events(emu) == [("CloseStreamEvent", "", False)]
    assert emu.requests[0].outcome == "completed"


async def test_aclose_mid_audio_stops_polly_and_leaves_nothing(
    emu: PollyEmulator,
) -> None:
    emu.faults.add(Fault.slow_audio(0.05))
    polly = tts_for(emu)
    before = set(asyncio.all_tasks())
    stream = polly.stream()
    stream.push_text("A first sentence. A second one. A third one.")
    stream.end_input()
    await asyncio.wait_for(anext(stream), timeout=5)
    await stream.aclose()  # barge-in: the user talks over the agent
    assert await outcome_of(emu) == "reset_by_client"
    assert emu.requests[0].audio_events < 10  # Polly stopped early
    assert polly.client.pool_stats().leased == 0
    assert stray_tasks(before) == []
    # The pool is healthy: the next utterance works.
    audio, _ = await collect(polly.synthesize("Next."))
    assert audio == expected(emu, "Next.")


async def test_cancelling_the_consumer_stops_the_stream(emu: PollyEmulator) -> None:
    """LiveKit's voice pipeline cancels the task reading the TTS on barge-in
    and then closes the stream (``async with``)."""
    emu.faults.add(Fault.slow_audio(0.05))
    polly = tts_for(emu)
    before = set(asyncio.all_tasks())
    started = asyncio.Event()

    async def speak() -> None:
        async with polly.stream() as stream:
            stream.push_text("A first sentence. A second one. A third one.")
            async for _ in stream:
                started.set()

    task = asyncio.create_task(speak())
    await asyncio.wait_for(started.wait(), timeout=5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await outcome_of(emu) == "reset_by_client"
    assert polly.client.pool_stats().leased == 0
    assert stray_tasks(before) == []


async def test_aclose_of_synthesize_mid_audio_stops_polly(emu: PollyEmulator) -> None:
    emu.faults.add(Fault.slow_audio(0.05))
    polly = tts_for(emu)
    before = set(asyncio.all_tasks())
    chunked = polly.synthesize("A first sentence. A second one. A third one.")
    await asyncio.wait_for(anext(chunked), timeout=5)
    await chunked.aclose()
    assert await outcome_of(emu) in {"reset_by_client", "connection_lost"}
    assert polly.client.pool_stats().leased == 0
    assert stray_tasks(before) == []


# Errors -------------------------------------------------------------------------


@pytest.mark.parametrize("call", ["synthesize", "stream"])
async def test_validation_error_is_a_permanent_status_error(
    emu: PollyEmulator, call: str
) -> None:
    polly = tts_for(emu, voice_id="Aditi")  # not a generative voice
    source = polly.synthesize(TEXT) if call == "synthesize" else polly.stream()
    if isinstance(source, tts.SynthesizeStream):
        source.push_text(TEXT)
        source.end_input()
    with pytest.raises(APIStatusError) as raised:
        await collect(source)
    await source.aclose()
    error = raised.value
    assert (error.status_code, error.retryable) == (400, False)
    assert error.request_id == emu.requests[0].request_id
    cause = error.__cause__
    assert isinstance(cause, ValidationException)
    assert cause.reason == "fieldValidationFailed"
    assert cause.message
    assert error.message == f"ValidationException: {cause.message}"
    assert error.body == {"code": "ValidationException", "message": cause.message}
    assert len(emu.requests) == 1  # LiveKit did not retry it


async def test_throttling_is_retried_by_livekit(emu: PollyEmulator) -> None:
    emu.faults.add(Fault.throttle(), times=1)
    polly = tts_for(emu)
    errors: list[tts.TTSError] = []
    # rtc.EventEmitter types its callbacks as a bare Callable (Unknown to pyright).
    polly.on("error", errors.append)  # pyright: ignore[reportUnknownMemberType]
    chunked = polly.synthesize(TEXT, conn_options=APIConnectOptions(max_retry=1))
    audio, _ = await collect(chunked)
    assert audio == expected(emu, TEXT)
    assert [r.status for r in emu.requests] == [400, 200]  # one attempt each
    (reported,) = errors
    assert reported.recoverable
    assert isinstance(reported.error, APIStatusError)
    assert (reported.error.status_code, reported.error.retryable) == (429, True)
    assert isinstance(reported.error.__cause__, ThrottlingException)


async def test_throttling_after_audio_in_a_stream_is_not_retried(
    emu: PollyEmulator,
) -> None:
    emu.faults.add(Fault.throttle(mid_stream=True, after_audio_events=1))
    polly = tts_for(emu)
    stream = polly.stream(conn_options=APIConnectOptions(max_retry=3))
    stream.push_text("A first sentence. A second one.")
    stream.end_input()
    received: list[tts.SynthesizedAudio] = []
    with pytest.raises(APIStatusError) as raised:
        async for ev in stream:
            received.append(ev)
    await stream.aclose()
    assert (raised.value.status_code, raised.value.retryable) == (429, True)
    assert raised.value.request_id == emu.requests[0].request_id
    assert received  # the audio before the error was delivered...
    assert len(emu.requests) == 1  # ...so LiveKit did not start over
    assert polly.client.pool_stats().leased == 0


@pytest.mark.parametrize(
    ("fault", "status", "retryable", "cause"),
    [
        (Fault.service_failure(), 500, True, ServiceFailureException),
        (
            Fault.service_failure(mid_stream=True, after_audio_events=0),
            500,
            True,
            ServiceFailureException,
        ),
        (Fault.quota(after_audio_events=1), 402, False, ServiceQuotaExceededException),
        (Fault.http_error(503), 503, True, UnexpectedResponseError),
        (Fault.http_error(418, "TeapotException"), 418, False, UnexpectedResponseError),
    ],
    ids=["http-500", "event-500", "quota", "http-503", "http-418"],
)
async def test_status_errors(
    emu: PollyEmulator,
    fault: Fault,
    status: int,
    retryable: bool,
    cause: type[Exception],
) -> None:
    emu.faults.add(fault)
    polly = tts_for(emu)
    stream = polly.stream(conn_options=NO_RETRY)
    stream.push_text("A first sentence. A second one.")
    stream.end_input()
    with pytest.raises(APIStatusError) as raised:
        await collect(stream)
    await stream.aclose()
    error = raised.value
    assert (error.status_code, error.retryable) == (status, retryable)
    assert error.request_id == emu.requests[0].request_id
    assert type(error.__cause__) is cause
    assert polly.client.pool_stats().leased == 0


@pytest.mark.parametrize("call", ["synthesize", "stream"])
async def test_dropped_connection_is_a_connection_error(
    emu: PollyEmulator, call: str
) -> None:
    emu.faults.add(Fault.drop_connection(after_audio_events=1))
    polly = tts_for(emu)
    text = "A first sentence. A second one."
    source: tts.ChunkedStream | tts.SynthesizeStream
    if call == "stream":
        source = polly.stream(conn_options=NO_RETRY)
        source.push_text(text)
        source.end_input()
    else:  # a ChunkedStream starts when made: make only the one
        source = polly.synthesize(text, conn_options=NO_RETRY)
    with pytest.raises(APIConnectionError) as raised:
        await collect(source)
    await source.aclose()
    error = raised.value
    assert type(error) is APIConnectionError
    assert error.retryable
    # Dropped mid-response: the reset or the missing StreamClosedEvent,
    # whichever the client sees first.
    cause = error.__cause__
    assert isinstance(cause, ConnectionClosedError | StreamInterruptedError)
    assert f"caused by {type(cause).__name__}" in str(error)
    assert polly.client.pool_stats().leased == 0


async def test_response_timeout_is_an_api_timeout(emu: PollyEmulator) -> None:
    emu.faults.add(Fault.delay_headers(2.0))
    client = client_for(emu, first_byte_timeout=0.3, max_attempts=1)
    polly = PollyTTS(client=client)
    stream = polly.stream(conn_options=NO_RETRY)
    stream.push_text(TEXT)
    stream.end_input()
    with pytest.raises(APITimeoutError) as raised:
        await collect(stream)
    await stream.aclose()
    assert raised.value.retryable
    assert isinstance(raised.value.__cause__, ResponseTimeoutError)


class _Failing:
    """A credentials provider (the client's public extension point) that fails."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    async def get_credentials(self) -> AwsCredentials:
        raise self.error


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        (NoCredentialsError([("environment", "not set")]), False),
        (CredentialsError("container credentials: HTTP 500"), True),
    ],
)
async def test_credential_failures_are_connection_errors(
    emu: PollyEmulator, error: Exception, retryable: bool
) -> None:
    polly = PollyTTS(
        region=emu.region,
        endpoint_url=emu.endpoint_url,
        ca_bundle=str(emu.ca_path),
        credentials=_Failing(error),
    )
    with pytest.raises(APIConnectionError) as raised:
        await collect(polly.synthesize(TEXT, conn_options=NO_RETRY))
    assert type(raised.value) is APIConnectionError
    assert raised.value.retryable is retryable
    assert raised.value.__cause__ is error
    assert emu.requests == []


async def test_polly_ending_before_the_input_is_an_error() -> None:
    """A stream Polly ends while our input is still open (no conforming
    server does; the emulator cannot be made to) must fail, not wait for text
    forever nor pass for a short success."""
    sender = asyncio.create_task(asyncio.sleep(3600), name="sender")
    receiver = asyncio.create_task(asyncio.sleep(0), name="receiver")
    with pytest.raises(APIConnectionError, match="before its input was closed"):
        await livekit_adapter._supervise(sender, receiver)  # pyright: ignore[reportPrivateUsage]
    await livekit_adapter._reap(sender, receiver)  # pyright: ignore[reportPrivateUsage]
    assert sender.cancelled()


# Configuration ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"sample_rate": 24000}, ValueError, "sample_rate must be 8000 or 16000"),
        ({"sample_rate": "16000"}, TypeError, "sample_rate must be an int"),
        ({"sample_rate": True}, TypeError, "sample_rate must be an int"),
        ({"voice_id": ""}, ValueError, "voice_id"),
        ({"voice_id": "Matthew\r\nx-evil: 1"}, ValueError, "voice_id"),
        ({"engine": "generative\n"}, ValueError, "engine"),
        ({"language_code": "en-US\r\n"}, ValueError, "language_code"),
        ({"region": "eu central 1"}, ValueError, "region"),
        ({"pool_size": 0}, ValueError, "pool_size"),
    ],
)
def test_bad_arguments_fail_at_construction(
    options: dict[str, Any], error: type[Exception], match: str
) -> None:
    options.setdefault("region", "eu-central-1")
    with pytest.raises(error, match=match):
        PollyTTS(**options)


def test_client_and_client_arguments_are_exclusive() -> None:
    client = PollyStreamingClient("eu-central-1")
    with pytest.raises(TypeError, match=r"either client or .* region, pool_size"):
        PollyTTS(client=client, region="eu-central-1", pool_size=2)
    with pytest.raises(TypeError, match="client must be a PollyStreamingClient"):
        PollyTTS(client="eu-central-1")  # type: ignore[arg-type] # pyright: ignore[reportArgumentType]


def test_region_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    with pytest.raises(ValueError, match="region is required"):
        PollyTTS()
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    assert PollyTTS().client.region == "eu-west-1"
    monkeypatch.setenv("AWS_REGION", "us-west-2")
    polly = PollyTTS()
    assert polly.client.region == "us-west-2"
    # A client made here leaves retries to LiveKit (conn_options.max_retry).
    assert polly.client.config.max_attempts == 1


def test_what_livekit_sees() -> None:
    polly = PollyTTS(region="eu-central-1")
    assert polly.capabilities.streaming
    assert (polly.sample_rate, polly.num_channels) == (16000, 1)
    assert (polly.model, polly.provider, polly.voice_id) == (
        "generative",
        "Amazon Polly",
        "Matthew",
    )


async def test_update_options_applies_to_the_next_stream(emu: PollyEmulator) -> None:
    polly = tts_for(emu)
    running = polly.stream()
    polly.update_options(voice_id="Ruth", language_code=None)
    assert polly.voice_id == "Ruth"
    with pytest.raises(ValueError, match="voice_id"):
        polly.update_options(voice_id="")
    assert polly.voice_id == "Ruth"  # a rejected update changes nothing
    running.push_text("Old voice.")
    running.end_input()
    old, _ = await collect(running)
    await running.aclose()
    new, _ = await collect(polly.synthesize("New voice."))
    assert old == expected(emu, "Old voice.")
    assert new == expected(emu, "New voice.", voice_id="Ruth")
    assert [r.voice_id for r in emu.requests] == ["Matthew", "Ruth"]
    assert emu.requests[1].header("x-amzn-languagecode") is None


async def test_prewarm_opens_a_connection_the_first_utterance_uses(
    emu: PollyEmulator,
) -> None:
    polly = tts_for(emu)
    polly.prewarm()
    for _ in range(100):
        if polly.client.pool_stats().idle == 1:
            break
        await asyncio.sleep(0.02)
    assert len(emu.connections) == 1
    audio, _ = await collect(polly.synthesize(TEXT))
    assert audio == expected(emu, TEXT)
    assert len(emu.connections) == 1  # the warm one carried it
    await polly.aclose()


async def test_prewarm_failure_is_logged_not_raised(
    emulators: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    emu: PollyEmulator = await emulators()
    polly = PollyTTS(
        region=emu.region,
        endpoint_url=emu.endpoint_url,
        ca_bundle=str(emu.ca_path),
        credentials=_Failing(NoCredentialsError([("environment", "not set")])),
    )
    polly.prewarm()
    await asyncio.sleep(0.1)
    await polly.aclose()
    assert "prewarming Polly failed" in caplog.text


def test_no_job_context_is_needed() -> None:
    """Some LiveKit plugins need a job context (an ``http_session``); this one
    only needs a running loop for the streams, none for construction."""
    polly = PollyTTS(region="eu-central-1")
    polly.prewarm()  # outside a loop: nothing to do, no error
    assert polly.client.pool_stats().leased == 0


def test_missing_livekit_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "amazon_polly_streaming.adapters.livekit")
    monkeypatch.setitem(sys.modules, "livekit.agents", None)
    with pytest.raises(ImportError) as raised:
        importlib.import_module("amazon_polly_streaming.adapters.livekit")
    assert 'pip install "amazon-polly-streaming[livekit]"' in str(raised.value)
