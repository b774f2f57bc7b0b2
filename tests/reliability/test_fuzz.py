"""Response handling under arbitrary input (hypothesis; `make fuzz` runs atheris).

Whatever arrives, the parser yields events or raises the package's own clear
errors, never anything else, and never holds more than one bounded message.
"""

from __future__ import annotations

import struct
import zlib

from hypothesis import given, settings
from hypothesis import strategies as st

from amazon_polly_streaming.errors import TransportError
from amazon_polly_streaming.eventstream import (
    MessageDecoder,
    MessageTooLargeError,
    encode_message,
)
from amazon_polly_streaming.protocol import ResponseParser
from amazon_polly_streaming_generated.errors import ServiceException

names = st.sampled_from(
    [
        "AudioEvent",
        "StreamClosedEvent",
        "ValidationException",
        "ThrottlingException",
        "ServiceQuotaExceededException",
        "ServiceFailureException",
        "SomethingNew",
    ]
)
messages = st.builds(
    lambda kind, name, payload: encode_message(
        {
            ":message-type": kind,
            (":event-type" if kind == "event" else ":exception-type"): name,
        },
        payload,
    ),
    st.sampled_from(["event", "exception", "error", "bogus"]),
    names,
    st.binary(max_size=64)
    | st.sampled_from([b"{}", b'{"RequestCharacters":3}', b"[]", b"null"]),
)
streams = st.lists(messages, max_size=4).map(b"".join) | st.binary(max_size=512)


@settings(max_examples=400, deadline=None)
@given(streams, st.data())
def test_any_response_bytes_give_events_or_our_errors(
    body: bytes, data: st.DataObject
) -> None:
    cut = data.draw(st.integers(0, len(body)))
    parser = ResponseParser(request_id="r")
    message = "ok"
    try:
        parser.feed(body[:cut])
        parser.feed(body[cut:])
        parser.raise_pending()
        parser.end()
    except (TransportError, ServiceException) as exc:
        message = str(exc)
    assert message  # events, or a clear message


@given(st.integers(65, 2**31))
def test_an_oversized_prelude_is_refused_before_buffering(size: int) -> None:
    prelude = struct.pack(">II", size, 0)
    prelude += struct.pack(">I", zlib.crc32(prelude))
    decoder = MessageDecoder(max_message_size=64)
    try:
        decoder.feed(prelude)
    except MessageTooLargeError:
        assert decoder.pending <= len(prelude)
    else:
        raise AssertionError("an oversized message was accepted")
