"""Fixtures of the credential-chain tests.

Every test gets its own fakes on 127.0.0.1, an environment built from scratch
(``environ=``, never ``os.environ``) and ``tmp_path`` as the home directory:
nothing reads the machine's ``~/.aws`` or reaches AWS or a real metadata
service. All log records of ``amazon_polly_streaming.credentials`` are
captured at DEBUG and checked, after each test, for every secret it minted.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from amazon_polly_streaming.credentials import DefaultCredentialsChain
from tests.credentials.fakes import FakeClock, FakeServer, Handler, Secrets

LOGGER = "amazon_polly_streaming.credentials"


@pytest.fixture
def secrets() -> Secrets:
    return Secrets()


@pytest.fixture(autouse=True)
def _no_secret_in_logs(
    caplog: pytest.LogCaptureFixture, secrets: Secrets
) -> Iterator[None]:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    yield
    for phase in ("setup", "call", "teardown"):
        for record in caplog.get_records(phase):
            text = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                text += "".join(traceback.format_exception(record.exc_info[1]))
            secrets.assert_absent(text)


@pytest.fixture
def serve() -> Iterator[Callable[..., FakeServer]]:
    servers: list[FakeServer] = []

    def start(handler: Handler, **kwargs: Any) -> FakeServer:
        server = FakeServer(handler, **kwargs)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    (path / ".aws").mkdir(parents=True)
    return path


@pytest.fixture
def env(home: Path) -> dict[str, str]:
    """A clean environment: only HOME, and IMDS off unless a test turns it on."""
    return {"HOME": str(home), "AWS_EC2_METADATA_DISABLED": "true"}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_chain(
    env: dict[str, str], home: Path, clock: FakeClock
) -> Callable[..., DefaultCredentialsChain]:
    def make(**kwargs: Any) -> DefaultCredentialsChain:
        kwargs.setdefault("environ", env)
        kwargs.setdefault("home", home)
        kwargs.setdefault("clock", clock)
        return DefaultCredentialsChain(**kwargs)

    return make
