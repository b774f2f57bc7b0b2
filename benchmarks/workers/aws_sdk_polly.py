# pyright: reportMissingTypeStubs=false, reportUnknownMemberType=false
"""Benchmark worker for AWS's official Python SDK, ``aws-sdk-polly`` (experimental).

Run by ``benchmarks/run.py`` under ``.tools/interop-py`` (``make setup-interop``):
the SDK pins an awscrt the project cannot share. Configured as its duplex event
streams need: the awscrt transport with HTTP/2 forced (its default aiohttp
transport cannot stream both ways), whose TLS context is replaced by one that
trusts the emulator's CA (neither the SDK nor the transport takes a CA file).
Retries are off (``max_attempts=1``) so errors are counted, not hidden.

One client = one transport = one pooled HTTP/2 connection per endpoint: every
concurrent stream of a client shares it. The cold scenario builds a client
(config resolution included) per stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

# This file is named like the SDK's package, and Python puts the script's
# directory first on sys.path: move it last, so ``aws_sdk_polly`` is the SDK
# and ``worker_common`` (beside this file) is still found.
_HERE = Path(__file__).resolve().parent
if sys.path and Path(sys.path[0] or ".").resolve() == _HERE:
    sys.path.append(sys.path.pop(0))

from aws_sdk_polly.client import AsyncPollyClient  # type: ignore[import-untyped]  # noqa: E402
from aws_sdk_polly.config import AsyncPollyConfig  # type: ignore[import-untyped]  # noqa: E402
from aws_sdk_polly.models import (  # type: ignore[import-untyped]  # noqa: E402
    CloseStreamEvent,
    StartSpeechSynthesisStreamActionStreamCloseStreamEvent,
    StartSpeechSynthesisStreamActionStreamTextEvent,
    StartSpeechSynthesisStreamEventStreamAudioEvent,
    StartSpeechSynthesisStreamInput,
    TextEvent,
)
from awscrt import io as crt_io  # type: ignore[import-untyped]  # noqa: E402
from smithy_http.aio.crt import (  # noqa: E402
    AWSCRTHTTPClient,
    AWSCRTHTTPClientConfig,
)
from worker_common import Job, OnAudio, OnAudioStop, serve  # noqa: E402


class _TrustingTransport(AWSCRTHTTPClient):
    """The awscrt transport, trusting one CA file instead of the system store."""

    def __init__(self, ca_file: str) -> None:
        super().__init__(client_config=AWSCRTHTTPClientConfig(force_http_2=True))
        options = crt_io.TlsContextOptions()
        options.override_default_trust_store_from_path(ca_filepath=ca_file)
        self._tls_ctx = crt_io.ClientTlsContext(options)

    def __deepcopy__(self, memo: Any) -> _TrustingTransport:
        return self  # the SDK copies its config per call: keep one transport


def _request(job: Job) -> StartSpeechSynthesisStreamInput:
    return StartSpeechSynthesisStreamInput(
        engine="generative",
        voice_id=job["voice_id"],
        output_format=job["output_format"],
        sample_rate=job["sample_rate"],
    )


async def _send_all(stream: Any, texts: AsyncIterator[str]) -> None:
    """Each text as its own TextEvent as it comes, then the close."""
    async for text in texts:
        await stream.input_stream.send(
            StartSpeechSynthesisStreamActionStreamTextEvent(value=TextEvent(text=text))
        )
    await stream.input_stream.send(
        StartSpeechSynthesisStreamActionStreamCloseStreamEvent(value=CloseStreamEvent())
    )
    await stream.input_stream.close()


async def _listed(texts: list[str]) -> AsyncIterator[str]:
    for text in texts:
        yield text


async def _stop(sender: asyncio.Task[None]) -> None:
    if not sender.done():
        sender.cancel()
        with contextlib.suppress(BaseException):
            await sender


class AwsSdkPolly:
    async def make(self, job: Job, concurrency: int) -> AsyncPollyClient:
        config = await AsyncPollyConfig.resolve(
            endpoint_uri=job["endpoint_url"],
            region=job["region"],
            transport=_TrustingTransport(job["ca_path"]),
            aws_access_key_id=job["access_key_id"],
            aws_secret_access_key=job["secret_access_key"],
            max_attempts=1,
        )
        return AsyncPollyClient(config=config)

    async def synthesize(
        self, client: Any, job: Job, texts: list[str], on_audio: OnAudio
    ) -> None:
        await self.synthesize_words(client, job, _listed(texts), on_audio)

    async def synthesize_words(
        self, client: Any, job: Job, words: AsyncIterator[str], on_audio: OnAudio
    ) -> None:
        stream = await client.start_speech_synthesis_stream(_request(job))
        sender = asyncio.create_task(_send_all(stream, words))
        try:
            _, output = await stream.await_output()
            while (event := await output.receive()) is not None:
                if isinstance(event, StartSpeechSynthesisStreamEventStreamAudioEvent):
                    on_audio(event.value.audio_chunk or b"")
            await output.close()
            # The input side must have finished too (a stream is done both ways).
            await asyncio.wait_for(asyncio.shield(sender), 10)
        finally:
            await _stop(sender)

    async def barge_in(
        self, client: Any, job: Job, texts: list[str], on_audio: OnAudioStop
    ) -> dict[str, float]:
        """The SDK has no cancel: the application stops the way its docs show,
        ``DuplexEventStream.close()`` (closes the input and the output
        receiver). Nothing resets the HTTP/2 stream: the service still sends
        the rest, which the transport reads and drops."""
        marks: dict[str, float] = {}
        stream = await client.start_speech_synthesis_stream(_request(job))
        sender = asyncio.create_task(_send_all(stream, _listed(texts)))
        try:
            _, output = await stream.await_output()
            while (event := await output.receive()) is not None:
                if isinstance(
                    event, StartSpeechSynthesisStreamEventStreamAudioEvent
                ) and on_audio(event.value.audio_chunk or b""):
                    marks["cancel"] = time.perf_counter()
                    await stream.close()
                    break
            marks["closed"] = time.perf_counter()
        finally:
            await _stop(sender)
        return marks

    async def close(self, client: Any) -> None:
        await client.close()


def main() -> int:
    versions = {
        name: importlib.metadata.version(name)
        for name in (
            "aws-sdk-polly",
            "awscrt",
            "smithy-core",
            "smithy-http",
            "smithy-aws-event-stream",
        )
    }
    return serve(AwsSdkPolly(), client="aws-sdk-polly", versions=versions)


if __name__ == "__main__":
    sys.exit(main())
