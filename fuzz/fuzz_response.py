"""Coverage-guided fuzzing (atheris) of the response path: codec + parser.

Feeds arbitrary bytes, split at arbitrary points, through ``ResponseParser``
(the event-stream decoder and the generated deserializers) as the client does.
Allowed outcomes: events, or the package's own clear errors
(``EventStreamError`` inside ``UnexpectedResponseError``, ``ServiceException``
for exception messages, ``StreamInterruptedError`` at the end). Anything else
is a crash. Memory stays bounded: a prelude announcing more than the decoder's
maximum is refused at once.

    make fuzz            # 1,000,000 inputs (FUZZ_RUNS=... to change)
    python fuzz/fuzz_response.py -runs=10000
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from amazon_polly_streaming.errors import TransportError
    from amazon_polly_streaming.eventstream import MessageDecoder, encode_message
    from amazon_polly_streaming.protocol import ResponseParser
    from amazon_polly_streaming_generated.errors import ServiceException

MAX_MESSAGE = 64 * 1024


KINDS = ("event", "exception", "error", "bogus")
TYPES = (
    "AudioEvent",
    "StreamClosedEvent",
    "ValidationException",
    "ThrottlingException",
    "ServiceQuotaExceededException",
    "ServiceFailureException",
    "SomethingNew",
)


def framed(fdp: atheris.FuzzedDataProvider) -> bytes:
    """Well-framed messages (valid CRCs) with fuzzed headers and payloads, so
    that the header decoder and the generated deserializers are reached."""
    out = bytearray()
    for _ in range(fdp.ConsumeIntInRange(1, 4)):
        kind = KINDS[fdp.ConsumeIntInRange(0, len(KINDS) - 1)]
        name = TYPES[fdp.ConsumeIntInRange(0, len(TYPES) - 1)]
        key = ":event-type" if kind == "event" else ":exception-type"
        headers: dict[str, str | bytes | bool | int] = {
            ":message-type": kind,
            key: name,
        }
        if fdp.ConsumeBool():
            headers[":error-code"] = fdp.ConsumeUnicodeNoSurrogates(12)
        payload = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 64))
        out += encode_message(headers, payload)
    return bytes(out)


def one_input(data: bytes) -> None:
    if not data:
        return
    fdp = atheris.FuzzedDataProvider(data)
    body = framed(fdp) if fdp.ConsumeBool() else fdp.ConsumeBytes(len(data))
    cut = fdp.ConsumeIntInRange(0, len(body)) if body else 0
    parser = ResponseParser(request_id="fuzz")
    parser._decoder = MessageDecoder(max_message_size=MAX_MESSAGE)
    try:
        parser.feed(body[:cut])
        parser.feed(body[cut:])
        parser.raise_pending()
        parser.end()
    except (TransportError, ServiceException):
        pass


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
