"""Faults on demand: what the emulator does wrong, when asked to.

A :class:`Fault` says what goes wrong; a :class:`FaultRule` says for which
requests (the next ``times`` requests, optionally only those a predicate
accepts). Rules live in the emulator's :class:`FaultPlan`; each request takes
the faults of every rule that matches it, in the order the rules were added::

    emu.faults.add(Fault.throttle(), times=2)           # first 2 requests: HTTP 400
    emu.faults.add(Fault.drop_connection(after_audio_events=3))
    emu.faults.add(Fault.slow_audio(0.2), when=lambda r: r.voice_id == "Ruth")

The plan is thread-safe: tests may add rules while the emulator serves
requests from another thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum


class FaultKind(StrEnum):
    """What goes wrong."""

    THROTTLE_HTTP = "throttle_http"
    """HTTP 400 ``ThrottlingException`` instead of the stream."""
    THROTTLE_EVENT = "throttle_event"
    """A ``ThrottlingException`` exception event in the stream."""
    SERVICE_FAILURE_HTTP = "service_failure_http"
    """HTTP 500 ``ServiceFailureException`` instead of the stream."""
    SERVICE_FAILURE_EVENT = "service_failure_event"
    """A ``ServiceFailureException`` exception event in the stream."""
    QUOTA_EVENT = "quota_event"
    """A ``ServiceQuotaExceededException`` exception event in the stream."""
    VALIDATION_HTTP = "validation_http"
    """HTTP 400 ``ValidationException`` instead of the stream."""
    VALIDATION_EVENT = "validation_event"
    """A ``ValidationException`` exception event in the stream."""
    UNKNOWN_EXCEPTION_EVENT = "unknown_exception_event"
    """An exception event of a type the model does not know."""
    HTTP_ERROR = "http_error"
    """A non-2xx response with an error type the model does not know."""
    DROP_CONNECTION = "drop_connection"
    """Abort the TCP connection mid-stream (no GOAWAY, no RST_STREAM)."""
    GOAWAY = "goaway"
    """GOAWAY mid-stream, then close the connection before the stream ends."""
    GOAWAY_AFTER_STREAM = "goaway_after_stream"
    """Complete the stream, then GOAWAY and close the (now idle) connection."""
    RST_STREAM = "rst_stream"
    """Reset the stream (RST_STREAM, INTERNAL_ERROR) mid-stream."""
    SLOW_AUDIO = "slow_audio"
    """Wait ``delay`` seconds before every audio event."""
    DELAY_AUDIO = "delay_audio"
    """Wait ``delay`` seconds before the first audio event."""
    DELAY_HEADERS = "delay_headers"
    """Wait ``delay`` seconds before the response headers."""
    END_WITHOUT_CLOSE = "end_without_close"
    """End the response cleanly (END_STREAM) but without ``StreamClosedEvent``."""


_MID_STREAM = frozenset(
    {
        FaultKind.THROTTLE_EVENT,
        FaultKind.SERVICE_FAILURE_EVENT,
        FaultKind.QUOTA_EVENT,
        FaultKind.VALIDATION_EVENT,
        FaultKind.UNKNOWN_EXCEPTION_EVENT,
        FaultKind.DROP_CONNECTION,
        FaultKind.GOAWAY,
        FaultKind.RST_STREAM,
        FaultKind.END_WITHOUT_CLOSE,
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Fault:
    """One fault. Build it with the class methods, which name the behaviour."""

    kind: FaultKind
    after_audio_events: int = 0
    """Mid-stream faults strike once this many audio events were sent."""
    delay: float = 0.0
    """Seconds, for the slow and delayed kinds."""
    message: str = ""
    """The error message, for the error kinds."""
    error_type: str = ""
    """The error type, for ``HTTP_ERROR`` and ``UNKNOWN_EXCEPTION_EVENT``."""
    status: int = 0
    """The HTTP status, for ``HTTP_ERROR``."""

    @property
    def mid_stream(self) -> bool:
        """Whether the fault strikes inside the response stream."""
        return self.kind in _MID_STREAM

    @classmethod
    def throttle(
        cls, *, mid_stream: bool = False, after_audio_events: int = 0
    ) -> Fault:
        """Throttling: HTTP 400 before the stream, or an exception event in it."""
        kind = FaultKind.THROTTLE_EVENT if mid_stream else FaultKind.THROTTLE_HTTP
        return cls(
            kind=kind, after_audio_events=after_audio_events, message="Rate exceeded"
        )

    @classmethod
    def service_failure(
        cls, *, mid_stream: bool = False, after_audio_events: int = 0
    ) -> Fault:
        """A service failure: HTTP 500, or an exception event in the stream."""
        kind = (
            FaultKind.SERVICE_FAILURE_EVENT
            if mid_stream
            else FaultKind.SERVICE_FAILURE_HTTP
        )
        return cls(
            kind=kind,
            after_audio_events=after_audio_events,
            message="An internal error occurred",
        )

    @classmethod
    def quota(cls, *, after_audio_events: int = 0) -> Fault:
        """A ``ServiceQuotaExceededException`` event (``input-stream-timeout``)."""
        return cls(
            kind=FaultKind.QUOTA_EVENT,
            after_audio_events=after_audio_events,
            message="Stream duration limit exceeded",
        )

    @classmethod
    def validation(
        cls, message: str = "Invalid request", *, mid_stream: bool = False
    ) -> Fault:
        """A ``ValidationException``: HTTP 400, or an exception event."""
        kind = FaultKind.VALIDATION_EVENT if mid_stream else FaultKind.VALIDATION_HTTP
        return cls(kind=kind, message=message)

    @classmethod
    def unknown_exception_event(
        cls, error_type: str = "BrandNewException", *, after_audio_events: int = 0
    ) -> Fault:
        """An exception event whose type no model lists."""
        return cls(
            kind=FaultKind.UNKNOWN_EXCEPTION_EVENT,
            after_audio_events=after_audio_events,
            error_type=error_type,
            message="Something new went wrong",
        )

    @classmethod
    def http_error(
        cls, status: int = 503, error_type: str = "ServiceUnavailableException"
    ) -> Fault:
        """A non-2xx response whose error type the model does not know."""
        return cls(
            kind=FaultKind.HTTP_ERROR,
            status=status,
            error_type=error_type,
            message="Service unavailable",
        )

    @classmethod
    def drop_connection(cls, *, after_audio_events: int = 0) -> Fault:
        """Abort the TCP connection after some audio."""
        return cls(
            kind=FaultKind.DROP_CONNECTION, after_audio_events=after_audio_events
        )

    @classmethod
    def goaway(cls, *, after_audio_events: int = 0) -> Fault:
        """GOAWAY mid-stream, then close the connection with the stream unfinished."""
        return cls(kind=FaultKind.GOAWAY, after_audio_events=after_audio_events)

    @classmethod
    def goaway_after_stream(cls) -> Fault:
        """Finish the stream normally, then GOAWAY and close the idle connection."""
        return cls(kind=FaultKind.GOAWAY_AFTER_STREAM)

    @classmethod
    def rst_stream(cls, *, after_audio_events: int = 0) -> Fault:
        """Reset the stream after some audio."""
        return cls(kind=FaultKind.RST_STREAM, after_audio_events=after_audio_events)

    @classmethod
    def end_without_close(cls, *, after_audio_events: int = 0) -> Fault:
        """End the response cleanly, but never send ``StreamClosedEvent``."""
        return cls(
            kind=FaultKind.END_WITHOUT_CLOSE, after_audio_events=after_audio_events
        )

    @classmethod
    def slow_audio(cls, delay: float) -> Fault:
        """Wait ``delay`` seconds before each audio event."""
        return cls(kind=FaultKind.SLOW_AUDIO, delay=delay)

    @classmethod
    def delay_audio(cls, delay: float) -> Fault:
        """Wait ``delay`` seconds before the first audio event."""
        return cls(kind=FaultKind.DELAY_AUDIO, delay=delay)

    @classmethod
    def delay_headers(cls, delay: float) -> Fault:
        """Wait ``delay`` seconds before sending the response headers."""
        return cls(kind=FaultKind.DELAY_HEADERS, delay=delay)


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """What a fault rule's predicate sees of a request (its HTTP headers)."""

    index: int
    """0 for the first request the emulator received, then 1, 2, ..."""
    voice_id: str | None
    output_format: str | None
    headers: tuple[tuple[str, str], ...]


@dataclass(slots=True)
class FaultRule:
    """Apply ``fault`` to the next ``times`` matching requests (``None``: all)."""

    fault: Fault
    times: int | None = 1
    when: Callable[[RequestInfo], bool] | None = None
    applied: int = 0
    """How many requests this rule has struck so far."""

    @property
    def exhausted(self) -> bool:
        """Whether the rule has struck as often as it may."""
        return self.times is not None and self.applied >= self.times


@dataclass(slots=True)
class FaultPlan:
    """The emulator's fault rules, consulted once per request."""

    rules: list[FaultRule] = field(default_factory=list[FaultRule])
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(
        self,
        fault: Fault,
        *,
        times: int | None = 1,
        when: Callable[[RequestInfo], bool] | None = None,
    ) -> FaultRule:
        """Add a rule; returns it (its ``applied`` count is live)."""
        if times is not None and times < 1:
            msg = f"times must be a positive number of requests or None, got {times}"
            raise ValueError(msg)
        rule = FaultRule(fault, times, when)
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        """Remove every rule."""
        with self._lock:
            self.rules.clear()

    def take(self, request: RequestInfo) -> list[Fault]:
        """The faults for this request, counting them as applied."""
        taken: list[Fault] = []
        with self._lock:
            for rule in self.rules:
                if rule.exhausted:
                    continue
                if rule.when is not None and not rule.when(request):
                    continue
                rule.applied += 1
                taken.append(rule.fault)
            self.rules = [r for r in self.rules if not r.exhausted]
        return taken
