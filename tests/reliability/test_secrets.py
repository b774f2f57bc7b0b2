"""No credential or signature in any repr, message or log line, at any level."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from typing import Any

import pytest

from amazon_polly_streaming import (
    AwsCredentials,
    PollyStreamingClient,
    ServiceException,
    TransportError,
)
from amazon_polly_streaming.testing import Fault, PollyEmulator, TestCredentials

SECRET = "s3cr3t/Emulator+Key=0123456789abcdefXYZ"
TOKEN = "FwoGZXIvYXdzEPLACEHOLDERsessionTOKEN//value="
HEX64 = re.compile(r"[0-9a-f]{64}")


@pytest.fixture
async def emu(emulators: Callable[..., Any]) -> PollyEmulator:
    emulator: PollyEmulator = await emulators(
        credentials=TestCredentials("AKIASECRETSTEST00001", SECRET, TOKEN)
    )
    return emulator


def leaks(text: str) -> list[str]:
    found = [s for s in (SECRET, TOKEN) if s in text]
    found += HEX64.findall(text)  # a full signature or signing key
    return found


async def test_nothing_secret_in_logs_reprs_or_errors(
    emu: PollyEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    creds = AwsCredentials(
        access_key_id=emu.credentials.access_key_id,
        secret_access_key=SECRET,
        session_token=TOKEN,
    )
    client = PollyStreamingClient(
        emu.region,
        endpoint_url=emu.endpoint_url,
        ca_bundle=str(emu.ca_path),
        credentials=creds,
        max_attempts=2,
    )
    texts: list[str] = [repr(creds), str(creds), repr(client), repr(emu.credentials)]
    async for _ in client.start_speech_synthesis_stream(
        text="A secret-free call.", voice_id="Joanna"
    ):
        pass
    emu.faults.add(Fault.throttle(), times=1)  # a retried failure, logged at DEBUG
    async for _ in client.start_speech_synthesis_stream(
        text="Retried.", voice_id="Joanna"
    ):
        pass
    failures: list[BaseException] = []
    for fault in (
        Fault.validation("no"),
        Fault.http_error(503),
        Fault.drop_connection(),
    ):
        emu.faults.add(fault, times=2)
        try:
            async for _ in client.start_speech_synthesis_stream(
                text="Fails.", voice_id="Joanna"
            ):
                pass
        except (ServiceException, TransportError) as exc:
            failures.append(exc)
    wrong = PollyStreamingClient(
        emu.region,
        endpoint_url=emu.endpoint_url,
        ca_bundle=str(emu.ca_path),
        credentials=AwsCredentials(
            access_key_id="AKIAWRONG00000000000", secret_access_key=SECRET
        ),
    )
    try:
        async for _ in wrong.start_speech_synthesis_stream(
            text="Denied.", voice_id="Joanna"
        ):
            pass
    except ServiceException as exc:  # pragma: no cover - the emulator answers 403
        failures.append(exc)
    except TransportError as exc:
        failures.append(exc)
    assert len(failures) == 4
    for exc in failures:
        texts += [str(exc), repr(exc)]
    # Our loggers (client and emulator). The in-process emulator's HTTP/2
    # library (hpack, h2) logs raw headers at DEBUG: test-server internals.
    ours = [r for r in caplog.records if r.name.startswith("amazon_polly_streaming")]
    assert any(r.levelno == logging.DEBUG for r in ours)
    texts += [record.getMessage() for record in ours]
    texts += [repr(r) for r in emu.requests]
    assert [t for t in texts if leaks(t)] == []
    assert emu.requests[0].signature_ok  # the secret was really used
    await asyncio.sleep(0)
