"""Generated serializers and deserializers: every event shape round-trips."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from amazon_polly_streaming.eventstream import MessageDecoder, encode_message
from amazon_polly_streaming_generated import serde
from amazon_polly_streaming_generated.enums import (
    Engine,
    LanguageCode,
    OutputFormat,
    QuotaCode,
    ServiceCode,
    TextType,
    ValidationExceptionReason,
    VoiceId,
)
from amazon_polly_streaming_generated.errors import (
    ServiceException,
    ServiceFailureException,
    ServiceQuotaExceededException,
    ThrottlingException,
    ValidationException,
)
from amazon_polly_streaming_generated.shapes import (
    AudioEvent,
    CloseStreamEvent,
    FlushStreamConfiguration,
    StartSpeechSynthesisStreamInput,
    StreamClosedEvent,
    TextEvent,
    ThrottlingReason,
    UnknownEvent,
    ValidationExceptionField,
)

text = st.text(max_size=50)


def _enum[E](cls: type[E]) -> st.SearchStrategy[E]:
    return st.sampled_from(list(cls))  # type: ignore[arg-type]


text_events = st.builds(
    TextEvent,
    text=text,
    text_type=st.none() | _enum(TextType),
    flush_stream_configuration=st.none()
    | st.builds(FlushStreamConfiguration, force=st.none() | st.booleans()),
)
input_events = text_events | st.just(CloseStreamEvent())
output_events = st.builds(AudioEvent, audio_chunk=st.binary(max_size=300)) | st.builds(
    StreamClosedEvent, request_characters=st.none() | st.integers(0, 2**31)
)


def _frame(
    headers: serde.EventHeaders, payload: bytes
) -> tuple[dict[str, object], bytes]:
    """Through the binary codec and back, fed one byte at a time."""
    decoder = MessageDecoder()
    data = encode_message(headers, payload)
    messages = [m for i in range(len(data)) for m in decoder.feed(data[i : i + 1])]
    decoder.close()
    assert len(messages) == 1
    return dict(messages[0].headers), messages[0].payload


@given(input_events)
def test_input_events_round_trip(event: TextEvent | CloseStreamEvent) -> None:
    headers, payload = serde.serialize_start_speech_synthesis_stream_action_stream(
        event
    )
    got_headers, got_payload = _frame(headers, payload)
    assert got_headers == headers
    assert got_headers[":message-type"] == "event"
    assert got_headers[":content-type"] == "application/json"
    event_type = got_headers[":event-type"]
    assert isinstance(event_type, str)
    back = serde.deserialize_start_speech_synthesis_stream_action_stream(
        event_type, got_payload
    )
    assert back == event


@given(output_events)
def test_output_events_round_trip(event: AudioEvent | StreamClosedEvent) -> None:
    headers, payload = serde.serialize_start_speech_synthesis_stream_event_stream(event)
    got_headers, got_payload = _frame(headers, payload)
    event_type = got_headers[":event-type"]
    assert isinstance(event_type, str)
    back = serde.deserialize_start_speech_synthesis_stream_event_stream(
        event_type, got_payload
    )
    if isinstance(event, AudioEvent) and event.audio_chunk is None:
        assert back == AudioEvent(audio_chunk=b"")
    else:
        assert back == event


def test_text_event_exact_wire_form() -> None:
    headers, payload = serde.serialize_text_event(
        TextEvent(
            text="Hello, wörld.",
            text_type=TextType.SSML,
            flush_stream_configuration=FlushStreamConfiguration(force=True),
        )
    )
    assert headers == {
        ":message-type": "event",
        ":event-type": "TextEvent",
        ":content-type": "application/json",
    }
    assert (
        payload
        == (
            '{"Text":"Hello, wörld.","TextType":"ssml",'
            '"FlushStreamConfiguration":{"Force":true}}'
        ).encode()
    )
    assert serde.serialize_close_stream_event(CloseStreamEvent()) == (
        {
            ":message-type": "event",
            ":event-type": "CloseStreamEvent",
            ":content-type": "application/json",
        },
        b"{}",
    )


def test_audio_and_stream_closed_wire_form() -> None:
    assert serde.serialize_audio_event(AudioEvent(audio_chunk=b"\x00\xff")) == (
        {
            ":message-type": "event",
            ":event-type": "AudioEvent",
            ":content-type": "application/octet-stream",
        },
        b"\x00\xff",
    )
    assert serde.deserialize_stream_closed_event(b'{"RequestCharacters":31}') == (
        StreamClosedEvent(request_characters=31)
    )


errors = st.one_of(
    st.builds(ServiceFailureException, text),
    st.builds(
        ServiceQuotaExceededException,
        text,
        quota_code=_enum(QuotaCode),
        service_code=_enum(ServiceCode),
    ),
    st.builds(
        ThrottlingException,
        text,
        throttling_reasons=st.none()
        | st.lists(
            st.builds(
                ThrottlingReason, reason=st.none() | text, resource=st.none() | text
            ),
            max_size=3,
        ),
    ),
    st.builds(
        ValidationException,
        text,
        reason=_enum(ValidationExceptionReason),
        fields=st.none()
        | st.lists(
            st.builds(ValidationExceptionField, name=text, message=text), max_size=3
        ),
    ),
)


@given(errors, st.none() | st.uuids().map(str))
def test_exception_events_round_trip(
    error: ServiceException, request_id: str | None
) -> None:
    serializer = getattr(serde, "serialize_" + _snake(type(error).__name__))
    headers, payload = serializer(error)
    got_headers, got_payload = _frame(headers, payload)
    assert got_headers[":message-type"] == "exception"
    code = got_headers[":exception-type"]
    assert code == type(error).__name__
    assert isinstance(code, str)
    back = serde.deserialize_error(code, got_payload, request_id=request_id)
    assert type(back) is type(error)
    assert repr(back) == repr(error).replace(
        "request_id=None)", f"request_id={request_id!r})"
    )


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


def test_error_codes_with_namespace_or_suffix_map_to_the_class() -> None:
    body = b'{"message":"slow down","throttlingReasons":[{"reason":"RATE"}]}'
    for code in (
        "ThrottlingException",
        "com.amazonaws.polly#ThrottlingException",
        "ThrottlingException:http://internal.amazon.com/coral/",
    ):
        error = serde.deserialize_error(code, body, request_id="r-1")
        assert isinstance(error, ThrottlingException)
        assert error.throttling_reasons == [ThrottlingReason(reason="RATE")]
        assert (error.code, error.message, error.request_id) == (
            "ThrottlingException",
            "slow down",
            "r-1",
        )


def test_unknown_and_malformed_errors_keep_code_and_text() -> None:
    unknown = serde.deserialize_error("NewFancyException", b'{"Message":"new"}')
    assert type(unknown) is ServiceException
    assert (unknown.code, unknown.message) == ("NewFancyException", "new")
    assert str(unknown) == "NewFancyException: new"

    garbage = serde.deserialize_error("ValidationException", b"<html>oops</html>")
    assert type(garbage) is ServiceException
    assert (garbage.code, garbage.message) == (
        "ValidationException",
        "<html>oops</html>",
    )

    odd = serde.deserialize_error("ValidationException", b'{"message":"m","reason":7}')
    assert type(odd) is ServiceException and odd.code == "ValidationException"

    missing = serde.deserialize_error("ValidationException", b'{"message":"m"}')
    assert isinstance(missing, ValidationException)
    assert missing.reason == "" and not missing.reason.is_known


def test_service_exception_is_not_a_runtime_error() -> None:
    error = ValidationException(
        "bad voice",
        reason=ValidationExceptionReason.FIELD_VALIDATION_FAILED,
        request_id="abc",
    )
    assert not isinstance(error, RuntimeError)
    assert (error.code, error.fault, error.http_status) == (
        "ValidationException",
        "client",
        400,
    )
    assert str(error) == "ValidationException: bad voice (request id abc)"
    assert repr(error) == (
        "ValidationException(message='bad voice', "
        "reason=<ValidationExceptionReason.FIELD_VALIDATION_FAILED: 'fieldValidationFailed'>, "
        "fields=None, request_id='abc')"
    )
    assert ServiceQuotaExceededException.http_status == 402
    assert ServiceFailureException.fault == "server"


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"[1]", "StreamClosedEvent: expected an object, got list"),
        (
            b'{"RequestCharacters":"9"}',
            "StreamClosedEvent.RequestCharacters: expected an integer, got str",
        ),
        (b'{"RequestCharacters":true}', "expected an integer, got bool"),
        (b"{not json", "StreamClosedEvent: payload is not valid JSON"),
        (b"\xff\xfe", "StreamClosedEvent: payload is not valid JSON"),
    ],
)
def test_malformed_event_payloads_raise_clear_errors(
    payload: bytes, message: str
) -> None:
    with pytest.raises(serde.DeserializationError, match=message.replace(".", r"\.")):
        serde.deserialize_stream_closed_event(payload)


def test_unknown_output_event_is_surfaced() -> None:
    event = serde.deserialize_start_speech_synthesis_stream_event_stream("Future", b"x")
    assert event == UnknownEvent(event_type="Future", payload=b"x")


# HTTP header bindings -------------------------------------------------------

lexicons = st.lists(st.from_regex(r"[0-9A-Za-z]{1,20}", fullmatch=True), max_size=5)
inputs = st.builds(
    StartSpeechSynthesisStreamInput,
    engine=_enum(Engine),
    output_format=_enum(OutputFormat),
    voice_id=_enum(VoiceId),
    language_code=st.none() | _enum(LanguageCode),
    lexicon_names=st.none() | lexicons.filter(bool),
    sample_rate=st.none() | st.sampled_from(["8000", "16000", "24000"]),
)


@given(inputs)
def test_input_headers_round_trip(value: StartSpeechSynthesisStreamInput) -> None:
    headers = serde.serialize_start_speech_synthesis_stream_input_headers(value)
    assert all(name == name.lower() for name, _ in headers)
    assert (
        serde.deserialize_start_speech_synthesis_stream_input_headers(headers) == value
    )


def test_input_headers_exact_form() -> None:
    value = StartSpeechSynthesisStreamInput(
        engine=Engine.GENERATIVE,
        output_format=OutputFormat.MP3,
        voice_id=VoiceId.MATTHEW,
        language_code=LanguageCode.EN_US,
        lexicon_names=["a", "b"],
        sample_rate="24000",
    )
    assert serde.serialize_start_speech_synthesis_stream_input_headers(value) == [
        ("x-amzn-engine", "generative"),
        ("x-amzn-languagecode", "en-US"),
        ("x-amzn-lexiconnames", "a, b"),
        ("x-amzn-outputformat", "mp3"),
        ("x-amzn-samplerate", "24000"),
        ("x-amzn-voiceid", "Matthew"),
    ]
    minimal = StartSpeechSynthesisStreamInput(
        engine=Engine.GENERATIVE,
        output_format=OutputFormat.PCM,
        voice_id=VoiceId("New"),
    )
    assert serde.serialize_start_speech_synthesis_stream_input_headers(minimal) == [
        ("x-amzn-engine", "generative"),
        ("x-amzn-outputformat", "pcm"),
        ("x-amzn-voiceid", "New"),
    ]


def test_list_headers_joined_or_repeated_parse_the_same() -> None:
    base = [
        ("X-Amzn-Engine", "generative"),
        ("x-amzn-outputformat", "mp3"),
        ("x-amzn-VoiceId", "Joanna"),
    ]
    joined = serde.deserialize_start_speech_synthesis_stream_input_headers(
        [*base, ("x-amzn-lexiconnames", "one,two , three")]
    )
    repeated = serde.deserialize_start_speech_synthesis_stream_input_headers(
        [*base, ("x-amzn-lexiconnames", "one"), ("x-amzn-lexiconnames", "two, three")]
    )
    assert joined.lexicon_names == repeated.lexicon_names == ["one", "two", "three"]


def test_missing_required_header_is_named() -> None:
    with pytest.raises(serde.DeserializationError, match="x-amzn-VoiceId"):
        serde.deserialize_start_speech_synthesis_stream_input_headers(
            [("x-amzn-engine", "generative"), ("x-amzn-outputformat", "mp3")]
        )


@given(
    st.lists(
        st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=12),
        max_size=6,
    )
)
def test_header_list_quoting_round_trips_any_values(values: list[str]) -> None:
    assert serde.split_header_list([serde.quote_header_list(values)]) == values


def test_payload_is_json_text() -> None:
    _, payload = serde.serialize_text_event(TextEvent(text='quote " and \\ and \u2028'))
    assert json.loads(payload) == {"Text": 'quote " and \\ and \u2028'}
