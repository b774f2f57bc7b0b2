"""The emulator's SigV4 verifier against aws-sdk-signers and published vectors.

aws-sdk-signers (the client's signer) is only the independent reference that
produces signatures here; the verifier shares no code with it. Known-answer
vectors from AWS's SigV4 test suite and smithy-rs's event-stream test pin the
algorithm independently of both.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import hmac
import struct
import types
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from email.utils import format_datetime
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
from aws_sdk_signers.interfaces.events import HEADERS_DICT, EventMessage

from amazon_polly_streaming.eventstream import (
    HeaderValue,
    MessageDecoder,
    Timestamp,
    encode_headers,
    encode_message,
)
from amazon_polly_streaming.testing.sigv4 import (
    INCOMPLETE_SIGNATURE,
    INVALID_SIGNATURE,
    MISSING_AUTHENTICATION_TOKEN,
    STREAMING_EVENTS_PAYLOAD,
    UNRECOGNIZED_CLIENT,
    Credentials,
    CredentialStore,
    EventSignatureError,
    EventSignatureVerifier,
    RequestVerification,
    canonical_query_string,
    canonical_uri,
    derive_signing_key,
    verify_request,
)

ACCESS_KEY = "AKIAPOLLYTESTKEY0001"
SECRET = "polly/Test+Secret=Key0123456789abcdefXYZ"
TOKEN = "FwoGZXIvYXdzEXAMPLE//session+token="
OTHER_SECRET = "some-other-secret-key-0000000000000000000"
REGION = "us-west-2"
SERVICE = "polly"
HOST = "polly.us-west-2.amazonaws.com"
PATH = "/v1/synthesisStream"
SIGNED_AT = dt.datetime(2025, 3, 14, 15, 9, 26, tzinfo=dt.UTC)
AMZ_DATE = "20250314T150926Z"
CREDENTIALS = {ACCESS_KEY: SECRET}
WITH_TOKEN = [Credentials(ACCESS_KEY, SECRET, TOKEN)]

POLLY_FIELDS = (
    ("Content-Type", "application/vnd.amazon.eventstream"),
    ("x-amzn-engine", "generative"),
    ("x-amzn-outputformat", "pcm"),
    ("x-amzn-voiceid", "Ruth"),
    ("User-Agent", "amazon-polly-streaming/0.1.0"),
)
# What aws-sdk-signers puts in SignedHeaders for the request above: every
# field but User-Agent, plus host (from the URI) and the two it adds itself.
POLLY_SIGNED_HEADERS = (
    "content-type",
    "host",
    "x-amz-content-sha256",
    "x-amz-date",
    "x-amzn-engine",
    "x-amzn-outputformat",
    "x-amzn-voiceid",
)


def run[T](coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


# ----------------------------------------------------------------- signing


def sign(
    fields: Iterable[tuple[str, str | Sequence[str]]] = POLLY_FIELDS,
    *,
    host: str = HOST,
    port: int | None = None,
    path: str = PATH,
    query: str | None = None,
    secret: str = SECRET,
    access_key: str = ACCESS_KEY,
    token: str | None = None,
    region: str = REGION,
    service: str = SERVICE,
    date: str | None = AMZ_DATE,
) -> AWSRequest:
    """A request signed by aws-sdk-signers, as the client would sign it."""
    request = AWSRequest(
        destination=URI(host=host, port=port, path=path, query=query),
        method="POST",
        body=None,
        fields=Fields(
            [
                Field(name=name, values=[value] if isinstance(value, str) else value)
                for name, value in fields
            ]
        ),
    )
    properties = SigV4SigningProperties(region=region, service=service)
    if date is not None:
        properties["date"] = date
    identity = AWSCredentialIdentity(
        access_key_id=access_key, secret_access_key=secret, session_token=token
    )
    return run(
        AsyncSigV4Signer().sign(
            request=request, identity=identity, properties=properties
        )
    )


def h2_headers(
    request: AWSRequest, *, send_host: bool = False, authority: str | None = None
) -> list[tuple[str, str]]:
    """The request as an HTTP/2 server receives it.

    Pseudo-headers first; lower-case names; a multi-valued field as repeated
    fields; ``host`` only as ``:authority`` unless ``send_host``.
    """
    uri = request.destination
    netloc = uri.host if uri.port in {None, 443} else f"{uri.host}:{uri.port}"
    headers = [
        (":method", request.method),
        (":scheme", "https"),
        (":authority", netloc if authority is None else authority),
        (":path", (uri.path or "/") + (f"?{uri.query}" if uri.query else "")),
    ]
    for item in request.fields:
        name = item.name.lower()
        if name == "host" and not send_host:
            continue
        headers.extend((name, value) for value in item.values)
    return headers


def verify(
    headers: Sequence[tuple[str, str]],
    *,
    method: str = "POST",
    path: str = PATH,
    query: str = "",
    credentials: CredentialStore = CREDENTIALS,
    region: str = REGION,
    service: str = SERVICE,
    now: dt.datetime = SIGNED_AT,
) -> RequestVerification:
    return verify_request(
        method=method,
        path=path,
        query=query,
        headers=headers,
        credentials=credentials,
        region=region,
        service=service,
        now=now,
    )


def authorization(request: AWSRequest) -> str:
    return request.fields["Authorization"].as_string()


def signature_of(request: AWSRequest) -> str:
    return authorization(request).rpartition("Signature=")[2]


def replace(
    headers: Sequence[tuple[str, str]], name: str, value: str | None
) -> list[tuple[str, str]]:
    """``headers`` with every ``name`` field replaced by ``value`` (or dropped)."""
    out = [(n, v) for n, v in headers if n != name]
    if value is not None:
        out.append((name, value))
    return out


def assert_no_secrets(text: str, *signatures: str) -> None:
    """``text`` shows no secret key, session token, signing key or signature."""
    key = derive_signing_key(SECRET, AMZ_DATE[:8], REGION, SERVICE)
    for secret in (SECRET, OTHER_SECRET, TOKEN, key.hex(), repr(key), *signatures):
        assert secret not in text


# ------------------------------------------------------- requests that verify


def test_typical_polly_request_verifies() -> None:
    request = sign()
    result = verify(h2_headers(request))
    assert result.ok, result.message
    assert result.error_type is None
    assert result.status == 200
    assert result.message == ""
    assert result.signed_headers == POLLY_SIGNED_HEADERS
    assert result.access_key_id == ACCESS_KEY
    assert result.scope == f"20250314/{REGION}/{SERVICE}/aws4_request"
    assert result.amz_date == AMZ_DATE
    assert result.payload_hash == STREAMING_EVENTS_PAYLOAD
    assert result.is_event_stream
    assert result.request_signature == signature_of(request)
    assert result.signing_key == derive_signing_key(SECRET, "20250314", REGION, SERVICE)
    assert "\nhost:polly.us-west-2.amazonaws.com\n" in result.canonical_request
    assert_no_secrets(repr(result), signature_of(request))


def test_the_client_signs_streaming_payload_for_event_streams() -> None:
    request = sign()
    assert (
        request.fields["X-Amz-Content-SHA256"].as_string() == STREAMING_EVENTS_PAYLOAD
    )
    assert "SignedHeaders=" + ";".join(POLLY_SIGNED_HEADERS) in authorization(request)


@pytest.mark.parametrize(
    ("host", "port", "authority"),
    [
        (HOST, None, HOST),
        (HOST, 443, HOST),  # the signer drops the default port, as does h2
        ("localhost", 8443, "localhost:8443"),
        ("127.0.0.1", 50123, "127.0.0.1:50123"),
        ("[::1]", 50123, "[::1]:50123"),
    ],
)
def test_host_is_signed_but_sent_only_as_authority(
    host: str, port: int | None, authority: str
) -> None:
    request = sign(host=host, port=port)
    headers = h2_headers(request)
    assert ("host" not in dict(headers)) and dict(headers)[":authority"] == authority
    result = verify(headers)
    assert result.ok, result.message
    assert "host" in result.signed_headers


def test_a_host_field_is_used_when_present() -> None:
    result = verify(h2_headers(sign(), send_host=True))
    assert result.ok, result.message


def test_a_signed_authority_pseudo_header_is_accepted() -> None:
    """AWS accepts ':authority' in SignedHeaders in place of 'host'."""
    key = derive_signing_key(SECRET, AMZ_DATE[:8], REGION, SERVICE)
    canonical = "\n".join(
        (
            "POST",
            PATH,
            "",
            f":authority:{HOST}\nx-amz-date:{AMZ_DATE}\n",
            ":authority;x-amz-date",
            hashlib.sha256(b"").hexdigest(),
        )
    )
    scope = f"{AMZ_DATE[:8]}/{REGION}/{SERVICE}/aws4_request"
    string_to_sign = "\n".join(
        (
            "AWS4-HMAC-SHA256",
            AMZ_DATE,
            scope,
            hashlib.sha256(canonical.encode()).hexdigest(),
        )
    )
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    headers = [
        (":method", "POST"),
        (":authority", HOST),
        ("x-amz-date", AMZ_DATE),
        (
            "authorization",
            f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/{scope}, "
            f"SignedHeaders=:authority;x-amz-date, Signature={signature}",
        ),
    ]
    result = verify(headers)
    assert result.ok, result.message
    assert result.signed_headers == (":authority", "x-amz-date")


def test_session_token_verifies() -> None:
    request = sign(token=TOKEN)
    assert "x-amz-security-token" in authorization(request)
    result = verify(h2_headers(request), credentials=WITH_TOKEN)
    assert result.ok, result.message
    assert_no_secrets(repr(result), signature_of(request))


@pytest.mark.parametrize(
    "credentials",
    [
        {ACCESS_KEY: SECRET},
        {ACCESS_KEY: Credentials(ACCESS_KEY, SECRET)},
        [
            Credentials("AKIAOTHERKEY00000000", OTHER_SECRET),
            Credentials(ACCESS_KEY, SECRET),
        ],
    ],
    ids=["secret-by-key", "credentials-by-key", "credentials-list"],
)
def test_credentials_forms(
    credentials: Mapping[str, str] | Mapping[str, Credentials] | list[Credentials],
) -> None:
    assert verify(h2_headers(sign()), credentials=credentials).ok


def test_credentials_keyed_inconsistently_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="maps to Credentials"):
        verify(
            h2_headers(sign()), credentials={"AKIAX": Credentials(ACCESS_KEY, SECRET)}
        )


def test_repeated_fields_are_joined_with_commas() -> None:
    """A multi-valued field is signed as 'a,b' and arrives as two fields."""
    request = sign([*POLLY_FIELDS, ("X-Amz-Meta-Lexicons", ["first", "second"])])
    headers = h2_headers(request)
    assert [v for n, v in headers if n == "x-amz-meta-lexicons"] == ["first", "second"]
    result = verify(headers)
    assert result.ok, result.message
    assert "\nx-amz-meta-lexicons:first,second\n" in result.canonical_request


def test_comma_joined_list_with_extra_spaces() -> None:
    request = sign([*POLLY_FIELDS, ("x-amzn-lexiconnames", "  one,two  ,   three ")])
    result = verify(h2_headers(request))
    assert result.ok, result.message
    assert "\nx-amzn-lexiconnames:one,two , three\n" in result.canonical_request


def test_an_added_unsigned_header_is_fine() -> None:
    headers = [
        *h2_headers(sign()),
        ("x-amzn-trace-id", "Root=1-abc"),
        ("accept", "*/*"),
    ]
    assert verify(headers).ok


def test_query_is_canonicalized() -> None:
    query = "b=2&a=%7Etilde&a=1&flag&sp=x%20y"
    request = sign(query=query)
    result = verify(h2_headers(request), query=query)
    assert result.ok, result.message
    assert "\na=1&a=~tilde&b=2&flag=&sp=x%20y\n" in result.canonical_request


def test_path_is_encoded_once_more_than_on_the_wire() -> None:
    path = "/v1/voices/a%20b/caf%C3%A9"
    result = verify(h2_headers(sign(path=path)), path=path)
    assert result.ok, result.message
    assert result.canonical_request.split("\n")[1] == "/v1/voices/a%2520b/caf%25C3%25A9"


def test_date_header_instead_of_x_amz_date() -> None:
    request = sign([*POLLY_FIELDS, ("Date", format_datetime(SIGNED_AT, usegmt=True))])
    assert "X-Amz-Date" not in request.fields
    result = verify(h2_headers(request))
    assert result.ok, result.message
    assert result.amz_date == AMZ_DATE


def test_skew_within_limits_is_fine() -> None:
    headers = h2_headers(sign())
    assert verify(headers, now=SIGNED_AT + dt.timedelta(minutes=4, seconds=59)).ok
    assert verify(headers, now=SIGNED_AT - dt.timedelta(minutes=4, seconds=59)).ok


@pytest.mark.parametrize(
    ("path", "query", "signature"),
    [
        ("/", "", "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
        (
            "/",
            "Param2=value2&Param1=value1",
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
        ),
        (
            "/",
            "Param1=value1",
            "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb",
        ),
        ("/ሴ", "", "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"),
        (
            "/example space/",
            "",
            "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741",
        ),
    ],
    ids=[
        "get-vanilla",
        "get-vanilla-query-order-key-case",
        "get-vanilla-empty-query-key",
        "get-utf8",
        "get-space-normalized",
    ],
)
def test_aws_sigv4_test_suite(path: str, query: str, signature: str) -> None:
    """Published vectors of AWS's SigV4 test suite (no x-amz-content-sha256)."""
    headers = [
        (":authority", "example.amazonaws.com"),
        ("x-amz-date", "20150830T123600Z"),
        (
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/"
            f"aws4_request, SignedHeaders=host;x-amz-date, Signature={signature}",
        ),
    ]
    result = verify_request(
        method="GET",
        path=path,
        query=query,
        headers=headers,
        credentials={"AKIDEXAMPLE": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"},
        region="us-east-1",
        service="service",
        now=dt.datetime(2015, 8, 30, 12, 36, tzinfo=dt.UTC),
    )
    assert result.ok, result.message
    assert result.payload_hash == hashlib.sha256(b"").hexdigest()


@pytest.mark.parametrize(
    ("path", "canonical"),
    [
        ("", "/"),
        ("/", "/"),
        ("/v1/synthesisStream", "/v1/synthesisStream"),
        ("/a b", "/a%20b"),
        ("/a%20b", "/a%2520b"),
        ("/ሴ", "/%E1%88%B4"),
        ("/a/./b/../c", "/a/c"),
        ("/a//b/", "/a/b/"),
        ("/a/b/..", "/a/"),
        ("/-_.~!*'()", "/-_.~%21%2A%27%28%29"),
    ],
)
def test_canonical_uri(path: str, canonical: str) -> None:
    assert canonical_uri(path) == canonical


@pytest.mark.parametrize(
    ("query", "canonical"),
    [
        ("", ""),
        ("b=1&a=2", "a=2&b=1"),
        ("a=2&a=1", "a=1&a=2"),
        ("key", "key="),
        ("a=b%2fc", "a=b%2Fc"),
        ("a=x+y", "a=x%2By"),
        ("&&a=1&", "a=1"),
        ("%E1%88%B4=%7e", "%E1%88%B4=~"),
    ],
)
def test_canonical_query_string(query: str, canonical: str) -> None:
    assert canonical_query_string(query) == canonical


# --------------------------------------------------------- requests that fail


type Mutation = Callable[[list[tuple[str, str]]], list[tuple[str, str]]]


def _auth(headers: list[tuple[str, str]]) -> str:
    return dict(headers)["authorization"]


def _set_auth(value: str) -> Mutation:
    return lambda headers: replace(headers, "authorization", value)


def _edit_auth(old: str, new: str) -> Mutation:
    return lambda headers: replace(
        headers, "authorization", _auth(headers).replace(old, new)
    )


SCOPE = f"{AMZ_DATE[:8]}/{REGION}/{SERVICE}/aws4_request"

FAILURES: list[tuple[str, Mutation, str, str]] = [
    (
        "altered-signed-header",
        lambda h: replace(h, "x-amzn-voiceid", "Matthew"),
        INVALID_SIGNATURE,
        "does not match",
    ),
    (
        "altered-authority",
        lambda h: replace(h, ":authority", "polly.us-east-1.amazonaws.com"),
        INVALID_SIGNATURE,
        "does not match",
    ),
    (
        "removed-signed-header",
        lambda h: replace(h, "x-amzn-voiceid", None),
        INVALID_SIGNATURE,
        "'x-amzn-voiceid' is not in the request",
    ),
    (
        "removed-authority",
        lambda h: replace(h, ":authority", None),
        INVALID_SIGNATURE,
        "'host' is not in the request",
    ),
    (
        "duplicated-signed-header",
        lambda h: [*h, ("x-amzn-engine", "standard")],
        INVALID_SIGNATURE,
        "does not match",
    ),
    (
        "missing-authorization",
        lambda h: replace(h, "authorization", None),
        MISSING_AUTHENTICATION_TOKEN,
        "Missing Authentication Token",
    ),
    (
        "two-authorizations",
        lambda h: [*h, ("authorization", _auth(h))],
        INCOMPLETE_SIGNATURE,
        "more than once",
    ),
    ("bearer-token", _set_auth("Bearer abc.def"), INCOMPLETE_SIGNATURE, "'Credential'"),
    (
        "sigv4a",
        _edit_auth("AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256"),
        INCOMPLETE_SIGNATURE,
        "algorithm",
    ),
    (
        "missing-equal-sign",
        _edit_auth("Signature=", "Signature:"),
        INCOMPLETE_SIGNATURE,
        "missing equal-sign",
    ),
    (
        "missing-signature",
        lambda h: replace(h, "authorization", _auth(h).rpartition(", Signature=")[0]),
        INCOMPLETE_SIGNATURE,
        "requires 'Signature' parameter",
    ),
    (
        "short-credential",
        _edit_auth(f"Credential={ACCESS_KEY}/", "Credential="),
        INCOMPLETE_SIGNATURE,
        "is not of the form",
    ),
    (
        "unsorted-signed-headers",
        _edit_auth("content-type;host", "host;content-type"),
        INCOMPLETE_SIGNATURE,
        "sorted",
    ),
    (
        "upper-case-signed-headers",
        _edit_auth("content-type;host", "Content-Type;host"),
        INCOMPLETE_SIGNATURE,
        "lower-case",
    ),
    (
        "host-not-signed",
        _edit_auth("content-type;host;", "content-type;"),
        INCOMPLETE_SIGNATURE,
        "'Host' or ':authority' must be a 'SignedHeader'",
    ),
    (
        "signature-not-hex",
        lambda h: replace(h, "authorization", _auth(h)[:-4] + "WXYZ"),
        INVALID_SIGNATURE,
        "not 64 lower-case hex digits",
    ),
    (
        "missing-date",
        lambda h: replace(h, "x-amz-date", None),
        INCOMPLETE_SIGNATURE,
        "'X-Amz-Date' or a 'Date' header",
    ),
    (
        "malformed-date",
        lambda h: replace(h, "x-amz-date", "2025-03-14T15:09:26Z"),
        INCOMPLETE_SIGNATURE,
        "ISO-8601 'basic format'",
    ),
    (
        "impossible-date",
        lambda h: replace(h, "x-amz-date", "20250230T150926Z"),
        INCOMPLETE_SIGNATURE,
        "not a valid date",
    ),
    (
        "scope-date-differs",
        _edit_auth("/20250314/", "/20250313/"),
        INVALID_SIGNATURE,
        "Date in Credential scope does not match",
    ),
    (
        "scope-terminator",
        _edit_auth("/aws4_request", "/aws5_request"),
        INVALID_SIGNATURE,
        "valid terminator",
    ),
    (
        "unknown-access-key",
        _edit_auth(ACCESS_KEY, "AKIAUNKNOWNKEY000000"),
        UNRECOGNIZED_CLIENT,
        "security token included in the request is invalid",
    ),
    (
        "token-without-session",
        lambda h: [*h, ("x-amz-security-token", TOKEN)],
        UNRECOGNIZED_CLIENT,
        "security token included in the request is invalid",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "error_type", "needle"),
    [pytest.param(m, e, n, id=i) for i, m, e, n in FAILURES],
)
def test_single_mutation_fails(mutate: Mutation, error_type: str, needle: str) -> None:
    request = sign()
    result = verify(mutate(h2_headers(request)))
    assert not result.ok
    assert result.error_type == error_type
    assert result.status == (400 if error_type == INCOMPLETE_SIGNATURE else 403)
    assert needle in result.message
    assert not result.request_signature
    assert not result.signing_key
    assert_no_secrets(repr(result) + result.message, signature_of(request))


@pytest.mark.parametrize(
    ("signed", "error_type", "needle"),
    [
        (lambda: sign(secret=OTHER_SECRET), INVALID_SIGNATURE, "does not match"),
        (
            lambda: sign(region="us-east-1"),
            INVALID_SIGNATURE,
            "region, not 'us-east-1'",
        ),
        (lambda: sign(service="transcribe"), INVALID_SIGNATURE, "service: 'polly'"),
        (lambda: sign(date="20250314T150425Z"), INVALID_SIGNATURE, "Signature expired"),
        (lambda: sign(date="20250314T151427Z"), INVALID_SIGNATURE, "not yet current"),
    ],
    ids=["wrong-secret", "wrong-region", "wrong-service", "expired", "future"],
)
def test_signed_differently_fails(
    signed: Callable[[], AWSRequest], error_type: str, needle: str
) -> None:
    request = signed()
    result = verify(h2_headers(request))
    assert (result.ok, result.error_type, result.status) == (False, error_type, 403)
    assert needle in result.message
    assert result.access_key_id == ACCESS_KEY
    assert result.signed_headers == POLLY_SIGNED_HEADERS
    assert_no_secrets(repr(result) + result.message, signature_of(request))


def test_skew_message_reads_like_aws() -> None:
    result = verify(h2_headers(sign()), now=SIGNED_AT + dt.timedelta(minutes=6))
    assert result.message == (
        "Signature expired: 20250314T150926Z is now earlier than 20250314T151026Z "
        "(20250314T151526Z - 5 min.)"
    )


def test_other_request_line_fails() -> None:
    headers = h2_headers(sign())
    assert verify(headers, method="PUT").error_type == INVALID_SIGNATURE
    assert verify(headers, path="/v1/other").error_type == INVALID_SIGNATURE
    assert verify(headers, query="a=1").error_type == INVALID_SIGNATURE


@pytest.mark.parametrize(
    ("token", "sent", "credentials"),
    [
        (TOKEN, "wrong-token", WITH_TOKEN),
        (TOKEN, None, WITH_TOKEN),
        (None, None, WITH_TOKEN),
        (TOKEN, TOKEN, CREDENTIALS),
    ],
    ids=["wrong", "dropped", "never-sent", "unexpected"],
)
def test_session_token_mismatch_fails(
    token: str | None,
    sent: str | None,
    credentials: Mapping[str, str] | list[Credentials],
) -> None:
    request = sign(token=token)
    headers = replace(h2_headers(request), "x-amz-security-token", sent)
    result = verify(headers, credentials=credentials)
    assert (result.ok, result.error_type, result.status) == (
        False,
        UNRECOGNIZED_CLIENT,
        403,
    )
    assert_no_secrets(repr(result) + result.message, signature_of(request))


def test_programming_errors_raise() -> None:
    headers = h2_headers(sign())
    with pytest.raises(ValueError, match="aware"):
        verify(headers, now=SIGNED_AT.replace(tzinfo=None))
    with pytest.raises(ValueError, match="query"):
        verify(headers, path=PATH + "?a=1")


def test_credentials_repr_hides_secrets() -> None:
    text = repr(Credentials(ACCESS_KEY, SECRET, TOKEN))
    assert ACCESS_KEY in text
    assert_no_secrets(text)


# ----------------------------------------------------------------- events


class DateHeaderEncoder:
    """aws-sdk-signers' header encoder protocol, over the project's codec."""

    def __init__(self) -> None:
        self._result = b""

    def clear(self) -> None:
        self._result = b""

    def get_result(self) -> bytes:
        return self._result

    def encode_headers(self, headers: HEADERS_DICT) -> None:
        self._result += encode_headers(to_codec(headers))


def to_codec(headers: HEADERS_DICT) -> dict[str, HeaderValue]:
    return {
        name: Timestamp.from_datetime(value)
        if isinstance(value, dt.datetime)
        else value
        for name, value in headers.items()
    }


class Event:
    """aws-sdk-signers' EventMessage protocol, over the project's codec."""

    def __init__(self, headers: HEADERS_DICT, payload: bytes) -> None:
        self.headers: HEADERS_DICT = headers
        self.payload = payload

    def encode(self) -> bytes:
        return encode_message(to_codec(self.headers), self.payload)


class RawEvent(Event):
    """An event whose signed payload is ``payload`` itself (for known answers)."""

    def encode(self) -> bytes:
        return self.payload


type Envelope = tuple[dict[str, HeaderValue], bytes]


def text_event(text: str) -> Event:
    return Event(
        {
            ":message-type": "event",
            ":event-type": "TextEvent",
            ":content-type": "application/json",
        },
        b'{"Text": "' + text.encode() + b'"}',
    )


async def _sign_events(
    seed: str, texts: Sequence[str], *, final: bool, secret: str
) -> list[Envelope]:
    signer = AsyncEventSigner(
        initial_signature=seed.encode(), event_encoder_cls=DateHeaderEncoder
    )
    identity = AWSCredentialIdentity(access_key_id=ACCESS_KEY, secret_access_key=secret)
    properties = SigV4SigningProperties(region=REGION, service=SERVICE)
    signed = [
        await signer.sign(event=text_event(t), identity=identity, properties=properties)
        for t in texts
    ]
    if final:
        signed.append(
            await signer.sign_empty(
                event=Event({}, b""), identity=identity, properties=properties
            )
        )
    # Over the wire and back: encoded and decoded by the project's codec.
    wire = b"".join(encode_message(to_codec(e.headers), e.payload) for e in signed)
    decoder = MessageDecoder()
    envelopes = [(dict(m.headers), m.payload) for m in decoder.feed(wire)]
    decoder.close()
    return envelopes


def signed_events(
    seed: str,
    texts: Sequence[str] = ("Hello", "streaming", "world."),
    *,
    final: bool = True,
    secret: str = SECRET,
) -> list[Envelope]:
    return run(_sign_events(seed, texts, final=final, secret=secret))


def live_request() -> RequestVerification:
    """A request signed now, as the client signs it just before its events."""
    result = verify(h2_headers(sign(date=None)), now=dt.datetime.now(dt.UTC))
    assert result.ok, result.message
    return result


def test_event_chain_verifies() -> None:
    request = live_request()
    envelopes = signed_events(request.request_signature)
    assert len(envelopes) == 4
    verifier = EventSignatureVerifier(request)
    for number, (headers, payload) in enumerate(envelopes, start=1):
        assert set(headers) == {":date", ":chunk-signature"}
        assert isinstance(headers[":date"], Timestamp)
        assert not verifier.ended
        verifier.verify(headers, payload)
        assert verifier.count == number
    assert verifier.ended
    assert envelopes[-1][1] == b""
    assert repr(verifier) == "<EventSignatureVerifier ended, 4 verified>"


def test_event_chain_may_stop_without_final_message() -> None:
    request = live_request()
    verifier = EventSignatureVerifier(request)
    for headers, payload in signed_events(request.request_signature, final=False):
        verifier.verify(headers, payload)
    assert verifier.count == 3
    assert not verifier.ended


def test_events_use_their_own_days_key() -> None:
    """A stream that crosses midnight UTC: events are signed with their day's key."""
    yesterday = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    request = verify(
        h2_headers(sign(date=f"{yesterday:%Y%m%dT%H%M%SZ}")),
        now=yesterday,
    )
    assert request.ok, request.message
    verifier = EventSignatureVerifier(request)
    for headers, payload in signed_events(request.request_signature):
        verifier.verify(headers, payload)
    assert verifier.ended
    without_derivation = dataclasses.replace(request, key_for_day=None)
    with pytest.raises(EventSignatureError, match="a day the request's signing key"):
        EventSignatureVerifier(without_derivation).verify(
            *signed_events(request.request_signature, ("x",), final=False)[0]
        )


def flip_payload_byte(envelopes: list[Envelope], index: int) -> list[Envelope]:
    headers, payload = envelopes[index]
    middle = len(payload) // 2
    changed = payload[:middle] + bytes([payload[middle] ^ 0x01]) + payload[middle + 1 :]
    envelopes[index] = (headers, changed)
    return envelopes


EventScenario = Callable[[RequestVerification], tuple[list[Envelope], int, str]]


def _flipped(request: RequestVerification) -> tuple[list[Envelope], int, str]:
    return (
        flip_payload_byte(signed_events(request.request_signature), 1),
        2,
        "does not match",
    )


def _swapped(request: RequestVerification) -> tuple[list[Envelope], int, str]:
    e = signed_events(request.request_signature)
    return [e[0], e[2], e[1], e[3]], 2, "does not match"


def _replayed(request: RequestVerification) -> tuple[list[Envelope], int, str]:
    e = signed_events(request.request_signature)
    return [e[0], e[0], *e[1:]], 2, "does not match"


def _dropped(request: RequestVerification) -> tuple[list[Envelope], int, str]:
    e = signed_events(request.request_signature)
    return [e[0], *e[2:]], 2, "does not match"


def _wrong_seed(request: RequestVerification) -> tuple[list[Envelope], int, str]:
    return signed_events("0" * 64), 1, "does not match"


def _wrong_secret(request: RequestVerification) -> tuple[list[Envelope], int, str]:
    return (
        signed_events(request.request_signature, secret=OTHER_SECRET),
        1,
        "does not match",
    )


def _after_end(request: RequestVerification) -> tuple[list[Envelope], int, str]:
    e = signed_events(request.request_signature)
    return [*e, e[-1]], 5, "after the final empty message"


def _edit_headers(
    request: RequestVerification,
    edit: Callable[[dict[str, HeaderValue]], object],
    needle: str,
) -> tuple[list[Envelope], int, str]:
    e = signed_events(request.request_signature)
    edit(e[0][0])
    return e, 1, needle


def _no_date(request: RequestVerification) -> tuple[list[Envelope], int, str]:
    return _edit_headers(request, lambda h: h.pop(":date"), ":date header is missing")


def _int_date(request: RequestVerification) -> tuple[list[Envelope], int, str]:
    def edit(h: dict[str, HeaderValue]) -> None:
        date = h[":date"]
        assert isinstance(date, Timestamp)
        h[":date"] = int(date)

    return _edit_headers(request, edit, "is a int, not a timestamp")


def _no_signature(request: RequestVerification) -> tuple[list[Envelope], int, str]:
    return _edit_headers(
        request,
        lambda h: h.pop(":chunk-signature"),
        ":chunk-signature header is missing",
    )


def _short_signature(request: RequestVerification) -> tuple[list[Envelope], int, str]:
    def edit(h: dict[str, HeaderValue]) -> None:
        signature = h[":chunk-signature"]
        assert isinstance(signature, bytes)
        h[":chunk-signature"] = signature[:31]

    return _edit_headers(request, edit, "32-byte")


def _hex_signature(request: RequestVerification) -> tuple[list[Envelope], int, str]:
    def edit(h: dict[str, HeaderValue]) -> None:
        signature = h[":chunk-signature"]
        assert isinstance(signature, bytes)
        h[":chunk-signature"] = signature.hex()

    return _edit_headers(request, edit, "32-byte")


def _extra_header(request: RequestVerification) -> tuple[list[Envelope], int, str]:
    def edit(h: dict[str, HeaderValue]) -> None:
        h[":event-type"] = "TextEvent"

    return _edit_headers(request, edit, "unsigned envelope header(s) ':event-type'")


@pytest.mark.parametrize(
    "scenario",
    [
        _flipped,
        _swapped,
        _replayed,
        _dropped,
        _wrong_seed,
        _wrong_secret,
        _after_end,
        _no_date,
        _int_date,
        _no_signature,
        _short_signature,
        _hex_signature,
        _extra_header,
    ],
    ids=lambda f: f.__name__.strip("_"),
)
def test_event_chain_failures(scenario: EventScenario) -> None:
    request = live_request()
    envelopes, failing, needle = scenario(request)
    verifier = EventSignatureVerifier(request)
    for headers, payload in envelopes[: failing - 1]:
        verifier.verify(headers, payload)
    with pytest.raises(EventSignatureError) as caught:
        verifier.verify(*envelopes[failing - 1])
    message = str(caught.value)
    assert message.startswith(f"message {failing}: ")
    assert needle in message
    signatures = [request.request_signature, request.signing_key.hex()]
    for headers, _ in envelopes:
        signature = headers.get(":chunk-signature")
        if isinstance(signature, bytes):
            signatures.append(signature.hex())
        elif isinstance(signature, str):
            signatures.append(signature)
    assert_no_secrets(message + repr(caught.value) + repr(verifier), *signatures)
    # A failure is final, even for the envelope that was due.
    with pytest.raises(EventSignatureError, match="already failed"):
        verifier.verify(*envelopes[failing - 1])
    assert verifier.count == failing - 1


@pytest.mark.parametrize("minutes", [-6, 6])
def test_event_date_outside_skew_fails(minutes: int) -> None:
    request = live_request()
    envelopes = signed_events(request.request_signature)
    verifier = EventSignatureVerifier(request)
    verifier.verify(*envelopes[0])
    now = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=minutes)
    with pytest.raises(
        EventSignatureError, match=r"s (behind|ahead of) the server's clock"
    ):
        verifier.verify(*envelopes[1], now=now)


def test_event_skew_and_clock_are_configurable() -> None:
    request = live_request()
    envelopes = signed_events(request.request_signature)
    late = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=8)
    verifier = EventSignatureVerifier(
        request, max_skew=dt.timedelta(minutes=10), clock=lambda: late
    )
    for headers, payload in envelopes:
        verifier.verify(headers, payload)
    assert verifier.ended
    strict = EventSignatureVerifier(request, clock=lambda: late)
    with pytest.raises(EventSignatureError, match="5 min"):
        strict.verify(*envelopes[0])


def test_verifier_needs_a_verified_request() -> None:
    failed = verify(h2_headers(sign(secret=OTHER_SECRET)))
    assert not failed.ok
    with pytest.raises(ValueError, match="did not verify"):
        EventSignatureVerifier(failed)


# ------------------------------------------------------ event known answers


def test_event_string_to_sign_matches_the_published_vector() -> None:
    """smithy-rs's aws-sigv4 event-stream vector, checked from first principles.

    The published string to sign is for an event "test payload" with header
    some-header: value, signed at 123456789 s (1973-11-29T21:33:09Z) after a
    prior signature of sha256("last message sts").
    """
    published = (
        "AWS4-HMAC-SHA256-PAYLOAD\n"
        "19731129T213309Z\n"
        "19731129/us-east-1/testservice/aws4_request\n"
        "be1f8c7d79ef8e1abc5254a2c70e4da3bfaf4f07328f527444e1fc6ea67273e2\n"
        "0c0e3b3bf66b59b976181bd7d401927bbd624107303c713fd1e5f3d3c8dd1b1e\n"
        "f2eba0f2e95967ee9fbc6db5e678d2fd599229c0d04b11e4fc8e0f2a02a806c6"
    )
    prior = hashlib.sha256(b"last message sts").hexdigest()
    payload = encode_message({"some-header": "value"}, b"test payload")
    date = Timestamp(123_456_789_000)
    secret = "fake secret key"
    key = derive_signing_key(secret, "19731129", "us-east-1", "testservice")
    # The :date header as hashed: name length, name, type 8, int64 ms big-endian.
    date_header = (
        bytes([5]) + b":date" + bytes([8]) + struct.pack(">q", 123_456_789_000)
    )
    assert published.split("\n")[3] == prior
    assert published.split("\n")[4] == hashlib.sha256(date_header).hexdigest()
    assert published.split("\n")[5] == hashlib.sha256(payload).hexdigest()
    signature = hmac.new(key, published.encode(), hashlib.sha256).digest()

    request = RequestVerification(
        ok=True,
        scope="19731129/us-east-1/testservice/aws4_request",
        request_signature=prior,
        signing_key=key,
    )
    now = dt.datetime(1973, 11, 29, 21, 33, 9, tzinfo=dt.UTC)
    verifier = EventSignatureVerifier(request)
    verifier.verify({":date": date, ":chunk-signature": signature}, payload, now=now)
    assert verifier.count == 1


# A hand-computed vector: HMAC-SHA256 chain over fixed inputs, worked out with
# hashlib alone (see _by_hand below) and pinned here.
KAT_SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
KAT_SEED = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
KAT_TIME = dt.datetime(2025, 1, 2, 3, 4, 5, 678000, tzinfo=dt.UTC)
KAT_PAYLOAD = b"hello event"
KAT_FIRST = "4be506b653b7201291385ea1afd54021d50999e5eb14585bb737c432c1900fec"
KAT_FINAL = "1bc25b51f4a9d3961ee6ba5e9fc8de6f5b28c59f025de2524f43dd5a8bde7da1"


def _by_hand(prior: str, when_ms: int, payload: bytes) -> str:
    def mac(key: bytes, text: bytes) -> bytes:
        return hmac.new(key, text, hashlib.sha256).digest()

    key = mac(b"AWS4" + KAT_SECRET.encode(), b"20250102")
    for part in (b"us-east-1", b"polly", b"aws4_request"):
        key = mac(key, part)
    when = dt.datetime.fromtimestamp(when_ms // 1000, dt.UTC)
    date_header = b"\x05:date\x08" + when_ms.to_bytes(8, "big", signed=True)
    string_to_sign = b"\n".join(
        (
            b"AWS4-HMAC-SHA256-PAYLOAD",
            when.strftime("%Y%m%dT%H%M%SZ").encode(),
            b"20250102/us-east-1/polly/aws4_request",
            prior.encode(),
            hashlib.sha256(date_header).hexdigest().encode(),
            hashlib.sha256(payload).hexdigest().encode(),
        )
    )
    return mac(key, string_to_sign).hex()


def test_event_known_answer() -> None:
    first_ms = 1_735_787_045_678  # 2025-01-02T03:04:05.678Z
    assert Timestamp.from_datetime(KAT_TIME) == first_ms
    assert _by_hand(KAT_SEED, first_ms, KAT_PAYLOAD) == KAT_FIRST
    assert _by_hand(KAT_FIRST, first_ms + 1000, b"") == KAT_FINAL

    request = RequestVerification(
        ok=True,
        scope="20250102/us-east-1/polly/aws4_request",
        request_signature=KAT_SEED,
        signing_key=derive_signing_key(KAT_SECRET, "20250102", "us-east-1", "polly"),
    )
    verifier = EventSignatureVerifier(request, clock=lambda: KAT_TIME)
    verifier.verify(
        {":date": Timestamp(first_ms), ":chunk-signature": bytes.fromhex(KAT_FIRST)},
        KAT_PAYLOAD,
    )
    verifier.verify(
        {
            ":date": Timestamp(first_ms + 1000),
            ":chunk-signature": bytes.fromhex(KAT_FINAL),
        },
        b"",
    )
    assert verifier.ended


def test_aws_sdk_signers_agrees_with_the_known_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With its clock frozen, the reference signer produces the pinned vector."""
    instants = iter([KAT_TIME, KAT_TIME + dt.timedelta(seconds=1)])

    def now(tz: dt.tzinfo | None = None) -> dt.datetime:
        return next(instants)

    frozen = types.SimpleNamespace(datetime=types.SimpleNamespace(now=now), UTC=dt.UTC)
    monkeypatch.setattr(aws_sdk_signers.signers, "datetime", frozen)

    async def sign_two() -> tuple[EventMessage, EventMessage]:
        signer = AsyncEventSigner(
            initial_signature=KAT_SEED.encode(), event_encoder_cls=DateHeaderEncoder
        )
        identity = AWSCredentialIdentity(
            access_key_id="AKIDEXAMPLE", secret_access_key=KAT_SECRET
        )
        properties = SigV4SigningProperties(region="us-east-1", service="polly")
        first = await signer.sign(
            event=RawEvent({}, KAT_PAYLOAD), identity=identity, properties=properties
        )
        final = await signer.sign_empty(
            event=Event({}, b""), identity=identity, properties=properties
        )
        return first, final

    first, final = run(sign_two())
    assert first.headers[":chunk-signature"] == bytes.fromhex(KAT_FIRST)
    assert final.headers[":chunk-signature"] == bytes.fromhex(KAT_FINAL)
