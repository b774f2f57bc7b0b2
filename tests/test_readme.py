"""Every Python example in the README runs, against the emulator, as a user would run it.

Each ```python block is a whole program; it runs in its own process with only
the environment the emulator prints (endpoint, CA bundle, test credentials),
as `make demo` does, and must exit 0.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from amazon_polly_streaming.testing import PollyEmulator

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


@pytest.fixture(scope="module")
def emulator() -> Iterator[PollyEmulator]:
    with PollyEmulator(region="eu-central-1").running_in_thread() as emu:
        yield emu


def test_the_readme_has_examples() -> None:
    assert len(BLOCKS) >= 8


@pytest.mark.parametrize(
    "source", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))]
)
def test_readme_example_runs(
    source: str, emulator: PollyEmulator, tmp_path: Path
) -> None:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        **emulator.env(),
    }
    before = len(emulator.requests)
    result = subprocess.run(
        [sys.executable, "-c", source],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    if "PollyEmulator(" not in source:  # that example runs its own emulator
        assert len(emulator.requests) > before  # it really talked to the emulator
    assert emulator.log.internal_errors == []
    if "hello.mp3" in source:
        assert (tmp_path / "hello.mp3").read_bytes() == emulator.expected_audio(
            "hello world, how are you today", voice_id="Matthew"
        )
