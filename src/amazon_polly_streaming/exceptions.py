"""Errors of amazon-polly-streaming.

Service errors are generated from Polly's model (``generated/``): the service
reported them, by an exception event mid-stream or by a non-2xx response.
``ServiceException`` is deliberately *not* a ``RuntimeError``, so that callers
can tell "Polly said no" from "we could not talk to Polly" (transport failures,
which are ``RuntimeError`` subclasses).
"""

from amazon_polly_streaming_generated.errors import (
    ERRORS_BY_CODE,
    ServiceException,
    ServiceFailureException,
    ServiceQuotaExceededException,
    ThrottlingException,
    ValidationException,
)

__all__ = [
    "ERRORS_BY_CODE",
    "ServiceException",
    "ServiceFailureException",
    "ServiceQuotaExceededException",
    "ThrottlingException",
    "ValidationException",
]
