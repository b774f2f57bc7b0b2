"""Open enums: a value a newer service adds never breaks an old client."""

import pytest

from amazon_polly_streaming_generated.enums import OpenEnum, OutputFormat, VoiceId


def test_known_values_are_the_members() -> None:
    assert VoiceId("Matthew") is VoiceId.MATTHEW
    assert VoiceId.MATTHEW.is_known
    assert OutputFormat("ogg_opus") is OutputFormat.OGG_OPUS
    assert {f.value for f in OutputFormat} == {
        "json",
        "mp3",
        "ogg_vorbis",
        "pcm",
        "ogg_opus",
        "mulaw",
        "alaw",
    }


def test_unknown_values_become_pseudo_members() -> None:
    voice = VoiceId("Aurora2030")
    assert isinstance(voice, VoiceId) and isinstance(voice, OpenEnum)
    assert voice == "Aurora2030" and str(voice) == "Aurora2030"
    assert voice.value == "Aurora2030" and voice.name == "Aurora2030"
    assert not voice.is_known
    assert voice not in list(VoiceId)  # iteration lists known members only
    assert f"{voice}" == "Aurora2030"


def test_non_strings_are_still_rejected() -> None:
    with pytest.raises(ValueError, match="is not a valid VoiceId"):
        VoiceId(42)  # type: ignore[arg-type]
