"""The sans-I/O protocol: response parsing and error mapping."""

from __future__ import annotations

import pytest

from amazon_polly_streaming import protocol
from amazon_polly_streaming.errors import (
    StreamInterruptedError,
    UnexpectedResponseError,
)
from amazon_polly_streaming.eventstream import encode_message
from amazon_polly_streaming_generated import serde
from amazon_polly_streaming_generated.errors import (
    ServiceException,
    ThrottlingException,
)
from amazon_polly_streaming_generated.shapes import AudioEvent, StreamClosedEvent

AUDIO = encode_message(
    *serde.serialize_audio_event(AudioEvent(audio_chunk=b"\x01\x02"))
)
CLOSED = encode_message(
    *serde.serialize_stream_closed_event(StreamClosedEvent(request_characters=5))
)
THROTTLED = encode_message(
    *serde.serialize_throttling_exception(ThrottlingException("slow down"))
)


def test_audio_then_close() -> None:
    parser = protocol.ResponseParser(request_id="r")
    events = parser.feed(AUDIO + AUDIO[:5])
    events += parser.feed(AUDIO[5:] + CLOSED)
    assert events == [
        AudioEvent(audio_chunk=b"\x01\x02"),
        AudioEvent(audio_chunk=b"\x01\x02"),
        StreamClosedEvent(request_characters=5),
    ]
    assert (parser.audio_events, parser.audio_bytes) == (2, 4)
    parser.end()


def test_audio_before_an_exception_in_one_read_is_delivered_first() -> None:
    parser = protocol.ResponseParser(request_id="req-1")
    assert parser.feed(AUDIO + THROTTLED) == [AudioEvent(audio_chunk=b"\x01\x02")]
    with pytest.raises(ThrottlingException) as raised:
        parser.raise_pending()
    assert raised.value.request_id == "req-1"
    parser.raise_pending()  # raised once only


def test_an_end_without_stream_closed_event_raises() -> None:
    parser = protocol.ResponseParser(request_id="r")
    parser.feed(AUDIO)
    with pytest.raises(
        StreamInterruptedError, match="without StreamClosedEvent after 1 audio"
    ):
        parser.end()
    cut = protocol.ResponseParser()
    cut.feed(AUDIO[:-3])
    with pytest.raises(StreamInterruptedError, match="middle of an event"):
        cut.end()


def test_generic_error_messages_and_garbage() -> None:
    error = encode_message(
        {
            ":message-type": "error",
            ":error-code": "InternalFailure",
            ":error-message": "x",
        }
    )
    with pytest.raises(ServiceException) as raised:
        protocol.ResponseParser().feed(error)
    assert raised.value.code == "InternalFailure"
    with pytest.raises(UnexpectedResponseError, match="malformed"):
        protocol.ResponseParser().feed(b"\x00" * 20)


@pytest.mark.parametrize(
    ("status", "headers", "body", "expected"),
    [
        (
            400,
            [("x-amzn-errortype", "ThrottlingException:http://x/")],
            b'{"message":"m"}',
            ThrottlingException,
        ),
        (
            400,
            [],
            b'{"__type":"com.amazonaws.polly#ThrottlingException","message":"m"}',
            ThrottlingException,
        ),
        (503, [("x-amzn-errortype", "Busy")], b"{}", UnexpectedResponseError),
        (502, [], b"<html>bad gateway</html>", UnexpectedResponseError),
    ],
)
def test_error_responses(
    status: int, headers: list[tuple[str, str]], body: bytes, expected: type[Exception]
) -> None:
    error = protocol.error_response(
        status, [*headers, ("x-amzn-RequestId", "rid")], body
    )
    assert type(error) is expected
    if isinstance(error, UnexpectedResponseError):
        assert error.status == status
        assert error.retryable
        assert error.request_id == "rid"
