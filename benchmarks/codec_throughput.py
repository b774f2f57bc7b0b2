"""Throughput of the event-stream codec, compared with ``smithy-aws-event-stream``.

Run ``.venv/bin/python benchmarks/codec_throughput.py`` (about half a minute) or
add ``--quick`` for a run of a few seconds. Prints a markdown table.

Every message carries the three string headers of a Polly audio event and a random
payload of 1 KiB or 64 KiB. Each figure is the best of 3 timed runs. MB/s counts
payload bytes only (1 MB = 10**6 bytes).

Operations:

* ``encode``: headers mapping + payload -> wire bytes, one message at a time. For
  smithy, ``EventMessage.encode()`` on a prebuilt message.
* ``decode whole``: one buffer holding every message. Ours: a single
  ``MessageDecoder.feed``; smithy: ``Event.decode`` over a ``BytesIO``, keeping
  every event as ``feed`` does (it returns them all in one list). Keeping ~32 MB
  of fresh payloads makes this case allocation-bound (page faults) at 64 KiB.
* ``decode 16K``: the same bytes arriving in 16 KiB pieces. Ours: one ``feed`` per
  piece; smithy: ``Event.decode_async`` over an ``AsyncBytesReader`` wrapping an
  async iterator of the pieces (how its event receiver reads an HTTP body).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from io import BytesIO

from smithy_aws_event_stream.events import Event, EventMessage
from smithy_core.aio.types import AsyncBytesReader

from amazon_polly_streaming.eventstream import (
    HeaderValue,
    MessageDecoder,
    encode_message,
)

HEADERS: dict[str, HeaderValue] = {
    ":message-type": "event",
    ":event-type": "AudioEvent",
    ":content-type": "application/octet-stream",
}
PIECE = 16 * 1024


@dataclass(frozen=True)
class Row:
    codec: str
    operation: str
    payload_size: int
    messages: int
    seconds: float

    def cells(self) -> list[str]:
        rate = self.messages / self.seconds
        mb_per_s = rate * self.payload_size / 1e6
        return [
            self.codec,
            self.operation,
            f"{self.payload_size // 1024} KiB",
            f"{rate:,.0f}",
            f"{mb_per_s:,.0f}",
        ]


def check(condition: bool, what: str) -> None:
    """Fail loudly (also under ``python -O``) if a benchmark computed garbage."""
    if not condition:
        raise RuntimeError(f"benchmark self-check failed: {what}")


def best_of(runs: int, func: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - start)
    return best


def pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


async def _iterate(chunks: list[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


def smithy_decode_async(chunks: list[bytes], expected: int) -> None:
    async def run() -> None:
        reader = AsyncBytesReader(_iterate(chunks))
        count = 0
        while await Event.decode_async(reader) is not None:
            count += 1
        check(count == expected, f"decoded {count} of {expected} messages")

    asyncio.run(run())


def smithy_decode_sync(stream: bytes, expected: int) -> None:
    source = BytesIO(stream)
    events: list[Event] = []  # kept, like the list our single feed() returns
    while (event := Event.decode(source)) is not None:
        events.append(event)
    check(len(events) == expected, f"decoded {len(events)} of {expected} messages")


def ours_decode_pieces(chunks: list[bytes], expected: int) -> None:
    decoder = MessageDecoder()
    count = 0
    for chunk in chunks:
        count += len(decoder.feed(chunk))
    decoder.close()
    check(count == expected, f"decoded {count} of {expected} messages")


def ours_decode_whole(stream: bytes, expected: int) -> None:
    decoder = MessageDecoder()
    count = len(decoder.feed(stream))
    decoder.close()
    check(count == expected, f"decoded {count} of {expected} messages")


def ours_encode(payload: bytes, count: int) -> None:
    for _ in range(count):
        encode_message(HEADERS, payload)


def smithy_encode(payload: bytes, count: int) -> None:
    message = EventMessage(headers=dict(HEADERS), payload=payload)
    for _ in range(count):
        message.encode()


def measure(payload_size: int, total_bytes: int, runs: int) -> list[Row]:
    payload = os.urandom(payload_size)
    count = max(total_bytes // payload_size, 10)
    frame = encode_message(HEADERS, payload)
    # The two codecs must agree byte for byte before their speed means anything.
    smithy_frame = EventMessage(headers=dict(HEADERS), payload=payload).encode()
    check(frame == smithy_frame, "encoders disagree")
    stream = frame * count
    chunks = pieces(stream, PIECE)
    decoded = MessageDecoder().feed(frame)[0]
    check(decoded.payload == payload, "payload round trip")
    check(dict(decoded.headers) == HEADERS, "headers round trip")

    cases: list[tuple[str, str, Callable[[], object]]] = [
        ("ours", "encode", lambda: ours_encode(payload, count)),
        ("smithy", "encode", lambda: smithy_encode(payload, count)),
        ("ours", "decode whole", lambda: ours_decode_whole(stream, count)),
        ("smithy", "decode whole", lambda: smithy_decode_sync(stream, count)),
        ("ours", "decode 16K", lambda: ours_decode_pieces(chunks, count)),
        ("smithy", "decode 16K", lambda: smithy_decode_async(chunks, count)),
    ]
    return [
        Row(codec, operation, payload_size, count, best_of(runs, func))
        for codec, operation, func in cases
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Event-stream codec throughput vs smithy-aws-event-stream."
    )
    parser.add_argument(
        "--quick", action="store_true", help="fewer, smaller runs (a few seconds)"
    )
    args = parser.parse_args()
    total_bytes = 4_000_000 if args.quick else 32_000_000
    runs = 3

    rows: list[Row] = []
    for size in (1024, 64 * 1024):
        rows += measure(size, total_bytes, runs)

    header = ["codec", "operation", "payload", "msg/s", "payload MB/s"]
    print(
        f"Python {sys.version.split()[0]}, best of {runs}, ~{total_bytes // 10**6} MB"
    )
    print()
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join(["---"] * 2 + ["---:"] * 3) + "|")
    for row in rows:
        print("| " + " | ".join(row.cells()) + " |")


if __name__ == "__main__":
    main()
