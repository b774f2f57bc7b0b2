"""The emulator end to end, over real HTTP/2 + TLS with real signatures.

A bare test client (``rawclient.py``) talks to a running ``PollyEmulator``;
each test asserts what a client sees on the wire and what the request log
recorded.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import soundfile
from rawclient import RawConnection, RawStream, Target

from amazon_polly_streaming.eventstream import encode_message
from amazon_polly_streaming.testing import (
    Fault,
    FaultKind,
    PollyEmulator,
    RequestInfo,
    TestCredentials,
)
from amazon_polly_streaming_generated.shapes import (
    FlushStreamConfiguration,
    TextEvent,
)

TEXT = ["Hello world. ", "How are you today?"]
EmulatorFactory = Callable[..., PollyEmulator]


async def synthesize(
    emu: PollyEmulator | Target, texts: list[str] = TEXT, **options: Any
) -> RawStream:
    async with RawConnection(emu) as conn:
        return await conn.synthesize(texts, **options)


# The happy path ---------------------------------------------------------------


async def test_synthesis_streams_the_exact_expected_audio(emu: PollyEmulator) -> None:
    stream = await synthesize(emu)
    assert stream.status == 200
    assert stream.header("content-type") == "application/vnd.amazon.eventstream"
    assert stream.ended
    assert stream.reset_code is None
    assert stream.kinds[-1] == "StreamClosedEvent"
    assert set(stream.kinds[:-1]) == {"AudioEvent"}
    assert stream.audio == emu.expected_audio(TEXT, voice_id="Matthew")
    assert stream.stream_closed == {
        "RequestCharacters": len("Hello world.How are you today?")
    }

    (record,) = emu.requests
    assert record.request_id == stream.header("x-amzn-requestid")
    assert record.signature_ok is True
    assert "host" in record.signed_headers
    assert [e.event_type for e in record.events] == [
        "TextEvent",
        "TextEvent",
        "CloseStreamEvent",
    ]
    assert all(e.signature_ok for e in record.events)
    assert record.final_envelope
    assert record.client_end_stream
    assert record.outcome == "completed"
    assert (record.voice_id, record.output_format, record.sample_rate) == (
        "Matthew",
        "mp3",
        24000,
    )
    assert record.audio_events == stream.audio_events
    assert record.audio_bytes == len(stream.audio)
    assert record.request_characters == 30
    assert record.text == "".join(TEXT)
    (connection,) = emu.connections
    assert (connection.alpn, connection.streams) == ("h2", 1)


@pytest.mark.parametrize(
    ("output_format", "sample_rate"),
    [
        ("mp3", None),
        ("ogg_vorbis", "16000"),
        ("ogg_opus", None),
        ("pcm", "16000"),
        ("mulaw", None),
        ("alaw", "8000"),
    ],
)
async def test_every_output_format_is_real_decodable_audio(
    emu: PollyEmulator, output_format: str, sample_rate: str | None, tmp_path: Path
) -> None:
    stream = await synthesize(
        emu,
        ["One sentence. And another one."],
        output_format=output_format,
        sample_rate=sample_rate,
    )
    rate = None if sample_rate is None else int(sample_rate)
    expected = emu.expected_audio(
        ["One sentence. And another one."],
        voice_id="Matthew",
        output_format=output_format,
        sample_rate=rate,
    )
    assert stream.audio == expected
    if output_format in {"mp3", "ogg_vorbis", "ogg_opus"}:
        path = tmp_path / "audio"
        path.write_bytes(stream.audio)
        info = soundfile.info(str(path))
        assert info.channels == 1
        assert info.duration >= 29 * 0.040  # 29 characters of 40 ms
    else:
        width = 2 if output_format == "pcm" else 1
        assert len(stream.audio) == 29 * 0.040 * (rate or 8000) * width  # 29 spoken


async def test_audio_arrives_in_several_events_per_sentence(
    emulators: Callable[..., Any],
) -> None:
    emu = await emulators(audio_event_bytes=1000)
    stream = await synthesize(
        emu, ["A single sentence of some length."], output_format="pcm"
    )
    assert stream.audio_events >= 10
    assert all(len(m.payload) <= 1000 for m in stream.messages[:-1])


async def test_text_is_buffered_until_a_sentence_ends(emu: PollyEmulator) -> None:
    async with RawConnection(emu) as conn:
        stream = await conn.start(output_format="pcm", sample_rate="8000")
        await stream.send(TextEvent(text="Hello wor"))
        await asyncio.sleep(0.2)
        assert stream.audio_events == 0  # no sentence end yet
        await stream.send(TextEvent(text="ld. And"))
        await stream.wait_for_messages(1)
        heard = len(stream.audio)
        assert heard == len("Hello world.") * 0.040 * 8000 * 2
        await stream.finish()
        await stream.wait()
    assert len(stream.audio) - heard == len("And") * 0.040 * 8000 * 2


async def test_force_flush_synthesizes_at_once(emu: PollyEmulator) -> None:
    async with RawConnection(emu) as conn:
        stream = await conn.start(output_format="pcm", sample_rate="8000")
        await stream.send(
            TextEvent(
                text="No full stop",
                flush_stream_configuration=FlushStreamConfiguration(force=True),
            )
        )
        await stream.wait_for_messages(1)
        assert len(stream.audio) == len("No full stop") * 0.040 * 8000 * 2
        await stream.finish()
        await stream.wait()
    assert emu.requests[0].events[0].flush


async def test_whitespace_keepalive_costs_no_characters(
    emulators: Callable[..., Any],
) -> None:
    emu = await emulators(idle_timeout=0.5)
    async with RawConnection(emu) as conn:
        stream = await conn.start()
        await stream.send(TextEvent(text="Hi."))
        for _ in range(4):  # 0.8 s in all: past the idle limit without them
            await asyncio.sleep(0.2)
            await stream.send(TextEvent(text=" "))
        await stream.finish()
        await stream.wait()
    assert stream.stream_closed == {"RequestCharacters": 3}


async def test_ssml_is_synthesized_as_one_document(emu: PollyEmulator) -> None:
    async with RawConnection(emu) as conn:
        stream = await conn.start(output_format="pcm", sample_rate="8000")
        await stream.send(
            TextEvent(
                text='<speak>Hi <break time="1s"/>there</speak>', text_type="ssml"
            )  # type: ignore[arg-type]
        )
        await stream.wait_for_messages(1)
        await stream.finish()
        await stream.wait()
    assert stream.stream_closed == {"RequestCharacters": len("Hi there")}


async def test_malformed_ssml_is_a_validation_exception(emu: PollyEmulator) -> None:
    async with RawConnection(emu) as conn:
        stream = await conn.start()
        await stream.send(TextEvent(text="<speak>unclosed", text_type="ssml"))  # type: ignore[arg-type]
        await stream.wait()
    assert stream.status == 200
    exception = stream.exception
    assert exception is not None
    assert exception[0] == "ValidationException"
    assert exception[1]["reason"] == "fieldValidationFailed"
    assert "invalid SSML" in exception[1]["message"]
    assert emu.requests[0].outcome == "error"


# Validation before the stream -------------------------------------------------


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"engine": "neural"}, "Engine"),
        ({"voice_id": "Aditi"}, "VoiceId"),
        ({"voice_id": "Zorglub"}, "VoiceId"),
        ({"output_format": "json"}, "OutputFormat"),
        ({"output_format": "pcm", "sample_rate": "24000"}, "SampleRate"),
        ({"output_format": "ogg_opus", "sample_rate": "24000"}, "SampleRate"),
        ({"sample_rate": "fast"}, "SampleRate"),
        ({"language_code": "xx-XX"}, "LanguageCode"),
        ({"lexicon_names": ["a", "b", "c", "d", "e", "f"]}, "LexiconNames"),
        ({"lexicon_names": ["bad-name"]}, "LexiconNames"),
    ],
)
async def test_invalid_parameters_get_http_400_validation_exception(
    emu: PollyEmulator, options: dict[str, Any], field: str
) -> None:
    stream = await synthesize(emu, ["Hi."], **options)
    assert stream.status == 400
    assert stream.header("x-amzn-errortype") == "ValidationException"
    assert stream.header("content-type") == "application/json"
    body = stream.json_body
    assert body["reason"] == "fieldValidationFailed"
    assert body["fields"][0]["name"] == field
    assert emu.requests[0].outcome == "error"
    assert emu.requests[0].error_type == "ValidationException"


async def test_valid_optional_parameters_are_accepted(emu: PollyEmulator) -> None:
    stream = await synthesize(
        emu,
        ["Hola."],
        voice_id="Lucia",
        language_code="es-ES",
        lexicon_names=["one", "two"],
    )
    assert stream.status == 200
    assert stream.kinds[-1] == "StreamClosedEvent"
    assert emu.requests[0].lexicon_names == ("one", "two")


async def test_missing_required_header_is_a_validation_exception(
    emu: PollyEmulator,
) -> None:
    stream = await synthesize(emu, ["Hi."], drop_headers=["x-amzn-voiceid"], sign=True)
    # Dropping a signed header breaks the signature first: the service checks that first.
    assert stream.status == 403
    async with RawConnection(emu) as conn:
        stream = await conn.start(drop_headers=["x-amzn-voiceid"], sign=False)
        await stream.wait()
    assert stream.status == 403
    assert stream.header("x-amzn-errortype") == "MissingAuthenticationTokenException"


# Signatures -------------------------------------------------------------------


async def test_wrong_secret_is_http_403_invalid_signature(emu: PollyEmulator) -> None:
    async with RawConnection(emu, secret_access_key="not-the-secret") as conn:
        stream = await conn.synthesize(["Hi."])
    assert stream.status == 403
    assert stream.header("x-amzn-errortype") == "InvalidSignatureException"
    record = emu.requests[0]
    assert record.signature_ok is False
    assert record.signature_error
    assert "not-the-secret" not in json.dumps(stream.json_body)


async def test_unknown_access_key_is_http_403_unrecognized_client(
    emu: PollyEmulator,
) -> None:
    async with RawConnection(emu, access_key_id="AKIANOBODY0000000000") as conn:
        stream = await conn.synthesize(["Hi."])
    assert stream.status == 403
    assert stream.header("x-amzn-errortype") == "UnrecognizedClientException"


async def test_header_changed_after_signing_is_rejected(emu: PollyEmulator) -> None:
    async with RawConnection(emu) as conn:
        stream = await conn.start(tamper_after_signing={"x-amzn-voiceid": "Joanna"})
        await stream.finish()
        await stream.wait()
    assert stream.status == 403
    assert stream.header("x-amzn-errortype") == "InvalidSignatureException"


async def test_spoiled_event_signature_is_an_invalid_inbound_event(
    emu: PollyEmulator,
) -> None:
    async with RawConnection(emu) as conn:
        stream = await conn.start()
        await stream.send(TextEvent(text="Fine."))
        await stream.send(TextEvent(text="Forged."), spoil=True)
        await stream.wait()
    exception = stream.exception
    assert exception is not None
    assert exception[0] == "ValidationException"
    assert exception[1]["reason"] == "invalidInboundEvent"
    assert "signature" in exception[1]["message"]
    record = emu.requests[0]
    assert [e.signature_ok for e in record.events] == [True, False]
    assert record.audio_events == stream.audio_events  # "Fine." was spoken before


async def test_corrupted_message_bytes_are_an_invalid_inbound_event(
    emu: PollyEmulator,
) -> None:
    async with RawConnection(emu) as conn:
        stream = await conn.start()
        frame = bytearray(encode_message({":date": 1}, b"x"))
        frame[-1] ^= 0x01
        await stream.send_raw(bytes(frame))
        await stream.wait()
    exception = stream.exception
    assert exception is not None
    assert exception[1]["reason"] == "invalidInboundEvent"
    assert "CRC" in exception[1]["message"]


async def test_input_ending_without_close_event_is_an_error(emu: PollyEmulator) -> None:
    async with RawConnection(emu) as conn:
        stream = await conn.start()
        await stream.send(TextEvent(text="Hello."))
        await stream.end_input()
        await stream.wait()
    exception = stream.exception
    assert exception is not None
    assert "without CloseStreamEvent" in exception[1]["message"]


@pytest.mark.parametrize(
    ("content_type", "status"),
    [
        ("application/vnd.amazon-eventstream", 200),  # capo-polly's spelling
        ("application/json", 415),
    ],
)
async def test_content_type(emu: PollyEmulator, content_type: str, status: int) -> None:
    stream = await synthesize(emu, ["Hi."], content_type=content_type)
    assert stream.status == status


async def test_graceful_goaway_from_the_client_does_not_end_its_stream(
    emu: PollyEmulator,
) -> None:
    async with RawConnection(emu) as conn:
        stream = await conn.start()
        await stream.send(TextEvent(text="Before."))
        await conn.send_goaway()  # as AWS's JS client does, right after the headers
        await stream.send(TextEvent(text="After the GOAWAY."))
        await stream.finish()
        await stream.wait()
    assert stream.kinds[-1] == "StreamClosedEvent"
    assert emu.connections[0].goaway_received
    assert emu.requests[0].text == "Before.After the GOAWAY."


async def test_max_concurrent_streams_is_advertised(
    emulators: Callable[..., Any],
) -> None:
    emu = await emulators(max_concurrent_streams=1)
    async with RawConnection(emu) as conn:
        assert conn.remote_max_concurrent_streams == 1
        for _ in range(3):  # sequential streams on one connection are fine
            stream = await conn.synthesize(["Hi."])
            assert stream.kinds[-1] == "StreamClosedEvent"
    assert [c.streams for c in emu.connections] == [3]
    assert emu.connections[0].max_concurrent_streams_seen == 1
    assert emu.connections[0].protocol_errors == []


# Limits -----------------------------------------------------------------------


async def test_idle_input_ends_in_quota_exceeded(emulators: Callable[..., Any]) -> None:
    emu = await emulators(idle_timeout=0.3)
    async with RawConnection(emu) as conn:
        stream = await conn.start()
        await stream.send(TextEvent(text="Then silence."))
        await stream.wait()
    exception = stream.exception
    assert exception is not None
    assert exception[0] == "ServiceQuotaExceededException"
    assert exception[1]["quotaCode"] == "input-stream-inbound-event-timeout"
    assert exception[1]["serviceCode"] == "polly"
    assert stream.audio_events > 0  # the sentence was spoken first


async def test_stream_duration_limit_ends_in_quota_exceeded(
    emulators: Callable[..., Any],
) -> None:
    emu = await emulators(max_stream_duration=0.5, idle_timeout=5)
    async with RawConnection(emu) as conn:
        stream = await conn.start()
        for _ in range(10):
            if stream.done.is_set():
                break
            await stream.send(TextEvent(text=" "))
            await asyncio.sleep(0.1)
        await stream.wait()
    exception = stream.exception
    assert exception is not None
    assert exception[1]["quotaCode"] == "input-stream-timeout"


# Faults -----------------------------------------------------------------------


async def test_throttle_the_first_requests_then_succeed(emu: PollyEmulator) -> None:
    rule = emu.faults.add(Fault.throttle(), times=2)
    statuses = []
    for _ in range(3):
        stream = await synthesize(emu, ["Hi."])
        statuses.append((stream.status, stream.header("x-amzn-errortype")))
    assert statuses == [
        (400, "ThrottlingException"),
        (400, "ThrottlingException"),
        (200, None),
    ]
    assert rule.applied == 2
    assert [r.faults for r in emu.requests] == [
        ("throttle_http",),
        ("throttle_http",),
        (),
    ]


@pytest.mark.parametrize(
    ("fault", "exception_type", "field"),
    [
        (
            Fault.throttle(mid_stream=True, after_audio_events=2),
            "ThrottlingException",
            "throttlingReasons",
        ),
        (
            Fault.service_failure(mid_stream=True, after_audio_events=2),
            "ServiceFailureException",
            None,
        ),
        (
            Fault.quota(after_audio_events=2),
            "ServiceQuotaExceededException",
            "quotaCode",
        ),
        (Fault.validation("no", mid_stream=True), "ValidationException", "reason"),
        (
            Fault.unknown_exception_event(after_audio_events=2),
            "BrandNewException",
            None,
        ),
    ],
)
async def test_exception_events_after_some_audio(
    emu: PollyEmulator, fault: Fault, exception_type: str, field: str | None
) -> None:
    emu.faults.add(fault)
    stream = await synthesize(
        emu,
        ["A long enough first sentence. And a second one."],
        output_format="pcm",
        sample_rate="16000",
    )
    assert stream.audio_events == fault.after_audio_events
    assert stream.kinds[-1] == exception_type
    assert stream.stream_closed is None
    exception = stream.exception
    assert exception is not None
    if field is not None:
        assert field in exception[1]
    assert emu.requests[0].outcome == "error"


@pytest.mark.parametrize(
    ("fault", "status", "error_type"),
    [
        (Fault.service_failure(), 500, "ServiceFailureException"),
        (Fault.validation("bad"), 400, "ValidationException"),
        (
            Fault.http_error(503, "ServiceUnavailableException"),
            503,
            "ServiceUnavailableException",
        ),
    ],
)
async def test_http_error_faults(
    emu: PollyEmulator, fault: Fault, status: int, error_type: str
) -> None:
    emu.faults.add(fault)
    stream = await synthesize(emu, ["Hi."])
    assert (stream.status, stream.header("x-amzn-errortype")) == (status, error_type)
    assert stream.json_body["message"]


async def test_drop_connection_mid_stream(emu: PollyEmulator) -> None:
    emu.faults.add(Fault.drop_connection(after_audio_events=2))
    stream = await synthesize(
        emu,
        ["A sentence long enough for several events."],
        output_format="pcm",
        sample_rate="16000",
    )
    assert stream.connection_lost
    assert not stream.ended
    assert stream.audio_events == 2
    assert stream.stream_closed is None
    assert emu.requests[0].outcome == "dropped"


async def test_goaway_mid_stream_leaves_the_stream_unfinished(
    emu: PollyEmulator,
) -> None:
    emu.faults.add(Fault.goaway(after_audio_events=1))
    stream = await synthesize(
        emu,
        ["A sentence long enough for several events."],
        output_format="pcm",
        sample_rate="16000",
    )
    assert stream.goaway
    assert stream.connection_lost
    assert stream.stream_closed is None
    assert stream.audio_events == 1
    assert emu.connections[0].goaway_sent


async def test_goaway_after_a_completed_stream(emu: PollyEmulator) -> None:
    emu.faults.add(Fault.goaway_after_stream())
    async with RawConnection(emu) as conn:
        stream = await conn.synthesize(["Hi."])
        await asyncio.sleep(0.2)
        assert stream.stream_closed == {"RequestCharacters": 3}
        assert conn.goaway_last_stream_id == stream.stream_id


async def test_rst_stream_mid_stream(emu: PollyEmulator) -> None:
    emu.faults.add(Fault.rst_stream(after_audio_events=1))
    stream = await synthesize(
        emu,
        ["A sentence long enough for several events."],
        output_format="pcm",
        sample_rate="16000",
    )
    assert stream.reset_code == 2  # INTERNAL_ERROR
    assert stream.audio_events == 1
    assert emu.requests[0].outcome == "reset"


async def test_end_without_stream_closed_event(emu: PollyEmulator) -> None:
    emu.faults.add(Fault.end_without_close(after_audio_events=1))
    stream = await synthesize(
        emu,
        ["A sentence long enough for several events."],
        output_format="pcm",
        sample_rate="16000",
    )
    assert stream.ended
    assert stream.reset_code is None
    assert stream.stream_closed is None
    assert stream.audio_events == 1


async def test_delays(emu: PollyEmulator) -> None:
    emu.faults.add(Fault.delay_headers(0.3))
    emu.faults.add(Fault.slow_audio(0.1))
    started = time.monotonic()
    async with RawConnection(emu) as conn:
        stream = await conn.start(output_format="pcm", sample_rate="8000")
        await asyncio.wait_for(_until(lambda: stream.status is not None), 5)
        headers_after = time.monotonic() - started
        await stream.send(TextEvent(text="Two events."))
        await stream.finish()
        await stream.wait()
    total = time.monotonic() - started
    assert headers_after >= 0.3
    assert stream.audio_events == 2
    assert total >= 0.3 + 2 * 0.1
    assert emu.requests[0].faults == ("delay_headers", "slow_audio")


async def _until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.01)


async def test_fault_rules_match_by_predicate(emu: PollyEmulator) -> None:
    seen: list[RequestInfo] = []

    def only_ruth(request: RequestInfo) -> bool:
        seen.append(request)
        return request.voice_id == "Ruth"

    rule = emu.faults.add(Fault.throttle(), times=None, when=only_ruth)
    assert (await synthesize(emu, ["Hi."], voice_id="Matthew")).status == 200
    assert (await synthesize(emu, ["Hi."], voice_id="Ruth")).status == 400
    assert (await synthesize(emu, ["Hi."], voice_id="Ruth")).status == 400
    assert rule.applied == 2
    assert [r.index for r in seen] == [0, 1, 2]
    assert seen[0].output_format == "mp3"
    with pytest.raises(ValueError, match="times"):
        emu.faults.add(Fault.throttle(), times=0)
    assert FaultKind.THROTTLE_HTTP in {f.kind for f in [rule.fault]}


# Interfaces -------------------------------------------------------------------


async def test_env_and_credentials(emulators: Callable[..., Any]) -> None:
    creds = TestCredentials("AKIAOTHER00000000000", "other-secret", "a-session-token")
    emu = await emulators(credentials=[creds], region="eu-central-1")
    env = emu.env()
    assert (
        env["AWS_ENDPOINT_URL_POLLY"]
        == emu.endpoint_url
        == f"https://127.0.0.1:{emu.port}"
    )
    assert env["AWS_CA_BUNDLE"] == str(emu.ca_path)
    assert emu.ca_path.read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert (env["AWS_REGION"], env["AWS_SESSION_TOKEN"]) == (
        "eu-central-1",
        "a-session-token",
    )
    assert "other-secret" not in repr(creds)
    stream = await synthesize(emu, ["Hi."])
    assert stream.status == 200
    assert "x-amz-security-token" in emu.requests[0].signed_headers


def test_running_in_a_thread_serves_any_event_loop() -> None:
    with PollyEmulator().running_in_thread() as emu:
        for _ in range(2):  # a fresh event loop per call, as scripts do
            stream = asyncio.run(synthesize(emu, ["Hi."]))
            assert stream.stream_closed == {"RequestCharacters": 3}
        ca = emu.ca_path
        assert len(emu.requests) == 2
    assert not ca.exists()


def test_pytest_fixture(polly_emulator: PollyEmulator) -> None:
    stream = asyncio.run(synthesize(polly_emulator, ["Hi."]))
    assert stream.status == 200
    assert polly_emulator.requests[0].outcome == "completed"


def test_command_line_server() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "amazon_polly_streaming.testing",
            "--json",
            "--idle-timeout",
            "2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        info = json.loads(process.stdout.readline())
        assert info["endpoint_url"].startswith("https://127.0.0.1:")
        assert Path(info["ca_path"]).exists()
        assert set(info["env"]) >= {
            "AWS_ENDPOINT_URL_POLLY",
            "AWS_CA_BUNDLE",
            "AWS_ACCESS_KEY_ID",
        }

        remote = Target(
            port=int(info["endpoint_url"].rsplit(":", 1)[1]),
            ca_path=Path(info["ca_path"]),
            credentials=TestCredentials(),
            region=info["env"]["AWS_REGION"],
        )
        stream = asyncio.run(synthesize(remote, ["Hi."]))
        assert stream.stream_closed == {"RequestCharacters": 3}
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=15)
    assert process.returncode == 0, err


def test_prose_output_names_the_exports() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "amazon_polly_streaming.testing"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(3)]
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=15)
    assert lines[0].startswith("Polly emulator listening on https://127.0.0.1:")
    assert lines[1].startswith("Test CA certificate: ")
    assert process.returncode == 0
