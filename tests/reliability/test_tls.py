"""TLS failure: the emulator's CA is not trusted.

Not under the ``no_leaks`` check: awscrt cannot abort a connection attempt, so
the socket of the attempt the client gave up on stays open until s2n fails the
handshake 10-30 s later, when a callback closes it (see ``transport.connect``).
"""

from __future__ import annotations

import time

import pytest

from amazon_polly_streaming import AwsCredentials, PollyStreamingClient
from amazon_polly_streaming.errors import ConnectTimeoutError, TransportError
from amazon_polly_streaming.testing import PollyEmulator

HELLO = "hello world, how are you today"


async def collect(stream: object) -> bytes:
    return b"".join([chunk async for chunk in stream])  # type: ignore[attr-defined]


async def test_untrusted_certificate_is_a_clear_runtime_error(
    emu: PollyEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_CA_BUNDLE", raising=False)
    creds = emu.credentials
    client = PollyStreamingClient(
        emu.region,
        endpoint_url=emu.endpoint_url,
        credentials=AwsCredentials(
            access_key_id=creds.access_key_id, secret_access_key=creds.secret_access_key
        ),
        connect_timeout=1.0,
        max_attempts=1,
    )
    started = time.monotonic()
    with pytest.raises((ConnectTimeoutError, TransportError)) as raised:
        await collect(
            client.start_speech_synthesis_stream(text=HELLO, voice_id="Matthew")
        )
    assert isinstance(raised.value, RuntimeError)
    assert time.monotonic() - started < 5
    assert emu.requests == []  # never a request over an unverified connection
