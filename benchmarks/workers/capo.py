"""Benchmark worker for the community client ``capo-polly`` (pure-Python h2: zapros).

Run by ``benchmarks/run.py`` under ``.tools/capo-py``. The client's HTTP handler
is zapros' asyncio network handler with HTTP/2 only and its experimental
bidirectional streaming on, over a transport whose TLS context trusts the
emulator's CA. Retries are off (``retry_max_attempts=1``) so errors are
counted. capo-polly sends the content type ``application/vnd.amazon-eventstream``
(a hyphen where AWS writes a dot); the emulator accepts both spellings.

The cold scenario builds a client, with its own handler and connection pool,
per stream, and closes it after.
"""

from __future__ import annotations

import importlib.metadata
import ssl
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import zapros
from capo_polly import AsyncPollyClient
from worker_common import Job, OnAudio, OnAudioStop, serve


async def _listed(texts: list[str]) -> AsyncIterator[str]:
    for text in texts:
        yield text


class Capo:
    async def make(self, job: Job, concurrency: int) -> AsyncPollyClient:
        context = ssl.create_default_context(cafile=job["ca_path"])
        handler = zapros.AsyncStdNetworkHandler(
            transport=zapros.AsyncIOTransport(ssl_context=context),
            http1=False,
            http2=True,
            http2_bidirectional_experimental=True,
        )
        return AsyncPollyClient(
            http_handler=handler,
            region=job["region"],
            endpoint=job["endpoint_url"],
            credentials={
                "access_key": job["access_key_id"],
                "secret_key": job["secret_access_key"],
            },
            retry_max_attempts=1,
        )

    async def synthesize(
        self, client: Any, job: Job, texts: list[str], on_audio: OnAudio
    ) -> None:
        await self.synthesize_words(client, job, _listed(texts), on_audio)

    async def synthesize_words(
        self, client: Any, job: Job, words: AsyncIterator[str], on_audio: OnAudio
    ) -> None:
        async def actions() -> AsyncIterator[Any]:
            async for word in words:
                yield {"TextEvent": {"text": word}}
            yield {"CloseStreamEvent": {}}

        async with client.start_speech_synthesis_stream(
            engine="generative",
            output_format=job["output_format"],
            voice_id=job["voice_id"],
            sample_rate=job["sample_rate"],
            action_stream=actions(),
        ) as output:
            async for event in output["event_stream"]:
                audio = event.get("AudioEvent")
                if audio is not None:
                    on_audio(audio.get("audio_chunk", b""))

    async def barge_in(
        self, client: Any, job: Job, texts: list[str], on_audio: OnAudioStop
    ) -> dict[str, float]:
        """No cancel in the API: leave the ``async with`` (its exit closes the
        response)."""
        marks: dict[str, float] = {}

        async def actions() -> AsyncIterator[Any]:
            for text in texts:
                yield {"TextEvent": {"text": text}}
            yield {"CloseStreamEvent": {}}

        async with client.start_speech_synthesis_stream(
            engine="generative",
            output_format=job["output_format"],
            voice_id=job["voice_id"],
            sample_rate=job["sample_rate"],
            action_stream=actions(),
        ) as output:
            async for event in output["event_stream"]:
                audio = event.get("AudioEvent")
                if audio is not None and on_audio(audio.get("audio_chunk", b"")):
                    marks["cancel"] = time.perf_counter()
                    break
        marks["closed"] = time.perf_counter()
        return marks

    async def close(self, client: Any) -> None:
        await client.__aexit__(None, None, None)


def main() -> int:
    versions = {
        name: importlib.metadata.version(name)
        for name in ("capo-polly", "zapros", "h2")
    }
    return serve(Capo(), client="capo", versions=versions)


if __name__ == "__main__":
    sys.exit(main())
