"""AWS's official clients against the emulator, with every signature verified.

Two official clients run ``StartSpeechSynthesisStream`` against a
``PollyEmulator``, each as a subprocess fed a JSON job on stdin:

* Python ``aws-sdk-polly`` (smithy-python, awscrt transport):
  ``tests/interop/python/synthesize.py`` in its own virtualenv
  (``.tools/interop-py``: its awscrt pin conflicts with the project's);
* JS v3 ``@aws-sdk/client-polly`` with ``NodeHttp2Handler``:
  ``tests/interop/node/synthesize.mjs`` (``tests/interop/node/node_modules``).

Where an official client and the emulator disagree, the client is the
reference. Each test skips, naming the setup command, only when a client's
runtime is absent; with ``POLLY_INTEROP_REQUIRED=1`` (CI) it fails instead.
Each subprocess gets an environment built from scratch: the emulator's
``env()`` plus PATH and HOME, nothing inherited (no AWS_* or SSL variables
from the machine), and the AWS config files pointed at a path that does not
exist.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import shutil
import subprocess
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from amazon_polly_streaming.testing import Fault, PollyEmulator, RequestRecord

REPO = Path(__file__).resolve().parents[2]
INTEROP_PYTHON = REPO / ".tools" / "interop-py" / "bin" / "python"
PYTHON_SCRIPT = REPO / "tests" / "interop" / "python" / "synthesize.py"
NODE_DIR = REPO / "tests" / "interop" / "node"
NODE_SCRIPT = NODE_DIR / "synthesize.mjs"
TIMEOUT = 60.0
EMULATOR_LOGGER = "amazon_polly_streaming.testing"


@dataclass(frozen=True, slots=True)
class OfficialClient:
    """How to run one official client's interop script."""

    name: str

    def missing(self) -> str | None:
        """Why this client cannot run here, or None when its runtime is present."""
        if self.name == "python":
            if not INTEROP_PYTHON.exists():
                return (
                    f"aws-sdk-polly interop venv absent ({INTEROP_PYTHON}); create it: "
                    "export UV_PYTHON=$(scripts/find-python) UV_PYTHON_DOWNLOADS=never; "
                    ".tools/bin/uv venv .tools/interop-py && .tools/bin/uv pip sync "
                    "--python .tools/interop-py/bin/python "
                    "tests/interop/python/requirements.txt"
                )
            return None
        if shutil.which("node") is None:
            return "node is not on PATH (the JS v3 client needs Node.js 20+)"
        if not (NODE_DIR / "node_modules" / "@aws-sdk" / "client-polly").is_dir():
            return (
                "@aws-sdk/client-polly not installed; run: "
                "npm ci --prefix tests/interop/node"
            )
        return None

    def command(self) -> list[str]:
        if self.name == "python":
            return [str(INTEROP_PYTHON), str(PYTHON_SCRIPT)]
        node = shutil.which("node")
        assert node is not None
        return [node, str(NODE_SCRIPT)]

    def env(self, emu: PollyEmulator, home: Path) -> dict[str, str]:
        """The subprocess's whole environment."""
        env = {
            **emu.env(),
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", str(home)),
            # Never a developer's ~/.aws profile, CA bundle or endpoint.
            "AWS_CONFIG_FILE": str(home / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-aws-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        if self.name == "node":
            # Read by Node at start-up: the CA joins Node's bundled roots.
            env["NODE_EXTRA_CA_CERTS"] = str(emu.ca_path)
        return env


CLIENTS = [OfficialClient("python"), OfficialClient("node")]


def require(client: OfficialClient) -> OfficialClient:
    """The client, if its runtime is here; else skip (fail in CI) naming the fix."""
    reason = client.missing()
    if reason is not None:
        if os.environ.get("POLLY_INTEROP_REQUIRED"):
            pytest.fail(f"POLLY_INTEROP_REQUIRED is set: {reason}")
        pytest.skip(reason)
    return client


@pytest.fixture(params=CLIENTS, ids=lambda c: c.name)
def official_client(request: pytest.FixtureRequest) -> OfficialClient:
    return require(request.param)


@pytest.fixture
def emu(caplog: pytest.LogCaptureFixture) -> Generator[PollyEmulator]:
    """A default emulator (100 concurrent streams); checked for its own errors."""
    caplog.set_level(logging.INFO, logger=EMULATOR_LOGGER)
    with PollyEmulator().running_in_thread() as emulator:
        yield emulator
        assert emulator.log.internal_errors == []
        for connection in emulator.connections:
            assert connection.protocol_errors == [], connection
    complaints = [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith(EMULATOR_LOGGER) and r.levelno >= logging.WARNING
    ]
    assert complaints == []


def run_client(
    client: OfficialClient,
    emu: PollyEmulator,
    tmp_path: Path,
    *,
    texts: Sequence[str | Mapping[str, Any]],
    voice_id: str = "Joanna",
    output_format: str = "mp3",
    sample_rate: int | None = None,
    repeat: int = 1,
    delay_ms: int = 0,
) -> list[dict[str, Any]]:
    """Run the client's script on one job; returns its calls' results."""
    job: dict[str, Any] = {
        "endpoint_url": emu.endpoint_url,
        "region": emu.region,
        "voice_id": voice_id,
        "output_format": output_format,
        "texts": list(texts),
        "repeat": repeat,
        "delay_ms": delay_ms,
    }
    if sample_rate is not None:
        job["sample_rate"] = sample_rate
    proc = subprocess.run(
        client.command(),
        input=json.dumps(job),
        capture_output=True,
        text=True,
        env=client.env(emu, tmp_path),
        timeout=TIMEOUT,
        check=False,
        cwd=tmp_path,
    )
    context = f"{client.name} exited {proc.returncode}; stderr:\n{proc.stderr}"
    assert proc.returncode == 0, context
    lines = proc.stdout.strip().splitlines()
    assert lines, context
    result = json.loads(lines[-1])
    calls: list[dict[str, Any]] = result["calls"]
    assert len(calls) == repeat, result
    for call in calls:
        call["audio"] = base64.b64decode(call.pop("audio_b64"))
    return calls


def assert_completed(record: RequestRecord) -> None:
    """A request as a correct client leaves it: every signature good, closed."""
    assert record.signature_ok is True, record.signature_error
    assert record.status == 200
    assert record.events, record
    assert all(e.signature_ok for e in record.events), record.events
    assert record.events[-1].event_type == "CloseStreamEvent"
    assert record.final_envelope is True
    assert record.client_end_stream is True
    assert record.outcome == "completed", record


@dataclass(frozen=True, slots=True)
class Case:
    """One synthesis: the text events and the format."""

    texts: tuple[str, ...]
    output_format: str = "mp3"
    sample_rate: int | None = None
    flush: bool = False
    """Every text event carries FlushStreamConfiguration(Force=true)."""
    delay_ms: int = 0
    """Pause between text events (lets the JS client's GOAWAY arrive mid-input)."""


CASES = {
    "mp3-default": Case(("Hello from an official AWS client.",)),
    "pcm-16000": Case(
        ("Sixteen kilohertz", " linear PCM, please."),
        output_format="pcm",
        sample_rate=16000,
    ),
    "ogg_opus": Case(("Opus in Ogg, at its only rate.",), output_format="ogg_opus"),
    "sentences": Case(
        (
            "Streaming text arrives",
            " in pieces. It crosses sentence",
            " boundaries! Does the client",
            " care? Not at all",
            " and this part waits for the close",
        ),
        delay_ms=60,
    ),
    "force-flush": Case(
        ("Flush this fragment", " and this one too", " now"),
        output_format="ogg_vorbis",
        flush=True,
    ),
    "utf8": Case(
        ("Grüße aus Köln — ça va? ", "你好。 Ünïcödé ends here."),
        output_format="mulaw",
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_synthesis_matches_the_emulator_exactly(
    official_client: OfficialClient, emu: PollyEmulator, tmp_path: Path, case: Case
) -> None:
    texts: list[str | Mapping[str, Any]] = [
        {"text": t, "flush": True} if case.flush else t for t in case.texts
    ]
    (call,) = run_client(
        official_client,
        emu,
        tmp_path,
        texts=texts,
        output_format=case.output_format,
        sample_rate=case.sample_rate,
        delay_ms=case.delay_ms,
    )
    assert call["error"] is None
    expected = emu.expected_audio(
        list(case.texts),
        voice_id="Joanna",
        output_format=case.output_format,
        sample_rate=case.sample_rate,
        force_each=case.flush,
    )
    assert call["audio"] == expected
    (record,) = emu.requests
    assert_completed(record)
    assert record.output_format == case.output_format
    assert record.text == "".join(case.texts)
    assert [e.flush for e in record.events[:-1]] == [case.flush] * len(case.texts)
    assert call["audio_events"] == record.audio_events
    assert record.request_characters is not None
    assert record.request_characters > 0
    assert call["request_characters"] == record.request_characters
    assert 0 <= call["ttfa_ms"] <= call["total_ms"]


def test_python_client_runs_sequential_calls_on_one_connection(
    emu: PollyEmulator, tmp_path: Path
) -> None:
    client = require(OfficialClient("python"))
    texts = ["Three calls. ", "One client."]
    calls = run_client(client, emu, tmp_path, texts=texts, repeat=3)
    expected = emu.expected_audio(texts, voice_id="Joanna")
    assert [c["error"] for c in calls] == [None] * 3
    assert [c["audio"] == expected for c in calls] == [True] * 3
    assert len(emu.requests) == 3
    for record, call in zip(emu.requests, calls, strict=True):
        assert_completed(record)
        assert call["request_characters"] == record.request_characters == 23
    # Observed: awscrt keeps one HTTP/2 connection for every call.
    assert {r.connection_id for r in emu.requests} == {0}
    assert [r.stream_id for r in emu.requests] == [1, 3, 5]
    assert len(emu.connections) == 1


def test_js_client_opens_a_session_per_stream(
    emu: PollyEmulator, tmp_path: Path
) -> None:
    client = require(OfficialClient("node"))
    texts = ["Two calls. ", "One client."]
    calls = run_client(client, emu, tmp_path, texts=texts, repeat=2)
    expected = emu.expected_audio(texts, voice_id="Joanna")
    assert [c["audio"] == expected for c in calls] == [True, True]
    for record in emu.requests:
        assert_completed(record)
    # Observed: NodeHttp2Handler gives every event stream a new HTTP/2
    # session, and says GOAWAY (graceful) on each.
    assert [r.connection_id for r in emu.requests] == [0, 1]
    assert [r.stream_id for r in emu.requests] == [1, 1]
    assert all(c.goaway_received for c in emu.connections)


def test_non_generative_voice_is_a_validation_error(
    official_client: OfficialClient, emu: PollyEmulator, tmp_path: Path
) -> None:
    (call,) = run_client(
        official_client, emu, tmp_path, texts=["Hello."], voice_id="Aditi"
    )
    error = call["error"]
    assert error is not None, call
    assert error["type"] == "ValidationException"
    assert error["http_status"] == 400
    assert error["fields"]["reason"] == "fieldValidationFailed"
    assert [f["name"] for f in error["fields"]["fields"]] == ["VoiceId"]
    assert "Aditi" in error["message"]
    assert call["audio"] == b""
    # Not retried: exactly one request, correctly signed, answered 400.
    (record,) = emu.requests
    assert record.signature_ok is True
    assert record.status == 400
    assert record.error_type == "ValidationException"
    assert record.voice_id == "Aditi"
    assert all(e.signature_ok for e in record.events)


def test_mid_stream_throttling_surfaces_after_audio(
    official_client: OfficialClient, emu: PollyEmulator, tmp_path: Path
) -> None:
    """ThrottlingException after one audio event, with text still to send."""
    emu.faults.add(Fault.throttle(mid_stream=True, after_audio_events=1))
    texts = ["The first sentence is heard. ", "The rest is throttled. ", "Unsent."]
    (call,) = run_client(official_client, emu, tmp_path, texts=texts, delay_ms=500)
    error = call["error"]
    assert error is not None, call
    assert error["type"] == "ThrottlingException"
    assert error["message"] == "Rate exceeded"
    reasons = error["fields"].get("throttling_reasons") or error["fields"].get(
        "throttlingReasons"
    )
    assert [r["reason"] for r in reasons] == ["RATE_EXCEEDED"]
    # The audio before the fault arrived intact, and the stream was not retried.
    (record,) = emu.requests
    assert call["audio_events"] == record.audio_events == 1
    assert call["audio"]
    assert len(call["audio"]) == record.audio_bytes
    assert emu.expected_audio(texts, voice_id="Joanna").startswith(call["audio"])
    assert call["request_characters"] is None
    assert record.signature_ok is True
    assert record.status == 200
    assert record.error_type == "ThrottlingException"
    assert record.outcome == "error"
    assert [e.event_type for e in record.events] == ["TextEvent"]
    assert all(e.signature_ok for e in record.events)
    # The error surfaces at once, not after the rest of the input.
    assert call["total_ms"] < 500
    if official_client.name == "python":
        # Observed (aws-sdk-polly 0.12.0, awscrt 0.32.2): once the stream is
        # complete (exception event, END_STREAM, then the emulator's
        # RST_STREAM NO_ERROR), awscrt's request-body task dies with
        # AWS_ERROR_HTTP_STREAM_HAS_COMPLETED and input_stream.close() waits
        # for ever on its unread buffer; the script cancels it after 2 s.
        assert call["send_error"]["type"] == "SendBlocked"
    else:
        # Observed: the JS client stops pulling the input iterable.
        assert call["text_events_sent"] < len(texts)
