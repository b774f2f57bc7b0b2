"""Text to events: sentence-boundary splitting of long text, and the flush marker.

Pure functions. Plain text longer than ``MAX_EVENT_CHARS`` is split into
several ``TextEvent``s at sentence boundaries (then at whitespace, then
anywhere), so no event is over the limit and no word is cut when it can be
helped. SSML is never split: each SSML document is one event.
"""

from __future__ import annotations

import re
from typing import Final

MAX_EVENT_CHARS: Final = 1500
"""The most characters the client puts in one ``TextEvent``."""

KEEPALIVE_TEXT: Final = " "
"""What a keep-alive event carries: whitespace, which Polly does not speak."""

_TERMINAL = r"[.!?\u3002\uff01\uff1f]+[\"'\u201d\u2019)\]]*"
"""Sentence-ending punctuation, then maybe closing quotes or brackets."""
_SENTENCE_END = re.compile(_TERMINAL + r"\s+")
_ENDS_SENTENCE = re.compile(_TERMINAL + r"\s*\Z")


def ends_sentence(text: str) -> bool:
    """Whether ``text`` ends a sentence (terminal punctuation, then maybe
    closing quotes or brackets and whitespace): where Polly would synthesize
    what it buffered, so a new stream can start there without changing the
    audio."""
    return _ENDS_SENTENCE.search(text) is not None


class _Flush:
    """The type of ``FLUSH``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "FLUSH"


FLUSH: Final = _Flush()
"""Put this in a text iterable to make Polly synthesize what it has buffered,
now (a whitespace event with ``FlushStreamConfiguration.Force``)."""


def split_text(text: str, limit: int = MAX_EVENT_CHARS) -> list[str]:
    """Split plain text into pieces of at most ``limit`` characters.

    Concatenating the pieces gives back ``text`` exactly.
    """
    if len(text) <= limit:
        return [text]
    pieces: list[str] = []
    rest = text
    while len(rest) > limit:
        window = rest[:limit]
        cut = 0
        for match in _SENTENCE_END.finditer(window):
            cut = match.end()
        if cut == 0:
            space = max(window.rfind(" "), window.rfind("\n"), window.rfind("\t"))
            cut = space + 1 if space > 0 else limit
        pieces.append(rest[:cut])
        rest = rest[cut:]
    if rest:
        pieces.append(rest)
    return pieces
