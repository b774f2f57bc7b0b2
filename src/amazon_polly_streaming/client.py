"""``PollyStreamingClient``: the public face, on the session, pool and transport."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Callable,
    Coroutine,
    Iterable,
)
from types import TracebackType
from typing import Any, Literal, Self

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
from ._crt_native import available as reset_available
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
from .metrics import StreamMetrics, Telemetry, start_telemetry
from .pool import IDLE_CONNECTIONS, LeaseLimiter, PoolStats
from .signing import EventSigner, sign_request
from .text import FLUSH, KEEPALIVE_TEXT, ends_sentence, split_text
from .transport import Connection, ResponseStream, connect

logger = logging.getLogger("amazon_polly_streaming")

type TextSource = str | Iterable[str | object] | AsyncIterable[str | object]
"""``text``: a string, or pieces (``str`` or ``FLUSH``) from a (async) iterable."""

KEEPALIVE_INTERVAL = 3.0
"""Seconds a text source may be silent before a keep-alive (Polly allows 5 s)."""

COMPLETE_TEXT_LIMIT = 6000
"""A ``str`` up to this long is signed and sent in one write with the
request; a longer one is fed sentence by sentence, so it can roll over."""

RESET_CONFIRM_TIMEOUT = 2.0
"""Seconds to wait for awscrt to confirm a reset stream is over before the
connection is trusted again (else it is closed)."""


class SynthesisStream:
    """A full-duplex synthesis stream: send text while audio comes back.

    Get one from ``PollyStreamingClient.open_stream()`` (an async context
    manager). ``send`` text (``flush=True`` forces synthesis of what Polly has
    buffered), ``close_input`` when done, and iterate ``events()`` for typed
    events: ``AudioEvent`` as audio arrives, then ``StreamClosedEvent`` (its
    ``request_characters`` is also on ``self.request_characters``). A service
    error arriving mid-stream is raised from ``events()`` where it arrived;
    a response that ends without ``StreamClosedEvent`` raises
    ``StreamInterruptedError``. While the input is open and no text is sent
    for ``KEEPALIVE_INTERVAL`` seconds, a whitespace keep-alive goes out
    (Polly ends input idle for 5 s).

    **Barge-in:** ``cancel()`` (from any task), or leaving the block early,
    stops the stream at once: the HTTP/2 stream is reset, ``events()`` ends
    without error and yields nothing more, the lease is released and the
    connection is reused (closed instead when in doubt). ``metrics`` holds the
    session's figures (``StreamMetrics``).
    """

    def __init__(
        self,
        *,
        request_id: str | None,
        response: ResponseStream,
        signer: EventSigner,
        read_timeout: float,
        ssml: bool,
        metrics: StreamMetrics,
        telemetry: Telemetry | None = None,
        input_closed: bool = False,
    ) -> None:
        self.request_id = request_id
        self.request_characters: int | None = None
        self.metrics = metrics
        self._telemetry = telemetry
        self._response = response
        self._signer = signer
        self._read_timeout = read_timeout
        self._ssml = ssml
        self._parser = protocol.ResponseParser(request_id=request_id)
        self._input_closed = input_closed
        self._finished = False
        self._cancelled = False
        self.opened = time.monotonic()
        self._last_activity = self.opened
        self.last_sent = self.opened
        self.at_sentence_end = False
        """Whether the text sent so far ends a sentence (a rollover point)."""

    @property
    def input_closed(self) -> bool:
        """Whether ``close_input`` was called."""
        return self._input_closed

    @property
    def finished(self) -> bool:
        """Whether ``StreamClosedEvent`` arrived."""
        return self._finished

    @property
    def cancelled(self) -> bool:
        """Whether ``cancel()`` stopped the stream."""
        return self._cancelled

    def cancel(self) -> None:
        """Barge-in: stop now. The HTTP/2 stream is reset, ``events()`` ends
        quietly, and no more text can be sent. Does nothing once the stream
        has finished; calling it again does nothing."""
        if self._cancelled or self._finished:
            return
        self._cancelled = True
        self._input_closed = True
        self._response.cancel()
        logger.debug("stream cancelled request_id=%s", self.request_id)

    async def send(self, text: str, *, flush: bool = False) -> None:
        """Send text (long plain text is split at sentence boundaries)."""
        check_str("text", text, allow_empty=True)
        if self._input_closed:
            msg = "send() after close_input() or cancel()"
            raise RuntimeError(msg)
        pieces = [text] if self._ssml else split_text(text)
        for i, piece in enumerate(pieces):
            last = i == len(pieces) - 1
            await self._send_event(
                protocol.text_event(piece, ssml=self._ssml, flush=flush and last)
            )
        if text.strip():
            self.at_sentence_end = flush or self._ssml or ends_sentence(text)

    async def flush(self) -> None:
        """Force Polly to synthesize what it has buffered, now."""
        await self.send(KEEPALIVE_TEXT, flush=True)
        self.at_sentence_end = True

    async def keepalive(self) -> None:
        """A whitespace event that keeps an idle input alive (Polly's 5 s limit).

        While the text source is merely slow (a person typing, a model
        thinking), no audio is due: ``read_timeout`` counts from the last
        event sent, keep-alives included.
        """
        if not self._input_closed:
            await self._send_event(protocol.text_event(KEEPALIVE_TEXT))

    async def close_input(self) -> None:
        """No more text: Polly synthesizes the rest and ends the stream."""
        if self._input_closed:
            return
        self._input_closed = True
        close = await self._signer.envelope(protocol.close_event())
        self._response.write(close + await self._signer.end(), end=True)
        self._last_activity = self.last_sent = time.monotonic()

    def stop_sending(self) -> None:
        """End the request body now, without ``CloseStreamEvent`` (an abort:
        the service answers with an error and the stream ends)."""
        self._input_closed = True
        self._response.write(None, end=True)

    async def _send_event(self, event: bytes) -> None:
        self._response.write(await self._signer.envelope(event))
        self._last_activity = self.last_sent = time.monotonic()

    async def events(
        self,
    ) -> AsyncIterator[AudioEvent | StreamClosedEvent | UnknownEvent]:
        """The response events, as they arrive (nothing more after ``cancel()``)."""
        parser = self._parser
        metrics = self.metrics
        telemetry = self._telemetry
        while not self._finished and not self._cancelled:
            try:
                chunk = await self._response.next_chunk(self._read_timeout)
            except ResponseTimeoutError:
                if self._cancelled:
                    return
                if time.monotonic() - self._last_activity < self._read_timeout:
                    continue  # text is still arriving: no audio is due yet
                msg = (
                    f"no audio for {self._read_timeout:g} s after the last text "
                    "(read_timeout)"
                )
                raise ResponseTimeoutError(msg, request_id=self.request_id) from None
            if self._cancelled:
                return
            if not chunk:
                parser.end()  # raises StreamInterruptedError without StreamClosedEvent
                return
            now = self._last_activity = time.monotonic()
            for event in parser.feed(chunk):
                if self._cancelled:
                    return
                if isinstance(event, AudioEvent):
                    if event.audio_chunk:
                        metrics.audio(len(event.audio_chunk), now)
                        if telemetry is not None:
                            telemetry.first_audio()
                elif isinstance(event, StreamClosedEvent):
                    self.request_characters = event.request_characters
                    metrics.closed(event.request_characters)
                    self._finished = True
                yield event
            parser.raise_pending()  # an error right behind that audio: now

    async def audio(self) -> AsyncIterator[bytes]:
        """Just the audio bytes, as they arrive."""
        async for event in self.events():
            if isinstance(event, AudioEvent) and event.audio_chunk:
                yield event.audio_chunk


class AudioStream(AsyncGenerator[bytes]):
    """What ``start_speech_synthesis_stream`` returns: the audio bytes as an
    async iterator, with the call's ``metrics`` and barge-in.

    ``cancel()`` (from any task) stops the call at once: the current HTTP/2
    stream is reset, iteration ends without error, the lease is released and
    the connection is reused. ``aclose()`` (or ``async with``) does the same
    from the consuming task. Breaking out of ``async for`` without either
    leaves the stream to be stopped when the iterator is garbage-collected
    (asyncio then closes it): prefer ``async with`` or ``aclose()``.
    """

    __slots__ = ("_call", "_generator")

    def __init__(self, call: _Call, generator: AsyncGenerator[bytes]) -> None:
        self._call = call
        self._generator = generator

    @property
    def metrics(self) -> StreamMetrics:
        """The call's figures so far (final once iteration ended)."""
        return self._call.metrics

    @property
    def request_id(self) -> str | None:
        """The request id of the (latest) Polly stream, once it answered."""
        return self._call.metrics.request_id

    def __aiter__(self) -> Self:
        return self

    def __anext__(self) -> Coroutine[Any, Any, bytes]:
        return self._generator.__anext__()  # no frame of our own per chunk

    def asend(self, value: None) -> Coroutine[Any, Any, bytes]:
        return self._generator.asend(value)

    def athrow(self, *args: Any) -> Coroutine[Any, Any, bytes]:
        return self._generator.athrow(*args)

    def cancel(self) -> None:
        """Barge-in: stop now (see the class docs)."""
        self._call.cancel()

    async def aclose(self) -> None:
        """Stop (if still running) and release everything; idempotent."""
        self._call.cancel()
        await self._generator.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class _Call:
    """One call's shared state: its metrics, and the session to cancel."""

    __slots__ = ("cancelled", "metrics", "session")

    def __init__(self, metrics: StreamMetrics) -> None:
        self.metrics = metrics
        self.session: SynthesisStream | None = None
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True
        if self.session is not None:
            self.session.cancel()


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

    Voice-agent options: ``min_idle_connections`` keeps that many connections
    open and idle, ready for the next utterance (see ``prewarm``);
    ``max_idle_time`` is how long an idle connection is trusted (warm ones
    are replaced at three quarters of it, before a server would close them);
    ``rollover_after`` (seconds, ``None`` to disable) continues a long-form
    call on a fresh stream at the first sentence boundary after that long,
    ahead of Polly's 10-minute stream limit; ``on_metrics`` is called with
    each call's ``StreamMetrics`` when it ends.

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
        min_idle_connections: int = 0,
        max_idle_time: float = 60.0,
        rollover_after: float | None = 540.0,
        on_metrics: Callable[[StreamMetrics], object] | None = None,
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
            min_idle_connections=min_idle_connections,
            max_idle_time=max_idle_time,
            rollover_after=rollover_after,
        )
        if on_metrics is not None and not callable(on_metrics):
            msg = f"on_metrics must be callable, got {type(on_metrics).__name__}"
            raise TypeError(msg)
        self._on_metrics = on_metrics
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
        self._keeper: asyncio.Task[None] | None = None

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
        """Refuse new streams and stop keeping connections warm. Idle
        connections stay for other clients of the process;
        ``close_idle_connections()`` closes them."""
        self._closed = True
        keeper, self._keeper = self._keeper, None
        if keeper is not None and not keeper.done():
            keeper.cancel()
            if keeper.get_loop() is asyncio.get_running_loop():
                with contextlib.suppress(asyncio.CancelledError):
                    await keeper

    async def prewarm(self, connections: int = 1) -> int:
        """Get ready for the first utterance: resolve credentials, and open
        and TLS-handshake connections until ``connections`` idle ones wait
        for this endpoint. Returns how many were opened.

        With ``min_idle_connections`` set, this also starts keeping that many
        warm (a task owned by the client: ``close()`` or ``async with``
        stops it).
        """
        if isinstance(connections, bool) or not isinstance(connections, int):  # pyright: ignore[reportUnnecessaryIsInstance] - untyped callers
            msg = f"connections must be an int, got {type(connections).__name__}"
            raise TypeError(msg)
        if not 1 <= connections <= self._config.pool_size:
            msg = (
                f"connections must be between 1 and pool_size "
                f"({self._config.pool_size}), got {connections}"
            )
            raise ValueError(msg)
        if self._closed:
            raise ClientClosedError("the client is closed")
        await self._credentials.get_credentials()
        reset_available()  # load barge-in's reset now, not at the first barge-in
        opened = await self._fill(connections)
        self._ensure_keeper()
        return opened

    async def _fill(self, target: int) -> int:
        """Open connections until ``target`` idle ones wait (concurrently)."""
        config = self._config
        missing = target - IDLE_CONNECTIONS.count(config.endpoint)
        if missing <= 0:
            return 0
        results = await asyncio.gather(
            *(
                connect(config.endpoint, timeout=config.connect_timeout)
                for _ in range(missing)
            ),
            return_exceptions=True,
        )
        error: BaseException | None = None
        opened = 0
        for result in results:
            if isinstance(result, BaseException):
                error = error or result
                continue
            opened += 1
            IDLE_CONNECTIONS.opened()
            IDLE_CONNECTIONS.put(result, config.max_idle_time)
        logger.debug("opened %d warm connection(s) to %s", opened, config.endpoint_url)
        if error is not None:
            raise error
        return opened

    def _adopt(self, connection: Connection) -> None:
        """A connection whose caller gave up while it was being made (a
        barge-in during connect): idle, for the next call, unless
        ``pool_size`` connections already wait (then it is closed)."""
        IDLE_CONNECTIONS.opened()
        if IDLE_CONNECTIONS.count(connection.endpoint) >= self._config.pool_size:
            connection.close_soon()
            return
        IDLE_CONNECTIONS.put(connection, self._config.max_idle_time)

    def _ensure_keeper(self) -> None:
        if self._config.min_idle_connections == 0 or self._closed:
            return
        keeper = self._keeper
        if keeper is None or keeper.done():
            self._keeper = asyncio.create_task(
                self._keep_warm(), name="polly-keep-warm"
            )

    async def _keep_warm(self) -> None:
        """Keep ``min_idle_connections`` open and fresh until the client closes."""
        config = self._config
        refresh_after = config.max_idle_time * 0.75
        tick = min(5.0, config.max_idle_time / 8)
        while True:
            stale = IDLE_CONNECTIONS.take_stale(config.endpoint, refresh_after)
            try:
                await self._fill(config.min_idle_connections)
            except TransportError as exc:  # the next tick tries again
                logger.debug("keeping connections warm failed: %r", exc)
            for connection in stale:
                await connection.close()
            await asyncio.sleep(tick)

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
    ) -> AudioStream:
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
        backoff with full jitter) only before the first audio byte of a
        stream is yielded. Text that would outlive Polly's 10-minute stream
        limit continues on a fresh stream at a sentence boundary
        (``rollover_after``). The returned ``AudioStream`` also has
        ``metrics``, ``cancel()`` (barge-in) and ``aclose()``.
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
        call = _Call(StreamMetrics())
        return AudioStream(
            call,
            self._synthesize(
                request, text, call, ssml=text_type == "ssml", use_pool=use_pool
            ),
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
        """A full-duplex ``SynthesisStream`` (see its docs), for the block.

        One Polly stream (no retries, no rollover: the caller drives it).
        Keep-alives go out while the input is idle; the session's metrics are
        final when the block ends, and go to ``on_metrics``.
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
        metrics = StreamMetrics()
        telemetry = self._telemetry(request)
        error: BaseException | None = None
        stream: SynthesisStream | None = None
        try:
            metrics.attempts = 1
            async with (
                self._stream(
                    request,
                    ssml=text_type == "ssml",
                    use_pool=use_pool,
                    metrics=metrics,
                    telemetry=telemetry,
                ) as stream,
                _keepalive(stream),
            ):
                yield stream
        except BaseException as exc:
            error = exc
            raise
        finally:
            cancelled = stream is not None and stream.cancelled
            self._finish(metrics, telemetry, error, cancelled=cancelled)

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

    def _telemetry(self, request: StartSpeechSynthesisStreamInput) -> Telemetry | None:
        return start_telemetry(
            region=self._config.region,
            host=self._config.endpoint.host,
            voice_id=str(request.voice_id),
            output_format=str(request.output_format),
        )

    def _finish(
        self,
        metrics: StreamMetrics,
        telemetry: Telemetry | None,
        error: BaseException | None,
        *,
        cancelled: bool,
    ) -> None:
        """Close a call's metrics, then report them (callback, OpenTelemetry)."""
        if cancelled or isinstance(error, asyncio.CancelledError | GeneratorExit):
            metrics.finish("cancelled")
        elif error is not None:
            metrics.finish("failed", error)
        else:
            metrics.finish("completed")
        logger.debug(
            "call ended outcome=%s request_ids=%s attempts=%d ttfa=%s audio_bytes=%d",
            metrics.outcome,
            ",".join(metrics.request_ids) or "-",
            metrics.attempts,
            "-"
            if metrics.time_to_first_audio is None
            else f"{metrics.time_to_first_audio * 1000:.1f}ms",
            metrics.audio_bytes,
        )
        if telemetry is not None:
            telemetry.end(metrics)
        if self._on_metrics is not None:
            try:
                self._on_metrics(metrics)
            except Exception:  # a reporting hook must not break the audio
                logger.warning("on_metrics callback failed", exc_info=True)

    async def _synthesize(
        self,
        request: StartSpeechSynthesisStreamInput,
        text: TextSource,
        call: _Call,
        *,
        ssml: bool,
        use_pool: bool,
    ) -> AsyncGenerator[bytes]:
        metrics = call.metrics
        telemetry = self._telemetry(request)
        error: BaseException | None = None
        source: _Replayable | None = None
        try:
            complete, source = _plan(text, ssml=ssml)
            rollover = self._config.rollover_after
            attempt = 0
            while not call.cancelled:  # a Polly stream per attempt and segment
                attempt += 1
                metrics.attempts += 1
                yielded = False
                try:
                    async with (
                        self._stream(
                            request,
                            ssml=ssml,
                            use_pool=use_pool,
                            complete_text=complete,
                            metrics=metrics,
                            telemetry=telemetry,
                        ) as stream,
                        _Feeder(
                            stream, None if complete is not None else source, rollover
                        ) as feeder,
                    ):
                        call.session = stream
                        if call.cancelled:
                            stream.cancel()
                        try:
                            async for event in stream.events():
                                if isinstance(event, AudioEvent) and event.audio_chunk:
                                    if not yielded:
                                        source.forget()  # no retry from here on
                                        yielded = True
                                    yield event.audio_chunk
                        except (ServiceException, TransportError) as exc:
                            feeder.raise_error(cause=exc)
                            raise
                        feeder.raise_error()
                        call.session = None
                except (ServiceException, TransportError) as exc:
                    call.session = None
                    if call.cancelled and isinstance(exc, TransportError):
                        return  # the reset of a barge-in, seen before any event
                    if (
                        yielded
                        or call.cancelled
                        or attempt >= self._config.max_attempts
                        or not _retryable(exc)
                    ):
                        raise
                    await _backoff(attempt, exc)
                    source.rewind()
                    continue
                if not (feeder.rolled_over and stream.finished):
                    return
                attempt = 0
                source.next_segment()
                logger.debug(
                    "rolling over to a fresh stream after %d segment(s)",
                    metrics.segments,
                )
        except BaseException as exc:
            error = exc
            raise
        finally:
            if source is not None:
                await source.discard()
            self._finish(metrics, telemetry, error, cancelled=call.cancelled)

    async def _start(
        self,
        connection: Connection,
        request: StartSpeechSynthesisStreamInput,
        credentials: AwsCredentials,
        complete_text: str | None,
        *,
        ssml: bool,
    ) -> tuple[ResponseStream, EventSigner]:
        """Sign the request and open its HTTP/2 stream; with ``complete_text``,
        every event is signed now and the whole body goes in one write right
        behind the headers."""
        config = self._config
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
        signer = EventSigner(
            seed=seed,
            credentials=credentials,
            region=config.region,
            service=protocol.OPERATION.signing_name,
        )
        body: list[bytes] = []
        if complete_text is not None:
            pieces = [complete_text] if ssml else split_text(complete_text)
            for piece in pieces:
                body.append(
                    await signer.envelope(protocol.text_event(piece, ssml=ssml))
                )
            body.append(await signer.envelope(protocol.close_event()))
            body.append(await signer.end())
        response = connection.request(
            protocol.OPERATION.method,
            protocol.OPERATION.path,
            [(":authority", config.endpoint.authority), *headers],
        )
        if body:
            response.write(b"".join(body), end=True)
        return response, signer

    @contextlib.asynccontextmanager
    async def _stream(
        self,
        request: StartSpeechSynthesisStreamInput,
        *,
        ssml: bool,
        use_pool: bool,
        metrics: StreamMetrics,
        telemetry: Telemetry | None,
        complete_text: str | None = None,
    ) -> AsyncGenerator[SynthesisStream]:
        """Lease a connection, start the request, and clean up however it ends.

        ``complete_text``: the whole input is known, so every event (the text,
        the close, the final envelope) is signed up front and goes out in one
        write right after the headers.

        Leaving early (barge-in, an error, a cancelled task) resets the
        HTTP/2 stream; once awscrt confirms the stream is over, the
        connection goes back to the pool. It is closed instead when the exit
        was a transport failure or a timeout, or the reset cannot be made or
        confirmed (in doubt).
        """
        config = self._config
        await self._limiter.acquire()
        connection: Connection | None = None
        response: ResponseStream | None = None
        stream: SynthesisStream | None = None
        reusable = False
        exit_error: BaseException | None = None
        try:
            credentials = await self._credentials.get_credentials()
            connection = IDLE_CONNECTIONS.take(config.endpoint) if use_pool else None
            reused = connection is not None
            if connection is None:
                connection = await connect(
                    config.endpoint,
                    timeout=config.connect_timeout,
                    adopt=self._adopt if use_pool else None,
                )
                IDLE_CONNECTIONS.opened()
            response, signer = await self._start(
                connection, request, credentials, complete_text, ssml=ssml
            )
            status, response_headers = await response.status(config.first_byte_timeout)
            request_id = protocol.request_id_of(response_headers)
            metrics.stream_started(request_id, reused=reused)
            logger.debug(
                "stream started request_id=%s status=%d reused_connection=%s",
                request_id,
                status,
                reused,
            )
            if status != 200:
                raise await _error_from(
                    response, status, response_headers, config.read_timeout
                )
            metrics.segments += 1
            stream = SynthesisStream(
                request_id=request_id,
                response=response,
                signer=signer,
                read_timeout=config.read_timeout,
                ssml=ssml,
                metrics=metrics,
                telemetry=telemetry,
                input_closed=complete_text is not None,
            )
            yield stream
            if stream.finished:
                # Closed in both directions before the lease ends (one stream
                # per connection at a time, as Polly allows).
                await stream.close_input()
                await response.completed(config.read_timeout)
                reusable = use_pool
        except BaseException as exc:
            exit_error = exc
            raise
        finally:
            if (
                not reusable
                and use_pool
                and response is not None
                and connection is not None
                and (response.cancelled or not isinstance(exit_error, TransportError))
            ):
                reusable = (
                    await response.reset_and_wait(RESET_CONFIRM_TIMEOUT)
                    and connection.is_open
                )
            if connection is not None and not reusable:
                await connection.close()
            if connection is not None and reusable:
                IDLE_CONNECTIONS.put(connection, config.max_idle_time)
            self._limiter.release()
            if config.min_idle_connections:
                self._ensure_keeper()


async def _error_from(
    response: ResponseStream,
    status: int,
    headers: list[tuple[str, str]],
    read_timeout: float,
) -> Exception:
    """The error an HTTP error response stands for (its body read whole)."""
    body = bytearray()
    while chunk := await response.next_chunk(read_timeout):
        body += chunk
    return protocol.error_response(status, headers, bytes(body))


@contextlib.asynccontextmanager
async def _keepalive(stream: SynthesisStream) -> AsyncGenerator[None]:
    """Keep-alives for an ``open_stream`` session while its input is idle."""

    async def run() -> None:
        while not stream.input_closed:
            due = stream.last_sent + KEEPALIVE_INTERVAL - time.monotonic()
            if due > 0:
                await asyncio.sleep(due)
                continue
            await stream.keepalive()

    task = asyncio.create_task(run(), name="polly-keepalive")
    try:
        yield
    finally:
        task.cancel()
        await asyncio.wait({task})
        if not task.cancelled() and (failure := task.exception()) is not None:
            logger.debug("keep-alive failed: %r", failure)


def _plan(text: TextSource, *, ssml: bool) -> tuple[str | None, _Replayable]:
    """A short ``str`` goes in one write with the request (``complete``); any
    other text is fed piece by piece (a long ``str`` sentence by sentence), so
    it can roll over."""
    if isinstance(text, str):
        if len(text) <= COMPLETE_TEXT_LIMIT:
            return text, _Replayable(text)
        return None, _Replayable([text] if ssml else split_text(text))
    return None, _Replayable(text)


async def _backoff(attempt: int, exc: BaseException) -> None:
    """AWS standard backoff with full jitter, before attempt ``attempt + 1``."""
    delay = random.uniform(0, min(20.0, 2.0 ** (attempt - 1)))  # noqa: S311
    logger.debug(
        "attempt %d failed (%s), retrying in %.2f s", attempt, type(exc).__name__, delay
    )
    await asyncio.sleep(delay)


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, ThrottlingException | ServiceFailureException):
        return True
    if isinstance(exc, TransportError):
        return exc.retryable
    return False


class _Replayable:
    """A text source that can be replayed from the start of the current
    segment until audio was heard; the next segment (a rollover) starts
    where the previous one stopped."""

    def __init__(self, text: TextSource) -> None:
        self._text = text
        self._sent: list[str | object] | None = []
        self._iterator: AsyncIterator[str | object] | None = None
        self._replay: list[str | object] = []
        self.inflight: asyncio.Future[str | object] | None = None
        """A piece being awaited when the last segment rolled over."""

    def forget(self) -> None:
        self._sent = None

    def rewind(self) -> None:
        self._replay = list(self._sent or [])
        self._sent = []

    def next_segment(self) -> None:
        self._sent = []

    async def discard(self) -> None:
        """Stop awaiting a piece left in flight (the call is over)."""
        pending, self.inflight = self.inflight, None
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending

    def record(self, piece: str | object) -> None:
        if self._sent is not None:
            self._sent.append(piece)

    def next_piece(self) -> asyncio.Future[str | object]:
        """The next piece, as a future (``StopAsyncIteration`` at the end);
        a piece left in flight by a rollover comes first."""
        if self.inflight is not None:
            pending, self.inflight = self.inflight, None
            return pending
        return asyncio.ensure_future(self._next())

    async def _next(self) -> str | object:
        if self._replay:
            piece = self._replay.pop(0)
            self.record(piece)
            return piece
        if self._iterator is None:
            self._iterator = _aiter(self._text)
        piece = await anext(self._iterator)
        self.record(piece)
        return piece


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

    **Rollover:** once the stream is ``rollover`` seconds old, at the first
    sentence boundary (the text sent so far ends a sentence, or was
    flushed), the feeder closes this stream's input and stops
    (``rolled_over``): Polly finishes what it has, and the call continues the
    source on a fresh stream. Nothing is lost (a piece being awaited is
    handed over) and nothing is repeated.
    """

    def __init__(
        self,
        stream: SynthesisStream,
        source: _Replayable | None,
        rollover: float | None = None,
    ) -> None:
        self._stream = stream
        self._source = source
        self._rollover = rollover
        self._task: asyncio.Task[None] | None = None
        self.error: BaseException | None = None
        self.rolled_over = False

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

    def _due_for_rollover(self) -> bool:
        stream = self._stream
        return (
            self._rollover is not None
            and stream.at_sentence_end
            and time.monotonic() - stream.opened >= self._rollover
        )

    async def _feed(self) -> None:
        stream = self._stream
        source = self._source
        assert source is not None  # noqa: S101 - only started with a source
        pending: asyncio.Future[str | object] | None = None
        try:
            while True:
                if self._due_for_rollover():
                    source.inflight, pending = pending, None
                    self.rolled_over = True
                    break
                if pending is None:
                    pending = source.next_piece()
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
