"""Faults the issue lists that tests/client does not already cover, as the caller sees them.

Each ends with the pool healthy: the next call succeeds, on a fresh connection
where the old one could be stale.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from emulated import client_for

import amazon_polly_streaming.client as client_module
from amazon_polly_streaming import (
    AwsCredentials,
    NoCredentialsError,
    PollyStreamingClient,
    ServiceQuotaExceededException,
)
from amazon_polly_streaming.testing import Fault, PollyEmulator, TestCredentials

# Every test here must leave no thread, fd or connection behind.
pytestmark = pytest.mark.usefixtures("no_leaks")


async def say(client: PollyStreamingClient, text: Any = "Healthy again.") -> bytes:
    return b"".join(
        [
            c
            async for c in client.start_speech_synthesis_stream(
                text=text, voice_id="Matthew", output_format="pcm"
            )
        ]
    )


async def test_goaway_on_an_idle_connection_is_never_reused(emu: PollyEmulator) -> None:
    emu.faults.add(Fault.goaway_after_stream())
    client = client_for(emu)
    await say(client, "First.")
    await asyncio.sleep(0.2)  # the GOAWAY arrives while the connection is idle
    await say(client)
    assert len(emu.connections) == 2  # a fresh connection, no stale one handed out
    assert [r.outcome for r in emu.requests] == ["completed", "completed"]


async def test_idle_input_past_the_service_limit_is_a_quota_error(
    emulators: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_module, "KEEPALIVE_INTERVAL", 5.0)  # too slow for 0.3 s
    emu: PollyEmulator = await emulators(idle_timeout=0.3)

    async def stalls() -> AsyncIterator[str]:
        yield "Then nothing."
        await asyncio.sleep(2)

    client = client_for(emu, max_attempts=1)
    with pytest.raises(ServiceQuotaExceededException) as raised:
        await say(client, stalls())
    assert raised.value.quota_code == "input-stream-inbound-event-timeout"
    assert raised.value.service_code == "polly"
    assert len(await say(client)) > 0


async def test_stream_duration_limit_is_a_quota_error(
    emulators: Callable[..., Any],
) -> None:
    emu: PollyEmulator = await emulators(max_stream_duration=0.5)

    async def endless() -> AsyncIterator[str]:
        while True:
            yield "More. "
            await asyncio.sleep(0.1)

    client = client_for(emu, max_attempts=1)
    received: list[bytes] = []
    with pytest.raises(ServiceQuotaExceededException) as raised:
        async for chunk in client.start_speech_synthesis_stream(
            text=endless(), voice_id="Matthew", output_format="pcm"
        ):
            received.append(chunk)
    assert raised.value.quota_code == "input-stream-timeout"
    assert received  # the audio before the limit was yielded
    assert len(await say(client)) > 0


async def test_missing_credentials_say_which_sources_were_tried(
    emu: PollyEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    client = PollyStreamingClient(
        emu.region, endpoint_url=emu.endpoint_url, ca_bundle=str(emu.ca_path)
    )
    with pytest.raises(NoCredentialsError) as raised:
        await say(client)
    assert isinstance(raised.value, RuntimeError)
    text = str(raised.value).lower()
    for source in ("environment", "web identity", "container", "metadata"):
        assert source in text
    assert emu.requests == []  # nothing sent without credentials
    assert client.pool_stats().leased == 0


async def test_credentials_that_expire_during_a_long_run_are_renewed(
    emulators: Callable[..., Any],
) -> None:
    keys = [TestCredentials(f"AKIAROTATING0000000{i}", f"secret-{i}") for i in range(3)]
    emu: PollyEmulator = await emulators(credentials=keys)

    class Rotating:
        """Hands out short-lived credentials, a new key pair each time."""

        def __init__(self) -> None:
            self.issued = 0

        async def get_credentials(self) -> AwsCredentials:
            key = keys[self.issued % len(keys)]
            self.issued += 1
            return AwsCredentials(
                access_key_id=key.access_key_id,
                secret_access_key=key.secret_access_key,
                expiration=datetime.now(UTC) + timedelta(minutes=15),
            )

    provider = Rotating()
    client = PollyStreamingClient(
        emu.region,
        endpoint_url=emu.endpoint_url,
        ca_bundle=str(emu.ca_path),
        credentials=provider,
    )
    for _ in range(4):
        await say(client)
    assert [r.access_key_id for r in emu.requests] == [
        keys[0].access_key_id,
        keys[1].access_key_id,
        keys[2].access_key_id,
        keys[0].access_key_id,
    ]
    assert all(r.signature_ok for r in emu.requests)
