"""The event-stream codec: known-answer vectors, round trips, framing, corruption."""

from __future__ import annotations

import array
import datetime as dt
import struct
import uuid
import zlib
from collections.abc import Iterable, Mapping, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from smithy_aws_event_stream import events as smithy_events

from amazon_polly_streaming.eventstream import (
    DEFAULT_MAX_MESSAGE_SIZE,
    MAX_HEADERS_LENGTH,
    MAX_PAYLOAD_LENGTH,
    EventStreamError,
    HeaderValue,
    Int8,
    Int16,
    Int64,
    InvalidHeaderError,
    InvalidMessageChecksumError,
    InvalidPreludeChecksumError,
    InvalidPreludeError,
    Message,
    MessageDecoder,
    MessageTooLargeError,
    Timestamp,
    TruncatedMessageError,
    encode_headers,
    encode_message,
)

# Hypothesis: enough examples to matter, few enough to keep the file fast; no
# deadline because shared CI machines have noisy timings.
FAST = settings(max_examples=150, deadline=None)
SLOW = settings(max_examples=40, deadline=None)


# ---------------------------------------------------------------------- helpers


def frame(headers: bytes, payload: bytes = b"") -> bytes:
    """Frame raw header bytes independently of the codec (for malformed input)."""
    total = 16 + len(headers) + len(payload)
    prelude = struct.pack(">II", total, len(headers))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    body = prelude + headers + payload
    return body + struct.pack(">I", zlib.crc32(body))


def prelude(total: int, headers_length: int) -> bytes:
    """A 12-byte prelude with a valid CRC announcing the given lengths."""
    head = struct.pack(">II", total, headers_length)
    return head + struct.pack(">I", zlib.crc32(head))


def decode(data: bytes, cuts: Iterable[int] = ()) -> list[Message]:
    """Decode a complete stream fed in pieces split at ``cuts``, then close."""
    messages: list[Message] = []
    decode_into(data, cuts, messages)
    return messages


def decode_into(data: bytes, cuts: Iterable[int], out: list[Message]) -> None:
    """Like :func:`decode`, but append each message to ``out`` as it arrives, so
    the caller still sees them if a later piece raises."""
    decoder = MessageDecoder()
    start = 0
    for cut in [*sorted(cuts), len(data)]:
        out += decoder.feed(data[start:cut])
        start = cut
    decoder.close()


def typed(headers: Mapping[str, HeaderValue]) -> list[tuple[str, type, HeaderValue]]:
    """Headers with each value's exact type, in order: ``==`` ignores Int8 vs int."""
    return [(name, type(value), value) for name, value in headers.items()]


def assert_same(actual: Sequence[Message], expected: Sequence[Message]) -> None:
    assert len(actual) == len(expected)
    for got, want in zip(actual, expected, strict=True):
        assert got.payload == want.payload
        assert typed(got.headers) == typed(want.headers)


# ------------------------------------------------------------------- strategies

utf8_text = st.characters(codec="utf-8")
names = st.text(utf8_text, min_size=1, max_size=16).filter(
    lambda name: len(name.encode()) <= 255
)


def ints(cls: type[int], bits: int) -> st.SearchStrategy[HeaderValue]:
    low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return st.one_of(st.sampled_from([low, high, 0, -1]), st.integers(low, high)).map(
        cls
    )


# Every wire type, boundaries included; values kept small so that any few of them
# fit in one 128 KiB headers section (see test_long_values_round_trip for big ones).
VALUE_STRATEGIES: dict[str, st.SearchStrategy[HeaderValue]] = {
    "bool": st.booleans(),
    "byte": ints(Int8, 8),
    "short": ints(Int16, 16),
    "integer": ints(int, 32),
    "long": ints(Int64, 64),
    "byte_array": st.binary(max_size=64),
    "string": st.text(utf8_text, max_size=64),
    "timestamp": ints(Timestamp, 64),
    "uuid": st.uuids(),
}
values = st.one_of(*VALUE_STRATEGIES.values())
header_maps = st.dictionaries(names, values, max_size=6)
messages = st.builds(Message, header_maps, st.binary(max_size=300))


# ------------------------------------------------------------ known answers

EMPTY = bytes.fromhex("00000010 00000000 05c248eb 7d98c8ff")

ONE_STRING_HEADER = bytes.fromhex(
    "0000002b"  # total_length 43
    "00000019"  # headers_length 25
    "b75869bc"  # prelude CRC
    "0b"  # name length 11
    "3a6576656e742d74797065"  # ":event-type"
    "07"  # type 7: string
    "000a"  # value length 10
    "417564696f4576656e74"  # "AudioEvent"
    "6869"  # payload "hi"
    "e12fffc1"  # message CRC
)

EVERY_TYPE_HEADERS: dict[str, HeaderValue] = {
    "t": True,
    "f": False,
    "b": Int8(-2),
    "s": Int16(-300),
    "i": 123456789,
    "l": Int64(-(2**40)),
    "ba": b"\x00\xff",
    "st": "h\u00e9llo",
    "ts": Timestamp(1700000000123),
    "u": uuid.UUID("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"),
}
EVERY_TYPE = bytes.fromhex(
    "00000067"  # total_length 103
    "00000054"  # headers_length 84
    "2236e1d9"  # prelude CRC
    "0174 00"  # "t" bool true
    "0166 01"  # "f" bool false
    "0162 02 fe"  # "b" byte -2
    "0173 03 fed4"  # "s" short -300
    "0169 04 075bcd15"  # "i" integer 123456789
    "016c 05 ffffff0000000000"  # "l" long -2**40
    "026261 06 0002 00ff"  # "ba" byte_array 00 ff
    "027374 07 0006 68c3a96c6c6f"  # "st" string "héllo"
    "027473 08 0000018bcfe5687b"  # "ts" timestamp 1700000000123
    "0175 09 0f1e2d3c4b5a69788796a5b4c3d2e1f0"  # "u" uuid
    "010203"  # payload
    "c67417f4"  # message CRC
)

VECTORS = [
    pytest.param({}, b"", EMPTY, id="empty"),
    pytest.param({":event-type": "AudioEvent"}, b"hi", ONE_STRING_HEADER, id="string"),
    pytest.param(EVERY_TYPE_HEADERS, b"\x01\x02\x03", EVERY_TYPE, id="every-type"),
]


@pytest.mark.parametrize(("headers", "payload", "wire"), VECTORS)
def test_known_answer_encode(
    headers: dict[str, HeaderValue], payload: bytes, wire: bytes
) -> None:
    assert encode_message(headers, payload) == wire
    assert Message(headers, payload).encode() == wire


@pytest.mark.parametrize(("headers", "payload", "wire"), VECTORS)
def test_known_answer_decode(
    headers: dict[str, HeaderValue], payload: bytes, wire: bytes
) -> None:
    decoder = MessageDecoder()
    [message] = decoder.feed(wire)
    assert message == Message(headers, payload)
    assert typed(message.headers) == typed(headers)
    assert decoder.pending == 0
    decoder.close()


def test_decoded_value_types() -> None:
    [message] = MessageDecoder().feed(EVERY_TYPE)
    assert [type(value) for value in message.headers.values()] == [
        bool,
        bool,
        Int8,
        Int16,
        int,
        Int64,
        bytes,
        str,
        Timestamp,
        uuid.UUID,
    ]


# ------------------------------------------------------------------ round trips


@pytest.mark.parametrize("kind", list(VALUE_STRATEGIES))
@FAST
@given(data=st.data())
def test_every_header_type_round_trips(kind: str, data: st.DataObject) -> None:
    value = data.draw(VALUE_STRATEGIES[kind])
    name = data.draw(names)
    [message] = decode(encode_message({name: value}))
    assert typed(message.headers) == [(name, type(value), value)]


@FAST
@given(headers=header_maps, payload=st.binary(max_size=2000))
def test_messages_round_trip(headers: dict[str, HeaderValue], payload: bytes) -> None:
    [message] = decode(encode_message(headers, payload))
    assert_same([message], [Message(headers, payload)])
    assert list(message.headers) == list(headers)  # order is preserved


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("", id="empty-string"),
        pytest.param(b"", id="empty-bytes"),
        pytest.param("x" * 65535, id="string-65535"),
        pytest.param("\u00e9" * 32767 + "x", id="string-65535-bytes-of-utf8"),
        pytest.param(b"\xff" * 65535, id="bytes-65535"),
        pytest.param("\U0001f600\u00e9\u4e2d", id="unicode"),
        pytest.param(Int8(-128), id="int8-min"),
        pytest.param(Int8(127), id="int8-max"),
        pytest.param(Int16(-32768), id="int16-min"),
        pytest.param(Int16(32767), id="int16-max"),
        pytest.param(-(2**31), id="int32-min"),
        pytest.param(2**31 - 1, id="int32-max"),
        pytest.param(Int64(-(2**63)), id="int64-min"),
        pytest.param(Int64(2**63 - 1), id="int64-max"),
        pytest.param(Timestamp(-(2**63)), id="timestamp-min"),
        pytest.param(Timestamp(2**63 - 1), id="timestamp-max"),
    ],
)
def test_boundary_values_round_trip(value: HeaderValue) -> None:
    [message] = decode(encode_message({"h": value}))
    assert typed(message.headers) == [("h", type(value), value)]


@SLOW
@given(size=st.integers(30_000, 65_535), text=st.booleans())
def test_long_values_round_trip(size: int, text: bool) -> None:
    value: HeaderValue = "y" * size if text else bytes(size)
    [message] = decode(encode_message({"long": value}))
    assert message.headers == {"long": value}


def test_longest_name_round_trips() -> None:
    name = "\u00e9" * 127 + "n"  # 255 bytes of UTF-8
    [message] = decode(encode_message({name: True}))
    assert message.headers == {name: True}


def test_int_subclasses_and_bytearray_are_accepted() -> None:
    class Flag(int):
        pass

    wire = encode_message({"a": Flag(5), "b": bytearray(b"xy")})  # type: ignore[dict-item]
    [message] = decode(wire)
    assert typed(message.headers) == [("a", int, 5), ("b", bytes, b"xy")]


def test_memoryview_payload_is_encoded() -> None:
    samples = array.array("h", [1, -1, 300])
    wire = encode_message({}, memoryview(samples))
    assert decode(wire)[0].payload == samples.tobytes()


# ---------------------------------------------------------------------- framing


@FAST
@given(batch=st.lists(messages, max_size=5), data=st.data())
def test_any_split_decodes_the_same(batch: list[Message], data: st.DataObject) -> None:
    stream = b"".join(message.encode() for message in batch)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=12))
    assert_same(decode(stream, cuts), batch)


@SLOW
@given(batch=st.lists(messages, min_size=1, max_size=3))
def test_one_byte_at_a_time(batch: list[Message]) -> None:
    stream = b"".join(message.encode() for message in batch)
    assert_same(decode(stream, range(1, len(stream))), batch)


def test_pending_counts_bytes_of_the_incomplete_message() -> None:
    wire = encode_message({"k": "v"}, b"payload")
    decoder = MessageDecoder()
    assert decoder.feed(wire + wire[:5]) != []
    assert decoder.pending == 5
    assert decoder.feed(wire[5:20]) == []
    assert decoder.pending == 20
    [message] = decoder.feed(wire[20:])
    assert message.payload == b"payload"
    assert decoder.pending == 0
    assert decoder.feed(b"") == []
    decoder.close()


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_feed_accepts_buffers_and_copies_what_it_keeps(kind: type) -> None:
    wire = encode_message({"k": "v"}, b"abcdef")
    decoder = MessageDecoder()
    first = bytearray(wire[:10])
    assert decoder.feed(kind(first)) == []
    first[:] = bytes(10)  # the caller reuses its buffer
    [message] = decoder.feed(kind(bytearray(wire[10:])))
    assert message == Message({"k": "v"}, b"abcdef")


def test_feed_accepts_wide_memoryviews() -> None:
    wire = encode_message({}, b"\x01\x02\x03\x04")  # 20 bytes: 10 shorts
    shorts = array.array("h")
    shorts.frombytes(wire)
    [message] = MessageDecoder().feed(memoryview(shorts))
    assert message.payload == b"\x01\x02\x03\x04"


def test_many_distinct_and_large_header_sections() -> None:
    # More distinct sections than the decoder caches, some too large to cache,
    # each repeated: every message must still get its own headers.
    batch = [
        Message({"n": Int16(i), "pad": "z" * (i * 100)}, bytes([i])) for i in range(25)
    ] * 3
    stream = b"".join(message.encode() for message in batch)
    assert_same(decode(stream), batch)
    assert_same(decode(stream, range(0, len(stream), 777)), batch)


def test_repeated_headers_are_not_shared_between_messages() -> None:
    wire = encode_message({"k": "v"}, b"1")
    first, second = MessageDecoder().feed(wire + wire)
    assert first.headers is not second.headers
    assert isinstance(first.headers, dict)
    first.headers["k"] = "changed"
    assert second.headers == {"k": "v"}


# ---------------------------------------------------------------------- corruption


@FAST
@given(batch=st.lists(messages, min_size=1, max_size=3), data=st.data())
def test_any_single_corrupt_byte_is_an_error(
    batch: list[Message], data: st.DataObject
) -> None:
    stream = bytearray(b"".join(message.encode() for message in batch))
    index = data.draw(st.integers(0, len(stream) - 1), label="index")
    stream[index] ^= data.draw(st.integers(1, 255), label="mask")
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=4))

    received: list[Message] = []
    with pytest.raises(EventStreamError):
        # close() is reached only if a length field made the decoder wait.
        decode_into(bytes(stream), cuts, received)
    # Only messages entirely before the corrupt byte may have been delivered,
    # and exactly as they were sent.
    intact = 0
    offset = 0
    for message in batch:
        offset += len(message.encode())
        if offset > index:
            break
        intact += 1
    assert len(received) <= intact
    assert_same(received, batch[: len(received)])


@pytest.mark.parametrize(
    ("index", "error"),
    [
        (0, InvalidPreludeChecksumError),  # total_length
        (5, InvalidPreludeChecksumError),  # headers_length
        (9, InvalidPreludeChecksumError),  # prelude CRC
        (12, InvalidMessageChecksumError),  # headers
        (len(EVERY_TYPE) - 5, InvalidMessageChecksumError),  # payload
        (len(EVERY_TYPE) - 1, InvalidMessageChecksumError),  # message CRC
    ],
)
def test_corruption_is_reported_by_region(index: int, error: type[Exception]) -> None:
    corrupt = bytearray(EVERY_TYPE)
    corrupt[index] ^= 0x40
    with pytest.raises(error, match=r"expected 0x[0-9a-f]{8}, computed 0x[0-9a-f]{8}"):
        MessageDecoder().feed(corrupt)


def test_prelude_crc_is_checked_before_lengths() -> None:
    # A corrupted total_length announcing 4 GiB: the prelude CRC, not the size
    # limit, must catch it.
    corrupt = b"\xff" + EMPTY[1:]
    with pytest.raises(InvalidPreludeChecksumError):
        MessageDecoder().feed(corrupt)


@SLOW
@given(raw=st.binary(max_size=80))
def test_arbitrary_header_bytes_decode_canonically_or_fail_cleanly(raw: bytes) -> None:
    # Valid CRCs around arbitrary header bytes: the header parser must either
    # succeed, in which case re-encoding gives back the same bytes (every wire
    # type maps to exactly one Python type), or raise InvalidHeaderError.
    try:
        [message] = MessageDecoder().feed(frame(raw, b"p"))
    except InvalidHeaderError:
        return
    assert encode_headers(message.headers) == raw
    assert message.payload == b"p"


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        pytest.param(b"\x01a\x0a", "unknown value type 10", id="unknown-type"),
        pytest.param(b"\x00\x00", "empty name", id="empty-name"),
        pytest.param(
            b"\x05ab", "5-byte name and type byte run past", id="name-past-end"
        ),
        pytest.param(b"\x01a", "1-byte name", id="no-type-byte"),
        pytest.param(b"\x01a\x02", "byte value", id="truncated-byte"),
        pytest.param(b"\x01a\x03\x00", "short value", id="truncated-short"),
        pytest.param(b"\x01a\x04\x00\x00", "integer value", id="truncated-integer"),
        pytest.param(b"\x01a\x05" + bytes(7), "long value", id="truncated-long"),
        pytest.param(b"\x01a\x08" + bytes(7), "timestamp", id="truncated-timestamp"),
        pytest.param(b"\x01a\x09" + bytes(15), "uuid value", id="truncated-uuid"),
        pytest.param(b"\x01a\x07\x00", "string value", id="truncated-length"),
        pytest.param(b"\x01a\x07\x00\x05abc", "needs 7 bytes", id="string-past-end"),
        pytest.param(b"\x01a\x06\x00\x02a", "byte_array value", id="bytes-past-end"),
        pytest.param(b"\x02\xc3(\x00", "name is not valid UTF-8", id="bad-utf8-name"),
        pytest.param(b"\x01a\x07\x00\x01\xff", "not valid UTF-8", id="bad-utf8-value"),
        pytest.param(b"\x01a\x00\x01a\x01", "'a' occurs more than once", id="dup"),
    ],
)
def test_malformed_headers(raw: bytes, match: str) -> None:
    with pytest.raises(InvalidHeaderError, match=match):
        MessageDecoder().feed(frame(raw))


@pytest.mark.parametrize(
    ("total", "headers_length"),
    [(0, 0), (15, 0), (16, 1), (20, 5), (100, 0xFFFFFFFF)],
)
def test_impossible_lengths_are_invalid_preludes(
    total: int, headers_length: int
) -> None:
    data = prelude(total, headers_length) + bytes(max(total - 12, 0))
    with pytest.raises((InvalidPreludeError, MessageTooLargeError)) as info:
        MessageDecoder().feed(data)
    if headers_length <= MAX_HEADERS_LENGTH:
        assert info.type is InvalidPreludeError
        assert f"total_length {total}" in str(info.value)


# ------------------------------------------------------------------- size limits


@SLOW
@given(
    limit=st.integers(16, 4096),
    excess=st.integers(1, 2**32 - 1),
    cut=st.integers(0, 11),
)
def test_oversized_messages_fail_once_the_prelude_arrives(
    limit: int, excess: int, cut: int
) -> None:
    total = min(limit + excess, 2**32 - 1)
    decoder = MessageDecoder(max_message_size=limit)
    head = prelude(total, 0)
    assert decoder.feed(head[:cut]) == []
    with pytest.raises(MessageTooLargeError, match=f"announces {total} bytes"):
        decoder.feed(head[cut:] + bytes(64))
    assert decoder.pending <= 12


def test_default_limit_allows_the_largest_aws_message() -> None:
    assert DEFAULT_MAX_MESSAGE_SIZE == 16 * 1024 * 1024 + 128 * 1024 + 16
    decoder = MessageDecoder()
    assert decoder.feed(prelude(DEFAULT_MAX_MESSAGE_SIZE, MAX_HEADERS_LENGTH)) == []
    decoder = MessageDecoder()
    with pytest.raises(MessageTooLargeError):
        decoder.feed(prelude(DEFAULT_MAX_MESSAGE_SIZE + 1, 0))


def test_oversized_headers_section_is_rejected() -> None:
    length = MAX_HEADERS_LENGTH + 1
    with pytest.raises(MessageTooLargeError, match=f"{length}-byte headers section"):
        MessageDecoder().feed(prelude(length + 16, length))


def test_message_at_the_limit_is_accepted() -> None:
    wire = encode_message({}, bytes(100))
    [message] = MessageDecoder(max_message_size=len(wire)).feed(wire)
    assert message.payload == bytes(100)


def test_max_message_size_must_fit_an_empty_message() -> None:
    with pytest.raises(ValueError, match="at least 16"):
        MessageDecoder(max_message_size=15)
    assert MessageDecoder(max_message_size=16).max_message_size == 16


# --------------------------------------------------------------- decoder lifecycle


@pytest.mark.parametrize("cut", [1, 11, 12, 20])
def test_close_mid_message_is_truncation(cut: int) -> None:
    decoder = MessageDecoder()
    decoder.feed(ONE_STRING_HEADER[:cut])
    with pytest.raises(TruncatedMessageError, match=f"got {cut} of its"):
        decoder.close()


def test_errors_poison_the_decoder() -> None:
    decoder = MessageDecoder()
    with pytest.raises(InvalidMessageChecksumError) as first:
        decoder.feed(EMPTY[:-1] + b"\x00")
    with pytest.raises(InvalidMessageChecksumError, match="unusable") as again:
        decoder.feed(EMPTY)  # valid bytes do not revive it
    assert again.value.__cause__ is first.value
    with pytest.raises(InvalidMessageChecksumError, match="unusable"):
        decoder.close()


def test_truncation_poisons_the_decoder() -> None:
    decoder = MessageDecoder()
    decoder.feed(EMPTY[:3])
    with pytest.raises(TruncatedMessageError):
        decoder.close()
    with pytest.raises(TruncatedMessageError, match="unusable"):
        decoder.feed(EMPTY[3:])


def test_close_is_idempotent_and_final() -> None:
    decoder = MessageDecoder()
    assert len(decoder.feed(EMPTY + EMPTY)) == 2
    decoder.close()
    decoder.close()
    with pytest.raises(RuntimeError, match="after close"):
        decoder.feed(EMPTY)


def test_error_hierarchy() -> None:
    for error in (
        InvalidPreludeChecksumError,
        InvalidPreludeError,
        InvalidMessageChecksumError,
        InvalidHeaderError,
        MessageTooLargeError,
        TruncatedMessageError,
    ):
        assert issubclass(error, EventStreamError)
    assert issubclass(EventStreamError, ValueError)


# ------------------------------------------------------------- encoder validation


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (Int8(128), "Int8 value 128 is outside the 8-bit range -128..127"),
        (Int8(-129), "Int8 value -129"),
        (Int16(32768), "Int16 value 32768 is outside the 16-bit range"),
        (Int16(-32769), "Int16 value -32769"),
        (2**31, "value 2147483648 is outside the 32-bit range"),
        (-(2**31) - 1, "value -2147483649"),
        (Int64(2**63), "Int64 value 9223372036854775808 is outside the 64-bit"),
        (Int64(-(2**63) - 1), "Int64 value"),
        (Timestamp(2**63), "Timestamp value"),
        ("\u00e9" * 32768, "string value is 65536 bytes"),
        (b"\x00" * 65536, "byte_array value is 65536 bytes"),
    ],
)
def test_invalid_values_name_the_header(value: HeaderValue, match: str) -> None:
    with pytest.raises(ValueError, match=match) as info:
        encode_message({"my-header": value})
    assert "'my-header'" in str(info.value)


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("", "header name '' is empty"),
        ("n" * 256, "is 256 bytes of UTF-8"),
        ("\u00e9" * 128, "is 256 bytes of UTF-8"),
    ],
)
def test_invalid_names(name: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        encode_headers({name: True})


def test_unsupported_types_are_type_errors() -> None:
    with pytest.raises(TypeError, match="header 'f': unsupported value type float"):
        encode_headers({"f": 1.5})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="header name 7 is a int"):
        encode_headers({7: True})  # type: ignore[dict-item]


def test_headers_section_limit() -> None:
    # Each header costs 5 bytes (name length, 1-byte name, type, value length)
    # plus its value.
    second = MAX_HEADERS_LENGTH - (5 + 65535) - 5
    fits = {"a": "x" * 65535, "b": "y" * second}
    assert len(encode_headers(fits)) == MAX_HEADERS_LENGTH
    with pytest.raises(ValueError, match="headers section is 131073 bytes"):
        encode_headers({"a": "x" * 65535, "b": "y" * (second + 1)})


def test_payload_limit() -> None:
    assert len(encode_message({}, bytes(MAX_PAYLOAD_LENGTH))) == MAX_PAYLOAD_LENGTH + 16
    with pytest.raises(ValueError, match=f"payload is {MAX_PAYLOAD_LENGTH + 1} bytes"):
        encode_message({}, bytes(MAX_PAYLOAD_LENGTH + 1))


# -------------------------------------------------------------------- timestamps


def test_timestamp_datetime_conversions() -> None:
    moment = dt.datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=dt.UTC)
    assert Timestamp.from_datetime(moment) == 1700000000123
    assert Timestamp(1700000000123).to_datetime() == moment
    paris = dt.timezone(dt.timedelta(hours=1))
    assert Timestamp.from_datetime(moment.astimezone(paris)) == 1700000000123
    # Sub-millisecond parts round down, also before the epoch.
    assert Timestamp.from_datetime(moment + dt.timedelta(microseconds=999)) == (
        1700000000123
    )
    before = dt.datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC)
    assert Timestamp.from_datetime(before) == -1
    with pytest.raises(ValueError, match="naive"):
        Timestamp.from_datetime(dt.datetime(2020, 1, 1))


@FAST
@given(moment=st.datetimes(timezones=st.just(dt.UTC)))
def test_timestamp_round_trips_at_millisecond_precision(moment: dt.datetime) -> None:
    moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    stamp = Timestamp.from_datetime(moment)
    assert stamp.to_datetime() == moment
    [message] = decode(encode_message({"ts": stamp}))
    value = message.headers["ts"]
    assert isinstance(value, Timestamp)
    assert value.to_datetime() == moment


def test_reprs() -> None:
    assert repr(Int8(1)) == "Int8(1)"
    assert repr(Int16(2)) == "Int16(2)"
    assert repr(Int64(3)) == "Int64(3)"
    assert repr(Timestamp(4)) == "Timestamp(4)"
    text = repr(Message({"k": "v"}, bytes(1000)))
    assert "1000 bytes" in text
    assert len(text) < 200


# --------------------------------------------- differential: smithy-aws-event-stream

# smithy's encoder caps str/bytes values at 32767 bytes and models timestamps as
# datetimes, so compare on the types and sizes both accept.


def to_smithy(value: HeaderValue) -> smithy_events.HEADER_VALUE:
    """The value smithy's encoder sends with the same wire type as ours."""
    if isinstance(value, Int8):
        return smithy_events.Byte(value)
    if isinstance(value, Int16):
        return smithy_events.Short(value)
    if isinstance(value, Int64):
        return smithy_events.Long(value)
    return value


shared_values = st.one_of(
    *(strategy for kind, strategy in VALUE_STRATEGIES.items() if kind != "timestamp")
)


@FAST
@given(
    headers=st.dictionaries(names, shared_values, max_size=6),
    payload=st.binary(max_size=300),
)
def test_wire_format_matches_smithy(
    headers: dict[str, HeaderValue], payload: bytes
) -> None:
    theirs = {name: to_smithy(value) for name, value in headers.items()}
    wire = encode_message(headers, payload)
    assert wire == smithy_events.EventMessage(headers=theirs, payload=payload).encode()
    event = smithy_events.Event.decode(_Reader(wire))
    assert event is not None
    assert event.message.payload == payload
    assert event.message.headers == headers


class _Reader:
    """Minimal ``read(size)`` source for smithy's synchronous decoder."""

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            size = len(self._data)
        chunk, self._data = self._data[:size], self._data[size:]
        return chunk.tobytes()


def test_good_messages_before_corruption_are_returned_then_the_error() -> None:
    good = [
        encode_message({":event-type": "AudioEvent"}, bytes([i]) * 10) for i in range(2)
    ]
    bad = bytearray(encode_message({":event-type": "AudioEvent"}, b"x" * 10))
    bad[-1] ^= 0xFF  # message CRC
    decoder = MessageDecoder()
    messages = decoder.feed(b"".join(good) + bytes(bad))
    assert [m.payload for m in messages] == [b"\x00" * 10, b"\x01" * 10]
    with pytest.raises(
        InvalidMessageChecksumError, match="message CRC mismatch"
    ) as first:
        decoder.close()
    assert first.value.__cause__ is None  # the original error, raised where it belongs
    with pytest.raises(
        InvalidMessageChecksumError, match="unusable after an earlier error"
    ):
        decoder.feed(b"")
