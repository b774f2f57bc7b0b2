"""``make soak``: thousands of streams through one client's pool; nothing may grow.

Streams run in waves of changing concurrency (1, 8, 16, 64, with ``pool_size``
8 so the FIFO queue is exercised); each stream is one of: completed, abandoned
after its first audio (barge-in), cancelled from outside, cut by an injected
fault (connection dropped, stream reset, throttling event after audio), or
throttled before the stream and retried. The emulator runs in a child
process (``--serve-emulator``), so what is measured is the client alone: the
emulator's own memory (its TLS and HTTP/2 state, its request log) stays out
of the figures. Reported at the start (after a warm-up) and at the end: open
file descriptors, threads, idle connections, asyncio tasks, RSS. Exit status
1 if any grew beyond a small tolerance, a stream ended in an unexpected way,
or the emulator hit an internal error.

    python scripts/soak.py [--streams 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import random
import sys
import threading
import time
from dataclasses import asdict, dataclass

from amazon_polly_streaming import (
    AwsCredentials,
    PollyStreamingClient,
    ServiceException,
    TransportError,
)
from amazon_polly_streaming.testing import Fault, PollyEmulator

FAULTY_VOICES = {
    "Danielle": Fault.drop_connection(after_audio_events=1),
    "Stephen": Fault.rst_stream(after_audio_events=1),
    "Olivia": Fault.throttle(mid_stream=True, after_audio_events=1),
}
THROTTLED_VOICE = "Amy"  # HTTP 400 throttling on half its requests: retried
WAVES = (1, 8, 16, 64)


@dataclass
class Snapshot:
    """Resources of this process at one moment."""

    fds: int
    threads: int
    tasks: int
    idle_connections: int
    rss_kib: int


def snapshot(client: PollyStreamingClient) -> Snapshot:
    rss = 0
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    return Snapshot(
        fds=len(os.listdir("/proc/self/fd")),
        threads=threading.active_count(),
        tasks=len(asyncio.all_tasks()),
        idle_connections=client.pool_stats().idle,
        rss_kib=rss,
    )


def _configure(emu: PollyEmulator, rng: random.Random) -> None:
    for voice, fault in FAULTY_VOICES.items():
        emu.faults.add(fault, times=None, when=lambda r, v=voice: r.voice_id == v)
    emu.faults.add(
        Fault.throttle(),
        times=None,
        when=lambda r: r.voice_id == THROTTLED_VOICE and rng.random() < 0.5,
    )


async def serve_emulator(seed: int = 7) -> None:
    """The child: an emulator with the soak's faults until stdin closes; its
    address first, its internal errors last (one JSON line each)."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible mix, not secrets
    async with PollyEmulator(synthesis_delay=0.0) as emu:
        _configure(emu, rng)
        print(
            json.dumps(
                {
                    "endpoint_url": emu.endpoint_url,
                    "ca_path": str(emu.ca_path),
                    "region": emu.region,
                    "access_key_id": emu.credentials.access_key_id,
                    "secret_access_key": emu.credentials.secret_access_key,
                }
            ),
            flush=True,
        )
        loop = asyncio.get_running_loop()
        stdin_closed = loop.run_in_executor(None, sys.stdin.read)
        while not stdin_closed.done():
            await asyncio.wait({stdin_closed}, timeout=1.0)
            emu.log.clear()  # keeps the internal errors
        print(json.dumps({"internal_errors": emu.log.internal_errors}), flush=True)


def _client_for(emu: dict[str, str]) -> PollyStreamingClient:
    return PollyStreamingClient(
        emu["region"],
        endpoint_url=emu["endpoint_url"],
        ca_bundle=emu["ca_path"],
        credentials=AwsCredentials(
            access_key_id=emu["access_key_id"],
            secret_access_key=emu["secret_access_key"],
        ),
        pool_size=8,
        max_attempts=3,
    )


class _Mix:
    """The kinds of stream the soak runs, and the tally of how each ended."""

    def __init__(
        self,
        client: PollyStreamingClient,
        rng: random.Random,
        outcomes: collections.Counter[str],
    ) -> None:
        self.client = client
        self.rng = rng
        self.outcomes = outcomes

    async def one(self, kind: str) -> None:
        voice = {
            "complete": "Ruth",
            "abandon": "Joanna",
            "cancel": "Matthew",
            "fault": self.rng.choice(sorted(FAULTY_VOICES)),
            "retried": THROTTLED_VOICE,
        }[kind]
        stream = self.client.start_speech_synthesis_stream(
            text="Soak test. Two sentences.", voice_id=voice, output_format="pcm"
        )
        try:
            async for _ in stream:
                if kind == "abandon":
                    break
            await stream.aclose()
            self.outcomes[f"{kind}:ok"] += 1
        except (ServiceException, TransportError) as exc:
            self.outcomes[f"{kind}:{type(exc).__name__}"] += 1

    async def cancelled(self) -> None:
        task = asyncio.create_task(self.one("cancel"))
        await asyncio.sleep(self.rng.random() * 0.004)
        task.cancel()
        try:
            await task
            self.outcomes["cancel:finished-first"] += 1
        except asyncio.CancelledError:
            self.outcomes["cancel:cancelled"] += 1


async def soak(streams: int, *, seed: int = 7) -> dict[str, object]:
    """Run the soak; returns the report (``ok`` says whether it passed)."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible mix, not secrets
    outcomes: collections.Counter[str] = collections.Counter()
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--serve-emulator",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdin is not None
    assert child.stdout is not None
    try:
        client = _client_for(json.loads(await child.stdout.readline()))

        mix = _Mix(client, rng, outcomes)

        async def waves() -> tuple[int, list[int]]:
            """Run the streams; returns how many, and RSS every 1000."""
            kinds = ["complete"] * 6 + ["abandon", "fault", "retried"]
            done = wave = 0
            trace: list[int] = []
            while done < streams:
                width = min(WAVES[wave % len(WAVES)], streams - done)
                jobs = [
                    mix.cancelled()
                    if rng.random() < 0.1
                    else mix.one(rng.choice(kinds))
                    for _ in range(width)
                ]
                await asyncio.gather(*jobs)
                if (done + width) // 1000 > done // 1000:
                    trace.append(snapshot(client).rss_kib)
                done += width
                wave += 1
            return done, trace

        for _ in range(8):  # warm-up: awscrt's threads, first connections
            await mix.one("complete")
        start = snapshot(client)
        started = time.monotonic()
        done, trace = await waves()
        elapsed = time.monotonic() - started
        PollyStreamingClient.close_idle_connections()
        await asyncio.sleep(0.3)
        end = snapshot(client)
        child.stdin.close()
        internal_errors = json.loads(await child.stdout.readline())["internal_errors"]
    finally:
        if child.returncode is None:
            child.stdin.close()
            await child.wait()
    return _report(
        outcomes,
        start,
        end,
        internal_errors=internal_errors,
        done=done,
        elapsed=elapsed,
        trace=trace,
    )


def _report(
    outcomes: collections.Counter[str],
    start: Snapshot,
    end: Snapshot,
    *,
    internal_errors: list[str],
    done: int,
    elapsed: float,
    trace: list[int],
) -> dict[str, object]:
    unexpected = {
        k: v
        for k, v in outcomes.items()
        if not (
            k.endswith((":ok", ":cancelled", ":finished-first"))
            or k.startswith("fault:")
            # throttled on every one of max_attempts (1 in 8): raised, as it must
            or k == "retried:ThrottlingException"
        )
    }
    ok = (
        end.fds <= start.fds + 2
        and end.threads <= start.threads
        and end.tasks <= start.tasks
        and end.idle_connections == 0
        and end.rss_kib <= start.rss_kib * 1.25 + 8192
        and not unexpected
        and not internal_errors
    )
    return {
        "ok": ok,
        "streams": done,
        "seconds": round(elapsed, 1),
        "streams_per_second": round(done / elapsed, 1),
        "start": asdict(start),
        "end": asdict(end),
        "outcomes": dict(sorted(outcomes.items())),
        "unexpected": unexpected,
        "emulator_internal_errors": internal_errors,
        "rss_kib_every_1000_streams": trace,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=10_000)
    parser.add_argument("--serve-emulator", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_emulator:
        asyncio.run(serve_emulator())
        return 0
    report = asyncio.run(soak(args.streams))
    print(json.dumps(report, indent=2))
    start, end = report["start"], report["end"]
    assert isinstance(start, dict)
    assert isinstance(end, dict)
    verdict = "flat" if report["ok"] else "GREW or FAILED"
    print(
        f"soak: {report['streams']} streams in {report['seconds']} s; "
        f"start fds={start['fds']} threads={start['threads']} "
        f"rss={start['rss_kib']} KiB; "
        f"end fds={end['fds']} threads={end['threads']} rss={end['rss_kib']} KiB "
        f"idle={end['idle_connections']} -> {verdict}",
        file=sys.stderr,
    )
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
