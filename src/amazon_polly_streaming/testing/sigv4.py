"""Server-side AWS Signature Version 4 checks for the Polly emulator.

Written from the SigV4 specification alone, with ``hashlib``/``hmac`` and the
standard library: it shares no code with any client signer, so that a test in
which a client's request verifies here is evidence that the client signs as
AWS expects, not that two copies of one bug agree.

Two checks:

* :func:`verify_request` checks the ``Authorization`` header of an HTTP/2
  request as a server receives it (lowercase field names, pseudo-headers) and
  answers with a :class:`RequestVerification`: either ``ok`` with what the
  event-stream check needs (the request signature, the derived signing key and
  the credential scope), or the AWS error type, HTTP status and message a real
  AWS JSON service sends for that failure.
* :class:`EventSignatureVerifier` checks the chained ``:chunk-signature`` of
  every envelope of an ``application/vnd.amazon.eventstream`` request body,
  seeded with the request signature, down to the final empty envelope.

Error types are those AWS's JSON protocols (``awsJson``, ``restJson1``, so
Polly) send in ``x-amzn-errortype``; the query-protocol names of Polly's
"Common Errors" page (``IncompleteSignature``, ``InvalidClientTokenId``) are
not what a JSON client sees. Messages follow AWS's own wording:

``MissingAuthenticationTokenException`` (403)
    No ``Authorization`` header at all ("Missing Authentication Token").
``IncompleteSignatureException`` (400)
    A malformed ``Authorization``: another scheme, a missing or malformed
    parameter, no ``X-Amz-Date``/``Date``, ``host``/``:authority`` not signed.
``UnrecognizedClientException`` (403)
    An unknown access key id, or an ``x-amz-security-token`` that is missing,
    wrong, or sent with a key that has none ("The security token included in
    the request is invalid.").
``InvalidSignatureException`` (403)
    A wrong signature (a signed header the request lacks included), a scope
    for another date, region, service or terminator, or a date outside the
    allowed clock skew ("Signature expired: ...").

Secrets never appear in a ``repr``, ``str`` or message: secret keys, session
tokens, signing keys and whole signatures are ``repr=False`` fields, and a
message shows at most the first 8 hex digits of a signature.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Final, cast

from ..eventstream import Timestamp

__all__ = [
    "ALGORITHM",
    "DEFAULT_MAX_SKEW",
    "ERROR_STATUS",
    "EVENT_ALGORITHM",
    "INCOMPLETE_SIGNATURE",
    "INVALID_SIGNATURE",
    "MISSING_AUTHENTICATION_TOKEN",
    "STREAMING_EVENTS_PAYLOAD",
    "UNRECOGNIZED_CLIENT",
    "CredentialStore",
    "Credentials",
    "EventSignatureError",
    "EventSignatureVerifier",
    "RequestVerification",
    "canonical_query_string",
    "canonical_uri",
    "derive_signing_key",
    "verify_request",
]

ALGORITHM: Final = "AWS4-HMAC-SHA256"
"""The SigV4 request-signing algorithm, first word of ``Authorization``."""

EVENT_ALGORITHM: Final = "AWS4-HMAC-SHA256-PAYLOAD"
"""First line of the string to sign of each event-stream envelope."""

STREAMING_EVENTS_PAYLOAD: Final = "STREAMING-AWS4-HMAC-SHA256-EVENTS"
"""``x-amz-content-sha256`` of a request whose body is a signed event stream."""

DEFAULT_MAX_SKEW: Final = timedelta(minutes=5)
"""How far a request's or event's date may be from the server's clock."""

MISSING_AUTHENTICATION_TOKEN: Final = "MissingAuthenticationTokenException"  # noqa: S105
INCOMPLETE_SIGNATURE: Final = "IncompleteSignatureException"
UNRECOGNIZED_CLIENT: Final = "UnrecognizedClientException"
INVALID_SIGNATURE: Final = "InvalidSignatureException"

ERROR_STATUS: Final[Mapping[str, int]] = {
    MISSING_AUTHENTICATION_TOKEN: 403,
    INCOMPLETE_SIGNATURE: 400,
    UNRECOGNIZED_CLIENT: 403,
    INVALID_SIGNATURE: 403,
}
"""HTTP status of each error type :func:`verify_request` may report."""

_TERMINATOR: Final = "aws4_request"
_AMZ_DATE_FORMAT: Final = "%Y%m%dT%H%M%SZ"
_AMZ_DATE: Final = re.compile(r"[0-9]{8}T[0-9]{6}Z")
_SIGNATURE: Final = re.compile(r"[0-9a-f]{64}")
_HEX_RUN: Final = re.compile(r"[0-9a-fA-F]{16,}")
_SPACES: Final = re.compile(r"[ \t]+")
_HEX_DIGITS: Final = frozenset(b"0123456789abcdefABCDEF")
_UNRESERVED: Final = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~"
)
_MISMATCH: Final = (
    "The request signature we calculated does not match the signature you "
    "provided. Check your AWS Secret Access Key and signing method. Consult the "
    "service documentation for details."
)
_INVALID_TOKEN: Final = "The security token included in the request is invalid."  # noqa: S105
_ENVELOPE_HEADERS: Final = frozenset({":date", ":chunk-signature"})
_DATE_HEADER_PREFIX: Final = b"\x05:date\x08"  # name length, name, type 8


# ------------------------------------------------------------------ credentials


@dataclass(frozen=True, slots=True)
class Credentials:
    """A key pair the server accepts, with the session token it requires if any.

    When ``session_token`` is set, every request signed with this access key
    must carry exactly that ``x-amz-security-token``; when it is ``None``, a
    request carrying any token is refused (as AWS refuses a long-term key sent
    with a session token).
    """

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)


type CredentialStore = (
    Mapping[str, str] | Mapping[str, Credentials] | Iterable[Credentials]
)
"""Accepted forms of the server's credentials: access key id -> secret key,
access key id -> :class:`Credentials`, or an iterable of :class:`Credentials`."""


def _credential_table(credentials: CredentialStore) -> dict[str, Credentials]:
    if not isinstance(credentials, Mapping):
        return {c.access_key_id: c for c in credentials}
    table: dict[str, Credentials] = {}
    # Narrowing leaves Mapping[Credentials, Unknown] in the union; it is not.
    mapping = cast("Mapping[str, str | Credentials]", credentials)
    for key_id, value in mapping.items():
        if isinstance(value, Credentials):
            if value.access_key_id != key_id:
                msg = (
                    f"credentials: key {key_id!r} maps to Credentials for "
                    f"{value.access_key_id!r}"
                )
                raise ValueError(msg)
            table[key_id] = value
        else:
            table[key_id] = Credentials(key_id, value)
    return table


def derive_signing_key(
    secret_access_key: str, day: str, region: str, service: str
) -> bytes:
    """Return the SigV4 signing key for a scope (``day`` is ``YYYYMMDD``).

    ``kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, day), region), service),
    "aws4_request")``.
    """
    key = _hmac(f"AWS4{secret_access_key}".encode(), day)
    for part in (region, service, _TERMINATOR):
        key = _hmac(key, part)
    return key


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _redact(text: str) -> str:
    """Shorten every long hex run (a signature, say) to its first 8 digits."""
    return _HEX_RUN.sub(lambda m: f"{m.group()[:8]}...", text)


# ----------------------------------------------------------- canonical request


def _uri_encode(text: str | bytes, *, keep_slash: bool = False) -> str:
    """Percent-encode every byte of ``text`` (UTF-8) but the unreserved ones.

    SigV4's rule: ``A-Z a-z 0-9 - _ . ~`` stay, everything else (space
    included) becomes ``%XY`` with upper-case hex; ``/`` stays in paths.
    """
    data = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text
    out: list[str] = []
    for byte in data:
        if byte in _UNRESERVED or (keep_slash and byte == 0x2F):
            out.append(chr(byte))
        else:
            out.append(f"%{byte:02X}")
    return "".join(out)


def _percent_decode(text: str) -> bytes:
    """Decode the ``%XY`` escapes of ``text``; ``+`` stays a plus sign."""
    data = text.encode("utf-8", "surrogateescape")
    if b"%" not in data:
        return data
    raw = bytearray()
    i = 0
    while i < len(data):
        pair = data[i + 1 : i + 3]
        if data[i] == 0x25 and len(pair) == 2 and all(b in _HEX_DIGITS for b in pair):
            raw.append(int(pair, 16))
            i += 3
        else:
            raw.append(data[i])
            i += 1
    return bytes(raw)


def _normalize_path(path: str) -> str:
    """Remove ``.``/``..`` segments and empty segments (RFC 3986 5.2.4).

    A trailing slash is kept; the result always starts with ``/``.
    """
    trailing = path.endswith(("/", "/.", "/.."))
    segments: list[str] = []
    for segment in path.split("/"):
        if segment in {"", "."}:
            continue
        if segment == "..":
            if segments:
                segments.pop()
            continue
        segments.append(segment)
    normalized = "/" + "/".join(segments)
    if trailing and segments:
        normalized += "/"
    return normalized


def canonical_uri(path: str) -> str:
    """The canonical URI of a request path as received (without its query).

    For every service but S3 the path is normalized and then URI-encoded once
    more than it is on the wire ("double encoding"): the client encoded each
    segment to send it, and encodes the result again to sign it, so ``/a b``
    is sent as ``/a%20b`` and signed as ``/a%2520b``.
    """
    return _uri_encode(_normalize_path(path or "/"), keep_slash=True)


def canonical_query_string(query: str) -> str:
    """The canonical query string of a raw query (without its ``?``).

    Each ``name=value`` pair (``value`` empty when there is no ``=``) is
    decoded, URI-encoded with SigV4's rule, and the pairs are sorted by name,
    then value.
    """
    pairs: list[tuple[str, str]] = []
    for piece in query.split("&"):
        if not piece:
            continue
        name, _, value = piece.partition("=")
        pairs.append(
            (_uri_encode(_percent_decode(name)), _uri_encode(_percent_decode(value)))
        )
    pairs.sort()
    return "&".join(f"{name}={value}" for name, value in pairs)


def _canonical_value(values: Sequence[str]) -> str:
    """Trim each value, collapse runs of spaces, join repeated fields with ``,``."""
    return ",".join(_SPACES.sub(" ", value.strip(" \t")) for value in values)


# ----------------------------------------------------------- request results


@dataclass(frozen=True, slots=True)
class RequestVerification:
    """The outcome of :func:`verify_request`.

    On success ``ok`` is true and the fields after ``message`` describe the
    signature; :class:`EventSignatureVerifier` takes the whole object. On
    failure ``error_type``, ``status`` and ``message`` are what the service
    answers, and the descriptive fields are filled as far as parsing went.
    """

    ok: bool
    error_type: str | None = None
    """AWS error type (``x-amzn-errortype``), ``None`` when ``ok``."""
    status: int = 200
    """HTTP status to answer with: 200 when ``ok``, else from :data:`ERROR_STATUS`."""
    message: str = ""
    """Human-readable reason, safe to send to the client (no secrets)."""
    access_key_id: str | None = None
    signed_headers: tuple[str, ...] = ()
    scope: str | None = None
    """Credential scope, ``YYYYMMDD/region/service/aws4_request``."""
    amz_date: str | None = None
    """The request's date, ISO 8601 basic (``YYYYMMDDTHHMMSSZ``)."""
    payload_hash: str | None = None
    """The canonical request's payload hash (``x-amz-content-sha256``)."""
    request_signature: str = field(default="", repr=False)
    """The verified signature, hex: the seed of the event-signature chain."""
    signing_key: bytes = field(default=b"", repr=False)
    """The derived key of ``scope``, for the event-signature chain."""
    canonical_request: str = field(default="", repr=False)
    """The canonical request the server computed (may hold a session token)."""
    string_to_sign: str = field(default="", repr=False)
    key_for_day: Callable[[str], bytes] | None = field(
        default=None, repr=False, compare=False
    )
    """Derives the signing key of another day (``YYYYMMDD``) of the same
    region and service: events are signed with their own date's key."""

    @property
    def is_event_stream(self) -> bool:
        """Whether the request declared a signed event-stream body."""
        return self.payload_hash == STREAMING_EVENTS_PAYLOAD


class _Rejected(Exception):
    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message


@dataclass(slots=True)
class _Progress:
    """What is known about a request so far, for the failure result."""

    access_key_id: str | None = None
    signed_headers: tuple[str, ...] = ()
    scope: str | None = None
    amz_date: str | None = None
    payload_hash: str | None = None


@dataclass(frozen=True, slots=True)
class _Authorization:
    access_key_id: str
    day: str
    region: str
    service: str
    terminator: str
    signed_headers: tuple[str, ...]
    signature: str = field(repr=False)

    @property
    def scope(self) -> str:
        return f"{self.day}/{self.region}/{self.service}/{self.terminator}"


@dataclass(slots=True)
class _Fields:
    """Request fields by lowercase name (repeats kept in order), pseudo apart."""

    regular: dict[str, list[str]] = field(default_factory=dict[str, list[str]])
    pseudo: dict[str, str] = field(default_factory=dict[str, str])

    @classmethod
    def collect(cls, headers: Sequence[tuple[str, str]]) -> _Fields:
        fields = cls()
        for name, value in headers:
            lowered = name.lower()
            if lowered.startswith(":"):
                fields.pseudo.setdefault(lowered, value)
            else:
                fields.regular.setdefault(lowered, []).append(value)
        return fields

    def one(self, name: str) -> str | None:
        values = self.regular.get(name)
        if not values:
            return None
        if len(values) > 1:
            raise _Rejected(
                INCOMPLETE_SIGNATURE, f"the {name} header occurs more than once"
            )
        return values[0]

    def signed_values(self, name: str) -> list[str] | None:
        """The values a signed header name stands for, ``None`` if absent."""
        if name == ":authority" or (name == "host" and "host" not in self.regular):
            # HTTP/2 carries the host in :authority; clients sign it as `host`.
            authority = self.pseudo.get(":authority")
            return None if authority is None else [authority]
        return self.regular.get(name)


# ------------------------------------------------------------- verify_request


def verify_request(
    *,
    method: str,
    path: str,
    query: str = "",
    headers: Sequence[tuple[str, str]],
    credentials: CredentialStore,
    region: str,
    service: str,
    now: datetime,
    max_skew: timedelta = DEFAULT_MAX_SKEW,
    payload: bytes = b"",
) -> RequestVerification:
    """Check a request's SigV4 ``Authorization`` header as AWS would.

    :param method: the HTTP method (``:method``), e.g. ``"POST"``.
    :param path: the request path as received, without the query
        (``:path`` up to its ``?``).
    :param query: the raw query string, without the ``?``; ``""`` if none.
    :param headers: the request's fields as received, pseudo-headers
        included; names are compared case-insensitively. A field received
        several times is signed as its values joined with ``,``. A signed
        ``host`` that is not among the fields stands for ``:authority``.
    :param credentials: the access keys the server knows.
    :param region: the region the server is in.
    :param service: the signing name of the service (Polly: ``"polly"``).
    :param now: the server's clock, an aware datetime.
    :param max_skew: how far the request date may be from ``now``.
    :param payload: the body, hashed when there is no ``x-amz-content-sha256``.
    :raises ValueError: if ``now`` is naive, ``path`` holds a ``?``, or
        ``credentials`` is inconsistent (a programming error, not a client's).
    """
    if now.utcoffset() is None:
        msg = "now must be an aware datetime"
        raise ValueError(msg)
    if "?" in path:
        msg = "path must not include the query; pass it as query="
        raise ValueError(msg)
    table = _credential_table(credentials)
    progress = _Progress()
    try:
        return _verify(
            progress,
            method=method,
            path=path,
            query=query,
            fields=_Fields.collect(headers),
            table=table,
            region=region,
            service=service,
            now=now.astimezone(UTC),
            max_skew=max_skew,
            payload=payload,
        )
    except _Rejected as rejected:
        return RequestVerification(
            ok=False,
            error_type=rejected.error_type,
            status=ERROR_STATUS[rejected.error_type],
            message=rejected.message,
            access_key_id=progress.access_key_id,
            signed_headers=progress.signed_headers,
            scope=progress.scope,
            amz_date=progress.amz_date,
            payload_hash=progress.payload_hash,
        )


def _verify(
    progress: _Progress,
    *,
    method: str,
    path: str,
    query: str,
    fields: _Fields,
    table: Mapping[str, Credentials],
    region: str,
    service: str,
    now: datetime,
    max_skew: timedelta,
    payload: bytes,
) -> RequestVerification:
    authorizations = fields.regular.get("authorization", [])
    if not authorizations:
        raise _Rejected(MISSING_AUTHENTICATION_TOKEN, "Missing Authentication Token")
    if len(authorizations) > 1:
        raise _Rejected(
            INCOMPLETE_SIGNATURE, "the Authorization header occurs more than once"
        )
    auth = _parse_authorization(authorizations[0])
    progress.access_key_id = auth.access_key_id
    progress.signed_headers = auth.signed_headers
    progress.scope = auth.scope
    amz_date, signed_at = _request_date(fields)
    progress.amz_date = amz_date

    known = table.get(auth.access_key_id)
    if known is None:
        raise _Rejected(UNRECOGNIZED_CLIENT, _INVALID_TOKEN)
    _check_session_token(fields, known)
    _check_scope(auth, amz_date, region=region, service=service)
    _check_skew(amz_date, signed_at, now, max_skew)

    content_hash = fields.one("x-amz-content-sha256")
    payload_hash = _sha256_hex(payload) if content_hash is None else content_hash
    progress.payload_hash = payload_hash
    canonical_request = "\n".join(
        (
            method,
            canonical_uri(path),
            canonical_query_string(query),
            _canonical_headers(fields, auth.signed_headers),
            ";".join(auth.signed_headers),
            payload_hash,
        )
    )
    string_to_sign = "\n".join(
        (ALGORITHM, amz_date, auth.scope, _sha256_hex(canonical_request.encode()))
    )
    signing_key = derive_signing_key(known.secret_access_key, auth.day, region, service)
    expected = hmac.new(
        signing_key, string_to_sign.encode(), hashlib.sha256
    ).hexdigest()
    if not hmac.compare_digest(expected, auth.signature):
        raise _Rejected(INVALID_SIGNATURE, _MISMATCH)

    secret = known.secret_access_key

    def key_for_day(day: str) -> bytes:
        return derive_signing_key(secret, day, region, service)

    return RequestVerification(
        ok=True,
        access_key_id=auth.access_key_id,
        signed_headers=auth.signed_headers,
        scope=auth.scope,
        amz_date=amz_date,
        payload_hash=payload_hash,
        request_signature=auth.signature,
        signing_key=signing_key,
        canonical_request=canonical_request,
        string_to_sign=string_to_sign,
        key_for_day=key_for_day,
    )


def _parse_authorization(value: str) -> _Authorization:
    scheme, _, rest = value.strip().partition(" ")
    if scheme != ALGORITHM:
        if scheme.startswith("AWS4-"):
            msg = (
                f"Unsupported AWS 'algorithm': {_redact(scheme)!r}; "
                f"expected {ALGORITHM!r}."
            )
        else:
            msg = (
                "Authorization header requires 'Credential' parameter. Authorization "
                "header requires 'Signature' parameter. Authorization header requires "
                "'SignedHeaders' parameter."
            )
        raise _Rejected(INCOMPLETE_SIGNATURE, msg)
    params: dict[str, str] = {}
    for raw in rest.split(","):
        part = raw.strip()
        key, equals, val = part.partition("=")
        if not equals:
            msg = (
                f"{_redact(part)!r} not a valid key=value pair (missing equal-sign) "
                "in Authorization header."
            )
            raise _Rejected(INCOMPLETE_SIGNATURE, msg)
        if key.strip() in params:
            msg = f"Authorization header has the {key.strip()!r} parameter twice."
            raise _Rejected(INCOMPLETE_SIGNATURE, msg)
        params[key.strip()] = val.strip()
    missing = [
        k for k in ("Credential", "Signature", "SignedHeaders") if k not in params
    ]
    if missing:
        msg = " ".join(
            f"Authorization header requires {k!r} parameter." for k in missing
        )
        raise _Rejected(INCOMPLETE_SIGNATURE, msg)
    credential = params["Credential"].split("/")
    if len(credential) != 5 or not all(credential):
        msg = (
            f"Credential {_redact(params['Credential'])!r} is not of the form "
            "'<access key id>/<YYYYMMDD>/<region>/<service>/aws4_request'."
        )
        raise _Rejected(INCOMPLETE_SIGNATURE, msg)
    signed_headers = _parse_signed_headers(params["SignedHeaders"])
    signature = params["Signature"]
    if not _SIGNATURE.fullmatch(signature):
        msg = f"{_MISMATCH} (The signature is not 64 lower-case hex digits.)"
        raise _Rejected(INVALID_SIGNATURE, msg)
    key_id, day, region, service, terminator = credential
    return _Authorization(
        key_id, day, region, service, terminator, signed_headers, signature
    )


def _parse_signed_headers(value: str) -> tuple[str, ...]:
    names = tuple(value.split(";"))
    if not all(names) or any(n != n.lower() for n in names):
        msg = f"SignedHeaders {value!r} must be lower-case names separated by ';'."
        raise _Rejected(INCOMPLETE_SIGNATURE, msg)
    if list(names) != sorted(set(names)):
        msg = f"SignedHeaders {value!r} must be sorted and free of repeats."
        raise _Rejected(INCOMPLETE_SIGNATURE, msg)
    if "host" not in names and ":authority" not in names:
        msg = (
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
        )
        raise _Rejected(INCOMPLETE_SIGNATURE, msg)
    return names


def _request_date(fields: _Fields) -> tuple[str, datetime]:
    """The request's date, from ``x-amz-date`` or else ``date``."""
    amz_date = fields.one("x-amz-date")
    if amz_date is not None:
        if not _AMZ_DATE.fullmatch(amz_date):
            msg = (
                f"Date must be in ISO-8601 'basic format'. Got {amz_date!r}. "
                "See http://en.wikipedia.org/wiki/ISO_8601"
            )
            raise _Rejected(INCOMPLETE_SIGNATURE, msg)
        try:
            signed_at = datetime.strptime(amz_date, _AMZ_DATE_FORMAT).replace(
                tzinfo=UTC
            )
        except ValueError:
            msg = f"X-Amz-Date {amz_date!r} is not a valid date."
            raise _Rejected(INCOMPLETE_SIGNATURE, msg) from None
        return amz_date, signed_at
    http_date = fields.one("date")
    if http_date is None:
        msg = (
            "Authorization header requires existence of either a 'X-Amz-Date' "
            "or a 'Date' header."
        )
        raise _Rejected(INCOMPLETE_SIGNATURE, msg)
    try:
        parsed = parsedate_to_datetime(http_date)
    except (TypeError, ValueError):
        msg = f"Date header {http_date!r} is not an HTTP date."
        raise _Rejected(INCOMPLETE_SIGNATURE, msg) from None
    if parsed.utcoffset() is None:
        parsed = parsed.replace(tzinfo=UTC)
    signed_at = parsed.astimezone(UTC)
    return signed_at.strftime(_AMZ_DATE_FORMAT), signed_at


def _check_session_token(fields: _Fields, known: Credentials) -> None:
    token = fields.one("x-amz-security-token")
    if known.session_token is None:
        if token is not None:
            raise _Rejected(UNRECOGNIZED_CLIENT, _INVALID_TOKEN)
    elif token is None or not hmac.compare_digest(
        token.encode(), known.session_token.encode()
    ):
        raise _Rejected(UNRECOGNIZED_CLIENT, _INVALID_TOKEN)


def _check_scope(
    auth: _Authorization, amz_date: str, *, region: str, service: str
) -> None:
    if auth.terminator != _TERMINATOR:
        msg = (
            f"Credential should be scoped with a valid terminator: {_TERMINATOR!r}, "
            f"not {auth.terminator!r}."
        )
        raise _Rejected(INVALID_SIGNATURE, msg)
    if auth.day != amz_date[:8]:
        msg = (
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version "
            f"of date from HTTP: {auth.day!r} != {amz_date[:8]!r}, from {amz_date!r}."
        )
        raise _Rejected(INVALID_SIGNATURE, msg)
    if auth.region != region:
        msg = f"Credential should be scoped to a valid region, not {auth.region!r}."
        raise _Rejected(INVALID_SIGNATURE, msg)
    if auth.service != service:
        msg = f"Credential should be scoped to correct service: {service!r}."
        raise _Rejected(INVALID_SIGNATURE, msg)


def _format_skew(skew: timedelta) -> str:
    minutes = skew.total_seconds() / 60
    return f"{minutes:g} min."


def _check_skew(
    amz_date: str, signed_at: datetime, now: datetime, max_skew: timedelta
) -> None:
    if signed_at < now - max_skew:
        msg = (
            f"Signature expired: {amz_date} is now earlier than "
            f"{(now - max_skew):{_AMZ_DATE_FORMAT}} "
            f"({now:{_AMZ_DATE_FORMAT}} - {_format_skew(max_skew)})"
        )
        raise _Rejected(INVALID_SIGNATURE, msg)
    if signed_at > now + max_skew:
        msg = (
            f"Signature not yet current: {amz_date} is still later than "
            f"{(now + max_skew):{_AMZ_DATE_FORMAT}} "
            f"({now:{_AMZ_DATE_FORMAT}} + {_format_skew(max_skew)})"
        )
        raise _Rejected(INVALID_SIGNATURE, msg)


def _canonical_headers(fields: _Fields, signed_headers: Sequence[str]) -> str:
    lines: list[str] = []
    for name in signed_headers:
        values = fields.signed_values(name)
        if values is None:
            msg = f"{_MISMATCH} (The signed header {name!r} is not in the request.)"
            raise _Rejected(INVALID_SIGNATURE, msg)
        lines.append(f"{name}:{_canonical_value(values)}\n")
    return "".join(lines)


# ----------------------------------------------------------- event signatures


class EventSignatureError(Exception):
    """An event-stream envelope whose signature or ``:date`` does not verify."""


class EventSignatureVerifier:
    """Checks the chained signatures of a request's event-stream envelopes.

    Each envelope (as decoded by :class:`~amazon_polly_streaming.eventstream.
    MessageDecoder`) carries a ``:date`` timestamp header and a 32-byte
    ``:chunk-signature``; its payload is the encoded inner event, or empty in
    the final envelope that ends the stream. The signature is::

        HMAC(key(day), "AWS4-HMAC-SHA256-PAYLOAD" \\n <:date, YYYYMMDDTHHMMSSZ>
             \\n <day>/<region>/<service>/aws4_request \\n <previous signature, hex>
             \\n hex(sha256(<:date header as encoded>)) \\n hex(sha256(payload)))

    where ``day`` is the envelope's date and the first "previous signature" is
    the request's. A failure is final: once :meth:`verify` has raised, every
    later call raises too, and so does any call after the final envelope.
    """

    __slots__ = (
        "_clock",
        "_count",
        "_ended",
        "_failure",
        "_key_for_day",
        "_keys",
        "_max_skew",
        "_prior",
        "_region",
        "_service",
    )

    def __init__(
        self,
        request: RequestVerification,
        *,
        max_skew: timedelta = DEFAULT_MAX_SKEW,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        """Seed the chain with a verified request.

        :param request: a successful :func:`verify_request` result.
        :param max_skew: how far an envelope's ``:date`` may be from the clock.
        :param clock: returns the current aware datetime (default: the system
            clock); :meth:`verify` also takes an explicit ``now``.
        :raises ValueError: if ``request`` did not verify.
        """
        scope = request.scope
        if not request.ok or scope is None or not request.request_signature:
            msg = "cannot verify the events of a request whose signature did not verify"
            raise ValueError(msg)
        day, region, service, _ = scope.split("/")
        self._prior = request.request_signature
        self._keys: dict[str, bytes] = {day: request.signing_key}
        self._key_for_day = request.key_for_day
        self._region = region
        self._service = service
        self._max_skew = max_skew
        self._clock = clock or _utc_now
        self._count = 0
        self._ended = False
        self._failure: str | None = None

    @property
    def ended(self) -> bool:
        """Whether the final (empty) envelope has been verified."""
        return self._ended

    @property
    def count(self) -> int:
        """How many envelopes verified, the final one included."""
        return self._count

    def __repr__(self) -> str:
        state = "ended" if self._ended else "failed" if self._failure else "open"
        return f"<EventSignatureVerifier {state}, {self._count} verified>"

    def verify(
        self,
        envelope_headers: Mapping[str, object],
        payload: bytes,
        *,
        now: datetime | None = None,
    ) -> None:
        """Check the next envelope of the stream and advance the chain.

        :param envelope_headers: the envelope's decoded headers.
        :param payload: the envelope's payload; ``b""`` ends the stream.
        :param now: the server's clock (default: the verifier's clock).
        :raises EventSignatureError: if the envelope does not verify, comes
            after the final one, or an earlier one failed.
        """
        if self._failure is not None:
            msg = f"the event-signature chain already failed: {self._failure}"
            raise EventSignatureError(msg)
        number = self._count + 1
        try:
            if self._ended:
                msg = (
                    "a message arrived after the final empty message that ended "
                    "the stream"
                )
                raise EventSignatureError(msg)
            signature = self._check(envelope_headers, payload, now or self._clock())
        except EventSignatureError as exc:
            self._failure = f"message {number}: {exc}"
            raise EventSignatureError(self._failure) from None
        self._prior = signature.hex()
        self._count = number
        if not payload:
            self._ended = True

    def _check(
        self, headers: Mapping[str, object], payload: bytes, now: datetime
    ) -> bytes:
        date = headers.get(":date")
        if date is None:
            raise EventSignatureError("the :date header is missing")
        if not isinstance(date, Timestamp):
            msg = f"the :date header is a {type(date).__name__}, not a timestamp"
            raise EventSignatureError(msg)
        provided = headers.get(":chunk-signature")
        if provided is None:
            raise EventSignatureError("the :chunk-signature header is missing")
        if not isinstance(provided, bytes) or len(provided) != 32:
            msg = ":chunk-signature must be a 32-byte byte_array header"
            raise EventSignatureError(msg)
        extra = sorted(set(headers) - _ENVELOPE_HEADERS)
        if extra:
            msg = f"unsigned envelope header(s) {', '.join(map(repr, extra))}"
            raise EventSignatureError(msg)
        try:
            signed_at = date.to_datetime()
        except OverflowError:
            msg = f":date {int(date)} ms is out of range"
            raise EventSignatureError(msg) from None
        self._check_date(signed_at, now)
        day = signed_at.strftime("%Y%m%d")
        string_to_sign = "\n".join(
            (
                EVENT_ALGORITHM,
                signed_at.strftime(_AMZ_DATE_FORMAT),
                f"{day}/{self._region}/{self._service}/{_TERMINATOR}",
                self._prior,
                _sha256_hex(_DATE_HEADER_PREFIX + struct.pack(">q", int(date))),
                _sha256_hex(payload),
            )
        )
        expected = hmac.new(
            self._key(day), string_to_sign.encode(), hashlib.sha256
        ).digest()
        if not hmac.compare_digest(expected, provided):
            msg = (
                f":chunk-signature {provided.hex()[:8]}... does not match (wrong key, "
                "payload or :date, or a message out of order, replayed or lost)"
            )
            raise EventSignatureError(msg)
        return expected

    def _check_date(self, signed_at: datetime, now: datetime) -> None:
        if now.utcoffset() is None:
            msg = "now must be an aware datetime"
            raise ValueError(msg)
        skew = abs(signed_at - now)
        if skew > self._max_skew:
            when = "behind" if signed_at < now else "ahead of"
            msg = (
                f":date {signed_at.isoformat(timespec='milliseconds')} is "
                f"{skew.total_seconds():.0f} s {when} the server's clock "
                f"(allowed: {_format_skew(self._max_skew)})"
            )
            raise EventSignatureError(msg)

    def _key(self, day: str) -> bytes:
        key = self._keys.get(day)
        if key is None:
            if self._key_for_day is None:
                msg = f":date is on {day}, a day the request's signing key is not for"
                raise EventSignatureError(msg)
            key = self._keys[day] = self._key_for_day(day)
        return key


def _utc_now() -> datetime:
    return datetime.now(UTC)
