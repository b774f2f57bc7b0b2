"""A user's strict codebase: imports the public names and uses them typed.

Checked by mypy --strict and pyright strict (make typecheck); imported by
tests/unit/test_public_api.py so that it also runs.
"""

from amazon_polly_streaming import (
    Engine,
    OutputFormat,
    ServiceException,
    ServiceQuotaExceededException,
    TextEvent,
    TextType,
    ThrottlingException,
    ValidationException,
    VoiceId,
)
from amazon_polly_streaming.eventstream import Message, MessageDecoder, encode_message
from amazon_polly_streaming.exceptions import ServiceFailureException


def describe(error: ServiceException) -> str:
    """What a caller logs for a service error."""
    match error:
        case ValidationException(reason=reason):
            return f"invalid request ({reason}): {error.message}"
        case ServiceQuotaExceededException(quota_code=code):
            return f"quota {code} exceeded"
        case ThrottlingException() | ServiceFailureException():
            return f"retry later: {error.code}"
        case _:
            return f"{error.code}: {error.message}"


def voice(name: str) -> VoiceId:
    """Any voice name is accepted: one newer than this client too."""
    return VoiceId(name)


def first_event(text: str) -> TextEvent:
    """A TextEvent, built the way a user builds one."""
    return TextEvent(text=text, text_type=TextType.TEXT)


def frame(payload: bytes) -> list[Message]:
    """Encode then decode one message with the codec."""
    decoder = MessageDecoder()
    messages = decoder.feed(encode_message({":message-type": "event"}, payload))
    decoder.close()
    return messages


DEFAULTS: tuple[Engine, OutputFormat] = (Engine.GENERATIVE, OutputFormat.MP3)
