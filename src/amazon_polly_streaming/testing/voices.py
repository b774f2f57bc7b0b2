"""The emulator's table of generative voices and their languages.

Amazon Polly streams only with the generative engine, and only generative
voices take it. This table is the emulator's view of which voices those are
(as documented for the generative engine); a voice the model knows but this
table lacks gets the ``ValidationException`` the service gives for a voice
the engine does not support. Extend it with ``PollyEmulator(voices=...)``.
"""

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

GENERATIVE_VOICES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "Matthew": "en-US",
        "Joanna": "en-US",
        "Ruth": "en-US",
        "Stephen": "en-US",
        "Danielle": "en-US",
        "Salli": "en-US",
        "Tiffany": "en-US",
        "Amy": "en-GB",
        "Brian": "en-GB",
        "Arthur": "en-GB",
        "Olivia": "en-AU",
        "Ayanda": "en-ZA",
        "Kajal": "en-IN",
        "Bianca": "it-IT",
        "Adriano": "it-IT",
        "Lucia": "es-ES",
        "Sergio": "es-ES",
        "Mia": "es-MX",
        "Andres": "es-MX",
        "Lupe": "es-US",
        "Pedro": "es-US",
        "Lea": "fr-FR",
        "Remi": "fr-FR",
        "Gabrielle": "fr-CA",
        "Liam": "fr-CA",
        "Vicki": "de-DE",
        "Daniel": "de-DE",
        "Camila": "pt-BR",
        "Ines": "pt-PT",
    }
)
"""Voice id -> its language, for every voice the emulator synthesizes."""
