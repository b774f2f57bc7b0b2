"""The model trim step: reproducible, complete closure, overlay merge rules."""

import json
from pathlib import Path
from typing import Any

import pytest
from smithy_python.model import ModelError

from codegen import trim
from codegen.overlay_from_botocore import draft_overlay

REPO = Path(__file__).resolve().parents[2]
MODEL = REPO / "model" / "polly-streaming.smithy.json"
UPSTREAM = next((REPO / "model" / "upstream").glob("*.json"))
OVERLAYS = sorted((REPO / "model" / "overlay").glob("*.json"))
OVERLAY = REPO / "model" / "overlay" / "start-speech-synthesis-stream.json"
REFERENCE = REPO.parent / "shared" / "reference"
SERVICE = "com.amazonaws.polly#Parrot_v1"
NS = "com.amazonaws.polly#"


def _trim(overlays: list[tuple[str, bytes]] | None = None) -> dict[str, Any]:
    trimmed, _ = trim.trim_model(
        UPSTREAM.read_bytes(),
        overlays
        if overlays is not None
        else [(p.name, p.read_bytes()) for p in OVERLAYS],
        upstream_name=UPSTREAM.name,
    )
    return trimmed


def test_checked_in_model_is_reproducible_from_its_inputs() -> None:
    assert trim.dump(_trim()) == MODEL.read_text()


def test_model_keeps_the_service_traits_and_one_operation() -> None:
    model = json.loads(MODEL.read_text())
    service = model["shapes"][SERVICE]
    assert service["operations"] == [{"target": NS + "StartSpeechSynthesisStream"}]
    traits = service["traits"]
    assert traits["aws.auth#sigv4"] == {"name": "polly"}
    assert traits["aws.protocols#restJson1"] == {"eventStreamHttp": ["h2"]}
    assert len(traits["smithy.rules#endpointTests"]["testCases"]) == 49
    assert set(traits["smithy.rules#endpointRuleSet"]["parameters"]) == {
        "Region",
        "UseDualStack",
        "UseFIPS",
        "Endpoint",
    }


def test_model_is_exactly_the_closure_of_the_service() -> None:
    shapes = json.loads(MODEL.read_text())["shapes"]
    assert trim.closure(shapes, SERVICE) == sorted(shapes)
    # Nothing of the other operations survives; the new and shared shapes do.
    assert NS + "SynthesizeSpeech" not in shapes
    assert NS + "Lexicon" not in shapes
    for name in ("TextEvent", "AudioEvent", "VoiceId", "ServiceFailureException"):
        assert NS + name in shapes
    formats = {
        m["traits"]["smithy.api#enumValue"]
        for m in shapes[NS + "OutputFormat"]["members"].values()
    }
    assert formats == {"json", "mp3", "ogg_vorbis", "pcm", "ogg_opus", "mulaw", "alaw"}


def test_provenance_records_input_hashes() -> None:
    provenance = json.loads(MODEL.read_text())["metadata"][trim.PROVENANCE_KEY]
    assert provenance["upstream"]["file"] == UPSTREAM.name
    assert provenance["overlays"] == [
        {"file": p.name, "sha256": trim._sha256(p.read_bytes())} for p in OVERLAYS
    ]


def _overlay(shapes: dict[str, Any]) -> list[tuple[str, bytes]]:
    base = json.loads(OVERLAY.read_text())
    base["shapes"].update(shapes)
    return [("o.json", json.dumps(base).encode())]


def test_enum_overlay_adds_members_and_rejects_redefinition() -> None:
    member = {"target": "smithy.api#Unit", "traits": {"smithy.api#enumValue": "Zed"}}
    trimmed = _trim(
        _overlay({NS + "VoiceId": {"type": "enum", "members": {"Zed": member}}})
    )
    assert trimmed["shapes"][NS + "VoiceId"]["members"]["Zed"] == member

    clash = {"target": "smithy.api#Unit", "traits": {"smithy.api#enumValue": "other"}}
    with pytest.raises(trim.TrimError, match=r"VoiceId\$Amy"):
        _trim(_overlay({NS + "VoiceId": {"type": "enum", "members": {"Amy": clash}}}))


def test_upstream_wins_over_a_stale_overlay_shape_with_a_notice() -> None:
    stale = {"type": "string", "traits": {"smithy.api#pattern": "x"}}
    _, notices = trim.trim_model(
        UPSTREAM.read_bytes(), _overlay({NS + "SampleRate": stale})
    )
    assert notices == [
        f"{NS}SampleRate: upstream defines it; the overlay's version is ignored"
    ]


def test_missing_operation_and_bad_apply_are_clear_errors() -> None:
    with pytest.raises(trim.TrimError, match="NoSuchOperation"):
        trim.trim_model(UPSTREAM.read_bytes(), [], ["NoSuchOperation"])
    bad = _overlay({NS + "Nope": {"type": "apply", "traits": {}}})
    with pytest.raises(trim.TrimError, match="Nope"):
        trim.trim_model(UPSTREAM.read_bytes(), bad)


def test_a_dangling_reference_fails_the_model_loader() -> None:
    broken = {
        NS + "TextEvent": {
            "type": "structure",
            "members": {"Text": {"target": NS + "DoesNotExist"}},
        }
    }
    upstream = json.loads(UPSTREAM.read_text())
    overlay = json.loads(OVERLAY.read_text())
    overlay["shapes"].update(broken)
    with pytest.raises(ModelError):
        trim.trim_model(
            json.dumps(upstream).encode(), [("o", json.dumps(overlay).encode())]
        )


def test_partitions_keep_every_region_without_descriptions() -> None:
    partitions = json.loads((REPO / "model" / "partitions.json").read_text())
    ids = [p["id"] for p in partitions["partitions"]]
    assert ids[0] == "aws"
    assert {"aws-cn", "aws-us-gov", "aws-iso", "aws-iso-b"} <= set(ids)
    aws = partitions["partitions"][0]
    assert aws["regions"]["eu-central-1"] == {}
    assert aws["outputs"]["dnsSuffix"] == "amazonaws.com"


@pytest.mark.skipif(
    not REFERENCE.exists(), reason="botocore reference model not beside the repo"
)
def test_overlay_is_what_botocore_model_translates_to() -> None:
    botocore = json.loads(
        (REFERENCE / "polly-2016-06-10.botocore-1.44.5.service-2.json").read_text()
    )
    drafted = draft_overlay(
        botocore, json.loads(UPSTREAM.read_text()), "StartSpeechSynthesisStream"
    )
    assert drafted == json.loads(OVERLAY.read_text())
