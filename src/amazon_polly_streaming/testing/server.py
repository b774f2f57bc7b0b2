"""The emulator's HTTP/2-over-TLS edge: sockets and frames, around the service.

One asyncio task per TLS connection reads frames into an ``h2`` state machine
and dispatches its events; one task per request (HTTP/2 stream) runs the
request: faults, signature check, validation, then the event stream, in which
it decodes every message strictly (``amazon_polly_streaming.eventstream``),
checks every chained event signature (``sigv4.py``, which shares no code with
the client's signer), and feeds the service (``service.py``). Every task has
an owner: requests belong to their connection's task group, connections to
the server, which cancels and awaits them all on close.

Interop facts honoured here (SPEC §3.6): the content type arrives with a dot
(AWS's clients) or, from the community capo-polly client, with a hyphen
(``application/vnd.amazon-eventstream``): both are accepted. A client's
*graceful* GOAWAY (NO_ERROR) only means "no new streams": streams in flight
carry on (``h2`` would otherwise close the connection on any GOAWAY).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    Event,
    RemoteSettingsChanged,
    RequestReceived,
    StreamEnded,
    StreamReset,
    WindowUpdated,
)
from h2.exceptions import ProtocolError, StreamClosedError
from h2.settings import SettingCodes, Settings

from amazon_polly_streaming.eventstream import (
    EventStreamError,
    Message,
    MessageDecoder,
    encode_message,
)
from amazon_polly_streaming_generated import serde
from amazon_polly_streaming_generated.enums import QuotaCode, ServiceCode
from amazon_polly_streaming_generated.errors import (
    ServiceException,
    ServiceFailureException,
    ServiceQuotaExceededException,
    ThrottlingException,
    ValidationException,
)
from amazon_polly_streaming_generated.operation import START_SPEECH_SYNTHESIS_STREAM
from amazon_polly_streaming_generated.shapes import (
    AudioEvent,
    CloseStreamEvent,
    StreamClosedEvent,
    TextEvent,
    ThrottlingReason,
)

from .faults import Fault, FaultKind, FaultPlan, RequestInfo
from .log import ConnectionRecord, InboundEvent, RequestLog, RequestRecord
from .service import (
    SynthesisSession,
    invalid_event,
    validate_request,
)
from .sigv4 import (
    Credentials,
    EventSignatureError,
    EventSignatureVerifier,
    verify_request,
)

logger = logging.getLogger("amazon_polly_streaming.testing")

CONTENT_TYPES = frozenset(
    {
        START_SPEECH_SYNTHESIS_STREAM.content_type,  # with a dot: AWS's clients
        "application/vnd.amazon-eventstream",  # capo-polly's spelling
    }
)
_OPERATION = START_SPEECH_SYNTHESIS_STREAM
_READ_SIZE = 65536


@dataclass(slots=True)
class ServerConfig:
    """How the emulator behaves (see ``PollyEmulator`` for each knob)."""

    region: str
    credentials: Mapping[str, Credentials]
    voices: Mapping[str, str]
    idle_timeout: float = 5.0
    max_stream_duration: float = 600.0
    ms_per_character: float = 40.0
    audio_event_bytes: int = 4096
    synthesis_delay: float = 0.0
    max_concurrent_streams: int = 100
    clock_skew: float = 300.0
    connection_idle_timeout: float | None = None


class _HttpError(Exception):
    """Answer the request with a non-2xx response instead of the stream."""

    def __init__(self, status: int, error: ServiceException | tuple[str, str]) -> None:
        super().__init__(status)
        self.status = status
        self.error = error


class _StreamAborted(Exception):
    """The stream ended abnormally (reset, dropped, GOAWAY); nothing more to send."""


class _GracefulGoawayConnection(H2Connection):
    """``h2`` connection that survives a peer's graceful GOAWAY.

    RFC 9113 §6.8: a GOAWAY says the sender will start no new streams; streams
    it already opened complete normally. ``h2`` closes its state machine on any
    GOAWAY, which would end every stream in flight (AWS's JS client sends one
    right after the response headers while it is still sending text). Only an
    error GOAWAY is passed on to ``h2``'s default handling.
    """

    def _receive_goaway_frame(self, frame: Any) -> tuple[list[Any], list[Event]]:
        if frame.error_code != ErrorCodes.NO_ERROR:
            return super()._receive_goaway_frame(frame)
        event = ConnectionTerminated()
        event.error_code = ErrorCodes.NO_ERROR
        event.last_stream_id = frame.last_stream_id
        event.additional_data = frame.additional_data or None
        return [], [event]


@dataclass(slots=True)
class _Stream:
    """A request's inbound side, fed by the connection's reader."""

    stream_id: int
    headers: list[tuple[str, str]]
    body: asyncio.Queue[bytes | None] = field(
        default_factory=asyncio.Queue[bytes | None]
    )
    window: asyncio.Event = field(default_factory=asyncio.Event)
    reset: bool = False
    ended_by_client: bool = False
    task: asyncio.Task[None] | None = None


class EmulatorServer:
    """Accepts TLS connections and serves ``StartSpeechSynthesisStream`` on them."""

    def __init__(
        self,
        config: ServerConfig,
        ssl_context: ssl.SSLContext,
        log: RequestLog,
        faults: FaultPlan,
    ) -> None:
        self.config = config
        self.log = log
        self.faults = faults
        self._ssl = ssl_context
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self, host: str, port: int) -> int:
        """Listen; returns the port (a free one when ``port`` is 0)."""
        self._server = await asyncio.start_server(
            self._accept, host, port, ssl=self._ssl, ssl_handshake_timeout=10
        )
        sockname = self._server.sockets[0].getsockname()
        return int(sockname[1])

    async def close(self) -> None:
        """Stop listening, abort every connection and wait for their tasks."""
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        tasks = list(self._connections)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            # Every transport was aborted; a peer that never reads cannot hold us.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 5)
            self._server = None

    async def _accept(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None  # noqa: S101 - always inside a task
        self._connections.add(task)
        self._writers.add(writer)
        try:
            await _Connection(self, reader, writer).serve()
        finally:
            self._writers.discard(writer)
            self._connections.discard(task)


class _Connection:
    """One TLS connection: the frame reader and the requests it carries."""

    def __init__(
        self,
        server: EmulatorServer,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.server = server
        self.config = server.config
        self.reader = reader
        self.writer = writer
        peer = writer.get_extra_info("peername")
        self.record: ConnectionRecord = server.log.new_connection(str(peer))
        ssl_object = writer.get_extra_info("ssl_object")
        if ssl_object is not None:
            self.record.alpn = ssl_object.selected_alpn_protocol()
            self.record.tls_version = ssl_object.version()
        self.h2 = _GracefulGoawayConnection(
            H2Configuration(client_side=False, header_encoding="utf-8")
        )
        limit = server.config.max_concurrent_streams
        self.h2.local_settings = Settings(
            client=False,
            initial_values={SettingCodes.MAX_CONCURRENT_STREAMS: limit},
        )
        self.streams: dict[int, _Stream] = {}
        self.connection_window = asyncio.Event()
        self.tasks: asyncio.TaskGroup | None = None
        self.lost = False
        self.idle_since = asyncio.get_running_loop().time()
        """When the last stream ended (for ``connection_idle_timeout``)."""

    def flush(self) -> None:
        """Write whatever the state machine has queued."""
        data = self.h2.data_to_send()
        if data and not self.writer.is_closing():
            self.writer.write(data)

    async def drain(self) -> None:
        self.flush()
        if self.writer.is_closing():
            raise _StreamAborted("connection closed")
        try:
            await self.writer.drain()
        except ConnectionError as exc:
            raise _StreamAborted(str(exc)) from None

    async def serve(self) -> None:
        self.h2.initiate_connection()
        self.flush()
        try:
            async with asyncio.TaskGroup() as tasks:
                self.tasks = tasks
                await self._read_loop()
                # The peer closed: streams still running see their bodies end.
                for stream in self.streams.values():
                    stream.body.put_nowait(None)
        except* (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
            self.lost = True
        finally:
            self.record.closed = True
            if self.lost:
                self.writer.transport.abort()
            else:
                self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()

    async def _read_loop(self) -> None:
        idle_limit = self.config.connection_idle_timeout
        loop = asyncio.get_running_loop()
        while True:
            try:
                if idle_limit is None:
                    data = await self.reader.read(_READ_SIZE)
                else:
                    left = self.idle_since + idle_limit - loop.time()
                    async with asyncio.timeout(
                        max(left, 0.01) if not self.streams else idle_limit
                    ):
                        data = await self.reader.read(_READ_SIZE)
            except (ConnectionError, ssl.SSLError):
                self.lost = True
                data = b""
            except TimeoutError:
                if self.streams or loop.time() - self.idle_since < (idle_limit or 0):
                    continue
                # No stream for connection_idle_timeout: close it, as servers do.
                self.record.closed_idle = self.record.goaway_sent = True
                self.h2.close_connection()
                self.flush()
                return
            if not data:
                self.lost = True
                self._connection_lost()
                return
            try:
                events = self.h2.receive_data(data)
            except ProtocolError as exc:
                self.record.protocol_errors.append(f"{type(exc).__name__}: {exc}")
                logger.warning("connection %d: protocol error: %s", self.record.id, exc)
                self.flush()
                self._connection_lost()
                return
            for event in events:
                self._dispatch(event)
            self.flush()

    def _connection_lost(self) -> None:
        for stream in self.streams.values():
            stream.reset = True
            stream.body.put_nowait(None)
            stream.window.set()
        self.connection_window.set()

    def _dispatch(self, event: Event) -> None:
        match event:
            case RequestReceived(stream_id=stream_id, headers=headers):
                self._on_request(stream_id or 0, headers or [])
            case DataReceived(stream_id=stream_id, data=data, flow_controlled_length=n):
                if n:
                    with contextlib.suppress(StreamClosedError, ProtocolError):
                        self.h2.acknowledge_received_data(n, stream_id or 0)
                stream = self.streams.get(stream_id or 0)
                if stream is not None and data:
                    stream.body.put_nowait(bytes(data))
            case StreamEnded(stream_id=stream_id):
                if (stream := self.streams.get(stream_id or 0)) is not None:
                    stream.ended_by_client = True
                    stream.body.put_nowait(None)
            case StreamReset(stream_id=stream_id):
                if (stream := self.streams.get(stream_id or 0)) is not None:
                    stream.reset = True
                    stream.body.put_nowait(None)
                    stream.window.set()
            case WindowUpdated(stream_id=stream_id):
                self._window_opened(stream_id)
            case RemoteSettingsChanged():
                self._window_opened(None)
            case ConnectionTerminated(error_code=code):
                self.record.goaway_received = True
                if code != ErrorCodes.NO_ERROR:
                    self._connection_lost()
            case _:
                pass

    def _on_request(self, stream_id: int, headers: Sequence[tuple[Any, Any]]) -> None:
        stream = _Stream(stream_id, [(str(k), str(v)) for k, v in headers])
        self.streams[stream_id] = stream
        self.record.streams += 1
        self.record.max_concurrent_streams_seen = max(
            self.record.max_concurrent_streams_seen, self.h2.open_inbound_streams
        )
        assert self.tasks is not None  # noqa: S101 - set before reading
        stream.task = self.tasks.create_task(
            _Request(self, stream).run(), name=f"emulator-stream-{stream_id}"
        )

    def _window_opened(self, stream_id: int | None) -> None:
        """A window grew: wake the senders it concerns (all, for the connection)."""
        if stream_id:
            if (stream := self.streams.get(stream_id)) is not None:
                stream.window.set()
            return
        self.connection_window.set()
        for stream in self.streams.values():
            stream.window.set()

    async def send_data(
        self, stream: _Stream, data: bytes, *, end: bool = False
    ) -> None:
        """Send ``data`` on the stream, honouring both flow-control windows."""
        view = memoryview(data)
        while True:
            if stream.reset or self.lost:
                raise _StreamAborted("stream reset")
            size = min(
                len(view),
                self.h2.local_flow_control_window(stream.stream_id),
                self.h2.max_outbound_frame_size,
            )
            if size <= 0 and view:
                stream.window.clear()
                self.connection_window.clear()
                await stream.window.wait()
                continue
            last = size == len(view)
            self.h2.send_data(
                stream.stream_id, bytes(view[:size]), end_stream=end and last
            )
            view = view[size:]
            await self.drain()
            if last:
                return

    def finished(self, stream: _Stream) -> None:
        self.streams.pop(stream.stream_id, None)
        if not self.streams:
            self.idle_since = asyncio.get_running_loop().time()


def _now() -> datetime:
    return datetime.now(UTC)


class _Request:
    """One request: from its headers to the end of its stream."""

    def __init__(self, connection: _Connection, stream: _Stream) -> None:
        self.connection = connection
        self.config = connection.config
        self.stream = stream
        self.started = time.monotonic()
        headers = stream.headers
        self.record = connection.server.log.add_request(
            RequestRecord(
                index=-1,
                request_id=str(uuid.uuid4()),
                connection_id=connection.record.id,
                stream_id=stream.stream_id,
                method=_pseudo(headers, ":method"),
                path=_pseudo(headers, ":path"),
                headers=_redacted(headers),
            )
        )
        self.faults: list[Fault] = []
        self.audio_events = 0

    # Entry point -----------------------------------------------------------

    async def run(self) -> None:
        record = self.record
        try:
            await self._serve()
        except _StreamAborted:
            if record.outcome == "open":
                record.outcome = (
                    "reset_by_client" if self.stream.reset else "connection_lost"
                )
        except _HttpError as error:
            await self._send_http_error(error)
        except Exception as exc:  # a bug in the emulator: keep serving the others
            logger.exception("emulator error in request %s", record.request_id)
            record.outcome = "emulator_error"
            record.error_message = f"{type(exc).__name__}: {exc}"
            self.connection.server.log.internal_errors.append(record.error_message)
            self._reset(ErrorCodes.INTERNAL_ERROR)
        finally:
            self.connection.finished(self.stream)

    async def _serve(self) -> None:
        record = self.record
        self.faults = self.connection.server.faults.take(self._info())
        record.faults = tuple(str(f.kind) for f in self.faults)
        for fault in self._faults(FaultKind.DELAY_HEADERS):
            await asyncio.sleep(fault.delay)
        self._check_http_faults()
        verifier = self._check_request()
        session = self._open_session()
        await self._send_headers()
        await self._event_loop(session, verifier)

    # Before the stream -----------------------------------------------------

    def _info(self) -> RequestInfo:
        headers = self.stream.headers
        return RequestInfo(
            index=self.record.index,
            voice_id=_header(headers, "x-amzn-voiceid"),
            output_format=_header(headers, "x-amzn-outputformat"),
            headers=tuple(headers),
        )

    def _faults(self, kind: FaultKind) -> list[Fault]:
        return [f for f in self.faults if f.kind == kind]

    def _check_http_faults(self) -> None:
        for fault in self.faults:
            match fault.kind:
                case FaultKind.THROTTLE_HTTP:
                    raise _HttpError(400, _throttling(fault.message))
                case FaultKind.SERVICE_FAILURE_HTTP:
                    raise _HttpError(500, ServiceFailureException(fault.message))
                case FaultKind.VALIDATION_HTTP:
                    raise _HttpError(400, invalid_event(fault.message))
                case FaultKind.HTTP_ERROR:
                    raise _HttpError(fault.status, (fault.error_type, fault.message))
                case _:
                    pass

    def _check_request(self) -> EventSignatureVerifier:
        headers = self.stream.headers
        record = self.record
        if (
            record.method != _OPERATION.method
            or record.path.split("?")[0] != _OPERATION.path
        ):
            raise _HttpError(
                404,
                (
                    "UnknownOperationException",
                    f"no operation at {record.method} {record.path}",
                ),
            )
        path, _, query = record.path.partition("?")
        verification = verify_request(
            method=record.method,
            path=path,
            query=query,
            headers=headers,
            credentials=self.config.credentials,
            region=self.config.region,
            service=_OPERATION.signing_name,
            now=_now(),
        )
        record.signature_ok = verification.ok
        record.signed_headers = verification.signed_headers
        record.access_key_id = verification.access_key_id
        if not verification.ok:
            record.signature_error = verification.message
            status = (
                400
                if verification.error_type == "IncompleteSignatureException"
                else 403
            )
            raise _HttpError(
                status,
                (
                    verification.error_type or "InvalidSignatureException",
                    verification.message,
                ),
            )
        content_type = _header(headers, "content-type")
        if content_type not in CONTENT_TYPES:
            raise _HttpError(
                415,
                (
                    "UnsupportedMediaTypeException",
                    f"content type {content_type!r} is not supported; "
                    f"use {_OPERATION.content_type}",
                ),
            )
        return EventSignatureVerifier(verification)

    def _open_session(self) -> SynthesisSession:
        record = self.record
        try:
            request = serde.deserialize_start_speech_synthesis_stream_input_headers(
                self.stream.headers
            )
        except serde.DeserializationError as exc:
            raise _HttpError(400, invalid_event(str(exc))) from None
        record.voice_id = str(request.voice_id)
        record.output_format = str(request.output_format)
        record.language_code = (
            None if request.language_code is None else str(request.language_code)
        )
        record.lexicon_names = tuple(request.lexicon_names or ())
        try:
            validated = validate_request(request, self.config.voices)
        except ValidationException as exc:
            raise _HttpError(400, exc) from None
        record.sample_rate = validated.sample_rate
        return SynthesisSession(
            validated,
            ms_per_character=self.config.ms_per_character,
            audio_event_bytes=self.config.audio_event_bytes,
        )

    async def _send_headers(self) -> None:
        if self.stream.reset or self.connection.lost:
            raise _StreamAborted("reset before the response")  # a barge-in
        try:
            self.connection.h2.send_headers(
                self.stream.stream_id,
                [
                    (":status", "200"),
                    ("content-type", _OPERATION.content_type),
                    ("x-amzn-requestid", self.record.request_id),
                    ("date", _http_date()),
                ],
            )
        except (StreamClosedError, ProtocolError):
            raise _StreamAborted("stream closed before the response") from None
        self.record.status = 200
        await self.connection.drain()

    async def _send_http_error(self, error: _HttpError) -> None:
        record = self.record
        if isinstance(error.error, ServiceException):
            error_type = error.error.code
            message = error.error.message
            _, body = _serialize_error(error.error)
        else:
            error_type, message = error.error
            body = _json_message(message)
        record.status = error.status
        record.error_type = error_type
        record.error_message = message
        record.outcome = "error"
        h2 = self.connection.h2
        try:
            h2.send_headers(
                self.stream.stream_id,
                [
                    (":status", str(error.status)),
                    ("content-type", "application/json"),
                    ("x-amzn-errortype", error_type),
                    ("x-amzn-requestid", record.request_id),
                    ("date", _http_date()),
                ],
            )
            await self.connection.send_data(self.stream, body, end=True)
            if not self.stream.ended_by_client:
                # The answer is complete; the client may stop sending (RFC 9113 §8.1).
                h2.reset_stream(self.stream.stream_id, ErrorCodes.NO_ERROR)
                await self.connection.drain()
        except (_StreamAborted, StreamClosedError, ProtocolError):
            pass

    # The event stream ----------------------------------------------------

    async def _event_loop(
        self, session: SynthesisSession, verifier: EventSignatureVerifier
    ) -> None:
        outer = MessageDecoder()
        try:
            leftover = await self._receive_events(session, verifier, outer)
        except ValidationException as exc:
            await self._exception_event(exc)  # ends the response; raises
            return
        await self._await_client_end(verifier, outer, leftover)

    async def _receive_events(
        self,
        session: SynthesisSession,
        verifier: EventSignatureVerifier,
        outer: MessageDecoder,
    ) -> list[Message]:
        """Serve input events until the response is complete.

        Returns the messages that arrived after ``CloseStreamEvent`` in the
        same read (normally the signed empty envelope).
        """
        deadline = self.started + self.config.max_stream_duration
        last_event = time.monotonic()
        while True:
            now = time.monotonic()
            timeout = min(deadline, last_event + self.config.idle_timeout) - now
            if timeout <= 0:
                await self._quota_exceeded(duration=now >= deadline)
            try:
                chunk = await asyncio.wait_for(self.stream.body.get(), timeout)
            except TimeoutError:
                continue
            messages = self._messages(outer, chunk)
            for i, message in enumerate(messages):
                last_event = time.monotonic()
                if await self._on_envelope(
                    session, verifier, message.headers, message.payload
                ):
                    return messages[i + 1 :]

    def _messages(self, outer: MessageDecoder, chunk: bytes | None) -> list[Message]:
        """Decode what arrived; the end of the body before the close is an error."""
        if chunk is not None:
            try:
                return outer.feed(chunk)
            except EventStreamError as exc:
                raise invalid_event(f"malformed event stream: {exc}") from None
        if self.stream.reset or self.connection.lost:
            raise _StreamAborted("reset")
        self.record.client_end_stream = True
        try:
            outer.close()
        except EventStreamError as exc:
            raise invalid_event(f"malformed event stream: {exc}") from None
        raise invalid_event("the input stream ended without CloseStreamEvent")

    async def _await_client_end(
        self,
        verifier: EventSignatureVerifier,
        outer: MessageDecoder,
        leftover: list[Message],
    ) -> None:
        """The response is complete: take the client's final envelope and end.

        A client that never ends its side within the idle limit gets its
        stream reset (NO_ERROR), so the stream is closed in both directions.
        """
        pending = leftover
        while True:
            for message in pending:
                with contextlib.suppress(EventSignatureError):
                    verifier.verify(message.headers, message.payload)
            self.record.final_envelope = verifier.ended
            try:
                chunk = await asyncio.wait_for(
                    self.stream.body.get(), self.config.idle_timeout
                )
            except TimeoutError:
                self._reset(ErrorCodes.NO_ERROR)
                return
            if chunk is None:
                self.record.client_end_stream = not self.stream.reset
                return
            try:
                pending = outer.feed(chunk)
            except EventStreamError:
                pending = []

    async def _on_envelope(
        self,
        session: SynthesisSession,
        verifier: EventSignatureVerifier,
        headers: Mapping[str, object],
        payload: bytes,
    ) -> bool:
        """Handle one signed envelope; returns True once the response is complete."""
        try:
            verifier.verify(headers, payload)
        except EventSignatureError as exc:
            self.record.events.append(
                InboundEvent(
                    "(unverified)", signature_ok=False, received_at=self._elapsed()
                )
            )
            raise invalid_event(f"invalid event signature: {exc}") from None
        if not payload:
            self.record.final_envelope = True
            if not session.closed:
                raise invalid_event("the input stream ended without CloseStreamEvent")
            return False
        inner = MessageDecoder()
        try:
            messages = inner.feed(payload)
            inner.close()
        except EventStreamError as exc:
            raise invalid_event(f"malformed inner event: {exc}") from None
        if len(messages) != 1:
            raise invalid_event(
                f"an envelope must carry one event, got {len(messages)}"
            )
        message = messages[0]
        message_type = message.headers.get(":message-type")
        event_type = message.headers.get(":event-type")
        if message_type != "event" or not isinstance(event_type, str):
            raise invalid_event(f"unexpected message type {message_type!r}")
        try:
            event = serde.deserialize_start_speech_synthesis_stream_action_stream(
                event_type, message.payload
            )
        except serde.DeserializationError as exc:
            raise invalid_event(f"malformed {event_type}: {exc}") from None
        match event:
            case TextEvent():
                flush = event.flush_stream_configuration
                self.record.events.append(
                    InboundEvent(
                        "TextEvent",
                        text=event.text,
                        text_type=None
                        if event.text_type is None
                        else str(event.text_type),
                        flush=bool(flush and flush.force),
                        received_at=self._elapsed(),
                    )
                )
                await self._send_audio(session.on_text(event))
                return False
            case CloseStreamEvent():
                self.record.events.append(
                    InboundEvent("CloseStreamEvent", received_at=self._elapsed())
                )
                await self._send_audio(session.on_close())
                await self._finish(session)
                return True
            case _:
                self.record.events.append(
                    InboundEvent(event.event_type, received_at=self._elapsed())
                )
                raise invalid_event(f"unknown event type {event.event_type!r}")

    async def _send_audio(self, chunks: Sequence[bytes]) -> None:
        if chunks and self.config.synthesis_delay:
            await asyncio.sleep(self.config.synthesis_delay)
        for chunk in chunks:
            if self.audio_events == 0:
                for fault in self._faults(FaultKind.DELAY_AUDIO):
                    await asyncio.sleep(fault.delay)
            for fault in self._faults(FaultKind.SLOW_AUDIO):
                await asyncio.sleep(fault.delay)
            await self._mid_stream_faults()
            headers, payload = serde.serialize_audio_event(
                AudioEvent(audio_chunk=chunk)
            )
            await self.connection.send_data(
                self.stream, encode_message(headers, payload)
            )
            self.audio_events += 1
            self.record.audio_events += 1
            self.record.audio_bytes += len(chunk)

    async def _mid_stream_faults(self) -> None:
        for fault in self.faults:
            if not fault.mid_stream or self.audio_events != fault.after_audio_events:
                continue
            await self._strike(fault)

    async def _strike(self, fault: Fault) -> None:
        record = self.record
        match fault.kind:
            case FaultKind.THROTTLE_EVENT:
                await self._exception_event(_throttling(fault.message))
            case FaultKind.SERVICE_FAILURE_EVENT:
                await self._exception_event(ServiceFailureException(fault.message))
            case FaultKind.QUOTA_EVENT:
                await self._exception_event(
                    _quota(fault.message, QuotaCode.INPUT_STREAM_TIMEOUT)
                )
            case FaultKind.VALIDATION_EVENT:
                await self._exception_event(invalid_event(fault.message))
            case FaultKind.UNKNOWN_EXCEPTION_EVENT:
                await self._exception_event(
                    ServiceException(fault.message, code=fault.error_type)
                )
            case FaultKind.END_WITHOUT_CLOSE:
                record.outcome = "ended_without_close"
                await self.connection.send_data(self.stream, b"", end=True)
            case FaultKind.DROP_CONNECTION:
                record.outcome = "dropped"
                self.connection.lost = True
                self.connection.writer.transport.abort()
            case FaultKind.GOAWAY:
                record.outcome = "goaway"
                self.connection.record.goaway_sent = True
                self.connection.h2.close_connection(
                    ErrorCodes.NO_ERROR, last_stream_id=self.stream.stream_id
                )
                self.connection.flush()
                await asyncio.sleep(0.05)
                self.connection.lost = True
                self.connection.writer.transport.abort()
            case FaultKind.RST_STREAM:
                record.outcome = "reset"
                self._reset(ErrorCodes.INTERNAL_ERROR)
            case _:
                return
        raise _StreamAborted(str(fault.kind))

    async def _exception_event(self, error: ServiceException) -> None:
        """Send an exception event and end the response."""
        record = self.record
        record.error_type = error.code
        record.error_message = error.message
        record.outcome = "error"
        headers, payload = _serialize_error(error)
        with contextlib.suppress(_StreamAborted, StreamClosedError, ProtocolError):
            await self.connection.send_data(
                self.stream, encode_message(headers, payload), end=True
            )
            if not self.stream.ended_by_client:
                self._reset(ErrorCodes.NO_ERROR)
        raise _StreamAborted("exception event sent")

    async def _quota_exceeded(self, *, duration: bool) -> None:
        if duration:
            error = _quota(
                "Stream exceeded the maximum duration of "
                f"{self.config.max_stream_duration:g} s",
                QuotaCode.INPUT_STREAM_TIMEOUT,
            )
        else:
            error = _quota(
                f"No input event for {self.config.idle_timeout:g} s",
                QuotaCode.INPUT_STREAM_INBOUND_EVENT_TIMEOUT,
            )
        await self._exception_event(error)

    async def _finish(self, session: SynthesisSession) -> None:
        for fault in self.faults:
            if fault.mid_stream and fault.after_audio_events >= self.audio_events:
                await self._strike(fault)  # never reached its audio count: strike now
        closed = StreamClosedEvent(request_characters=session.request_characters)
        headers, payload = serde.serialize_stream_closed_event(closed)
        await self.connection.send_data(
            self.stream, encode_message(headers, payload), end=True
        )
        self.record.request_characters = session.request_characters
        self.record.outcome = "completed"
        if self._faults(FaultKind.GOAWAY_AFTER_STREAM):
            self.connection.record.goaway_sent = True
            self.connection.h2.close_connection(ErrorCodes.NO_ERROR)
            self.connection.flush()
            await asyncio.sleep(0.05)
            self.connection.writer.close()

    def _reset(self, code: ErrorCodes) -> None:
        with contextlib.suppress(StreamClosedError, ProtocolError):
            self.connection.h2.reset_stream(self.stream.stream_id, code)
            self.connection.flush()

    def _elapsed(self) -> float:
        return time.monotonic() - self.started


def _throttling(message: str) -> ThrottlingException:
    return ThrottlingException(
        message, throttling_reasons=[ThrottlingReason(reason="RATE_EXCEEDED")]
    )


def _quota(message: str, code: QuotaCode) -> ServiceQuotaExceededException:
    return ServiceQuotaExceededException(
        message, quota_code=code, service_code=ServiceCode.POLLY
    )


def _serialize_error(error: ServiceException) -> serde.EventParts:
    match error:
        case ValidationException():
            return serde.serialize_validation_exception(error)
        case ThrottlingException():
            return serde.serialize_throttling_exception(error)
        case ServiceQuotaExceededException():
            return serde.serialize_service_quota_exceeded_exception(error)
        case ServiceFailureException():
            return serde.serialize_service_failure_exception(error)
        case _:
            headers: serde.EventHeaders = {
                ":message-type": "exception",
                ":exception-type": error.code,
                ":content-type": "application/json",
            }
            return headers, _json_message(error.message)


def _redacted(headers: Sequence[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """Headers for the log: the signature cut to a prefix, the token hidden."""
    out: list[tuple[str, str]] = []
    for name, raw in headers:
        lower = name.lower()
        value = raw
        if lower == "authorization" and "Signature=" in raw:
            head, _, signature = raw.partition("Signature=")
            value = f"{head}Signature={signature[:8]}..."
        elif lower == "x-amz-security-token":
            value = "<redacted>"
        out.append((name, value))
    return tuple(out)


def _pseudo(headers: Sequence[tuple[str, str]], name: str) -> str:
    return next((v for k, v in headers if k == name), "")


def _header(headers: Sequence[tuple[str, str]], name: str) -> str | None:
    return next((v for k, v in headers if k.lower() == name), None)


def _http_date() -> str:
    return _now().strftime("%a, %d %b %Y %H:%M:%S GMT")


def _json_message(message: str) -> bytes:
    return json.dumps({"message": message}, separators=(",", ":")).encode()
