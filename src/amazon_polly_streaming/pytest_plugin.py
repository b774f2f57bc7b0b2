"""pytest plugin (entry point ``pytest11``): the ``polly_emulator`` fixture.

It imports the emulator only when a test asks for the fixture, so installing
this package without the ``emulator`` extra never breaks a test run.

::

    def test_my_voice_bot(polly_emulator):
        client = PollyStreamingClient(
            "us-east-1", endpoint_url=polly_emulator.endpoint_url,
            ca_bundle=polly_emulator.ca_path, ...)

The emulator runs on its own event loop in a thread, so the fixture serves
synchronous tests and any async test runner alike; it is stopped, and its
test CA deleted, when the test ends.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .testing import PollyEmulator


@pytest.fixture
def polly_emulator() -> Generator[PollyEmulator]:
    """A running ``PollyEmulator`` with default settings, for one test."""
    from .testing import PollyEmulator  # noqa: PLC0415 - only when asked for

    with PollyEmulator().running_in_thread() as emulator:
        yield emulator
