"""The README's bad-input table, row by row: each row is a test."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from emulated import client_for

from amazon_polly_streaming import (
    AwsCredentials,
    PollyStreamingClient,
    ValidationException,
)
from amazon_polly_streaming.testing import PollyEmulator

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
SECTION = README.split("## Bad input", 1)[1].split("\n## ", 1)[0]
ROWS = re.findall(
    r"^\| (client|call|service) \| `(\w+)` \| `([^`]*)`[^|]* \| `(\w+)`", SECTION, re.M
)
CREDS = AwsCredentials(access_key_id="AKIDEXAMPLE", secret_access_key="never-printed")
ERRORS: dict[str, type[Exception]] = {"TypeError": TypeError, "ValueError": ValueError}


def test_the_table_has_at_least_twenty_rows() -> None:
    assert len(ROWS) >= 20


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_POLLY",
        "AWS_MAX_ATTEMPTS",
        "AWS_USE_FIPS_ENDPOINT",
        "AWS_USE_DUALSTACK_ENDPOINT",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    ("where", "argument", "value", "error"),
    [r for r in ROWS if r[0] != "service"],
    ids=[f"{r[0]}-{r[1]}-{r[2]}" for r in ROWS if r[0] != "service"],
)
def test_row(where: str, argument: str, value: str, error: str) -> None:
    bad: Any = eval(value, {"__builtins__": {"float": float}})  # noqa: S307 - our README
    with pytest.raises(ERRORS[error], match=argument):
        if where == "client":
            options: dict[str, Any] = {"credentials": CREDS, argument: bad}
            region = options.pop("region", "eu-central-1")
            PollyStreamingClient(region, **options)
        else:
            client = PollyStreamingClient("eu-central-1", credentials=CREDS)
            call: dict[str, Any] = {
                "text": "Hello.",
                "voice_id": "Matthew",
                argument: bad,
            }
            client.start_speech_synthesis_stream(**call)


async def test_service_judged_row() -> None:
    (row,) = [r for r in ROWS if r[0] == "service"]
    assert row[1:] == ("voice_id", '"Aditi"', "ValidationException")
    async with PollyEmulator() as emu:
        client = client_for(emu)
        with pytest.raises(ValidationException) as raised:
            async for _ in client.start_speech_synthesis_stream(
                text="Hi.", voice_id="Aditi"
            ):
                pass
        assert raised.value.reason == "fieldValidationFailed"
        assert raised.value.fields is not None
        assert raised.value.fields[0].name == "VoiceId"
        PollyStreamingClient.close_idle_connections()
