"""A client pointed at an emulator, as the client and adapter tests make it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from amazon_polly_streaming import PollyStreamingClient
from amazon_polly_streaming.credentials import AwsCredentials
from amazon_polly_streaming.testing import PollyEmulator


def credentials_of(emu: PollyEmulator) -> AwsCredentials:
    """The emulator's test credentials, as the client takes them."""
    creds = emu.credentials
    return AwsCredentials(
        access_key_id=creds.access_key_id,
        secret_access_key=creds.secret_access_key,
        session_token=creds.session_token,
    )


def client_for(emu: PollyEmulator, **options: Any) -> PollyStreamingClient:
    """A client for ``emu``: its endpoint, its CA, its credentials."""
    return PollyStreamingClient(
        emu.region,
        endpoint_url=emu.endpoint_url,
        ca_bundle=str(emu.ca_path),
        credentials=credentials_of(emu),
        **options,
    )


async def collect(stream: AsyncIterator[bytes]) -> bytes:
    """All the audio of a call."""
    return b"".join([chunk async for chunk in stream])
