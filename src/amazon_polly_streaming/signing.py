"""SigV4 for the streaming operation: the request, then the chain of event signatures.

The request is signed with ``x-amz-content-sha256:
STREAMING-AWS4-HMAC-SHA256-EVENTS`` (the body is a stream of signed events).
The request signature seeds the event chain: each event is wrapped in an
envelope whose ``:chunk-signature`` chains from the previous one; a signed
empty envelope ends the input.

``host`` is signed (from the endpoint) but never sent as a header: over
HTTP/2 the ``:authority`` pseudo-header carries it, and sending both makes
some servers see it twice.

**Why this is our code, not aws-sdk-signers** (which the package still uses
for the credential chain's STS calls): on the hot path it was the largest
Python cost of a stream. Measured here, per warm stream, aws-sdk-signers
took 0.17 ms to sign the request (it deep-copies the request and derives the
signing key each time) and 0.04 ms per event (three events: text, close,
final envelope), 0.28 ms in all, about half of everything the client adds to
awscrt's own cost (1.66 ms, measured by replaying pre-signed streams). This
module caches the derived key per day, region and service, formats the date
once per second, and hashes each piece once: a few microseconds per
signature. Its output is checked against aws-sdk-signers byte for byte
(``tests/unit/test_signing.py``), and the emulator verifies every signature
with its own, independent verifier.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import struct
import threading
import time
from collections.abc import Sequence
from urllib.parse import quote

from aws_sdk_signers.interfaces.events import HEADERS_DICT

from .credentials import AwsCredentials
from .eventstream import HeaderValue, Timestamp, encode_headers, frame_message

ALGORITHM = "AWS4-HMAC-SHA256"
STREAMING_PAYLOAD = "STREAMING-AWS4-HMAC-SHA256-EVENTS"
_EVENT_ALGORITHM = "AWS4-HMAC-SHA256-PAYLOAD"
_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_DATE_HEADER = b"\x05:date\x08"  # name length, ":date", type 8 (timestamp)
# name length, ":chunk-signature", type 6 (bytes), value length 32
_SIGNATURE_HEADER = b"\x10:chunk-signature\x06\x00\x20"


class _SigningKeys:
    """Derived SigV4 keys, by secret, day, region and service (a few at most).

    Derivation is four HMACs; a key is good for its UTC day. Thread-safe.
    """

    _LIMIT = 8

    def __init__(self) -> None:
        self._keys: dict[tuple[str, str, str, str], bytes] = {}
        self._lock = threading.Lock()

    def get(self, secret: str, day: str, region: str, service: str) -> bytes:
        index = (secret, day, region, service)
        key = self._keys.get(index)
        if key is None:
            key = _hmac(f"AWS4{secret}".encode(), day)
            for part in (region, service, "aws4_request"):
                key = _hmac(key, part)
            with self._lock:
                if len(self._keys) >= self._LIMIT:
                    self._keys.clear()
                self._keys[index] = key
        return key


_KEYS = _SigningKeys()


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.digest(key, message.encode(), "sha256")


class _Clock:
    """The time as SigV4 wants it, formatted once per second."""

    __slots__ = ("_formatted", "_second")

    def __init__(self) -> None:
        self._second = -1
        self._formatted = ""

    def now(self) -> tuple[int, str]:
        """Milliseconds since the epoch, and the ``YYYYMMDDTHHMMSSZ`` stamp."""
        milliseconds = time.time_ns() // 1_000_000
        second = milliseconds // 1000
        if second != self._second:
            t = time.gmtime(second)
            self._formatted = (
                f"{t.tm_year:04d}{t.tm_mon:02d}{t.tm_mday:02d}"
                f"T{t.tm_hour:02d}{t.tm_min:02d}{t.tm_sec:02d}Z"
            )
            self._second = second
        return milliseconds, self._formatted


_CLOCK = _Clock()


def _canonical_value(value: str) -> str:
    """Trimmed, with runs of spaces collapsed (SigV4's canonical header value)."""
    value = value.strip()
    return " ".join(value.split()) if "  " in value else value


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
    amz_date: str | None = None,
) -> tuple[list[tuple[str, str]], str]:
    """Sign a request; returns the headers to send (lower-case) and the signature.

    ``host`` is signed but not among the headers returned: ``:authority``
    carries it.
    The signature (hex) seeds the event-signature chain. ``amz_date``
    (``YYYYMMDDTHHMMSSZ``) fixes the time, for tests; else it is now.
    """
    if amz_date is None:
        amz_date = _CLOCK.now()[1]
    day = amz_date[:8]
    out = [(name.lower(), value) for name, value in headers]
    out.append(("x-amz-date", amz_date))
    out.append(("x-amz-content-sha256", STREAMING_PAYLOAD))
    if credentials.session_token:
        out.append(("x-amz-security-token", credentials.session_token))
    authority = ("host", host if port == 443 else f"{host}:{port}")
    canonical = sorted(
        (name, _canonical_value(value)) for name, value in [*out, authority]
    )
    signed_headers = ";".join(name for name, _ in canonical)
    scope = f"{day}/{region}/{service}/aws4_request"
    canonical_request = "\n".join(
        (
            method,
            quote(path, safe="/-_.~"),
            "",
            "".join(f"{name}:{value}\n" for name, value in canonical),
            signed_headers,
            STREAMING_PAYLOAD,
        )
    )
    string_to_sign = (
        f"{ALGORITHM}\n{amz_date}\n{scope}\n"
        f"{hashlib.sha256(canonical_request.encode()).hexdigest()}"
    )
    key = _KEYS.get(credentials.secret_access_key, day, region, service)
    signature = hmac.digest(key, string_to_sign.encode(), "sha256").hex()
    out.append(
        (
            "authorization",
            f"{ALGORITHM} Credential={credentials.access_key_id}/{scope}, "
            f"SignedHeaders={signed_headers}, Signature={signature}",
        )
    )
    return out, signature


class EventSigner:
    """Wraps encoded events in signed envelopes, chained from the request.

    Not safe for concurrent use: one stream's events are signed in order.
    """

    __slots__ = ("_finished", "_prior", "_region", "_secret", "_service")

    def __init__(
        self, *, seed: str, credentials: AwsCredentials, region: str, service: str
    ) -> None:
        self._prior = seed
        self._secret = credentials.secret_access_key
        self._region = region
        self._service = service
        self._finished = False

    def sign(self, payload: bytes, milliseconds: int, amz_date: str) -> bytes:
        """The envelope around ``payload`` at the given time (advances the chain)."""
        if self._finished:
            msg = "the input already ended: no event can follow the final envelope"
            raise RuntimeError(msg)
        day = amz_date[:8]
        date_header = _DATE_HEADER + struct.pack(">q", milliseconds)
        string_to_sign = (
            f"{_EVENT_ALGORITHM}\n{amz_date}\n"
            f"{day}/{self._region}/{self._service}/aws4_request\n{self._prior}\n"
            f"{hashlib.sha256(date_header).hexdigest()}\n"
            f"{hashlib.sha256(payload).hexdigest() if payload else _EMPTY_SHA256}"
        )
        key = _KEYS.get(self._secret, day, self._region, self._service)
        signature = hmac.digest(key, string_to_sign.encode(), "sha256")
        self._prior = signature.hex()
        return frame_message(date_header + _SIGNATURE_HEADER + signature, payload)

    async def envelope(self, event: bytes) -> bytes:
        """The signed envelope (encoded, ready to send) around an encoded event."""
        milliseconds, amz_date = _CLOCK.now()
        return self.sign(event, milliseconds, amz_date)

    async def end(self) -> bytes:
        """The signed empty envelope that ends the input (no more after it)."""
        milliseconds, amz_date = _CLOCK.now()
        envelope = self.sign(b"", milliseconds, amz_date)
        self._finished = True
        return envelope


# aws-sdk-signers' event interfaces, over this package's codec (the test
# support's bare client signs with aws-sdk-signers through these).


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
