"""awscrt's HTTP/2 stream reset, which its Python layer does not expose.

Barge-in needs ``RST_STREAM``: it stops the service's audio at once and
leaves the connection (TLS session, HPACK state, flow-control windows)
healthy for the next utterance. awscrt's C library has it
(``aws_http2_stream_reset``, thread-safe: it queues the frame on the
connection's own thread), but awscrt 0.38's Python bindings offer no way to
call it, and the C symbol is not exported from ``_awscrt``'s shared object.

This module finds it the way a debugger would: the wheel's ``_awscrt``
library keeps its symbol table, so the function's offset is read from the
ELF file and added to the library's load address, measured from
``PyInit__awscrt`` and checked against a second exported symbol
(``aws_py_get_http_stream``, which also turns awscrt's Python stream object
into the native pointer). Any doubt (not Linux/ELF, a stripped build, an
unexpected layout, a mismatch between the two anchors) makes ``available()``
false, and callers fall back to closing the connection instead: the stream
still stops at once, only the connection is not reused.

Set ``AMAZON_POLLY_STREAMING_NATIVE_RESET=0`` to never use it.
"""

from __future__ import annotations

import ctypes
import os
import struct
import threading
from dataclasses import dataclass
from typing import Any

import _awscrt  # type: ignore[import-not-found]

AWS_HTTP2_ERR_CANCEL = 0x8
"""HTTP/2 error code CANCEL: "the stream is no longer needed" (RFC 9113 §7)."""

_ANCHOR = "PyInit__awscrt"
_GET_STREAM = "aws_py_get_http_stream"
_RESET = "aws_http2_stream_reset"
_STT_FUNC = 2
_SHT_SYMTAB = 2

type _ResetFn = Any  # a ctypes function pointer: (void *stream, uint32 code) -> int


@dataclass(frozen=True, slots=True)
class _Functions:
    get_stream: Any  # ctypes: (py_object) -> void *
    reset: _ResetFn


_lock = threading.Lock()
_resolved = False
_functions: _Functions | None = None


def _elf_functions(path: str, wanted: set[str]) -> dict[str, int]:
    """Offsets of the ``wanted`` function symbols in an ELF64 LE shared object."""
    with open(path, "rb") as file:
        data = file.read()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:  # ELF64, LE
        return {}
    (section_offset,) = struct.unpack_from("<Q", data, 0x28)
    entry_size, count = struct.unpack_from("<HH", data, 0x3A)
    sections = [
        struct.unpack_from("<IIQQQQIIQQ", data, section_offset + i * entry_size)
        for i in range(count)
    ]
    found: dict[str, int] = {}
    for section in sections:
        if section[1] != _SHT_SYMTAB:
            continue
        strings = sections[section[6]]
        names_at, offset, size = strings[4], section[4], section[5]
        for at in range(offset, offset + size, 24):
            name_at, info, _, _, value, _ = struct.unpack_from("<IBBHQQ", data, at)
            if (info & 0xF) != _STT_FUNC or value == 0:
                continue
            start = names_at + name_at
            name = data[start : data.index(b"\0", start)].decode("ascii", "replace")
            if name in wanted:
                found[name] = value
    return found


def _resolve() -> _Functions | None:
    if os.environ.get("AMAZON_POLLY_STREAMING_NATIVE_RESET", "1") == "0":
        return None
    path = str(getattr(_awscrt, "__file__", ""))
    if not path:
        return None
    try:
        offsets = _elf_functions(path, {_ANCHOR, _GET_STREAM, _RESET})
        library = ctypes.PyDLL(path)
        anchor = ctypes.cast(getattr(library, _ANCHOR), ctypes.c_void_p).value
        get_stream = getattr(library, _GET_STREAM)
        second = ctypes.cast(get_stream, ctypes.c_void_p).value
        base = (anchor or 0) - offsets[_ANCHOR]
        # Both anchors must agree on the load address (else: not the file read).
        if not anchor or not second or second - offsets[_GET_STREAM] != base:
            return None
    except (OSError, ValueError, AttributeError, KeyError, struct.error, IndexError):
        return None
    get_stream.restype = ctypes.c_void_p
    get_stream.argtypes = [ctypes.py_object]
    prototype = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_uint32)
    return _Functions(get_stream=get_stream, reset=prototype(base + offsets[_RESET]))


def _get() -> _Functions | None:
    global _resolved, _functions  # noqa: PLW0603 - resolved once, lazily
    if not _resolved:
        with _lock:
            if not _resolved:
                _functions = _resolve()
                _resolved = True
    return _functions


def available() -> bool:
    """Whether streams can be reset (else callers close the connection)."""
    return _get() is not None


def reset_stream(stream: object, code: int = AWS_HTTP2_ERR_CANCEL) -> bool:
    """Queue ``RST_STREAM`` for awscrt's HTTP/2 client ``stream``.

    Returns whether the reset was queued. Resetting a stream that already
    completed does nothing. ``stream`` must be awscrt's live stream object
    (the native stream lives as long as it does).
    """
    functions = _get()
    if functions is None:
        return False
    try:
        native = functions.get_stream(stream)
    except (TypeError, ValueError, AttributeError):
        return False
    if not native:
        return False
    return int(functions.reset(native, code)) == 0
