"""Bad arguments fail at once, naming the argument, before any I/O."""

from __future__ import annotations

import math
from typing import Any

import pytest

from amazon_polly_streaming import AwsCredentials, PollyStreamingClient

CREDS = AwsCredentials(access_key_id="AKIDEXAMPLE", secret_access_key="secret-value")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_POLLY",
        "AWS_USE_FIPS_ENDPOINT",
        "AWS_USE_DUALSTACK_ENDPOINT",
        "AWS_CA_BUNDLE",
        "AWS_MAX_ATTEMPTS",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    ("kwargs", "error", "names"),
    [
        ({"region": 42}, TypeError, "region"),
        ({"region": ""}, ValueError, "region"),
        ({"region": "eu central 1"}, ValueError, "region"),
        ({"region": "us-east-1\r\nx: y"}, ValueError, "region"),
        ({"pool_size": 0}, ValueError, "pool_size"),
        ({"pool_size": 2.5}, TypeError, "pool_size"),
        ({"pool_size": True}, TypeError, "pool_size"),
        ({"endpoint_url": "http://polly.example"}, ValueError, "endpoint_url"),
        ({"endpoint_url": "https://polly.example/path"}, ValueError, "endpoint_url"),
        ({"endpoint_url": 7}, TypeError, "endpoint_url"),
        ({"use_fips": "yes"}, TypeError, "use_fips"),
        ({"use_fips": True, "endpoint_url": "https://x.example"}, ValueError, "FIPS"),
        ({"max_attempts": 0}, ValueError, "max_attempts"),
        ({"connect_timeout": 0}, ValueError, "connect_timeout"),
        ({"connect_timeout": math.nan}, ValueError, "connect_timeout"),
        ({"read_timeout": "5"}, TypeError, "read_timeout"),
        ({"credentials": "AKID:secret"}, TypeError, "credentials"),
    ],
)
def test_constructor_arguments(
    kwargs: dict[str, Any], error: type[Exception], names: str
) -> None:
    arguments = {"region": "eu-central-1", "credentials": CREDS, **kwargs}
    region = arguments.pop("region")
    with pytest.raises(error, match=names):
        PollyStreamingClient(region, **arguments)


def test_environment_values_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "many")
    with pytest.raises(ValueError, match="AWS_MAX_ATTEMPTS"):
        PollyStreamingClient("eu-central-1", credentials=CREDS)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "4")
    monkeypatch.setenv("AWS_USE_FIPS_ENDPOINT", "maybe")
    with pytest.raises(ValueError, match="AWS_USE_FIPS_ENDPOINT"):
        PollyStreamingClient("eu-central-1", credentials=CREDS)


def test_endpoint_resolution_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert PollyStreamingClient("eu-central-1").endpoint_url == (
        "https://polly.eu-central-1.amazonaws.com"
    )
    assert PollyStreamingClient("us-east-1", use_fips=True).endpoint_url == (
        "https://polly-fips.us-east-1.amazonaws.com"
    )
    assert PollyStreamingClient("cn-north-1").endpoint_url == (
        "https://polly.cn-north-1.amazonaws.com.cn"
    )
    monkeypatch.setenv("AWS_ENDPOINT_URL_POLLY", "https://127.0.0.1:8443")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "5")
    client = PollyStreamingClient("eu-central-1")
    assert client.endpoint_url == "https://127.0.0.1:8443"
    assert client.config.endpoint.port == 8443
    assert client.config.max_attempts == 5


@pytest.mark.parametrize(
    ("kwargs", "error", "names"),
    [
        ({"text": 42}, TypeError, "text"),
        ({"text": ""}, ValueError, "text"),
        ({"voice_id": ""}, ValueError, "voice_id"),
        ({"voice_id": 3}, TypeError, "voice_id"),
        ({"voice_id": "Matthew\r\nx-amz-security-token: evil"}, ValueError, "voice_id"),
        ({"engine": "generative\n"}, ValueError, "engine"),
        ({"output_format": "json"}, ValueError, "output_format"),
        ({"output_format": "mp3 "}, ValueError, "output_format"),
        ({"sample_rate": 24000}, TypeError, "sample_rate"),
        ({"sample_rate": "24k"}, ValueError, "sample_rate"),
        ({"language_code": "en-US\r\n"}, ValueError, "language_code"),
        ({"lexicon_names": "one"}, TypeError, "lexicon_names"),
        ({"lexicon_names": ["a"] * 6}, ValueError, "lexicon_names"),
        ({"lexicon_names": ["bad name"]}, ValueError, "lexicon_names"),
        ({"text_type": "html"}, ValueError, "text_type"),
        ({"use_pool": "no"}, TypeError, "use_pool"),
    ],
)
def test_call_arguments(
    kwargs: dict[str, Any], error: type[Exception], names: str
) -> None:
    client = PollyStreamingClient("eu-central-1", credentials=CREDS)
    arguments: dict[str, Any] = {"text": "Hello.", "voice_id": "Matthew", **kwargs}
    with pytest.raises(error, match=names):
        client.start_speech_synthesis_stream(**arguments)


def test_no_secret_in_repr() -> None:
    client = PollyStreamingClient("eu-central-1", credentials=CREDS)
    assert "secret-value" not in repr(client)
    assert "secret-value" not in repr(CREDS)
