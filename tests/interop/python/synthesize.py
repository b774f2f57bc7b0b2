# pyright: reportMissingTypeStubs=false, reportUnknownMemberType=false
"""Run StartSpeechSynthesisStream with AWS's official Python SDK (aws-sdk-polly).

Run by the interop virtualenv's python (``.tools/interop-py``), never by the
project's: ``aws-sdk-polly`` pins an awscrt the project cannot share. The test
suite (``tests/emulator/test_official_clients.py``) pipes a JSON job in::

    {"endpoint_url": "https://127.0.0.1:PORT", "region": "us-east-1",
     "voice_id": "Joanna", "output_format": "mp3", "sample_rate": "24000",
     "texts": ["Hello.", {"text": " world", "flush": true}], "repeat": 1,
     "delay_ms": 0}

(``texts``: strings, or objects with ``text`` and optional ``flush``, sent as
TextEvents in order, ``delay_ms`` apart, then CloseStreamEvent), and reads one
JSON line back::

    {"client": "aws-sdk-polly", "calls": [{"audio_b64": ..., "audio_events": N,
      "request_characters": N | null, "error": null | {"type", "message",
      "fields", "http_status"}, "send_error": null | {...},
      "text_events_sent": N, "ttfa_ms": ..., "total_ms": ...}, ...]}

(``fields``: the error's modeled members, e.g. ``reason`` and ``fields`` of
a ValidationException; ``send_error``: what the input side hit, if anything.)

The ``repeat`` calls run one after the other on ONE client. Credentials come
from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN and the CA
to trust from AWS_CA_BUNDLE. A service error is a result (exit 0); only a
harness failure exits non-zero.

Configuration: the SDK's default transport (aiohttp) cannot do duplex event
streams, so the awscrt transport is passed explicitly. Neither the SDK nor
``AWSCRTHTTPClient`` takes a CA bundle (it builds its TLS context from the
default options), so a subclass swaps in a TLS context that trusts the file.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import Any, cast

from aws_sdk_polly.client import AsyncPollyClient
from aws_sdk_polly.config import AsyncPollyConfig
from aws_sdk_polly.models import (
    CloseStreamEvent,
    FlushStreamConfiguration,
    StartSpeechSynthesisStreamActionStreamCloseStreamEvent,
    StartSpeechSynthesisStreamActionStreamTextEvent,
    StartSpeechSynthesisStreamEventStreamAudioEvent,
    StartSpeechSynthesisStreamEventStreamStreamClosedEvent,
    StartSpeechSynthesisStreamInput,
    TextEvent,
)
from awscrt import io as crt_io
from smithy_core.exceptions import CallError
from smithy_http.aio.crt import AWSCRTHTTPClient, AWSCRTHTTPClientConfig

# Fields every CallError has; the rest of an error's fields are modeled members.
_BASE_ERROR_FIELDS = frozenset(f.name for f in dataclasses.fields(CallError))


class CATrustingCRTClient(AWSCRTHTTPClient):
    """``AWSCRTHTTPClient`` whose TLS context trusts the given CA file only."""

    def __init__(self, ca_file: str | None, config: AWSCRTHTTPClientConfig) -> None:
        super().__init__(client_config=config)
        if ca_file:
            options = crt_io.TlsContextOptions()
            options.override_default_trust_store_from_path(ca_filepath=ca_file)
            self._tls_ctx = crt_io.ClientTlsContext(options)

    def __deepcopy__(self, memo: Any) -> CATrustingCRTClient:
        # The SDK shares the transport between configs; never lose the CA.
        return self


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)
        }
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in cast("Sequence[Any]", value)]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def describe_error(exc: BaseException) -> dict[str, Any]:
    """An exception as the result reports it: class, message, modeled fields."""
    fields: dict[str, Any] = {}
    if isinstance(exc, CallError):
        message = exc.message
        for field in dataclasses.fields(exc):
            if field.name not in _BASE_ERROR_FIELDS:
                fields[field.name] = _jsonable(getattr(exc, field.name))
        status = exc.response_metadata.http_status_code
    else:
        message = str(exc)
        status = None
    return {
        "type": type(exc).__name__,
        "message": message,
        "fields": fields,
        "http_status": status,
    }


def _text_events(texts: list[Any]) -> list[TextEvent]:
    events: list[TextEvent] = []
    for item in texts:
        if isinstance(item, str):
            events.append(TextEvent(text=item))
        else:
            flush = FlushStreamConfiguration(force=True) if item.get("flush") else None
            events.append(
                TextEvent(text=item["text"], flush_stream_configuration=flush)
            )
    return events


async def synthesize_once(
    client: AsyncPollyClient, job: dict[str, Any]
) -> dict[str, Any]:
    """One StartSpeechSynthesisStream call: send the texts, collect the audio."""
    started = time.perf_counter()
    audio = bytearray()
    audio_events = 0
    request_characters: int | None = None
    error: dict[str, Any] | None = None
    ttfa_ms: float | None = None
    sample_rate = job.get("sample_rate")
    request = StartSpeechSynthesisStreamInput(
        engine="generative",
        voice_id=job["voice_id"],
        output_format=job.get("output_format", "mp3"),
        sample_rate=None if sample_rate is None else str(sample_rate),
    )
    sent = 0
    delay = float(job.get("delay_ms", 0)) / 1000

    stream = await client.start_speech_synthesis_stream(request)

    async def send() -> None:
        nonlocal sent
        for i, event in enumerate(_text_events(job["texts"])):
            if i and delay:
                await asyncio.sleep(delay)
            await stream.input_stream.send(
                StartSpeechSynthesisStreamActionStreamTextEvent(value=event)
            )
            sent += 1
        await stream.input_stream.send(
            StartSpeechSynthesisStreamActionStreamCloseStreamEvent(
                value=CloseStreamEvent()
            )
        )
        await stream.input_stream.close()

    sender = asyncio.create_task(send())
    try:
        _, output = await stream.await_output()
        while (event := await output.receive()) is not None:
            match event:
                case StartSpeechSynthesisStreamEventStreamAudioEvent(value=value):
                    if ttfa_ms is None:
                        ttfa_ms = (time.perf_counter() - started) * 1000
                    audio += value.audio_chunk or b""
                    audio_events += 1
                case StartSpeechSynthesisStreamEventStreamStreamClosedEvent(
                    value=value
                ):
                    request_characters = value.request_characters
                case _:
                    pass
        await output.close()
    except Exception as exc:  # what the client raised is the result
        error = describe_error(exc)
    total_ms = (time.perf_counter() - started) * 1000
    send_error = await _finish_sending(sender, after_error=error is not None)
    return {
        "audio_b64": base64.b64encode(bytes(audio)).decode(),
        "audio_events": audio_events,
        "request_characters": request_characters,
        "error": error,
        "send_error": send_error,
        "text_events_sent": sent,
        "ttfa_ms": ttfa_ms,
        "total_ms": total_ms,
    }


async def _finish_sending(
    sender: asyncio.Task[None], *, after_error: bool
) -> dict[str, Any] | None:
    """Wait for the sender; what went wrong on the input side, if anything.

    Once the service has ended the stream with an error, input still queued
    never drains: awscrt's request-body task dies on the completed HTTP/2
    stream (AWS_ERROR_HTTP_STREAM_HAS_COMPLETED) and the SDK's
    ``input_stream.close()`` waits forever for its buffer to empty. So after
    an error the sender gets a moment, then is cancelled (``SendBlocked``).
    """
    grace = 2.0 if after_error else 10.0
    done, _ = await asyncio.wait({sender}, timeout=grace)
    if sender in done:
        exc = sender.exception()
        return None if exc is None else describe_error(exc)
    sender.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await sender
    return {
        "type": "SendBlocked",
        "message": f"the input stream was still blocked {grace:g} s after the "
        "response ended; cancelled",
        "fields": {},
        "http_status": None,
    }


async def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Every call of the job, one after the other, on one client."""
    env = os.environ
    transport = CATrustingCRTClient(
        env.get("AWS_CA_BUNDLE"), AWSCRTHTTPClientConfig(force_http_2=True)
    )
    overrides: dict[str, Any] = {
        "endpoint_uri": job["endpoint_url"],
        "region": job["region"],
        "transport": transport,
        "aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
    }
    if env.get("AWS_SESSION_TOKEN"):
        overrides["aws_session_token"] = env["AWS_SESSION_TOKEN"]
    if "max_attempts" in job:
        overrides["max_attempts"] = int(job["max_attempts"])
    config = await AsyncPollyConfig.resolve(**overrides)
    calls: list[dict[str, Any]] = []
    async with AsyncPollyClient(config=config) as client:
        for _ in range(int(job.get("repeat", 1))):
            calls.append(await synthesize_once(client, job))
    await transport.close()
    return {"client": "aws-sdk-polly", "calls": calls}


def main() -> int:
    """Read the job from stdin, print the result line on stdout."""
    job = json.load(sys.stdin)
    result = asyncio.run(run_job(job))
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
