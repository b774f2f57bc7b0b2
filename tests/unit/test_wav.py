"""WAV headers, the ``as_wav`` stream wrapper and ``WavFileWriter``.

pcm is checked against Python's own :mod:`wave` module (byte-identical
headers, read back); mulaw/alaw, which :mod:`wave` cannot read, are parsed by
hand field by field and read back with libsndfile (``soundfile``).
"""

from __future__ import annotations

import io
import struct
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from amazon_polly_streaming import WavFileWriter, as_wav, wav_header
from amazon_polly_streaming.wav import (
    UNKNOWN_SIZE,
    WAVE_FORMAT_ALAW,
    WAVE_FORMAT_MULAW,
    WAVE_FORMAT_PCM,
    WavEncoding,
    wav_header_size,
)

soundfile: Any = pytest.importorskip("soundfile")

MAX_PCM_DATA = 0xFFFFFFFF - 36 - 1  # even, so RIFF size = 36 + it fits in 32 bits
MAX_G711_DATA = 0xFFFFFFFF - 50 - 1  # even: no pad byte; one more would need one


def wave_module_bytes(
    frames: bytes, *, sample_rate: int, channels: int = 1, nframes: int | None = None
) -> bytes:
    """What Python's ``wave`` writes for 16-bit pcm."""
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        if nframes is not None:
            w.setnframes(nframes)
        w.writeframes(frames)
    return out.getvalue()


def parse_g711(data: bytes) -> dict[str, Any]:
    """Every field of a 58-byte mulaw/alaw header, by hand."""
    assert len(data) >= 58
    (
        riff,
        riff_size,
        wave_id,
        fmt_id,
        fmt_size,
        tag,
        channels,
        rate,
        byte_rate,
        block_align,
        bits,
        cb_size,
        fact_id,
        fact_size,
        samples,
        data_id,
        data_size,
    ) = struct.unpack("<4sI4s4sIHHIIHHH4sII4sI", data[:58])
    assert (riff, wave_id, fmt_id, fact_id, data_id) == (
        b"RIFF",
        b"WAVE",
        b"fmt ",
        b"fact",
        b"data",
    )
    assert (fmt_size, fact_size, cb_size) == (18, 4, 0)
    return {
        "riff_size": riff_size,
        "tag": tag,
        "channels": channels,
        "rate": rate,
        "byte_rate": byte_rate,
        "block_align": block_align,
        "bits": bits,
        "samples": samples,
        "data_size": data_size,
    }


# wav_header: pcm -------------------------------------------------------------------


@pytest.mark.parametrize("sample_rate", [8000, 16000, 24000, 44100])
@pytest.mark.parametrize("data_size", [0, 2, 10_000])
def test_pcm_header_is_what_the_wave_module_writes(
    sample_rate: int, data_size: int
) -> None:
    frames = bytes(range(256)) * (data_size // 256) + bytes(data_size % 256)
    expected = wave_module_bytes(frames, sample_rate=sample_rate)
    header = wav_header(sample_rate=sample_rate, data_size=data_size)
    assert len(header) == 44 == wav_header_size("pcm")
    assert header == expected[:44]
    assert header + frames == expected


def test_pcm_stereo_header_is_what_the_wave_module_writes() -> None:
    frames = b"\x01\x02\x03\x04" * 3
    expected = wave_module_bytes(frames, sample_rate=22050, channels=2)
    assert wav_header(sample_rate=22050, channels=2, data_size=12) == expected[:44]


def test_pcm_header_fields() -> None:
    header = wav_header(sample_rate=16000, data_size=3200)
    assert struct.unpack("<4sI4s4sIHHIIHH4sI", header) == (
        *(b"RIFF", 36 + 3200, b"WAVE"),
        *(b"fmt ", 16, WAVE_FORMAT_PCM, 1, 16000, 32000, 2, 16),
        *(b"data", 3200),
    )
    with wave.open(io.BytesIO(header + bytes(3200))) as r:
        assert r.getparams() == (1, 2, 16000, 1600, "NONE", "not compressed")


# wav_header: mulaw and alaw -----------------------------------------------------------


@pytest.mark.parametrize(
    ("encoding", "tag"), [("mulaw", WAVE_FORMAT_MULAW), ("alaw", WAVE_FORMAT_ALAW)]
)
@pytest.mark.parametrize(
    ("data_size", "riff_size"),
    [(0, 50), (1, 52), (8000, 8050), (8001, 8052)],  # odd data: + the pad byte
)
def test_g711_header_fields(
    encoding: WavEncoding, tag: int, data_size: int, riff_size: int
) -> None:
    header = wav_header(sample_rate=8000, encoding=encoding, data_size=data_size)
    assert len(header) == 58 == wav_header_size(encoding)
    assert parse_g711(header) == {
        "riff_size": riff_size,
        "tag": tag,
        "channels": 1,
        "rate": 8000,
        "byte_rate": 8000,
        "block_align": 1,
        "bits": 8,
        "samples": data_size,
        "data_size": data_size,
    }


def test_g711_stereo_header_fields() -> None:
    fields = parse_g711(
        wav_header(sample_rate=8000, encoding="alaw", channels=2, data_size=16)
    )
    assert (fields["byte_rate"], fields["block_align"], fields["samples"]) == (
        16000,
        2,
        8,
    )


def test_g711_header_exact_bytes() -> None:
    assert wav_header(sample_rate=8000, encoding="mulaw", data_size=3) == (
        b"RIFF\x36\x00\x00\x00WAVE"
        b"fmt \x12\x00\x00\x00\x07\x00\x01\x00\x40\x1f\x00\x00\x40\x1f\x00\x00"
        b"\x01\x00\x08\x00\x00\x00"
        b"fact\x04\x00\x00\x00\x03\x00\x00\x00"
        b"data\x03\x00\x00\x00"
    )


@pytest.mark.parametrize(("encoding", "subtype"), [("mulaw", "ULAW"), ("alaw", "ALAW")])
def test_g711_header_is_read_by_libsndfile(encoding: WavEncoding, subtype: str) -> None:
    audio = bytes(range(255))  # odd: a pad byte follows
    data = wav_header(sample_rate=8000, encoding=encoding, data_size=255) + audio
    info = soundfile.info(io.BytesIO(data + b"\0"))
    assert (info.format, info.subtype, info.samplerate, info.channels) == (
        "WAV",
        subtype,
        8000,
        1,
    )
    assert info.frames == 255


# Streaming headers --------------------------------------------------------------------


def test_streaming_pcm_header() -> None:
    header = wav_header(sample_rate=16000)
    assert struct.unpack("<4sI4s4sIHHIIHH4sI", header) == (
        *(b"RIFF", UNKNOWN_SIZE, b"WAVE"),
        *(b"fmt ", 16, WAVE_FORMAT_PCM, 1, 16000, 32000, 2, 16),
        *(b"data", UNKNOWN_SIZE),
    )
    assert UNKNOWN_SIZE == 0xFFFFFFFF
    # The wave module reads such a stream to its end.
    audio = bytes(range(200))
    with wave.open(io.BytesIO(header + audio)) as r:
        assert (r.getnchannels(), r.getsampwidth(), r.getframerate()) == (1, 2, 16000)
        assert r.readframes(1 << 20) == audio


@pytest.mark.parametrize(
    ("encoding", "tag"), [("mulaw", WAVE_FORMAT_MULAW), ("alaw", WAVE_FORMAT_ALAW)]
)
def test_streaming_g711_header(encoding: WavEncoding, tag: int) -> None:
    header = wav_header(sample_rate=8000, encoding=encoding)
    assert parse_g711(header) == {
        "riff_size": UNKNOWN_SIZE,
        "tag": tag,
        "channels": 1,
        "rate": 8000,
        "byte_rate": 8000,
        "block_align": 1,
        "bits": 8,
        "samples": 0,  # unknown: ffmpeg ignores 0, and would take a maximum as-is
        "data_size": UNKNOWN_SIZE,
    }
    # libsndfile reads what the stream holds.
    audio = bytes(range(101))
    data, rate = soundfile.read(io.BytesIO(header + audio), dtype="int16")
    assert (rate, len(data)) == (8000, 101)


# Limits and bad arguments ------------------------------------------------------------------


def test_largest_data_sizes() -> None:
    header = wav_header(sample_rate=16000, data_size=MAX_PCM_DATA)
    assert struct.unpack_from("<I", header, 4) == (0xFFFFFFFE,)
    header = wav_header(sample_rate=8000, encoding="alaw", data_size=MAX_G711_DATA)
    assert parse_g711(header)["riff_size"] == 0xFFFFFFFE
    # One more 8-bit sample: odd, so a pad byte too: 0xFFFFFFFF + 1.
    with pytest.raises(
        ValueError, match=r"too large for a WAV file \(at most 4294967244 bytes\)"
    ):
        wav_header(sample_rate=8000, encoding="alaw", data_size=MAX_G711_DATA + 1)
    with pytest.raises(
        ValueError, match=r"too large for a WAV file \(at most 4294967258 bytes\)"
    ):
        wav_header(sample_rate=16000, data_size=MAX_PCM_DATA + 2)


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        (
            {"sample_rate": "16000"},
            TypeError,
            "sample_rate must be an int (in Hz, like 16000), got str '16000'",
        ),
        ({"sample_rate": 16000.0}, TypeError, "sample_rate must be an int"),
        ({"sample_rate": True}, TypeError, "sample_rate must be an int"),
        (
            {"sample_rate": 0},
            ValueError,
            "sample_rate must be between 1 and 4294967295, got 0",
        ),
        ({"sample_rate": 1 << 32}, ValueError, "sample_rate must be between 1 and"),
        (
            {"sample_rate": 0xFFFFFFFF},
            ValueError,
            "bytes/s, more than a WAV header can hold",
        ),
        (
            {"encoding": "mp3"},
            ValueError,
            "encoding must be 'pcm', 'mulaw' or 'alaw' (the formats a WAV file holds), got 'mp3'",
        ),
        ({"encoding": "PCM"}, ValueError, "got 'PCM'"),
        ({"encoding": None}, TypeError, "encoding must be a str, got NoneType"),
        ({"channels": 0}, ValueError, "channels must be between 1 and 65535, got 0"),
        ({"channels": 1.0}, TypeError, "channels must be an int, got float 1.0"),
        ({"channels": 40_000}, ValueError, "channels: 40000 channels do not fit"),
        (
            {"data_size": -2},
            ValueError,
            "data_size must be between 0 and 4294967295, got -2",
        ),
        (
            {"data_size": 3},
            ValueError,
            "data_size 3 is not a whole number of 2-byte sample frames (pcm)",
        ),
        (
            {"data_size": 6, "channels": 2},
            ValueError,
            "data_size 6 is not a whole number of 4-byte sample frames (pcm)",
        ),
        (
            {"data_size": 3, "channels": 2, "encoding": "mulaw"},
            ValueError,
            "data_size 3 is not a whole number of 2-byte",
        ),
        ({"data_size": "10"}, TypeError, "data_size must be an int, got str '10'"),
    ],
)
def test_bad_arguments(
    arguments: dict[str, Any], error: type[Exception], message: str
) -> None:
    call: dict[str, Any] = {"sample_rate": 16000, **arguments}
    with pytest.raises(error) as raised:
        wav_header(**call)
    assert message in str(raised.value)


def test_header_size_of_an_unknown_encoding() -> None:
    with pytest.raises(ValueError, match="encoding must be 'pcm', 'mulaw' or 'alaw'"):
        wav_header_size("ogg_vorbis")  # type: ignore[arg-type]  # the point of the test


# as_wav ---------------------------------------------------------------------------------------


class Source:
    """An async generator of chunks that records whether it was closed."""

    def __init__(self, *chunks: bytes, fail: Exception | None = None) -> None:
        self.chunks = chunks
        self.fail = fail
        self.closed = False
        self.started = False

    async def gen(self) -> AsyncIterator[bytes]:
        self.started = True
        try:
            for chunk in self.chunks:
                yield chunk
            if self.fail is not None:
                raise self.fail
        finally:
            self.closed = True


async def test_as_wav_yields_the_header_then_the_audio_unchanged() -> None:
    source = Source(b"\x01\x02", b"\x03", b"\x04\x05\x06")
    chunks = [c async for c in as_wav(source.gen(), sample_rate=16000)]
    assert chunks == [
        wav_header(sample_rate=16000),
        b"\x01\x02",
        b"\x03",
        b"\x04\x05\x06",
    ]
    with wave.open(io.BytesIO(b"".join(chunks))) as r:
        assert r.getframerate() == 16000
        assert r.readframes(100) == b"\x01\x02\x03\x04\x05\x06"


async def test_as_wav_telephony() -> None:
    source = Source(b"\xff" * 80)
    chunks = [c async for c in as_wav(source.gen(), sample_rate=8000, encoding="mulaw")]
    assert chunks == [wav_header(sample_rate=8000, encoding="mulaw"), b"\xff" * 80]
    assert parse_g711(chunks[0])["tag"] == WAVE_FORMAT_MULAW


async def test_as_wav_sends_nothing_before_the_first_audio() -> None:
    # An error before any audio (a ValidationException, say) reaches the
    # consumer before a single byte, so an HTTP handler can still fail cleanly.
    source = Source(fail=RuntimeError("refused"))
    received: list[bytes] = []
    with pytest.raises(RuntimeError, match="refused"):
        async for chunk in as_wav(source.gen(), sample_rate=16000):
            received.append(chunk)  # the loop must see the error
    assert received == []


async def test_as_wav_of_no_audio_is_an_empty_wav_stream() -> None:
    chunks = [
        c async for c in as_wav(Source().gen(), sample_rate=8000, encoding="alaw")
    ]
    assert chunks == [wav_header(sample_rate=8000, encoding="alaw")]


async def test_as_wav_error_after_audio_propagates_after_the_audio() -> None:
    source = Source(b"\x00\x01", fail=ConnectionError("dropped"))
    received: list[bytes] = []
    with pytest.raises(ConnectionError, match="dropped"):
        async for chunk in as_wav(source.gen(), sample_rate=16000):
            received.append(chunk)
    assert received == [wav_header(sample_rate=16000), b"\x00\x01"]
    assert source.closed


async def test_closing_as_wav_closes_the_audio() -> None:
    source = Source(b"a" * 2, b"b" * 2, b"c" * 2)
    stream = as_wav(source.gen(), sample_rate=16000)
    assert await anext(stream) == wav_header(sample_rate=16000)
    assert await anext(stream) == b"aa"
    await stream.aclose()
    assert source.closed  # the client's stream would be reset, its lease freed


def test_as_wav_checks_its_arguments_at_the_call() -> None:
    source = Source(b"\x00\x00")
    with pytest.raises(TypeError, match="sample_rate must be an int"):
        as_wav(source.gen(), sample_rate="16000")  # type: ignore[arg-type]  # the point
    with pytest.raises(ValueError, match="got 'ogg_vorbis'"):
        as_wav(source.gen(), sample_rate=24000, encoding="ogg_vorbis")  # type: ignore[arg-type]
    assert not source.started


async def test_as_wav_takes_any_async_iterable() -> None:
    class Chunks:
        def __aiter__(self) -> AsyncIterator[bytes]:
            return Source(b"\x01\x00").gen()

    chunks = [c async for c in as_wav(Chunks(), sample_rate=8000)]
    assert chunks == [wav_header(sample_rate=8000), b"\x01\x00"]


# WavFileWriter --------------------------------------------------------------------------------


def test_writer_patches_the_sizes(tmp_path: Path) -> None:
    path = tmp_path / "out.wav"
    audio = bytes(range(256)) * 40  # 10,240 bytes, 5,120 samples
    with WavFileWriter(path, sample_rate=16000) as writer:
        # Until closed, the header says "unknown length".
        assert path.read_bytes()[:44] == wav_header(sample_rate=16000)
        for start in range(0, len(audio), 333):  # samples straddle writes
            writer.write(audio[start : start + 333])
        assert writer.data_size == len(audio)
    assert writer.closed
    data = path.read_bytes()
    assert data == wav_header(sample_rate=16000, data_size=len(audio)) + audio
    assert data == wave_module_bytes(audio, sample_rate=16000)
    with wave.open(str(path)) as r:
        assert r.getparams() == (1, 2, 16000, 5120, "NONE", "not compressed")
        assert r.readframes(10_000) == audio


def test_writer_of_nothing_is_an_empty_wav(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    with WavFileWriter(path, sample_rate=8000):
        pass
    assert path.read_bytes() == wave_module_bytes(b"", sample_rate=8000)


@pytest.mark.parametrize(("encoding", "subtype"), [("mulaw", "ULAW"), ("alaw", "ALAW")])
@pytest.mark.parametrize("size", [160, 161])
def test_writer_g711(
    tmp_path: Path, encoding: WavEncoding, subtype: str, size: int
) -> None:
    path = tmp_path / "call.wav"
    audio = bytes(i % 256 for i in range(size))
    with WavFileWriter(path, sample_rate=8000, encoding=encoding) as writer:
        writer.write(audio[:100])
        writer.write(bytearray(audio[100:]))
    data = path.read_bytes()
    pad = b"\0" if size % 2 else b""  # RIFF: chunks on even offsets
    assert (
        data
        == wav_header(sample_rate=8000, encoding=encoding, data_size=size) + audio + pad
    )
    fields = parse_g711(data)
    assert (fields["data_size"], fields["samples"]) == (size, size)
    assert fields["riff_size"] == len(data) - 8
    info = soundfile.info(str(path))
    assert (info.subtype, info.samplerate, info.frames) == (subtype, 8000, size)


def test_writer_into_a_file_object_at_an_offset() -> None:
    buffer = io.BytesIO()
    buffer.write(b"preamble")
    writer = WavFileWriter(buffer, sample_rate=16000)
    writer.write(b"\x10\x00\x20\x00")
    writer.close()
    writer.close()  # idempotent
    assert not buffer.closed  # not ours to close
    assert (
        buffer.getvalue()
        == b"preamble"
        + wav_header(sample_rate=16000, data_size=4)
        + b"\x10\x00\x20\x00"
    )
    assert buffer.tell() == len(buffer.getvalue())


def test_an_exception_in_the_block_leaves_a_valid_wav(tmp_path: Path) -> None:
    path = tmp_path / "partial.wav"
    writer = WavFileWriter(path, sample_rate=16000)
    with pytest.raises(ConnectionError, match="dropped"), writer:
        writer.write(b"\x01\x00\x02\x00\x03")  # cut mid-sample
        raise ConnectionError("dropped")
    assert path.read_bytes() == wave_module_bytes(
        b"\x01\x00\x02\x00", sample_rate=16000
    )
    assert writer.data_size == 4


def test_an_incomplete_last_sample_is_dropped_and_reported(tmp_path: Path) -> None:
    path = tmp_path / "odd.wav"
    writer = WavFileWriter(path, sample_rate=16000)
    writer.write(b"\x01\x00\x02")
    with pytest.raises(
        ValueError,
        match=r"incomplete 2-byte sample frame: its 1 byte\(s\) were left out of the WAV file",
    ):
        writer.close()
    assert writer.closed
    with wave.open(str(path)) as r:
        assert r.getnframes() == 1
        assert r.readframes(10) == b"\x01\x00"
    assert path.stat().st_size == 46


def test_writer_refuses_a_stream(tmp_path: Path) -> None:
    class Pipe(io.BytesIO):
        def seekable(self) -> bool:
            return False

    with pytest.raises(
        ValueError, match=r"file must be able to seek .* use as_wav\(\)"
    ):
        WavFileWriter(Pipe(), sample_rate=16000)


def test_writer_checks_its_arguments_before_creating_the_file(tmp_path: Path) -> None:
    path = tmp_path / "never.wav"
    with pytest.raises(ValueError, match="got 'mp3'"):
        WavFileWriter(path, sample_rate=24000, encoding="mp3")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="sample_rate must be an int"):
        WavFileWriter(path, sample_rate="8000")  # type: ignore[arg-type]
    assert not path.exists()


def test_write_after_close(tmp_path: Path) -> None:
    writer = WavFileWriter(tmp_path / "a.wav", sample_rate=8000, encoding="alaw")
    writer.close()
    with pytest.raises(ValueError, match="write to a closed WavFileWriter"):
        writer.write(b"\x00")


def test_writer_refuses_more_than_a_wav_file_holds() -> None:
    buffer = io.BytesIO()
    writer = WavFileWriter(buffer, sample_rate=8000, encoding="mulaw")
    writer.data_size = MAX_G711_DATA - 1  # as if ~4 GiB had been written
    writer.write(b"\x00")  # up to the limit: fine
    with pytest.raises(
        ValueError,
        match=r"a WAV file holds at most 4294967244 bytes of audio; 4294967244 written, 1 more refused",
    ):
        writer.write(b"\x00")
    assert buffer.getvalue() == wav_header(sample_rate=8000, encoding="mulaw") + b"\x00"
