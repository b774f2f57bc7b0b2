"""Benchmark worker for this project's client (``benchmarks/run.py`` runs it in .venv).

Besides the shared scenarios (``worker_common``) it runs three kinds of its own:

* ``prewarm``: the first utterance of a fresh client, three ways, per sample:
  cold (no connection open: the call connects), after ``prewarm(1)`` (timed
  too), and the next call on the same client (warm). The process-wide idle
  cache is emptied (``close_idle_connections()``) before each fresh client,
  so every sample really starts cold. The order of the cold and prewarmed
  clients alternates per sample. ``on_metrics`` checks each call ran on the
  connection it should have (cold: a new one; after a prewarm: a reused one).

* ``micro``: the hot path, call by call: encode + sign one ``TextEvent``
  (``protocol.text_event`` + ``EventSigner.envelope``), sign one request,
  decode one 4 KiB ``AudioEvent`` through ``protocol.ResponseParser``, and the
  payload throughput of 64 KiB audio events (whole messages, and 16 KiB pieces
  as HTTP/2 DATA frames deliver them).
* ``profile``: warm sequential short streams under ``cProfile`` (and
  ``pyinstrument`` when it is installed), with the CPU split between the
  asyncio thread and the others (awscrt's).
"""

from __future__ import annotations

import asyncio
import cProfile
import importlib.metadata
import io
import os
import pstats
import re
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import asdict
from typing import Any

from worker_common import (
    Job,
    OnAudio,
    OnAudioStop,
    Span,
    StreamResult,
    cpu_seconds,
    measured,
    one_stream,
    serve,
)

from amazon_polly_streaming import (
    AwsCredentials,
    PollyStreamingClient,
    StreamMetrics,
    protocol,
)
from amazon_polly_streaming.eventstream import encode_message
from amazon_polly_streaming.signing import EventSigner, sign_request
from amazon_polly_streaming_generated import serde
from amazon_polly_streaming_generated.shapes import AudioEvent

type Json = dict[str, Any]

SEED = "0" * 64  # any hex signature seeds an event-signature chain


def _credentials(job: Job) -> AwsCredentials:
    return AwsCredentials(
        access_key_id=job["access_key_id"],
        secret_access_key=job["secret_access_key"],
    )


def _client(
    job: Job,
    concurrency: int,
    on_metrics: Callable[[StreamMetrics], object] | None = None,
) -> PollyStreamingClient:
    return PollyStreamingClient(
        job["region"],
        endpoint_url=job["endpoint_url"],
        ca_bundle=job["ca_path"],
        credentials=_credentials(job),
        pool_size=max(1, concurrency),
        max_attempts=1,  # count errors, never hide them behind retries
        on_metrics=on_metrics,
    )


class Ours:
    async def make(self, job: Job, concurrency: int) -> PollyStreamingClient:
        return _client(job, concurrency)

    async def synthesize(
        self, client: Any, job: Job, texts: list[str], on_audio: OnAudio
    ) -> None:
        assert isinstance(client, PollyStreamingClient)
        text: str | list[str] = texts[0] if len(texts) == 1 else texts
        async for chunk in client.start_speech_synthesis_stream(
            text=text,
            voice_id=job["voice_id"],
            output_format=job["output_format"],
            sample_rate=job["sample_rate"],
            use_pool=not job.get("cold", False),
        ):
            on_audio(chunk)

    async def close(self, client: Any) -> None:
        await client.close()

    async def synthesize_words(
        self, client: Any, job: Job, words: AsyncIterator[str], on_audio: OnAudio
    ) -> None:
        assert isinstance(client, PollyStreamingClient)
        async with client.start_speech_synthesis_stream(
            text=words,
            voice_id=job["voice_id"],
            output_format=job["output_format"],
            sample_rate=job["sample_rate"],
        ) as audio:
            async for chunk in audio:
                on_audio(chunk)

    async def barge_in(
        self, client: Any, job: Job, texts: list[str], on_audio: OnAudioStop
    ) -> dict[str, float]:
        """``cancel()`` at the wanted chunk; ``closed`` when the ``async with``
        is left. ``lease_free``: the first moment ``pool_stats().leased`` is
        seen at 0: when the iteration ends (the lease goes back as the call's
        generator finishes), else at the ``async with``'s exit, else polled
        every millisecond. Not a busy ``asyncio.sleep(0)`` poll: that holds
        the GIL against awscrt's thread, whose callbacks then wait out the
        interpreter's 5 ms switch interval, one after another, and the
        measurement would make the cancel look 10-100x slower than it is."""
        assert isinstance(client, PollyStreamingClient)
        marks: dict[str, float] = {}

        def lease_free() -> bool:
            if "cancel" in marks and not client.pool_stats().leased:
                marks.setdefault("lease_free", time.perf_counter())
                return True
            return False

        audio = client.start_speech_synthesis_stream(
            text=texts[0] if len(texts) == 1 else texts,
            voice_id=job["voice_id"],
            output_format=job["output_format"],
            sample_rate=job["sample_rate"],
        )
        async with audio:
            async for chunk in audio:
                if on_audio(chunk) and "cancel" not in marks:
                    marks["cancel"] = time.perf_counter()
                    audio.cancel()
            lease_free()
        marks["closed"] = time.perf_counter()
        if "cancel" in marks:
            # A poll: the client signals no lease release (and it is freed
            # by now in practice: this loop is a fallback, bounded by the
            # stream's timeout).
            while not lease_free():  # noqa: ASYNC110
                await asyncio.sleep(0.001)
            if audio.metrics.outcome != "cancelled":
                msg = f"cancelled call ended with outcome {audio.metrics.outcome!r}"
                raise RuntimeError(msg)
        return marks

    def start_clean(self) -> None:
        """Close the idle connections earlier jobs left in the process cache."""
        PollyStreamingClient.close_idle_connections()

    def connections_opened(self, client: Any) -> int:
        assert isinstance(client, PollyStreamingClient)
        return client.pool_stats().connections_opened


# Prewarm ----------------------------------------------------------------------


async def prewarm(job: Job) -> dict[str, Any]:
    """Cold vs after ``prewarm(1)`` vs warm first-utterance TTFA (module docs)."""
    adapter = Ours()
    texts, expected = job["texts"], int(job["expected_bytes"])
    timeout = float(job["stream_timeout_s"])

    async def fresh(*, warm_up: bool) -> tuple[StreamResult, StreamResult, Json]:
        """A fresh client in a process with no idle connection: its first
        call (after ``prewarm(1)`` if ``warm_up``), then its second."""
        PollyStreamingClient.close_idle_connections()
        await asyncio.sleep(0.005)  # the closes run on awscrt's thread: let them end
        calls: list[StreamMetrics] = []
        client = _client(job, 1, on_metrics=calls.append)
        facts: Json = {"prewarm_ms": None, "opened": None, "reused": []}
        try:
            if warm_up:
                began = time.perf_counter()
                async with asyncio.timeout(timeout):
                    facts["opened"] = await client.prewarm(1)
                facts["prewarm_ms"] = (time.perf_counter() - began) * 1000
            first = await one_stream(adapter, client, job, texts, expected)
            second = await one_stream(adapter, client, job, texts, expected)
        finally:
            await client.close()
        facts["reused"] = [m.connection_reused for m in calls]
        return first, second, facts

    async def sample(index: int) -> Json:
        if index % 2:
            warmed = await fresh(warm_up=True)
            cold = await fresh(warm_up=False)
        else:
            cold = await fresh(warm_up=False)
            warmed = await fresh(warm_up=True)
        after, warm, facts = warmed
        first_cold, _, cold_facts = cold
        error = first_cold.error or after.error or warm.error
        if error is None and facts["opened"] != 1:
            error = f"prewarm(1) opened {facts['opened']} connections, not 1"
        if error is None and cold_facts["reused"][:1] != [False]:
            error = "the cold call did not open its own connection"
        if error is None and facts["reused"] != [True, True]:
            error = f"calls after the prewarm reused a connection: {facts['reused']}"
        return asdict(after) | {
            "error": error,
            "after_prewarm_ttfa_ms": after.ttfa_ms,
            "cold_ttfa_ms": first_cold.ttfa_ms,
            "warm_ttfa_ms": warm.ttfa_ms,
            "prewarm_ms": facts["prewarm_ms"],
        }

    warmup = [await sample(i) for i in range(int(job["warmup"]))]
    span = Span()
    with measured(job, span):
        streams = [await sample(i) for i in range(int(job["streams"]))]
    return {
        "id": job["id"],
        "kind": "prewarm",
        "ok": True,
        **asdict(span),
        "streams": streams,
        "warmup_errors": [w["error"] for w in warmup if w["error"]],
    }


# Microbenchmarks -------------------------------------------------------------


def _best_per_call(calls: int, repeats: int, run: Callable[[int], object]) -> float:
    """Seconds per call: the best of ``repeats`` timed batches of ``calls``."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run(calls)
        best = min(best, time.perf_counter() - start)
    return best / calls


def _check(condition: bool, what: str) -> None:
    if not condition:
        raise RuntimeError(f"microbenchmark self-check failed: {what}")


def _drive(coroutine: Coroutine[Any, Any, None]) -> None:
    """Run a coroutine that never suspends (the signers do no I/O) to its end,
    without an event loop's scheduling in the measurement."""
    try:
        coroutine.send(None)
    except StopIteration:
        return
    coroutine.close()
    raise RuntimeError("a signing coroutine suspended: cannot time it synchronously")


def _signing(job: Job, calls: int, repeats: int) -> dict[str, float]:
    """Encode and sign: µs per call."""
    credentials = _credentials(job)
    region = job["region"]
    service = protocol.OPERATION.signing_name
    text = job["texts"][0]

    def signer() -> EventSigner:
        return EventSigner(
            seed=SEED, credentials=credentials, region=region, service=service
        )

    def encode_and_sign(n: int) -> None:
        events = signer()

        async def go() -> None:
            for _ in range(n):
                await events.envelope(protocol.text_event(text))

        _drive(go())

    def encode(n: int) -> None:
        for _ in range(n):
            protocol.text_event(text)

    def sign(n: int) -> None:
        events = signer()
        event = protocol.text_event(text)

        async def go() -> None:
            for _ in range(n):
                await events.envelope(event)

        _drive(go())

    headers = protocol.request_headers(
        serde.deserialize_start_speech_synthesis_stream_input_headers(
            [
                ("x-amzn-Engine", "generative"),
                ("x-amzn-VoiceId", job["voice_id"]),
                ("x-amzn-OutputFormat", job["output_format"]),
                ("x-amzn-SampleRate", job["sample_rate"]),
            ]
        )
    )

    def sign_requests(n: int) -> None:
        async def go() -> None:
            for _ in range(n):
                await sign_request(
                    method="POST",
                    host="127.0.0.1",
                    port=8443,
                    path=protocol.OPERATION.path,
                    headers=headers,
                    credentials=credentials,
                    region=region,
                    service=service,
                )

        _drive(go())

    return {
        "encode_sign_text_event_us": _best_per_call(calls, repeats, encode_and_sign),
        "encode_text_event_us": _best_per_call(calls, repeats, encode),
        "sign_envelope_us": _best_per_call(calls, repeats, sign),
        "sign_request_us": _best_per_call(max(100, calls // 3), repeats, sign_requests),
    }


def _decoding(calls: int, count64: int, repeats: int) -> dict[str, float]:
    """Decode: µs per 4 KiB event, MB/s of 64 KiB event payloads."""
    audio4k = encode_message(
        *serde.serialize_audio_event(AudioEvent(audio_chunk=os.urandom(4096)))
    )
    probe = protocol.ResponseParser().feed(audio4k)
    _check(
        len(probe) == 1 and isinstance(probe[0], AudioEvent),
        "4 KiB AudioEvent round trip",
    )

    def decode_4k(n: int) -> None:
        parser = protocol.ResponseParser()
        feed = parser.feed
        for _ in range(n):
            feed(audio4k)
        _check(parser.audio_events == n, "every 4 KiB event decoded")

    payload = os.urandom(64 * 1024)
    audio64k = encode_message(
        *serde.serialize_audio_event(AudioEvent(audio_chunk=payload))
    )
    stream = audio64k * count64
    pieces = [stream[i : i + 16384] for i in range(0, len(stream), 16384)]
    total = count64 * len(payload)

    def whole(n: int) -> None:
        for _ in range(n):
            parser = protocol.ResponseParser()
            for _ in range(count64):
                parser.feed(audio64k)
            _check(parser.audio_bytes == total, "64 KiB events, whole")

    def in_pieces(n: int) -> None:
        for _ in range(n):
            parser = protocol.ResponseParser()
            for piece in pieces:
                parser.feed(piece)
            _check(parser.audio_bytes == total, "64 KiB events, 16 KiB pieces")

    return {
        "decode_audio_event_4k_us": _best_per_call(calls, repeats, decode_4k),
        "payload_mb_s_64k_whole": total / _best_per_call(1, repeats, whole) / 1e6,
        "payload_mb_s_64k_16k_pieces": (
            total / _best_per_call(1, repeats, in_pieces) / 1e6
        ),
        "payload_bytes_64k": float(total),
    }


async def micro(job: Job) -> dict[str, Any]:
    scale = float(job.get("scale", 1.0))
    repeats = int(job.get("repeats", 5))
    signing = _signing(job, max(200, int(3000 * scale)), repeats)
    decoding = _decoding(
        max(2000, int(30000 * scale)), max(16, int(256 * scale)), repeats
    )
    return {
        "id": job["id"],
        "kind": "micro",
        "ok": True,
        "text_chars": len(job["texts"][0]),
        "repeats": repeats,
        **{k: v * 1e6 for k, v in signing.items()},
        **{k: v * 1e6 if k.endswith("_us") else v for k, v in decoding.items()},
    }


# Profile ----------------------------------------------------------------------


async def profile(job: Job) -> dict[str, Any]:
    adapter = Ours()
    client = await adapter.make(job, 1)
    texts, expected = job["texts"], int(job["expected_bytes"])
    streams = int(job["streams"])
    for _ in range(int(job["warmup"])):
        await one_stream(adapter, client, job, texts, expected)

    # The CPU split first, unprofiled: asyncio thread vs awscrt's threads.
    cpu0, main0 = cpu_seconds(), time.thread_time()
    errors = 0
    for _ in range(streams):
        errors += (
            await one_stream(adapter, client, job, texts, expected)
        ).error is not None
    cpu_total = cpu_seconds() - cpu0
    cpu_main = time.thread_time() - main0

    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(streams):
        errors += (
            await one_stream(adapter, client, job, texts, expected)
        ).error is not None
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(int(job.get("top", 30)))
    by_tottime = out.getvalue()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(int(job.get("top", 30)))
    by_cumulative = out.getvalue()
    rows = []
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    for (filename, line, name), (cc, nc, tt, ct, _) in raw.items():
        if "select.epoll" in name or filename.endswith("selectors.py"):
            continue  # the event loop waiting for I/O: not work
        rows.append(
            {
                "function": f"{_short(filename)}:{line}({name})",
                "calls": nc,
                "primitive_calls": cc,
                "tottime_us_per_stream": tt / streams * 1e6,
                "cumtime_us_per_stream": ct / streams * 1e6,
            }
        )
    rows.sort(key=lambda r: r["tottime_us_per_stream"], reverse=True)

    instrument_text: str | None = None
    try:
        from pyinstrument import Profiler  # noqa: PLC0415 - optional

        sampler = Profiler(interval=0.0005, async_mode="enabled")
        sampler.start()
        for _ in range(streams):
            await one_stream(adapter, client, job, texts, expected)
        sampler.stop()
        instrument_text = sampler.output_text(unicode=False, color=False)
    except ImportError:
        instrument_text = None
    await adapter.close(client)
    return {
        "id": job["id"],
        "kind": "profile",
        "ok": True,
        "streams": streams,
        "errors": errors,
        "cpu_ms_per_stream": cpu_total / streams * 1000,
        "main_thread_cpu_ms_per_stream": cpu_main / streams * 1000,
        "top": rows[: int(job.get("top", 30))],
        "cprofile_by_tottime": by_tottime,
        "cprofile_by_cumulative": by_cumulative,
        "pyinstrument": instrument_text,
    }


def _short(filename: str) -> str:
    """A profile entry's file, without the interpreter's or the checkout's prefix."""
    short = re.sub(r"^.*/lib/python3\.\d+/(site-packages/)?", "", filename)
    return re.sub(r"^.*/(src|generated|benchmarks)/", "", short)


def main() -> int:
    versions = {
        name: importlib.metadata.version(name)
        for name in ("amazon-polly-streaming", "awscrt", "aws-sdk-signers")
    }
    return serve(
        Ours(),
        client="ours",
        versions=versions,
        extra={"micro": micro, "profile": profile, "prewarm": prewarm},
    )


if __name__ == "__main__":
    sys.exit(main())
