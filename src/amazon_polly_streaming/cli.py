"""Command line: ``polly-stream`` (or ``python -m amazon_polly_streaming``).

::

    polly-stream -o hello.mp3 "Hello, world."
    llm "tell me a story" | polly-stream -v Ruth -o story.ogg
    polly-stream --ssml -o hi.opus '<speak>Hi <break time="1s"/> there.</speak>'
    polly-stream -o hello.wav "Hello, world."
    polly-stream -f mulaw -o call.wav "Thank you for calling."

Text comes from the arguments (joined with spaces) or, when there are none
(or the only one is ``-``), from stdin, *as it arrives*: stdin is read without
blocking the event loop (a pipe through ``loop.connect_read_pipe``, anything
else through a thread), decoded incrementally as UTF-8, and each piece goes to
Polly as soon as it is read, so a slow producer hears its first sentence before
it writes the second (the client sends the keep-alives that Polly's 5 s input
limit needs). ``--ssml`` makes the whole input one SSML document.

Audio goes to ``-o FILE`` (streamed into ``FILE.part``, renamed to ``FILE`` on
success, removed on failure) or to stdout (never a terminal unless ``-o -``),
written by a thread of its own so that a slow reader (a player reading stdout
in real time) never stalls the stream. The output format is ``--format``, else
the one the file's extension names, else mp3.

WAV: Polly streams no WAV, so ``polly-stream`` puts one around the raw formats
(:mod:`amazon_polly_streaming.wav`). An output file named ``*.wav`` (any case),
``--wav`` or ``--format wav`` selects it; the audio inside is pcm (16-bit, the
``--sample-rate``, 16000 unless told), or mulaw/alaw at 8000 Hz with
``--format mulaw|alaw`` (telephony WAV). A compressed ``--format`` (mp3, ogg)
with WAV is refused (exit status 2). A file gets its real sizes written into
the header before ``FILE.part`` is renamed; stdout, a pipe or another special
file keeps the "unknown length" header (sizes ``0xFFFFFFFF``, which ffmpeg,
libsndfile and Python's ``wave`` read to the end of the stream). The header goes
out with the first audio, so a request the service refuses writes nothing.

Exit status: 0 success; 1 the service refused, the exchange failed, no
credentials, unreadable input or unwritable output (one line on stderr);
2 bad arguments; 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import asyncio
import codecs
import contextlib
import io
import os
import queue
import re
import stat
import sys
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal, TextIO

from . import __version__
from .client import PollyStreamingClient
from .config import DEFAULT_SAMPLE_RATES
from .credentials import NoCredentialsError
from .exceptions import ServiceException
from .wav import WavEncoding, wav_header

PROG: Final = "polly-stream"

EXIT_OK: Final = 0
EXIT_FAILURE: Final = 1
EXIT_USAGE: Final = 2
EXIT_INTERRUPTED: Final = 130

FORMATS: Final = ("mp3", "pcm", "ogg_vorbis", "ogg_opus", "mulaw", "alaw")
"""The output formats Polly streams (``json`` speech marks are not streamed)."""

WAV: Final = "wav"
"""``--format wav``: pcm in a WAV file (``--wav`` puts mulaw/alaw in one too)."""

WAV_ENCODINGS: Final[tuple[WavEncoding, ...]] = ("pcm", "mulaw", "alaw")
"""The formats a WAV file can hold."""

FORMAT_BY_EXTENSION: Final[Mapping[str, str]] = {
    ".mp3": "mp3",
    ".ogg": "ogg_vorbis",
    ".opus": "ogg_opus",
    ".pcm": "pcm",
    ".raw": "pcm",
    ".ulaw": "mulaw",
    ".mulaw": "mulaw",
    ".alaw": "alaw",
    ".wav": "pcm",  # in a WAV container: see is_wav_name
}

STDIN_FD: Final = 0
STDOUT_FD: Final = 1
DEFAULT_VOICE: Final = "Matthew"
DEFAULT_REGION: Final = "us-east-1"
READ_SIZE: Final = 64 * 1024
PROGRESS_INTERVAL: Final = 0.1
"""Seconds between redraws of the progress line."""


class UsageError(Exception):
    """The arguments cannot work (exit status 2)."""


class InputError(Exception):
    """The text could not be read (exit status 1)."""


class OutputError(Exception):
    """The audio could not be written (exit status 1)."""


# Arguments ----------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The ``polly-stream`` argument parser."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Synthesize speech with Amazon Polly's bidirectional streaming API. "
            "Text comes from the arguments or, when there are none (or TEXT is "
            "-), from stdin, sent to Polly as it arrives: a slow producer hears "
            "its first sentence before it writes the next."
        ),
        epilog=(
            "examples:\n"
            '  polly-stream -o hello.mp3 "Hello, world."\n'
            "  some-llm-command | polly-stream -v Ruth -o story.ogg\n"
            "  polly-stream -f pcm --sample-rate 16000 Hi there. | aplay -r 16000 "
            "-f S16_LE\n"
            "  polly-stream --ssml -o hi.opus "
            "'<speak>Hi <break time=\"1s\"/> there.</speak>'\n"
            '  polly-stream -o hello.wav "Hello, world."\n'
            '  polly-stream -f mulaw -o call.wav "Thank you for calling."\n'
            "  polly-stream -f wav Hi there. | ffplay -nodisp -autoexit -\n"
            "\n"
            "Credentials, endpoint and CA bundle come from the AWS environment "
            "(AWS_ACCESS_KEY_ID..., AWS_PROFILE, AWS_ENDPOINT_URL_POLLY, "
            "AWS_CA_BUNDLE) unless given here. Exit status: 0 done, 1 failed, "
            "2 bad arguments, 130 interrupted."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "text",
        nargs="*",
        metavar="TEXT",
        help="text to speak, joined with spaces (none, or -, reads stdin)",
    )
    synthesis = parser.add_argument_group("synthesis")
    synthesis.add_argument(
        "-v", "--voice", default=DEFAULT_VOICE, help="voice id (default: %(default)s)"
    )
    synthesis.add_argument(
        "-f",
        "--format",
        choices=(*FORMATS, WAV),
        default=None,
        help=(
            "output format; wav is pcm in a WAV file (default: from the output "
            "file's extension: .mp3, .ogg (vorbis), .opus, .pcm/.raw, "
            ".ulaw/.mulaw, .alaw, .wav (pcm in WAV); else mp3)"
        ),
    )
    synthesis.add_argument(
        "--sample-rate",
        type=_sample_rate,
        default=None,
        metavar="HZ",
        help="sample rate (default: the format's: 24000 mp3/ogg_vorbis, 16000 "
        "pcm, 48000 ogg_opus, 8000 mulaw/alaw)",
    )
    synthesis.add_argument(
        "--language-code",
        default=None,
        metavar="CODE",
        help="language, for bilingual voices (default: the voice's own)",
    )
    synthesis.add_argument(
        "--engine",
        default="generative",
        help="synthesis engine (default: %(default)s, the only one that streams)",
    )
    synthesis.add_argument(
        "--lexicon",
        action="append",
        default=None,
        metavar="NAME",
        dest="lexicons",
        help="apply a stored pronunciation lexicon (repeatable, up to 5)",
    )
    synthesis.add_argument(
        "--ssml",
        action="store_true",
        help="the text is one SSML document (stdin is read whole first)",
    )
    connection = parser.add_argument_group("connection")
    connection.add_argument(
        "--region",
        default=None,
        help=f"AWS region (default: AWS_REGION, AWS_DEFAULT_REGION, {DEFAULT_REGION})",
    )
    connection.add_argument(
        "--endpoint-url",
        default=None,
        metavar="URL",
        help="endpoint (default: AWS_ENDPOINT_URL_POLLY, AWS_ENDPOINT_URL, the "
        "region's)",
    )
    connection.add_argument(
        "--ca-bundle",
        default=None,
        metavar="PEM",
        help="CA certificates to trust (default: AWS_CA_BUNDLE, the system's)",
    )
    connection.add_argument(
        "--profile",
        default=None,
        help="profile of the AWS config files (outranks the environment's keys)",
    )
    output = parser.add_argument_group("output")
    output.add_argument(
        "-o",
        "--output",
        default=None,
        metavar="FILE",
        help="write the audio to FILE (via FILE.part); - is stdout, even a "
        "terminal (default: stdout, unless it is a terminal)",
    )
    output.add_argument(
        "--wav",
        action="store_true",
        help="write a WAV file: pcm, or mulaw/alaw with -f (telephony WAV); "
        "implied by an output file named *.wav. A file gets its real sizes; "
        "stdout or a pipe gets an 'unknown length' header (0xFFFFFFFF), which "
        "ffmpeg and libsndfile read to the end",
    )
    output.add_argument(
        "--no-progress",
        action="store_true",
        help="no live progress line on stderr (shown only when it is a terminal)",
    )
    output.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="print nothing on stderr but errors",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}"
    )
    return parser


def _sample_rate(value: str) -> int:
    if not value.isdigit() or not 0 < int(value) < 1_000_000:
        msg = f"expected a sample rate in Hz, like 16000, got {value!r}"
        raise argparse.ArgumentTypeError(msg)
    return int(value)


def infer_format(output: str | None) -> str:
    """The output format an output file's extension names (else mp3; for a
    ``.wav`` file, pcm: the audio inside the WAV container)."""
    if output is None or output == "-":
        return "mp3"
    _, extension = os.path.splitext(output)
    return FORMAT_BY_EXTENSION.get(extension.lower(), "mp3")


def is_wav_name(output: str | None) -> bool:
    """Whether the output file's extension is ``.wav`` (any case)."""
    return output is not None and os.path.splitext(output)[1].lower() == ".wav"


def resolve_format(
    requested: str | None, output: str | None, *, wav: bool
) -> tuple[str, bool]:
    """The format to ask Polly for, and whether to write it in a WAV file.

    ``requested`` is ``--format`` (``wav``: pcm in WAV), ``wav`` is ``--wav``;
    a ``.wav`` output name also selects WAV.

    :raises UsageError: WAV with a format it cannot hold (mp3, ogg).
    """
    if requested == WAV:
        return "pcm", True
    container = wav or is_wav_name(output)
    if not container:
        return requested or infer_format(output), False
    if requested is None:
        return "pcm", True
    if requested not in WAV_ENCODINGS:
        if wav:
            msg = f"--wav holds pcm, mulaw or alaw audio, not --format {requested}"
        else:
            msg = (
                f"--format {requested} cannot be written to {output}: a .wav "
                "file holds pcm, mulaw or alaw audio (leave out --format for "
                "pcm, or name the file for the format)"
            )
        raise UsageError(msg)
    return requested, True


def resolve_region(region: str | None, environ: Mapping[str, str]) -> str:
    """``--region``, else ``AWS_REGION``, ``AWS_DEFAULT_REGION``, us-east-1."""
    return (
        region
        or environ.get("AWS_REGION")
        or environ.get("AWS_DEFAULT_REGION")
        or DEFAULT_REGION
    )


def output_path(output: str | None, *, stdout_isatty: bool) -> str | None:
    """Where the audio goes: a path, or ``None`` for stdout.

    :raises UsageError: the default output, stdout, is a terminal.
    """
    if output == "-":
        return None
    if output is None:
        if stdout_isatty:
            msg = (
                "refusing to write binary audio to a terminal; use -o FILE "
                "(or -o - to insist)"
            )
            raise UsageError(msg)
        return None
    if not output:
        msg = "-o/--output: the file name is empty"
        raise UsageError(msg)
    return output


def describe_error(exc: BaseException) -> str:
    """One line for stderr: the error type, what happened, the request id."""
    if isinstance(exc, ServiceException):
        text = str(exc)  # "<code>: <message> (request id ...)"
    elif isinstance(exc, NoCredentialsError):
        tried = "; ".join(f"{name}: {reason}" for name, reason in exc.tried)
        text = f"NoCredentialsError: no AWS credentials found ({tried})"
    elif isinstance(exc, InputError | OutputError | UsageError):
        text = str(exc)
    else:
        text = f"{type(exc).__name__}: {exc}"
    return re.sub(r"\s*\n\s*", " ", text).strip()


# Progress -----------------------------------------------------------------------


def format_size(size: int) -> str:
    """``512 B``, ``12.3 KiB``, ``4.5 MiB``."""
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KiB"
    return f"{size / (1024 * 1024):.1f} MiB"


def _seconds(value: float) -> str:
    return f"{value:.1f} s"


@dataclass(slots=True)
class Progress:
    """What has arrived so far; times in seconds since the synthesis started."""

    started: float
    received: int = 0
    audio_events: int = 0
    first_audio: float | None = None

    def audio(self, size: int, now: float) -> None:
        """One audio event of ``size`` bytes arrived at ``now``."""
        if self.first_audio is None:
            self.first_audio = now - self.started
        self.received += size
        self.audio_events += 1

    def _first(self) -> str:
        if self.first_audio is None:
            return "no audio yet"
        return f"first audio {self.first_audio * 1000:.0f} ms"

    def line(self, now: float) -> str:
        """The live progress line."""
        events = "event" if self.audio_events == 1 else "events"
        return (
            f"{format_size(self.received)} received, {self.audio_events} audio "
            f"{events}, {self._first()}, {_seconds(now - self.started)} elapsed"
        )

    def summary(self, now: float, destination: str) -> str:
        """The final line, once the audio is complete."""
        events = "event" if self.audio_events == 1 else "events"
        return (
            f"{PROG}: wrote {format_size(self.received)} ({self.audio_events} "
            f"audio {events}) to {destination}, {self._first()}, "
            f"{_seconds(now - self.started)} in all"
        )


class ProgressDisplay:
    """A progress line on a terminal, redrawn in place (``\\r``)."""

    def __init__(self, stream: TextIO, progress: Progress, *, live: bool) -> None:
        self._stream = stream
        self._progress = progress
        self._live = live
        self._width = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._live:
            self._task = asyncio.create_task(self._tick(), name="polly-stream-progress")

    async def _tick(self) -> None:
        while True:
            self.draw(self._progress.line(time.monotonic()))
            await asyncio.sleep(PROGRESS_INTERVAL)

    def draw(self, text: str) -> None:
        """Replace the line on screen with ``text`` (cut to the terminal's width)."""
        columns = _columns(self._stream)
        text = text[: max(columns - 1, 20)]
        padding = " " * max(self._width - len(text), 0)
        self._stream.write(f"\r{text}{padding}")
        self._stream.flush()
        self._width = len(text)

    async def stop(self) -> None:
        """Stop redrawing and clear the line."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._width:
            self._stream.write("\r" + " " * self._width + "\r")
            self._stream.flush()
            self._width = 0


def _columns(stream: TextIO) -> int:
    try:
        columns = os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError):
        return 80
    return columns if columns > 0 else 80  # a terminal that never said


# Input ---------------------------------------------------------------------------


def stdin_chunks(fd: int = STDIN_FD, size: int = READ_SIZE) -> AsyncGenerator[bytes]:
    """Bytes from ``fd`` as they arrive, without blocking the event loop.

    A pipe or socket is watched by the event loop; anything else (a terminal,
    a regular file, a device) is read by a daemon thread, which a terminal
    needs anyway (non-blocking mode would leak to the shell sharing it).

    :raises InputError: ``fd`` cannot be read.
    """
    try:
        mode = os.fstat(fd).st_mode
    except OSError as exc:
        raise InputError(f"cannot read stdin: {exc.strerror}") from None
    if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        return _pipe_chunks(fd, size)
    return _thread_chunks(fd, size)


async def _pipe_chunks(fd: int, size: int) -> AsyncGenerator[bytes]:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=size)
    # The transport closes what it is given: hand it a duplicate, keep fd.
    pipe = os.fdopen(os.dup(fd), "rb", buffering=0)
    try:
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), pipe
        )
    except BaseException:
        pipe.close()
        raise
    try:
        while True:
            try:
                chunk = await reader.read(size)
            except OSError as exc:
                raise InputError(f"cannot read stdin: {exc.strerror}") from None
            if not chunk:
                return
            yield chunk
    finally:
        transport.close()
        # O_NONBLOCK is shared with whoever else holds this pipe: put it back.
        with contextlib.suppress(OSError):
            os.set_blocking(fd, True)


async def _thread_chunks(fd: int, size: int) -> AsyncGenerator[bytes]:
    loop = asyncio.get_running_loop()
    chunks: asyncio.Queue[bytes | OSError] = asyncio.Queue()
    stop = threading.Event()

    def pump() -> None:
        while not stop.is_set():
            item: bytes | OSError
            try:
                item = os.read(fd, size)
            except OSError as exc:
                item = exc
            try:
                loop.call_soon_threadsafe(chunks.put_nowait, item)
            except RuntimeError:  # the loop is closed: the program is ending
                return
            if not isinstance(item, bytes) or not item:
                return

    # A daemon: a read blocked on a terminal must not keep the process alive.
    threading.Thread(target=pump, name="polly-stream-stdin", daemon=True).start()
    try:
        while True:
            item = await chunks.get()
            if isinstance(item, OSError):
                raise InputError(f"cannot read stdin: {item.strerror}")
            if not item:
                return
            yield item
    finally:
        stop.set()


async def decode_utf8(chunks: AsyncIterator[bytes]) -> AsyncGenerator[str]:
    """Text from UTF-8 bytes, a piece per chunk (characters split across
    chunks are joined; a leading byte order mark is dropped).

    :raises InputError: the bytes are not UTF-8.
    """
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    try:
        async for chunk in chunks:
            if text := decoder.decode(chunk):
                yield text
        if text := decoder.decode(b"", final=True):
            yield text
    except UnicodeDecodeError as exc:
        msg = f"stdin is not UTF-8 text ({exc.reason})"
        raise InputError(msg) from None


class StreamedText:
    """Text pieces from a source, held back until there is something to say.

    ``wait_for_text`` reads until a piece that is not only whitespace arrives
    (so no request starts for an empty input), or the whole source
    (``whole=True``: an SSML document); iterating then yields what was read
    as one piece, and the rest of the source as it arrives.
    """

    def __init__(self, pieces: AsyncIterator[str]) -> None:
        self._pieces = pieces
        self._head = ""

    async def wait_for_text(self, *, whole: bool = False) -> bool:
        """Whether there is text at all (``False``: the source ended blank)."""
        async for piece in self._pieces:
            self._head += piece
            if not whole and self._head.strip():
                return True
        return bool(self._head.strip())

    def __aiter__(self) -> AsyncIterator[str]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[str]:
        head, self._head = self._head, ""
        if head:
            yield head
        async for piece in self._pieces:
            yield piece


# Output --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WavSpec:
    """The WAV container around the audio: what it holds, at what rate."""

    encoding: WavEncoding
    sample_rate: int

    @property
    def frame_size(self) -> int:
        """Bytes per sample (mono): 2 for pcm, 1 for mulaw and alaw."""
        return 2 if self.encoding == "pcm" else 1

    @classmethod
    def for_job(cls, job: Job) -> WavSpec | None:
        """The job's WAV container, if it writes one."""
        if not job.wav or job.sample_rate is None:
            return None
        for encoding in WAV_ENCODINGS:
            if encoding == job.output_format:
                return cls(encoding, int(job.sample_rate))
        return None


class AudioOutput:
    """Audio bytes to stdout or a file, written by a thread of its own.

    ``write`` never blocks the event loop, so a slow reader of stdout (a
    player taking the audio in real time) never stalls the stream. A regular
    file is written as ``FILE.part`` and renamed to ``FILE`` by ``finish``;
    ``abort`` removes the part file. A special file (``/dev/null``, a FIFO,
    ``/dev/fd/N``) is written in place.

    With ``wav``, a WAV header for an unknown length goes out with the first
    audio (so a failure before any audio writes nothing, not even to stdout),
    or at ``finish`` if there was no audio; ``finish`` then writes the real
    sizes into a regular file's header (and the RIFF pad byte after an odd
    number of 8-bit samples). Stdout and special files cannot seek back: they
    keep the "unknown length" header, which readers take as "to the end".
    """

    def __init__(self, path: str | None, *, wav: WavSpec | None = None) -> None:
        self.path = path
        self.wav = wav
        self._header = (
            b""
            if wav is None
            else wav_header(sample_rate=wav.sample_rate, encoding=wav.encoding)
        )
        self._header_due = wav is not None
        self.part: str | None = None
        self._fd = -1
        self._owns_fd = False
        self._queue: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._error: OutputError | None = None
        self._thread: threading.Thread | None = None
        self._done: asyncio.Future[None] | None = None
        self.queued = 0
        """Bytes handed to ``write`` so far."""

    @property
    def destination(self) -> str:
        return "stdout" if self.path is None else self.path

    def open(self) -> None:
        """Open the destination and start the writer thread.

        :raises OutputError: the file cannot be created.
        """
        path = self.path
        if path is None:
            if sys.stdout is None:  # the shell closed it (>&-)
                raise OutputError("cannot write stdout: it is closed")
            sys.stdout.flush()
            self._fd = STDOUT_FD
        else:
            special = _is_special(path)
            target = path if special else f"{path}.part"
            flags = os.O_WRONLY | os.O_CLOEXEC
            if not special:
                flags |= os.O_CREAT | os.O_TRUNC
            try:
                self._fd = os.open(target, flags, 0o666)
            except OSError as exc:
                msg = f"cannot write {target}: {exc.strerror}"
                raise OutputError(msg) from None
            self._owns_fd = True
            self.part = None if special else target
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._done = done
        self._thread = threading.Thread(
            target=self._write_all,
            args=(loop, done),
            name="polly-stream-output",
            daemon=True,  # a write blocked on a pipe must not keep us alive
        )
        self._thread.start()

    def write(self, data: bytes) -> None:
        """Queue ``data`` for the writer (never blocks).

        :raises OutputError: an earlier write failed (e.g. a broken pipe).
        """
        if self._error is not None:
            raise self._error
        if self._header_due:
            self._header_due = False
            self.queued += len(self._header)
            self._queue.put(self._header)
        self.queued += len(data)
        self._queue.put(data)

    def _write_all(
        self, loop: asyncio.AbstractEventLoop, done: asyncio.Future[None]
    ) -> None:
        while (data := self._queue.get()) is not None:
            if self._error is not None:
                continue  # drop the rest: the main task stops at its next write
            view = memoryview(data)
            try:
                while view:
                    view = view[os.write(self._fd, view) :]
            except BrokenPipeError:
                self._error = OutputError(
                    f"{self.destination} was closed before the audio was "
                    "complete (broken pipe)"
                )
            except OSError as exc:
                where = self.part or self.destination
                self._error = OutputError(f"cannot write {where}: {exc.strerror}")
        with contextlib.suppress(RuntimeError):  # the loop is closed: ending
            loop.call_soon_threadsafe(_resolve, done)

    async def finish(self) -> None:
        """Wait until every byte is written; then rename ``FILE.part`` to ``FILE``.

        :raises OutputError: writing, closing or renaming failed; a WAV
            file's pcm audio ended mid-sample.
        """
        if self._header_due:  # no audio at all: still a (valid, empty) WAV
            self.write(b"")
        self._queue.put(None)
        if self._done is not None:
            await self._done
        if self._error is not None:
            raise self._error
        if self.wav is not None and self.part is not None:
            self._write_wav_sizes(self.wav)
        try:
            if self._owns_fd:
                self._owns_fd = False
                os.close(self._fd)
            if self.part is not None and self.path is not None:
                os.replace(self.part, self.path)
                self.part = None
        except OSError as exc:
            msg = f"cannot write {self.destination}: {exc.strerror}"
            raise OutputError(msg) from None

    def _write_wav_sizes(self, wav: WavSpec) -> None:
        """Patch the header of the part file now that the length is known."""
        data_size = self.queued - len(self._header)
        if data_size % wav.frame_size:
            msg = (
                f"the audio ended mid-sample ({data_size} bytes of 16-bit pcm): "
                f"{self.destination} would not be a valid WAV file"
            )
            raise OutputError(msg)
        try:
            header = wav_header(
                sample_rate=wav.sample_rate,
                encoding=wav.encoding,
                data_size=data_size,
            )
        except ValueError as exc:  # over 4 GiB
            raise OutputError(f"cannot write {self.destination}: {exc}") from None
        try:
            # The writer thread is done: the fd is at the end of the audio.
            if data_size & 1 and os.write(self._fd, b"\0") != 1:  # RIFF pad byte
                raise OSError(0, "short write")
            if os.pwrite(self._fd, header, 0) != len(header):
                raise OSError(0, "short write")
        except OSError as exc:
            raise OutputError(f"cannot write {self.part}: {exc.strerror}") from None

    def abort(self) -> bool:
        """Give up: stop the writer, remove the part file; whether one with
        audio in it was removed (an empty one goes silently)."""
        self._queue.put(None)
        thread = self._thread
        if thread is not None:
            thread.join(timeout=1.0)  # a file write ends at once; a pipe may not
        if self._owns_fd and (thread is None or not thread.is_alive()):
            self._owns_fd = False
            with contextlib.suppress(OSError):
                os.close(self._fd)
        part, self.part = self.part, None
        if part is None:
            return False
        with contextlib.suppress(FileNotFoundError):
            os.unlink(part)
        return self.queued > 0


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _is_special(path: str) -> bool:
    """Whether ``path`` exists and is not a regular file (a device, a FIFO...)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode)


# Running ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Job:
    """What to synthesize, how, and where to (from the arguments)."""

    text: str | None
    """The text from the arguments; ``None``: read stdin."""
    text_type: Literal["text", "ssml"]
    output: str | None
    """A path; ``None``: stdout."""
    output_format: str
    sample_rate: str | None
    region: str
    wav: bool = False
    """Write the audio (pcm, mulaw or alaw) in a WAV file; ``sample_rate`` is set."""


def plan(
    args: argparse.Namespace, *, stdout_isatty: bool, environ: Mapping[str, str]
) -> Job:
    """Check the arguments and work out the job.

    :raises UsageError: the arguments cannot work.
    """
    words: list[str] = args.text
    text: str | None = None
    if words and words != ["-"]:
        text = " ".join(words)
        if not text.strip():
            msg = "TEXT is empty (give text, or none to read stdin)"
            raise UsageError(msg)
    output = output_path(args.output, stdout_isatty=stdout_isatty)
    output_format, wav = resolve_format(args.format, output, wav=args.wav)
    rate: int | None = args.sample_rate
    sample_rate = None if rate is None else str(rate)
    if wav and sample_rate is None:  # the header must name the rate Polly uses
        sample_rate = DEFAULT_SAMPLE_RATES[output_format]
    return Job(
        text=text,
        text_type="ssml" if args.ssml else "text",
        output=output,
        output_format=output_format,
        sample_rate=sample_rate,
        region=resolve_region(args.region, environ),
        wav=wav,
    )


class _Reporter:
    """Messages on stderr; whether to show progress (only on a terminal)."""

    def __init__(self, args: argparse.Namespace, stream: TextIO) -> None:
        self.stream = stream
        self.tty = _isatty(stream)
        self.quiet: bool = args.quiet
        self.live = self.tty and not args.quiet and not args.no_progress
        self.summary = self.tty and not args.quiet

    def error(self, message: str) -> None:
        self.stream.write(f"{PROG}: error: {message}\n")
        self.stream.flush()

    def note(self, message: str) -> None:
        self.stream.write(f"{PROG}: {message}\n")
        self.stream.flush()


async def run(args: argparse.Namespace) -> int:
    """Do what the parsed arguments say; the exit status."""
    report = _Reporter(args, sys.stderr if sys.stderr is not None else io.StringIO())
    try:
        job = plan(args, stdout_isatty=os.isatty(STDOUT_FD), environ=os.environ)
        client = PollyStreamingClient(
            job.region,
            endpoint_url=args.endpoint_url,
            ca_bundle=args.ca_bundle,
            profile=args.profile,
        )
    except (UsageError, ValueError, TypeError) as exc:
        report.error(describe_error(exc))
        return EXIT_USAGE
    output = AudioOutput(job.output, wav=WavSpec.for_job(job))
    try:
        return await _synthesize(args, job, client, output, report)
    except (ServiceException, RuntimeError, InputError, OutputError) as exc:
        report.error(describe_error(exc))
        return EXIT_FAILURE
    finally:  # also on Ctrl-C (cancellation)
        if output.abort():  # nothing to do after success
            report.note(f"removed the incomplete {output.destination}.part")


async def _synthesize(
    args: argparse.Namespace,
    job: Job,
    client: PollyStreamingClient,
    output: AudioOutput,
    report: _Reporter,
) -> int:
    async with contextlib.AsyncExitStack() as stack:
        source: str | StreamedText
        stdin_tty = False
        if job.text is not None:
            source = job.text
        else:
            if sys.stdin is None:
                raise InputError("cannot read stdin: it is closed")
            stdin_tty = os.isatty(STDIN_FD)
            chunks = await stack.enter_async_context(
                contextlib.aclosing(stdin_chunks(STDIN_FD))
            )
            pieces = await stack.enter_async_context(
                contextlib.aclosing(decode_utf8(chunks))
            )
            source = StreamedText(pieces)
        try:  # the arguments are checked here, before any I/O
            audio = client.start_speech_synthesis_stream(
                text=source,
                voice_id=args.voice,
                engine=args.engine,
                language_code=args.language_code,
                output_format=job.output_format,
                sample_rate=job.sample_rate,
                text_type=job.text_type,
                lexicon_names=args.lexicons,
                use_pool=False,
            )
        except (ValueError, TypeError) as exc:
            report.error(describe_error(exc))
            return EXIT_USAGE
        stack.push_async_callback(_aclose, audio)
        output.open()
        if isinstance(source, StreamedText):
            if stdin_tty and report.tty and not report.quiet:
                report.note("reading text from the terminal; Ctrl-D ends it")
            # No request for an empty input; SSML is one document: all of stdin.
            if not await source.wait_for_text(whole=job.text_type == "ssml"):
                raise InputError("no text to synthesize: stdin was empty")
        progress = Progress(started=time.monotonic())
        # A live line would garble what is being typed on the same terminal.
        display = ProgressDisplay(
            report.stream, progress, live=report.live and not stdin_tty
        )
        display.start()
        try:
            async for chunk in audio:
                progress.audio(len(chunk), time.monotonic())
                output.write(chunk)
            await output.finish()
        finally:
            await display.stop()
        if report.summary:
            report.stream.write(
                progress.summary(time.monotonic(), output.destination) + "\n"
            )
            report.stream.flush()
    return EXIT_OK


async def _aclose(iterator: AsyncIterator[bytes]) -> None:
    """Close an async generator (the client's audio: it ends the stream)."""
    if isinstance(iterator, AsyncGenerator):
        await iterator.aclose()


def _isatty(stream: TextIO | None) -> bool:
    if stream is None:
        return False
    try:
        return stream.isatty()
    except (OSError, ValueError):  # closed or detached
        return False


def _hold_closed_standard_fds() -> None:
    """Put ``/dev/null`` on 0, 1 or 2 if the shell closed them (``<&-``).

    Otherwise the next file opened (the event loop's, a socket) would get that
    number, and "stdin" or "stdout" would be something else entirely. Python
    saw them closed at start-up (``sys.stdin`` / ``sys.stdout`` is ``None``),
    which is what ``run`` goes by.
    """
    for fd in (STDIN_FD, STDOUT_FD, 2):
        try:
            os.fstat(fd)
        except OSError:
            devnull = os.open(os.devnull, os.O_RDWR)
            if devnull != fd:
                os.dup2(devnull, fd)
                os.close(devnull)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``polly-stream`` and ``python -m amazon_polly_streaming``."""
    _hold_closed_standard_fds()
    args = build_parser().parse_args(argv)
    try:
        return asyncio.run(run(args))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    raise SystemExit(main())
