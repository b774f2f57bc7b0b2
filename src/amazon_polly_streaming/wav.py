"""WAV (RIFF/WAVE) output for Polly's raw formats: pcm, mulaw and alaw.

Polly streams ``pcm`` as bare samples (signed 16-bit little-endian, mono, at
the requested rate) and ``mulaw``/``alaw`` as bare G.711 bytes (8 bit, mono,
8000 Hz). Most players, browsers and telephony tools want a WAV container
around them; this module provides one, three ways:

* :func:`wav_header`: the header bytes, for a known length or for a stream of
  unknown length.
* :func:`as_wav`: wraps an async iterator of audio (the client's
  ``start_speech_synthesis_stream``) into a WAV *stream*: a header for an
  unknown length, then the audio unchanged. Pipe it to a player or return it
  as an HTTP response body.
* :class:`WavFileWriter`: a file whose header is patched with the real sizes
  when it is closed.

Layout
------
pcm: the canonical 44-byte header (``RIFF``, ``fmt `` with 16 bytes of
``WAVE_FORMAT_PCM``, ``data``), byte for byte what Python's :mod:`wave` module
writes. mulaw/alaw: ``WAVE_FORMAT_MULAW`` (7) / ``WAVE_FORMAT_ALAW`` (6), 8 bits
per sample, the 18-byte ``fmt `` chunk (``cbSize`` = 0), and a ``fact`` chunk
holding the number of samples per channel, which the RIFF WAVE specification
requires for every format other than PCM: a 58-byte header.

Unknown length
--------------
A stream's length is not known when its header goes out. :func:`wav_header`
with ``data_size=None`` (and :func:`as_wav`, and :class:`WavFileWriter` until
it is closed) sets the ``RIFF`` and ``data`` sizes to ``0xFFFFFFFF``, the
largest a WAV header can hold. That is what ffmpeg itself writes when its
output cannot seek (a pipe), and readers take it as "until the end of the
stream": ffmpeg (``libavformat/wavdec.c`` ignores a data size of
``0xFFFFFFFF``, with a warning, and reads to the end), libsndfile (clamps the
size to what the file holds) and Python's :mod:`wave` (reads what is there).
A size of 0, the other convention seen in the wild, would make :mod:`wave` and
other strict readers see no audio at all. The ``fact`` sample count of such a
header is 0: ffmpeg takes a non-zero count as the duration (the maximum would
read as 149 hours of audio at 8000 Hz) and ignores a zero one.

RIFF rules
----------
Every chunk starts on an even offset: a data chunk of odd length (8-bit audio
with an odd number of samples) is followed by one pad byte (0), counted in the
``RIFF`` size but not in the ``data`` size. 16-bit pcm always has an even
length; a trailing half sample is not audio, and a length that is not a whole
number of sample frames is refused (see :class:`WavFileWriter` for what
happens to one at the end of a file).
"""

from __future__ import annotations

import os
import struct
from collections.abc import AsyncGenerator, AsyncIterable
from types import TracebackType
from typing import BinaryIO, Final, Literal, Self, cast, get_args

__all__ = [
    "UNKNOWN_SIZE",
    "WAVE_FORMAT_ALAW",
    "WAVE_FORMAT_MULAW",
    "WAVE_FORMAT_PCM",
    "WavEncoding",
    "WavFileWriter",
    "as_wav",
    "wav_header",
    "wav_header_size",
]

WavEncoding = Literal["pcm", "mulaw", "alaw"]
"""The Polly output formats a WAV file can hold (Polly's ``OutputFormat`` names)."""

WAVE_FORMAT_PCM: Final = 0x0001
WAVE_FORMAT_ALAW: Final = 0x0006
WAVE_FORMAT_MULAW: Final = 0x0007

UNKNOWN_SIZE: Final = 0xFFFFFFFF
"""The ``RIFF`` and ``data`` size of a header for a stream of unknown length."""

_ENCODINGS: Final = cast("tuple[WavEncoding, ...]", get_args(WavEncoding))
_FORMAT_TAG: Final[dict[str, int]] = {
    "pcm": WAVE_FORMAT_PCM,
    "mulaw": WAVE_FORMAT_MULAW,
    "alaw": WAVE_FORMAT_ALAW,
}
_UINT16_MAX: Final = 0xFFFF
_UINT32_MAX: Final = 0xFFFFFFFF
_PCM_HEADER_SIZE: Final = 44  # RIFF(12) + fmt(8 + 16) + data(8)
_G711_HEADER_SIZE: Final = 58  # RIFF(12) + fmt(8 + 18) + fact(8 + 4) + data(8)


def wav_header_size(encoding: WavEncoding = "pcm") -> int:
    """Length of the header :func:`wav_header` writes: 44 (pcm) or 58 bytes.

    :raises ValueError: naming ``encoding`` if it is not pcm, mulaw or alaw.
    """
    return _PCM_HEADER_SIZE if _check_encoding(encoding) == "pcm" else _G711_HEADER_SIZE


def wav_header(
    *,
    sample_rate: int,
    encoding: WavEncoding = "pcm",
    channels: int = 1,
    data_size: int | None = None,
) -> bytes:
    """A RIFF/WAVE header for ``data_size`` bytes of audio (``None``: unknown).

    ``sample_rate`` is in Hz (an ``int``: Polly's ``sample_rate`` is a string,
    so ``int(...)`` it). pcm is 16-bit little-endian; mulaw and alaw are 8-bit
    G.711. With ``data_size=None`` the header is for a stream of unknown
    length (sizes ``0xFFFFFFFF``, ``fact`` count 0: see the module docstring).
    With a ``data_size``, the ``RIFF`` size counts the pad byte that must
    follow an odd-length data chunk; writing that byte is the caller's job.

    :raises TypeError: an argument of the wrong type (named in the message).
    :raises ValueError: naming the argument: an unknown ``encoding``, a rate or
        channel count out of range, a ``data_size`` that is negative, not a
        whole number of sample frames (an odd size for 16-bit mono pcm), or too
        large for a WAV file (4 GiB in all).
    """
    encoding = _check_encoding(encoding)
    rate = _check_int("sample_rate", sample_rate, 1, _UINT32_MAX)
    channels = _check_int("channels", channels, 1, _UINT16_MAX)
    bytes_per_sample = 2 if encoding == "pcm" else 1
    block_align = channels * bytes_per_sample
    if block_align > _UINT16_MAX:
        msg = f"channels: {channels} channels do not fit a WAV header"
        raise ValueError(msg)
    byte_rate = rate * block_align
    if byte_rate > _UINT32_MAX:
        msg = (
            f"sample_rate {rate} with {channels} channel(s) of {encoding} is "
            f"{byte_rate} bytes/s, more than a WAV header can hold"
        )
        raise ValueError(msg)
    header_size = wav_header_size(encoding)
    riff_size: int
    data_field: int
    samples: int
    if data_size is None:
        riff_size = data_field = UNKNOWN_SIZE
        samples = 0
    else:
        data_field = _check_data_size(data_size, encoding, block_align, header_size)
        riff_size = header_size - 8 + data_field + (data_field & 1)
        samples = data_field // block_align
    tag = _FORMAT_TAG[encoding]
    bits = 8 * bytes_per_sample
    if encoding == "pcm":
        return struct.pack(
            "<4sI4s4sIHHIIHH4sI",
            *(b"RIFF", riff_size, b"WAVE"),
            *(b"fmt ", 16, tag, channels, rate, byte_rate, block_align, bits),
            *(b"data", data_field),
        )
    return struct.pack(
        "<4sI4s4sIHHIIHHH4sII4sI",
        *(b"RIFF", riff_size, b"WAVE"),
        *(b"fmt ", 18, tag, channels, rate, byte_rate, block_align, bits, 0),
        *(b"fact", 4, samples),
        *(b"data", data_field),
    )


def _check_encoding(encoding: object) -> WavEncoding:
    if not isinstance(encoding, str):
        msg = f"encoding must be a str, got {type(encoding).__name__}"
        raise TypeError(msg)
    if encoding not in _ENCODINGS:
        msg = (
            f"encoding must be 'pcm', 'mulaw' or 'alaw' (the formats a WAV file "
            f"holds), got {encoding!r}"
        )
        raise ValueError(msg)
    return encoding


def _check_int(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        hint = " (in Hz, like 16000)" if name == "sample_rate" else ""
        msg = f"{name} must be an int{hint}, got {type(value).__name__} {value!r}"
        raise TypeError(msg)
    if not low <= value <= high:
        msg = f"{name} must be between {low} and {high}, got {value}"
        raise ValueError(msg)
    return value


def _check_data_size(
    data_size: object, encoding: WavEncoding, block_align: int, header_size: int
) -> int:
    size = _check_int("data_size", data_size, 0, _UINT32_MAX)
    if size % block_align:
        msg = (
            f"data_size {size} is not a whole number of {block_align}-byte "
            f"sample frames ({encoding})"
        )
        raise ValueError(msg)
    if header_size - 8 + size + (size & 1) > _UINT32_MAX:
        most = _max_data_size(encoding, block_align)
        msg = f"data_size {size} is too large for a WAV file (at most {most} bytes)"
        raise ValueError(msg)
    return size


def _max_data_size(encoding: WavEncoding, block_align: int) -> int:
    """The most audio bytes a WAV file of this layout can hold (just under 4 GiB)."""
    room = _UINT32_MAX - (wav_header_size(encoding) - 8)
    room -= room % block_align
    if room & 1:  # an odd data chunk needs a pad byte inside the RIFF size
        room -= block_align
    return room


def as_wav(
    audio: AsyncIterable[bytes],
    *,
    sample_rate: int,
    encoding: WavEncoding = "pcm",
    channels: int = 1,
) -> AsyncGenerator[bytes]:
    """``audio`` as a WAV stream: a header for an unknown length, then the audio.

    ::

        audio = client.start_speech_synthesis_stream(
            text=text, voice_id="Joanna", output_format="pcm", sample_rate="16000"
        )
        async for chunk in as_wav(audio, sample_rate=16000):
            ...  # write to a player's stdin, or an HTTP response

    The arguments are checked at once (this is a plain function returning an
    async generator, so a bad ``sample_rate`` fails at the call, not at the
    first ``async for``). The header is yielded as a chunk of its own when the
    first audio chunk has arrived (or when ``audio`` ends without any), and
    the audio chunks follow unchanged: so an error before any audio (the
    service's validation, throttling) reaches the consumer before a single
    byte, and an HTTP handler can still answer with an error status.

    Closing the returned generator (``aclose``, or leaving an ``async for``
    inside ``contextlib.aclosing``) closes ``audio`` too, if it can be closed:
    for the client's audio that ends the Polly stream and frees its connection.
    The header's sizes say "unknown length" (``0xFFFFFFFF``); see the module
    docstring for which readers accept it.

    :raises TypeError: an argument of the wrong type.
    :raises ValueError: an unknown ``encoding``, a rate or channel count out
        of range (as :func:`wav_header`).
    """
    header = wav_header(sample_rate=sample_rate, encoding=encoding, channels=channels)
    return _wav_stream(header, audio)


async def _wav_stream(
    header: bytes, audio: AsyncIterable[bytes]
) -> AsyncGenerator[bytes]:
    iterator = aiter(audio)
    try:
        header_sent = False
        async for chunk in iterator:
            if not header_sent:
                header_sent = True
                yield header
            yield chunk
        if not header_sent:
            yield header  # no audio at all: a valid, empty WAV stream
    finally:
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()


class WavFileWriter:
    """A WAV file written as audio arrives; the header gets its sizes on close.

    ``file`` is a path (created or truncated, and closed by :meth:`close`) or
    a binary file object open for writing that can seek (its current position
    is where the WAV starts; it is flushed, not closed, by :meth:`close`)::

        with WavFileWriter("hello.wav", sample_rate=16000) as wav:
            async for chunk in client.start_speech_synthesis_stream(
                text="Hello.", voice_id="Joanna", output_format="pcm",
                sample_rate="16000",
            ):
                wav.write(chunk)

    The header is written (and flushed) at once with "unknown length" sizes,
    so a player may read the file while it grows, and a file whose writer
    never reached :meth:`close` (the process was killed) still plays to its
    end in ffmpeg and libsndfile. :meth:`close` seeks back and writes
    the real ``RIFF``, ``fact`` and ``data`` sizes, adding the pad byte an
    odd-length data chunk needs (8-bit audio, odd number of samples).

    Decisions:

    * An exception inside the ``with`` block still closes the file as a valid
      WAV holding what was written (the audio up to a failure is often worth
      keeping; delete the file yourself if not, or write to a temporary name
      and rename it on success, as the ``polly-stream`` command line does).
    * The data chunk holds whole sample frames only. Bytes of an incomplete
      last frame (a half 16-bit sample: only a stream cut mid-sample leaves
      one) are cut off the file. After an exception that happens silently;
      on a clean close the file is finished all the same and then
      :meth:`close` raises ``ValueError``, since the audio was not what it
      claimed to be.
    * I/O is synchronous (``write`` is a plain file write, fast on a local
      disk). In asyncio code that is usually fine for audio rates; to keep
      the event loop clear of a slow disk, run the writes in a thread
      (``await asyncio.to_thread(wav.write, chunk)``), or use :func:`as_wav`
      with a writer of your choice.
    * More audio than a WAV file can hold (about 4 GiB) is refused by
      :meth:`write` with ``ValueError`` before anything is written.
    """

    def __init__(
        self,
        file: str | os.PathLike[str] | BinaryIO,
        *,
        sample_rate: int,
        encoding: WavEncoding = "pcm",
        channels: int = 1,
    ) -> None:
        header = wav_header(
            sample_rate=sample_rate, encoding=encoding, channels=channels
        )
        self.sample_rate: int = sample_rate
        self.encoding: WavEncoding = encoding
        self.channels: int = channels
        self.data_size = 0
        """Audio bytes written so far (the header not counted)."""
        self._block_align = channels * (2 if encoding == "pcm" else 1)
        self._limit = _max_data_size(encoding, self._block_align)
        self._closed = False
        if isinstance(file, str | os.PathLike):
            self._file: BinaryIO = open(file, "wb")  # noqa: SIM115  # closed by close()
            self._owned = True
        else:
            if not file.seekable():
                msg = (
                    "file must be able to seek (the header is patched on close); "
                    "for a pipe or a socket, use as_wav()"
                )
                raise ValueError(msg)
            self._file = file
            self._owned = False
        try:
            self._start = self._file.tell()
            self._file.write(header)
            self._file.flush()
        except BaseException:
            if self._owned:
                self._file.close()
            raise
        self._header_size = len(header)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has run."""
        return self._closed

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Append audio (any split: a sample may straddle two writes).

        :raises ValueError: the writer is closed, or the file would exceed
            the WAV size limit (nothing is written then).
        """
        if self._closed:
            msg = "write to a closed WavFileWriter"
            raise ValueError(msg)
        size = memoryview(data).nbytes
        if self.data_size + size > self._limit:
            msg = (
                f"a WAV file holds at most {self._limit} bytes of audio; "
                f"{self.data_size} written, {size} more refused"
            )
            raise ValueError(msg)
        self._file.write(data)
        self.data_size += size

    def close(self) -> None:
        """Patch the sizes into the header and close (or flush) the file.

        Idempotent. Drops an incomplete last sample frame (see the class
        docstring) and then raises ``ValueError`` saying so.

        :raises ValueError: the audio ended with an incomplete sample frame
            (the file is complete and valid nonetheless).
        :raises OSError: the file could not be written.
        """
        dropped = self._finish()
        if dropped:
            msg = (
                f"the audio ended with an incomplete {self._block_align}-byte "
                f"sample frame: its {dropped} byte(s) were left out of the WAV file"
            )
            raise ValueError(msg)

    def _finish(self) -> int:
        """Write the sizes and close; how many trailing bytes were dropped."""
        if self._closed:
            return 0
        self._closed = True
        file = self._file
        try:
            dropped = self.data_size % self._block_align
            size = self.data_size - dropped
            end = self._start + self._header_size + size
            if dropped:
                file.seek(end)
                file.truncate()
            if size & 1:
                file.seek(end)
                file.write(b"\0")  # RIFF pad byte
            file.seek(self._start)
            file.write(
                wav_header(
                    sample_rate=self.sample_rate,
                    encoding=self.encoding,
                    channels=self.channels,
                    data_size=size,
                )
            )
            file.seek(0, os.SEEK_END)
            file.flush()
        finally:
            if self._owned:
                file.close()
        self.data_size = size
        return dropped

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc is None:
            self.close()
        else:
            self._finish()  # what was written stays a valid WAV; exc propagates
