"""The generator: deterministic output, drift check, model-update scenario."""

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from codegen import generate

REPO = Path(__file__).resolve().parents[2]
MODEL = REPO / "model" / "polly-streaming.smithy.json"
PARTITIONS = REPO / "model" / "partitions.json"
GENERATED = REPO / "generated" / generate.PACKAGE
NS = "com.amazonaws.polly#"


def _run_generator(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "codegen.generate", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )


def test_checked_in_tree_matches_the_generator() -> None:
    result = _run_generator("--check")
    assert result.returncode == 0, result.stderr + result.stdout
    assert "matches" in result.stdout


def test_check_fails_on_a_hand_edited_file(tmp_path: Path) -> None:
    tree = tmp_path / generate.PACKAGE
    shutil.copytree(GENERATED, tree, ignore=shutil.ignore_patterns("__pycache__"))
    serde = tree / "serde.py"
    serde.write_text(serde.read_text().replace('"TextEvent"', '"TextEvnt"', 1))
    result = _run_generator("--check", "--out", str(tree))
    assert result.returncode == 1
    assert "serde.py: differs" in result.stderr
    assert "make generate" in result.stderr


def test_check_fails_on_a_stale_extra_file(tmp_path: Path) -> None:
    tree = tmp_path / generate.PACKAGE
    shutil.copytree(GENERATED, tree, ignore=shutil.ignore_patterns("__pycache__"))
    (tree / "leftover.py").write_text("")
    result = _run_generator("--check", "--out", str(tree))
    assert result.returncode == 1
    assert "leftover.py: not produced by the generator" in result.stderr


def test_output_is_byte_identical_across_runs_and_directories(tmp_path: Path) -> None:
    first, second = (
        tmp_path / "a" / generate.PACKAGE,
        tmp_path / "b" / "x" / generate.PACKAGE,
    )
    for out in (first, second):
        generate.generate(MODEL, PARTITIONS, out)
    assert generate.compare(first, second) == []
    assert generate.compare(GENERATED, first) == []
    for path in first.glob("*.py"):
        text = path.read_text()
        assert str(tmp_path) not in text
        assert "DO NOT EDIT" in text


def test_every_module_has_the_generated_header() -> None:
    for path in sorted(GENERATED.glob("*.py")):
        head = path.read_text().split("\n\n# Code generated", 1)
        assert len(head) == 2, f"{path.name} lacks the generated header"
        assert head[1].startswith(" by codegen/generate.py")


def _updated_model() -> dict[str, Any]:
    model: dict[str, Any] = json.loads(MODEL.read_text())
    shapes = model["shapes"]
    shapes[NS + "VoiceId"]["members"]["Zephyr"] = {
        "target": "smithy.api#Unit",
        "traits": {"smithy.api#enumValue": "Zephyr"},
    }
    shapes[NS + "TextEvent"]["members"]["SpeakingRate"] = {
        "target": NS + "SpeakingRate",
        "traits": {"smithy.api#documentation": "<p>Relative speaking rate.</p>"},
    }
    shapes[NS + "SpeakingRate"] = {"type": "integer"}
    shapes[NS + "VisemeEvent"] = {
        "type": "structure",
        "members": {
            "Viseme": {"target": NS + "Text"},
            "OffsetMillis": {"target": NS + "SpeakingRate"},
        },
        "traits": {"smithy.api#documentation": "<p>A viseme for lip sync.</p>"},
    }
    shapes[NS + "StartSpeechSynthesisStreamEventStream"]["members"]["VisemeEvent"] = {
        "target": NS + "VisemeEvent"
    }
    return model


def test_model_update_scenario_regenerates_and_type_checks(tmp_path: Path) -> None:
    """A newer model (new voice, new TextEvent member, new output event)."""
    model_path = tmp_path / "model.json"
    model_path.write_text(json.dumps(_updated_model(), indent=2))
    out = tmp_path / "pkg" / generate.PACKAGE
    generate.generate(model_path, PARTITIONS, out)

    probe = textwrap.dedent(
        """
        import json, sys
        import amazon_polly_streaming_generated as pkg
        assert pkg.__file__.startswith(sys.argv[1]), pkg.__file__
        from amazon_polly_streaming_generated import VoiceId, TextEvent
        from amazon_polly_streaming_generated.shapes import VisemeEvent
        from amazon_polly_streaming_generated import serde

        assert VoiceId("Zephyr") is VoiceId.ZEPHYR and VoiceId.ZEPHYR.is_known
        headers, payload = serde.serialize_text_event(TextEvent(text="hi", speaking_rate=3))
        assert json.loads(payload) == {"Text": "hi", "SpeakingRate": 3}, payload
        assert serde.deserialize_text_event(payload) == TextEvent(text="hi", speaking_rate=3)
        event = serde.deserialize_start_speech_synthesis_stream_event_stream(
            "VisemeEvent", b'{"Viseme":"p","OffsetMillis":120}')
        assert event == VisemeEvent(viseme="p", offset_millis=120), event
        assert "lip sync" in (VisemeEvent.__doc__ or "")
        print("ok")
        """
    )
    env = {"PYTHONPATH": str(out.parent), "PATH": "/usr/bin:/bin"}
    ran = subprocess.run(
        [sys.executable, "-c", probe, str(out.parent)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert ran.returncode == 0 and ran.stdout == "ok\n", ran.stderr

    mypy = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "-p",
            generate.PACKAGE,
        ],
        cwd=out.parent,
        env={"MYPYPATH": str(out.parent), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert mypy.returncode == 0, mypy.stdout + mypy.stderr


def test_old_client_tolerates_the_newer_service() -> None:
    """The checked-in package, fed what the updated model's service sends."""
    from amazon_polly_streaming_generated import UnknownEvent, VoiceId, serde

    voice = VoiceId("Zephyr")
    assert voice == "Zephyr" and not voice.is_known
    event = serde.deserialize_start_speech_synthesis_stream_event_stream(
        "VisemeEvent", b'{"Viseme":"p"}'
    )
    assert event == UnknownEvent(event_type="VisemeEvent", payload=b'{"Viseme":"p"}')


def test_unsupported_model_features_fail_loudly(tmp_path: Path) -> None:
    model = json.loads(MODEL.read_text())
    model["shapes"][NS + "TextEvent"]["members"]["When"] = {"target": NS + "When"}
    model["shapes"][NS + "When"] = {"type": "timestamp"}
    with pytest.raises(generate.GenerationError, match="TextEvent\\$When"):
        generate.render_package(
            json.dumps(model).encode(), json.loads(PARTITIONS.read_text())
        )


def test_docstrings_come_from_the_model_documentation() -> None:
    from amazon_polly_streaming_generated import operation, shapes

    assert (
        shapes.TextEvent.__doc__
        == "Contains text content to be synthesized into speech."
    )
    assert shapes.FlushStreamConfiguration.__doc__ == (
        "Configuration that controls when synthesized audio data is sent on the\n"
        "output stream.\n"
    )
    source = (GENERATED / "operation.py").read_text()
    assert "Synthesizes UTF-8 input, plain text, or SSML over a bidirectional" in source
    assert operation.START_SPEECH_SYNTHESIS_STREAM.path == "/v1/synthesisStream"


def test_operation_metadata_is_exact() -> None:
    from amazon_polly_streaming_generated import operation

    assert (
        operation.OperationMetadata(
            name="StartSpeechSynthesisStream",
            method="POST",
            path="/v1/synthesisStream",
            success_code=200,
            signing_name="polly",
            content_type="application/vnd.amazon.eventstream",
            event_stream_http=("h2",),
            input_event_stream=True,
            output_event_stream=True,
        )
        == operation.START_SPEECH_SYNTHESIS_STREAM
    )
    assert (operation.SERVICE_ID, operation.ENDPOINT_PREFIX, operation.API_VERSION) == (
        "Polly",
        "polly",
        "2016-06-10",
    )
