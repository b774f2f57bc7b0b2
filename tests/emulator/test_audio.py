"""The emulator's synthetic audio: determinism, duration, one stream per request.

Decoding uses libsndfile (through ``soundfile``: mpg123 for MP3, libvorbis and
libopus for Ogg), the library that also encodes; the Ogg page structure, the
Ogg CRCs, the MP3 frame headers and G.711 are checked against independent
implementations written here. Where they are installed, independent tools
check the streams too (otherwise those tests are skipped): the command-line
``ogginfo`` (Debian vorbis-tools), ``opusinfo`` (opus-tools) and ``mpg123``,
and CPython's former ``audioop`` module (PyPI ``audioop-lts``) for G.711.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf  # type: ignore[import-untyped]

from amazon_polly_streaming.testing.audio import (
    FORMATS,
    MP3_BITRATE_KBPS,
    MS_PER_CHARACTER,
    OGG_SERIAL_NUMBER,
    alaw_encode,
    mulaw_encode,
    ogg_crc32,
    open_encoder,
    samples_per_character,
    synthesize_pcm,
)

VOICE = "Joanna"
SENTENCES = (
    "Hello there.",
    " How are you today?",
    " I am a synthetic voice, counting 1 2 3!",
    " Goodbye.",
)
CASES = [
    (fmt, int(rate)) for fmt, spec in FORMATS.items() for rate in spec.sample_rates
]
COMPRESSED = {"mp3", "ogg_vorbis", "ogg_opus"}
LAME_DELAY = 576 + 529  # encoder + decoder delay, in samples, at every rate
OGG = {"ogg_vorbis", "ogg_opus"}


def case_id(case: tuple[str, int]) -> str:
    return f"{case[0]}-{case[1]}"


def stream(
    output_format: str, sample_rate: int, sentences: tuple[str, ...] = SENTENCES
) -> tuple[list[bytes], int]:
    """Encode sentence by sentence as the emulator does (encode + flush, then finish).

    Returns the chunks (one per sentence, then the finish) and the PCM sample count.
    """
    encoder = open_encoder(output_format, sample_rate)
    chunks: list[bytes] = []
    samples = 0
    for sentence in sentences:
        pcm = synthesize_pcm(sentence, VOICE, sample_rate)
        samples += len(pcm) // 2
        chunks.append(encoder.encode(pcm) + encoder.flush())
    chunks.append(encoder.finish())
    return chunks, samples


def decode(output_format: str, data: bytes) -> tuple[npt.NDArray[np.int16], int | None]:
    """Samples and (for the compressed formats) the decoder's sample rate."""
    if output_format == "pcm":
        return np.frombuffer(data, dtype="<i2"), None
    if output_format in ("mulaw", "alaw"):
        codes = np.frombuffer(data, dtype=np.uint8)
        table = ULAW_DECODE if output_format == "mulaw" else ALAW_DECODE
        return table[codes], None
    samples, rate = sf.read(io.BytesIO(data), dtype="int16")
    return np.asarray(samples, dtype=np.int16), int(rate)


def decoded_rate(output_format: str, sample_rate: int) -> int:
    return 48000 if output_format == "ogg_opus" else sample_rate


# --- Independent reference implementations --------------------------------------


MULAW_SEGMENT_ENDS = (0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF)


def ref_mulaw(sample: int) -> int:
    """G.711 mu-law, scalar: the 14 most significant bits (one's complement for negatives, as
    ITU-T G.191 does), bias 33, segment by table search, code complemented."""
    sign = 0x80 if sample >= 0 else 0x00
    magnitude = (sample if sample >= 0 else -sample - 1) >> 2
    biased = min(magnitude + 33, 0x1FFF)
    segment = next(i for i, end in enumerate(MULAW_SEGMENT_ENDS) if biased <= end)
    mantissa = (biased >> (segment + 1)) & 0xF
    return (sign | (segment << 4) | mantissa) ^ 0x7F


def ref_alaw(sample: int) -> int:
    """G.711 A-law, scalar: the 12 most significant bits (one's complement for negatives),
    segment by repeated comparison, even bits inverted."""
    sign = 0x80 if sample >= 0 else 0x00
    magnitude = (sample if sample >= 0 else -sample - 1) >> 4
    if magnitude < 16:
        segment, mantissa = 0, magnitude
    else:
        segment = 1
        while magnitude >= (32 << (segment - 1)):
            segment += 1
        mantissa = (magnitude >> (segment - 1)) & 0xF
    return (sign | (segment << 4) | mantissa) ^ 0x55


def ulaw_to_linear(code: int) -> int:
    """The classic (Sun/CCITT) mu-law decoder."""
    code = ~code & 0xFF
    value = (((code & 0x0F) << 3) + 0x84) << ((code & 0x70) >> 4)
    return 0x84 - value if code & 0x80 else value - 0x84


def alaw_to_linear(code: int) -> int:
    """The classic (Sun/CCITT) A-law decoder."""
    code ^= 0x55
    value = (code & 0x0F) << 4
    segment = (code & 0x70) >> 4
    if segment == 0:
        value += 8
    else:
        value = (value + 0x108) << (segment - 1)
    return value if code & 0x80 else -value


ULAW_DECODE = np.array([ulaw_to_linear(c) for c in range(256)], dtype=np.int16)
ALAW_DECODE = np.array([alaw_to_linear(c) for c in range(256)], dtype=np.int16)


def _ogg_crc_table() -> list[int]:
    table: list[int] = []
    for byte in range(256):
        crc = byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
            crc &= 0xFFFFFFFF
        table.append(crc)
    return table


OGG_CRC_TABLE = _ogg_crc_table()


def ref_ogg_crc(data: bytes) -> int:
    """Ogg's CRC-32: polynomial 0x04C11DB7, MSB first, init 0, no final XOR."""
    crc = 0
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ OGG_CRC_TABLE[(crc >> 24) ^ byte]
    return crc


def ogg_pages(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(offset, page) for each page; fails on anything that is not a whole page."""
    offset = 0
    while offset < len(data):
        assert data[offset : offset + 4] == b"OggS", f"no page at {offset}"
        segments = data[offset + 26]
        lacing = data[offset + 27 : offset + 27 + segments]
        assert len(lacing) == segments, "truncated segment table"
        end = offset + 27 + segments + sum(lacing)
        assert end <= len(data), "truncated page"
        yield offset, data[offset:end]
        offset = end


def mp3_frames(data: bytes) -> Iterator[tuple[int, int, int, int]]:
    """(offset, version bits, bitrate kbps, sample rate) of each layer III frame."""
    bitrates_v1 = [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320]
    bitrates_v2 = [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160]
    rates = {
        3: [44100, 48000, 32000],
        2: [22050, 24000, 16000],
        0: [11025, 12000, 8000],
    }
    offset = 0
    while offset < len(data):
        header = int.from_bytes(data[offset : offset + 4], "big")
        assert header >> 21 == 0x7FF, f"no frame sync at {offset}"
        version = (header >> 19) & 3
        assert (header >> 17) & 3 == 1, "not layer III"
        kbps = (bitrates_v1 if version == 3 else bitrates_v2)[(header >> 12) & 0xF]
        rate = rates[version][(header >> 10) & 3]
        padding = (header >> 9) & 1
        length = (144 if version == 3 else 72) * kbps * 1000 // rate + padding
        assert offset + length <= len(data), "truncated frame"
        yield offset, version, kbps, rate
        offset += length


# --- FORMATS --------------------------------------------------------------------


def test_formats_cover_every_audio_output_format() -> None:
    from amazon_polly_streaming import OutputFormat

    assert set(FORMATS) == {str(f.value) for f in OutputFormat} - {"json"}
    for spec in FORMATS.values():
        assert spec.default in spec.sample_rates
        assert list(spec.sample_rates) == sorted(spec.sample_rates, key=int)


def test_formats_match_polly_documentation() -> None:
    documented = ("8000", "16000", "22050", "24000", "44100", "48000")
    assert {f: (s.sample_rates, s.default) for f, s in FORMATS.items()} == {
        "mp3": (documented, "24000"),
        "ogg_vorbis": (documented, "24000"),
        "ogg_opus": (("48000",), "48000"),
        "pcm": (("8000", "16000"), "16000"),
        "mulaw": (("8000",), "8000"),
        "alaw": (("8000",), "8000"),
    }
    assert FORMATS["mp3"].content_type == "audio/mpeg"
    assert FORMATS["ogg_opus"].content_type == "audio/ogg"


# --- Synthesis ------------------------------------------------------------------


def test_pcm_length_is_exactly_characters_times_duration() -> None:
    for rate in (8000, 16000, 22050, 24000, 44100, 48000):
        per_char = samples_per_character(rate)
        assert per_char == round(rate * MS_PER_CHARACTER / 1000)
        assert len(synthesize_pcm("Hi, you!", VOICE, rate)) == 2 * 8 * per_char
    assert synthesize_pcm("", VOICE, 16000) == b""
    half = synthesize_pcm("abc", VOICE, 16000, ms_per_character=20)
    assert len(half) == 2 * 3 * 320
    assert samples_per_character(8000, 0.001) == 1


def test_pcm_is_tones_for_letters_and_silence_otherwise() -> None:
    rate = 16000
    per_char = samples_per_character(rate)
    text = "ab .,!9?"
    samples = np.frombuffer(synthesize_pcm(text, VOICE, rate), dtype="<i2")
    slots = samples.reshape(len(text), per_char)
    for char, slot in zip(text, slots, strict=True):
        if char.isalnum():
            assert np.abs(slot.astype(np.int32)).max() > 5000
            assert slot[0] == 0
            assert slot[-1] == 0  # faded in and out: no clicks
        else:
            assert not slot.any()
    assert np.abs(samples.astype(np.int32)).max() <= 11469  # 0.35 of full scale
    # A repeated letter repeats its tone exactly; different letters differ.
    again = np.frombuffer(synthesize_pcm("aa", VOICE, rate), dtype="<i2")
    assert (
        again[:per_char].tobytes() == again[per_char:].tobytes() == slots[0].tobytes()
    )
    assert slots[0].tobytes() != slots[1].tobytes()


GOLDEN_PCM = "373d9fbbc8ade8cc"
GOLDEN_UNICODE = "d94e99c4002807cd"


def test_pcm_is_a_function_of_text_voice_and_rate_only() -> None:
    a = synthesize_pcm("Hello world.", "Joanna", 16000)
    assert a == synthesize_pcm("Hello world.", "Joanna", 16000)
    assert a != synthesize_pcm("Hello world.", "Matthew", 16000)
    assert a != synthesize_pcm("Hello wordl.", "Joanna", 16000)
    # Golden digests: the PCM is integer arithmetic, so these hold on every
    # machine, Python and NumPy version; a change here changes every
    # recorded emulator stream.
    assert hashlib.sha256(a).hexdigest()[:16] == GOLDEN_PCM
    text = "Unicode: déjà vu, 日本語, emoji 🙂!"
    assert hashlib.sha256(synthesize_pcm(text, "Ruth", 24000)).hexdigest()[:16] == (
        GOLDEN_UNICODE
    )


def test_pcm_rejects_bad_rate_and_duration() -> None:
    with pytest.raises(ValueError, match="sample_rate"):
        synthesize_pcm("a", VOICE, 0)
    with pytest.raises(ValueError, match="ms_per_character"):
        synthesize_pcm("a", VOICE, 8000, ms_per_character=0)
    with pytest.raises(ValueError, match="ms_per_character"):
        synthesize_pcm("a", VOICE, 8000, ms_per_character=float("nan"))


def test_synthesis_of_10000_characters_is_fast() -> None:
    text = ("The quick brown fox jumps over the lazy dog. " * 223)[:10_000]
    start = time.perf_counter()
    pcm = synthesize_pcm(text, VOICE, 48000)
    elapsed = time.perf_counter() - start
    assert len(pcm) == 2 * 10_000 * samples_per_character(48000)
    assert elapsed < 0.5, f"{elapsed:.3f} s"


# --- G.711 ----------------------------------------------------------------------

ALL_SAMPLES = np.arange(-32768, 32768, dtype=np.int64)
ALL_PCM = ALL_SAMPLES.astype("<i2").tobytes()


def test_mulaw_matches_scalar_reference_on_every_sample() -> None:
    codes = np.frombuffer(mulaw_encode(ALL_PCM), dtype=np.uint8)
    expected = np.array([ref_mulaw(int(s)) for s in ALL_SAMPLES], dtype=np.uint8)
    assert np.array_equal(codes, expected)


def test_alaw_matches_scalar_reference_on_every_sample() -> None:
    codes = np.frombuffer(alaw_encode(ALL_PCM), dtype=np.uint8)
    expected = np.array([ref_alaw(int(s)) for s in ALL_SAMPLES], dtype=np.uint8)
    assert np.array_equal(codes, expected)


@pytest.mark.parametrize(
    ("sample", "mulaw", "alaw"),
    [
        (0, 0xFF, 0xD5),
        (-1, 0x7F, 0x55),
        (1000, 0xCE, 0xFA),  # decode to 988 and 1008
        (-1000, 0x4E, 0x7A),
        (32767, 0x80, 0xAA),
        (-32768, 0x00, 0x2A),
    ],
)
def test_g711_known_values(sample: int, mulaw: int, alaw: int) -> None:
    pcm = sample.to_bytes(2, "little", signed=True)
    assert mulaw_encode(pcm) == bytes([mulaw])
    assert alaw_encode(pcm) == bytes([alaw])


@pytest.mark.parametrize("law", ["mulaw", "alaw"])
def test_g711_quantizes_monotonically_within_one_step(law: str) -> None:
    encode, table = (
        (mulaw_encode, ULAW_DECODE) if law == "mulaw" else (alaw_encode, ALAW_DECODE)
    )
    codes = np.frombuffer(encode(ALL_PCM), dtype=np.uint8)
    decoded = table[codes].astype(np.int64)
    assert (np.diff(decoded) >= 0).all()  # a monotonic quantizer
    # Each sample between the lowest and highest level decodes to one of the
    # two reconstruction levels around it; beyond them, to the extreme one.
    levels = np.unique(table.astype(np.int64))
    upper = levels[np.minimum(np.searchsorted(levels, ALL_SAMPLES), len(levels) - 1)]
    lower = levels[np.maximum(np.searchsorted(levels, ALL_SAMPLES, "right") - 1, 0)]
    assert ((decoded == lower) | (decoded == upper)).all()
    # Odd symmetry: x and -1 - x (its one's complement) decode to opposites.
    assert (decoded[::-1] == -decoded).all()


def test_g711_against_cpython_audioop_where_installed() -> None:
    """CPython's former ``audioop`` (PyPI ``audioop-lts`` on 3.13) as a third
    implementation: A-law is identical; mu-law differs only for negative
    samples at decision boundaries, by one level, because audioop negates
    (``-x >> 2``) where G.191 takes the one's complement (``~x >> 2``)."""
    audioop = pytest.importorskip("audioop")
    assert alaw_encode(ALL_PCM) == audioop.lin2alaw(ALL_PCM, 2)
    mine = np.frombuffer(mulaw_encode(ALL_PCM), dtype=np.uint8)
    theirs = np.frombuffer(audioop.lin2ulaw(ALL_PCM, 2), dtype=np.uint8)
    differ = mine != theirs
    assert (ALL_SAMPLES[differ] < 0).all()
    assert differ.sum() < 1000
    levels = np.unique(ULAW_DECODE)
    position = {int(level): i for i, level in enumerate(levels)}
    for a, b in zip(
        ULAW_DECODE[mine[differ]], ULAW_DECODE[theirs[differ]], strict=True
    ):
        assert abs(position[int(a)] - position[int(b)]) == 1


def test_g711_rejects_half_samples() -> None:
    with pytest.raises(ValueError, match="16-bit"):
        mulaw_encode(b"\x00\x00\x00")
    with pytest.raises(ValueError, match="16-bit"):
        open_encoder("alaw", 8000).encode(b"\x01")


# --- Ogg CRC --------------------------------------------------------------------


def test_ogg_crc_matches_reference() -> None:
    assert ref_ogg_crc(b"123456789") == 0x89A1897F  # CRC-32/POSIX check, un-XORed
    assert ogg_crc32(b"123456789") == 0x89A1897F
    assert ogg_crc32(b"") == 0
    rng = np.random.default_rng(7)
    for size in (1, 27, 255, 4096):
        data = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
        assert ogg_crc32(data) == ref_ogg_crc(data)


# --- Encoders -------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_encoding_is_deterministic(case: tuple[str, int]) -> None:
    first, _ = stream(*case)
    second, _ = stream(*case)
    assert first == second


def _digests() -> dict[str, str]:
    return {
        case_id(case): hashlib.sha256(b"".join(stream(*case)[0])).hexdigest()
        for case in CASES
    }


DIGEST_SCRIPT = """
import hashlib, json, sys
from amazon_polly_streaming.testing.audio import FORMATS, open_encoder, synthesize_pcm
sentences, voice = json.loads(sys.argv[1])
digests = {}
for fmt, spec in FORMATS.items():
    for rate in map(int, spec.sample_rates):
        encoder, out = open_encoder(fmt, rate), b""
        for sentence in sentences:
            out += encoder.encode(synthesize_pcm(sentence, voice, rate)) + encoder.flush()
        digests[f"{fmt}-{rate}"] = hashlib.sha256(out + encoder.finish()).hexdigest()
print(json.dumps(digests))
"""


def test_encoding_is_deterministic_across_processes() -> None:
    result = subprocess.run(
        [sys.executable, "-c", DIGEST_SCRIPT, json.dumps([SENTENCES, VOICE])],
        env={**os.environ, "PYTHONHASHSEED": "4242"},  # no salted hash() anywhere
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert json.loads(result.stdout) == _digests()


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_sentences_form_one_stream_of_the_summed_duration(
    case: tuple[str, int],
) -> None:
    output_format, rate = case
    chunks, pcm_samples = stream(output_format, rate)
    data = b"".join(chunks)
    samples, rate_read = decode(output_format, data)
    expected = pcm_samples * decoded_rate(output_format, rate) // rate
    if output_format == "mp3":
        assert rate_read == rate
        frame = 1152 if rate >= 32000 else 576
        # LAME's delay, then the audio, then padding up to the frame end.
        assert expected + LAME_DELAY <= len(samples) < expected + LAME_DELAY + frame
    else:
        assert rate_read in (None, decoded_rate(output_format, rate))
        assert len(samples) == expected  # Ogg granule positions are exact
    # The sound is the synthesized one, not noise or silence: MP3 after its
    # encoder delay, the others sample-aligned.
    pcm = np.frombuffer(
        b"".join(synthesize_pcm(s, VOICE, rate) for s in SENTENCES), dtype="<i2"
    )
    if output_format == "pcm":
        assert samples.tobytes() == pcm.tobytes()
    lag = LAME_DELAY if output_format == "mp3" else 0
    similarity = correlation(samples[lag : lag + len(pcm)], pcm)
    assert similarity > (0.99 if output_format in ("mulaw", "alaw", "mp3") else 0.9)


def correlation(a: npt.NDArray[np.int16], b: npt.NDArray[np.int16]) -> float:
    x, y = a.astype(np.float64), b.astype(np.float64)
    return float(np.dot(x, y) / np.sqrt(np.dot(x, x) * np.dot(y, y)))


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_duration_grows_with_text(case: tuple[str, int]) -> None:
    output_format, rate = case
    lengths: list[int] = []
    for sentences in (SENTENCES[:1], SENTENCES[:2], SENTENCES):
        samples, _ = decode(
            output_format, b"".join(stream(output_format, rate, sentences)[0])
        )
        lengths.append(len(samples))
    assert lengths[0] < lengths[1] < lengths[2]


@pytest.mark.parametrize(
    "case", [c for c in CASES if c[0] not in COMPRESSED], ids=case_id
)
def test_raw_formats_hold_nothing_back(case: tuple[str, int]) -> None:
    output_format, rate = case
    chunks, pcm_samples = stream(output_format, rate)
    width = 2 if output_format == "pcm" else 1
    assert chunks[-1] == b""
    for chunk, sentence in zip(chunks, SENTENCES, strict=False):
        assert len(chunk) == width * len(sentence) * samples_per_character(rate)
    assert sum(map(len, chunks)) == width * pcm_samples


@pytest.mark.parametrize(
    "case", [c for c in CASES if c[0] in ("mp3", "ogg_opus")], ids=case_id
)
def test_mp3_and_opus_hold_back_little_after_a_flush(case: tuple[str, int]) -> None:
    output_format, rate = case
    encoder = open_encoder(output_format, rate)
    sent, fed = b"", 0
    for sentence in SENTENCES:
        pcm = synthesize_pcm(sentence, VOICE, rate)
        fed += len(pcm) // 2
        sent += encoder.encode(pcm) + encoder.flush()
        if output_format == "mp3":
            frame = 1152 if rate >= 32000 else 576
            ready = len(list(mp3_frames(sent))) * frame - LAME_DELAY
            # LAME's delay, look-ahead and bit reservoir (up to ~5 frames at 48 kbit/s).
            assert fed - ready <= LAME_DELAY + 6 * frame
        else:
            pages = [page for _, page in ogg_pages(sent)]
            granule = int.from_bytes(pages[-1][6:14], "little", signed=True)
            ready = granule - int.from_bytes(pages[0][38:40], "little")  # pre-skip
            assert fed - ready <= 0.15 * rate  # 100 ms pages + a 20 ms frame


@pytest.mark.parametrize("case", [c for c in CASES if c[0] in OGG], ids=case_id)
def test_ogg_pages_are_whole_with_fixed_serial_and_valid_crc(
    case: tuple[str, int],
) -> None:
    chunks, _ = stream(*case)
    pages: list[bytes] = []
    for chunk in chunks:  # every chunk is whole pages: no page spans two events
        pages += [page for _, page in ogg_pages(chunk)]
    assert len(pages) >= 3
    for sequence, page in enumerate(pages):
        assert page[4] == 0  # stream structure version
        assert int.from_bytes(page[14:18], "little") == OGG_SERIAL_NUMBER
        assert int.from_bytes(page[18:22], "little") == sequence
        crc = int.from_bytes(page[22:26], "little")
        assert crc == ref_ogg_crc(page[:22] + b"\0\0\0\0" + page[26:])
        flags = page[5]
        assert bool(flags & 0x02) == (sequence == 0), "BOS on the first page only"
        assert bool(flags & 0x04) == (sequence == len(pages) - 1), (
            "EOS on the last only"
        )
    head = b"OpusHead" if case[0] == "ogg_opus" else b"\x01vorbis"
    assert pages[0][28 : 28 + len(head)] == head
    # Codec headers appear once, at the start, however many sentences there were.
    data = b"".join(chunks)
    assert data.count(b"OpusHead" if case[0] == "ogg_opus" else b"\x01vorbis") == 1


@pytest.mark.parametrize("case", [c for c in CASES if c[0] == "mp3"], ids=case_id)
def test_mp3_is_plain_cbr_frames_from_the_first_byte(case: tuple[str, int]) -> None:
    _, rate = case
    chunks, _ = stream(*case)
    data = b"".join(chunks)
    frames = list(mp3_frames(data))
    assert frames
    assert {(kbps, r) for _, _, kbps, r in frames} == {(MP3_BITRATE_KBPS, rate)}
    version = 3 if rate >= 32000 else 2 if rate >= 16000 else 0
    assert {v for _, v, _, _ in frames} == {version}
    # No ID3 tag, no Xing/Info frame (a streamed MP3), no all-zero placeholder.
    assert not data.startswith(b"ID3")
    assert b"Xing" not in data
    assert b"Info" not in data[:200]
    assert data[-128:-125] != b"TAG"
    # Every chunk is whole frames, so a client can decode each as it comes.
    for chunk in chunks:
        assert sum(1 for _ in mp3_frames(chunk)) >= (1 if chunk else 0)


@pytest.mark.parametrize("output_format", list(FORMATS))
def test_stream_with_no_audio(output_format: str) -> None:
    rate = int(FORMATS[output_format].default)
    encoder = open_encoder(output_format, rate)
    data = encoder.encode(b"") + encoder.flush() + encoder.finish()
    assert encoder.finish() == b""
    if output_format in ("mp3", "pcm", "mulaw", "alaw"):
        assert data == b""
        return
    samples, _ = decode(output_format, data)
    assert len(samples) == (1 if output_format == "ogg_opus" else 0)


@pytest.mark.parametrize("output_format", list(FORMATS))
def test_encoder_lifecycle(output_format: str) -> None:
    rate = int(FORMATS[output_format].default)
    encoder = open_encoder(output_format, rate)
    encoder.encode(synthesize_pcm("abc", VOICE, rate))
    with pytest.raises(ValueError, match="16-bit"):
        encoder.encode(b"\x00")
    encoder.finish()
    with pytest.raises(RuntimeError, match="finish"):
        encoder.encode(b"\x00\x00")
    assert encoder.flush() == b""
    assert encoder.finish() == b""


@pytest.mark.parametrize(
    ("output_format", "sample_rate", "argument"),
    [
        ("json", 24000, "output_format"),
        ("wav", 24000, "output_format"),
        ("MP3", 24000, "output_format"),
        ("mp3", 11025, "sample_rate"),
        ("mp3", 0, "sample_rate"),
        ("pcm", 24000, "sample_rate"),
        ("ogg_opus", 24000, "sample_rate"),
        ("mulaw", 16000, "sample_rate"),
        ("alaw", 16000, "sample_rate"),
    ],
)
def test_open_encoder_rejects_bad_arguments(
    output_format: str, sample_rate: int, argument: str
) -> None:
    with pytest.raises(ValueError, match=argument):
        open_encoder(output_format, sample_rate)


def test_dropping_an_unfinished_encoder_is_quiet() -> None:
    # libsndfile closes it from the garbage collector, writing into the sink:
    # nothing may raise (warnings are errors here).
    for output_format, rate in (
        ("mp3", 24000),
        ("ogg_vorbis", 24000),
        ("ogg_opus", 48000),
    ):
        encoder = open_encoder(output_format, rate)
        encoder.encode(synthesize_pcm("abc", VOICE, rate))
        del encoder


# --- Independent command-line decoders, where installed -------------------------


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed")
    return path


@pytest.mark.parametrize("case", [c for c in CASES if c[0] in OGG], ids=case_id)
def test_ogg_streams_pass_ogginfo(case: tuple[str, int], tmp_path: Path) -> None:
    tool = _tool("opusinfo" if case[0] == "ogg_opus" else "ogginfo")
    path = tmp_path / "audio.ogg"
    path.write_bytes(b"".join(stream(*case)[0]))
    result = subprocess.run(
        [tool, str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    output = (result.stdout + result.stderr).lower()
    assert "warning" not in output
    assert "error" not in output


@pytest.mark.parametrize("case", [c for c in CASES if c[0] == "mp3"], ids=case_id)
def test_mp3_streams_decode_with_mpg123(case: tuple[str, int], tmp_path: Path) -> None:
    tool = _tool("mpg123")
    path = tmp_path / "audio.mp3"
    chunks, pcm_samples = stream(*case)
    path.write_bytes(b"".join(chunks))
    result = subprocess.run(
        [tool, "-q", "-s", str(path)], capture_output=True, check=False
    )
    assert result.returncode == 0, result.stderr
    decoded = len(result.stdout) // 2
    assert pcm_samples + LAME_DELAY <= decoded < pcm_samples + LAME_DELAY + 1152
