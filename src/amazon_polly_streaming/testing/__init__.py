"""A local Amazon Polly streaming emulator, for tests, demos and benchmarks.

``PollyEmulator`` serves ``StartSpeechSynthesisStream`` over HTTP/2 + TLS on
loopback, with strict SigV4 and event-signature checks, Polly's validation
and synthesis semantics, real audio in every output format, fault injection
and a request log. Also: ``python -m amazon_polly_streaming.testing`` (or the
``polly-emulator`` command) runs one from the shell, and the pytest fixture
``polly_emulator`` (registered by this package's ``pytest11`` entry point)
hands one to a test. Needs the ``emulator`` extra
(``pip install amazon-polly-streaming[emulator]``).
"""

from .emulator import PollyEmulator, TestCredentials
from .faults import Fault, FaultKind, FaultPlan, FaultRule, RequestInfo
from .log import ConnectionRecord, InboundEvent, RequestLog, RequestRecord
from .voices import GENERATIVE_VOICES

__all__ = [
    "GENERATIVE_VOICES",
    "ConnectionRecord",
    "Fault",
    "FaultKind",
    "FaultPlan",
    "FaultRule",
    "InboundEvent",
    "PollyEmulator",
    "RequestInfo",
    "RequestLog",
    "RequestRecord",
    "TestCredentials",
]
