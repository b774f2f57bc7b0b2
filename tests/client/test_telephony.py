"""Telephony formats (G.711 mu-law and A-law, 8000 Hz) through the real client
and the emulator: exact bytes, the default rate, a refused rate, the codec's
relation to the pcm rendition of the same text, and telephony WAV.

How the emulator makes them (``testing/audio.py``): it synthesizes the text's
pcm at 8000 Hz and encodes each sample with the ITU-T G.191 reference
``ulaw_compress``/``alaw_compress``. So the mulaw/alaw of a text is the G.711
coding of the very pcm it streams for ``output_format="pcm"`` at 8000 Hz, and
``audioop`` (Sun's ``g711.c``, from the ``audioop-lts`` package) can check it:

* A-law: both implementations give the same code for every 16-bit value.
* mu-law: both quantize the 14 most significant bits, but for a negative
  sample x G.191 codes the one's complement ``~x`` (= -x - 1) where Sun's code
  negates, one 14-bit step (4 in 16 bits) less in magnitude: G.191's code of
  x decodes to what audioop's code of ``x + 4`` decodes to. For 508 of the
  65,536 values (negative, on a quantization boundary) the two codes differ,
  G.191's being the neighbour nearer zero. G.711 is lossy, so the exact
  comparison is of the decoded samples.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import struct
from array import array
from typing import Any

import audioop
import pytest
from emulated import client_for, collect

from amazon_polly_streaming import (
    PollyStreamingClient,
    ValidationException,
    as_wav,
    wav_header,
)
from amazon_polly_streaming.testing import Fault, PollyEmulator
from amazon_polly_streaming.testing.audio import alaw_encode, mulaw_encode
from amazon_polly_streaming.wav import WAVE_FORMAT_ALAW, WAVE_FORMAT_MULAW, WavEncoding

TEXT = "Thank you for calling. Your call is important to us."
VOICE = "Joanna"

# Every test here must leave no thread, fd or connection behind.
pytestmark = pytest.mark.usefixtures("no_leaks")


def samples(pcm: bytes) -> array[int]:
    """s16le bytes as ints (this machine's byte order is checked)."""
    values = array("h", pcm)
    if struct.pack("=h", 1) != struct.pack("<h", 1):
        values.byteswap()
    return values


def s16le(values: array[int]) -> bytes:
    out = array("h", values)
    if struct.pack("=h", 1) != struct.pack("<h", 1):
        out.byteswap()
    return out.tobytes()


def g191_mulaw_decoded(pcm: bytes) -> bytes:
    """What the G.191 mu-law coding of ``pcm`` decodes to, through audioop:
    audioop's coding of x, or of x + 4 for a negative x (see the docstring)."""
    shifted = array("h", (x + 4 if x < 0 else x for x in samples(pcm)))
    return audioop.ulaw2lin(audioop.lin2ulaw(s16le(shifted), 2), 2)


@pytest.mark.parametrize("output_format", ["mulaw", "alaw"])
async def test_telephony_audio_is_exact(emu: PollyEmulator, output_format: str) -> None:
    client = client_for(emu)
    audio = await collect(
        client.start_speech_synthesis_stream(
            text=TEXT, voice_id=VOICE, output_format=output_format, sample_rate="8000"
        )
    )
    expected = emu.expected_audio(
        TEXT, voice_id=VOICE, output_format=output_format, sample_rate=8000
    )
    assert audio == expected
    (record,) = emu.requests
    assert record.output_format == output_format
    assert record.header("x-amzn-samplerate") == "8000"
    assert record.outcome == "completed"


@pytest.mark.parametrize("output_format", ["mulaw", "alaw"])
async def test_telephony_default_rate_is_8000(
    emu: PollyEmulator, output_format: str
) -> None:
    client = client_for(emu)
    audio = await collect(
        client.start_speech_synthesis_stream(
            text=TEXT, voice_id=VOICE, output_format=output_format
        )
    )
    assert audio == emu.expected_audio(
        TEXT, voice_id=VOICE, output_format=output_format, sample_rate=8000
    )
    # The client names the format's default rate itself.
    assert emu.requests[0].header("x-amzn-samplerate") == "8000"


@pytest.mark.parametrize("output_format", ["mulaw", "alaw"])
@pytest.mark.parametrize("sample_rate", ["16000", "22050", "8001"])
async def test_other_rates_are_refused_by_the_service(
    emu: PollyEmulator, output_format: str, sample_rate: str
) -> None:
    # The client checks only that the rate is digits (a newer service may take
    # more rates); the service judges it, before any audio, and no retry
    # follows a ValidationException.
    client = client_for(emu)
    received: list[bytes] = []
    with pytest.raises(ValidationException) as raised:
        async for chunk in client.start_speech_synthesis_stream(
            text=TEXT,
            voice_id=VOICE,
            output_format=output_format,
            sample_rate=sample_rate,
        ):
            received.append(chunk)  # the loop must see the error
    error = raised.value
    assert type(error) is ValidationException
    assert error.reason == "fieldValidationFailed"
    assert [field.name for field in error.fields or []] == ["SampleRate"]
    assert (
        f"sample rate '{sample_rate}' is not valid for {output_format}; "
        "use one of 8000" in str(error)
    )
    assert received == []
    (record,) = emu.requests
    assert record.header("x-amzn-samplerate") == sample_rate
    assert record.outcome == "error"


def test_a_non_numeric_rate_is_refused_by_the_client() -> None:
    client = PollyStreamingClient("eu-central-1", endpoint_url="https://127.0.0.1:9")
    with pytest.raises(
        ValueError,
        match=r"sample_rate must be a string of digits like '24000', got '8kHz'",
    ):
        client.start_speech_synthesis_stream(
            text=TEXT, voice_id=VOICE, output_format="mulaw", sample_rate="8kHz"
        )


async def test_g711_is_the_coding_of_the_8000_hz_pcm(emu: PollyEmulator) -> None:
    client = client_for(emu)
    rendition: dict[str, bytes] = {}
    for output_format in ("pcm", "mulaw", "alaw"):
        rendition[output_format] = await collect(
            client.start_speech_synthesis_stream(
                text=TEXT,
                voice_id=VOICE,
                output_format=output_format,
                sample_rate="8000",
            )
        )
    pcm = rendition["pcm"]
    assert pcm == emu.expected_audio(
        TEXT, voice_id=VOICE, output_format="pcm", sample_rate=8000
    )
    assert len(rendition["mulaw"]) == len(rendition["alaw"]) == len(pcm) // 2
    assert any(x < 0 for x in samples(pcm))  # both signs: the mu-law case matters
    # A-law: the same codes, so the same decoded samples.
    assert rendition["alaw"] == audioop.lin2alaw(pcm, 2)
    assert audioop.alaw2lin(rendition["alaw"], 2) == audioop.alaw2lin(
        audioop.lin2alaw(pcm, 2), 2
    )
    # mu-law: the same decoded samples as G.191's coding of the pcm.
    assert audioop.ulaw2lin(rendition["mulaw"], 2) == g191_mulaw_decoded(pcm)
    # The codes differ from audioop's own for some negative samples: always
    # by one code, the neighbour nearer zero (see the module docstring).
    coded = zip(samples(pcm), rendition["mulaw"], audioop.lin2ulaw(pcm, 2), strict=True)
    differ = [(x, ours, theirs) for x, ours, theirs in coded if ours != theirs]
    assert differ
    assert all(x < 0 and ours == theirs + 1 for x, ours, theirs in differ)


def test_the_mulaw_relation_holds_for_every_sample() -> None:
    # What the test above relies on, over all 65,536 sample values.
    every = s16le(array("h", range(-32768, 32768)))
    assert audioop.ulaw2lin(mulaw_encode(every), 2) == g191_mulaw_decoded(every)
    assert alaw_encode(every) == audioop.lin2alaw(every, 2)
    # Not the codes themselves, for mu-law: 508 negative values sit on a
    # boundary, where G.191's code is the neighbour nearer zero.
    coded = zip(
        samples(every), mulaw_encode(every), audioop.lin2ulaw(every, 2), strict=True
    )
    differ = [(x, ours, theirs) for x, ours, theirs in coded if ours != theirs]
    assert len(differ) == 508
    assert all(x < 0 and ours == theirs + 1 for x, ours, theirs in differ)


@pytest.mark.parametrize(
    ("output_format", "tag", "subtype"),
    [("mulaw", WAVE_FORMAT_MULAW, "ULAW"), ("alaw", WAVE_FORMAT_ALAW, "ALAW")],
)
async def test_telephony_wav_stream(
    emu: PollyEmulator, output_format: WavEncoding, tag: int, subtype: str
) -> None:
    soundfile: Any = pytest.importorskip("soundfile")
    client = client_for(emu)
    chunks = [
        chunk
        async for chunk in as_wav(
            client.start_speech_synthesis_stream(
                text=TEXT, voice_id=VOICE, output_format=output_format
            ),
            sample_rate=8000,
            encoding=output_format,
        )
    ]
    audio = emu.expected_audio(TEXT, voice_id=VOICE, output_format=output_format)
    header = wav_header(sample_rate=8000, encoding=output_format)
    assert chunks[0] == header
    assert struct.unpack_from("<HHI", header, 20) == (tag, 1, 8000)
    assert b"".join(chunks[1:]) == audio
    # libsndfile reads the stream to its end and decodes it as audioop does.
    data = b"".join(chunks)
    info = soundfile.info(io.BytesIO(data))
    assert (info.subtype, info.samplerate, info.channels, info.frames) == (
        subtype,
        8000,
        1,
        len(audio),
    )
    decoded, _ = soundfile.read(io.BytesIO(data), dtype="int16")
    decode = audioop.ulaw2lin if output_format == "mulaw" else audioop.alaw2lin
    assert decoded.astype("<i2").tobytes() == decode(audio, 2)


async def test_leaving_a_wav_stream_early_stops_the_polly_stream(
    emu: PollyEmulator,
) -> None:
    emu.faults.add(Fault.slow_audio(0.05))
    client = client_for(emu)
    wav = as_wav(
        client.start_speech_synthesis_stream(
            text=TEXT, voice_id=VOICE, output_format="mulaw"
        ),
        sample_rate=8000,
        encoding="mulaw",
    )
    async with contextlib.aclosing(wav):
        assert await anext(wav) == wav_header(sample_rate=8000, encoding="mulaw")
        assert await anext(wav)  # the first audio
    assert client.pool_stats().leased == 0
    for _ in range(50):
        if emu.requests[0].outcome != "open":
            break
        await asyncio.sleep(0.02)
    assert emu.requests[0].outcome in {"connection_lost", "reset_by_client"}
