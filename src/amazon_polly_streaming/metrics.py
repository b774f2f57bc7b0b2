"""Per-stream figures (``StreamMetrics``), and OpenTelemetry when it is installed.

Every call (``start_speech_synthesis_stream``) and every session
(``open_stream``) fills one ``StreamMetrics`` as it runs; it is on the
returned object (``.metrics``) and, when the call ends however it ends, it is
passed to the client's ``on_metrics`` callback.

With ``opentelemetry-api`` installed (the ``otel`` extra), each call is also a
CLIENT span ``Polly.StartSpeechSynthesisStream`` (an event at the first
audio; the request id, characters, bytes and attempts as attributes; error
status on failure) and feeds four instruments of the meter
``amazon_polly_streaming``: ``polly.stream.time_to_first_audio`` and
``polly.stream.duration`` (histograms, s), ``polly.stream.audio`` (counter,
By) and ``polly.stream.request_characters`` (counter), all with the
``outcome`` attribute. Without it, none of this code runs. What the API does
without an SDK configured (nothing) is OpenTelemetry's business.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any, Literal

from ._version import __version__

type Outcome = Literal["running", "completed", "cancelled", "failed"]


@dataclass(slots=True)
class StreamMetrics:
    """The figures of one call or session, filled in as it runs.

    Times are seconds, from ``started`` (``time.monotonic()`` when the call
    was made). After a rollover (a long-form call continued on a fresh
    stream) the counts add up over its segments, and ``request_id`` is the
    latest segment's (all are in ``request_ids``).
    """

    started: float = field(default_factory=time.monotonic)
    """``time.monotonic()`` when the call was made."""
    time_to_first_audio: float | None = None
    """Seconds until the first audio byte arrived (``None``: none yet)."""
    total_time: float | None = None
    """Seconds until the call ended (``None``: still running)."""
    audio_bytes: int = 0
    audio_events: int = 0
    request_characters: int | None = None
    """Billed characters, from ``StreamClosedEvent`` (summed over segments)."""
    attempts: int = 0
    """Polly streams started for the first segment (retries before audio)."""
    connection_reused: bool | None = None
    """Whether the (latest) stream ran on an already-open connection."""
    request_id: str | None = None
    request_ids: list[str] = field(default_factory=list[str])
    segments: int = 0
    """Polly streams that carried text (more than 1 after a rollover)."""
    outcome: Outcome = "running"
    error: str | None = None
    """The exception's class name when the outcome is ``failed``."""

    def audio(self, size: int, now: float) -> None:
        """Count one audio event (the hot path: two additions and a test)."""
        self.audio_bytes += size
        self.audio_events += 1
        if self.time_to_first_audio is None:
            self.time_to_first_audio = now - self.started

    def closed(self, request_characters: int | None) -> None:
        """A segment's ``StreamClosedEvent``."""
        if request_characters is not None:
            self.request_characters = (
                self.request_characters or 0
            ) + request_characters

    def stream_started(self, request_id: str | None, *, reused: bool) -> None:
        self.request_id = request_id
        if request_id is not None:
            self.request_ids.append(request_id)
        self.connection_reused = reused

    def finish(self, outcome: Outcome, error: BaseException | None = None) -> None:
        if self.outcome != "running":
            return
        self.outcome = outcome
        self.error = None if error is None else type(error).__name__
        self.total_time = time.monotonic() - self.started


class Telemetry:
    """OpenTelemetry for one call: a span and, at its end, the instruments."""

    __slots__ = ("_first_audio_seen", "_span")

    def __init__(self, span: Any) -> None:
        self._span = span
        self._first_audio_seen = False

    def first_audio(self) -> None:
        if not self._first_audio_seen:
            self._first_audio_seen = True
            self._span.add_event("first_audio")

    def end(self, metrics: StreamMetrics) -> None:
        otel = _otel()
        assert otel is not None  # noqa: S101 - a Telemetry exists only with it
        span = self._span
        attributes: dict[str, Any] = {
            "aws.polly.attempts": metrics.attempts,
            "aws.polly.segments": metrics.segments,
            "aws.polly.audio_bytes": metrics.audio_bytes,
            "aws.polly.audio_events": metrics.audio_events,
            "aws.polly.outcome": metrics.outcome,
        }
        if metrics.request_id is not None:
            attributes["aws.request_id"] = metrics.request_id
        if metrics.request_characters is not None:
            attributes["aws.polly.request_characters"] = metrics.request_characters
        if metrics.time_to_first_audio is not None:
            attributes["aws.polly.time_to_first_audio"] = metrics.time_to_first_audio
        if metrics.connection_reused is not None:
            attributes["aws.polly.connection_reused"] = metrics.connection_reused
        span.set_attributes(attributes)
        if metrics.outcome == "failed":
            span.set_status(otel.status_error, metrics.error)
            if metrics.error is not None:
                span.set_attribute("error.type", metrics.error)
        span.end()
        labels = {"outcome": metrics.outcome}
        if metrics.time_to_first_audio is not None:
            otel.ttfa.record(metrics.time_to_first_audio, labels)
        if metrics.total_time is not None:
            otel.duration.record(metrics.total_time, labels)
        otel.audio.add(metrics.audio_bytes, labels)
        if metrics.request_characters is not None:
            otel.characters.add(metrics.request_characters, labels)


@dataclass(frozen=True, slots=True)
class _Otel:
    tracer: Any
    span_kind_client: Any
    status_error: Any
    ttfa: Any
    duration: Any
    audio: Any
    characters: Any


_OTEL: list[_Otel | None] = []


def _otel() -> _Otel | None:
    """OpenTelemetry's API objects, made once; ``None`` when it is not installed."""
    if _OTEL:
        return _OTEL[0]
    try:
        trace = import_module("opentelemetry.trace")
        metrics_api = import_module("opentelemetry.metrics")
    except ImportError:
        _OTEL.append(None)
        return None
    meter = metrics_api.get_meter("amazon_polly_streaming", __version__)
    found = _Otel(
        tracer=trace.get_tracer("amazon_polly_streaming", __version__),
        span_kind_client=trace.SpanKind.CLIENT,
        status_error=trace.StatusCode.ERROR,
        ttfa=meter.create_histogram(
            "polly.stream.time_to_first_audio",
            unit="s",
            description="Time from the call to the first audio byte",
        ),
        duration=meter.create_histogram(
            "polly.stream.duration", unit="s", description="Time the call took"
        ),
        audio=meter.create_counter(
            "polly.stream.audio", unit="By", description="Audio bytes received"
        ),
        characters=meter.create_counter(
            "polly.stream.request_characters",
            unit="{character}",
            description="Characters Polly billed (StreamClosedEvent)",
        ),
    )
    _OTEL.append(found)
    return found


def start_telemetry(
    *, region: str, host: str, voice_id: str, output_format: str
) -> Telemetry | None:
    """A span for one call, or ``None`` without OpenTelemetry."""
    otel = _otel()
    if otel is None:
        return None
    span = otel.tracer.start_span(
        "Polly.StartSpeechSynthesisStream",
        kind=otel.span_kind_client,
        attributes={
            "rpc.system": "aws-api",
            "rpc.service": "Polly",
            "rpc.method": "StartSpeechSynthesisStream",
            "cloud.region": region,
            "server.address": host,
            "aws.polly.voice_id": voice_id,
            "aws.polly.output_format": output_format,
        },
    )
    return Telemetry(span)
