"""A LiveKit Agents TTS on Polly's bidirectional streaming synthesis.

Install with ``pip install "amazon-polly-streaming[livekit]"``; this module is
imported only by code that opts in, so it imports ``livekit.agents`` at the
top and says how to install it when it is missing.

``PollyTTS`` is a ``livekit.agents.tts.TTS`` with ``streaming=True``:

* ``stream()`` runs ONE Polly stream (``client.open_stream``) for the LiveKit
  stream: each pushed text piece (an LLM token) goes to Polly the moment it
  arrives, and audio comes back while text is still going out. Two tasks owned
  by ``_run`` do this, a sender and a receiver; however ``_run`` ends
  (success, error, cancellation), both are finished before it returns.
* ``synthesize()`` sends the whole text at once
  (``client.start_speech_synthesis_stream``, which signs everything up front
  and sends the request in one write).
* Audio is pcm (16-bit little-endian mono) at ``sample_rate``, pushed to
  LiveKit's ``AudioEmitter`` as each audio event arrives.
* ``aclose()`` of a LiveKit stream, or cancelling it (barge-in: the user
  speaks over the agent), calls ``SynthesisStream.cancel()``: the HTTP/2
  stream is reset at once, Polly stops synthesizing, the lease is released.

Errors become LiveKit's API errors so that its retry logic
(``APIConnectOptions.max_retry``) and ``tts.FallbackAdapter`` work:

==================================  ==========================================
ours                                LiveKit
==================================  ==========================================
``ThrottlingException``             ``APIStatusError`` 429, retryable
``ServiceFailureException``         ``APIStatusError`` 500, retryable
``ValidationException``             ``APIStatusError`` 400, not retryable
``ServiceQuotaExceededException``   ``APIStatusError`` 402, not retryable
other ``ServiceException``          ``APIStatusError`` 500, not retryable
``UnexpectedResponseError``         ``APIStatusError`` with its HTTP status
``ConnectTimeoutError``,            ``APITimeoutError``, retryable
``ResponseTimeoutError``
other ``TransportError``            ``APIConnectionError`` (``TlsError`` is
                                    not retryable)
``CredentialsError``                ``APIConnectionError`` (not retryable
                                    when no source is configured at all)
==================================  ==========================================

``status_code`` is the status Polly's model gives the error (an exception
event arrives inside a 200 response and has none of its own), except for
throttling: the model says 400, but LiveKit treats every 4xx other than 408,
429 and 499 as permanent, so throttling is reported as 429, which is what it
means in HTTP. ``request_id`` is Polly's request id; the original exception
is the ``__cause__`` (``reason``/``fields`` of a ``ValidationException``...).

Retries belong to LiveKit: a client built here has ``max_attempts=1``, so a
throttled request is not retried by both layers (a client passed in keeps its
own setting). LiveKit retries a stream only while no audio was pushed, and
replays the text pushed so far on a new Polly stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, replace
from typing import Final, Never

try:
    from livekit.agents import (
        DEFAULT_API_CONNECT_OPTIONS,
        APIConnectionError,
        APIConnectOptions,
        APIError,
        APIStatusError,
        APITimeoutError,
        tts,
        utils,
    )
    from livekit.agents.types import NOT_GIVEN, NotGivenOr
except ImportError as _missing:  # pragma: no branch - depends on the environment
    if (_missing.name or "").partition(".")[0] != "livekit":
        raise  # LiveKit is there but broken: its own error says why
    _msg = (
        "amazon_polly_streaming.adapters.livekit needs LiveKit Agents: "
        'pip install "amazon-polly-streaming[livekit]"'
    )
    raise ImportError(_msg) from _missing

from ..client import PollyStreamingClient, SynthesisStream
from ..config import synthesis_input
from ..credentials import (
    AwsCredentials,
    CredentialsError,
    CredentialsProvider,
    NoCredentialsError,
)
from ..errors import (
    ClientClosedError,
    ConnectTimeoutError,
    ResponseTimeoutError,
    TransportError,
    UnexpectedResponseError,
)
from ..exceptions import (
    ServiceException,
    ServiceFailureException,
    ThrottlingException,
)
from ._client import client_from

__all__ = [
    "PCM_SAMPLE_RATES",
    "PollyChunkedStream",
    "PollySynthesizeStream",
    "PollyTTS",
]

logger = logging.getLogger("amazon_polly_streaming.livekit")

PCM_SAMPLE_RATES: Final = (8000, 16000)
"""The pcm sample rates Polly documents ("Valid values for pcm are 8000 and
16000"); the emulator rejects any other, as Polly may."""

DEFAULT_SAMPLE_RATE: Final = 16000
"""Polly's best pcm rate. LiveKit resamples to the room's rate as needed."""

_OUTPUT_FORMAT: Final = "pcm"
_NUM_CHANNELS: Final = 1


@dataclass(frozen=True, slots=True)
class _Options:
    """What one synthesis asks Polly for; each stream takes a snapshot, so
    ``update_options`` affects the next streams, never one running."""

    voice_id: str
    engine: str
    language_code: str | None
    sample_rate: int

    def checked(self) -> _Options:
        """Check with the client's own rules (same errors, before any I/O)."""
        rate = _check_sample_rate(self.sample_rate)
        synthesis_input(
            voice_id=self.voice_id,
            engine=self.engine,
            language_code=self.language_code,
            output_format=_OUTPUT_FORMAT,
            sample_rate=str(rate),
            lexicon_names=None,
        )
        return self


def _check_sample_rate(rate: object) -> int:
    if isinstance(rate, bool) or not isinstance(rate, int):
        msg = f"sample_rate must be an int, got {type(rate).__name__}"
        raise TypeError(msg)
    if rate not in PCM_SAMPLE_RATES:
        msg = (
            "sample_rate must be 8000 or 16000 (the pcm rates Polly "
            f"documents), got {rate}"
        )
        raise ValueError(msg)
    return rate


class PollyTTS(tts.TTS[Never]):  # Never: no events beyond LiveKit's own
    """Amazon Polly (generative voices, bidirectional streaming) for LiveKit Agents.

    Pass a ``client`` (a ``PollyStreamingClient``: share one across sessions)
    or the arguments to make one: ``region`` (else ``AWS_REGION`` /
    ``AWS_DEFAULT_REGION``), ``endpoint_url``, ``credentials``, ``profile``,
    ``ca_bundle``, ``pool_size``; not both. Nothing connects before the first
    synthesis (or ``prewarm()``). Bad arguments raise ``ValueError`` /
    ``TypeError`` naming the argument, here, not mid-conversation.

    ``sample_rate`` is 8000 or 16000 (Polly's pcm rates; default 16000).
    """

    def __init__(
        self,
        *,
        voice_id: str = "Matthew",
        engine: str = "generative",
        language_code: str | None = "en-US",
        sample_rate: int = DEFAULT_SAMPLE_RATE,
        client: PollyStreamingClient | None = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        credentials: AwsCredentials | CredentialsProvider | None = None,
        profile: str | None = None,
        ca_bundle: str | None = None,
        pool_size: int | None = None,
    ) -> None:
        opts = _Options(voice_id, engine, language_code, sample_rate).checked()
        self._owns_client = client is None
        client = client_from(
            client,
            {
                "region": region,
                "endpoint_url": endpoint_url,
                "credentials": credentials,
                "profile": profile,
                "ca_bundle": ca_bundle,
                "pool_size": pool_size,
            },
            max_attempts=1,  # LiveKit retries (conn_options), not both layers
        )
        super().__init__(
            capabilities=tts.TTSCapabilities(streaming=True),
            sample_rate=opts.sample_rate,
            num_channels=_NUM_CHANNELS,
        )
        self._client = client
        self._opts = opts
        self._prewarm_task: asyncio.Task[None] | None = None

    @property
    def client(self) -> PollyStreamingClient:
        """The client every synthesis of this TTS runs on."""
        return self._client

    @property
    def voice_id(self) -> str:
        return self._opts.voice_id

    @property
    def model(self) -> str:
        """The Polly engine (LiveKit reports it in its metrics)."""
        return self._opts.engine

    @property
    def provider(self) -> str:
        return "Amazon Polly"

    def update_options(
        self,
        *,
        voice_id: NotGivenOr[str] = NOT_GIVEN,
        engine: NotGivenOr[str] = NOT_GIVEN,
        language_code: NotGivenOr[str | None] = NOT_GIVEN,
    ) -> None:
        """Change the voice (engine, language) for the next syntheses; streams
        already running keep theirs. The sample rate is fixed per TTS."""
        opts = self._opts
        if utils.is_given(voice_id):
            opts = replace(opts, voice_id=voice_id)
        if utils.is_given(engine):
            opts = replace(opts, engine=engine)
        if utils.is_given(language_code):
            opts = replace(opts, language_code=language_code)
        self._opts = opts.checked()

    def synthesize(
        self,
        text: str,
        *,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
    ) -> PollyChunkedStream:
        """Synthesize a whole text (sent to Polly in one write)."""
        return PollyChunkedStream(
            tts=self, input_text=text, conn_options=conn_options, opts=self._opts
        )

    def stream(
        self, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> PollySynthesizeStream:
        """A stream for text as it is produced: one Polly stream, full duplex."""
        return PollySynthesizeStream(
            tts=self, conn_options=conn_options, opts=self._opts
        )

    def prewarm(self) -> None:
        """Open a connection (and resolve credentials) ahead of the first
        utterance, in a task this TTS owns (``aclose`` ends it). A failure is
        logged, not raised: the first synthesis will report it properly."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # LiveKit calls this from its loop; elsewhere nothing to do
        task = self._prewarm_task
        if task is None or task.done():
            self._prewarm_task = loop.create_task(
                self._prewarm(), name="polly-livekit-prewarm"
            )

    async def _prewarm(self) -> None:
        try:
            await self._client.prewarm()
        except (TransportError, CredentialsError, ClientClosedError) as exc:
            logger.warning("prewarming Polly failed: %s", exc)

    async def aclose(self) -> None:
        """Stop a running prewarm; close the client if this TTS made it (idle
        connections stay in the process-wide cache for other clients)."""
        task, self._prewarm_task = self._prewarm_task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._owns_client:
            await self._client.close()


class PollyChunkedStream(tts.ChunkedStream):
    """``PollyTTS.synthesize()``: the whole text in one request."""

    def __init__(
        self,
        *,
        tts: PollyTTS,
        input_text: str,
        conn_options: APIConnectOptions,
        opts: _Options,
    ) -> None:
        self._client = tts.client  # set first: the base starts the task
        self._opts = opts
        # LiveKit annotates ``tts`` as a bare ``TTS`` (``TTS[Unknown]`` to pyright).
        super().__init__(  # pyright: ignore[reportUnknownMemberType]
            tts=tts, input_text=input_text, conn_options=conn_options
        )

    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        opts = self._opts
        started = False

        def start(request_id: str | None) -> None:
            nonlocal started
            started = True
            output_emitter.initialize(
                request_id=request_id or utils.shortuuid(),
                sample_rate=opts.sample_rate,
                num_channels=_NUM_CHANNELS,
                mime_type="audio/pcm",
            )

        text = self._input_text
        if text.strip():  # whitespace alone: no audio, no request
            try:
                # ``async with``: however this ends (cancelled too), the Polly
                # stream is stopped and its lease released now, not at GC.
                async with self._client.start_speech_synthesis_stream(
                    text=text,
                    voice_id=opts.voice_id,
                    engine=opts.engine,
                    language_code=opts.language_code,
                    output_format=_OUTPUT_FORMAT,
                    sample_rate=str(opts.sample_rate),
                ) as audio:
                    async for chunk in audio:
                        if not started:
                            # The emitter wants a request id before any audio;
                            # Polly's is known once the stream answered.
                            start(audio.request_id)
                            self._connection_reused = bool(
                                audio.metrics.connection_reused
                            )
                        output_emitter.push(chunk)
            except (ServiceException, TransportError, CredentialsError) as exc:
                raise _api_error(exc) from exc
        if not started:
            start(None)


class PollySynthesizeStream(tts.SynthesizeStream):
    """``PollyTTS.stream()``: one Polly stream, text and audio concurrently.

    LiveKit's input maps to the stream like this: a text piece goes out at
    once (``send``); LiveKit's flush (``flush()``, and ``end_input()``, which
    flushes first) forces Polly to synthesize what it has buffered
    (``SynthesisStream.flush()``, only if text came since the last one);
    the end of input closes Polly's input (``close_input()``). The segment
    (LiveKit's unit of "one utterance") starts when the stream opens and ends
    when Polly has sent its last audio, which on one Polly stream is when the
    stream closes. LiveKit 1.x carries one segment per ``SynthesizeStream``
    (``push_text`` after ``flush()`` is dropped by LiveKit with a deprecation
    warning), so a LiveKit stream, a segment and a Polly stream are one.
    """

    def __init__(
        self, *, tts: PollyTTS, conn_options: APIConnectOptions, opts: _Options
    ) -> None:
        self._client = tts.client  # set first: the base starts the task
        self._opts = opts
        # LiveKit annotates ``tts`` as a bare ``TTS`` (``TTS[Unknown]`` to pyright).
        super().__init__(tts=tts, conn_options=conn_options)  # pyright: ignore[reportUnknownMemberType]

    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        opts = self._opts
        try:
            async with self._client.open_stream(
                voice_id=opts.voice_id,
                engine=opts.engine,
                language_code=opts.language_code,
                output_format=_OUTPUT_FORMAT,
                sample_rate=str(opts.sample_rate),
            ) as stream:
                await self._duplex(stream, output_emitter)
        except (ServiceException, TransportError, CredentialsError) as exc:
            raise _api_error(exc) from exc

    async def _duplex(
        self, stream: SynthesisStream, output_emitter: tts.AudioEmitter
    ) -> None:
        request_id = stream.request_id or utils.shortuuid()
        self._connection_reused = bool(stream.metrics.connection_reused)
        output_emitter.initialize(
            request_id=request_id,
            sample_rate=self._opts.sample_rate,
            num_channels=_NUM_CHANNELS,
            mime_type="audio/pcm",
            stream=True,
        )
        output_emitter.start_segment(segment_id=request_id)
        sender = asyncio.create_task(self._send(stream), name="polly-livekit-send")
        receiver = asyncio.create_task(
            self._receive(stream, output_emitter), name="polly-livekit-receive"
        )
        completed = False
        try:
            await _supervise(sender, receiver)
            completed = True
        finally:
            if not completed:
                # Cancelled (barge-in, aclose) or failed: stop Polly now,
                # before waiting for our tasks (leaving the block would reset
                # the stream too, but only after them). No-op once finished.
                stream.cancel()
            await _reap(sender, receiver)
        output_emitter.end_segment()

    async def _send(self, stream: SynthesisStream) -> None:
        """LiveKit's input to Polly, each piece the moment it arrives."""
        unflushed = False
        async for item in self._input_ch:
            if isinstance(item, tts.SynthesizeStream._FlushSentinel):  # pyright: ignore[reportPrivateUsage] - LiveKit's documented way to see flushes
                if unflushed:
                    await stream.flush()
                    unflushed = False
                continue
            self._mark_started()
            await stream.send(item)
            unflushed = True
        await stream.close_input()

    async def _receive(
        self, stream: SynthesisStream, output_emitter: tts.AudioEmitter
    ) -> None:
        """Polly's audio to LiveKit, each event the moment it arrives."""
        async for chunk in stream.audio():
            output_emitter.push(chunk)


async def _supervise(sender: asyncio.Task[None], receiver: asyncio.Task[None]) -> None:
    """Wait for both tasks; the first failure is raised at once.

    The receiver ends when Polly closes the stream, which it does only after
    our input was closed, so a normal end finds the sender done. A receiver
    that ends first means Polly stopped early: an error, never a short success.
    """
    done, _ = await asyncio.wait(
        {sender, receiver}, return_when=asyncio.FIRST_COMPLETED
    )
    if receiver in done:
        receiver.result()  # Polly's error, if any
        if not sender.done():
            msg = "Polly closed the stream before its input was closed"
            raise APIConnectionError(msg)
        sender.result()
        return
    sender.result()  # the input is closed (or the send failed: raised here)
    # asyncio.wait, not ``await receiver``: a cancellation of ours must reach
    # ``_duplex`` (which stops Polly first), not the receiver directly.
    await asyncio.wait({receiver})
    receiver.result()


async def _reap(*tasks: asyncio.Task[None]) -> None:
    """Cancel what still runs and wait until every task has finished; their
    errors were raised by ``_supervise`` or are moot once one failed."""
    for task in tasks:
        task.cancel()
    await asyncio.wait(tasks)
    for task in tasks:
        if not task.cancelled():
            task.exception()  # retrieved: no "never retrieved" noise


def _api_error(exc: ServiceException | TransportError | CredentialsError) -> APIError:
    """Our error as the LiveKit API error its retry/fallback logic understands
    (the table in the module docstring)."""
    if isinstance(exc, ServiceException):
        retryable = isinstance(exc, ThrottlingException | ServiceFailureException)
        status = 429 if isinstance(exc, ThrottlingException) else exc.http_status
        return APIStatusError(
            f"{exc.code}: {exc.message}" if exc.message else exc.code,
            status_code=status,
            request_id=exc.request_id,
            body={"code": exc.code, "message": exc.message},
            retryable=retryable,
        )
    if isinstance(exc, ConnectTimeoutError | ResponseTimeoutError):
        return APITimeoutError("Amazon Polly timed out", retryable=True)
    if isinstance(exc, UnexpectedResponseError) and exc.status is not None:
        return APIStatusError(
            str(exc),
            status_code=exc.status,
            request_id=exc.request_id,
            body={"error_type": exc.error_type},
            retryable=exc.retryable,
        )
    if isinstance(exc, TransportError):
        return APIConnectionError(
            "Amazon Polly connection failed", retryable=exc.retryable
        )
    return APIConnectionError(
        "Amazon Polly: no usable AWS credentials",
        retryable=not isinstance(exc, NoCredentialsError),
    )
