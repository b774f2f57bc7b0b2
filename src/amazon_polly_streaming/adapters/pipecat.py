"""A pipecat TTS service on Amazon Polly's bidirectional streaming synthesis.

``PollyStreamingTTSService`` is a pipecat (1.14) ``TTSService``: put it where
any TTS goes in a pipeline. It needs the ``pipecat`` extra
(``pip install "amazon-polly-streaming[pipecat]"``).

How it maps onto pipecat, and why:

* **One Polly stream per pipecat turn.** pipecat gives every LLM response (and
  every ``TTSSpeakFrame``) one context id, calls ``run_tts`` with that id for
  each sentence (or each token, with ``TextAggregationMode.TOKEN``), calls
  ``on_turn_context_completed`` when the response ends and
  ``on_audio_context_interrupted`` on barge-in. That is the shape of Polly's
  bidirectional stream, so a turn is one stream: text goes up as pipecat
  hands it over, the input is closed at the end of the response, and the
  audio of the whole response comes back on one stream (one request, one
  lease, no per-sentence round trip). One stream per ``run_tts`` call would
  pay a request per sentence and, in token mode, a request per token.
* **Sentence ends are flushed.** In pipecat's default sentence mode each
  ``run_tts`` text is a sentence pipecat already found the end of, so a flush
  follows it: Polly must not wait for more text to be sure the sentence is
  over. In token mode nothing is flushed: Polly buffers to sentence
  boundaries itself, which makes token mode a good fit (it skips pipecat's
  look-ahead), and closing the input at the end speaks whatever is left.
* **``run_tts`` never waits on the network.** It queues the text and yields
  ``None``, as pipecat's websocket services do; the stream runs in a task the
  service owns (``create_task``), which appends ``TTSAudioRawFrame`` s to the
  turn's audio context as audio events arrive and ends the context when the
  stream ends. The base class pushes ``TTSStartedFrame`` when a turn's first
  text comes and ``TTSStoppedFrame`` after the context's last audio.
* **The stream opens at a turn's first text**, not at
  ``LLMFullResponseStartFrame``: a response may say nothing (a function
  call), and an open stream holds a lease. To keep that opening cheap the
  service pre-warms the client at pipeline start (credentials resolved, a TLS
  connection open and idle; ``prewarm=False`` turns it off), so a stream
  costs one round trip on a warm connection.
* **Barge-in:** an interruption cancels the interrupted turns' streams
  (``AudioStream.cancel()``: HTTP/2 ``RST_STREAM`` at once, the lease is
  released and the connection reused) and waits for their tasks to end, so
  nothing is left running and no stale audio reaches the next turn.
  Uninterruptible speech (``TTSSpeakFrame(interruptible=False)``) is left to
  finish.
* **Errors** become pipecat ``ErrorFrame`` s via ``push_error``: the message
  names the exception type, its message and the Polly request id; the frame
  carries the exception, and ``_classify_error`` gives pipecat's category
  (``ValidationException``: invalid request, which pipecat treats as
  permanent; throttling: rate limit; service failure: server; transport
  failures: connectivity...). The turn still ends with ``TTSStoppedFrame``,
  after the audio that did arrive; if the response goes on, its next text
  opens a new stream, so a lost stream costs what it had not spoken yet, not
  the rest of the response. Throttling and 5xx before the first audio are
  retried by the client.
* **Audio format:** Polly streams pcm only at 8000 or 16000 Hz. The service
  asks for 8000 Hz when pipecat's output rate is 8000 Hz or less, otherwise
  16000 Hz, and resamples to the output rate (``sample_rate=``, else the
  pipeline's ``audio_out_sample_rate``, 24000 by default) with pipecat's soxr
  stream resampler, one per turn, flushed at the end of the turn.

Limits: Polly's streaming API has no word timestamps, so pipecat pushes each
sentence's ``TTSTextFrame`` ahead of its audio (as for pipecat's other
services without them). Settings updates (``TTSUpdateSettingsFrame``: voice,
language, engine) apply from the next turn. Each concurrent turn holds one of
the client's ``pool_size`` leases.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import AsyncGenerator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, cast

from amazon_polly_streaming import (
    FLUSH,
    AwsCredentials,
    CredentialsProvider,
    LanguageCode,
    PollyStreamingClient,
    ServiceException,
    ServiceFailureException,
    ServiceQuotaExceededException,
    ThrottlingException,
    TransportError,
    UnexpectedResponseError,
    ValidationException,
)
from amazon_polly_streaming.adapters._client import client_from
from amazon_polly_streaming.client import AudioStream
from amazon_polly_streaming.config import synthesis_input
from amazon_polly_streaming.credentials import NoCredentialsError
from amazon_polly_streaming_generated.shapes import StartSpeechSynthesisStreamInput

_INSTALL_HINT = 'pip install "amazon-polly-streaming[pipecat]"'

try:
    # Importing pipecat's TTS module defines its own deprecated aliases, which
    # warns (DeprecationWarning) at import; that must not fail an application
    # (or a test suite) that runs with warnings as errors.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from loguru import logger
        from pipecat.audio.resamplers.base_audio_resampler import BaseAudioResampler
        from pipecat.audio.resamplers.soxr_stream_resampler import (
            SOXRStreamAudioResampler,
        )
        from pipecat.frames.frames import (
            CancelFrame,
            EndFrame,
            Frame,
            InterruptionFrame,
            StartFrame,
            TTSAudioRawFrame,
        )
        from pipecat.processors.frame_processor import FrameDirection
        from pipecat.services.settings import TTSSettings
        from pipecat.services.tts_service import TTSService
        from pipecat.transcriptions.language import Language
        from pipecat.utils.errors import ErrorCategory, classify_http_status_code
        from pipecat.utils.types import NOT_GIVEN, NotGiven, is_given
except ModuleNotFoundError as exc:
    msg = (
        "amazon_polly_streaming.adapters.pipecat needs pipecat "
        f"(missing module {exc.name!r}): {_INSTALL_HINT}"
    )
    raise ImportError(msg) from exc

__all__ = ["PollyStreamingTTSService", "PollyStreamingTTSSettings"]

CANCEL_GRACE = 0.25
"""Seconds a cancelled stream's task gets to end by itself before it is
cancelled outright. ``AudioStream.cancel()`` ends a running stream at once
(well under a millisecond against the emulator); only a call still waiting
(for a lease, or between retries) needs the outright cancel. The wait is
short because pipecat passes the interruption downstream (to the transport,
which stops playing) only after this hook returns."""

_PREFERRED_REGION = {
    "ar": "arb",
    "de": "de-DE",
    "en": "en-US",
    "es": "es-ES",
    "fr": "fr-FR",
    "nl": "nl-NL",
    "pt": "pt-BR",
    "zh": "cmn-CN",
}
"""Polly's language for a bare pipecat language with several regions in Polly."""


@dataclass
class PollyStreamingTTSSettings(TTSSettings):
    """Runtime-updatable settings (``TTSUpdateSettingsFrame``).

    ``voice`` is Polly's ``VoiceId``, ``language`` its ``LanguageCode``
    (``None`` omits it), ``engine`` its ``Engine``; ``model`` is unused.
    Changes apply from the next turn (a stream's parameters are fixed).
    """

    engine: str | NotGiven = field(default_factory=lambda: NOT_GIVEN)


class _TextSource:
    """A turn's text, in the order pipecat hands it over: what the client's
    feeder sends up the stream. Ends (the stream's input closes) on ``close``."""

    _END = object()

    def __init__(self) -> None:
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self.closed = False

    def put(self, piece: object) -> None:
        if not self.closed:
            self._queue.put_nowait(piece)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._queue.put_nowait(self._END)

    def __aiter__(self) -> _TextSource:
        return self

    async def __anext__(self) -> object:
        piece = await self._queue.get()
        if piece is self._END:
            self._queue.put_nowait(piece)  # stays ended if read again
            raise StopAsyncIteration
        return piece


@dataclass(eq=False)
class _Turn:
    """One pipecat turn (audio context) and the Polly stream speaking it."""

    context_id: str
    interruptible: bool
    polly_rate: int
    resampler: BaseAudioResampler | None
    source: _TextSource = field(default_factory=_TextSource)
    audio: AudioStream | None = None
    task: asyncio.Task[None] | None = None
    carry: bytes = b""
    ended: bool = False
    """The response is complete (pipecat completed the turn)."""
    cancelled: bool = False

    @property
    def over(self) -> bool:
        """Whether its stream is over (or never started)."""
        return self.task is None or self.task.done()


class PollyStreamingTTSService(TTSService):
    """Amazon Polly streaming TTS for pipecat (see the module docs).

    Give a ``client`` (a ``PollyStreamingClient``, e.g. shared across bots:
    its options, timeouts, retries and pool apply) or the arguments to make
    one: ``region`` (else ``AWS_REGION`` / ``AWS_DEFAULT_REGION``),
    ``endpoint_url``, ``credentials``, ``profile``, ``ca_bundle``,
    ``pool_size`` (a client made here is closed at cleanup; one given is
    not). ``voice_id`` (a generative voice), ``engine``,
    ``language_code`` (``None`` omits it) and ``lexicon_names`` are Polly's;
    ``sample_rate`` is the rate of the audio frames (default: the pipeline's
    output rate). ``prewarm`` opens a connection at pipeline start. Other
    keyword arguments go to pipecat's ``TTSService`` (e.g.
    ``text_aggregation_mode``).

    Arguments are checked here, before any I/O: bad ones raise
    ``ValueError``/``TypeError`` naming the argument.
    """

    Settings = PollyStreamingTTSSettings
    # pipecat's own idiom: the store is always this class (it is built here
    # and updates keep its type), which a mutable attribute cannot express.
    _settings: PollyStreamingTTSSettings  # pyright: ignore[reportIncompatibleVariableOverride]

    def __init__(
        self,
        *,
        client: PollyStreamingClient | None = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        credentials: AwsCredentials | CredentialsProvider | None = None,
        profile: str | None = None,
        ca_bundle: str | None = None,
        pool_size: int | None = None,
        voice_id: str = "Matthew",
        engine: str = "generative",
        language_code: str | None = "en-US",
        lexicon_names: list[str] | None = None,
        sample_rate: int | None = None,
        prewarm: bool = True,
        settings: PollyStreamingTTSSettings | None = None,
        **kwargs: Any,
    ) -> None:
        if sample_rate is not None:
            if isinstance(sample_rate, bool) or not isinstance(sample_rate, int):  # pyright: ignore[reportUnnecessaryIsInstance] - untyped callers
                kind = type(sample_rate).__name__
                msg = f"sample_rate must be an int (Hz) or None, got {kind}"
                raise TypeError(msg)
            if sample_rate <= 0:
                msg = f"sample_rate must be positive, got {sample_rate}"
                raise ValueError(msg)
        if not isinstance(prewarm, bool):  # pyright: ignore[reportUnnecessaryIsInstance] - untyped callers
            msg = f"prewarm must be a bool, got {type(prewarm).__name__}"
            raise TypeError(msg)
        store = PollyStreamingTTSSettings(
            model=None, voice=voice_id, language=language_code, engine=engine
        )
        if settings is not None:
            store.apply_update(settings)
        _check_synthesis(store, lexicon_names)
        polly_client = client_from(
            client,
            {
                "region": region,
                "endpoint_url": endpoint_url,
                "credentials": credentials,
                "profile": profile,
                "ca_bundle": ca_bundle,
                "pool_size": pool_size,
            },
        )
        # pipecat leaves **kwargs unannotated (pyright: partially unknown).
        super().__init__(  # pyright: ignore[reportUnknownMemberType]
            sample_rate=sample_rate,
            push_start_frame=True,
            push_stop_frames=True,
            settings=store,
            **kwargs,
        )
        self._client = polly_client
        self._owns_client = client is None
        self._lexicon_names = None if lexicon_names is None else list(lexicon_names)
        self._prewarm = prewarm
        self._prewarm_task: asyncio.Task[None] | None = None
        self._open: dict[str, _Turn] = {}
        """The turn of each context id whose response is not complete yet."""
        self._running: set[_Turn] = set()
        """Every turn whose task has not ended."""

    @property
    def client(self) -> PollyStreamingClient:
        """The Polly client the service streams with."""
        return self._client

    def can_generate_metrics(self) -> bool:
        """TTFB (text to first audio) and usage metrics are reported."""
        return True

    @property
    def supports_processing_metrics(self) -> bool:
        """False: ``run_tts`` hands text to the stream and returns; the audio
        comes later from the stream's task (TTFB measures the latency)."""
        return False

    def language_to_service_language(self, language: Language) -> str | None:
        """Polly's language code for a pipecat ``Language`` (``None``: Polly
        has none for it, and the value goes to Polly as it is)."""
        code = str(language.value)
        if LanguageCode(code).is_known:
            return code
        base = code.split("-", 1)[0]
        if base in _PREFERRED_REGION:
            return _PREFERRED_REGION[base]
        regional = [c.value for c in LanguageCode if c.value.split("-", 1)[0] == base]
        return regional[0] if len(regional) == 1 else None

    # Lifecycle ----------------------------------------------------------------

    async def start(self, frame: StartFrame) -> None:
        """Start the service, and pre-warm the client (in the background)."""
        await super().start(frame)
        if self._prewarm and self._prewarm_task is None:
            self._prewarm_task = self._spawn(self._prewarm_client(), "prewarm")

    async def stop(self, frame: EndFrame) -> None:
        """Stop after the turns in progress have been spoken (pipecat waits for
        the audio contexts); whatever still runs then is cancelled."""
        await super().stop(frame)
        await self._shutdown()

    async def cancel(self, frame: CancelFrame) -> None:
        """Stop now: every stream is cancelled."""
        await super().cancel(frame)
        await self._shutdown()

    async def cleanup(self) -> None:
        """Release everything (idempotent)."""
        await super().cleanup()  # type: ignore[no-untyped-call]  # unannotated in pipecat
        await self._shutdown()
        if self._owns_client:
            await self._client.close()

    async def _shutdown(self) -> None:
        await self._cancel_turns(lambda _turn: True)
        task, self._prewarm_task = self._prewarm_task, None
        if task is not None and not task.done():
            await self._cancel_task(task)

    async def _prewarm_client(self) -> None:
        try:
            await self._client.prewarm()
        except Exception as exc:  # the first stream reports it, as an ErrorFrame
            logger.warning(f"{self}: pre-warming the Polly client failed: {exc!r}")

    # pipecat's TTS hooks ------------------------------------------------------

    async def run_tts(self, text: str, context_id: str) -> AsyncGenerator[Frame | None]:
        """Send ``text`` on the turn's stream, opened at the turn's first text
        (or anew if the turn's stream failed: one lost stream costs what it
        had not spoken yet, not the rest of the response). The audio arrives
        on the stream's task; this yields ``None``."""
        turn = self._open.get(context_id)
        if turn is None or turn.over:
            turn = await self._start_turn(context_id)
        if not turn.over:
            turn.source.put(text)
            if not self._is_streaming_tokens:
                turn.source.put(FLUSH)  # pipecat found the sentence's end: speak it now
            await self.start_tts_usage_metrics(text)
        yield None

    async def flush_audio(self, context_id: str | None = None) -> None:
        """Make Polly synthesize what it has buffered for the turn, now."""
        turn = self._open.get(context_id or self.get_active_audio_context_id() or "")
        if turn is not None:
            turn.source.put(FLUSH)

    async def on_turn_context_completed(self) -> None:
        """The response is complete: close the turn's input (Polly speaks the
        rest, then ends the stream, and with it the audio context)."""
        context_id = self._turn_context_id
        turn = None if context_id is None else self._open.pop(context_id, None)
        if turn is not None:
            turn.ended = True
            turn.source.close()
            if turn.over and not turn.cancelled:  # it failed: nothing more comes
                await self._end_context(turn.context_id)
        await super().on_turn_context_completed()  # type: ignore[no-untyped-call]  # unannotated in pipecat

    async def on_audio_context_interrupted(self, context_id: str) -> None:
        """Barge-in: cancel the interrupted turn's stream."""
        await self._cancel_turns(lambda turn: turn.context_id == context_id)
        await super().on_audio_context_interrupted(context_id)

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """pipecat's frame handling; after an interruption, also cancel any
        interruptible stream whose audio context pipecat no longer tracks
        (e.g. one that went quiet), so no stream outlives the interruption."""
        await super().process_frame(frame, direction)
        if isinstance(frame, InterruptionFrame):
            await self._cancel_turns(lambda turn: turn.interruptible)

    def _classify_error(self, exception: Exception) -> ErrorCategory | None:
        """pipecat's error category for this package's exceptions."""
        return _category(exception)

    # Turns ------------------------------------------------------------------

    async def _start_turn(self, context_id: str) -> _Turn:
        """A turn for ``context_id`` with its stream running; if the stream
        cannot even be asked for (settings updated to something the client
        refuses, a closed client), reported, and a turn that is already over."""
        context = self._tts_contexts.get(context_id)
        polly_rate = 8000 if self.sample_rate <= 8000 else 16000
        turn = _Turn(
            context_id=context_id,
            interruptible=context.interruptible if context is not None else True,
            polly_rate=polly_rate,
            resampler=None
            if polly_rate == self.sample_rate
            else SOXRStreamAudioResampler(clear_after_secs=None),
        )
        self._open[context_id] = turn
        try:
            request = _check_synthesis(self._settings, self._lexicon_names)
            audio = self._client.start_speech_synthesis_stream(
                text=turn.source,
                voice_id=str(request.voice_id),
                engine=str(request.engine),
                language_code=None
                if request.language_code is None
                else str(request.language_code),
                output_format="pcm",
                sample_rate=str(polly_rate),
                lexicon_names=self._lexicon_names,
            )
        except (ValueError, TypeError) as exc:  # the settings will not do
            await self._report(exc, ErrorCategory.INVALID_REQUEST)
            return turn
        except RuntimeError as exc:  # e.g. the client was closed
            await self._report(exc)
            return turn
        turn.audio = audio
        self._running.add(turn)
        turn.task = self._spawn(self._run_turn(turn, audio), f"polly-turn-{context_id}")
        return turn

    async def _run_turn(self, turn: _Turn, audio: AudioStream) -> None:
        """Stream the turn's audio into its audio context; end the context
        when the stream ends, unless the response goes on (then the next
        text opens a new stream, and the turn's completion ends it)."""
        try:
            async with audio:
                async for chunk in audio:
                    if turn.cancelled:
                        break
                    await self._push_audio(turn, chunk)
            if not turn.cancelled:
                await self._push_tail(turn)
        except Exception as exc:
            if not turn.cancelled:
                await self._report(exc)
        finally:
            turn.source.close()
            self._running.discard(turn)
        if turn.ended and not turn.cancelled:
            await self._end_context(turn.context_id)

    async def _push_audio(self, turn: _Turn, chunk: bytes) -> None:
        data = turn.carry + chunk
        cut = len(data) - len(data) % 2  # whole 16-bit samples only
        data, turn.carry = data[:cut], data[cut:]
        if turn.resampler is not None and data:
            data = await turn.resampler.resample(
                data, turn.polly_rate, self.sample_rate
            )
        if data:
            await self.append_to_audio_context(
                turn.context_id,
                TTSAudioRawFrame(data, self.sample_rate, 1, context_id=turn.context_id),
            )

    async def _push_tail(self, turn: _Turn) -> None:
        """The resampler's last samples (and a dangling odd byte, padded)."""
        if turn.carry:
            await self._push_audio(turn, b"\x00")
        if turn.resampler is not None:
            tail = await turn.resampler.flush()
            if tail:
                await self.append_to_audio_context(
                    turn.context_id,
                    TTSAudioRawFrame(
                        tail, self.sample_rate, 1, context_id=turn.context_id
                    ),
                )

    async def _end_context(self, context_id: str) -> None:
        """End a turn's audio context: pipecat plays what is queued, then
        pushes ``TTSStoppedFrame`` (``push_stop_frames``). A context pipecat
        dropped (interrupted, or gone quiet) is left alone."""
        if self.audio_context_available(context_id):
            await self.remove_audio_context(context_id)

    async def _cancel_turns(self, which: Callable[[_Turn], bool]) -> None:
        """Cancel the matching turns' streams and wait for their tasks (turns
        whose stream already failed are forgotten too)."""
        turns = [t for t in self._running | set(self._open.values()) if which(t)]
        for turn in turns:
            turn.cancelled = True
            turn.source.close()
            if turn.audio is not None:
                turn.audio.cancel()
            if self._open.get(turn.context_id) is turn:
                del self._open[turn.context_id]
        tasks = {t.task for t in turns if t.task is not None and not t.task.done()}
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=CANCEL_GRACE)
            for task in pending:
                await self._cancel_task(task)

    # Tasks go through pipecat's task manager (named, tracked, cancelled with
    # the pipeline); its signatures leave the coroutine's types unannotated.

    def _spawn(
        self, coroutine: Coroutine[Any, Any, None], name: str
    ) -> asyncio.Task[None]:
        return cast(
            "asyncio.Task[None]",
            self.create_task(coroutine, name),  # pyright: ignore[reportUnknownMemberType]
        )

    async def _cancel_task(self, task: asyncio.Task[None]) -> None:
        await self.cancel_task(task)  # pyright: ignore[reportUnknownMemberType]

    async def _report(
        self, exc: Exception, category: ErrorCategory | None = None
    ) -> None:
        await self.push_error(
            error_msg=_describe_error(exc), exception=exc, category=category
        )


def _describe_error(exc: BaseException) -> str:
    """``Amazon Polly: <type>: <message> (request id <id>)`` for an error."""
    name = type(exc).__name__
    request_id: str | None = None
    if isinstance(exc, ServiceException):
        message, request_id = exc.message, exc.request_id
        if exc.code != name:  # an exception type this client does not know
            name = f"{name} {exc.code}"
    elif isinstance(exc, TransportError):
        message = str(exc.args[0]) if exc.args else ""
        request_id = exc.request_id
    else:
        message = str(exc)
    text = f"Amazon Polly: {name}: {message}" if message else f"Amazon Polly: {name}"
    if request_id:
        text += f" (request id {request_id})"
    return text


def _category(exc: Exception) -> ErrorCategory | None:
    """pipecat's error category for this package's exceptions (``None``: not ours)."""
    category: ErrorCategory | None = None
    if isinstance(exc, ValidationException):
        category = ErrorCategory.INVALID_REQUEST  # the request will never succeed
    elif isinstance(exc, ThrottlingException):
        category = ErrorCategory.RATE_LIMIT
    elif isinstance(exc, ServiceQuotaExceededException):
        category = ErrorCategory.QUOTA
    elif isinstance(exc, ServiceFailureException):
        category = ErrorCategory.SERVER
    elif isinstance(exc, ServiceException):
        category = ErrorCategory.SERVER if exc.fault == "server" else None
    elif isinstance(exc, NoCredentialsError):
        category = ErrorCategory.AUTHENTICATION
    elif isinstance(exc, UnexpectedResponseError) and exc.status is not None:
        category = classify_http_status_code(exc.status)
    elif isinstance(exc, TransportError):
        category = ErrorCategory.CONNECTIVITY
    return category


def _check_synthesis(
    settings: PollyStreamingTTSSettings, lexicon_names: list[str] | None
) -> StartSpeechSynthesisStreamInput:
    """Check the stream parameters the settings hold (as the client will)."""
    engine = settings.engine
    language = settings.language
    return synthesis_input(
        voice_id=settings.voice,
        engine=engine if is_given(engine) else None,
        language_code=language if is_given(language) else None,
        output_format="pcm",
        sample_rate=None,
        lexicon_names=lexicon_names,
    )
