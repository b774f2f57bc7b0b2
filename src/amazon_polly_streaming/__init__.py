"""Amazon Polly bidirectional streaming synthesis for asyncio.

The typed shapes, enums, errors, serializers and endpoint resolver are
generated from Polly's Smithy model (package ``amazon_polly_streaming_generated``);
this package is the hand-written layer on top: the event-stream codec, and (as
it lands) signing, transport, connection pool, credentials and the client.
"""

from amazon_polly_streaming_generated.enums import (
    Engine,
    LanguageCode,
    OutputFormat,
    TextType,
    VoiceId,
)
from amazon_polly_streaming_generated.shapes import (
    AudioEvent,
    CloseStreamEvent,
    FlushStreamConfiguration,
    StreamClosedEvent,
    TextEvent,
    UnknownEvent,
)

from .exceptions import (
    ServiceException,
    ServiceFailureException,
    ServiceQuotaExceededException,
    ThrottlingException,
    ValidationException,
)

__version__ = "0.1.0"

__all__ = [
    "AudioEvent",
    "CloseStreamEvent",
    "Engine",
    "FlushStreamConfiguration",
    "LanguageCode",
    "OutputFormat",
    "ServiceException",
    "ServiceFailureException",
    "ServiceQuotaExceededException",
    "StreamClosedEvent",
    "TextEvent",
    "TextType",
    "ThrottlingException",
    "UnknownEvent",
    "ValidationException",
    "VoiceId",
    "__version__",
]
