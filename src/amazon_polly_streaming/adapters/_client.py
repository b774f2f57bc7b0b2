"""What both adapters do with their client arguments."""

from __future__ import annotations

import os
from typing import Any

from ..client import PollyStreamingClient


def client_from(
    client: PollyStreamingClient | None,
    arguments: dict[str, Any],
    **defaults: Any,
) -> PollyStreamingClient:
    """The given client, or one made from ``arguments`` (not both).

    ``arguments`` left ``None`` are not passed; ``defaults`` go to a client
    made here (never to a given one). The region comes from the arguments,
    else ``AWS_REGION`` / ``AWS_DEFAULT_REGION``.
    """
    given = [name for name, value in arguments.items() if value is not None]
    if client is not None:
        if given:
            msg = (
                "pass either client or the arguments to make one, "
                f"not both (got client and {', '.join(given)})"
            )
            raise TypeError(msg)
        if not isinstance(client, PollyStreamingClient):  # pyright: ignore[reportUnnecessaryIsInstance] - untyped callers
            msg = f"client must be a PollyStreamingClient, got {type(client).__name__}"
            raise TypeError(msg)
        return client
    options = {**defaults, **{k: v for k, v in arguments.items() if v is not None}}
    region = options.pop("region", None)
    if region is None:
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region is None:
        msg = "region is required (or AWS_REGION), or pass a client"
        raise ValueError(msg)
    return PollyStreamingClient(region, **options)
