"""Smithy documentation (an HTML subset) -> plain-text docstrings.

Handles what AWS models use: paragraphs, ``<code>``, links, lists, ``<b>``/``<i>``
and entities. The result is wrapped at a fixed width, so it is the same on
every machine.
"""

from __future__ import annotations

import html
import re
import textwrap
from html.parser import HTMLParser

_WIDTH = 76
_SPACE = re.compile(r"\s+")


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[str] = []
        self._current: list[str] = []
        self._href: list[str | None] = []
        self._depth = 0
        self._bullet = ""

    def _flush(self) -> None:
        text = _SPACE.sub(" ", "".join(self._current)).strip()
        self._current = []
        if text:
            self.blocks.append(self._bullet + text)
            self._bullet = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in {"p", "ul", "ol", "note", "important", "br", "div"}:
            self._flush()
        elif tag == "li":
            self._flush()
            self._bullet = "- "
        elif tag == "code":
            self._current.append("``")
        elif tag == "a":
            self._href.append(dict(attrs).get("href"))

    def handle_endtag(self, tag: str) -> None:
        if tag in {"p", "li", "ul", "ol", "note", "important", "div"}:
            self._flush()
        elif tag == "code":
            self._current.append("``")
        elif tag == "a" and self._href:
            href = self._href.pop()
            if href and href.startswith("http"):
                self._current.append(f" <{href}>")

    def handle_data(self, data: str) -> None:
        self._current.append(data)

    def close(self) -> None:
        super().close()
        self._flush()


def to_text(documentation: str) -> str:
    """Convert model documentation to wrapped plain text (may be empty)."""
    parser = _Text()
    parser.feed(documentation)
    parser.close()
    paragraphs: list[str] = []
    for raw in parser.blocks:
        block = raw.replace("`` ``", " ").replace("````", "")
        indent = "  " if block.startswith("- ") else ""
        paragraphs.append(
            textwrap.fill(
                html.unescape(block),
                width=_WIDTH,
                subsequent_indent=indent,
                break_long_words=False,
                break_on_hyphens=False,
            )
        )
    return "\n\n".join(paragraphs)


def docstring(
    documentation: str | None, *, fallback: str = "", indent: str = ""
) -> str:
    """A docstring literal (with its quotes) for generated code."""
    text = to_text(documentation) if documentation else ""
    if not text and fallback:
        text = textwrap.fill(fallback, width=_WIDTH, break_on_hyphens=False)
    if not text:
        return ""
    text = text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    if text.endswith('"'):
        text += " "
    lines = text.split("\n")
    if len(lines) == 1 and len(indent) + len(text) + 6 <= 88:
        return f'{indent}"""{text}"""'
    body = "\n".join((indent + line) if line else "" for line in lines)
    return f'{indent}"""{body.lstrip()}\n{indent}"""'
