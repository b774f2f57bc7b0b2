"""Client and call settings: validated before any I/O, with the AWS environment.

Every public argument is checked here, at once, with a ``ValueError`` or
``TypeError`` that names it; the environment supplies what the caller did not
(``AWS_ENDPOINT_URL_POLLY`` / ``AWS_ENDPOINT_URL``, ``AWS_USE_FIPS_ENDPOINT``,
``AWS_USE_DUALSTACK_ENDPOINT``, ``AWS_CA_BUNDLE``, ``AWS_MAX_ATTEMPTS``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

from amazon_polly_streaming_generated.endpoints import (
    EndpointParameters,
    EndpointResolutionError,
    resolve_endpoint,
)
from amazon_polly_streaming_generated.enums import (
    Engine,
    LanguageCode,
    OutputFormat,
    VoiceId,
)
from amazon_polly_streaming_generated.shapes import StartSpeechSynthesisStreamInput

from .transport import Endpoint, TlsSettings

_REGION = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
_DIGITS = re.compile(r"[0-9]{1,6}")
_LEXICON = re.compile(r"[0-9A-Za-z]{1,20}")
_HEADER_SAFE = re.compile(r"[\x21-\x7e]+")
DEFAULT_SAMPLE_RATES: Mapping[str, str] = {
    "mp3": "24000",
    "ogg_vorbis": "24000",
    "pcm": "16000",
    "ogg_opus": "48000",
    "mulaw": "8000",
    "alaw": "8000",
}
"""``sample_rate=None`` means this rate for the format (Polly's generative defaults)."""


def _bool_env(environ: Mapping[str, str], name: str) -> bool | None:
    value = environ.get(name)
    if value is None or value == "":
        return None
    lowered = value.strip().lower()
    if lowered in {"true", "1"}:
        return True
    if lowered in {"false", "0"}:
        return False
    msg = f"{name} must be true or false, got {value!r}"
    raise ValueError(msg)


def check_str(name: str, value: object, *, allow_empty: bool = False) -> str:
    """A str argument, non-empty, without control characters."""
    if not isinstance(value, str):
        msg = f"{name} must be a str, got {type(value).__name__}"
        raise TypeError(msg)
    if not allow_empty and not value:
        msg = f"{name} must not be empty"
        raise ValueError(msg)
    return value


def check_header_value(name: str, value: object) -> str:
    """A value sent in an HTTP header: printable ASCII, no CR/LF (no injection)."""
    text = check_str(name, value)
    if not _HEADER_SAFE.fullmatch(text):
        msg = (
            f"{name} must be printable ASCII without spaces or control characters, "
            f"got {text!r}"
        )
        raise ValueError(msg)
    return text


def check_positive(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        msg = f"{name} must be a number of seconds, got {type(value).__name__}"
        raise TypeError(msg)
    if not 0 < value < float("inf"):  # also rejects NaN
        msg = f"{name} must be a positive, finite number of seconds, got {value!r}"
        raise ValueError(msg)
    return float(value)


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """What a client was configured with (resolved against the environment)."""

    region: str
    endpoint: Endpoint
    endpoint_url: str
    pool_size: int
    max_attempts: int
    connect_timeout: float
    first_byte_timeout: float
    read_timeout: float
    min_idle_connections: int = 0
    max_idle_time: float = 60.0
    rollover_after: float | None = 540.0


def client_config(
    *,
    region: object,
    pool_size: object,
    endpoint_url: object,
    use_fips: object,
    use_dualstack: object,
    ca_bundle: object,
    max_attempts: object,
    connect_timeout: object,
    first_byte_timeout: object,
    read_timeout: object,
    min_idle_connections: object = 0,
    max_idle_time: object = 60.0,
    rollover_after: object = 540.0,
    environ: Mapping[str, str] | None = None,
) -> ClientConfig:
    """Validate the client's arguments and resolve its endpoint (no I/O)."""
    env = os.environ if environ is None else environ
    region_name = check_str("region", region)
    if not _REGION.fullmatch(region_name):
        msg = f"region must look like 'eu-central-1', got {region_name!r}"
        raise ValueError(msg)
    if isinstance(pool_size, bool) or not isinstance(pool_size, int):
        msg = f"pool_size must be an int, got {type(pool_size).__name__}"
        raise TypeError(msg)
    if not 1 <= pool_size <= 1024:
        msg = f"pool_size must be between 1 and 1024, got {pool_size}"
        raise ValueError(msg)
    fips = _flag("use_fips", use_fips, env, "AWS_USE_FIPS_ENDPOINT")
    dualstack = _flag("use_dualstack", use_dualstack, env, "AWS_USE_DUALSTACK_ENDPOINT")
    url: str | None
    if endpoint_url is None:
        url = env.get("AWS_ENDPOINT_URL_POLLY") or env.get("AWS_ENDPOINT_URL") or None
    else:
        url = check_str("endpoint_url", endpoint_url)
    try:
        resolved = resolve_endpoint(
            EndpointParameters(
                region=region_name,
                use_fips=fips,
                use_dual_stack=dualstack,
                endpoint=url,
            )
        )
    except EndpointResolutionError as exc:
        raise ValueError(f"endpoint: {exc}") from None
    parts = urlsplit(resolved.url)
    if parts.scheme != "https" or not parts.hostname:
        msg = f"endpoint_url must be an https:// URL, got {resolved.url!r}"
        raise ValueError(msg)
    if parts.path not in {"", "/"} or parts.query or parts.fragment:
        msg = f"endpoint_url must have no path, query or fragment, got {resolved.url!r}"
        raise ValueError(msg)
    try:
        port = parts.port or 443
    except ValueError:
        msg = f"endpoint_url has an invalid port: {resolved.url!r}"
        raise ValueError(msg) from None
    bundle: str | None
    if ca_bundle is None:
        bundle = env.get("AWS_CA_BUNDLE") or None
    else:
        bundle = (
            os.fspath(cast(os.PathLike[str], ca_bundle))
            if isinstance(ca_bundle, os.PathLike)
            else check_str("ca_bundle", ca_bundle)
        )
    attempts = _max_attempts(max_attempts, env)
    if isinstance(min_idle_connections, bool) or not isinstance(
        min_idle_connections, int
    ):
        msg = (
            "min_idle_connections must be an int, "
            f"got {type(min_idle_connections).__name__}"
        )
        raise TypeError(msg)
    if not 0 <= min_idle_connections <= pool_size:
        msg = (
            f"min_idle_connections must be between 0 and pool_size ({pool_size}), "
            f"got {min_idle_connections}"
        )
        raise ValueError(msg)
    rollover = (
        None
        if rollover_after is None
        else check_positive("rollover_after", rollover_after)
    )
    return ClientConfig(
        region=region_name,
        endpoint=Endpoint(parts.hostname, port, TlsSettings(bundle)),
        endpoint_url=resolved.url,
        pool_size=pool_size,
        max_attempts=attempts,
        connect_timeout=check_positive("connect_timeout", connect_timeout),
        first_byte_timeout=check_positive("first_byte_timeout", first_byte_timeout),
        read_timeout=check_positive("read_timeout", read_timeout),
        min_idle_connections=min_idle_connections,
        max_idle_time=check_positive("max_idle_time", max_idle_time),
        rollover_after=rollover,
    )


def _flag(name: str, value: object, env: Mapping[str, str], variable: str) -> bool:
    if value is None:
        return bool(_bool_env(env, variable))
    if not isinstance(value, bool):
        msg = f"{name} must be a bool, got {type(value).__name__}"
        raise TypeError(msg)
    return value


def _max_attempts(value: object, env: Mapping[str, str]) -> int:
    if value is None:
        raw = env.get("AWS_MAX_ATTEMPTS")
        if not raw:
            return 3
        if not raw.isdigit() or int(raw) < 1:
            msg = f"AWS_MAX_ATTEMPTS must be a positive integer, got {raw!r}"
            raise ValueError(msg)
        return int(raw)
    if isinstance(value, bool) or not isinstance(value, int):
        msg = f"max_attempts must be an int, got {type(value).__name__}"
        raise TypeError(msg)
    if value < 1:
        msg = f"max_attempts must be at least 1, got {value}"
        raise ValueError(msg)
    return value


def synthesis_input(
    *,
    voice_id: object,
    engine: object,
    language_code: object,
    output_format: object,
    sample_rate: object,
    lexicon_names: object,
) -> StartSpeechSynthesisStreamInput:
    """Validate a call's synthesis parameters into the generated input shape.

    Values a newer service may accept (a new voice) pass; what only the service
    can judge (is this voice generative?) is left to it. What would break the
    request (CR/LF in a header, a non-numeric rate) fails here.
    """
    voice = check_header_value("voice_id", voice_id)
    engine_value = check_header_value("engine", engine)
    fmt = check_header_value("output_format", output_format)
    if fmt == OutputFormat.JSON:
        msg = "output_format 'json' (speech marks) is not supported when streaming"
        raise ValueError(msg)
    language: str | None = None
    if language_code is not None:
        language = check_header_value("language_code", language_code)
    rate: str
    if sample_rate is None:
        rate = DEFAULT_SAMPLE_RATES.get(fmt, "24000")
    else:
        rate = check_str("sample_rate", sample_rate)
        if not _DIGITS.fullmatch(rate):
            msg = f"sample_rate must be a string of digits like '24000', got {rate!r}"
            raise ValueError(msg)
    lexicons: list[str] | None = None
    if lexicon_names is not None:
        if isinstance(lexicon_names, str) or not isinstance(
            lexicon_names, list | tuple
        ):
            msg = "lexicon_names must be a list of str"
            raise TypeError(msg)
        lexicons = []
        for item in cast(list[object], lexicon_names):
            name = check_str("lexicon_names", item)
            if not _LEXICON.fullmatch(name):
                msg = f"lexicon_names: {name!r} must match [0-9A-Za-z]{{1,20}}"
                raise ValueError(msg)
            lexicons.append(name)
        if len(lexicons) > 5:
            msg = f"lexicon_names: at most 5, got {len(lexicons)}"
            raise ValueError(msg)
    return StartSpeechSynthesisStreamInput(
        engine=Engine(engine_value),
        output_format=OutputFormat(fmt),
        voice_id=VoiceId(voice),
        language_code=None if language is None else LanguageCode(language),
        lexicon_names=lexicons,
        sample_rate=rate,
    )
