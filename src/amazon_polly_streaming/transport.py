"""The awscrt edge: HTTP/2 over TLS connections and streams, typed and bounded.

Everything the client knows about awscrt is in this module (awscrt ships no
type information; its calls are wrapped here once). What it adds to awscrt:

* **Timeouts everywhere.** awscrt bounds only the TCP connect; an untrusted
  certificate makes its TLS handshake fail only after 10-30 s, and a stream
  waits for response headers forever. ``connect`` bounds connect + handshake
  together, and a connection that completes after its caller gave up is closed
  by a callback on awscrt's own future (no task, no event loop involved).
* **TCP_NODELAY.** awscrt cannot set it, and small writes then stall ~40 ms
  (Nagle's algorithm against delayed ACKs). On Linux the socket awscrt opened
  is found through ``/proc/self/fd`` and the option set on it; elsewhere the
  client still coalesces whatever is ready into one write.
* **Typed errors.** awscrt failures become ``TransportError`` subclasses.

Streams use awscrt's asyncio wrapper; a connection is not bound to an event
loop, so an idle connection can serve a later ``asyncio.run`` too.
"""

# awscrt is untyped: its objects are Any here, and only here.
# pyright: reportUnknownMemberType=false, reportUnknownVariableType=false
# pyright: reportUnknownArgumentType=false, reportMissingTypeStubs=false
# pyright: reportAttributeAccessIssue=false, reportPrivateUsage=false

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import socket
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import _awscrt  # type: ignore[import-not-found]
from awscrt.aio.http import AIOHttp2ClientConnection  # type: ignore[import-untyped]
from awscrt.exceptions import AwsCrtError  # type: ignore[import-untyped]
from awscrt.http import (  # type: ignore[import-untyped]
    HttpClientConnectionBase,
    HttpHeaders,
    HttpRequest,
    HttpVersion,
)
from awscrt.io import (  # type: ignore[import-untyped]
    ClientTlsContext,
    SocketOptions,
    TlsContextOptions,
)

from . import _crt_native
from .errors import (
    ConnectionClosedError,
    ConnectTimeoutError,
    ResponseTimeoutError,
    TlsError,
    TransportError,
)

__all__ = ["Connection", "Endpoint", "ResponseStream", "TlsSettings", "connect"]


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """What a TLS connection trusts: the system store, or one CA bundle file."""

    ca_bundle: str | None = None


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where to connect (the pool's key, with the TLS settings)."""

    host: str
    port: int
    tls: TlsSettings

    @property
    def authority(self) -> str:
        """``host`` or ``host:port``, as the ``:authority`` (and signed ``host``)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == 443 else f"{host}:{self.port}"


_tls_contexts: dict[TlsSettings, Any] = {}


def _tls_context(settings: TlsSettings) -> Any:
    """One awscrt TLS context per trust setting (they are expensive)."""
    context = _tls_contexts.get(settings)
    if context is None:
        options = TlsContextOptions()
        if settings.ca_bundle is not None:
            try:
                options.override_default_trust_store_from_path(None, settings.ca_bundle)
            except AwsCrtError as exc:
                msg = f"cannot load CA bundle {settings.ca_bundle!r}: {exc.name}"
                raise TlsError(msg) from None
        context = ClientTlsContext(options)
        _tls_contexts[settings] = context
    return context


def _crt_error(exc: BaseException, what: str) -> TransportError:
    """A typed error for an awscrt failure."""
    if isinstance(exc, AwsCrtError):
        name = exc.name
        if "TLS" in name or "SSL" in name or "CERT" in name:
            return TlsError(f"{what}: TLS failure ({name})")
        if "CONNECT" in name or "SOCKET" in name or "DNS" in name:
            return ConnectionClosedError(f"{what}: {name}")
        return ConnectionClosedError(f"{what}: {name}")
    return ConnectionClosedError(f"{what}: {type(exc).__name__}: {exc}")


async def connect(endpoint: Endpoint, *, timeout: float) -> Connection:
    """Open an HTTP/2 connection (TCP + TLS with ALPN h2) within ``timeout`` s.

    :raises ConnectTimeoutError: when connect + handshake take longer.
    :raises TlsError: on a TLS failure (untrusted certificate, no h2, ...).
    :raises ConnectionClosedError: when the connection cannot be made.
    """
    socket_options = SocketOptions()
    socket_options.connect_timeout_ms = max(1, int(timeout * 1000))
    tls = _tls_context(endpoint.tls).new_connection_options()
    tls.set_alpn_list(["h2"])
    with contextlib.suppress(AwsCrtError, ValueError):
        tls.set_server_name(endpoint.host)
    crt_future: concurrent.futures.Future[Any] = HttpClientConnectionBase._generic_new(
        endpoint.host,
        endpoint.port,
        socket_options=socket_options,
        tls_connection_options=tls,
        expected_version=HttpVersion.Http2,
        asyncio_connection=True,
    )
    try:
        native = await asyncio.wait_for(
            asyncio.shield(asyncio.wrap_future(crt_future)), timeout
        )
    except TimeoutError:
        crt_future.add_done_callback(_close_late_connection)
        msg = (
            f"connecting to {endpoint.authority} took longer than {timeout:g} s "
            "(TCP connect and TLS handshake; an untrusted certificate looks like this)"
        )
        raise ConnectTimeoutError(msg) from None
    except asyncio.CancelledError:
        crt_future.add_done_callback(_close_late_connection)
        raise
    except (AwsCrtError, OSError, ValueError) as exc:
        raise _crt_error(exc, f"cannot connect to {endpoint.authority}") from None
    connection = Connection(native, endpoint)
    try:
        if not isinstance(native, AIOHttp2ClientConnection):
            msg = f"{endpoint.authority} did not negotiate HTTP/2 (ALPN h2)"
            raise TlsError(msg)
        _set_nodelay(endpoint)
    except BaseException:
        connection.close_soon()
        raise
    return connection


def _close_late_connection(future: concurrent.futures.Future[Any]) -> None:
    """A connect its caller gave up on: close the connection if it came."""
    if future.cancelled() or future.exception() is not None:
        return  # consumed: nothing is left unretrieved
    with contextlib.suppress(Exception):
        _awscrt.http_connection_close(future.result()._binding)


def _set_nodelay(endpoint: Endpoint) -> None:
    """Set TCP_NODELAY on this process's sockets connected to the endpoint (Linux).

    Best effort: awscrt keeps its sockets to itself, so they are found by
    their peer address; every TCP socket to this endpoint wants the option.
    """
    try:
        fds = os.listdir("/proc/self/fd")
        peers = {
            info[4][0] for info in socket.getaddrinfo(endpoint.host, endpoint.port)
        }
    except OSError:
        return
    for name in fds:
        try:
            fd = int(name)
            if not os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                continue
            sock = socket.socket(fileno=os.dup(fd))
        except (OSError, ValueError):
            continue
        try:
            tcp = sock.type == socket.SOCK_STREAM
            if tcp and sock.family in {socket.AF_INET, socket.AF_INET6}:
                peer = sock.getpeername()
                if peer[1] == endpoint.port and peer[0] in peers:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        finally:
            sock.close()  # the duplicate only; awscrt's descriptor stays open


class Connection:
    """One HTTP/2 connection. Streams are opened by ``request``."""

    __slots__ = ("_native", "endpoint")

    def __init__(self, native: Any, endpoint: Endpoint) -> None:
        self._native = native
        self.endpoint = endpoint

    @property
    def is_open(self) -> bool:
        """Whether the connection can still carry a new stream."""
        try:
            return bool(self._native.is_open())
        except Exception:
            return False

    def request(
        self,
        method: str,
        path: str,
        headers: Sequence[tuple[str, str]],
        body: AsyncIterator[bytes],
    ) -> ResponseStream:
        """Open a stream: headers at once, then each chunk ``body`` yields.

        Each chunk goes out as one write (callers coalesce what is ready); the
        request side ends when ``body`` is exhausted.
        """
        request = HttpRequest(
            method=method, path=path, headers=HttpHeaders(list(headers))
        )
        try:
            stream = self._native.request(request, request_body_generator=body)
        except (AwsCrtError, RuntimeError) as exc:
            raise _crt_error(exc, "cannot open a stream") from None
        return ResponseStream(stream)

    async def close(self, timeout: float = 5.0) -> None:
        """Close the connection (GOAWAY, then TCP close) and wait for it."""
        shutdown = self._shutdown()
        if shutdown is not None:
            view = _observe(shutdown)
            await asyncio.wait({view}, timeout=timeout)
            if view.done() and not view.cancelled():
                view.exception()  # a failed connection shuts down with its error
            view.cancel()

    def close_soon(self) -> None:
        """Start closing without waiting (for callers outside any event loop)."""
        self._shutdown()

    def _shutdown(self) -> concurrent.futures.Future[Any] | None:
        # awscrt's asyncio connection makes close() a coroutine; the native
        # close underneath returns the shutdown future and needs no loop.
        try:
            _awscrt.http_connection_close(self._native._binding)
            future: concurrent.futures.Future[Any] = self._native.shutdown_future
            return future
        except Exception:
            return None


def _observe(source: concurrent.futures.Future[Any]) -> asyncio.Future[Any]:
    """An asyncio view of an awscrt future that never cancels the source.

    ``asyncio.wrap_future`` cancels the source when its view is cancelled, and
    awscrt then fails setting a result on it from its own thread. This view is
    fed by a callback instead, and cancelling it leaves the source alone.
    """
    loop = asyncio.get_running_loop()
    view: asyncio.Future[Any] = loop.create_future()

    def copy_state() -> None:
        if view.cancelled():
            return
        if source.cancelled():
            view.cancel()
        elif (exc := source.exception()) is not None:
            view.set_exception(exc)
        else:
            view.set_result(source.result())

    def on_done(_: concurrent.futures.Future[Any]) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(copy_state)

    source.add_done_callback(on_done)
    return view


def _claim_outcome(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()


class ResponseStream:
    """The response side of one stream.

    Reads are never cancelled under awscrt (that would break its callbacks):
    a read that outlives a timeout stays pending, and the next read or
    ``drain`` picks it up.
    """

    __slots__ = ("_pending_read", "_reset", "_stream")

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._pending_read: asyncio.Task[bytes] | None = None
        self._reset: bool | None = None

    async def status(self, timeout: float) -> tuple[int, list[tuple[str, str]]]:
        """Wait for the response headers: the status and the header list.

        :raises ResponseTimeoutError: when none arrive within ``timeout`` s.
        :raises TransportError: if the stream fails before its response.
        """
        ready = self._stream._response_status_future
        if ready.done() and ready.exception() is None:  # no waiting machinery
            headers = self._stream._response_headers_future.result()
            return int(ready.result()), [(str(k), str(v)) for k, v in headers]
        status = _observe(ready)
        completion = _observe(self._stream._completion_future)
        try:
            done, _ = await asyncio.wait(
                {status, completion},
                timeout=timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if not done:
                msg = f"no response headers within {timeout:g} s"
                raise ResponseTimeoutError(msg)
            if status not in done:
                try:
                    completion.result()
                except (AwsCrtError, RuntimeError) as exc:
                    raise _crt_error(
                        exc, "the stream failed before its response"
                    ) from None
                msg = "the stream ended without a response"
                raise ConnectionClosedError(msg)
            headers = self._stream._response_headers_future.result()
            return int(status.result()), [(str(k), str(v)) for k, v in headers]
        finally:
            for view in (status, completion):
                if view.done() and not view.cancelled():
                    view.exception()  # retrieved, whatever it holds
                view.cancel()

    async def next_chunk(self, timeout: float | None = None) -> bytes:
        """The next piece of the response body; ``b""`` at its end.

        :raises ResponseTimeoutError: when nothing arrives within ``timeout`` s.
        :raises TransportError: when the stream fails.
        """
        read = self._pending_read
        if read is None:
            # Fast path: what awscrt already received, taken at once, with no
            # task or timer (most reads of a busy stream).
            stream = self._stream
            with stream._deque_lock:
                if stream._received_chunks:
                    data = b"".join(stream._received_chunks)
                    stream._received_chunks.clear()
                    return data
            read = asyncio.ensure_future(stream.get_next_response_chunk())
            self._pending_read = read
        done, _ = await asyncio.wait({read}, timeout=timeout)
        if not done:
            msg = f"no response data within {timeout:g} s"
            raise ResponseTimeoutError(msg)
        self._pending_read = None
        try:
            return bytes(read.result())
        except (AwsCrtError, RuntimeError) as exc:
            raise _crt_error(exc, "the response stream failed") from None

    async def completed(self, timeout: float | None = None) -> None:
        """Wait until the stream is closed in both directions.

        :raises TransportError: if it ended abnormally (reset, connection lost).
        :raises ResponseTimeoutError: if it is still open after ``timeout`` s.
        """
        source = self._stream._completion_future
        if source.done():  # usually, by the time StreamClosedEvent was read
            if (exc := source.exception()) is not None:
                raise _crt_error(exc, "the stream did not complete") from None
            return
        completion = _observe(source)
        try:
            done, _ = await asyncio.wait({completion}, timeout=timeout)
            if not done:
                msg = f"the stream did not complete within {timeout:g} s"
                raise ResponseTimeoutError(msg)
            try:
                completion.result()
            except (AwsCrtError, RuntimeError) as exc:
                raise _crt_error(exc, "the stream did not complete") from None
        finally:
            completion.cancel()

    def reset(self) -> bool:
        """Reset the stream now (``RST_STREAM``, CANCEL), for barge-in.

        Returns whether the reset was queued (once; later calls return the
        first answer); when it was, the connection stays usable once
        ``completed()`` returns. ``False`` (awscrt's reset is out of reach,
        see ``_crt_native``): close the connection instead.

        **Only while no request-body write is in flight** (the body iterator
        is waiting for data, or has ended and ``writer_done()``): awscrt
        0.38 crashes when one cross-thread batch carries both a reset and a
        pending write of a stream that was waiting for writes.
        """
        if self._reset is None:
            self._reset = _crt_native.reset_stream(self._stream)
        return self._reset

    def writer_done(self) -> bool:
        """Whether awscrt finished writing the request body (every write done)."""
        writer: asyncio.Task[None] | None = getattr(self._stream, "_writer", None)
        return writer is None or writer.done()

    async def drain(self) -> None:
        """Finish a pending read after the stream ended (or its connection closed).

        Also claims the outcome of awscrt's own request-body task: when the
        response ends before the body (a service error, an interruption), its
        last write fails, and nobody else would retrieve that error (asyncio
        would print "Task exception was never retrieved").
        """
        read, self._pending_read = self._pending_read, None
        if read is not None:
            with contextlib.suppress(Exception):
                await read
        writer: asyncio.Task[None] | None = getattr(self._stream, "_writer", None)
        if writer is not None:
            writer.add_done_callback(_claim_outcome)
