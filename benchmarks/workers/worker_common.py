"""What every Python benchmark worker shares: the job loop, the clocks, the scenarios.

Standard library only: each worker runs under its own interpreter and virtualenv
(ours under ``.venv``, aws-sdk-polly under ``.tools/interop-py``, capo-polly under
``.tools/capo-py``) and imports this file from its own directory.

Protocol (``benchmarks/run.py`` is the other side). The worker imports its client
library, then prints one ``{"event": "ready", ...}`` line with the CPU it spent
starting up. Then, for each JSON job line on stdin, it runs the job and prints
one JSON result line; it exits at the end of stdin. Jobs: ``warm``, ``cold``,
``concurrency``, ``long`` (see ``run_job``); a worker may add its own kinds.

Clocks. Client CPU is ``getrusage(RUSAGE_SELF)`` (every thread of the worker:
awscrt's event-loop threads included), read around the measured part only;
``main_cpu_s`` is the calling thread's alone (``time.thread_time``). The
emulator's CPU over the same span comes from ``/proc/<emulator pid>/stat``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import sys
import time
import traceback
from collections.abc import Callable, Coroutine
from dataclasses import asdict, dataclass
from typing import Any, Protocol

type Job = dict[str, Any]
type OnAudio = Callable[[bytes], None]


def cpu_seconds() -> float:
    """CPU (user + system) of this whole process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def process_cpu_seconds(pid: int, clk_tck: int) -> float | None:
    """CPU (user + system) of another process so far, from ``/proc``."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / clk_tck


@dataclass(slots=True)
class StreamResult:
    """One synthesis stream as the application saw it."""

    ttfa_ms: float | None
    """Call start to the first audio bytes in the application's hands."""
    total_ms: float
    """Call start to the end of the stream (all audio received)."""
    audio_bytes: int
    chunks: int
    cpu_to_first_audio_ms: float | None
    """Process CPU between the call start and the first audio (sequential runs)."""
    error: str | None


class Adapter(Protocol):
    """One client library, seen the same way by every scenario."""

    async def make(self, job: Job, concurrency: int) -> Any:
        """A ready client (no I/O needed), sized for ``concurrency`` streams."""
        ...

    async def synthesize(
        self, client: Any, job: Job, texts: list[str], on_audio: OnAudio
    ) -> None:
        """One stream: send ``texts`` as text events, then close; hand each
        audio chunk to ``on_audio``; raise on any error."""
        ...

    async def close(self, client: Any) -> None:
        """Release the client and its connections."""
        ...


def describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0][:160] if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


async def one_stream(
    adapter: Adapter,
    client: Any,
    job: Job,
    texts: list[str],
    expected_bytes: int,
    *,
    make_fresh: bool = False,
) -> StreamResult:
    """Run one stream with timing, a byte check and a timeout (never hangs).

    ``make_fresh``: build the client inside the timed span (and close it after,
    outside it) for the cold one-shot scenario.
    """
    received = 0
    chunks = 0
    ttfa: float | None = None
    cpu_first: float | None = None
    cpu_start = cpu_seconds()
    started = time.perf_counter()

    def on_audio(chunk: bytes) -> None:
        nonlocal received, chunks, ttfa, cpu_first
        if ttfa is None and chunk:
            ttfa = time.perf_counter() - started
            cpu_first = cpu_seconds() - cpu_start
        received += len(chunk)
        chunks += 1

    error: str | None = None
    fresh: Any = None
    try:
        async with asyncio.timeout(float(job["stream_timeout_s"])):
            if make_fresh:
                fresh = client = await adapter.make(job, 1)
            await adapter.synthesize(client, job, texts, on_audio)
    except TimeoutError:
        error = f"timeout after {job['stream_timeout_s']} s"
    except Exception as exc:  # the client's error is a result, counted
        error = describe(exc)
    total = time.perf_counter() - started
    if fresh is not None:
        try:
            async with asyncio.timeout(10):
                await adapter.close(fresh)
        except Exception as exc:
            error = error or f"close failed: {describe(exc)}"
    if error is None and received != expected_bytes:
        error = f"wrong audio size: {received} bytes, expected {expected_bytes}"
    return StreamResult(
        ttfa_ms=None if ttfa is None else ttfa * 1000,
        total_ms=total * 1000,
        audio_bytes=received,
        chunks=chunks,
        cpu_to_first_audio_ms=None if cpu_first is None else cpu_first * 1000,
        error=error,
    )


@dataclass(slots=True)
class Span:
    """Wall, process CPU, main-thread CPU and emulator CPU over a measured part."""

    wall_s: float = 0.0
    cpu_s: float = 0.0
    main_cpu_s: float = 0.0
    server_cpu_s: float | None = None


@contextlib.contextmanager
def measured(job: Job, span: Span) -> Any:
    pid = int(job["emulator_pid"])
    tck = int(job["clk_tck"])
    server0 = process_cpu_seconds(pid, tck)
    cpu0 = cpu_seconds()
    main0 = time.thread_time()
    wall0 = time.perf_counter()
    try:
        yield span
    finally:
        span.wall_s = time.perf_counter() - wall0
        span.main_cpu_s = time.thread_time() - main0
        span.cpu_s = cpu_seconds() - cpu0
        server1 = process_cpu_seconds(pid, tck)
        if server0 is not None and server1 is not None:
            span.server_cpu_s = server1 - server0


def _result(
    job: Job, span: Span, streams: list[StreamResult], warmup: list[StreamResult]
) -> dict[str, Any]:
    return {
        "id": job["id"],
        "kind": job["kind"],
        "ok": True,
        **asdict(span),
        "streams": [asdict(s) for s in streams],
        "warmup_errors": [w.error for w in warmup if w.error],
    }


async def warm(adapter: Adapter, job: Job) -> dict[str, Any]:
    """Sequential streams on one client, after ``warmup`` calls on it."""
    client = await adapter.make(job, 1)
    texts, expected = job["texts"], int(job["expected_bytes"])
    try:
        warmup = [
            await one_stream(adapter, client, job, texts, expected)
            for _ in range(int(job["warmup"]))
        ]
        span = Span()
        with measured(job, span):
            streams = [
                await one_stream(adapter, client, job, texts, expected)
                for _ in range(int(job["streams"]))
            ]
    finally:
        await adapter.close(client)
    return _result(job, span, streams, warmup)


async def cold(adapter: Adapter, job: Job) -> dict[str, Any]:
    """A fresh client (new connection) for every stream, closed after it.

    One untimed call first, so lazily imported code is not counted as "cold".
    """
    texts, expected = job["texts"], int(job["expected_bytes"])
    warmup = [
        await one_stream(adapter, None, job, texts, expected, make_fresh=True)
        for _ in range(int(job["warmup"]))
    ]
    span = Span()
    with measured(job, span):
        streams = [
            await one_stream(adapter, None, job, texts, expected, make_fresh=True)
            for _ in range(int(job["streams"]))
        ]
    return _result(job, span, streams, warmup)


async def concurrency(adapter: Adapter, job: Job) -> dict[str, Any]:
    """``streams`` streams, ``concurrency`` at a time, on one client."""
    level = int(job["concurrency"])
    total = int(job["streams"])
    texts, expected = job["texts"], int(job["expected_bytes"])
    client = await adapter.make(job, level)
    results: list[StreamResult] = []
    remaining = total

    async def lane() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            results.append(await one_stream(adapter, client, job, texts, expected))

    try:
        warmup = await asyncio.gather(
            *(one_stream(adapter, client, job, texts, expected) for _ in range(level))
        )
        span = Span()
        with measured(job, span):
            await asyncio.gather(*(lane() for _ in range(level)))
    finally:
        await adapter.close(client)
    return _result(job, span, results, list(warmup))


async def long(adapter: Adapter, job: Job) -> dict[str, Any]:
    """One long stream (several text events) per repetition, on a warm client."""
    client = await adapter.make(job, 1)
    try:
        warmup = [
            await one_stream(
                adapter, client, job, job["warmup_texts"], int(job["warmup_bytes"])
            )
        ]
        span = Span()
        with measured(job, span):
            streams = [
                await one_stream(
                    adapter, client, job, job["texts"], int(job["expected_bytes"])
                )
                for _ in range(int(job["streams"]))
            ]
    finally:
        await adapter.close(client)
    return _result(job, span, streams, warmup)


type Scenario = Callable[[Adapter, Job], Coroutine[Any, Any, dict[str, Any]]]

SCENARIOS: dict[str, Scenario] = {
    "warm": warm,
    "cold": cold,
    "concurrency": concurrency,
    "long": long,
}

type Extra = Callable[[Job], Coroutine[Any, Any, dict[str, Any]]]


def serve(
    adapter: Adapter,
    *,
    client: str,
    versions: dict[str, str],
    extra: dict[str, Extra] | None = None,
) -> int:
    """The worker's main loop (see the module docstring)."""
    ready = {
        "event": "ready",
        "client": client,
        "startup_cpu_s": cpu_seconds(),
        "ready_at": time.time(),
        "python": sys.version.split()[0],
        "versions": versions,
    }
    out = sys.stdout
    out.write(json.dumps(ready) + "\n")
    out.flush()
    for line in sys.stdin:
        if not line.strip():
            continue
        job: Job = json.loads(line)
        result: dict[str, Any]
        try:
            kind = job["kind"]
            if extra and kind in extra:
                result = asyncio.run(extra[kind](job))
            else:
                result = asyncio.run(SCENARIOS[kind](adapter, job))
        except Exception as exc:  # a harness failure: report it, keep serving
            result = {
                "id": job.get("id"),
                "kind": job.get("kind"),
                "ok": False,
                "error": describe(exc),
                "traceback": traceback.format_exc(limit=8),
            }
        out.write(json.dumps(result) + "\n")
        out.flush()
    return 0
