"""Failures to talk to Polly: ``RuntimeError`` subclasses, apart from service errors.

``ServiceException`` and its subclasses (``exceptions.py``, generated from the
model) mean the service answered with an error. Everything here means the
exchange itself failed: the connection, TLS, HTTP/2, a timeout, a response the
model does not describe, a stream that ended too early, missing credentials.
Messages carry the HTTP status, error type and request id when there is one,
and never a credential or a signature.
"""

from __future__ import annotations


class TransportError(RuntimeError):
    """The exchange with Polly failed (not a service error).

    ``retryable`` says whether trying the same request again may succeed
    (the client retries those only before any audio was yielded).
    """

    retryable: bool = True

    def __init__(self, message: str, *, request_id: str | None = None) -> None:
        super().__init__(message)
        self.request_id = request_id

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text} (request id {self.request_id})" if self.request_id else text


class ConnectionClosedError(TransportError):
    """The connection failed or was closed (reset, dropped, GOAWAY)."""


class ConnectTimeoutError(TransportError):
    """Connecting (TCP connect + TLS handshake) took too long."""


class ResponseTimeoutError(TransportError):
    """The response headers, or the next audio event, took too long."""


class TlsError(TransportError):
    """TLS or HTTP/2 negotiation failed (e.g. the certificate is not trusted).

    Never retried: the same certificate will not become trusted.
    """

    retryable = False


class StreamInterruptedError(TransportError):
    """The response ended without ``StreamClosedEvent``: audio may be missing.

    AWS's own clients end silently here; this client never does.
    """


class UnexpectedResponseError(TransportError):
    """A non-2xx response whose error type the model does not know, or a
    response that does not follow the protocol."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error_type: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, request_id=request_id)
        self.status = status
        self.error_type = error_type
        self.retryable = status is not None and status >= 500


class ClientClosedError(RuntimeError):
    """The client was closed; no new streams can start on it."""
