"""The short version of `make soak`: a few hundred streams, resources flat."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

SOAK = Path(__file__).resolve().parents[2] / "scripts" / "soak.py"


async def test_a_short_soak_stays_flat() -> None:
    spec = importlib.util.spec_from_file_location("soak_script", SOAK)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["soak_script"] = module
    spec.loader.exec_module(module)
    report = await module.soak(250)
    assert report["unexpected"] == {}
    assert report["emulator_internal_errors"] == []
    start, end = report["start"], report["end"]
    assert end["fds"] <= start["fds"] + 2
    assert end["threads"] <= start["threads"]
    assert end["idle_connections"] == 0
    assert report["ok"], report
    outcomes = report["outcomes"]
    assert outcomes["complete:ok"] > 0
    assert any(k.startswith("fault:") for k in outcomes)
    assert (
        outcomes.get("cancel:cancelled", 0) + outcomes.get("cancel:finished-first", 0)
        > 0
    )
