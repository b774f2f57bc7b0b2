"""SigV4 for the streaming operation: the request, then the chain of event signatures.

Both use ``aws-sdk-signers``. The request is signed with content type
``application/vnd.amazon.eventstream``, for which the async signer signs
``x-amz-content-sha256: STREAMING-AWS4-HMAC-SHA256-EVENTS`` (the sync signer
hashes an empty body instead, which the service rejects). The request
signature seeds the event chain: each event is wrapped in an envelope whose
``:chunk-signature`` chains from the previous one; a signed empty envelope
ends the input.

``host`` is signed (from the endpoint) but never sent as a header: over
HTTP/2 the ``:authority`` pseudo-header carries it, and sending both makes
some servers see it twice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

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
from aws_sdk_signers.interfaces.events import HEADERS_DICT

from .credentials import AwsCredentials
from .eventstream import HeaderValue, Timestamp, encode_headers, encode_message

_REQUEST_SIGNER = AsyncSigV4Signer()


def _identity(credentials: AwsCredentials) -> AWSCredentialIdentity:
    return AWSCredentialIdentity(
        access_key_id=credentials.access_key_id,
        secret_access_key=credentials.secret_access_key,
        session_token=credentials.session_token,
    )


async def sign_request(
    *,
    method: str,
    host: str,
    port: int,
    path: str,
    headers: Sequence[tuple[str, str]],
    credentials: AwsCredentials,
    region: str,
    service: str,
) -> tuple[list[tuple[str, str]], str]:
    """Sign a request; returns the headers to send (lower-case) and the signature.

    The signature (hex) seeds the event-signature chain.
    """
    request = AWSRequest(
        destination=URI(host=host, port=None if port == 443 else port, path=path),
        method=method,
        body=None,
        fields=Fields([Field(name=name, values=[value]) for name, value in headers]),
    )
    signed = await _REQUEST_SIGNER.sign(
        request=request,
        identity=_identity(credentials),
        properties=SigV4SigningProperties(region=region, service=service),
    )
    out = [(field.name.lower(), field.as_string()) for field in signed.fields]
    authorization = next(v for k, v in out if k == "authorization")
    signature = authorization.rsplit("Signature=", 1)[1]
    return out, signature


def codec_headers(headers: HEADERS_DICT) -> dict[str, HeaderValue]:
    """aws-sdk-signers' event headers as this package's codec takes them."""
    return {
        name: Timestamp.from_datetime(value)
        if isinstance(value, dt.datetime)
        else value
        for name, value in headers.items()
    }


class HeaderEncoder:
    """aws-sdk-signers' header encoder protocol, over this package's codec."""

    def __init__(self) -> None:
        self._result = b""

    def clear(self) -> None:
        self._result = b""

    def get_result(self) -> bytes:
        return self._result

    def encode_headers(self, headers: HEADERS_DICT) -> None:
        self._result += encode_headers(codec_headers(headers))


class _Envelope:
    """aws-sdk-signers' event message: an already-encoded inner event."""

    __slots__ = ("headers", "payload")

    def __init__(self, payload: bytes) -> None:
        self.headers: HEADERS_DICT = {}
        self.payload = payload

    def encode(self) -> bytes:
        return self.payload


class EventSigner:
    """Wraps encoded events in signed envelopes, chained from the request."""

    __slots__ = ("_identity", "_properties", "_signer")

    def __init__(
        self, *, seed: str, credentials: AwsCredentials, region: str, service: str
    ) -> None:
        self._signer = AsyncEventSigner(
            initial_signature=seed.encode(), event_encoder_cls=HeaderEncoder
        )
        self._identity = _identity(credentials)
        self._properties = SigV4SigningProperties(region=region, service=service)

    async def envelope(self, event: bytes) -> bytes:
        """The signed envelope (encoded, ready to send) around an encoded event."""
        signed = await self._signer.sign(
            event=_Envelope(event), identity=self._identity, properties=self._properties
        )
        return encode_message(codec_headers(signed.headers), signed.payload)

    async def end(self) -> bytes:
        """The signed empty envelope that ends the input (no more after it)."""
        signed = await self._signer.sign_empty(
            event=_Envelope(b""), identity=self._identity, properties=self._properties
        )
        return encode_message(codec_headers(signed.headers), signed.payload)
