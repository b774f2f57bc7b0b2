"""Python names for Smithy names: deterministic, collision-checked."""

from __future__ import annotations

import keyword
import re

_WORD_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_NOT_IDENTIFIER = re.compile(r"[^0-9A-Za-z_]")


def snake_case(name: str) -> str:
    """``FlushStreamConfiguration`` -> ``flush_stream_configuration``."""
    out = _WORD_BOUNDARY.sub("_", _NOT_IDENTIFIER.sub("_", name)).lower()
    return out + "_" if keyword.iskeyword(out) else out


def constant_case(name: str) -> str:
    """``long-form``, ``cmn_CN``, ``Aditi`` -> ``LONG_FORM``, ``CMN_CN``, ``ADITI``."""
    out = _WORD_BOUNDARY.sub("_", _NOT_IDENTIFIER.sub("_", name)).upper()
    out = re.sub("_+", "_", out)
    return "_" + out if out[:1].isdigit() else out


def unique(names: list[str], where: str) -> list[str]:
    """Return ``names`` unchanged, or raise if two of them collide."""
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in seen:
            msg = f"{where}: two members map to the Python name {name!r}"
            raise ValueError(msg)
        seen[name] = i
    return names
