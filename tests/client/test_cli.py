"""The ``polly-stream`` command line, run as a subprocess against the emulator.

Each run gets an environment built from scratch: the emulator's AWS_*
variables, PATH and HOME, AWS config files that do not exist and no instance
metadata, so a developer's own profile, CA bundle or endpoint never leaks in.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import io
import os
import pty
import re
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
import wave
from collections.abc import AsyncIterator, Callable, Generator, Sequence
from pathlib import Path
from typing import IO, Any

import pytest

from amazon_polly_streaming.cli import (
    FORMAT_BY_EXTENSION,
    AudioOutput,
    InputError,
    OutputError,
    Progress,
    StreamedText,
    UsageError,
    WavSpec,
    build_parser,
    decode_utf8,
    describe_error,
    format_size,
    infer_format,
    output_path,
    plan,
    resolve_format,
    resolve_region,
)
from amazon_polly_streaming.testing import Fault, PollyEmulator
from amazon_polly_streaming.wav import WavEncoding, wav_header

CLI = [sys.executable, "-m", "amazon_polly_streaming"]
TIMEOUT = 30
ONE_ERROR_LINE = re.compile(r"polly-stream: error: [^\n]+\n")


@pytest.fixture
def emu() -> Generator[PollyEmulator]:
    """An emulator on its own loop in a thread (these tests are synchronous:
    they wait on subprocesses); it overrides the conftest's loop-bound one."""
    with PollyEmulator().running_in_thread() as emulator:
        yield emulator
        assert emulator.log.internal_errors == []


@pytest.fixture
def env(emu: PollyEmulator, tmp_path: Path) -> dict[str, str]:
    """The subprocess's whole environment."""
    return {
        **emu.env(),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def run(
    args: Sequence[str],
    env: dict[str, str],
    *,
    cwd: Path,
    stdin: bytes | IO[bytes] | None = None,
    stdout: int = subprocess.PIPE,
    stderr: int = subprocess.PIPE,
) -> subprocess.CompletedProcess[bytes]:
    """Run the CLI to the end; ``stdin`` bytes are written to a pipe."""
    return subprocess.run(
        [*CLI, *args],
        env=env,
        cwd=cwd,
        input=stdin if isinstance(stdin, bytes) else None,
        stdin=None if isinstance(stdin, bytes) else (stdin or subprocess.DEVNULL),
        stdout=stdout,
        stderr=stderr,
        timeout=TIMEOUT,
        check=False,
    )


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def text_events(emu: PollyEmulator, index: int = 0) -> list[str]:
    return [
        e.text or "" for e in emu.requests[index].events if e.event_type == "TextEvent"
    ]


def no_traceback(stderr: bytes) -> None:
    assert b"Traceback" not in stderr, stderr.decode()
    assert b"Task exception" not in stderr, stderr.decode()


# Text from the arguments ------------------------------------------------------------


def test_text_arguments_to_file(
    emu: PollyEmulator, env: dict[str, str], tmp_path: Path
) -> None:
    done = run(
        ["-o", "out.mp3", "Hello world.", "How", "are", "you?"], env, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    text = "Hello world. How are you?"
    audio = (tmp_path / "out.mp3").read_bytes()
    assert audio == emu.expected_audio(text, voice_id="Matthew")
    assert not (tmp_path / "out.mp3.part").exists()
    assert done.stderr == b""  # stderr is not a terminal: no progress, no summary
    assert done.stdout == b""
    (request,) = emu.requests
    assert text_events(emu) == [text]
    assert (request.voice_id, request.output_format) == ("Matthew", "mp3")
    assert request.header("x-amzn-engine") in {"generative", None}
    assert request.outcome == "completed"


def test_audio_to_stdout(
    emu: PollyEmulator, env: dict[str, str], tmp_path: Path
) -> None:
    done = run(["Hi", "there."], env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == emu.expected_audio("Hi there.", voice_id="Matthew")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("name", "options", "output_format", "sample_rate"),
    [
        ("out.pcm", ["--sample-rate", "16000"], "pcm", 16000),
        ("out.opus", [], "ogg_opus", None),
        ("out.ogg", [], "ogg_vorbis", None),
        ("out.ULAW", [], "mulaw", None),
    ],
)
def test_format_inferred_from_extension(
    emu: PollyEmulator,
    env: dict[str, str],
    tmp_path: Path,
    name: str,
    options: list[str],
    output_format: str,
    sample_rate: int | None,
) -> None:
    done = run([*options, "-o", name, "Hello."], env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (request,) = emu.requests
    assert request.output_format == output_format
    expected = emu.expected_audio(
        "Hello.",
        voice_id="Matthew",
        output_format=output_format,
        sample_rate=sample_rate,
    )
    assert (tmp_path / name).read_bytes() == expected


def test_synthesis_options_reach_the_request(
    emu: PollyEmulator, env: dict[str, str], tmp_path: Path
) -> None:
    done = run(
        [
            *("-v", "Joanna", "-f", "alaw", "--language-code", "en-US"),
            *("--lexicon", "Names", "--lexicon", "Acronyms", "--engine", "generative"),
            *("-o", "out.mp3", "Hello."),  # --format wins over the extension
        ],
        env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    (request,) = emu.requests
    assert request.voice_id == "Joanna"
    assert request.output_format == "alaw"
    assert request.language_code == "en-US"
    assert request.lexicon_names == ("Names", "Acronyms")
    assert (tmp_path / "out.mp3").read_bytes() == emu.expected_audio(
        "Hello.", voice_id="Joanna", output_format="alaw"
    )


def test_endpoint_ca_bundle_and_region_options(
    emu: PollyEmulator, env: dict[str, str], tmp_path: Path
) -> None:
    for name in (
        "AWS_ENDPOINT_URL_POLLY",
        "AWS_CA_BUNDLE",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
    ):
        del env[name]
    options = ["--endpoint-url", emu.endpoint_url, "--ca-bundle", str(emu.ca_path)]
    done = run(
        [*options, "--region", emu.region, "-o", "a.mp3", "Hi."], env, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert emu.requests[0].outcome == "completed"
    assert list(tmp_path.iterdir()) == [tmp_path / "a.mp3"]


# WAV ----------------------------------------------------------------------------------


def g711_fields(data: bytes) -> tuple[Any, ...]:
    """(RIFF size, format tag, channels, rate, byte rate, block align, bits,
    cbSize, fact sample count, data size) of a 58-byte mulaw/alaw header."""
    fields = struct.unpack("<4sI4s4sIHHIIHHH4sII4sI", data[:58])
    assert (fields[0], fields[2], fields[3], fields[4]) == (
        b"RIFF",
        b"WAVE",
        b"fmt ",
        18,
    )
    assert (fields[12], fields[13], fields[15]) == (b"fact", 4, b"data")
    return (fields[1], *fields[5:12], fields[14], fields[16])


@pytest.mark.parametrize(
    ("name", "options", "sample_rate"),
    [
        ("out.wav", [], 16000),
        ("OUT.WAV", [], 16000),
        ("narrow.Wav", ["--sample-rate", "8000"], 8000),
        ("explicit.wav", ["-f", "pcm"], 16000),
    ],
)
def test_wav_file(
    emu: PollyEmulator,
    env: dict[str, str],
    tmp_path: Path,
    name: str,
    options: list[str],
    sample_rate: int,
) -> None:
    text = "Hello world. How are you?"
    done = run([*options, "-o", name, text], env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (request,) = emu.requests
    assert request.output_format == "pcm"
    assert request.header("x-amzn-samplerate") == str(sample_rate)
    pcm = emu.expected_audio(
        text, voice_id="Matthew", output_format="pcm", sample_rate=sample_rate
    )
    path = tmp_path / name
    with wave.open(str(path)) as reader:
        assert reader.getparams() == (
            1,
            2,
            sample_rate,
            len(pcm) // 2,
            "NONE",
            "not compressed",
        )
        assert reader.readframes(len(pcm)) == pcm
    assert path.read_bytes() == (
        wav_header(sample_rate=sample_rate, data_size=len(pcm)) + pcm
    )
    assert list(tmp_path.iterdir()) == [path]  # the .part file was renamed


@pytest.mark.parametrize(("output_format", "tag"), [("mulaw", 7), ("alaw", 6)])
def test_telephony_wav_file(
    emu: PollyEmulator,
    env: dict[str, str],
    tmp_path: Path,
    output_format: str,
    tag: int,
) -> None:
    text = "Thank you for calling."
    done = run(["-f", output_format, "-o", "call.wav", text], env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (request,) = emu.requests
    assert request.output_format == output_format
    assert request.header("x-amzn-samplerate") == "8000"
    audio = emu.expected_audio(text, voice_id="Matthew", output_format=output_format)
    data = (tmp_path / "call.wav").read_bytes()
    assert g711_fields(data) == (
        50 + len(audio),  # RIFF size (even data: no pad byte)
        tag,
        1,  # channels
        8000,
        8000,  # bytes/s
        1,  # block align
        8,  # bits
        0,  # cbSize
        len(audio),  # fact: samples
        len(audio),  # data size
    )
    assert data[58:] == audio
    assert len(data) == 58 + len(audio)


def test_wav_with_a_compressed_format_is_refused(
    emu: PollyEmulator, env: dict[str, str], tmp_path: Path
) -> None:
    done = run(["-f", "mp3", "-o", "out.wav", "Hello."], env, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr == (
        b"polly-stream: error: --format mp3 cannot be written to out.wav: a .wav "
        b"file holds pcm, mulaw or alaw audio (leave out --format for pcm, or "
        b"name the file for the format)\n"
    )
    done = run(["--wav", "-f", "ogg_vorbis", "Hello."], env, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr == (
        b"polly-stream: error: --wav holds pcm, mulaw or alaw audio, not "
        b"--format ogg_vorbis\n"
    )
    assert emu.requests == []
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("options", "output_format", "sample_rate"),
    [
        (["-f", "wav"], "pcm", 16000),
        (["-f", "wav", "--sample-rate", "8000"], "pcm", 8000),
        (["--wav"], "pcm", 16000),
        (["--wav", "-f", "mulaw"], "mulaw", 8000),
        (["--wav", "-f", "alaw"], "alaw", 8000),
    ],
)
def test_wav_stream_to_stdout(
    emu: PollyEmulator,
    env: dict[str, str],
    tmp_path: Path,
    options: list[str],
    output_format: WavEncoding,
    sample_rate: int,
) -> None:
    text = "Hi there."
    done = run([*options, text], env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert emu.requests[0].output_format == output_format
    audio = emu.expected_audio(
        text, voice_id="Matthew", output_format=output_format, sample_rate=sample_rate
    )
    # A pipe cannot seek back: the header says "unknown length".
    header = wav_header(sample_rate=sample_rate, encoding=output_format)
    assert done.stdout == header + audio
    if output_format == "pcm":
        with wave.open(io.BytesIO(done.stdout)) as reader:
            assert reader.getframerate() == sample_rate
            assert reader.readframes(1 << 20) == audio
    assert list(tmp_path.iterdir()) == []


def test_wav_to_stdout_writes_nothing_when_the_service_refuses(
    emu: PollyEmulator, env: dict[str, str], tmp_path: Path
) -> None:
    done = run(["-f", "wav", "-v", "Aditi", "Hello."], env, cwd=tmp_path)
    assert done.returncode == 1
    assert b"ValidationException" in done.stderr
    assert done.stdout == b""  # not even a header


def test_wav_telephony_rate_is_the_services_call(
    emu: PollyEmulator, env: dict[str, str], tmp_path: Path
) -> None:
    done = run(
        ["-f", "mulaw", "--sample-rate", "16000", "-o", "call.wav", "Hi."],
        env,
        cwd=tmp_path,
    )
    assert done.returncode == 1
    assert re.fullmatch(
        rb"polly-stream: error: ValidationException: .*sample rate '16000' is not "
        rb"valid for mulaw.*\n",
        done.stderr,
    ), done.stderr
    assert list(tmp_path.iterdir()) == []


def test_wav_failure_after_audio_removes_the_partial_file(
    emu: PollyEmulator, env: dict[str, str], tmp_path: Path
) -> None:
    emu.faults.add(Fault.drop_connection(after_audio_events=1))
    done = run(
        ["-o", "out.wav", "One sentence. Another sentence. A third."],
        env,
        cwd=tmp_path,
    )
    assert done.returncode == 1
    assert done.stderr.decode().splitlines()[-1] == (
        "polly-stream: removed the incomplete out.wav.part"
    )
    assert list(tmp_path.iterdir()) == []


def test_wav_to_a_special_file_keeps_the_streaming_header(
    emu: PollyEmulator, env: dict[str, str], tmp_path: Path
) -> None:
    done = run(["-o", os.devnull, "--wav", "Hello."], env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert not Path(f"{os.devnull}.part").exists()


async def write_wav_output(
    path: Path, wav: WavSpec, *chunks: bytes
) -> tuple[AudioOutput, OutputError | None]:
    """Write ``chunks`` through the CLI's output as run() does; the error of
    ``finish``, after which (as run() does) the output is aborted."""
    output = AudioOutput(str(path), wav=wav)
    output.open()
    for chunk in chunks:
        output.write(chunk)
    try:
        await output.finish()
    except OutputError as exc:
        return output, exc
    return output, None


def test_wav_output_pads_odd_8_bit_audio(tmp_path: Path) -> None:
    path = tmp_path / "odd.wav"
    output, error = asyncio.run(
        write_wav_output(path, WavSpec("alaw", 8000), b"\xd5" * 3, b"\x55" * 2)
    )
    assert error is None
    assert not output.abort()  # nothing to remove after success
    header = wav_header(sample_rate=8000, encoding="alaw", data_size=5)
    assert path.read_bytes() == header + b"\xd5\xd5\xd5\x55\x55" + b"\0"
    assert g711_fields(header)[0] == 50 + 5 + 1  # the pad byte counts in RIFF
    assert list(tmp_path.iterdir()) == [path]


def test_wav_output_of_no_audio_is_an_empty_wav(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    _, error = asyncio.run(write_wav_output(path, WavSpec("pcm", 16000)))
    assert error is None
    assert path.read_bytes() == wav_header(sample_rate=16000, data_size=0)


def test_wav_output_refuses_pcm_cut_mid_sample(tmp_path: Path) -> None:
    path = tmp_path / "cut.wav"
    output, error = asyncio.run(
        write_wav_output(path, WavSpec("pcm", 16000), b"\x01\x00\x02")
    )
    assert str(error) == (
        f"the audio ended mid-sample (3 bytes of 16-bit pcm): {path} would not "
        "be a valid WAV file"
    )
    assert output.abort()  # what run() does on failure: the part file goes
    assert list(tmp_path.iterdir()) == []


def test_format_resolution() -> None:
    assert resolve_format(None, "a.mp3", wav=False) == ("mp3", False)
    assert resolve_format(None, None, wav=False) == ("mp3", False)
    assert resolve_format("alaw", "a.mp3", wav=False) == ("alaw", False)
    assert resolve_format(None, "a.wav", wav=False) == ("pcm", True)
    assert resolve_format(None, "a.WAV", wav=False) == ("pcm", True)
    assert resolve_format("mulaw", "a.wav", wav=False) == ("mulaw", True)
    assert resolve_format("wav", None, wav=False) == ("pcm", True)
    assert resolve_format("wav", "a.mp3", wav=False) == ("pcm", True)  # -f wins
    assert resolve_format(None, None, wav=True) == ("pcm", True)
    assert resolve_format("alaw", "a.raw", wav=True) == ("alaw", True)
    with pytest.raises(
        UsageError, match=r"--format ogg_opus cannot be written to x\.wav"
    ):
        resolve_format("ogg_opus", "x.wav", wav=False)
    with pytest.raises(
        UsageError, match="--wav holds pcm, mulaw or alaw audio, not --format mp3"
    ):
        resolve_format("mp3", None, wav=True)


def test_plan_for_wav() -> None:
    def job_for(*argv: str) -> Any:
        args: argparse.Namespace = build_parser().parse_args(argv)
        return plan(args, stdout_isatty=False, environ={})

    job = job_for("-o", "x.wav", "Hi")
    assert (job.output_format, job.sample_rate, job.wav) == ("pcm", "16000", True)
    assert WavSpec.for_job(job) == WavSpec("pcm", 16000)
    job = job_for("-f", "mulaw", "-o", "x.wav", "Hi")
    assert (job.output_format, job.sample_rate, job.wav) == ("mulaw", "8000", True)
    assert WavSpec.for_job(job) == WavSpec("mulaw", 8000)
    job = job_for("-f", "wav", "--sample-rate", "8000", "Hi")
    assert (job.output_format, job.sample_rate, job.wav) == ("pcm", "8000", True)
    job = job_for("-o", "x.pcm", "Hi")
    assert (job.output_format, job.sample_rate, job.wav) == ("pcm", None, False)
    assert WavSpec.for_job(job) is None
    with pytest.raises(UsageError, match=r"--format mp3 cannot be written to x\.wav"):
        job_for("-f", "mp3", "-o", "x.wav", "Hi")


def test_help_describes_wav() -> None:
    text = " ".join(build_parser().format_help().split())
    assert "wav is pcm in a WAV file" in text
    assert ".wav (pcm in WAV)" in text
    assert "--wav write a WAV file: pcm, or mulaw/alaw with -f (telephony WAV)" in text
    assert 'polly-stream -f mulaw -o call.wav "Thank you for calling."' in text


# Text from stdin -------------------------------------------------------------------


def test_stdin_is_streamed_as_it_arrives(
    emu: PollyEmulator, env: dict[str, str], tmp_path: Path
) -> None:
    process = subprocess.Popen(
        [*CLI, "-o", "out.mp3"],
        env=env,
        cwd=tmp_path,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    part = tmp_path / "out.mp3.part"
    try:
        assert process.stdin is not None
        process.stdin.write(b"Hello.\n")
        process.stdin.flush()
        # The first line is sent, synthesized and written before the second exists.
        wait_for(
            lambda: bool(emu.requests) and bool(text_events(emu)), "the first line"
        )
        wait_for(lambda: part.exists() and part.stat().st_size > 0, "the first audio")
        assert text_events(emu) == ["Hello.\n"]
        _, stderr = process.communicate(b"World.\n", timeout=TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    events = text_events(emu)
    assert [e for e in events if e.strip()] == ["Hello.\n", "World.\n"]
    first, second = (e for e in emu.requests[0].events if (e.text or "").strip())
    assert first.received_at < second.received_at
    assert (tmp_path / "out.mp3").read_bytes() == emu.expected_audio(
        events, voice_id="Matthew"
    )
    assert not part.exists()


def test_dash_reads_stdin_from_a_file(
    emu: PollyEmulator, env: dict[str, str], tmp_path: Path
) -> None:
    # A regular file cannot be watched by the event loop: the thread reads it.
    text = "Grüße aus Köln. Bis bald!\n"
    source = tmp_path / "in.txt"
    source.write_text(text, encoding="utf-8")
    with source.open("rb") as stdin:
        done = run(
            ["-", "-v", "Vicki", "--language-code", "de-DE"],
            env,
            cwd=tmp_path,
            stdin=stdin,
        )
    assert done.returncode == 0, done.stderr
    assert "".join(text_events(emu)) == text
    assert done.stdout == emu.expected_audio(text_events(emu), voice_id="Vicki")


def test_a_dash_among_words_is_text(
    emu: PollyEmulator, env: dict[str, str], tmp_path: Path
) -> None:
    done = run(["Pros", "-", "cons."], env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert text_events(emu) == ["Pros - cons."]


def test_empty_stdin_makes_no_request(
    emu: PollyEmulator, env: dict[str, str], tmp_path: Path
) -> None:
    done = run(["-o", "out.mp3"], env, cwd=tmp_path, stdin=b"  \n\n")
    assert done.returncode == 1
    assert (
        done.stderr == b"polly-stream: error: no text to synthesize: stdin was empty\n"
    )
    assert emu.requests == []
    assert list(tmp_path.iterdir()) == []


def test_stdin_that_is_not_utf8(
    emu: PollyEmulator, env: dict[str, str], tmp_path: Path
) -> None:
    done = run(["-o", "out.mp3"], env, cwd=tmp_path, stdin=b"caf\xe9 au lait.\n")
    assert done.returncode == 1
    assert ONE_ERROR_LINE.fullmatch(done.stderr.decode()), done.stderr
    assert b"stdin is not UTF-8 text" in done.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("source", ["arguments", "stdin"])
def test_ssml(
    emu: PollyEmulator, env: dict[str, str], tmp_path: Path, source: str
) -> None:
    document = '<speak>Hello <prosody rate="slow">there</prosody>.</speak>'
    if source == "arguments":
        done = run(["--ssml", "-o", "out.mp3", document], env, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    else:
        # Written in two parts, a while apart: still one document, one event.
        process = subprocess.Popen(
            [*CLI, "--ssml", "-o", "out.mp3"],
            env=env,
            cwd=tmp_path,
            stdin=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert process.stdin is not None
        process.stdin.write(document[:20].encode())
        process.stdin.flush()
        time.sleep(0.3)
        _, stderr = process.communicate(document[20:].encode(), timeout=TIMEOUT)
        assert process.returncode == 0, stderr
    (event, close) = emu.requests[0].events
    assert (event.event_type, event.text_type, event.text) == (
        "TextEvent",
        "ssml",
        document,
    )
    assert close.event_type == "CloseStreamEvent"
    assert (tmp_path / "out.mp3").read_bytes() == emu.expected_audio(
        "Hello there.", voice_id="Matthew"
    )


# Failures ----------------------------------------------------------------------------


def test_validation_exception(
    emu: PollyEmulator, env: dict[str, str], tmp_path: Path
) -> None:
    done = run(["-v", "Aditi", "-o", "out.mp3", "Hello."], env, cwd=tmp_path)
    assert done.returncode == 1
    stderr = done.stderr.decode()
    assert re.fullmatch(
        r"polly-stream: error: ValidationException: 1 validation error detected: "
        r"Value at 'VoiceId' .*Aditi.* \(request id [0-9a-f-]{36}\)\n",
        stderr,
    ), stderr
    assert list(tmp_path.iterdir()) == []  # neither out.mp3 nor out.mp3.part


def test_failure_after_audio_removes_the_partial_file(
    emu: PollyEmulator, env: dict[str, str], tmp_path: Path
) -> None:
    emu.faults.add(Fault.drop_connection(after_audio_events=1))
    text = "One sentence. Another sentence. And a third one."
    done = run(["-o", "out.mp3", text], env, cwd=tmp_path)
    assert done.returncode == 1
    error, note = done.stderr.decode().splitlines()
    assert error.startswith("polly-stream: error: ")
    assert re.search(r"Error: .*\(request id [0-9a-f-]{36}\)$", error), error
    assert note == "polly-stream: removed the incomplete out.mp3.part"
    no_traceback(done.stderr)
    assert list(tmp_path.iterdir()) == []


def test_no_credentials(
    emu: PollyEmulator, env: dict[str, str], tmp_path: Path
) -> None:
    del env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]
    done = run(["-o", "out.mp3", "Hello."], env, cwd=tmp_path)
    assert done.returncode == 1
    stderr = done.stderr.decode()
    assert ONE_ERROR_LINE.fullmatch(stderr), stderr
    assert stderr.startswith(
        "polly-stream: error: NoCredentialsError: no AWS credentials found (environment: "
    )
    assert emu.requests == []
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "flac", "Hi."], "invalid choice: 'flac'"),
        (["--sample-rate", "fast", "Hi."], "expected a sample rate in Hz"),
        (["--region", "Mars Base", "Hi."], "region must look like"),
        (["--lexicon", "no-dashes", "Hi."], "lexicon_names"),
        (["--voice", "Bad Voice", "Hi."], "voice_id must be printable ASCII"),
        (["", " "], "TEXT is empty"),
        (["-o", "", "Hi."], "the file name is empty"),
    ],
)
def test_bad_arguments_exit_2(
    emu: PollyEmulator,
    env: dict[str, str],
    tmp_path: Path,
    args: list[str],
    message: str,
) -> None:
    done = run(args, env, cwd=tmp_path)
    assert done.returncode == 2
    assert message in done.stderr.decode()
    no_traceback(done.stderr)
    assert emu.requests == []


def test_broken_pipe_on_stdout(
    emu: PollyEmulator, env: dict[str, str], tmp_path: Path
) -> None:
    process = subprocess.Popen(
        [*CLI, "Hello there."],
        env=env,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    process.stdout.close()  # nobody reads: the first write fails
    _, stderr = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 1
    assert stderr == (
        b"polly-stream: error: stdout was closed before the audio was complete "
        b"(broken pipe)\n"
    )


def test_special_output_file_is_written_in_place(
    emu: PollyEmulator, env: dict[str, str], tmp_path: Path
) -> None:
    done = run(["-o", os.devnull, "Hello."], env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert not Path(f"{os.devnull}.part").exists()


@pytest.mark.parametrize(
    ("redirect", "args", "message"),
    [
        ("<&-", ["-o", "out.mp3"], "cannot read stdin: it is closed"),
        (">&-", ["Hello."], "cannot write stdout: it is closed"),
    ],
)
def test_closed_stdin_or_stdout(
    emu: PollyEmulator,
    env: dict[str, str],
    tmp_path: Path,
    redirect: str,
    args: list[str],
    message: str,
) -> None:
    # The next file opened must not become "stdin" or "stdout".
    done = subprocess.run(
        ["/bin/sh", "-c", f'exec "$@" {redirect}', "sh", *CLI, *args],
        env=env,
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr == f"polly-stream: error: {message}\n".encode()
    assert emu.requests == []
    assert list(tmp_path.iterdir()) == []


# Terminals -------------------------------------------------------------------------


def open_pty(columns: int = 120) -> tuple[int, int]:
    primary, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    return primary, secondary


def read_all(fd: int, into: bytearray) -> threading.Thread:
    """Read a pty's primary side until the other side is closed."""

    def pump() -> None:
        while True:
            try:
                data = os.read(fd, 4096)
            except OSError:  # EIO: every secondary descriptor is closed
                return
            if not data:
                return
            into.extend(data)

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    return thread


def test_refuses_binary_audio_on_a_terminal(
    emu: PollyEmulator, env: dict[str, str], tmp_path: Path
) -> None:
    primary, secondary = open_pty()
    seen = bytearray()
    try:
        done = run(
            ["Hello."], env, cwd=tmp_path, stdout=secondary, stderr=subprocess.PIPE
        )
        os.close(secondary)
        read_all(primary, seen).join(timeout=5)
    finally:
        os.close(primary)
    assert done.returncode == 2
    assert done.stderr == (
        b"polly-stream: error: refusing to write binary audio to a terminal; "
        b"use -o FILE (or -o - to insist)\n"
    )
    assert bytes(seen) == b""
    assert emu.requests == []


def test_text_typed_on_a_terminal(
    emu: PollyEmulator, env: dict[str, str], tmp_path: Path
) -> None:
    # A terminal cannot be watched by the event loop without putting it in
    # non-blocking mode for the shell too: a thread reads it.
    primary, secondary = open_pty()
    seen = bytearray()
    reader = read_all(primary, seen)
    process = subprocess.Popen(
        [*CLI, "-o", "out.mp3"],
        env=env,
        cwd=tmp_path,
        stdin=secondary,
        stderr=secondary,
        stdout=subprocess.DEVNULL,
    )
    os.close(secondary)
    try:
        wait_for(lambda: b"Ctrl-D ends it" in seen, "the prompt")
        os.write(primary, b"Hello there.\n")
        wait_for(lambda: bool(emu.requests) and bool(text_events(emu)), "the line")
        os.write(primary, b"\x04")  # Ctrl-D: end of input
        assert process.wait(timeout=TIMEOUT) == 0
        reader.join(timeout=5)
    finally:
        if process.poll() is None:
            process.kill()
        os.close(primary)
    screen = seen.decode().replace("\r\n", "\n")
    assert screen.startswith(
        "polly-stream: reading text from the terminal; Ctrl-D ends it\nHello there.\n"
    )
    assert "received," not in screen  # no live line over what is being typed
    assert re.search(r"\npolly-stream: wrote .* to out\.mp3, .* in all\n$", screen)
    assert text_events(emu) == ["Hello there.\n"]
    assert (tmp_path / "out.mp3").read_bytes() == emu.expected_audio(
        "Hello there.\n", voice_id="Matthew"
    )


def test_output_decision() -> None:
    with pytest.raises(UsageError, match="terminal"):
        output_path(None, stdout_isatty=True)
    assert output_path("-", stdout_isatty=True) is None  # asked for explicitly
    assert output_path(None, stdout_isatty=False) is None
    assert output_path("a.mp3", stdout_isatty=True) == "a.mp3"


@pytest.mark.parametrize(
    ("flags", "live", "summary"),
    [([], True, True), (["--no-progress"], False, True), (["--quiet"], False, False)],
)
def test_progress_on_a_terminal(
    emu: PollyEmulator,
    env: dict[str, str],
    tmp_path: Path,
    flags: list[str],
    live: bool,
    summary: bool,
) -> None:
    emu.faults.add(Fault.slow_audio(0.05))  # a few redraws
    primary, secondary = open_pty()
    seen = bytearray()
    try:
        reader = read_all(primary, seen)
        done = run(
            [*flags, "-o", "out.mp3", "One sentence. Another one. A third."],
            env,
            cwd=tmp_path,
            stderr=secondary,
            stdout=subprocess.PIPE,
        )
        os.close(secondary)
        reader.join(timeout=5)
    finally:
        os.close(primary)
    assert done.returncode == 0
    screen = seen.decode()
    size = (tmp_path / "out.mp3").stat().st_size
    redraws = re.findall(
        r"\r(\d+(?:\.\d)? K?i?B received, \d+ audio events?, [^\r]*elapsed)", screen
    )
    if live:
        assert redraws, screen
        assert redraws[0].startswith("0 B received, 0 audio events, no audio yet, ")
        assert any(re.search(r", first audio \d+ ms, ", line) for line in redraws)
    else:
        assert not redraws, screen
    if summary:
        assert re.search(
            rf"polly-stream: wrote {re.escape(format_size(size))} \(\d+ audio events\) "
            r"to out\.mp3, first audio \d+ ms, \d+\.\d s in all\r?\n$",
            screen,
        ), screen
    else:
        assert screen == ""


# Ctrl-C -------------------------------------------------------------------------------


def stdin_watched(pid: int) -> bool:
    """Whether the process's stdin is non-blocking: its event loop watches it."""
    try:
        info = Path(f"/proc/{pid}/fdinfo/0").read_text()
    except OSError:
        return False
    flags = int(re.search(r"flags:\s+(\d+)", info).group(1), 8)  # type: ignore[union-attr]
    return bool(flags & os.O_NONBLOCK)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_ctrl_c_while_waiting_on_stdin(
    emu: PollyEmulator, env: dict[str, str], tmp_path: Path
) -> None:
    process = subprocess.Popen(
        [*CLI, "-o", "out.mp3"],
        env=env,
        cwd=tmp_path,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for(lambda: stdin_watched(process.pid), "the CLI to wait on stdin")
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130
    assert stderr == b""
    assert emu.requests == []
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_mid_stream(
    emu: PollyEmulator, env: dict[str, str], tmp_path: Path
) -> None:
    process = subprocess.Popen(
        [*CLI, "-o", "out.mp3"],
        env=env,
        cwd=tmp_path,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    part = tmp_path / "out.mp3.part"
    try:
        assert process.stdin is not None
        process.stdin.write(b"Hello.\n")
        process.stdin.flush()
        wait_for(lambda: part.exists() and part.stat().st_size > 0, "the first audio")
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130
    assert stderr == b"polly-stream: removed the incomplete out.mp3.part\n"
    assert list(tmp_path.iterdir()) == []


# Pieces ---------------------------------------------------------------------------------


def test_format_by_extension() -> None:
    assert {ext: infer_format(f"x{ext}") for ext in FORMAT_BY_EXTENSION} == {
        ".mp3": "mp3",
        ".ogg": "ogg_vorbis",
        ".opus": "ogg_opus",
        ".pcm": "pcm",
        ".raw": "pcm",
        ".ulaw": "mulaw",
        ".mulaw": "mulaw",
        ".alaw": "alaw",
        ".wav": "pcm",  # inside a WAV container
    }
    assert infer_format("speech.WAV") == "pcm"
    assert infer_format("speech.wave") == "mp3"
    assert infer_format("no-extension") == "mp3"
    assert infer_format(None) == "mp3"
    assert infer_format("/dev/fd/63") == "mp3"


def test_region_resolution() -> None:
    env = {"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "eu-west-2"}
    assert resolve_region("ap-south-1", env) == "ap-south-1"
    assert resolve_region(None, env) == "eu-west-1"
    assert resolve_region(None, {"AWS_DEFAULT_REGION": "eu-west-2"}) == "eu-west-2"
    assert resolve_region(None, {}) == "us-east-1"


def test_plan() -> None:
    def job_for(*argv: str) -> Any:
        args: argparse.Namespace = build_parser().parse_args(argv)
        return plan(args, stdout_isatty=False, environ={})

    job = job_for("-o", "x.opus", "--sample-rate", "24000", "Hi", "there")
    assert (job.text, job.output, job.output_format, job.sample_rate) == (
        "Hi there",
        "x.opus",
        "ogg_opus",
        "24000",
    )
    assert job_for().text is None
    assert job_for("-").text is None
    assert job_for("--ssml", "<speak/>").text_type == "ssml"
    assert job_for("-f", "pcm", "-o", "x.mp3", "a").output_format == "pcm"


def test_progress_lines() -> None:
    progress = Progress(started=100.0)
    assert (
        progress.line(100.25)
        == "0 B received, 0 audio events, no audio yet, 0.2 s elapsed"
    )
    progress.audio(1000, 100.3125)
    progress.audio(2000, 100.5)
    assert progress.line(101.0) == (
        "2.9 KiB received, 2 audio events, first audio 312 ms, 1.0 s elapsed"
    )
    assert progress.summary(102.0, "out.mp3") == (
        "polly-stream: wrote 2.9 KiB (2 audio events) to out.mp3, "
        "first audio 312 ms, 2.0 s in all"
    )
    assert format_size(1023) == "1023 B"
    assert format_size(5 * 1024 * 1024 + 1) == "5.0 MiB"


def test_error_lines() -> None:
    from amazon_polly_streaming import NoCredentialsError, ThrottlingException
    from amazon_polly_streaming.errors import ConnectionClosedError

    assert describe_error(ThrottlingException("Rate exceeded", request_id="r-1")) == (
        "ThrottlingException: Rate exceeded (request id r-1)"
    )
    assert describe_error(
        ConnectionClosedError("reset\nby peer", request_id="r-2")
    ) == ("ConnectionClosedError: reset by peer (request id r-2)")
    error = NoCredentialsError([("environment", "not set"), ("container", "not set")])
    assert describe_error(error) == (
        "NoCredentialsError: no AWS credentials found "
        "(environment: not set; container: not set)"
    )


async def chunks_of(*chunks: bytes) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


async def test_incremental_utf8_decoding() -> None:
    euro = "€".encode()
    pieces = [
        p
        async for p in decode_utf8(
            chunks_of(b"\xef\xbb\xbfPrice: ", euro[:1], euro[1:], b"5", b"")
        )
    ]
    assert pieces == ["Price: ", "€", "5"]  # BOM dropped, the split character joined
    with pytest.raises(InputError, match="not UTF-8"):
        [p async for p in decode_utf8(chunks_of(b"ok", b"\xff"))]
    with pytest.raises(InputError, match="not UTF-8"):  # cut short at the end
        [p async for p in decode_utf8(chunks_of(euro[:2]))]


async def test_streamed_text_waits_for_words() -> None:
    async def pieces() -> AsyncIterator[str]:
        for piece in ["\n", "  ", "Hi", " there.", "\n"]:
            yield piece

    text = StreamedText(pieces())
    assert await text.wait_for_text()
    assert [p async for p in text] == ["\n  Hi", " there.", "\n"]

    whole = StreamedText(pieces())
    assert await whole.wait_for_text(whole=True)
    assert [p async for p in whole] == ["\n  Hi there.\n"]

    blank = StreamedText(chunks_as_text([" ", "\n"]))
    assert not await blank.wait_for_text()


async def chunks_as_text(pieces: list[str]) -> AsyncIterator[str]:
    for piece in pieces:
        yield piece
