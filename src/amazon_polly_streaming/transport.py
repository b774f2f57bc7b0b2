"""The awscrt edge: HTTP/2 over TLS connections and streams, typed and bounded.

Everything the client knows about awscrt is in this module (awscrt ships no
type information; its calls are wrapped here once). What it adds to awscrt:

* **Timeouts everywhere.** awscrt bounds only the TCP connect; an untrusted
  certificate makes its TLS handshake fail only after 10-30 s, and a stream
  waits for response headers forever. ``connect`` bounds connect + handshake
  together, and a connection that completes after its caller gave up is
  handed to the pool (or closed) by a callback on awscrt's own future (no
  task, no event loop involved).
* **TCP_NODELAY.** awscrt cannot set it, and small writes then stall ~40 ms
  (Nagle's algorithm against delayed ACKs). On Linux the socket awscrt opened
  is found through ``/proc/self/fd`` and the option set on it; elsewhere the
  client still coalesces whatever is ready into one write.
* **Typed errors.** awscrt failures become ``TransportError`` subclasses.

Streams use awscrt's callback API, bridged to asyncio here with one wake-up
per burst of data (``ResponseStream``); a connection is not bound to an
event loop, so an idle connection can serve a later ``asyncio.run`` too.
"""

# awscrt is untyped: its objects are Any here, and only here.
# pyright: reportUnknownMemberType=false, reportUnknownVariableType=false
# pyright: reportUnknownArgumentType=false, reportMissingTypeStubs=false
# pyright: reportAttributeAccessIssue=false, reportPrivateUsage=false

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import io
import os
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import _awscrt  # type: ignore[import-not-found]
from awscrt.aio.http import AIOHttp2ClientConnection  # type: ignore[import-untyped]
from awscrt.exceptions import AwsCrtError, from_code  # type: ignore[import-untyped]
from awscrt.http import (  # type: ignore[import-untyped]
    Http2ClientStream,
    HttpClientConnectionBase,
    HttpHeaders,
    HttpRequest,
    HttpVersion,
)
from awscrt.io import (  # type: ignore[import-untyped]
    ClientTlsContext,
    InputStream,
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


async def connect(
    endpoint: Endpoint,
    *,
    timeout: float,
    adopt: Callable[[Connection], None] | None = None,
) -> Connection:
    """Open an HTTP/2 connection (TCP + TLS with ALPN h2) within ``timeout`` s.

    awscrt cannot abort a connection attempt: when the caller gives up
    (timeout, cancellation), the attempt goes on, and a connection that
    still comes is handed to ``adopt`` (the pool's idle cache: the next call
    uses it instead of dialling again) from awscrt's thread, else closed.

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
        crt_future.add_done_callback(functools.partial(_late, endpoint, adopt))
        msg = (
            f"connecting to {endpoint.authority} took longer than {timeout:g} s "
            "(TCP connect and TLS handshake; an untrusted certificate looks like this)"
        )
        raise ConnectTimeoutError(msg) from None
    except asyncio.CancelledError:
        crt_future.add_done_callback(functools.partial(_late, endpoint, adopt))
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


def _late(
    endpoint: Endpoint,
    adopt: Callable[[Connection], None] | None,
    future: concurrent.futures.Future[Any],
) -> None:
    """A connect its caller gave up on: adopt the connection if it came."""
    if future.cancelled() or future.exception() is not None:
        return  # consumed: nothing is left unretrieved
    native = future.result()
    if adopt is not None and isinstance(native, AIOHttp2ClientConnection):
        with contextlib.suppress(Exception):
            _set_nodelay(endpoint)
            adopt(Connection(native, endpoint))
            return
    with contextlib.suppress(Exception):
        _awscrt.http_connection_close(native._binding)


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
        self, method: str, path: str, headers: Sequence[tuple[str, str]]
    ) -> ResponseStream:
        """Open a stream: the headers go out at once; the body is written with
        ``ResponseStream.write`` (the last write ends it)."""
        request = HttpRequest(
            method=method, path=path, headers=HttpHeaders(list(headers))
        )
        try:
            return ResponseStream(self._native, request)
        except (AwsCrtError, RuntimeError) as exc:
            raise _crt_error(exc, "cannot open a stream") from None

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


class _CrtStream(Http2ClientStream):  # type: ignore[misc]  # awscrt is untyped
    """awscrt's HTTP/2 stream, its callbacks (on awscrt's thread) sent to ours."""

    __slots__ = ("_owner",)

    def __init__(self, connection: Any, request: Any, owner: ResponseStream) -> None:
        self._owner: ResponseStream | None = owner
        super().__init__(connection, request, manual_write=True)

    def _on_response(self, status_code: int, name_value_pairs: Any) -> None:
        super()._on_response(status_code, name_value_pairs)
        if (owner := self._owner) is not None:
            owner._arrived(status=(status_code, name_value_pairs))

    def _on_body(self, chunk: bytes) -> None:
        if (owner := self._owner) is not None:
            owner._arrived(chunk=chunk)

    def _on_h2_remote_end_stream(self) -> None:
        super()._on_h2_remote_end_stream()
        if (owner := self._owner) is not None:
            owner._arrived(remote_end=True)

    def _on_complete(self, error_code: int) -> None:
        # The last callback: drop the reference back, so the pair is freed by
        # reference counting as soon as the caller lets go (not at the next
        # full garbage collection, with awscrt's native stream kept till then).
        owner, self._owner = self._owner, None
        super()._on_complete(error_code)
        if owner is not None:
            owner._arrived(completed=error_code)


_WOKEN = True
_TIMED_OUT = False


class ResponseStream:
    """One HTTP/2 stream: body writes, and the response as it arrives.

    awscrt calls back on its own thread; what arrives (status, body chunks,
    the end) is kept under a lock, and the event loop is woken only when a
    reader is waiting and no wake-up is already on its way: one
    ``call_soon_threadsafe`` per burst of data, where awscrt's asyncio wrapper
    makes one per chunk plus a task and two futures per read. Writes are
    queued at once (awscrt keeps their order) and counted until awscrt says
    each is done: a reset is only safe with none in flight (awscrt 0.38
    crashes on a reset and a pending write of a stream in the same batch of
    its cross-thread work), so ``cancel()`` defers the reset until then.

    Not bound to the loop beyond its lifetime: it is made, read and closed by
    one task on one loop.
    """

    __slots__ = (
        "_chunks",
        "_completed",
        "_ended",
        "_headers",
        "_lock",
        "_loop",
        "_remote_end",
        "_reset",
        "_reset_wanted",
        "_status",
        "_stream",
        "_waiter",
        "_wake_scheduled",
        "_writes_in_flight",
    )

    def __init__(self, connection: Any, request: Any) -> None:
        self._loop = asyncio.get_running_loop()
        self._lock = threading.Lock()
        self._chunks: list[bytes] = []
        self._status: int | None = None
        self._headers: list[tuple[str, str]] = []
        self._remote_end = False
        self._completed: int | None = None
        self._waiter: asyncio.Future[bool] | None = None
        self._wake_scheduled = False
        self._writes_in_flight = 0
        self._ended = False
        self._reset: bool | None = None
        self._reset_wanted = False
        self._stream = _CrtStream(connection, request, self)
        _awscrt.http_client_stream_activate(self._stream)

    # awscrt's thread -----------------------------------------------------

    def _arrived(
        self,
        *,
        status: tuple[int, Any] | None = None,
        chunk: bytes | None = None,
        remote_end: bool = False,
        completed: int | None = None,
    ) -> None:
        with self._lock:
            if chunk is not None:
                self._chunks.append(chunk)
            elif status is not None:
                self._status = status[0]
                self._headers = [(str(k), str(v)) for k, v in status[1]]
            elif remote_end:
                self._remote_end = True
            elif completed is not None:
                self._completed = completed
            if self._waiter is None or self._wake_scheduled:
                return
            self._wake_scheduled = True
        self._call_soon(self._wake)

    def _call_soon(self, callback: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            self._loop.call_soon_threadsafe(callback)

    def _write_done(self, error_code: int) -> None:
        del error_code  # a failed write: the response side reports the stream's fate
        with self._lock:
            self._writes_in_flight -= 1
            idle = self._writes_in_flight == 0
            wake = idle and self._waiter is not None and not self._wake_scheduled
            if wake:
                self._wake_scheduled = True
        if idle and self._reset_wanted:
            self._call_soon(self._reset_now)
        if wake:
            self._call_soon(self._wake)

    # the event loop --------------------------------------------------------

    def _wake(self) -> None:
        with self._lock:
            self._wake_scheduled = False
            waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(_WOKEN)

    async def _wait(self, timeout: float | None) -> bool:
        """Wait for news from awscrt; ``False`` on timeout. Call with nothing
        to take (checked under the lock just before)."""
        waiter = self._waiter
        if waiter is None:
            return True  # news came between the check and now
        if timeout is None:
            return await waiter
        timer = self._loop.call_later(timeout, _expire, waiter)
        try:
            return await waiter
        finally:
            timer.cancel()

    def _arm(self) -> None:
        self._waiter = self._loop.create_future()

    def write(self, data: bytes | None, *, end: bool = False) -> None:
        """Queue a body write now (``end``: the last one). A stream that
        ended or was reset refuses it silently: its response says why."""
        if self._ended or self._reset_wanted:
            return
        self._ended = end
        with self._lock:
            self._writes_in_flight += 1
        try:
            _awscrt.http2_client_stream_write_data(
                self._stream,
                None if data is None else InputStream.wrap(io.BytesIO(data)),
                end,
                self._write_done,
            )
        except (AwsCrtError, RuntimeError, ValueError):
            with self._lock:
                self._writes_in_flight -= 1

    async def status(self, timeout: float) -> tuple[int, list[tuple[str, str]]]:
        """Wait for the response headers: the status and the header list.

        :raises ResponseTimeoutError: when none arrive within ``timeout`` s.
        :raises TransportError: if the stream fails before its response.
        """
        deadline = self._loop.time() + timeout
        while True:
            with self._lock:
                if self._status is not None:
                    return self._status, self._headers
                completed = self._completed
                if completed is None:
                    self._arm()
            if completed is not None:
                if completed:
                    raise _crt_error(
                        from_code(completed), "the stream failed before its response"
                    )
                msg = "the stream ended without a response"
                raise ConnectionClosedError(msg)
            if not await self._wait(deadline - self._loop.time()):
                msg = f"no response headers within {timeout:g} s"
                raise ResponseTimeoutError(msg)

    async def next_chunk(self, timeout: float | None = None) -> bytes:
        """The body received so far and not yet taken; ``b""`` at its end
        (also when it was cut short: ``completed()`` says how it ended).

        :raises ResponseTimeoutError: when nothing arrives within ``timeout`` s.
        """
        while True:
            if self._reset_wanted:
                return b""  # cancelled: nothing more for the reader
            with self._lock:
                chunks = self._chunks
                if chunks:
                    data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
                    chunks.clear()
                    return data
                completed = self._completed
                if completed is None and not self._remote_end:
                    self._arm()
            if completed is not None or self._remote_end:
                return b""  # the end, however it came: the parser judges it
            if not await self._wait(timeout):
                msg = f"no response data within {timeout:g} s"
                raise ResponseTimeoutError(msg)

    async def completed(self, timeout: float | None = None) -> None:
        """Wait until the stream is closed in both directions.

        :raises TransportError: if it ended abnormally (reset, connection lost).
        :raises ResponseTimeoutError: if it is still open after ``timeout`` s.
        """
        deadline = None if timeout is None else self._loop.time() + timeout
        while True:
            with self._lock:
                completed = self._completed
                if completed is None:
                    self._arm()
            if completed is not None:
                if completed:
                    raise _crt_error(
                        from_code(completed), "the stream did not complete"
                    )
                return
            left = None if deadline is None else deadline - self._loop.time()
            if not await self._wait(left):
                msg = f"the stream did not complete within {timeout:g} s"
                raise ResponseTimeoutError(msg)

    def cancel(self) -> None:
        """Barge-in: reset the stream (``RST_STREAM``, CANCEL) as soon as no
        body write is in flight (at once, usually), and write nothing more."""
        if self._reset_wanted:
            return
        self._reset_wanted = True
        with self._lock:
            idle = self._writes_in_flight == 0
        if idle:
            self._reset_now()
        self._wake()  # a reader sees the stream is over for it

    def _reset_now(self) -> None:
        if self._reset is None:
            with self._lock:
                if self._writes_in_flight:
                    return  # the last write's callback comes back here
            self._reset = _crt_native.reset_stream(self._stream)

    @property
    def cancelled(self) -> bool:
        """Whether ``cancel()`` was called."""
        return self._reset_wanted

    async def reset_and_wait(self, timeout: float) -> bool:
        """Reset (see ``cancel``) and wait until awscrt says the stream is
        over; whether it was reset and is over within ``timeout`` s (else the
        connection is in doubt)."""
        self.cancel()
        deadline = self._loop.time() + timeout
        while self._reset is None:  # a write was still in flight
            with self._lock:
                if self._writes_in_flight == 0 or self._completed is not None:
                    break
                self._arm()
            if not await self._wait(deadline - self._loop.time()):
                return False
        if self._completed is None:
            self._reset_now()
        if not self._reset and self._completed is None:
            return False
        try:
            await self.completed(max(0.0, deadline - self._loop.time()))
        except ResponseTimeoutError:
            return False
        except TransportError:
            pass  # "RST_STREAM sent": the expected end of a reset stream
        return True


def _expire(waiter: asyncio.Future[bool]) -> None:
    if not waiter.done():
        waiter.set_result(_TIMED_OUT)
