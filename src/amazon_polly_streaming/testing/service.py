"""Polly's service semantics, sans-I/O: request validation and one stream's synthesis.

The HTTP/2 server (``server.py``) feeds a :class:`SynthesisSession` the decoded
input events and sends what it returns; nothing here touches a socket or a
clock, so every rule below is unit-testable:

* the request: engine ``generative`` only; a voice from the generative table;
  an output format the model lists, except ``json``; a sample rate valid for
  that format; a language code from the model's enum; at most 5 lexicon names
  matching the model's pattern. Anything else is a ``ValidationException``
  (reason ``fieldValidationFailed``, naming the field);
* plain text is buffered and synthesized sentence by sentence: a sentence ends
  at ``.``, ``!``, ``?`` (or their CJK forms), possibly followed by closing
  quotes or brackets, when whitespace or the end of the buffered text follows;
  ``FlushStreamConfiguration.Force`` synthesizes whatever is buffered at once;
  ``CloseStreamEvent`` synthesizes the rest, then the stream ends with
  ``StreamClosedEvent``;
* an SSML event is one whole document (``<speak>...</speak>``), parsed and
  synthesized at once; malformed SSML is a ``ValidationException``;
* ``RequestCharacters`` counts the characters synthesized: plain text as
  sent, less the whitespace around sentences (so whitespace keep-alive events
  cost nothing), SSML as its text content without the markup;
* audio: deterministic synthetic speech (``audio.py``) in one continuous
  encoded stream per request, sent as several audio events per sentence.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field

from amazon_polly_streaming_generated.enums import (
    Engine,
    LanguageCode,
    OutputFormat,
    TextType,
    ValidationExceptionReason,
)
from amazon_polly_streaming_generated.errors import ValidationException
from amazon_polly_streaming_generated.shapes import (
    StartSpeechSynthesisStreamInput,
    TextEvent,
    ValidationExceptionField,
)

from .audio import FORMATS, AudioEncoder, open_encoder, synthesize_pcm

MAX_LEXICONS = 5
_LEXICON_NAME = re.compile(r"[0-9A-Za-z]{1,20}")
_SENTENCE_END = re.compile(r"[.!?\u3002\uff01\uff1f]+[\"'\u201d\u2019)\]]*(?=\s|$)")


def field_error(name: str, message: str) -> ValidationException:
    """A ``ValidationException`` for one invalid field, as Polly reports it."""
    return ValidationException(
        f"1 validation error detected: Value at '{name}' failed to satisfy constraint: "
        f"{message}",
        reason=ValidationExceptionReason.FIELD_VALIDATION_FAILED,
        fields=[ValidationExceptionField(name=name, message=message)],
    )


def invalid_event(message: str) -> ValidationException:
    """A ``ValidationException`` for an inbound event the service cannot take."""
    return ValidationException(
        message, reason=ValidationExceptionReason.INVALID_INBOUND_EVENT
    )


@dataclass(frozen=True, slots=True)
class SynthesisRequest:
    """A validated request: what to synthesize, how."""

    voice_id: str
    output_format: str
    sample_rate: int
    language_code: str | None
    lexicon_names: tuple[str, ...]


def validate_request(
    request: StartSpeechSynthesisStreamInput, voices: Mapping[str, str]
) -> SynthesisRequest:
    """Check the request's parameters as the service does.

    :raises ValidationException: naming the first invalid field.
    """
    if request.engine != Engine.GENERATIVE:
        raise field_error(
            "Engine",
            f"engine '{request.engine}' is not supported for streaming synthesis; "
            "use 'generative'",
        )
    if request.voice_id not in voices:
        raise field_error(
            "VoiceId",
            f"voice '{request.voice_id}' does not support the generative engine",
        )
    output_format = str(request.output_format)
    if output_format == OutputFormat.JSON or output_format not in FORMATS:
        raise field_error(
            "OutputFormat",
            f"output format '{output_format}' is not supported for streaming "
            f"synthesis; use one of {', '.join(sorted(FORMATS))}",
        )
    spec = FORMATS[output_format]
    rate = request.sample_rate if request.sample_rate is not None else spec.default
    if rate not in spec.sample_rates:
        raise field_error(
            "SampleRate",
            f"sample rate '{rate}' is not valid for {output_format}; "
            f"use one of {', '.join(spec.sample_rates)}",
        )
    language = request.language_code
    if language is not None and not LanguageCode(language).is_known:
        raise field_error(
            "LanguageCode", f"language code '{language}' is not supported"
        )
    lexicons = tuple(request.lexicon_names or ())
    if len(lexicons) > MAX_LEXICONS:
        raise field_error(
            "LexiconNames", f"at most {MAX_LEXICONS} lexicons, got {len(lexicons)}"
        )
    for name in lexicons:
        if not _LEXICON_NAME.fullmatch(name):
            raise field_error(
                "LexiconNames", f"lexicon name '{name}' must match [0-9A-Za-z]{{1,20}}"
            )
    return SynthesisRequest(
        voice_id=str(request.voice_id),
        output_format=output_format,
        sample_rate=int(rate),
        language_code=None if language is None else str(language),
        lexicon_names=lexicons,
    )


def split_sentences(text: str) -> tuple[list[str], str]:
    """Complete sentences at the start of ``text``, and the unfinished rest."""
    sentences: list[str] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        sentences.append(text[start : match.end()])
        start = match.end()
    return sentences, text[start:]


def ssml_text(document: str) -> str:
    """The text an SSML document speaks.

    :raises ValidationException: if it is not one well-formed ``<speak>`` element.
    """
    try:
        root = ET.fromstring(document)  # noqa: S314 - trusted test traffic, expat guards entities
    except ET.ParseError as exc:
        raise field_error("Text", f"invalid SSML: {exc}") from None
    if root.tag.rsplit("}", 1)[-1] != "speak":
        raise field_error("Text", "invalid SSML: the root element must be <speak>")
    return "".join(root.itertext())


@dataclass(slots=True)
class SynthesisSession:
    """One stream's synthesis: feed input events, get encoded audio back.

    Each call returns the audio chunks (already split into event-sized
    pieces) that the event made ready, in order.
    """

    request: SynthesisRequest
    ms_per_character: float
    audio_event_bytes: int
    request_characters: int = 0
    closed: bool = False
    _buffer: str = ""
    _encoder: AudioEncoder | None = field(default=None, repr=False)

    def _encode(self, text: str, *, final: bool = False) -> list[bytes]:
        if self._encoder is None:
            self._encoder = open_encoder(
                self.request.output_format, self.request.sample_rate
            )
        out = bytearray()
        spoken = text.strip()
        if spoken:
            self.request_characters += len(spoken)
            pcm = synthesize_pcm(
                spoken,
                self.request.voice_id,
                self.request.sample_rate,
                ms_per_character=self.ms_per_character,
            )
            out += self._encoder.encode(pcm)
            out += self._encoder.flush()
        if final:
            out += self._encoder.finish()
        size = self.audio_event_bytes
        return [bytes(out[i : i + size]) for i in range(0, len(out), size)]

    def on_text(self, event: TextEvent) -> list[bytes]:
        """A ``TextEvent`` arrived.

        :raises ValidationException: for a TextEvent after the close, or bad SSML.
        """
        if self.closed:
            raise invalid_event("TextEvent received after CloseStreamEvent")
        chunks: list[bytes] = []
        if event.text_type == TextType.SSML:
            # An SSML document is self-contained: what was buffered goes first.
            chunks += self._encode(self._buffer)
            self._buffer = ""
            chunks += self._encode(ssml_text(event.text))
            return chunks
        sentences, self._buffer = split_sentences(self._buffer + event.text)
        for sentence in sentences:
            chunks += self._encode(sentence)
        force = event.flush_stream_configuration
        if force is not None and force.force:
            chunks += self._encode(self._buffer)
            self._buffer = ""
        return chunks

    def on_close(self) -> list[bytes]:
        """``CloseStreamEvent`` arrived: synthesize the rest and end the audio.

        :raises ValidationException: if the stream was already closed.
        """
        if self.closed:
            raise invalid_event("CloseStreamEvent received twice")
        self.closed = True
        rest, self._buffer = self._buffer, ""
        return self._encode(rest, final=True)


def expected_audio(
    text_events: list[str] | str,
    *,
    voice_id: str,
    output_format: str = "mp3",
    sample_rate: int | None = None,
    ms_per_character: float,
    force_each: bool = False,
) -> bytes:
    """The exact audio the emulator sends for these plain-text events, closed."""
    rate = (
        sample_rate if sample_rate is not None else int(FORMATS[output_format].default)
    )
    session = SynthesisSession(
        SynthesisRequest(voice_id, output_format, rate, None, ()),
        ms_per_character=ms_per_character,
        audio_event_bytes=1 << 30,
    )
    texts = [text_events] if isinstance(text_events, str) else text_events
    out = bytearray()
    for text in texts:
        flush = None
        if force_each:
            from amazon_polly_streaming_generated.shapes import (  # noqa: PLC0415
                FlushStreamConfiguration,
            )

            flush = FlushStreamConfiguration(force=True)
        for chunk in session.on_text(
            TextEvent(text=text, flush_stream_configuration=flush)
        ):
            out += chunk
    for chunk in session.on_close():
        out += chunk
    return bytes(out)
