"""What every Python benchmark worker shares: the job loop, the clocks, the scenarios.

Standard library only: each worker runs under its own interpreter and virtualenv
(ours under ``.venv``, aws-sdk-polly under ``.tools/interop-py``, capo-polly under
``.tools/capo-py``) and imports this file from its own directory.

Protocol (``benchmarks/run.py`` is the other side). The worker imports its client
library, then prints one ``{"event": "ready", ...}`` line with the CPU it spent
starting up. Then, for each JSON job line on stdin, it runs the job and prints
one JSON result line; it exits at the end of stdin. Jobs: ``warm``, ``cold``,
``concurrency``, ``long``, and the voice-agent kinds ``bargein`` and
``incremental`` (see ``SCENARIOS``); a worker may add its own kinds.

Clocks. Client CPU is ``getrusage(RUSAGE_SELF)`` (every thread of the worker:
awscrt's event-loop threads included), read around the measured part only;
``main_cpu_s`` is the calling thread's alone (``time.thread_time``). The
emulator's CPU over the same span comes from ``/proc/<emulator pid>/stat``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import sys
import time
import traceback
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import asdict, dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

type Job = dict[str, Any]
type OnAudio = Callable[[bytes], None]
type OnAudioStop = Callable[[bytes], bool]
"""An audio handler that answers True when it wants the stream stopped (barge-in)."""


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
    on_first_audio: Callable[[], object] | None = None,
) -> StreamResult:
    """Run one stream with timing, a byte check and a timeout (never hangs).

    ``make_fresh``: build the client inside the timed span (and close it after,
    outside it) for the cold one-shot scenario. ``on_first_audio`` runs once,
    right after the first audio's time is taken.
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
            if on_first_audio is not None:
                on_first_audio()
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


# Voice-agent scenarios ---------------------------------------------------------


class VoiceAdapter(Adapter, Protocol):
    """A client that can be fed text as it comes and can be stopped mid-stream."""

    async def synthesize_words(
        self, client: Any, job: Job, words: AsyncIterator[str], on_audio: OnAudio
    ) -> None:
        """One stream fed from ``words``: each piece is sent as its own text
        event as soon as the iterator yields it; then close; hand each audio
        chunk to ``on_audio``; raise on any error."""
        ...

    async def barge_in(
        self, client: Any, job: Job, texts: list[str], on_audio: OnAudioStop
    ) -> dict[str, float]:
        """One stream of ``texts``; as soon as ``on_audio`` answers True, take
        ``marks["cancel"] = time.perf_counter()`` and stop the stream the
        library's own way. Return the marks: ``cancel``; ``closed`` once the
        call is over for the application (its iteration ended, its context
        exited); ``lease_free`` if the library exposes when its connection is
        free for the next call. Raise on any error other than the stop."""
        ...


def emulator_sockets(port: int) -> set[int]:
    """This process's TCP sockets connected to ``port`` (their inode numbers).

    Read from ``/proc``, the same way for every client (awscrt's and Node's
    sockets are invisible to Python otherwise): the fds of this process that
    are sockets, matched against the connection tables of its network
    namespace. A socket's inode is unique while it lives, and sockfs never
    hands an inode out twice in practice, so counting distinct inodes seen
    counts connections.
    """
    inodes: set[int] = set()
    with contextlib.suppress(OSError):
        for fd in os.listdir("/proc/self/fd"):
            with contextlib.suppress(OSError):
                link = os.readlink(f"/proc/self/fd/{fd}")
                if link.startswith("socket:["):
                    inodes.add(int(link[8:-1]))
    found: set[int] = set()
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        with contextlib.suppress(OSError), open(table, encoding="ascii") as rows:
            next(rows, None)
            for row in rows:
                fields = row.split()
                remote_port = int(fields[2].rsplit(":", 1)[1], 16)
                inode = int(fields[9])
                if remote_port == port and inode in inodes:
                    found.add(inode)
    return found


def _port(job: Job) -> int:
    port = urlsplit(job["endpoint_url"]).port
    if port is None:
        raise ValueError(f"no port in {job['endpoint_url']}")
    return port


async def paced_stream(
    adapter: VoiceAdapter,
    client: Any,
    job: Job,
    words: list[str],
    sentence_bytes: list[int],
) -> dict[str, Any]:
    """One stream whose text arrives word by word, like LLM tokens.

    Word ``k`` is handed to the client at ``start + k * interval`` (absolute
    deadlines: a client slow to take a word does not push the later ones
    back). For each sentence, the time from handing over its last word to
    the first audio byte of that sentence. The emulator synthesizes a
    sentence as soon as its last word arrives and sends it in events of its
    own, so sentence ``k``'s audio starts exactly at byte offset
    ``sum(sentence_bytes[:k])``: that is how a chunk is attributed.
    """
    interval = float(job["word_interval_s"])
    ends = set(job["sentence_end_words"])
    expected = sum(sentence_bytes)
    starts = [sum(sentence_bytes[:k]) for k in range(len(sentence_bytes))]
    sent: list[float] = []  # when each sentence's last word was handed over
    firsts: list[float] = []  # when each sentence's first audio byte arrived
    slip = 0.0
    received = 0
    chunks = 0
    ttfa: float | None = None
    started = time.perf_counter()

    async def source() -> AsyncIterator[str]:
        nonlocal slip
        for k, word in enumerate(words):
            deadline = started + k * interval
            delay = deadline - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            now = time.perf_counter()
            slip = max(slip, now - deadline)
            if k in ends:
                sent.append(now)
            yield word

    def on_audio(chunk: bytes) -> None:
        nonlocal received, chunks, ttfa
        if not chunk:
            return
        now = time.perf_counter()
        if ttfa is None:
            ttfa = now - started
        end = received + len(chunk)
        while len(firsts) < len(starts) and starts[len(firsts)] < end:
            firsts.append(now)
        received = end
        chunks += 1

    error: str | None = None
    try:
        async with asyncio.timeout(float(job["stream_timeout_s"])):
            await adapter.synthesize_words(client, job, source(), on_audio)
    except TimeoutError:
        error = f"timeout after {job['stream_timeout_s']} s"
    except Exception as exc:
        error = describe(exc)
    total = time.perf_counter() - started
    latencies: list[float] = []
    if error is None:
        error, latencies = _sentence_latencies(
            received, expected, len(starts), sent, firsts
        )
    result = StreamResult(
        ttfa_ms=None if ttfa is None else ttfa * 1000,
        total_ms=total * 1000,
        audio_bytes=received,
        chunks=chunks,
        cpu_to_first_audio_ms=None,
        error=error,
    )
    return asdict(result) | {
        "sentence_latency_ms": latencies,
        "schedule_slip_max_ms": slip * 1000,
    }


def _sentence_latencies(
    received: int,
    expected: int,
    sentences: int,
    sent: list[float],
    heard: list[float],
) -> tuple[str | None, list[float]]:
    """Check a paced stream's audio; the per-sentence latencies in ms."""
    if received != expected:
        return f"wrong audio size: {received} bytes, expected {expected}", []
    if not len(sent) == len(heard) == sentences:
        return (
            f"{len(sent)} sentence ends sent, {len(heard)} sentences heard, "
            f"of {sentences}"
        ), []
    latencies = [(at - end) * 1000 for at, end in zip(heard, sent, strict=True)]
    if latencies and min(latencies) < 0:
        return "audio of a sentence arrived before its last word was sent", []
    return None, latencies


async def incremental(adapter: Adapter, job: Job) -> dict[str, Any]:
    """Streams fed word by word (``paced_stream``), one at a time, on one client;
    first one untimed stream of the first sentence alone."""
    voice = _voice(adapter)
    client = await voice.make(job, 1)
    words: list[str] = job["words"]
    sizes: list[int] = job["sentence_bytes"]
    first = int(job["sentence_end_words"][0]) + 1
    try:
        warmup = [await paced_stream(voice, client, job, words[:first], sizes[:1])]
        span = Span()
        with measured(job, span):
            streams = [
                await paced_stream(voice, client, job, words, sizes)
                for _ in range(int(job["streams"]))
            ]
    finally:
        await voice.close(client)
    return {
        "id": job["id"],
        "kind": job["kind"],
        "ok": True,
        **asdict(span),
        "streams": streams,
        "warmup_errors": [w["error"] for w in warmup if w["error"]],
    }


async def one_barge_in(
    adapter: VoiceAdapter,
    client: Any,
    job: Job,
    port: int,
    seen: set[int],
) -> dict[str, Any]:
    """Barge in on a long utterance at its first audio chunk, then make the
    next call (a short utterance) on the same client.

    The connections in use are sampled (``emulator_sockets``) at the first
    audio of both calls, before the stop and after the next call's first
    audio is timed, into ``seen``.
    """
    full = int(job["long_bytes"])
    received = 0
    chunks = 0
    after = 0
    ttfa: float | None = None
    stopping = False
    started = time.perf_counter()

    def on_audio(chunk: bytes) -> bool:
        nonlocal received, chunks, after, ttfa, stopping
        received += len(chunk)
        chunks += 1
        if stopping:
            after += len(chunk)
            return False
        if not chunk:
            return False
        ttfa = time.perf_counter() - started
        seen.update(emulator_sockets(port))
        stopping = True
        return True

    error: str | None = None
    marks: dict[str, float] = {}
    try:
        async with asyncio.timeout(float(job["stream_timeout_s"])):
            marks = await adapter.barge_in(client, job, job["long_texts"], on_audio)
    except TimeoutError:
        error = f"timeout after {job['stream_timeout_s']} s"
    except Exception as exc:
        error = describe(exc)
    if error is None:
        if ttfa is None:
            error = "no audio: nothing to barge in on"
        elif "cancel" not in marks or "closed" not in marks:
            error = f"the adapter did not stop the stream (marks: {sorted(marks)})"
        elif received > full:
            error = f"wrong audio size: {received} bytes, at most {full} expected"
    cancel = marks.get("cancel")

    def since_cancel(mark: str) -> float | None:
        at = marks.get(mark)
        return None if cancel is None or at is None else (at - cancel) * 1000

    following = await one_stream(
        adapter,
        client,
        job,
        job["texts"],
        int(job["expected_bytes"]),
        on_first_audio=lambda: seen.update(emulator_sockets(port)),
    )
    if error is None and following.error is not None:
        error = f"next call: {following.error}"
    result = StreamResult(
        ttfa_ms=None if ttfa is None else ttfa * 1000,
        total_ms=(marks.get("closed", time.perf_counter()) - started) * 1000,
        audio_bytes=received,
        chunks=chunks,
        cpu_to_first_audio_ms=None,
        error=error,
    )
    return asdict(result) | {
        "cancel_to_closed_ms": since_cancel("closed"),
        "cancel_to_lease_free_ms": since_cancel("lease_free"),
        "audio_after_cancel_bytes": after,
        "next_ttfa_ms": following.ttfa_ms,
    }


async def bargein(adapter: Adapter, job: Job) -> dict[str, Any]:
    """Barge-ins (``one_barge_in``) one after another on one client.

    A short call and an untimed barge-in first; the connections open then
    are the client's own. ``new_connections``: connections seen carrying the
    measured calls that were not open before them.
    """
    voice = _voice(adapter)
    port = _port(job)
    start_clean = getattr(voice, "start_clean", None)
    if start_clean is not None:
        start_clean()  # ours: no idle connection left over from earlier jobs
    client = await voice.make(job, 1)
    seen: set[int] = set()
    try:
        warmup = [
            await one_stream(
                voice, client, job, job["texts"], int(job["expected_bytes"])
            ),
        ]
        warm_barge = await one_barge_in(voice, client, job, port, set())
        before = emulator_sockets(port)
        opened = getattr(voice, "connections_opened", None)
        opened_before = None if opened is None else opened(client)
        span = Span()
        with measured(job, span):
            streams = [
                await one_barge_in(voice, client, job, port, seen)
                for _ in range(int(job["streams"]))
            ]
        opened_after = None if opened is None else opened(client)
    finally:
        await voice.close(client)
    return {
        "id": job["id"],
        "kind": job["kind"],
        "ok": True,
        **asdict(span),
        "streams": streams,
        "warmup_errors": [w.error for w in warmup if w.error]
        + ([warm_barge["error"]] if warm_barge["error"] else []),
        "new_connections": len(seen - before),
        "connections_seen": len(seen),
        "connections_opened_by_client": (
            None
            if opened_before is None or opened_after is None
            else opened_after - opened_before
        ),
    }


def _voice(adapter: Adapter) -> VoiceAdapter:
    if not hasattr(adapter, "synthesize_words") or not hasattr(adapter, "barge_in"):
        raise NotImplementedError(f"{type(adapter).__name__} has no voice-agent API")
    return adapter  # type: ignore[return-value]  # checked just above


type Scenario = Callable[[Adapter, Job], Coroutine[Any, Any, dict[str, Any]]]

SCENARIOS: dict[str, Scenario] = {
    "warm": warm,
    "cold": cold,
    "concurrency": concurrency,
    "long": long,
    "incremental": incremental,
    "bargein": bargein,
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
