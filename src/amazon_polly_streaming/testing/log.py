"""The emulator's request log: what each connection and request did, to assert on.

Every TLS connection gets a :class:`ConnectionRecord` (one per handshake, so a
test can count handshakes) and every HTTP/2 request a :class:`RequestRecord`
with its headers, signature check, inbound events (each with its own chained
signature check), response status or error, and the audio it was sent.
Records are appended as things happen; read them after the client is done.
Secrets never enter the log: signatures appear as a short prefix only.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass(slots=True)
class InboundEvent:
    """One input event as the emulator received it."""

    event_type: str
    """``TextEvent``, ``CloseStreamEvent``, or whatever unknown type arrived."""
    text: str | None = None
    text_type: str | None = None
    flush: bool = False
    signature_ok: bool = True
    received_at: float = 0.0
    """Seconds since the request started."""


@dataclass(slots=True)
class RequestRecord:
    """One HTTP/2 request to the emulator, from headers to the end of the stream."""

    index: int
    request_id: str
    connection_id: int
    stream_id: int
    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    """Request headers as received (pseudo-headers included), in order; the
    signature in ``authorization`` is cut to 8 hex digits and a session token
    is ``<redacted>``."""
    signature_ok: bool | None = None
    """``None`` until checked; ``False`` with ``signature_error`` when it failed."""
    signature_error: str | None = None
    signed_headers: tuple[str, ...] = ()
    access_key_id: str | None = None
    voice_id: str | None = None
    output_format: str | None = None
    sample_rate: int | None = None
    language_code: str | None = None
    lexicon_names: tuple[str, ...] = ()
    faults: tuple[str, ...] = ()
    """Kinds of the injected faults that struck this request."""
    events: list[InboundEvent] = field(default_factory=list[InboundEvent])
    final_envelope: bool = False
    """Whether the signed empty envelope that ends the input arrived."""
    client_end_stream: bool = False
    """Whether the client ended its side of the stream (END_STREAM)."""
    status: int | None = None
    error_type: str | None = None
    """The error sent (HTTP error type or exception event type), if any."""
    error_message: str | None = None
    audio_events: int = 0
    audio_bytes: int = 0
    request_characters: int | None = None
    """From the ``StreamClosedEvent`` sent, when one was."""
    outcome: str = "open"
    """``completed``, ``error``, ``reset_by_client``, ``reset``, ``dropped``,
    ``goaway``, ``connection_lost``, or ``open`` while running."""

    @property
    def text(self) -> str:
        """All the text the request sent, concatenated."""
        return "".join(e.text or "" for e in self.events if e.event_type == "TextEvent")

    def header(self, name: str) -> str | None:
        """The first value of a request header (case-insensitive)."""
        lower = name.lower()
        return next((v for k, v in self.headers if k.lower() == lower), None)


@dataclass(slots=True)
class ConnectionRecord:
    """One TLS connection (one handshake) to the emulator."""

    id: int
    peer: str
    alpn: str | None = None
    tls_version: str | None = None
    streams: int = 0
    """How many requests (HTTP/2 streams) it carried."""
    max_concurrent_streams_seen: int = 0
    """The most streams that were open on it at once."""
    goaway_received: bool = False
    goaway_sent: bool = False
    protocol_errors: list[str] = field(default_factory=list[str])
    closed: bool = False
    closed_idle: bool = False
    """The emulator closed it (GOAWAY) after ``connection_idle_timeout``."""


@dataclass(slots=True)
class RequestLog:
    """Connections and requests, in order (thread-safe appends)."""

    connections: list[ConnectionRecord] = field(default_factory=list[ConnectionRecord])
    requests: list[RequestRecord] = field(default_factory=list[RequestRecord])
    internal_errors: list[str] = field(default_factory=list[str])
    """Bugs the emulator hit (each also failed its request): tests assert none."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def new_connection(self, peer: str) -> ConnectionRecord:
        """Record a new connection."""
        with self._lock:
            record = ConnectionRecord(id=len(self.connections), peer=peer)
            self.connections.append(record)
            return record

    def add_request(self, record: RequestRecord) -> RequestRecord:
        """Append a request; sets its ``index`` to its position in the log."""
        with self._lock:
            record.index = len(self.requests)
            self.requests.append(record)
            return record

    def clear(self) -> None:
        """Forget everything recorded so far."""
        with self._lock:
            self.connections.clear()
            self.requests.clear()
            self.internal_errors.clear()
