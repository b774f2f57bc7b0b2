"""Amazon Polly bidirectional streaming synthesis for asyncio.

The typed shapes, enums, errors, serializers and endpoint resolver are
generated from Polly's Smithy model (package ``amazon_polly_streaming_generated``);
this package is the hand-written layer on top: the client (``client.py``), its
connection pool (``pool.py``), the awscrt transport (``transport.py``), signing
(``signing.py``), the sans-I/O protocol (``protocol.py``) and event-stream
codec (``eventstream.py``), the credential chain (``credentials.py``), and the
local emulator (``testing/``).
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

from ._version import __version__
from .client import AudioStream, PollyStreamingClient, SynthesisStream
from .credentials import (
    AwsCredentials,
    CredentialsProvider,
    DefaultCredentialsChain,
    NoCredentialsError,
    StaticCredentialsProvider,
)
from .errors import (
    ConnectionClosedError,
    ConnectTimeoutError,
    ResponseTimeoutError,
    StreamInterruptedError,
    TlsError,
    TransportError,
    UnexpectedResponseError,
)
from .exceptions import (
    ServiceException,
    ServiceFailureException,
    ServiceQuotaExceededException,
    ThrottlingException,
    ValidationException,
)
from .metrics import StreamMetrics
from .text import FLUSH
from .wav import WavFileWriter, as_wav, wav_header

__all__ = [
    "FLUSH",
    "AudioEvent",
    "AudioStream",
    "AwsCredentials",
    "CloseStreamEvent",
    "ConnectTimeoutError",
    "ConnectionClosedError",
    "CredentialsProvider",
    "DefaultCredentialsChain",
    "Engine",
    "FlushStreamConfiguration",
    "LanguageCode",
    "NoCredentialsError",
    "OutputFormat",
    "PollyStreamingClient",
    "ResponseTimeoutError",
    "ServiceException",
    "ServiceFailureException",
    "ServiceQuotaExceededException",
    "StaticCredentialsProvider",
    "StreamClosedEvent",
    "StreamInterruptedError",
    "StreamMetrics",
    "SynthesisStream",
    "TextEvent",
    "TextType",
    "ThrottlingException",
    "TlsError",
    "TransportError",
    "UnexpectedResponseError",
    "UnknownEvent",
    "ValidationException",
    "VoiceId",
    "WavFileWriter",
    "__version__",
    "as_wav",
    "wav_header",
]
