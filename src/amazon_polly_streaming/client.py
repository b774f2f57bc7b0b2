"""``PollyStreamingClient``: the public face, on the session, pool and transport."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal, Self

from amazon_polly_streaming_generated.errors import (
    ServiceException,
    ServiceFailureException,
    ThrottlingException,
)
from amazon_polly_streaming_generated.shapes import (
    AudioEvent,
    StartSpeechSynthesisStreamInput,
    StreamClosedEvent,
    UnknownEvent,
)

from . import protocol
from .config import ClientConfig, check_str, client_config, synthesis_input
from .credentials import (
    AwsCredentials,
    CredentialsProvider,
    DefaultCredentialsChain,
    StaticCredentialsProvider,
)
from .errors import (
    ClientClosedError,
    ResponseTimeoutError,
    TransportError,
)
from .pool import IDLE_CONNECTIONS, LeaseLimiter, PoolStats
from .signing import EventSigner, sign_request
from .text import FLUSH, KEEPALIVE_TEXT, split_text
from .transport import Connection, ResponseStream, connect

logger = logging.getLogger("amazon_polly_streaming")

type TextSource = str | Iterable[str | object] | AsyncIterable[str | object]
"""``text``: a string, or pieces (``str`` or ``FLUSH``) from a (async) iterable."""

KEEPALIVE_INTERVAL = 3.0
"""Seconds a text source may be silent before a keep-alive (Polly allows 5 s)."""


@dataclass(slots=True)
class _Outbox:
    """Signed envelopes waiting for the wire; the body drains all that is ready
    into one write (awscrt cannot disable Nagle's algorithm everywhere)."""

    items: list[bytes] = field(default_factory=list[bytes])
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    closed: bool = False

    def put(self, data: bytes) -> None:
        self.items.append(data)
        self.ready.set()

    def close(self) -> None:
        self.closed = True
        self.ready.set()

    async def body(self) -> AsyncIterator[bytes]:
        while True:
            await self.ready.wait()
            self.ready.clear()
            if self.items:
                data = b"".join(self.items)
                self.items.clear()
                yield data
            if self.closed and not self.items:
                return


class SynthesisStream:
    """A full-duplex synthesis stream: send text while audio comes back.

    Get one from ``PollyStreamingClient.open_stream()`` (an async context
    manager). ``send`` text (``flush=True`` forces synthesis of what Polly has
    buffered), ``close_input`` when done, and iterate ``events()`` for typed
    events: ``AudioEvent`` as audio arrives, then ``StreamClosedEvent`` (its
    ``request_characters`` is also on ``self.request_characters``). A service
    error arriving mid-stream is raised from ``events()`` where it arrived;
    a response that ends without ``StreamClosedEvent`` raises
    ``StreamInterruptedError``. Leaving the context early (or ``cancel()``)
    stops the stream at once.
    """

    def __init__(
        self,
        *,
        request_id: str | None,
        response: ResponseStream,
        signer: EventSigner,
        outbox: _Outbox,
        read_timeout: float,
        ssml: bool,
        input_closed: bool = False,
    ) -> None:
        self.request_id = request_id
        self.request_characters: int | None = None
        self._response = response
        self._signer = signer
        self._outbox = outbox
        self._read_timeout = read_timeout
        self._ssml = ssml
        self._parser = protocol.ResponseParser(request_id=request_id)
        self._input_closed = input_closed
        self._finished = False
        self._last_activity = time.monotonic()
        self._pending_flush = False

    @property
    def input_closed(self) -> bool:
        """Whether ``close_input`` was called."""
        return self._input_closed

    @property
    def finished(self) -> bool:
        """Whether ``StreamClosedEvent`` arrived."""
        return self._finished

    async def send(self, text: str, *, flush: bool = False) -> None:
        """Send text (long plain text is split at sentence boundaries)."""
        check_str("text", text, allow_empty=True)
        if self._input_closed:
            msg = "send() after close_input()"
            raise RuntimeError(msg)
        pieces = [text] if self._ssml else split_text(text)
        for i, piece in enumerate(pieces):
            last = i == len(pieces) - 1
            await self._send_event(
                protocol.text_event(piece, ssml=self._ssml, flush=flush and last)
            )
        self._last_activity = time.monotonic()

    async def flush(self) -> None:
        """Force Polly to synthesize what it has buffered, now."""
        await self.send(KEEPALIVE_TEXT, flush=True)

    async def keepalive(self) -> None:
        """A whitespace event that keeps an idle input alive (Polly's 5 s limit).

        While the text source is merely slow (a person typing, a model
        thinking), no audio is due: ``read_timeout`` counts from the last
        event sent, keep-alives included.
        """
        if not self._input_closed:
            await self._send_event(protocol.text_event(KEEPALIVE_TEXT))
            self._last_activity = time.monotonic()

    async def close_input(self) -> None:
        """No more text: Polly synthesizes the rest and ends the stream."""
        if self._input_closed:
            return
        self._input_closed = True
        await self._send_event(protocol.close_event())
        self._outbox.put(await self._signer.end())
        self._outbox.close()
        self._last_activity = time.monotonic()

    def stop_sending(self) -> None:
        """End the request body now, without ``CloseStreamEvent`` (an abort:
        the service answers with an error and the stream ends)."""
        self._input_closed = True
        self._outbox.close()

    async def _send_event(self, event: bytes) -> None:
        self._outbox.put(await self._signer.envelope(event))

    async def events(
        self,
    ) -> AsyncIterator[AudioEvent | StreamClosedEvent | UnknownEvent]:
        """The response events, as they arrive."""
        parser = self._parser
        while not self._finished:
            try:
                chunk = await self._response.next_chunk(self._read_timeout)
            except ResponseTimeoutError:
                if time.monotonic() - self._last_activity < self._read_timeout:
                    continue  # text is still arriving: no audio is due yet
                msg = (
                    f"no audio for {self._read_timeout:g} s after the last text "
                    "(read_timeout)"
                )
                raise ResponseTimeoutError(msg, request_id=self.request_id) from None
            if not chunk:
                parser.end()  # raises StreamInterruptedError without StreamClosedEvent
                return
            self._last_activity = time.monotonic()
            for event in parser.feed(chunk):
                if isinstance(event, StreamClosedEvent):
                    self.request_characters = event.request_characters
                    self._finished = True
                yield event
            parser.raise_pending()  # an error right behind that audio: now

    async def audio(self) -> AsyncIterator[bytes]:
        """Just the audio bytes, as they arrive."""
        async for event in self.events():
            if isinstance(event, AudioEvent) and event.audio_chunk:
                yield event.audio_chunk


class PollyStreamingClient:
    """Asyncio client for Amazon Polly's bidirectional streaming synthesis.

    ``region`` is bound at construction (another region needs another
    client). Construction does no I/O: no connection, no credential lookup,
    no file read; bad arguments raise ``ValueError``/``TypeError`` naming the
    argument. ``pool_size`` bounds how many streams this client runs at once
    (more callers wait, in order); idle connections are shared process-wide.

    Keyword options: ``endpoint_url`` (else ``AWS_ENDPOINT_URL_POLLY`` /
    ``AWS_ENDPOINT_URL``), ``use_fips``/``use_dualstack`` (else
    ``AWS_USE_FIPS_ENDPOINT``/``AWS_USE_DUALSTACK_ENDPOINT``), credentials
    (``credentials=`` an ``AwsCredentials`` or a provider; else the AWS default
    chain, resolved on first use), ``ca_bundle`` (else ``AWS_CA_BUNDLE``),
    ``max_attempts`` (else ``AWS_MAX_ATTEMPTS``, else 3), and the timeouts:
    ``connect_timeout`` (TCP + TLS), ``first_byte_timeout`` (response
    headers) and ``read_timeout`` (no audio that long after the last event
    sent, keep-alives included, or the last audio).

    The client may be used with ``async with``, closed with ``close()``, or
    never closed (e.g. cached with ``functools.cache``); it is not bound to an
    event loop, so it keeps working when a program runs one loop after another.
    """

    def __init__(
        self,
        region: str,
        *,
        pool_size: int = 8,
        endpoint_url: str | None = None,
        use_fips: bool | None = None,
        use_dualstack: bool | None = None,
        credentials: AwsCredentials | CredentialsProvider | None = None,
        profile: str | None = None,
        ca_bundle: str | None = None,
        max_attempts: int | None = None,
        connect_timeout: float = 5.0,
        first_byte_timeout: float = 10.0,
        read_timeout: float = 20.0,
    ) -> None:
        self._config: ClientConfig = client_config(
            region=region,
            pool_size=pool_size,
            endpoint_url=endpoint_url,
            use_fips=use_fips,
            use_dualstack=use_dualstack,
            ca_bundle=ca_bundle,
            max_attempts=max_attempts,
            connect_timeout=connect_timeout,
            first_byte_timeout=first_byte_timeout,
            read_timeout=read_timeout,
        )
        if profile is not None:
            check_str("profile", profile)
        self._credentials: CredentialsProvider
        if credentials is None:
            self._credentials = DefaultCredentialsChain(
                profile=profile, region=self._config.region
            )
        elif isinstance(credentials, AwsCredentials):
            self._credentials = StaticCredentialsProvider(
                credentials.access_key_id,
                credentials.secret_access_key,
                credentials.session_token,
                expiration=credentials.expiration,
            )
        elif callable(getattr(credentials, "get_credentials", None)):
            self._credentials = credentials
        else:
            msg = (
                "credentials must be an AwsCredentials or a provider with "
                f"get_credentials(), got {type(credentials).__name__}"
            )
            raise TypeError(msg)
        self._limiter = LeaseLimiter(self._config.pool_size)
        self._closed = False

    def __repr__(self) -> str:
        return (
            f"PollyStreamingClient(region={self._config.region!r}, "
            f"endpoint_url={self._config.endpoint_url!r}, "
            f"pool_size={self._config.pool_size})"
        )

    @property
    def region(self) -> str:
        return self._config.region

    @property
    def endpoint_url(self) -> str:
        return self._config.endpoint_url

    @property
    def config(self) -> ClientConfig:
        """The resolved configuration (endpoint, timeouts, attempts...)."""
        return self._config

    def pool_stats(self) -> PoolStats:
        """Idle connections to this endpoint; this client's leases and waiters."""
        return PoolStats(
            idle=IDLE_CONNECTIONS.count(self._config.endpoint),
            leased=self._limiter.leased,
            waiting=self._limiter.waiting,
            connections_opened=IDLE_CONNECTIONS.connections_opened,
        )

    async def close(self) -> None:
        """Refuse new streams. Idle connections stay for other clients of the
        process; ``close_idle_connections()`` closes them."""
        self._closed = True

    @staticmethod
    def close_idle_connections() -> None:
        """Close every idle connection in the process-wide cache."""
        IDLE_CONNECTIONS.clear()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # The streaming API -------------------------------------------------------

    def start_speech_synthesis_stream(
        self,
        *,
        text: TextSource,
        voice_id: str,
        engine: str = "generative",
        language_code: str | None = "en-US",
        output_format: str = "mp3",
        sample_rate: str | None = None,
        text_type: Literal["text", "ssml"] = "text",
        lexicon_names: list[str] | None = None,
        use_pool: bool = True,
    ) -> AsyncIterator[bytes]:
        """Synthesize ``text``; yields audio bytes as each audio event arrives.

        ``text`` is a ``str``, or an ``Iterable``/``AsyncIterable`` of pieces
        (e.g. LLM tokens) each sent as soon as it arrives, with whitespace
        keep-alive events when the source is silent (Polly ends input idle for
        5 s); a ``FLUSH`` among the pieces forces synthesis of what is
        buffered. ``text_type="ssml"``: each piece is one whole SSML document
        (never split). ``sample_rate=None``: 24000 for mp3/ogg_vorbis, the
        format's only or default rate otherwise (pcm 16000, ogg_opus 48000,
        mulaw/alaw 8000). ``use_pool=False``: a dedicated connection, closed
        after the call.

        Arguments are checked now, before any I/O. Throttling, 5xx and
        connection failures are retried (``max_attempts``, AWS standard
        backoff with full jitter) only before the first audio byte is yielded.
        """
        request = self._call_input(
            voice_id=voice_id,
            engine=engine,
            language_code=language_code,
            output_format=output_format,
            sample_rate=sample_rate,
            lexicon_names=lexicon_names,
            text_type=text_type,
            use_pool=use_pool,
        )
        if isinstance(text, str):
            check_str("text", text)
        elif not isinstance(text, Iterable | AsyncIterable):  # pyright: ignore[reportUnnecessaryIsInstance] - untyped callers
            msg = f"text must be a str or an iterable of str, got {type(text).__name__}"
            raise TypeError(msg)
        return self._synthesize(
            request, text, ssml=text_type == "ssml", use_pool=use_pool
        )

    @contextlib.asynccontextmanager
    async def open_stream(
        self,
        *,
        voice_id: str,
        engine: str = "generative",
        language_code: str | None = "en-US",
        output_format: str = "mp3",
        sample_rate: str | None = None,
        text_type: Literal["text", "ssml"] = "text",
        lexicon_names: list[str] | None = None,
        use_pool: bool = True,
    ) -> AsyncGenerator[SynthesisStream]:
        """A full-duplex ``SynthesisStream`` (see its docs), for the block."""
        request = self._call_input(
            voice_id=voice_id,
            engine=engine,
            language_code=language_code,
            output_format=output_format,
            sample_rate=sample_rate,
            lexicon_names=lexicon_names,
            text_type=text_type,
            use_pool=use_pool,
        )
        async with self._stream(
            request, ssml=text_type == "ssml", use_pool=use_pool
        ) as stream:
            yield stream

    # Internals ---------------------------------------------------------------

    def _call_input(
        self,
        *,
        voice_id: object,
        engine: object,
        language_code: object,
        output_format: object,
        sample_rate: object,
        lexicon_names: object,
        text_type: object,
        use_pool: object,
    ) -> StartSpeechSynthesisStreamInput:
        """Check a call's arguments (before any I/O) into the input shape."""
        if self._closed:
            raise ClientClosedError("the client is closed")
        if text_type not in {"text", "ssml"}:
            msg = f"text_type must be 'text' or 'ssml', got {text_type!r}"
            raise ValueError(msg)
        if not isinstance(use_pool, bool):
            msg = f"use_pool must be a bool, got {type(use_pool).__name__}"
            raise TypeError(msg)
        return synthesis_input(
            voice_id=voice_id,
            engine=engine,
            language_code=language_code,
            output_format=output_format,
            sample_rate=sample_rate,
            lexicon_names=lexicon_names,
        )

    async def _synthesize(
        self,
        request: StartSpeechSynthesisStreamInput,
        text: TextSource,
        *,
        ssml: bool,
        use_pool: bool,
    ) -> AsyncIterator[bytes]:
        source = _Replayable(text)
        attempt = 0
        while True:
            attempt += 1
            yielded = False
            complete = text if isinstance(text, str) else None
            try:
                async with (
                    self._stream(
                        request, ssml=ssml, use_pool=use_pool, complete_text=complete
                    ) as stream,
                    _Feeder(stream, None if complete is not None else source) as feeder,
                ):
                    try:
                        async for event in stream.events():
                            if isinstance(event, AudioEvent) and event.audio_chunk:
                                source.forget()  # no retry from here on
                                yielded = True
                                yield event.audio_chunk
                    except (ServiceException, TransportError) as exc:
                        feeder.raise_error(cause=exc)
                        raise
                    feeder.raise_error()
                return
            except (ServiceException, TransportError) as exc:
                if (
                    yielded
                    or attempt >= self._config.max_attempts
                    or not _retryable(exc)
                ):
                    raise
                delay = random.uniform(0, min(20.0, 2.0 ** (attempt - 1)))  # noqa: S311
                logger.debug(
                    "attempt %d failed (%s), retrying in %.2f s",
                    attempt,
                    type(exc).__name__,
                    delay,
                )
                await asyncio.sleep(delay)
                source.rewind()

    @contextlib.asynccontextmanager
    async def _stream(
        self,
        request: StartSpeechSynthesisStreamInput,
        *,
        ssml: bool,
        use_pool: bool,
        complete_text: str | None = None,
    ) -> AsyncGenerator[SynthesisStream]:
        """Lease a connection, start the request, and clean up however it ends.

        ``complete_text``: the whole input is known, so every event (the text,
        the close, the final envelope) is signed up front and goes out in one
        write right after the headers.
        """
        config = self._config
        await self._limiter.acquire()
        connection: Connection | None = None
        response: ResponseStream | None = None
        outbox: _Outbox | None = None
        reusable = False
        try:
            credentials = await self._credentials.get_credentials()
            connection = IDLE_CONNECTIONS.take(config.endpoint) if use_pool else None
            if connection is None:
                connection = await connect(
                    config.endpoint, timeout=config.connect_timeout
                )
                IDLE_CONNECTIONS.opened()
            headers, seed = await sign_request(
                method=protocol.OPERATION.method,
                host=config.endpoint.host,
                port=config.endpoint.port,
                path=protocol.OPERATION.path,
                headers=protocol.request_headers(request),
                credentials=credentials,
                region=config.region,
                service=protocol.OPERATION.signing_name,
            )
            outbox = _Outbox()
            signer = EventSigner(
                seed=seed,
                credentials=credentials,
                region=config.region,
                service=protocol.OPERATION.signing_name,
            )
            if complete_text is not None:
                pieces = [complete_text] if ssml else split_text(complete_text)
                for piece in pieces:
                    outbox.put(
                        await signer.envelope(protocol.text_event(piece, ssml=ssml))
                    )
                outbox.put(await signer.envelope(protocol.close_event()))
                outbox.put(await signer.end())
                outbox.close()
            response = connection.request(
                protocol.OPERATION.method,
                protocol.OPERATION.path,
                [
                    (":authority", config.endpoint.authority),
                    *((k, v) for k, v in headers if k != "host"),
                ],
                outbox.body(),
            )
            status, response_headers = await response.status(config.first_byte_timeout)
            request_id = protocol.request_id_of(response_headers)
            if status != 200:
                body = bytearray()
                while chunk := await response.next_chunk(config.read_timeout):
                    body += chunk
                raise protocol.error_response(status, response_headers, bytes(body))
            stream = SynthesisStream(
                request_id=request_id,
                response=response,
                signer=signer,
                outbox=outbox,
                read_timeout=config.read_timeout,
                ssml=ssml,
                input_closed=complete_text is not None,
            )
            yield stream
            if stream.finished:
                # Closed in both directions before the lease ends (one stream
                # per connection at a time, as Polly allows).
                await stream.close_input()
                await response.completed(config.read_timeout)
                reusable = use_pool
        finally:
            if outbox is not None and not outbox.closed:
                outbox.close()
            if connection is not None and not reusable:
                await connection.close()
            if response is not None:
                await response.drain()
            if connection is not None and reusable:
                IDLE_CONNECTIONS.put(connection)
            self._limiter.release()


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, ThrottlingException | ServiceFailureException):
        return True
    if isinstance(exc, TransportError):
        return exc.retryable
    return False


class _Replayable:
    """A text source that can be replayed from the start until audio was heard."""

    def __init__(self, text: TextSource) -> None:
        self._text = text
        self._sent: list[str | object] | None = []
        self._iterator: AsyncIterator[str | object] | None = None
        self._replay: list[str | object] = []

    def forget(self) -> None:
        self._sent = None

    def rewind(self) -> None:
        self._replay = list(self._sent or [])
        self._sent = []

    async def pieces(self) -> AsyncGenerator[str | object]:
        while self._replay:
            piece = self._replay.pop(0)
            if self._sent is not None:
                self._sent.append(piece)
            yield piece
        if self._iterator is None:
            self._iterator = _aiter(self._text)
        async for piece in self._iterator:
            if self._sent is not None:
                self._sent.append(piece)
            yield piece


async def _aiter(text: TextSource) -> AsyncIterator[str | object]:
    if isinstance(text, str):
        yield text
    elif isinstance(text, AsyncIterable):
        async for piece in text:
            yield piece
    else:
        for piece in text:
            yield piece


class _Feeder:
    """Sends the text source into a stream, with keep-alives; owned by the call.

    If the source fails (or yields something that is not text), the request
    body is ended at once, so the stream ends too, and the caller gets the
    source's own error.
    """

    def __init__(self, stream: SynthesisStream, source: _Replayable | None) -> None:
        self._stream = stream
        self._source = source
        self._task: asyncio.Task[None] | None = None
        self.error: BaseException | None = None

    async def __aenter__(self) -> Self:
        if self._source is not None:  # None: the text was sent up front
            self._task = asyncio.create_task(self._run(), name="polly-text-feeder")
        return self

    async def __aexit__(self, *exc: object) -> None:
        task = self._task
        if task is not None and not task.done():
            task.cancel()
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def raise_error(self, cause: BaseException | None = None) -> None:
        """Raise the text source's own error, if it failed."""
        if self.error is not None:
            raise self.error from cause

    async def _run(self) -> None:
        try:
            await self._feed()
        except Exception as exc:  # the caller's source failed: end the body
            self.error = exc
            self._stream.stop_sending()

    async def _feed(self) -> None:
        stream = self._stream
        assert self._source is not None  # noqa: S101 - only started with a source
        pieces = self._source.pieces()
        pending: asyncio.Task[str | object] | None = None
        try:
            while True:
                if pending is None:
                    pending = asyncio.ensure_future(anext(pieces))
                done, _ = await asyncio.wait({pending}, timeout=KEEPALIVE_INTERVAL)
                if not done:
                    await stream.keepalive()
                    continue
                task, pending = pending, None
                try:
                    piece = task.result()
                except StopAsyncIteration:
                    break
                if piece is FLUSH:
                    await stream.flush()
                elif isinstance(piece, str):
                    if piece:
                        await stream.send(piece)
                else:
                    kind = type(piece).__name__
                    msg = f"text pieces must be str (or FLUSH), got {kind}"
                    raise TypeError(msg)
            await stream.close_input()
        finally:
            if pending is not None:
                pending.cancel()
                with contextlib.suppress(BaseException):
                    await pending
            await pieces.aclose()
