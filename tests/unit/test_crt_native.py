"""awscrt's HTTP/2 stream reset, found in its symbol table (barge-in)."""

from __future__ import annotations

from pathlib import Path

import _awscrt  # type: ignore[import-not-found]
import pytest

from amazon_polly_streaming import _crt_native


def test_the_reset_is_found_in_this_awscrt() -> None:
    # awscrt's PyPI wheels keep their symbol table; a stripped build
    # would fall back to closing the connection (tested in test_voice_agent).
    assert _crt_native.available()
    offsets = _crt_native._elf_functions(
        _awscrt.__file__, {"PyInit__awscrt", "aws_http2_stream_reset", "nope"}
    )
    assert set(offsets) == {"PyInit__awscrt", "aws_http2_stream_reset"}


def test_a_file_that_is_not_elf_has_no_functions(tmp_path: Path) -> None:
    path = tmp_path / "not-elf.so"
    path.write_bytes(b"MZ" + bytes(100))
    assert _crt_native._elf_functions(str(path), {"PyInit__awscrt"}) == {}


def test_only_awscrt_streams_are_reset() -> None:
    assert _crt_native.reset_stream(object()) is False


def test_the_environment_can_turn_it_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMAZON_POLLY_STREAMING_NATIVE_RESET", "0")
    assert _crt_native._resolve() is None
