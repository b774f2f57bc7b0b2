"""Deterministic synthetic audio for the emulator, in every Polly output format.

The emulator speaks no words: :func:`synthesize_pcm` turns text into a tune,
one short tone per letter or digit and silence for everything else, each
character lasting ``ms_per_character`` (40 ms unless told). The pitch of a
tone comes from the character and the voice (a stable CRC-32, never Python's
salted ``hash()``), and every sample is computed in exact integer arithmetic
(a phase accumulator and a polynomial sine), so the PCM is bit-identical on
every run, machine and NumPy version, and its length is exactly
``len(text) * samples_per_character(rate, ms)`` samples.

:func:`open_encoder` returns a streaming :class:`AudioEncoder`: feed it each
sentence's PCM as it is synthesized and send what it returns; everything it
ever returns, concatenated, is one valid stream (one MP3 stream, one Ogg
logical stream with its headers once at the start, or raw samples):

========== ==================================================================
format     encoder, and what :meth:`AudioEncoder.flush` guarantees
========== ==================================================================
pcm        passthrough (s16le mono, no header); nothing is ever held back
mulaw      G.711 mu-law, 8 bit mono, no header (ITU-T G.191 reference
           algorithm, 65,536-entry table); nothing is ever held back
alaw       G.711 A-law, likewise
mp3        LAME through libsndfile, CBR 48 kbit/s (MPEG-1 at 44.1/48 kHz,
           MPEG-2 at 16-24 kHz, MPEG-2.5 at 8 kHz), no ID3 tag and no
           Xing/LAME info frame (a stream cannot seek back to fill one in).
           Output is whole frames only. ``flush`` returns every frame LAME
           has completed; LAME keeps its look-ahead and the frames its bit
           reservoir still fills (2-5 frames: up to ~300 ms at 8 kHz, ~200 ms
           at the other rates) until more audio or ``finish``. Decoders see
           LAME's delay (1,105 samples of leading silence) and padding (less
           than a frame at the end).
           With no audio at all the stream is empty (``b""``).
ogg_vorbis libvorbis through libsndfile (quality 0.4, libsndfile's default).
           Output is whole Ogg pages only. ``flush`` returns every page
           libogg has closed; libogg closes a page about every 4 KiB of
           packets (up to ~1.8 s of this synthetic speech), which can wait
           for more audio or for ``finish`` (which ends the stream with the
           EOS page). libsndfile offers no way to close a page sooner.
ogg_opus   libopus through libsndfile (32 kbit/s VBR, 20 ms frames; Ogg Opus
           always decodes at 48 kHz). Whole Ogg pages; the page latency is
           lowered from libsndfile's 1 s to 100 ms when libsndfile can be
           told (see ``_set_ogg_page_latency``), so ``flush`` holds back
           about 100 ms of audio plus the 20 ms frame being filled. With no
           audio at all, ``finish`` encodes one silent sample: libsndfile
           would otherwise end the stream without an EOS page.
========== ==================================================================

Determinism of the compressed formats: libsndfile gives every Ogg stream a
random serial number, so the encoder parses its output into whole pages as
the bytes arrive and rewrites each page's serial to :data:`OGG_SERIAL_NUMBER`
(recomputing the page CRC). LAME writes an empty Xing/LAME info frame first and
fills it in on close by seeking back; the encoder drops that frame and
discards the late rewrite, so the output is an ordinary streamed MP3. What is
left is the codecs' own arithmetic, which is deterministic for a given build
of libsndfile/LAME/libvorbis/libopus (the ``soundfile`` wheel bundles them) on
a given CPU; the codecs use floating point, so a different wheel (or, for
libopus, whose SIMD paths are chosen at run time, a different x86 ISA level)
may produce different, equally valid bytes. The PCM, mu-law and A-law outputs
are exact everywhere.

Sample rates (``FORMATS``), as Polly's API reference for ``SynthesizeSpeech``
documents them (botocore 1.44.5 ``polly/2016-06-10/service-2.json``, member
``SynthesizeSpeechInput.SampleRate``); ``StartSpeechSynthesisStream``
documents only "The audio frequency, specified in Hz", and takes only the
generative engine, so its defaults are the generative ones:

* mp3, ogg_vorbis: "8000", "16000", "22050", "24000", "44100", "48000";
  default "24000" ("The default value for generative voices is 24000").
  (``StartSpeechSynthesisTask`` documents the older list without 44100 and
  48000; the emulator follows the newer ``SynthesizeSpeech`` text.)
* pcm: "8000", "16000"; default "16000" ("Valid values for pcm are 8000 and
  16000. The default value is 16000"). Some public code asks Polly for pcm at
  24000; the documentation does not list it, so the emulator rejects it.
* ogg_opus: "48000" ("Valid value for ogg_opus is 48000"), the default.
* mulaw, alaw: "8000" ("Valid value for mu-law and a-law is 8000"), the default.

Needs NumPy; the mp3/ogg encoders also need ``soundfile`` (libsndfile >= 1.1
with MP3 and Opus, as in the PyPI wheels), imported only when one is opened.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, BinaryIO, Final, Protocol, cast

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "FORMATS",
    "MP3_BITRATE_KBPS",
    "MS_PER_CHARACTER",
    "OGG_SERIAL_NUMBER",
    "AudioEncoder",
    "FormatSpec",
    "alaw_encode",
    "mulaw_encode",
    "ogg_crc32",
    "open_encoder",
    "samples_per_character",
    "synthesize_pcm",
]


@dataclass(frozen=True, slots=True)
class FormatSpec:
    """One output format: the sample rates Polly takes for it, as strings."""

    sample_rates: tuple[str, ...]
    """Every valid ``SampleRate`` value, ascending."""
    default: str
    """The rate used when the request names none (generative engine)."""
    content_type: str
    """The MIME type Polly reports for this format."""


_MP3_OGG_RATES = ("8000", "16000", "22050", "24000", "44100", "48000")

FORMATS: Final[Mapping[str, FormatSpec]] = MappingProxyType(
    {
        "mp3": FormatSpec(_MP3_OGG_RATES, "24000", "audio/mpeg"),
        "ogg_vorbis": FormatSpec(_MP3_OGG_RATES, "24000", "audio/ogg"),
        "ogg_opus": FormatSpec(("48000",), "48000", "audio/ogg"),
        "pcm": FormatSpec(("8000", "16000"), "16000", "audio/pcm"),
        "mulaw": FormatSpec(("8000",), "8000", "audio/mulaw"),
        "alaw": FormatSpec(("8000",), "8000", "audio/alaw"),
    }
)
"""Audio output formats (every ``OutputFormat`` but ``json``) and their rates."""

MS_PER_CHARACTER: Final = 40.0
"""Default duration of one character of synthetic speech, in milliseconds."""

MP3_BITRATE_KBPS: Final = 48
"""Constant bit rate of the MP3 stream, at every sample rate (6,000 bytes/s)."""

OGG_SERIAL_NUMBER: Final = 0x506F6C79
"""Serial number of every Ogg stream (ASCII ``Poly``), not libsndfile's random one."""

OPUS_BITRATE: Final = 32_000
"""Target bit rate of the Ogg Opus stream, in bit/s."""

OGG_PAGE_LATENCY_MS: Final = 100.0
"""Ogg Opus page duration asked of libsndfile (its default is 1,000 ms)."""

# ---------------------------------------------------------------------------
# Synthesis

_AMPLITUDE_Q15 = 11_469  # 0.35 of full scale
_FADE_MS = 5.0
_PHASE_BITS = 32
_PHASE_MASK = (1 << _PHASE_BITS) - 1
# A tone is base * (24 + step) / 24 Hz, step in [0, 24): up to an octave above
# the voice's base pitch, which is 80 to 239 Hz. The second harmonic (half the
# amplitude of the first) stays under 1 kHz, well inside 8 kHz's Nyquist.
_STEPS = 24
_BASE_MIN_HZ = 80
_BASE_SPAN_HZ = 160


def samples_per_character(
    sample_rate: int, ms_per_character: float = MS_PER_CHARACTER
) -> int:
    """How many samples one character of synthetic speech lasts (at least 1).

    :raises ValueError: if ``sample_rate`` or ``ms_per_character`` is not positive.
    """
    if sample_rate <= 0:
        msg = f"sample_rate must be positive, got {sample_rate}"
        raise ValueError(msg)
    if not ms_per_character > 0 or ms_per_character == float("inf"):
        msg = f"ms_per_character must be positive and finite, got {ms_per_character!r}"
        raise ValueError(msg)
    return max(1, round(sample_rate * ms_per_character / 1000))


def _voice_base_hz(voice: str) -> int:
    digest = zlib.crc32(voice.encode("utf-8", "surrogatepass"))
    return _BASE_MIN_HZ + digest % _BASE_SPAN_HZ


def _phase_increment(numerator: int, denominator: int, sample_rate: int) -> int:
    """Phase step per sample for a tone of ``numerator / denominator`` Hz."""
    return (numerator << _PHASE_BITS) // (denominator * sample_rate)


def _isine(phase: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Sine of a 32-bit phase, in Q15 (|error| < 0.002), exact integer arithmetic.

    A parabola per half period, sharpened towards a sine by the usual
    ``y + 0.225 * (y * |y| - y)`` correction; integers only, so every machine
    computes the same samples (no libm, no SIMD transcendental functions).
    """
    negative = (phase >> (_PHASE_BITS - 1)) & 1
    t = (phase >> (_PHASE_BITS - 16)) & 0x7FFF  # position in the half period
    y = (t * (0x8000 - t)) >> 13  # 4 t (1 - t), in Q15: 0 .. 32768
    y = y + (((y * y) >> 15) - y) * 225 // 1000
    sine: npt.NDArray[np.int64] = np.where(negative == 1, -y, y)
    return sine


def _tone(
    frequency: tuple[int, int], sample_rate: int, length: int
) -> npt.NDArray[np.int16]:
    """One character's tone: two harmonics, 5 ms linear fades, int16."""
    inc = _phase_increment(frequency[0], frequency[1], sample_rate)
    n = np.arange(length, dtype=np.uint64)
    phase1 = ((n * np.uint64(inc)) & np.uint64(_PHASE_MASK)).astype(np.int64)
    phase2 = ((n * np.uint64(2 * inc)) & np.uint64(_PHASE_MASK)).astype(np.int64)
    wave = (2 * _isine(phase1) + _isine(phase2)) // 3  # |wave| <= 32768
    fade = max(1, min(round(sample_rate * _FADE_MS / 1000), length // 4))
    i = np.arange(length, dtype=np.int64)
    ramp = np.minimum(np.minimum(i, length - 1 - i), fade)  # 0 at both ends
    envelope = ramp * _AMPLITUDE_Q15 // fade  # Q15
    tone: npt.NDArray[np.int16] = ((wave * envelope) >> 15).astype(np.int16)
    return tone


def synthesize_pcm(
    text: str,
    voice: str,
    sample_rate: int,
    *,
    ms_per_character: float = MS_PER_CHARACTER,
) -> bytes:
    """Deterministic synthetic "speech" for ``text``: s16le mono PCM.

    Every character lasts ``samples_per_character(sample_rate,
    ms_per_character)`` samples: a tone for a letter or digit
    (``str.isalnum``), silence for anything else. The tone's pitch depends
    on the character and on ``voice``; the bytes depend on nothing else.

    :raises ValueError: if ``sample_rate`` or ``ms_per_character`` is not positive.
    """
    spc = samples_per_character(sample_rate, ms_per_character)
    if not text:
        return b""
    base = _voice_base_hz(voice)
    # Index 0 is silence; each distinct sounding character gets its own row.
    rows: dict[str, int] = {}
    index = np.empty(len(text), dtype=np.intp)
    for position, char in enumerate(text):
        if char.isalnum():
            index[position] = rows.setdefault(char, len(rows) + 1)
        else:
            index[position] = 0
    table = np.zeros((len(rows) + 1, spc), dtype="<i2")
    for char, row in rows.items():
        step = zlib.crc32(char.encode("utf-8", "surrogatepass")) % _STEPS
        table[row] = _tone((base * (_STEPS + step), _STEPS), sample_rate, spc)
    return table[index].tobytes()


# ---------------------------------------------------------------------------
# G.711


def _bit_length(values: npt.NDArray[np.int64], max_bits: int) -> npt.NDArray[np.int64]:
    """``int.bit_length`` of each value (all below ``2 ** max_bits``)."""
    length = np.zeros_like(values)
    for bit in range(max_bits):
        length += values >= (1 << bit)
    return length


def _g711_tables() -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    """mu-law and A-law codes of every int16, indexed by its uint16 bit pattern.

    The ITU-T G.191 (STL) reference ``ulaw_compress`` / ``alaw_compress``:
    mu-law uses the 14 and A-law the 12 most significant bits, negative values
    through their one's complement, so the tables are odd-symmetric.
    """
    x = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.int16)
    x = x.astype(np.int64)
    positive = x >= 0

    magnitude = np.where(positive, x, ~x) >> 2  # 0 .. 8191
    absno = np.minimum(magnitude + 33, 0x1FFF)
    segment = _bit_length(absno >> 6, 7) + 1  # 1 .. 8
    low = 0xF - ((absno >> segment) & 0xF)
    mulaw = ((8 - segment) << 4) | low | np.where(positive, 0x80, 0)

    ix = np.where(positive, x, ~x) >> 4  # 0 .. 2047
    exponent = np.maximum(_bit_length(ix, 11) - 4, 0)  # 0 for ix < 16
    shifted = np.where(exponent > 0, (ix >> np.maximum(exponent - 1, 0)) - 16, ix)
    alaw = (shifted + (exponent << 4)) | np.where(positive, 0x80, 0)
    alaw ^= 0x55
    return mulaw.astype(np.uint8), alaw.astype(np.uint8)


_MULAW, _ALAW = _g711_tables()


def _samples(pcm: bytes | bytearray | memoryview) -> npt.NDArray[np.int16]:
    data = memoryview(pcm).cast("B")
    if len(data) % 2:
        msg = f"pcm must hold whole 16-bit samples, got {len(data)} bytes"
        raise ValueError(msg)
    return np.frombuffer(data, dtype="<i2")


def mulaw_encode(pcm: bytes | bytearray | memoryview) -> bytes:
    """G.711 mu-law of s16le PCM, one byte per sample (0 encodes as 0xFF).

    :raises ValueError: if ``pcm`` has an odd number of bytes.
    """
    codes: npt.NDArray[np.uint8] = _MULAW[_samples(pcm).view("<u2")]
    return codes.tobytes()


def alaw_encode(pcm: bytes | bytearray | memoryview) -> bytes:
    """G.711 A-law of s16le PCM, one byte per sample (0 encodes as 0xD5).

    :raises ValueError: if ``pcm`` has an odd number of bytes.
    """
    codes: npt.NDArray[np.uint8] = _ALAW[_samples(pcm).view("<u2")]
    return codes.tobytes()


# ---------------------------------------------------------------------------
# Encoders


class AudioEncoder(Protocol):
    """A streaming encoder: s16le mono PCM in, one encoded stream out."""

    def encode(self, pcm: bytes) -> bytes:
        """Feed PCM; return the encoded bytes ready now (maybe ``b""``).

        :raises ValueError: for an odd number of bytes.
        :raises RuntimeError: after :meth:`finish`.
        """
        ...

    def flush(self) -> bytes:
        """Return everything encodable so far without ending the stream.

        Exact for pcm, mulaw and alaw; best effort for the compressed
        formats (see the module docstring for what each can hold back).
        """
        ...

    def finish(self) -> bytes:
        """End the stream and return the rest. Further calls return ``b""``."""
        ...


class _RawEncoder:
    """pcm, mulaw, alaw: sample by sample, nothing held back."""

    def __init__(self, transform: Callable[[bytes], bytes]) -> None:
        self._transform = transform
        self._finished = False

    def encode(self, pcm: bytes) -> bytes:
        if self._finished:
            msg = "encode() after finish()"
            raise RuntimeError(msg)
        _samples(pcm)  # validates the length
        return self._transform(pcm)

    def flush(self) -> bytes:
        return b""

    def finish(self) -> bytes:
        self._finished = True
        return b""


def _pcm_passthrough(pcm: bytes) -> bytes:
    return bytes(pcm)


class _Sink:
    """The file libsndfile writes to: an append-only, never-failing recorder.

    libsndfile's virtual I/O wants ``seek``/``tell``/``write``/``read``. Bytes
    written at the end are collected for :meth:`take`; a write over bytes
    already taken (LAME's info frame, filled in on close) is counted and
    dropped, since they are gone. Nothing here raises: an exception inside a
    libsndfile callback would only be printed.
    """

    def __init__(self) -> None:
        self._pending = bytearray()
        self._position = 0
        self._end = 0
        self.dropped_rewrites = 0

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence == 1:
            offset += self._position
        elif whence == 2:
            offset += self._end
        self._position = max(0, offset)
        return self._position

    def tell(self) -> int:
        return self._position

    def read(self, size: int = -1) -> bytes:
        del size
        return b""

    def write(self, data: bytes | bytearray | memoryview) -> int:
        chunk = bytes(data)
        if self._position < self._end:
            self.dropped_rewrites += 1
            self._position += len(chunk)
            return len(chunk)
        if self._position > self._end:  # never seen: fill the gap
            self._pending += bytes(self._position - self._end)
        self._pending += chunk
        self._position += len(chunk)
        self._end = self._position
        return len(chunk)

    def take(self) -> bytes:
        out = bytes(self._pending)
        self._pending.clear()
        return out


# Ogg: the CRC is CRC-32/MPEG-2's polynomial, unreflected, with init and
# final XOR 0. zlib's CRC-32 is the same polynomial reflected, with init and
# final XOR ~0; bit-reversing every input byte and the result turns one into
# the other, which keeps the per-page cost in C.
_BYTE_REVERSE = bytes(int(f"{b:08b}"[::-1], 2) for b in range(256))


def ogg_crc32(data: bytes | bytearray) -> int:
    """The Ogg page checksum of ``data`` (the page with its CRC field zeroed)."""
    reflected = (
        zlib.crc32(bytes(data).translate(_BYTE_REVERSE), 0xFFFFFFFF) ^ 0xFFFFFFFF
    )
    return int(f"{reflected:032b}"[::-1], 2)


_OGG_HEADER = 27


class _OggRestamper:
    """Cut an Ogg byte stream into whole pages; give each a fixed serial."""

    def __init__(self, serial: int) -> None:
        self._serial = serial.to_bytes(4, "little")
        self._buffer = bytearray()

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def __call__(self, data: bytes) -> bytes:
        buffer = self._buffer
        buffer += data
        out = bytearray()
        start = 0
        while len(buffer) - start >= _OGG_HEADER:
            if not buffer.startswith(b"OggS", start):
                msg = f"libsndfile wrote something other than an Ogg page at {start}"
                raise RuntimeError(msg)
            segments = buffer[start + 26]
            table_end = start + _OGG_HEADER + segments
            if len(buffer) < table_end:
                break
            page_end = table_end + sum(buffer[start + _OGG_HEADER : table_end])
            if len(buffer) < page_end:
                break
            page = bytearray(buffer[start:page_end])
            page[14:18] = self._serial
            page[22:26] = b"\0\0\0\0"
            page[22:26] = ogg_crc32(page).to_bytes(4, "little")
            out += page
            start = page_end
        del buffer[:start]
        return bytes(out)


# MPEG audio layer III frame headers: the bit rate (kbit/s) tables, by
# version (MPEG-1, or MPEG-2 and 2.5), and the sample rates by version bits.
_MP3_BITRATES = {
    True: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    False: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_MP3_RATES = {
    3: (44100, 48000, 32000),
    2: (22050, 24000, 16000),
    0: (11025, 12000, 8000),
}


def _mp3_frame_length(header: bytes | bytearray) -> int | None:
    """Length of the layer III frame starting with this 4-byte header, if valid."""
    if len(header) < 4 or header[0] != 0xFF or header[1] & 0xE0 != 0xE0:
        return None
    version = (header[1] >> 3) & 3
    layer = (header[1] >> 1) & 3
    bitrate_index = header[2] >> 4
    rate_index = (header[2] >> 2) & 3
    if version == 1 or layer != 1 or bitrate_index in (0, 15) or rate_index == 3:
        return None
    mpeg1 = version == 3
    bitrate = _MP3_BITRATES[mpeg1][bitrate_index] * 1000
    rate = _MP3_RATES[version][rate_index]
    padding = (header[2] >> 1) & 1
    return (144 if mpeg1 else 72) * bitrate // rate + padding


class _Mp3Framer:
    """Cut LAME's output into whole frames; drop its placeholder info frame.

    LAME hands out bytes as its bit reservoir allows, not frame by frame; the
    framer holds back the incomplete last frame, so every chunk it returns
    starts on a frame boundary and a client can decode each as it arrives.

    LAME (``lame_set_bWriteVbrTag``, which libsndfile turns on for anything it
    can seek in) also starts the stream with an empty frame (a header, then
    zeros) and overwrites it on close with the Xing/LAME tag (frame count,
    seek table, encoder delay). A stream cannot be rewritten, so that frame
    goes, as LAME itself leaves it out when writing to a pipe.

    Should LAME ever write something that is not a frame, the framer stops
    cutting and passes the rest through as it comes.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._first = True
        self._passthrough = False

    def __call__(self, data: bytes) -> bytes:
        if self._passthrough:
            return data
        buffer = self._buffer
        buffer += data
        start = 0
        while len(buffer) - start >= 4:  # a whole header
            length = _mp3_frame_length(buffer[start : start + 4])
            if length is None:
                self._passthrough = True
                break
            if len(buffer) - start < length:
                break
            if self._first:
                self._first = False
                body = 6 if buffer[1] & 1 == 0 else 4  # after the optional CRC
                if not any(buffer[body:length]):
                    del buffer[:length]
                    continue
            start += length
        if self._passthrough:
            start = len(buffer)
        out = bytes(buffer[:start])
        del buffer[:start]
        return out

    def end(self) -> bytes:
        """The held-back rest, when the stream ends (normally nothing)."""
        out = bytes(self._buffer)
        self._buffer.clear()
        return out


def _soundfile() -> Any:
    """The ``soundfile`` module, imported on first use (pcm and G.711 need none)."""
    import soundfile  # type: ignore[import-untyped]  # noqa: PLC0415

    return soundfile


def _set_ogg_page_latency(sound_file: Any, milliseconds: float) -> bool:
    """Ask libsndfile for shorter Ogg Opus pages (``SFC_SET_OGG_PAGE_LATENCY``).

    ``soundfile`` has no public call for it, so this goes through its cffi
    handles; if they are not there (another soundfile), it does nothing and
    pages stay libsndfile's default length.
    """
    soundfile = _soundfile()
    lib = getattr(soundfile, "_snd", None)
    ffi = getattr(soundfile, "_ffi", None)
    handle = getattr(sound_file, "_file", None)
    if lib is None or ffi is None or handle is None:
        return False
    try:
        value = ffi.new("double[1]")
        value[0] = milliseconds
        return bool(lib.sf_command(handle, 0x1303, value, ffi.sizeof(value)) == 0)
    except (AttributeError, TypeError):
        return False


def _compression_for_mp3_bitrate(sample_rate: int, kbps: int) -> float:
    """The compression level libsndfile maps to ``kbps`` in CBR mode.

    libsndfile: bit rate = top - level * (top - 8 or 32), truncated; top is
    320 (MPEG-1, >= 32 kHz), 160 (MPEG-2, >= 16 kHz) or 64 (MPEG-2.5); aim
    half a kbit/s above so truncation lands on ``kbps``.
    """
    if sample_rate >= 32000:
        top, bottom = 320.0, 32.0
    elif sample_rate >= 16000:
        top, bottom = 160.0, 8.0
    else:
        top, bottom = 64.0, 8.0
    return (top - (kbps + 0.5)) / (top - bottom)


class _LibsndfileEncoder:
    """mp3, ogg_vorbis, ogg_opus through libsndfile, written incrementally."""

    def __init__(self, output_format: str, sample_rate: int) -> None:
        soundfile = _soundfile()
        self._sink = _Sink()
        options: dict[str, Any]
        self._post: _OggRestamper | _Mp3Framer
        if output_format == "mp3":
            options = {
                "format": "MP3",
                "subtype": "MPEG_LAYER_III",
                "compression_level": _compression_for_mp3_bitrate(
                    sample_rate, MP3_BITRATE_KBPS
                ),
                "bitrate_mode": "CONSTANT",
            }
            self._post = _Mp3Framer()
        elif output_format == "ogg_vorbis":
            # Level 0.6 is libvorbis quality 0.4, libsndfile's default: pinned.
            options = {"format": "OGG", "subtype": "VORBIS", "compression_level": 0.6}
            self._post = _OggRestamper(OGG_SERIAL_NUMBER)
        else:
            # libsndfile: bit rate = (1 - level) * 250 kbit/s + 6 kbit/s.
            level = 1.0 - (OPUS_BITRATE - 6000) / 250_000
            options = {"format": "OGG", "subtype": "OPUS", "compression_level": level}
            self._post = _OggRestamper(OGG_SERIAL_NUMBER)
        self._file: Any = soundfile.SoundFile(
            cast("BinaryIO", self._sink),
            "w",
            samplerate=sample_rate,
            channels=1,
            **options,
        )
        self._opus = output_format == "ogg_opus"
        if self._opus:
            _set_ogg_page_latency(self._file, OGG_PAGE_LATENCY_MS)
        self._written = 0
        self._finished = False

    def encode(self, pcm: bytes) -> bytes:
        if self._finished:
            msg = "encode() after finish()"
            raise RuntimeError(msg)
        samples = _samples(pcm)
        if samples.size:
            self._file.write(samples)
            self._written += samples.size
        return self._post(self._sink.take())

    def flush(self) -> bytes:
        if self._finished:
            return b""
        self._file.flush()
        return self._post(self._sink.take())

    def finish(self) -> bytes:
        if self._finished:
            return b""
        self._finished = True
        if self._written == 0 and self._opus:
            # libsndfile ends an Opus stream with no audio packet at all and no
            # EOS page, which decoders (libsndfile's own) reject: one silent
            # sample makes it a valid, 1-sample stream.
            self._file.write(np.zeros(1, dtype=np.int16))
        self._file.close()
        out = self._post(self._sink.take())
        if isinstance(self._post, _Mp3Framer):
            out += self._post.end()
        elif self._post.buffered:
            msg = f"libsndfile ended Ogg mid-page ({self._post.buffered} bytes left)"
            raise RuntimeError(msg)
        return out


def open_encoder(output_format: str, sample_rate: int) -> AudioEncoder:
    """A streaming encoder from s16le mono PCM at ``sample_rate`` to ``output_format``.

    :raises ValueError: naming ``output_format`` if it is not an audio format of
        :data:`FORMATS` (``json`` is speech marks, not audio), or naming
        ``sample_rate`` if Polly does not take that rate for the format.
    """
    spec = FORMATS.get(output_format)
    if spec is None:
        msg = (
            f"output_format {output_format!r} is not an audio format; "
            f"expected one of {', '.join(FORMATS)}"
        )
        raise ValueError(msg)
    if str(sample_rate) not in spec.sample_rates:  # also rejects True, 8000.0
        msg = (
            f"sample_rate {sample_rate!r} is not valid for {output_format}; "
            f"expected one of {', '.join(spec.sample_rates)}"
        )
        raise ValueError(msg)
    if output_format == "pcm":
        return _RawEncoder(_pcm_passthrough)
    if output_format == "mulaw":
        return _RawEncoder(mulaw_encode)
    if output_format == "alaw":
        return _RawEncoder(alaw_encode)
    return _LibsndfileEncoder(output_format, sample_rate)
