"""OpenTelemetry spans and metrics for every call (the ``otel`` extra), and
nothing at all without it."""

from __future__ import annotations

from typing import Any

import pytest
from emulated import client_for, collect

from amazon_polly_streaming import ValidationException, metrics
from amazon_polly_streaming.testing import PollyEmulator

trace = pytest.importorskip("opentelemetry.trace")
otel_metrics = pytest.importorskip("opentelemetry.metrics")
sdk_trace = pytest.importorskip("opentelemetry.sdk.trace")
sdk_metrics = pytest.importorskip("opentelemetry.sdk.metrics")
from opentelemetry.sdk.metrics.export import InMemoryMetricReader  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)

pytestmark = pytest.mark.usefixtures("no_leaks")

HELLO = "hello world, how are you today"
SPANS = InMemorySpanExporter()
READER = InMemoryMetricReader()


@pytest.fixture(scope="module", autouse=True)
def providers() -> None:
    """The SDK, once per process (OpenTelemetry's globals can be set once)."""
    if not isinstance(trace.get_tracer_provider(), sdk_trace.TracerProvider):
        provider = sdk_trace.TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(SPANS))
        trace.set_tracer_provider(provider)
        otel_metrics.set_meter_provider(
            sdk_metrics.MeterProvider(metric_readers=[READER])
        )


def metric_points() -> dict[str, list[Any]]:
    data = READER.get_metrics_data()
    points: dict[str, list[Any]] = {}
    if data is None:
        return points
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            if scope.scope.name != "amazon_polly_streaming":
                continue
            for metric in scope.metrics:
                points.setdefault(metric.name, []).extend(metric.data.data_points)
    return points


async def test_a_call_is_a_client_span_with_its_figures(emu: PollyEmulator) -> None:
    SPANS.clear()
    client = client_for(emu)
    audio = client.start_speech_synthesis_stream(text=HELLO, voice_id="Joanna")
    data = await collect(audio)
    (span,) = SPANS.get_finished_spans()
    record = emu.requests[0]
    assert span.name == "Polly.StartSpeechSynthesisStream"
    assert span.kind == trace.SpanKind.CLIENT
    assert span.status.status_code == trace.StatusCode.UNSET
    attributes = dict(span.attributes or {})
    assert attributes == {
        "rpc.system": "aws-api",
        "rpc.service": "Polly",
        "rpc.method": "StartSpeechSynthesisStream",
        "cloud.region": emu.region,
        "server.address": "127.0.0.1",
        "aws.polly.voice_id": "Joanna",
        "aws.polly.output_format": "mp3",
        "aws.request_id": record.request_id,
        "aws.polly.attempts": 1,
        "aws.polly.segments": 1,
        "aws.polly.audio_bytes": len(data),
        "aws.polly.audio_events": record.audio_events,
        "aws.polly.outcome": "completed",
        "aws.polly.request_characters": len(HELLO),
        "aws.polly.time_to_first_audio": audio.metrics.time_to_first_audio,
        "aws.polly.connection_reused": False,
    }
    assert [event.name for event in span.events] == ["first_audio"]


async def test_a_failed_call_sets_the_error_status(emu: PollyEmulator) -> None:
    SPANS.clear()
    client = client_for(emu)
    with pytest.raises(ValidationException):
        await collect(client.start_speech_synthesis_stream(text=HELLO, voice_id="X"))
    (span,) = SPANS.get_finished_spans()
    assert span.status.status_code == trace.StatusCode.ERROR
    assert span.status.description == "ValidationException"
    assert dict(span.attributes or {})["error.type"] == "ValidationException"
    assert dict(span.attributes or {})["aws.polly.outcome"] == "failed"


async def test_calls_feed_the_instruments(emu: PollyEmulator) -> None:
    before = metric_points()
    client = client_for(emu)
    audio = client.start_speech_synthesis_stream(text=HELLO, voice_id="Matthew")
    data = await collect(audio)
    after = metric_points()

    def total(name: str) -> float:
        return sum(
            p.value
            for p in after.get(name, [])
            if p.attributes == {"outcome": "completed"}
        ) - sum(
            p.value
            for p in before.get(name, [])
            if p.attributes == {"outcome": "completed"}
        )

    def count(name: str) -> int:
        def n(points: dict[str, list[Any]]) -> int:
            return sum(
                p.count
                for p in points.get(name, [])
                if p.attributes == {"outcome": "completed"}
            )

        return n(after) - n(before)

    assert total("polly.stream.audio") == len(data)
    assert total("polly.stream.request_characters") == len(HELLO)
    assert count("polly.stream.time_to_first_audio") == 1
    assert count("polly.stream.duration") == 1


async def test_without_opentelemetry_nothing_runs(
    emu: PollyEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    def missing(name: str) -> Any:
        raise ImportError(name)

    monkeypatch.setattr(metrics, "_OTEL", [])
    monkeypatch.setattr(metrics, "import_module", missing)
    SPANS.clear()
    client = client_for(emu)
    audio = await collect(
        client.start_speech_synthesis_stream(text=HELLO, voice_id="Matthew")
    )
    assert audio == emu.expected_audio(HELLO, voice_id="Matthew")
    assert SPANS.get_finished_spans() == ()
    assert metrics._OTEL == [None]  # looked up once, found missing
