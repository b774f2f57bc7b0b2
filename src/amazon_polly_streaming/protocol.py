"""The streaming protocol, sans-I/O: what goes on the wire and what came back.

Pure functions and one small state machine, on top of the generated serde and
the event-stream codec; no sockets, no clock, no awscrt. The session drives
them and the transport moves the bytes.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import cast

from amazon_polly_streaming_generated import serde
from amazon_polly_streaming_generated.errors import ERRORS_BY_CODE, ServiceException
from amazon_polly_streaming_generated.operation import START_SPEECH_SYNTHESIS_STREAM
from amazon_polly_streaming_generated.shapes import (
    AudioEvent,
    CloseStreamEvent,
    FlushStreamConfiguration,
    StartSpeechSynthesisStreamInput,
    StreamClosedEvent,
    TextEvent,
    UnknownEvent,
)

from .errors import StreamInterruptedError, UnexpectedResponseError
from .eventstream import (
    EventStreamError,
    HeaderValue,
    MessageDecoder,
    encode_headers,
    encode_message,
    frame_message,
)

OPERATION = START_SPEECH_SYNTHESIS_STREAM
_FLUSH = FlushStreamConfiguration(force=True)

type OutputEvent = AudioEvent | StreamClosedEvent | UnknownEvent
"""What a response stream yields (service errors are raised instead)."""


def request_headers(request: StartSpeechSynthesisStreamInput) -> list[tuple[str, str]]:
    """The headers to sign and send, before signing (``host`` is signed apart)."""
    return [
        ("content-type", OPERATION.content_type),
        *serde.serialize_start_speech_synthesis_stream_input_headers(request),
    ]


def text_event(text: str, *, ssml: bool = False, flush: bool = False) -> bytes:
    """An encoded ``TextEvent`` message (to be wrapped in a signed envelope)."""
    event = TextEvent(
        text=text,
        text_type=None if not ssml else "ssml",  # type: ignore[arg-type]
        flush_stream_configuration=_FLUSH if flush else None,
    )
    headers, payload = serde.serialize_text_event(event)
    return frame_message(_encoded_headers(headers), payload)


@functools.cache
def close_event() -> bytes:
    """The encoded ``CloseStreamEvent`` message (always the same bytes)."""
    headers, payload = serde.serialize_close_stream_event(CloseStreamEvent())
    return encode_message(headers, payload)


_HEADERS: dict[tuple[tuple[str, HeaderValue], ...], bytes] = {}


def _encoded_headers(headers: Mapping[str, HeaderValue]) -> bytes:
    """An event's headers section, encoded once per distinct set (a handful)."""
    key = tuple(headers.items())
    encoded = _HEADERS.get(key)
    if encoded is None:
        encoded = _HEADERS[key] = encode_headers(headers)
    return encoded


def request_id_of(headers: Sequence[tuple[str, str]]) -> str | None:
    """The service's request id from response headers."""
    for name, value in headers:
        if name.lower() in {"x-amzn-requestid", "x-amz-request-id"}:
            return value
    return None


def error_response(
    status: int, headers: Sequence[tuple[str, str]], body: bytes
) -> Exception:
    """The exception for a non-2xx response.

    A modeled error type (``x-amzn-errortype`` header, else the body's
    ``__type``/``code``) maps to its generated class; any other becomes an
    ``UnexpectedResponseError`` carrying the status, type and request id.
    """
    request_id = request_id_of(headers)
    error_type = next((v for k, v in headers if k.lower() == "x-amzn-errortype"), None)
    if error_type is None:
        try:
            data: object = json.loads(body) if body else {}
        except ValueError:
            data = {}
        if isinstance(data, dict):
            fields = cast(dict[str, object], data)
            raw = fields.get("__type") or fields.get("code")
            error_type = raw if isinstance(raw, str) else None
    name = (
        None if error_type is None else error_type.split(":", 1)[0].rsplit("#", 1)[-1]
    )
    if name is not None and name in ERRORS_BY_CODE:
        return serde.deserialize_error(name, body, request_id=request_id)
    text = body.decode("utf-8", "replace")[:200]
    try:
        message = json.loads(body).get("message", text) if body else ""
    except (ValueError, AttributeError):
        message = text
    described = (
        f"HTTP {status}"
        + (f" {name}" if name else "")
        + (f": {message}" if message else "")
    )
    return UnexpectedResponseError(
        described, status=status, error_type=name, request_id=request_id
    )


@dataclass(slots=True)
class ResponseParser:
    """Decodes the response event stream into typed events, strictly.

    ``feed`` returns the events the bytes completed and raises the service's
    exception where an exception event arrived (the events before it are
    returned first, by the previous call). ``end`` checks the stream ended
    properly: with ``StreamClosedEvent`` and no partial message.
    """

    request_id: str | None = None
    closed: StreamClosedEvent | None = None
    audio_events: int = 0
    audio_bytes: int = 0
    _decoder: MessageDecoder | None = None
    _pending_error: Exception | None = None

    def feed(self, data: bytes) -> list[OutputEvent]:
        if self._pending_error is not None:
            error, self._pending_error = self._pending_error, None
            raise error
        if self._decoder is None:
            self._decoder = MessageDecoder()
        try:
            messages = self._decoder.feed(data)
        except EventStreamError as exc:
            raise self._broken(f"malformed response event stream: {exc}") from None
        events: list[OutputEvent] = []
        for message in messages:
            try:
                event = self._event(message.headers, message.payload)
            except (ServiceException, UnexpectedResponseError) as error:
                if not events:
                    raise
                # Events that came before the error are delivered first; the
                # error is raised by the next call, where it arrived.
                self._pending_error = error
                break
            events.append(event)
        return events

    def _event(self, headers: Mapping[str, HeaderValue], payload: bytes) -> OutputEvent:
        """One message as an event; an exception message is raised as its error."""
        kind = headers.get(":message-type")
        if kind == "event":
            event_type = headers.get(":event-type")
            if event_type == "AudioEvent":
                # The hot path: no serde call, the payload is the audio.
                self.audio_events += 1
                self.audio_bytes += len(payload)
                return AudioEvent(audio_chunk=payload)
            if not isinstance(event_type, str):
                raise self._broken("an event without :event-type")
            try:
                event = serde.deserialize_start_speech_synthesis_stream_event_stream(
                    event_type, payload
                )
            except serde.DeserializationError as exc:
                raise self._broken(str(exc)) from None
            if isinstance(event, StreamClosedEvent):
                self.closed = event
            return event
        if kind == "exception":
            code = headers.get(":exception-type")
            raise serde.deserialize_error(
                code if isinstance(code, str) else "UnknownException",
                payload,
                request_id=self.request_id,
            )
        if kind == "error":
            code = headers.get(":error-code")
            text = headers.get(":error-message")
            raise ServiceException(
                text if isinstance(text, str) else "",
                code=code if isinstance(code, str) else "InternalError",
                request_id=self.request_id,
            )
        raise self._broken(f"unknown message type {kind!r}")

    def raise_pending(self) -> None:
        """Raise an exception event that followed the events already returned."""
        if self._pending_error is not None:
            error, self._pending_error = self._pending_error, None
            raise error

    def end(self) -> None:
        """The response body ended: fine only after ``StreamClosedEvent``.

        :raises StreamInterruptedError: otherwise (audio may be missing).
        :raises ServiceException: an exception event not raised yet.
        """
        if self._pending_error is not None:
            error, self._pending_error = self._pending_error, None
            raise error
        if self._decoder is not None:
            try:
                self._decoder.close()
            except EventStreamError as exc:
                raise StreamInterruptedError(
                    f"the response ended in the middle of an event ({exc})",
                    request_id=self.request_id,
                ) from None
        if self.closed is None:
            raise StreamInterruptedError(
                "the response ended without StreamClosedEvent after "
                f"{self.audio_events} audio events ({self.audio_bytes} bytes): "
                "audio may be missing",
                request_id=self.request_id,
            )

    def _broken(self, what: str) -> UnexpectedResponseError:
        return UnexpectedResponseError(what, request_id=self.request_id)


__all__ = [
    "OPERATION",
    "OutputEvent",
    "ResponseParser",
    "close_event",
    "error_response",
    "request_headers",
    "request_id_of",
    "text_event",
]
