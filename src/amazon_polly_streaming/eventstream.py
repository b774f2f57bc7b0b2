"""Sans-I/O codec for the ``application/vnd.amazon.eventstream`` framing.

Every message on an AWS event stream is a self-delimiting binary frame::

    total_length   u32 BE   length of the whole message, these 4 bytes included
    headers_length u32 BE   length of the headers section
    prelude_crc    u32 BE   CRC32 of the 8 bytes above
    headers        headers_length bytes
    payload        total_length - headers_length - 16 bytes
    message_crc    u32 BE   CRC32 of every byte before it

and each header is ``name_len:u8 | name (UTF-8) | type:u8 | value``.

This module only converts between bytes and :class:`Message` objects. It does no
I/O, knows nothing about asyncio, and keeps no global state, in the spirit of
hyper-h2: the caller owns the transport, hands received bytes to a
:class:`MessageDecoder` and writes the bytes returned by :func:`encode_message`.

Header values are represented by Python types that carry their wire type, so that
``decode(encode(headers))`` gives back values of exactly the same type:

============  =========================  =====================================
wire type     Python type when encoding  Python type when decoding
============  =========================  =====================================
0/1 bool      ``bool``                   ``bool``
2 byte        :class:`Int8`              :class:`Int8`
3 short       :class:`Int16`             :class:`Int16`
4 integer     ``int``                    ``int``
5 long        :class:`Int64`             :class:`Int64`
6 byte_array  ``bytes``                  ``bytes``
7 string      ``str``                    ``str``
8 timestamp   :class:`Timestamp`         :class:`Timestamp`
9 uuid        :class:`uuid.UUID`         :class:`uuid.UUID`
============  =========================  =====================================
"""

from __future__ import annotations

import datetime as _dt
import struct
import uuid
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Self

__all__ = [
    "DEFAULT_MAX_MESSAGE_SIZE",
    "MAX_HEADERS_LENGTH",
    "MAX_HEADER_NAME_LENGTH",
    "MAX_HEADER_VALUE_LENGTH",
    "MAX_PAYLOAD_LENGTH",
    "MIN_MESSAGE_SIZE",
    "EventStreamError",
    "HeaderValue",
    "Int8",
    "Int16",
    "Int64",
    "InvalidHeaderError",
    "InvalidMessageChecksumError",
    "InvalidPreludeChecksumError",
    "InvalidPreludeError",
    "Message",
    "MessageDecoder",
    "MessageTooLargeError",
    "Timestamp",
    "TruncatedMessageError",
    "encode_headers",
    "encode_message",
]

# --------------------------------------------------------------------------- limits

MAX_HEADERS_LENGTH: Final = 128 * 1024
"""Largest headers section AWS accepts (128 KiB)."""

MAX_PAYLOAD_LENGTH: Final = 16 * 1024 * 1024
"""Largest payload AWS accepts (16 MiB)."""

MIN_MESSAGE_SIZE: Final = 16
"""Size of a message without headers or payload: 12-byte prelude + 4-byte CRC."""

DEFAULT_MAX_MESSAGE_SIZE: Final = MAX_PAYLOAD_LENGTH + MAX_HEADERS_LENGTH + 16
"""Default :class:`MessageDecoder` limit: the largest message AWS may send."""

MAX_HEADER_NAME_LENGTH: Final = 255
"""Longest header name, in UTF-8 bytes (its length is a ``u8`` on the wire)."""

MAX_HEADER_VALUE_LENGTH: Final = 65535
"""Longest ``bytes``/``str`` header value, in bytes (a ``u16`` on the wire)."""

_PRELUDE_LENGTH: Final = 12

# ----------------------------------------------------------------- header value types


class Int8(int):
    """An ``int`` sent as a one-byte signed integer header (wire type 2).

    The value is not range-checked here; :func:`encode_headers` rejects values
    outside ``-128..127`` with a :class:`ValueError` that names the header.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Int8({int(self)})"


class Int16(int):
    """An ``int`` sent as a two-byte signed integer header (wire type 3).

    The value is not range-checked here; :func:`encode_headers` rejects values
    outside ``-32768..32767`` with a :class:`ValueError` that names the header.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Int16({int(self)})"


class Int64(int):
    """An ``int`` sent as an eight-byte signed integer header (wire type 5).

    The value is not range-checked here; :func:`encode_headers` rejects values
    outside the signed 64-bit range with a :class:`ValueError` naming the header.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Int64({int(self)})"


_EPOCH: Final = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)
_ONE_MILLISECOND: Final = _dt.timedelta(milliseconds=1)


class Timestamp(int):
    """A timestamp header (wire type 8): whole milliseconds since the Unix epoch.

    It is an ``int`` rather than a :class:`datetime.datetime` so that encoding and
    decoding are exact; convert with :meth:`from_datetime` and :meth:`to_datetime`.
    :func:`encode_headers` rejects values outside the signed 64-bit range.
    """

    __slots__ = ()

    @classmethod
    def from_datetime(cls, value: _dt.datetime) -> Self:
        """Convert an aware datetime, rounding down to a whole millisecond.

        :raises ValueError: if ``value`` is naive (has no UTC offset), since the
            instant it denotes would be ambiguous.
        """
        if value.utcoffset() is None:
            msg = f"cannot convert naive datetime {value!r} to a Timestamp"
            raise ValueError(msg)
        return cls((value - _EPOCH) // _ONE_MILLISECOND)

    def to_datetime(self) -> _dt.datetime:
        """Return the instant as an aware UTC datetime.

        :raises OverflowError: if the instant is outside the years 1 to 9999.
        """
        return _EPOCH + _dt.timedelta(milliseconds=int(self))

    def __repr__(self) -> str:
        return f"Timestamp({int(self)})"


type HeaderValue = (
    bool | Int8 | Int16 | int | Int64 | bytes | str | Timestamp | uuid.UUID
)
"""The Python types a header value may have; see the module docstring for the
mapping to wire types. A plain ``int`` (or any ``int`` subclass other than
``bool``, :class:`Int8`, :class:`Int16`, :class:`Int64` and :class:`Timestamp`)
is sent as a 32-bit integer. ``bytearray`` is accepted as ``bytes`` when encoding."""

# ------------------------------------------------------------------------- messages


@dataclass(frozen=True, slots=True)
class Message:
    """One event-stream message: its headers and its payload.

    Equality compares header values with ``==``, so it does not distinguish an
    ``Int8(1)`` header from an ``int`` 1; compare ``type()`` if that matters.
    """

    headers: Mapping[str, HeaderValue] = field(default_factory=dict[str, HeaderValue])
    """Header names mapped to their values, in wire order."""

    payload: bytes = b""
    """The message body, opaque to this layer."""

    def encode(self) -> bytes:
        """Return this message's wire form; see :func:`encode_message`."""
        return encode_message(self.headers, self.payload)

    def __repr__(self) -> str:
        # Payloads are often audio: show their size and a short prefix only.
        size = len(self.payload)
        shown = self.payload[:32]
        more = "..." if size > 32 else ""
        return (
            f"Message(headers={self.headers!r}, payload=<{size} bytes {shown!r}{more}>)"
        )


# --------------------------------------------------------------------------- errors


class EventStreamError(ValueError):
    """Base class of every error found in received event-stream bytes."""


class InvalidPreludeChecksumError(EventStreamError):
    """The prelude CRC does not match the first 8 bytes of a message."""


class InvalidPreludeError(EventStreamError):
    """A prelude with a valid CRC announces impossible lengths.

    That is ``total_length < 16`` or ``headers_length > total_length - 16``.
    """


class InvalidMessageChecksumError(EventStreamError):
    """The trailing message CRC does not match the message's bytes."""


class InvalidHeaderError(EventStreamError):
    """The headers section of a message (whose CRCs were valid) is malformed.

    Raised for an unknown value type, an empty header name, a header running past
    the end of the section, a name or string value that is not UTF-8, and a header
    name occurring twice.
    """


class MessageTooLargeError(EventStreamError):
    """A prelude announces a message or headers section over the allowed size.

    Raised as soon as the 12-byte prelude has arrived, before any of the body is
    buffered.
    """


class TruncatedMessageError(EventStreamError):
    """The stream ended in the middle of a message."""


# ------------------------------------------------------------------------- encoding

_PRELUDE: Final = struct.Struct(">II")
_PRELUDE_WITH_CRC: Final = struct.Struct(">III")
_U32: Final = struct.Struct(">I")
_TYPED_I8: Final = struct.Struct(">Bb")
_TYPED_I16: Final = struct.Struct(">Bh")
_TYPED_I32: Final = struct.Struct(">Bi")
_TYPED_I64: Final = struct.Struct(">Bq")
_TYPED_U16: Final = struct.Struct(">BH")
_NAME_LENGTH_BYTE: Final = tuple(bytes((i,)) for i in range(256))
_TRUE: Final = b"\x00"
_FALSE: Final = b"\x01"
_UUID_TYPE: Final = b"\x09"
_INT64_MIN: Final = -(1 << 63)
_INT64_MAX: Final = (1 << 63) - 1


def _out_of_range(name: str, kind: str, value: int, bits: int) -> ValueError:
    limit = 1 << (bits - 1)
    return ValueError(
        f"header {name!r}: {kind} value {int(value)} is outside the {bits}-bit "
        f"range {-limit}..{limit - 1}"
    )


def _value_too_long(name: str, kind: str, size: int) -> ValueError:
    return ValueError(
        f"header {name!r}: {kind} value is {size} bytes, more than the "
        f"{MAX_HEADER_VALUE_LENGTH}-byte limit"
    )


def _encode_str(name: str, value: str) -> tuple[bytes, ...]:
    encoded = value.encode()
    if len(encoded) > MAX_HEADER_VALUE_LENGTH:
        raise _value_too_long(name, "string", len(encoded))
    return (_TYPED_U16.pack(7, len(encoded)), encoded)


def _encode_bytes(name: str, value: bytes | bytearray) -> tuple[bytes, ...]:
    if len(value) > MAX_HEADER_VALUE_LENGTH:
        raise _value_too_long(name, "byte_array", len(value))
    return (_TYPED_U16.pack(6, len(value)), bytes(value))


def _encode_bool(_name: str, value: bool) -> tuple[bytes, ...]:
    return (_TRUE if value else _FALSE,)


def _encode_int8(name: str, value: int) -> tuple[bytes, ...]:
    if -0x80 <= value <= 0x7F:
        return (_TYPED_I8.pack(2, value),)
    raise _out_of_range(name, "Int8", value, 8)


def _encode_int16(name: str, value: int) -> tuple[bytes, ...]:
    if -0x8000 <= value <= 0x7FFF:
        return (_TYPED_I16.pack(3, value),)
    raise _out_of_range(name, "Int16", value, 16)


def _encode_int32(name: str, value: int) -> tuple[bytes, ...]:
    if -0x8000_0000 <= value <= 0x7FFF_FFFF:
        return (_TYPED_I32.pack(4, value),)
    raise _out_of_range(name, "int (32-bit)", value, 32)


def _encode_int64(name: str, value: int) -> tuple[bytes, ...]:
    if _INT64_MIN <= value <= _INT64_MAX:
        return (_TYPED_I64.pack(5, value),)
    raise _out_of_range(name, "Int64", value, 64)


def _encode_timestamp(name: str, value: int) -> tuple[bytes, ...]:
    if _INT64_MIN <= value <= _INT64_MAX:
        return (_TYPED_I64.pack(8, value),)
    raise _out_of_range(name, "Timestamp", value, 64)


def _encode_uuid(_name: str, value: uuid.UUID) -> tuple[bytes, ...]:
    return (_UUID_TYPE, value.bytes)


# Value encoders take ``Any``: the tables below only ever pair each with values
# of the class it is registered for.
type _ValueEncoder = Callable[[str, Any], tuple[bytes, ...]]

# Order matters for the isinstance fallback: subclasses before their bases.
_ENCODERS_BY_CLASS: Final[tuple[tuple[type, _ValueEncoder], ...]] = (
    (bool, _encode_bool),
    (Int8, _encode_int8),
    (Int16, _encode_int16),
    (Int64, _encode_int64),
    (Timestamp, _encode_timestamp),
    (int, _encode_int32),
    (str, _encode_str),
    (bytes, _encode_bytes),
    (bytearray, _encode_bytes),
    (uuid.UUID, _encode_uuid),
)
_ENCODERS: Final[Mapping[type, _ValueEncoder]] = dict(_ENCODERS_BY_CLASS)


def _value_encoder(name: str, value: object) -> _ValueEncoder:
    for cls, encoder in _ENCODERS_BY_CLASS:
        if isinstance(value, cls):
            return encoder
    msg = (
        f"header {name!r}: unsupported value type {type(value).__name__}; expected "
        "bool, int, Int8, Int16, Int64, Timestamp, bytes, str or uuid.UUID"
    )
    raise TypeError(msg)


def _bad_name(name: object) -> Exception:
    if not isinstance(name, str):
        return TypeError(f"header name {name!r} is a {type(name).__name__}, not a str")
    size = len(name.encode())
    if size == 0:
        return ValueError(
            "header name '' is empty; names must be 1 to 255 bytes of UTF-8"
        )
    return ValueError(
        f"header name {name!r} is {size} bytes of UTF-8, "
        f"more than the {MAX_HEADER_NAME_LENGTH}-byte limit"
    )


def encode_headers(headers: Mapping[str, HeaderValue]) -> bytes:
    """Return the wire form of a headers section, in the mapping's order.

    :raises ValueError: naming the header, if a name is empty or longer than 255
        bytes of UTF-8, an integer does not fit the width of its type, or a
        ``str``/``bytes`` value is longer than 65535 bytes; also (without a header
        name) if the section exceeds :data:`MAX_HEADERS_LENGTH`.
    :raises TypeError: naming the header, if a name is not a ``str`` or a value is
        not one of the :data:`HeaderValue` types.
    """
    if not headers:
        return b""
    parts: list[bytes] = []
    append = parts.append
    name_length_byte = _NAME_LENGTH_BYTE
    for name, value in headers.items():
        if type(name) is not str:  # a str subclass is fine, but rare
            if not isinstance(name, str):  # pyright: ignore[reportUnnecessaryIsInstance]
                raise _bad_name(name)
            name = str(name)  # noqa: PLW2901 - normalise the subclass
        encoded_name = name.encode()
        size = len(encoded_name)
        if not 0 < size <= MAX_HEADER_NAME_LENGTH:
            raise _bad_name(name)
        append(name_length_byte[size])
        append(encoded_name)
        # Strings are by far the most common values: handle them inline.
        if type(value) is str:
            encoded = value.encode()
            if len(encoded) > MAX_HEADER_VALUE_LENGTH:
                raise _value_too_long(name, "string", len(encoded))
            append(_TYPED_U16.pack(7, len(encoded)))
            append(encoded)
        else:
            encoder = _ENCODERS.get(type(value)) or _value_encoder(name, value)
            parts.extend(encoder(name, value))
    data = b"".join(parts)
    if len(data) > MAX_HEADERS_LENGTH:
        msg = (
            f"headers section is {len(data)} bytes, more than the "
            f"{MAX_HEADERS_LENGTH}-byte limit"
        )
        raise ValueError(msg)
    return data


def encode_message(
    headers: Mapping[str, HeaderValue],
    payload: bytes | bytearray | memoryview = b"",
) -> bytes:
    """Return the complete wire form of one message.

    ``payload`` may be any C-contiguous byte buffer; it is copied exactly once,
    into the result.

    :raises ValueError: if a header is invalid (see :func:`encode_headers`) or the
        payload exceeds :data:`MAX_PAYLOAD_LENGTH`.
    :raises TypeError: if a header name or value has an unsupported type.
    """
    return frame_message(encode_headers(headers), payload)


def frame_message(
    header_bytes: bytes, payload: bytes | bytearray | memoryview = b""
) -> bytes:
    """Return the wire form of one message whose headers section is already
    encoded (``encode_headers``; the hot path builds fixed ones directly).

    :raises ValueError: if the payload exceeds :data:`MAX_PAYLOAD_LENGTH`.
    """
    payload_length = payload.nbytes if isinstance(payload, memoryview) else len(payload)
    if payload_length > MAX_PAYLOAD_LENGTH:
        msg = (
            f"payload is {payload_length} bytes, more than the "
            f"{MAX_PAYLOAD_LENGTH}-byte limit"
        )
        raise ValueError(msg)
    headers_length = len(header_bytes)
    total_length = headers_length + payload_length + 16
    prelude_crc = zlib.crc32(_PRELUDE.pack(total_length, headers_length))
    prelude = _PRELUDE_WITH_CRC.pack(total_length, headers_length, prelude_crc)
    crc = zlib.crc32(payload, zlib.crc32(header_bytes, zlib.crc32(prelude)))
    return b"".join((prelude, header_bytes, payload, _U32.pack(crc)))


# ------------------------------------------------------------------------- decoding

# Fixed-size value types other than bool: wire type -> (size, Python type).
_FIXED: Final[Mapping[int, tuple[int, type[int]]]] = {
    2: (1, Int8),
    3: (2, Int16),
    4: (4, int),
    5: (8, Int64),
    8: (8, Timestamp),
}
_TYPE_NAMES: Final = (
    "bool",
    "bool",
    "byte",
    "short",
    "integer",
    "long",
    "byte_array",
    "string",
    "timestamp",
    "uuid",
)


def _truncated(name: str, kind: int, pos: int, need: int, end: int) -> str:
    return (
        f"header {name!r}: {_TYPE_NAMES[kind]} value at offset {pos} needs {need} "
        f"bytes but only {max(end - pos, 0)} remain in the {end}-byte headers section"
    )


def _bad_name_length(size: int, pos: int, end: int) -> str:
    if size == 0:
        return f"header at offset {pos} has an empty name"
    return (
        f"header at offset {pos}: its {size}-byte name and type byte run past the "
        f"end of the {end}-byte headers section"
    )


def _decode_value(
    data: bytes, pos: int, end: int, name: str, kind: int
) -> tuple[HeaderValue, int]:
    """Decode a header value other than bool or string; return it and its end."""
    if kind == 6:
        start = pos + 2
        stop = start + int.from_bytes(data[pos:start])
        if stop > end:
            raise InvalidHeaderError(_truncated(name, kind, pos, stop - pos, end))
        return data[start:stop], stop
    if kind == 9:
        stop = pos + 16
        if stop > end:
            raise InvalidHeaderError(_truncated(name, kind, pos, 16, end))
        return uuid.UUID(bytes=data[pos:stop]), stop
    layout = _FIXED.get(kind)
    if layout is None:
        msg = f"header {name!r} has unknown value type {kind}"
        raise InvalidHeaderError(msg)
    size, cls = layout
    stop = pos + size
    if stop > end:
        raise InvalidHeaderError(_truncated(name, kind, pos, size, end))
    return cls.from_bytes(data[pos:stop], signed=True), stop


def _decode_headers(data: bytes) -> dict[str, HeaderValue]:
    """Parse a complete headers section.

    Strings and bools, by far the most common types, are decoded inline because
    this runs for every received message.
    """
    headers: dict[str, HeaderValue] = {}
    end = len(data)
    pos = 0
    while pos < end:
        name_end = pos + 1 + data[pos]
        if name_end == pos + 1 or name_end >= end:
            raise InvalidHeaderError(_bad_name_length(data[pos], pos, end))
        try:
            name = data[pos + 1 : name_end].decode()
        except UnicodeDecodeError as exc:
            msg = f"header at offset {pos}: name is not valid UTF-8 ({exc.reason})"
            raise InvalidHeaderError(msg) from exc
        if name in headers:
            msg = f"header {name!r} occurs more than once"
            raise InvalidHeaderError(msg)
        kind = data[name_end]
        pos = name_end + 1
        value: HeaderValue
        if kind == 7:
            start = pos + 2
            stop = start + int.from_bytes(data[pos:start])
            if stop > end:
                raise InvalidHeaderError(_truncated(name, kind, pos, stop - pos, end))
            try:
                value = data[start:stop].decode()
            except UnicodeDecodeError as exc:
                msg = f"header {name!r}: string value is not valid UTF-8 ({exc.reason})"
                raise InvalidHeaderError(msg) from exc
            pos = stop
        elif kind == 0:
            value = True
        elif kind == 1:
            value = False
        else:
            value, pos = _decode_value(data, pos, end, name, kind)
        headers[name] = value
    return headers


class MessageDecoder:
    """Incremental, push-based decoder of an event stream.

    Feed it the bytes received from the transport, in pieces of any size, and it
    returns the messages those bytes complete::

        decoder = MessageDecoder()
        for chunk in chunks:
            for message in decoder.feed(chunk):
                handle(message)
        decoder.close()  # raises TruncatedMessageError if a message was cut short

    Both CRCs of every message are verified; the prelude CRC is checked before its
    lengths are used, and a prelude announcing more than ``max_message_size``
    bytes is rejected as soon as its 12 bytes are in, so the decoder never buffers
    more than one message of at most ``max_message_size`` bytes.

    **Errors are final.** Once :meth:`feed` or :meth:`close` has raised an
    :class:`EventStreamError`, the decoder is poisoned: every later :meth:`feed` or
    :meth:`close` raises a new error of the same class (chained to the original),
    because the position of the next message boundary is unknown. No good
    message is lost to an error: when one :meth:`feed` call completes messages
    and then meets bad bytes, it returns those messages, and the error itself is
    raised by the next :meth:`feed` or :meth:`close` call, so that a consumer
    sees every message that came before the corruption, then the error.
    """

    __slots__ = (
        "_buffer",
        "_closed",
        "_error",
        "_error_pending",
        "_header_cache",
        "_max_message_size",
        "_need",
        "_position",
    )

    def __init__(self, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        """Create a decoder accepting messages of up to ``max_message_size`` bytes.

        ``max_message_size`` counts the whole frame (prelude, headers, payload and
        CRC). Whatever it is, headers sections over :data:`MAX_HEADERS_LENGTH`
        are rejected.

        :raises ValueError: if ``max_message_size`` is less than 16.
        """
        if max_message_size < MIN_MESSAGE_SIZE:
            msg = (
                f"max_message_size must be at least {MIN_MESSAGE_SIZE}, "
                f"got {max_message_size}"
            )
            raise ValueError(msg)
        self._max_message_size = max_message_size
        # Bytes of the current, incomplete message. Only ever holds part of one
        # message: complete messages are decoded straight from the fed data.
        self._buffer = bytearray()
        # How many bytes _buffer must hold before decoding can make progress:
        # the prelude size, or the message size once its prelude was checked.
        self._need = _PRELUDE_LENGTH
        # Stream offset of the first byte of the current message (for errors).
        self._position = 0
        # Decoded headers by their wire bytes. Consecutive messages of a stream
        # usually carry identical headers (":event-type" etc.), and parsing them
        # costs more than the rest of decoding a small message. Bounded (only
        # small sections, cleared when full); values are copied out, never
        # shared between messages.
        self._header_cache: dict[bytes, dict[str, HeaderValue]] = {}
        self._error: EventStreamError | None = None
        self._error_pending = False
        self._closed = False

    @property
    def max_message_size(self) -> int:
        """The largest message, in bytes, this decoder accepts."""
        return self._max_message_size

    @property
    def pending(self) -> int:
        """Number of buffered bytes belonging to a not yet complete message."""
        return len(self._buffer)

    def feed(self, data: bytes | bytearray | memoryview) -> list[Message]:
        """Consume received bytes and return the messages they complete, in order.

        The decoder copies what it keeps, so ``data`` may be reused afterwards.
        Feeding ``b""`` is allowed and returns ``[]``.

        :raises EventStreamError: (one of its subclasses) if the bytes are not a
            valid event stream; the decoder is then poisoned (see the class doc).
        :raises RuntimeError: if called after a successful :meth:`close`.
        """
        if self._error is not None:
            self._raise_poisoned()
        if self._closed:
            msg = "MessageDecoder.feed() called after close()"
            raise RuntimeError(msg)
        view = memoryview(data)
        if view.itemsize != 1 or view.ndim != 1:
            view = view.cast("B")
        messages: list[Message] = []
        try:
            with view:
                size = len(view)
                offset = 0
                buffer = self._buffer
                # Complete the message started by earlier calls, copying only the
                # bytes it still lacks: first its prelude, then the rest.
                while buffer:
                    take = self._need - len(buffer)
                    if size - offset < take:
                        buffer += view[offset:]
                        return messages
                    buffer += view[offset : offset + take]
                    offset += take
                    with memoryview(buffer) as buffered:
                        used, self._need = self._decode(buffered, 0, messages)
                    if used:
                        buffer.clear()
                # Decode the remaining messages straight from the caller's bytes.
                offset, self._need = self._decode(view, offset, messages)
                if offset < size:
                    buffer += view[offset:]
        except EventStreamError as exc:
            self._error = exc
            if not messages:
                raise
            # Hand out the good messages that came before the bad bytes; the
            # error is raised by the next feed() or close(), where it belongs.
            self._error_pending = True
        return messages

    def close(self) -> None:
        """Signal the end of the stream; the decoder accepts no more data.

        Calling it again is harmless.

        :raises TruncatedMessageError: if part of a message is still buffered.
        :raises EventStreamError: of the earlier error's class, if the decoder is
            poisoned.
        """
        if self._error is not None:
            self._raise_poisoned()
        if self._buffer:
            have = len(self._buffer)
            if have < _PRELUDE_LENGTH:
                detail = f"{have} of its {_PRELUDE_LENGTH} prelude bytes"
            else:
                detail = f"{have} of its {self._need} bytes"
            msg = (
                f"stream ended in the middle of the message at stream offset "
                f"{self._position}: got {detail}"
            )
            self._error = TruncatedMessageError(msg)
            raise self._error
        self._closed = True

    def _raise_poisoned(self) -> None:
        error = self._error
        assert error is not None  # noqa: S101 - callers check
        if self._error_pending:
            self._error_pending = False
            raise error
        msg = f"decoder is unusable after an earlier error: {error}"
        raise type(error)(msg) from error

    def _decode(
        self, data: memoryview, offset: int, out: list[Message]
    ) -> tuple[int, int]:
        """Decode every complete message in ``data[offset:]`` into ``out``.

        Returns the offset of the first byte not consumed and the number of bytes
        needed from there to make progress.
        """
        end = len(data)
        crc32 = zlib.crc32
        max_size = self._max_message_size
        cache = self._header_cache
        while end - offset >= _PRELUDE_LENGTH:
            total, headers_length, prelude_crc = _PRELUDE_WITH_CRC.unpack_from(
                data, offset
            )
            crc = crc32(data[offset : offset + 8])
            if crc != prelude_crc:
                msg = (
                    f"prelude CRC mismatch in the message at stream offset "
                    f"{self._position}: expected 0x{prelude_crc:08x}, "
                    f"computed 0x{crc:08x}"
                )
                raise InvalidPreludeChecksumError(msg)
            if total > max_size or headers_length > MAX_HEADERS_LENGTH:
                msg = _too_large(total, headers_length, max_size, self._position)
                raise MessageTooLargeError(msg)
            if total < MIN_MESSAGE_SIZE or headers_length > total - MIN_MESSAGE_SIZE:
                msg = (
                    f"invalid prelude in the message at stream offset "
                    f"{self._position}: total_length {total} cannot hold the "
                    f"16 framing bytes plus a {headers_length}-byte headers section"
                )
                raise InvalidPreludeError(msg)
            if end - offset < total:
                return offset, total
            crc_offset = offset + total - 4
            crc = crc32(data[offset + 8 : crc_offset], crc)
            (message_crc,) = _U32.unpack_from(data, crc_offset)
            if crc != message_crc:
                msg = (
                    f"message CRC mismatch in the {total}-byte message at stream "
                    f"offset {self._position}: expected 0x{message_crc:08x}, "
                    f"computed 0x{crc:08x}"
                )
                raise InvalidMessageChecksumError(msg)
            payload_offset = offset + _PRELUDE_LENGTH + headers_length
            if headers_length:
                raw = data[offset + _PRELUDE_LENGTH : payload_offset].tobytes()
                headers = cache.get(raw)
                if headers is None:
                    try:
                        headers = _decode_headers(raw)
                    except InvalidHeaderError as exc:
                        msg = f"in the message at stream offset {self._position}: {exc}"
                        raise InvalidHeaderError(msg) from exc
                    if headers_length <= _CACHED_HEADERS_LENGTH:
                        if len(cache) >= _HEADER_CACHE_ENTRIES:
                            cache.clear()
                        cache[raw] = headers
                headers = headers.copy()
            else:
                headers = {}
            out.append(Message(headers, data[payload_offset:crc_offset].tobytes()))
            self._position += total
            offset = crc_offset + 4
        return offset, _PRELUDE_LENGTH


# Bounds of MessageDecoder's header cache: at most 16 sections of <= 1 KiB each.
_HEADER_CACHE_ENTRIES: Final = 16
_CACHED_HEADERS_LENGTH: Final = 1024


def _too_large(total: int, headers_length: int, max_size: int, position: int) -> str:
    if total > max_size:
        return (
            f"prelude of the message at stream offset {position} announces "
            f"{total} bytes, more than the limit of {max_size}"
        )
    return (
        f"prelude of the message at stream offset {position} announces a "
        f"{headers_length}-byte headers section, more than the limit of "
        f"{MAX_HEADERS_LENGTH}"
    )
