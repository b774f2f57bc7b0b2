"""The pipecat TTS service against the local emulator (real HTTP/2, TLS, SigV4).

The service is driven the way pipecat drives it: inside a real pipeline
(``pipecat.tests.utils.run_test``: a ``PipelineWorker`` with a source and a
sink that record the frames going each way), so the base ``TTSService``'s own
machinery (sentence aggregation, audio contexts, the interruption path, error
reporting) runs as in production. Calling ``run_tts`` and the hooks by hand
would skip exactly the parts where an adapter goes wrong (which context the
audio lands in, when the base pushes ``TTSStartedFrame``, what an interruption
drops), and the hooks need the task manager a pipeline sets up.

Interruptions are triggered by the audio itself: a processor behind the
service pushes ``InterruptionWorkerFrame`` upstream when the Nth audio frame
passes (as a user-turn processor does), and the emulator paces its audio
events (``Fault.slow_audio``), so "mid-audio" holds without relying on sleeps.
"""

from __future__ import annotations

import asyncio
import importlib
import re
import sys
import warnings
from collections.abc import Sequence
from typing import Any

import pytest

pytest.importorskip("pipecat")

import numpy as np
from pipecat.audio.resamplers.soxr_resampler import SOXRAudioResampler
from pipecat.frames.frames import (
    AggregatedTextFrame,
    CancelFrame,
    ErrorFrame,
    Frame,
    InterruptionFrame,
    InterruptionWorkerFrame,
    LLMAssistantPushAggregationFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    MetricsFrame,
    TTSAudioRawFrame,
    TTSSpeakFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    TTSTextFrame,
    TTSUpdateSettingsFrame,
)
from pipecat.metrics.metrics import (
    ProcessingMetricsData,
    TTFBMetricsData,
    TTSUsageMetricsData,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.tests.utils import SleepFrame, run_test
from pipecat.transcriptions.language import Language
from pipecat.utils.errors import ErrorCategory

from amazon_polly_streaming import (
    AwsCredentials,
    PollyStreamingClient,
    ServiceException,
    ServiceFailureException,
    ServiceQuotaExceededException,
    StreamInterruptedError,
    ThrottlingException,
    UnexpectedResponseError,
    ValidationException,
)
from amazon_polly_streaming.adapters.pipecat import PollyStreamingTTSService
from amazon_polly_streaming.credentials import NoCredentialsError
from amazon_polly_streaming.errors import ClientClosedError
from amazon_polly_streaming.testing import Fault, PollyEmulator

with warnings.catch_warnings():
    # pipecat's TTS module warns (DeprecationWarning) about its own deprecated
    # aliases when first imported; the adapter imports it the same way.
    warnings.simplefilter("ignore", DeprecationWarning)
    from pipecat.services.tts_service import TextAggregationMode

pytestmark = pytest.mark.usefixtures("no_leaks")

VOICE = "Matthew"
SPOKEN = [AggregatedTextFrame, TTSStartedFrame, TTSTextFrame]
"""What the base pushes for a ``TTSSpeakFrame`` before its audio."""
SPOKEN_END = [LLMAssistantPushAggregationFrame, TTSStoppedFrame]
"""What ends a ``TTSSpeakFrame`` outside an LLM turn (the base commits the text)."""


def client_for(emu: PollyEmulator, **options: Any) -> PollyStreamingClient:
    creds = emu.credentials
    return PollyStreamingClient(
        emu.region,
        endpoint_url=emu.endpoint_url,
        ca_bundle=str(emu.ca_path),
        credentials=AwsCredentials(
            access_key_id=creds.access_key_id,
            secret_access_key=creds.secret_access_key,
            session_token=creds.session_token,
        ),
        **options,
    )


def service(emu: PollyEmulator, **options: Any) -> PollyStreamingTTSService:
    options.setdefault("prewarm", False)  # connection counts stay the test's own
    # pipecat ends an audio context that stays quiet this long by itself,
    # which would hide a turn the service forgets to end (see ``drive``).
    options.setdefault("stop_frame_timeout_s", 30.0)
    return PollyStreamingTTSService(client=client_for(emu), **options)


async def drive(
    processor: FrameProcessor, **options: Any
) -> tuple[Sequence[Frame], Sequence[Frame]]:
    """``run_test``, bounded: a turn whose audio context the service never
    ends would hold the pipeline until pipecat's quiet-context timeout (30 s
    in these tests, see ``service``), so that fails here instead."""
    return await asyncio.wait_for(run_test(processor, **options), timeout=15)


def types(frames: Sequence[Frame]) -> list[type[Frame]]:
    return [type(f) for f in frames]


def audio_of(frames: Sequence[Frame]) -> bytes:
    return b"".join(f.audio for f in frames if isinstance(f, TTSAudioRawFrame))


def pcm(emu: PollyEmulator, text: str, rate: int = 16000) -> bytes:
    """The exact pcm the emulator streams for ``text`` (Matthew)."""
    return emu.expected_audio(
        text, voice_id=VOICE, output_format="pcm", sample_rate=rate
    )


def events(emu: PollyEmulator, index: int = 0) -> list[tuple[str, str | None, bool]]:
    return [(e.event_type, e.text, e.flush) for e in emu.requests[index].events]


def polly_tasks() -> list[str]:
    """Tasks of the service or the client still alive (none may outlive a test)."""
    return sorted(
        t.get_name()
        for t in asyncio.all_tasks()
        if t is not asyncio.current_task() and "polly" in t.get_name().lower()
    )


def n_events(audio: bytes, size: int = 4096) -> int:
    return -(-len(audio) // size)


class InterruptAtAudio(FrameProcessor):
    """Interrupts the pipeline (as a user-turn processor does) when the
    ``at``-th audio frame passes; records what it saw."""

    def __init__(self, at: int) -> None:
        super().__init__()  # pyright: ignore[reportUnknownMemberType] - pipecat's **kwargs
        self.at = at
        self.audio_frames = 0

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)
        if isinstance(frame, TTSAudioRawFrame):
            self.audio_frames += 1
            if self.audio_frames == self.at:
                await self.push_frame(
                    InterruptionWorkerFrame(), FrameDirection.UPSTREAM
                )


# What it sends and what comes back ----------------------------------------------


async def test_speak_frame_streams_the_exact_audio_between_started_and_stopped(
    emu: PollyEmulator,
) -> None:
    text = "Hello there. How are you today?"
    tts = service(emu, sample_rate=16000)
    down, up = await drive(tts, frames_to_send=[TTSSpeakFrame(text)])

    expected = pcm(emu, text)
    assert types(down) == [
        *SPOKEN,
        *[TTSAudioRawFrame]
        * n_events(expected),  # one frame per audio event, as it came
        *SPOKEN_END,
    ]
    assert audio_of(down) == expected
    started = down[1]
    assert isinstance(started, TTSStartedFrame)
    for frame in down:
        if isinstance(frame, TTSAudioRawFrame):
            assert (frame.sample_rate, frame.num_channels) == (16000, 1)
            assert frame.context_id == started.context_id
    assert up == []

    [record] = emu.requests
    assert record.signature_ok is True
    assert all(e.signature_ok for e in record.events)
    assert (record.voice_id, record.output_format, record.sample_rate) == (
        VOICE,
        "pcm",
        16000,
    )
    assert record.language_code == "en-US"
    assert record.header("x-amzn-Engine") == "generative"
    assert events(emu) == [
        ("TextEvent", text, False),
        ("TextEvent", " ", True),  # pipecat found the end: Polly speaks it now
        ("CloseStreamEvent", None, False),
    ]
    assert record.outcome == "completed"
    assert tts.client.pool_stats().leased == 0
    assert polly_tasks() == []


LLM_RESPONSE = [
    LLMFullResponseStartFrame(),
    LLMTextFrame("Hello there. "),
    LLMTextFrame("How are "),
    LLMTextFrame("you today? I am "),
    LLMTextFrame("fine"),
    LLMFullResponseEndFrame(),
]
LLM_TEXT = "Hello there. How are you today? I am fine"


def assert_one_turn(down: Sequence[Frame], texts: int) -> None:
    """The frames of one LLM response: its control and text frames in
    order, every audio frame between its TTSStartedFrame and TTSStoppedFrame."""
    others = [f for f in down if not isinstance(f, TTSAudioRawFrame)]
    assert types(others) == [
        LLMFullResponseStartFrame,
        AggregatedTextFrame,
        TTSStartedFrame,
        TTSTextFrame,
        *[AggregatedTextFrame, TTSTextFrame] * (texts - 1),
        TTSStoppedFrame,
        LLMFullResponseEndFrame,
    ]
    kinds = types(down)
    first = kinds.index(TTSAudioRawFrame)
    last = len(kinds) - 1 - kinds[::-1].index(TTSAudioRawFrame)
    assert kinds.index(TTSStartedFrame) < first
    assert last < kinds.index(TTSStoppedFrame)


async def test_an_llm_response_is_one_stream_flushed_sentence_by_sentence(
    emu: PollyEmulator,
) -> None:
    tts = service(emu, sample_rate=16000)
    down, up = await drive(tts, frames_to_send=LLM_RESPONSE)

    assert_one_turn(down, texts=3)
    assert audio_of(down) == pcm(emu, LLM_TEXT)
    assert up == []
    assert len(emu.requests) == 1  # the whole response on one Polly stream
    assert events(emu) == [
        ("TextEvent", "Hello there.", False),
        ("TextEvent", " ", True),
        ("TextEvent", "How are you today?", False),
        ("TextEvent", " ", True),
        ("TextEvent", "I am fine", False),
        ("TextEvent", " ", True),
        ("CloseStreamEvent", None, False),
    ]
    assert emu.requests[0].outcome == "completed"
    assert emu.requests[0].request_characters == len(
        "Hello there.How are you today?I am fine"
    )


async def test_token_mode_sends_tokens_as_they_come_and_polly_finds_sentences(
    emu: PollyEmulator,
) -> None:
    tts = service(
        emu, sample_rate=16000, text_aggregation_mode=TextAggregationMode.TOKEN
    )
    down, up = await drive(tts, frames_to_send=LLM_RESPONSE)

    assert audio_of(down) == pcm(emu, LLM_TEXT)
    assert up == []
    assert len(emu.requests) == 1
    assert events(emu) == [  # no flushes: Polly buffers to sentence ends itself
        ("TextEvent", "Hello there. ", False),
        ("TextEvent", "How are ", False),
        ("TextEvent", "you today? I am ", False),
        ("TextEvent", "fine", False),
        ("CloseStreamEvent", None, False),  # speaks the unfinished rest
    ]
    others = [f for f in down if not isinstance(f, TTSAudioRawFrame | TTSTextFrame)]
    assert types(others)[0] == LLMFullResponseStartFrame
    assert types(others)[-2:] == [TTSStoppedFrame, LLMFullResponseEndFrame]
    assert types(others).count(TTSStartedFrame) == 1


@pytest.mark.parametrize(
    ("output_rate", "polly_rate"), [(8000, 8000), (16000, 16000), (24000, 16000)]
)
async def test_audio_comes_at_the_pipeline_output_rate(
    emu: PollyEmulator, output_rate: int, polly_rate: int
) -> None:
    text = "Resampling keeps every sample. Even the last ones."
    tts = service(emu)  # no sample_rate: the pipeline's output rate
    down, _ = await drive(
        tts,
        frames_to_send=[TTSSpeakFrame(text)],
        pipeline_params=PipelineParams(audio_out_sample_rate=output_rate),
    )

    assert emu.requests[0].sample_rate == polly_rate  # Polly streams pcm at 8k/16k only
    frames = [f for f in down if isinstance(f, TTSAudioRawFrame)]
    assert {(f.sample_rate, f.num_channels) for f in frames} == {(output_rate, 1)}
    source = pcm(emu, text, polly_rate)
    audio = audio_of(down)
    if output_rate == polly_rate:
        assert audio == source
        return
    # Resampled in a stream (one soxr stream per turn, flushed at the end):
    # exactly the right length, and the same signal as resampling it in one go
    # (streaming rounds a few samples differently at chunk boundaries).
    assert len(audio) == len(source) * output_rate // polly_rate
    one_go = await SOXRAudioResampler().resample(source, polly_rate, output_rate)
    assert len(one_go) == len(audio)
    got = np.frombuffer(audio, np.int16).astype(np.int32)
    diff = got - np.frombuffer(one_go, np.int16).astype(np.int32)
    assert np.abs(diff).max() <= 4
    assert np.abs(got).max() > 1000  # speech, not silence


# Barge-in -------------------------------------------------------------------------


async def test_interruption_mid_audio_resets_the_stream_and_frees_the_lease(
    emu: PollyEmulator,
) -> None:
    long_text = (
        "One two three four five six seven. Eight nine ten eleven twelve. "
        "Thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty."
    )
    emu.faults.add(Fault.slow_audio(0.05), times=1)  # the first stream trickles
    tts = service(emu, sample_rate=16000)
    trigger = InterruptAtAudio(at=2)
    down, up = await drive(
        Pipeline([tts, trigger]),
        frames_to_send=[
            TTSSpeakFrame(long_text),
            SleepFrame(sleep=1.0),
            TTSSpeakFrame("Next one."),
        ],
    )

    cut = types(down).index(InterruptionFrame)
    before, after = down[:cut], down[cut + 1 :]
    heard = audio_of(before)
    total = pcm(emu, long_text)
    assert types(before)[: len(SPOKEN)] == SPOKEN
    assert 2 <= n_events(heard) < n_events(total) // 2  # stopped mid-audio
    assert total.startswith(heard)
    assert TTSStoppedFrame not in types(before)  # interrupted, not finished
    # Nothing of the first utterance after the interruption; the next one is
    # spoken whole, on its own stream.
    assert types(after) == [
        *SPOKEN,
        *[TTSAudioRawFrame] * n_events(pcm(emu, "Next one.")),
        *SPOKEN_END,
    ]
    assert audio_of(after) == pcm(emu, "Next one.")
    assert types(up) == [InterruptionWorkerFrame]  # and no ErrorFrame

    first, second = emu.requests
    assert first.outcome == "reset_by_client"  # RST_STREAM from the client
    assert first.audio_events < n_events(total)
    assert second.outcome == "completed"
    assert tts.client.pool_stats().leased == 0
    assert polly_tasks() == []


async def test_an_interruption_while_the_response_still_streams_in(
    emu: PollyEmulator,
) -> None:
    emu.faults.add(Fault.slow_audio(0.05), times=1)
    tts = service(emu, sample_rate=16000)
    down, up = await drive(
        Pipeline([tts, InterruptAtAudio(at=2)]),
        frames_to_send=[
            LLMFullResponseStartFrame(),
            LLMTextFrame("The first sentence is long enough to be cut. "),
            LLMTextFrame("The second one "),
            SleepFrame(sleep=1.0),  # the response is still open: no end frame yet
        ],
    )

    cut = types(down).index(InterruptionFrame)
    assert TTSAudioRawFrame not in types(down[cut + 1 :])
    assert types(up) == [InterruptionWorkerFrame]
    [record] = emu.requests
    assert record.outcome == "reset_by_client"
    assert record.events[0].text == "The first sentence is long enough to be cut."
    # The response never ended, so the input was never closed: reset instead.
    assert "CloseStreamEvent" not in [e.event_type for e in record.events]
    assert not record.final_envelope
    assert tts.client.pool_stats().leased == 0
    assert polly_tasks() == []


async def test_an_interruption_also_stops_a_stream_pipecat_stopped_tracking(
    emu: PollyEmulator,
) -> None:
    # The first audio takes longer than pipecat waits on a quiet audio context
    # (stop_frame_timeout_s), so pipecat closes the context while the stream
    # is still open; the interruption's hook is not called for it, and the
    # service must still cancel the stream.
    emu.faults.add(Fault.delay_audio(1.0))
    tts = service(emu, sample_rate=16000, stop_frame_timeout_s=0.2)
    down, _ = await drive(
        tts,
        frames_to_send=[
            TTSSpeakFrame("Too late to matter."),
            SleepFrame(sleep=0.5),
            InterruptionFrame(),
            SleepFrame(sleep=1.0),
        ],
    )

    assert TTSAudioRawFrame not in types(down)
    [record] = emu.requests
    assert record.outcome == "reset_by_client"
    assert record.audio_events == 0
    assert tts.client.pool_stats().leased == 0
    assert polly_tasks() == []


async def test_uninterruptible_speech_survives_an_interruption(
    emu: PollyEmulator,
) -> None:
    text = "This announcement is not interruptible. It plays to the end."
    emu.faults.add(Fault.slow_audio(0.02), times=1)
    tts = service(emu, sample_rate=16000)
    speak = TTSSpeakFrame(text)
    speak.interruptible = False
    down, _ = await drive(
        Pipeline([tts, InterruptAtAudio(at=2)]),
        frames_to_send=[speak, SleepFrame(sleep=1.5)],
    )

    assert InterruptionFrame in types(down)
    assert audio_of(down) == pcm(emu, text)
    assert types(down)[-1] == TTSStoppedFrame
    assert emu.requests[0].outcome == "completed"
    assert tts.client.pool_stats().leased == 0


async def test_a_cancel_frame_stops_the_stream_at_once(emu: PollyEmulator) -> None:
    emu.faults.add(Fault.slow_audio(0.05))
    tts = service(emu, sample_rate=16000)
    down, up = await drive(
        tts,
        frames_to_send=[
            TTSSpeakFrame("One two three four five six seven eight nine ten."),
            SleepFrame(sleep=0.3),
            CancelFrame(),
        ],
        send_end_frame=False,
    )

    assert types(down)[: len(SPOKEN)] == SPOKEN
    assert types(down)[-1] == CancelFrame
    assert TTSStoppedFrame not in types(down)
    assert up == []
    assert tts.client.pool_stats().leased == 0
    assert polly_tasks() == []
    [record] = emu.requests
    for _ in range(100):  # the emulator sees the reset on its own time
        if record.outcome != "open":
            break
        await asyncio.sleep(0.01)
    assert record.outcome == "reset_by_client"


# Errors -----------------------------------------------------------------------


async def test_an_unknown_voice_is_an_error_frame_with_type_message_and_request_id(
    emu: PollyEmulator,
) -> None:
    tts = service(emu, sample_rate=16000, voice_id="Ivy")  # not a generative voice
    down, up = await drive(tts, frames_to_send=[TTSSpeakFrame("Hello there.")])

    [record] = emu.requests
    assert record.error_type == "ValidationException"
    [error] = up
    assert isinstance(error, ErrorFrame)
    assert error.error == (
        f"Amazon Polly: ValidationException: {record.error_message} "
        f"(request id {record.request_id})"
    )
    assert isinstance(error.exception, ValidationException)
    assert error.exception.request_id == record.request_id
    assert error.category is ErrorCategory.INVALID_REQUEST
    assert error.processor is tts
    assert not tts.is_usable  # a bad voice will not get better: pipecat writes it off
    assert types(down) == [*SPOKEN, *SPOKEN_END]  # the turn still ends
    assert tts.client.pool_stats().leased == 0
    assert polly_tasks() == []


async def test_a_service_failure_mid_stream_keeps_the_audio_and_reports(
    emu: PollyEmulator,
) -> None:
    text = "One two three four five. Six seven eight nine ten."
    emu.faults.add(Fault.service_failure(mid_stream=True, after_audio_events=2))
    tts = service(emu, sample_rate=16000)
    down, up = await drive(tts, frames_to_send=[TTSSpeakFrame(text)])

    assert types(down) == [*SPOKEN, TTSAudioRawFrame, TTSAudioRawFrame, *SPOKEN_END]
    assert audio_of(down) == pcm(emu, text)[: 2 * 4096]
    [record] = emu.requests
    [error] = up
    assert isinstance(error, ErrorFrame)
    assert error.error == (
        "Amazon Polly: ServiceFailureException: An internal error occurred "
        f"(request id {record.request_id})"
    )
    assert isinstance(error.exception, ServiceFailureException)
    assert error.category is ErrorCategory.SERVER
    assert tts.is_usable  # a server failure is not the service's fault
    assert tts.client.pool_stats().leased == 0


async def test_after_a_failure_mid_response_the_rest_goes_on_a_new_stream(
    emu: PollyEmulator,
) -> None:
    first, second = "The first sentence is spoken.", "The second one as well."
    emu.faults.add(
        Fault.service_failure(mid_stream=True, after_audio_events=1), times=1
    )
    tts = service(emu, sample_rate=16000)
    down, up = await drive(
        tts,
        frames_to_send=[
            LLMFullResponseStartFrame(),
            # pipecat holds a sentence until the next word shows it ended
            LLMTextFrame(first + " The"),
            SleepFrame(sleep=0.5),  # the first stream fails meanwhile
            LLMTextFrame(" second one as well."),
            LLMFullResponseEndFrame(),
        ],
    )

    assert [type(e.exception) for e in up if isinstance(e, ErrorFrame)] == [
        ServiceFailureException
    ]
    assert types(up) == [ErrorFrame]
    # One audio context for the response: its start, the audio that came
    # before the failure, the rest of the response, one stop.
    assert_one_turn(down, texts=2)
    assert audio_of(down) == pcm(emu, first)[:4096] + pcm(emu, second)
    failed, resumed = emu.requests
    assert failed.error_type == "ServiceFailureException"
    assert [(e.text, e.flush) for e in resumed.events] == [
        (second, False),
        (" ", True),
        (None, False),
    ]
    assert resumed.outcome == "completed"
    assert tts.is_usable
    assert tts.client.pool_stats().leased == 0


async def test_a_failure_after_the_last_text_still_ends_the_turn(
    emu: PollyEmulator,
) -> None:
    text = "Only this sentence, and it fails."
    emu.faults.add(Fault.service_failure(mid_stream=True, after_audio_events=1))
    tts = service(
        emu, sample_rate=16000, text_aggregation_mode=TextAggregationMode.TOKEN
    )
    down, up = await drive(
        tts,
        frames_to_send=[
            LLMFullResponseStartFrame(),
            LLMTextFrame(text),
            SleepFrame(sleep=0.5),  # the stream fails before the response ends
            LLMFullResponseEndFrame(),
        ],
    )

    assert types(up) == [ErrorFrame]
    assert audio_of(down) == pcm(emu, text)[:4096]
    others = [f for f in down if not isinstance(f, TTSAudioRawFrame | TTSTextFrame)]
    assert types(others)[-2:] == [TTSStoppedFrame, LLMFullResponseEndFrame]
    assert len(emu.requests) == 1  # nothing was left to say: no new stream
    assert tts.client.pool_stats().leased == 0


@pytest.mark.parametrize(
    ("fault", "exception", "category"),
    [
        (
            Fault.rst_stream(after_audio_events=1),
            StreamInterruptedError,
            ErrorCategory.CONNECTIVITY,
        ),
        (
            Fault.quota(after_audio_events=1),
            ServiceQuotaExceededException,
            ErrorCategory.QUOTA,
        ),
        (
            Fault.throttle(mid_stream=True, after_audio_events=1),
            ThrottlingException,
            ErrorCategory.RATE_LIMIT,
        ),
        (
            Fault.unknown_exception_event(after_audio_events=1),
            ServiceException,  # BrandNewException: a type this client does not know
            ErrorCategory.SERVER,
        ),
    ],
    ids=["cut", "quota", "throttled", "unknown"],
)
async def test_failures_after_audio_get_pipecat_categories(
    emu: PollyEmulator,
    fault: Fault,
    exception: type[Exception],
    category: ErrorCategory,
) -> None:
    emu.faults.add(fault)
    tts = service(emu, sample_rate=16000)
    down, up = await drive(
        tts, frames_to_send=[TTSSpeakFrame("One two three four five. Six seven.")]
    )

    assert types(down) == [*SPOKEN, TTSAudioRawFrame, *SPOKEN_END]
    [error] = up
    assert isinstance(error, ErrorFrame)
    assert type(error.exception) is exception
    [record] = emu.requests  # audio was heard: never retried
    name = exception.__name__
    if exception is ServiceException:
        name += " BrandNewException"
    assert error.error.startswith(f"Amazon Polly: {name}: ")
    assert error.error.endswith(f"(request id {record.request_id})")
    assert error.category is category
    assert tts.is_usable


async def test_an_unknown_error_response_is_classified_by_its_status(
    emu: PollyEmulator,
) -> None:
    emu.faults.add(Fault.http_error(503, "ServiceUnavailableException"))
    tts = PollyStreamingTTSService(
        client=client_for(emu, max_attempts=1), sample_rate=16000, prewarm=False
    )
    _, up = await drive(tts, frames_to_send=[TTSSpeakFrame("Hello.")])

    error, silent = up  # then pipecat's own report of a turn without audio
    assert isinstance(silent, ErrorFrame)
    assert silent.error.endswith("completed with no audio")
    assert isinstance(error, ErrorFrame)
    assert isinstance(error.exception, UnexpectedResponseError)
    assert error.exception.status == 503
    assert error.error.startswith("Amazon Polly: UnexpectedResponseError: ")
    assert error.error.endswith(f"(request id {emu.requests[0].request_id})")
    assert error.category is ErrorCategory.SERVER


class NoCredentials:
    """A credentials provider that finds none (as the default chain can)."""

    async def get_credentials(self) -> AwsCredentials:
        raise NoCredentialsError([("environment", "AWS_ACCESS_KEY_ID is not set")])


async def test_missing_credentials_are_an_authentication_error(
    emu: PollyEmulator,
) -> None:
    client = PollyStreamingClient(
        emu.region,
        endpoint_url=emu.endpoint_url,
        ca_bundle=str(emu.ca_path),
        credentials=NoCredentials(),
    )
    tts = PollyStreamingTTSService(client=client, sample_rate=16000, prewarm=False)
    down, up = await drive(tts, frames_to_send=[TTSSpeakFrame("Who am I?")])

    [error] = up
    assert isinstance(error, ErrorFrame)
    assert isinstance(error.exception, NoCredentialsError)
    assert error.error == (
        "Amazon Polly: NoCredentialsError: no AWS credentials found; tried, in "
        "order:\n  1. environment: AWS_ACCESS_KEY_ID is not set"
    )
    assert error.category is ErrorCategory.AUTHENTICATION
    assert not tts.is_usable
    assert types(down) == [*SPOKEN, *SPOKEN_END]
    assert emu.requests == []


async def test_throttling_before_any_audio_is_retried_by_the_client(
    emu: PollyEmulator,
) -> None:
    text = "Second time lucky."
    emu.faults.add(Fault.throttle())
    tts = service(emu, sample_rate=16000)
    down, up = await drive(tts, frames_to_send=[TTSSpeakFrame(text)])

    assert up == []
    assert audio_of(down) == pcm(emu, text)
    assert [r.error_type for r in emu.requests] == ["ThrottlingException", None]
    assert events(emu, 1) == [
        ("TextEvent", text, False),
        ("TextEvent", " ", True),
        ("CloseStreamEvent", None, False),
    ]


# Settings and set-up ------------------------------------------------------------


async def test_settings_updates_apply_from_the_next_turn(emu: PollyEmulator) -> None:
    tts = service(emu, sample_rate=16000)
    delta = PollyStreamingTTSService.Settings(voice="Joanna", language=Language.EN_GB)
    down, up = await drive(
        tts,
        frames_to_send=[
            TTSSpeakFrame("First."),
            TTSUpdateSettingsFrame(delta=delta),
            TTSSpeakFrame("Second."),
        ],
    )

    assert up == []
    first, second = emu.requests
    assert (first.voice_id, first.language_code) == ("Matthew", "en-US")
    assert (second.voice_id, second.language_code) == ("Joanna", "en-GB")
    joanna = emu.expected_audio(
        "Second.", voice_id="Joanna", output_format="pcm", sample_rate=16000
    )
    assert audio_of(down) == pcm(emu, "First.") + joanna


async def test_metrics_report_time_to_first_audio_and_usage(emu: PollyEmulator) -> None:
    text = "Metrics for this turn."
    tts = service(emu, sample_rate=16000)
    down, _ = await drive(
        tts,
        frames_to_send=[TTSSpeakFrame(text)],
        pipeline_params=PipelineParams(enable_metrics=True, enable_usage_metrics=True),
    )

    data = [d for f in down if isinstance(f, MetricsFrame) for d in f.data]
    assert {d.processor for d in data} == {str(tts)}
    usage = [d for d in data if isinstance(d, TTSUsageMetricsData)]
    assert [d.value for d in usage] == [len(text)]
    ttfb = [d.value for d in data if isinstance(d, TTFBMetricsData) and d.value]
    assert len(ttfb) == 1
    assert ttfb[0] > 0
    # No processing time: run_tts only hands the text over (see the service).
    assert [d.value for d in data if isinstance(d, ProcessingMetricsData)] == [0.0]


async def test_a_settings_update_the_client_refuses_is_an_error_frame(
    emu: PollyEmulator,
) -> None:
    tts = service(emu, sample_rate=16000)
    bad = PollyStreamingTTSService.Settings(voice="Bad Voice")
    down, up = await drive(
        tts,
        frames_to_send=[TTSUpdateSettingsFrame(delta=bad), TTSSpeakFrame("Hello.")],
    )

    [error] = up
    assert isinstance(error, ErrorFrame)
    assert error.error == (
        "Amazon Polly: ValueError: voice_id must be printable ASCII without "
        "spaces or control characters, got 'Bad Voice'"
    )
    assert error.category is ErrorCategory.INVALID_REQUEST
    assert types(down) == [*SPOKEN, *SPOKEN_END]  # the turn ends, at once
    assert emu.requests == []  # checked before any I/O


async def test_a_closed_client_is_an_error_frame(emu: PollyEmulator) -> None:
    client = client_for(emu)
    await client.close()
    tts = PollyStreamingTTSService(client=client, sample_rate=16000, prewarm=False)
    down, up = await drive(tts, frames_to_send=[TTSSpeakFrame("Hello.")])

    # Ours, then pipecat's own report of a turn without audio (the service
    # stays usable: a closed client is not a verdict on the request).
    error, silent = up
    assert isinstance(error, ErrorFrame)
    assert isinstance(error.exception, ClientClosedError)
    assert error.error == "Amazon Polly: ClientClosedError: the client is closed"
    assert isinstance(silent, ErrorFrame)
    assert silent.error.endswith("completed with no audio")
    assert tts.is_usable
    assert types(down) == [*SPOKEN, *SPOKEN_END]
    assert emu.requests == []


@pytest.mark.parametrize("prewarm", [True, False])
async def test_prewarm_opens_a_connection_at_pipeline_start(
    emu: PollyEmulator, prewarm: bool
) -> None:
    tts = service(emu, prewarm=prewarm)
    await drive(tts, frames_to_send=[SleepFrame(sleep=0.5)])

    assert len(emu.connections) == (1 if prewarm else 0)
    assert emu.requests == []  # a connection, no stream
    assert polly_tasks() == []


async def test_the_arguments_make_a_client_which_the_service_closes(
    emu: PollyEmulator,
) -> None:
    creds = emu.credentials
    tts = PollyStreamingTTSService(
        region=emu.region,
        endpoint_url=emu.endpoint_url,
        ca_bundle=str(emu.ca_path),
        credentials=AwsCredentials(
            access_key_id=creds.access_key_id,
            secret_access_key=creds.secret_access_key,
        ),
        pool_size=2,
        sample_rate=16000,
        prewarm=False,
    )
    assert (tts.client.region, tts.client.endpoint_url) == (
        emu.region,
        emu.endpoint_url,
    )
    assert tts.client.config.pool_size == 2
    down, _ = await drive(tts, frames_to_send=[TTSSpeakFrame("Made here.")])
    assert audio_of(down) == pcm(emu, "Made here.")
    assert emu.requests[0].signature_ok is True
    with pytest.raises(ClientClosedError):  # its own client: closed at cleanup
        tts.client.start_speech_synthesis_stream(text="x", voice_id=VOICE)


async def test_a_given_client_is_left_open(emu: PollyEmulator) -> None:
    client = client_for(emu)
    tts = PollyStreamingTTSService(client=client, sample_rate=16000, prewarm=False)
    await drive(tts, frames_to_send=[TTSSpeakFrame("Shared.")])

    assert tts.client is client
    async with client.start_speech_synthesis_stream(
        text="Still usable.", voice_id=VOICE, output_format="pcm"
    ) as audio:
        assert b"".join([chunk async for chunk in audio]) == pcm(emu, "Still usable.")


def test_the_region_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    assert PollyStreamingTTSService().client.region == "eu-central-1"
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    assert PollyStreamingTTSService().client.region == "eu-west-1"


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({}, ValueError, "region is required (or AWS_REGION), or pass a client"),
        ({"client": "x"}, TypeError, "client must be a PollyStreamingClient, got str"),
        (
            {"region": "us-east-1", "sample_rate": 0},
            ValueError,
            "sample_rate must be positive, got 0",
        ),
        (
            {"region": "us-east-1", "sample_rate": True},
            TypeError,
            "sample_rate must be an int (Hz) or None, got bool",
        ),
        (
            {"region": "us-east-1", "sample_rate": 16e3},
            TypeError,
            "sample_rate must be an int (Hz) or None, got float",
        ),
        (
            {"region": "us-east-1", "voice_id": ""},
            ValueError,
            "voice_id must not be empty",
        ),
        (
            {"region": "us-east-1", "voice_id": None},
            TypeError,
            "voice_id must be a str",
        ),
        (
            {"region": "us-east-1", "engine": "gen\r\nx"},
            ValueError,
            "engine must be printable",
        ),
        (
            {"region": "us-east-1", "language_code": 5},
            TypeError,
            "language_code must be a str",
        ),
        (
            {"region": "us-east-1", "lexicon_names": ["no spaces"]},
            ValueError,
            "lexicon_names",
        ),
        (
            {"region": "us-east-1", "prewarm": "yes"},
            TypeError,
            "prewarm must be a bool",
        ),
        ({"region": "us-east-1", "pool_size": 0}, ValueError, "pool_size"),
        ({"region": "us-east-1", "ca_bundle": 5}, TypeError, "ca_bundle"),
        ({"region": "nowhere 1"}, ValueError, "region"),
    ],
)
def test_bad_arguments_fail_at_construction(
    monkeypatch: pytest.MonkeyPatch,
    options: dict[str, Any],
    error: type[Exception],
    message: str,
) -> None:
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    with pytest.raises(error, match=re.escape(message)):
        PollyStreamingTTSService(**options)


def test_a_client_and_its_arguments_are_exclusive(emu: PollyEmulator) -> None:
    with pytest.raises(
        TypeError,
        match=re.escape(
            "pass either client or the arguments to make one, "
            "not both (got client and region, pool_size)"
        ),
    ):
        PollyStreamingTTSService(client=client_for(emu), region=emu.region, pool_size=2)


@pytest.mark.parametrize(
    ("language", "polly"),
    [
        (Language.EN_US, "en-US"),
        (Language.EN_GB, "en-GB"),
        (Language.EN, "en-US"),  # several regions: Polly's usual one
        (Language.DE, "de-DE"),
        (Language.DA, "da-DK"),  # one region: that one
        (Language.ZH, "cmn-CN"),
        (Language.SW, None),  # Polly has none
    ],
)
def test_pipecat_languages_map_to_polly_language_codes(
    language: Language, polly: str | None
) -> None:
    tts = PollyStreamingTTSService(region="us-east-1")
    assert tts.language_to_service_language(language) == polly


def test_without_pipecat_the_import_error_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in list(sys.modules):
        if name.split(".")[0] == "pipecat" or name.endswith("adapters.pipecat"):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "pipecat", None)  # as if not installed

    hint = re.escape('pip install "amazon-polly-streaming[pipecat]"')
    with pytest.raises(
        ImportError,
        match=rf"^amazon_polly_streaming\.adapters\.pipecat needs pipecat "
        rf"\(missing module 'pipecat[\w.]*'\): {hint}$",
    ):
        importlib.import_module("amazon_polly_streaming.adapters.pipecat")
