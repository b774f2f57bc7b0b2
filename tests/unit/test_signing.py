"""Our SigV4 signer gives exactly what aws-sdk-signers gives, and a known answer."""

from __future__ import annotations

import asyncio
import datetime as dt
import types
from typing import Any

import aws_sdk_signers.signers
import pytest
from aws_sdk_signers import (
    URI,
    AsyncEventSigner,
    AsyncSigV4Signer,
    AWSCredentialIdentity,
    AWSRequest,
    Field,
    Fields,
    SigV4SigningProperties,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from amazon_polly_streaming.credentials import AwsCredentials
from amazon_polly_streaming.eventstream import (
    MessageDecoder,
    Timestamp,
    encode_headers,
)
from amazon_polly_streaming.signing import (
    EventSigner,
    HeaderEncoder,
    codec_headers,
    sign_request,
)

SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
HEADERS = [
    ("Content-Type", "application/vnd.amazon.eventstream"),
    ("x-amzn-VoiceId", "Matthew"),
    ("x-amzn-Engine", "generative"),
    ("x-amzn-OutputFormat", "pcm"),
    ("x-amzn-SampleRate", "16000"),
    ("x-amzn-LexiconNames", '"a,b", c'),
    ("x-amzn-Odd", "  two  spaces   inside "),
]


def reference_request(
    credentials: AwsCredentials, *, host: str, port: int, amz_date: str
) -> dict[str, str]:
    request = AWSRequest(
        destination=URI(
            host=host, port=None if port == 443 else port, path="/v1/synthesisStream"
        ),
        method="POST",
        body=None,
        fields=Fields([Field(name=name, values=[value]) for name, value in HEADERS]),
    )
    identity = AWSCredentialIdentity(
        access_key_id=credentials.access_key_id,
        secret_access_key=credentials.secret_access_key,
        session_token=credentials.session_token,
    )
    signed = asyncio.run(
        AsyncSigV4Signer().sign(
            request=request,
            identity=identity,
            properties=SigV4SigningProperties(
                region="eu-central-1", service="polly", date=amz_date
            ),
        )
    )
    return {field.name.lower(): field.as_string() for field in signed.fields}


@pytest.mark.parametrize("token", [None, "FQoGZXIvYXdzE//token+with/slashes=="])
@pytest.mark.parametrize(
    ("host", "port"), [("polly.eu-central-1.amazonaws.com", 443), ("127.0.0.1", 8443)]
)
def test_request_signature_equals_aws_sdk_signers(
    token: str | None, host: str, port: int
) -> None:
    credentials = AwsCredentials(
        access_key_id="AKIDEXAMPLE", secret_access_key=SECRET, session_token=token
    )
    amz_date = "20250102T030405Z"
    headers, signature = asyncio.run(
        sign_request(
            method="POST",
            host=host,
            port=port,
            path="/v1/synthesisStream",
            headers=HEADERS,
            credentials=credentials,
            region="eu-central-1",
            service="polly",
            amz_date=amz_date,
        )
    )
    expected = reference_request(credentials, host=host, port=port, amz_date=amz_date)
    assert dict(headers) == expected
    assert len(headers) == len(expected)  # no header twice
    assert expected["authorization"].endswith(f"Signature={signature}")


def test_the_date_header_is_the_codec_s_own() -> None:
    from amazon_polly_streaming import signing

    assert signing._DATE_HEADER + (1735787045678).to_bytes(8, "big") == (
        encode_headers({":date": Timestamp(1735787045678)})
    )


class _Reference:
    """aws-sdk-signers' event message protocol: an already-encoded event."""

    def __init__(self, payload: bytes) -> None:
        self.headers: dict[str, Any] = {}
        self.payload = payload

    def encode(self) -> bytes:
        return self.payload


def reference_chain(
    monkeypatch: pytest.MonkeyPatch, seed: str, payloads: list[bytes], when: dt.datetime
) -> list[tuple[dict[str, Any], bytes]]:
    def now(tz: dt.tzinfo | None = None) -> dt.datetime:
        return when

    frozen = types.SimpleNamespace(datetime=types.SimpleNamespace(now=now), UTC=dt.UTC)
    monkeypatch.setattr(aws_sdk_signers.signers, "datetime", frozen)
    identity = AWSCredentialIdentity(
        access_key_id="AKIDEXAMPLE", secret_access_key=SECRET
    )
    properties = SigV4SigningProperties(region="us-east-1", service="polly")

    async def run() -> list[tuple[dict[str, Any], bytes]]:
        signer = AsyncEventSigner(
            initial_signature=seed.encode(), event_encoder_cls=HeaderEncoder
        )
        out = []
        for payload in payloads:
            signed = await signer.sign(
                event=_Reference(payload), identity=identity, properties=properties
            )
            out.append((codec_headers(signed.headers), signed.payload))
        final = await signer.sign_empty(
            event=_Reference(b""), identity=identity, properties=properties
        )
        out.append((codec_headers(final.headers), final.payload))
        return out

    return asyncio.run(run())


def signer_for(seed: str) -> EventSigner:
    """Our event signer, as the reference chain is made (us-east-1, polly)."""
    return EventSigner(
        seed=seed,
        credentials=AwsCredentials(
            access_key_id="AKIDEXAMPLE", secret_access_key=SECRET
        ),
        region="us-east-1",
        service="polly",
    )


def ours_chain(seed: str, payloads: list[bytes], when: dt.datetime) -> list[bytes]:
    signer = signer_for(seed)
    milliseconds = int(Timestamp.from_datetime(when))
    amz_date = when.strftime("%Y%m%dT%H%M%SZ")
    return [signer.sign(p, milliseconds, amz_date) for p in [*payloads, b""]]


KAT_SEED = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
KAT_TIME = dt.datetime(2025, 1, 2, 3, 4, 5, 678000, tzinfo=dt.UTC)


def test_event_chain_equals_aws_sdk_signers(monkeypatch: pytest.MonkeyPatch) -> None:
    payloads = [b"hello event", b"", bytes(range(256)) * 40]
    expected = reference_chain(monkeypatch, KAT_SEED, payloads, KAT_TIME)
    decoder = MessageDecoder()
    ours = [
        message
        for wire in ours_chain(KAT_SEED, payloads, KAT_TIME)
        for message in decoder.feed(wire)
    ]
    assert [(dict(m.headers), m.payload) for m in ours] == [
        (headers, payload) for headers, payload in expected
    ]


@settings(max_examples=30, deadline=None)
@given(
    payloads=st.lists(st.binary(max_size=300), max_size=4),
    millisecond=st.integers(min_value=0, max_value=999),
)
def test_event_chain_equals_aws_sdk_signers_for_any_payloads(
    payloads: list[bytes], millisecond: int
) -> None:
    when = KAT_TIME.replace(microsecond=millisecond * 1000)
    with pytest.MonkeyPatch.context() as monkeypatch:
        expected = reference_chain(monkeypatch, KAT_SEED, payloads, when)
    decoder = MessageDecoder()
    ours = [
        m for wire in ours_chain(KAT_SEED, payloads, when) for m in decoder.feed(wire)
    ]
    assert [(dict(m.headers), m.payload) for m in ours] == expected


def test_known_answer() -> None:
    """The pinned vector of the emulator's verifier tests (tests/emulator): an
    event at KAT_TIME, the final envelope a second later."""
    signer = signer_for(KAT_SEED)
    later = KAT_TIME + dt.timedelta(seconds=1)
    wires = [
        signer.sign(
            b"hello event", int(Timestamp.from_datetime(KAT_TIME)), "20250102T030405Z"
        ),
        signer.sign(b"", int(Timestamp.from_datetime(later)), "20250102T030406Z"),
    ]
    decoder = MessageDecoder()
    first, final = (m for wire in wires for m in decoder.feed(wire))
    assert first.headers[":chunk-signature"] == bytes.fromhex(
        "4be506b653b7201291385ea1afd54021d50999e5eb14585bb737c432c1900fec"
    )
    assert final.headers[":chunk-signature"] == bytes.fromhex(
        "1bc25b51f4a9d3961ee6ba5e9fc8de6f5b28c59f025de2524f43dd5a8bde7da1"
    )


def test_nothing_is_signed_after_the_final_envelope() -> None:
    signer = signer_for(KAT_SEED)
    asyncio.run(signer.end())
    with pytest.raises(RuntimeError, match="no event can follow the final envelope"):
        asyncio.run(signer.envelope(b"late"))
