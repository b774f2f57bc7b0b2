"""Generate the typed Python package from the trimmed Smithy model.

``make generate`` runs ``python -m codegen.generate``. The model is loaded with
smithy-python's loader; every module below is rendered from it, given the
"generated, do not edit" header, formatted with the pinned ``ruff`` and written
to ``generated/amazon_polly_streaming_generated/``:

``enums.py``      open string enums (accept values a newer service adds)
``shapes.py``     structures as dataclasses; event-stream unions as type aliases
``errors.py``     ``ServiceException`` and the modeled exceptions with their fields
``serde.py``      HTTP header bindings of the input, event serializers and
                  deserializers (event-stream headers + JSON/blob payload), errors
``operation.py``  operation metadata (method, path, signing name, content type)
``endpoints.py``  the endpoint resolver compiled from the model's ruleset
``__init__.py``   package docstring and re-exports

The generated package depends on the standard library only; the hand-written
layer (``src/``) combines it with the event-stream codec, signing and transport.
Output is byte-identical across runs and machines: no timestamps, no absolute
paths, input order or sorted order everywhere.
"""

from __future__ import annotations

import argparse
import filecmp
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast

from smithy_python.model import (
    EnumShape,
    ListShape,
    MemberShape,
    Model,
    OperationShape,
    ServiceShape,
    Shape,
    ShapeType,
    StructureShape,
    UnionShape,
    load_model,
    to_json,
)

from codegen import endpoints
from codegen.docs import docstring
from codegen.naming import constant_case, snake_case, unique

PACKAGE = "amazon_polly_streaming_generated"
REPO = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = REPO / "model" / "polly-streaming.smithy.json"
DEFAULT_PARTITIONS = REPO / "model" / "partitions.json"
DEFAULT_OUT = REPO / "generated" / PACKAGE

EVENT_STREAM_CONTENT_TYPE = "application/vnd.amazon.eventstream"

_SCALARS = {
    ShapeType.STRING: "str",
    ShapeType.BOOLEAN: "bool",
    ShapeType.BYTE: "int",
    ShapeType.SHORT: "int",
    ShapeType.INTEGER: "int",
    ShapeType.LONG: "int",
    ShapeType.FLOAT: "float",
    ShapeType.DOUBLE: "float",
    ShapeType.BLOB: "bytes",
}
_ZERO = {"str": '""', "bool": "False", "int": "0", "float": "0.0", "bytes": 'b""'}
_EXPECT = {
    "str": "_expect_str",
    "bool": "_expect_bool",
    "int": "_expect_int",
    "float": "_expect_float",
}


class GenerationError(Exception):
    """The model uses something this generator does not support."""


def _doc(shape: Shape) -> str | None:
    value = shape.get_trait("documentation")
    return value if isinstance(value, str) else None


def _class_name(shape: Shape) -> str:
    return shape.id.name


@dataclass
class _Context:
    """What the renderers share: the model and the shapes of the operation."""

    model: Model
    model_sha256: str
    service: ServiceShape
    operations: list[OperationShape]
    enums: list[EnumShape] = field(default_factory=list["EnumShape"])
    structures: list[StructureShape] = field(default_factory=list["StructureShape"])
    errors: list[StructureShape] = field(default_factory=list["StructureShape"])
    streams: list[UnionShape] = field(default_factory=list["UnionShape"])

    def target(self, member: MemberShape) -> Shape:
        return self.model.get_target(member)

    def is_error(self, shape: Shape) -> bool:
        return shape.has_trait("error")

    def python_type(self, member: MemberShape) -> str:
        target = self.target(member)
        if target.type in _SCALARS:
            return _SCALARS[target.type]
        if isinstance(target, EnumShape | StructureShape):
            return _class_name(target)
        if isinstance(target, ListShape):
            return f"list[{self.python_type(target.member)}]"
        msg = f"{member.id}: members of type {target.type} are not supported"
        raise GenerationError(msg)

    def stream_member(self, structure: Shape) -> MemberShape | None:
        for member in structure.members.values():
            if self.target(member).has_trait("streaming"):
                return member
        return None


def _collect(model: Model, model_sha256: str) -> _Context:
    services = model.services()
    if len(services) != 1:
        msg = f"expected one service, found {[str(s.id) for s in services]}"
        raise GenerationError(msg)
    service = services[0]
    operations = [model.expect_shape(o, OperationShape) for o in service.operations]
    ctx = _Context(model, model_sha256, service, operations)
    seen: set[str] = set()

    def visit(shape: Shape) -> None:
        key = str(shape.id)
        if key in seen or model.is_prelude(shape):
            return
        seen.add(key)
        for member in shape.members.values():
            visit(model.get_target(member))

    for op in operations:
        for ref in (op.input, op.output, *op.errors):
            visit(model.get_shape(ref))
    for ref in service.errors:
        visit(model.get_shape(ref))
    for shape in sorted(
        (model.get_shape(s) for s in seen), key=lambda s: s.id.name.lower()
    ):
        if isinstance(shape, EnumShape):
            ctx.enums.append(shape)
        elif isinstance(shape, UnionShape):
            if not shape.has_trait("streaming"):
                msg = f"{shape.id}: only event-stream unions are supported"
                raise GenerationError(msg)
            ctx.streams.append(shape)
        elif isinstance(shape, StructureShape):
            (ctx.errors if ctx.is_error(shape) else ctx.structures).append(shape)
    return ctx


def _header(ctx: _Context, docs: str) -> list[str]:
    return [
        docs,
        "",
        "# Code generated by codegen/generate.py from model/polly-streaming.smithy.json",
        f"# (sha256 {ctx.model_sha256[:16]}). DO NOT EDIT: change the model or the",
        "# generator, then run `make generate`.",
        "",
    ]


# --------------------------------------------------------------------- enums


def render_enums(ctx: _Context) -> str:
    out = _header(ctx, '"""Enumerations of the Polly streaming model."""')
    out += [
        "from enum import StrEnum",
        "from typing import Self",
        "",
        "",
        "class OpenEnum(StrEnum):",
        '    """A string enum that also accepts values this client does not know.',
        "",
        "    A value a newer service adds (a new voice, a new format) becomes a",
        "    pseudo-member instead of an error, so an old client keeps working.",
        "    ``is_known`` tells the two apart; iteration lists known members only.",
        '    """',
        "",
        "    @classmethod",
        "    def _missing_(cls, value: object) -> Self | None:",
        "        if not isinstance(value, str):",
        "            return None",
        "        member = str.__new__(cls, value)",
        "        member._name_ = value",
        "        member._value_ = value",
        "        return member",
        "",
        "    @property",
        "    def is_known(self) -> bool:",
        '        """Whether this value is one the model lists."""',
        "        return self._value_ in type(self)._value2member_map_",
        "",
    ]
    for enum in ctx.enums:
        out += ["", f"class {_class_name(enum)}(OpenEnum):"]
        out.append(
            docstring(
                _doc(enum), fallback=f"Values of ``{enum.id.name}``.", indent="    "
            )
        )
        out.append("")
        names = unique([constant_case(name) for name in enum.members], str(enum.id))
        for py_name, member in zip(names, enum.members.values(), strict=True):
            value = member.get_trait("enumValue")
            out.append(f"    {py_name} = {json.dumps(value)}")
            member_doc = docstring(_doc(member), indent="    ")
            if member_doc:
                out.append(member_doc)
        out.append("")
    return "\n".join(out)


# -------------------------------------------------------------------- shapes


def _field_lines(ctx: _Context, shape: Shape, *, skip: str | None = None) -> list[str]:
    """Dataclass fields: required first (no default), then optional ones."""
    required: list[str] = []
    optional: list[str] = []
    for name, member in shape.members.items():
        if name == skip:
            continue
        py_type = ctx.python_type(member)
        py_name = snake_case(name)
        lines: list[str]
        if member.has_trait("required"):
            lines = [f"    {py_name}: {py_type}"]
        elif py_type.startswith("list["):
            lines = [f"    {py_name}: {py_type} | None = None"]
        else:
            lines = [f"    {py_name}: {py_type} | None = None"]
        member_doc = docstring(_doc(member), indent="    ")
        if member_doc:
            lines.append(member_doc)
        (required if member.has_trait("required") else optional).extend(lines)
    return required + optional


def render_shapes(ctx: _Context) -> str:
    out = _header(
        ctx, '"""Structures and event-stream unions of the Polly streaming model."""'
    )
    out += [
        "from __future__ import annotations",
        "",
        "from dataclasses import dataclass",
        "",
    ]
    enum_names = sorted({_class_name(e) for e in ctx.enums})
    if enum_names:
        out.append(f"from .enums import {', '.join(enum_names)}")
    out.append("")
    for shape in ctx.structures:
        stream = ctx.stream_member(shape)
        if stream is not None and len(shape.members) == 1:
            continue  # an output that is only its event stream: nothing to hold
        out += [
            "",
            "@dataclass(slots=True, kw_only=True)",
            f"class {_class_name(shape)}:",
        ]
        doc = _doc(shape)
        fallback = f"The ``{shape.id.name}`` structure."
        if stream is not None:
            fallback = (
                f"The ``{shape.id.name}`` structure: its HTTP-bound members "
                f"(the ``{stream.name}`` event stream is sent as the request body)."
            )
            doc = None
        out.append(docstring(doc, fallback=fallback, indent="    "))
        out.append("")
        out += _field_lines(ctx, shape, skip=stream.name if stream else None)
        out.append("")
    out += [
        "",
        "@dataclass(slots=True, kw_only=True)",
        "class UnknownEvent:",
        '    """An event type this client version does not know (a newer service\'s).',
        "",
        "    Receivers may ignore it; it is surfaced rather than dropped silently.",
        '    """',
        "",
        "    event_type: str",
        "    payload: bytes",
        "",
    ]
    for union in ctx.streams:
        events = [
            _class_name(ctx.target(m))
            for m in union.members.values()
            if not ctx.is_error(ctx.target(m))
        ]
        out += ["", f"type {_class_name(union)} = {' | '.join(events)}"]
        doc = docstring(
            _doc(union),
            fallback=f"The events of the ``{union.id.name}`` event union.",
        )
        out += [doc, ""]
    return "\n".join(out)


# -------------------------------------------------------------------- errors


def render_errors(ctx: _Context) -> str:
    out = _header(ctx, '"""Exceptions of the Polly streaming model."""')
    out += [
        "from __future__ import annotations",
        "",
        "from typing import ClassVar, Literal",
        "",
    ]
    types: set[str] = set()
    for error in ctx.errors:
        for name, member in error.members.items():
            if name != "message":
                types.add(ctx.python_type(member))
    enum_names = sorted({t for t in types if t in {_class_name(e) for e in ctx.enums}})
    shape_names = sorted(
        {
            t.removeprefix("list[").removesuffix("]")
            for t in types
            if t.removeprefix("list[").removesuffix("]")
            in {_class_name(s) for s in ctx.structures}
        }
    )
    if enum_names:
        out.append(f"from .enums import {', '.join(enum_names)}")
    if shape_names:
        out.append(f"from .shapes import {', '.join(shape_names)}")
    out += [
        "",
        "",
        "class ServiceException(Exception):",
        '    """An error the Polly service reported.',
        "",
        "    ``code`` is the service's error type (the class name for modeled errors),",
        "    ``message`` its text and ``request_id`` the ``x-amzn-requestid`` of the",
        "    request, when known. An error type this client version does not know",
        "    is raised as a plain ``ServiceException`` with its ``code``.",
        '    """',
        "",
        '    fault: ClassVar[Literal["client", "server"]] = "server"',
        '    """Who is at fault: ``client`` (fix the request) or ``server``."""',
        "    http_status: ClassVar[int] = 500",
        '    """The HTTP status the model assigns to this error."""',
        "",
        "    code: str",
        "    message: str",
        "    request_id: str | None",
        "",
        "    def __init__(",
        '        self, message: str = "", *, code: str | None = None, request_id: str | None = None',
        "    ) -> None:",
        "        super().__init__(message)",
        "        self.message = message",
        "        self.code = code if code is not None else type(self).__name__",
        "        self.request_id = request_id",
        "",
        "    def __str__(self) -> str:",
        "        text = f'{self.code}: {self.message}' if self.message else self.code",
        "        if self.request_id:",
        "            text += f' (request id {self.request_id})'",
        "        return text",
        "",
        "    def _fields(self) -> dict[str, object]:",
        "        return {}",
        "",
        "    def __repr__(self) -> str:",
        "        fields = {'message': self.message, **self._fields()}",
        "        if type(self) is ServiceException:",
        "            fields = {'code': self.code, **fields}",
        "        fields['request_id'] = self.request_id",
        "        args = ', '.join(f'{k}={v!r}' for k, v in fields.items())",
        "        return f'{type(self).__name__}({args})'",
        "",
    ]
    for error in ctx.errors:
        out += _render_error_class(ctx, error)
    names = ", ".join(f'"{e.id.name}": {_class_name(e)}' for e in ctx.errors)
    out += [
        "",
        "ERRORS_BY_CODE: dict[str, type[ServiceException]] = {" + names + "}",
        '"""Modeled error classes by their service error type."""',
        "",
    ]
    return "\n".join(out)


def _render_error_class(ctx: _Context, error: StructureShape) -> list[str]:
    fault = error.get_trait("error")
    status = error.get_trait("httpError")
    out = ["", "", f"class {_class_name(error)}(ServiceException):"]
    out.append(
        docstring(
            _doc(error), fallback=f"The ``{error.id.name}`` error.", indent="    "
        )
    )
    out += ["", f'    fault = "{fault}"']
    if isinstance(status, int):
        out.append(f"    http_status = {status}")
    members = [(n, m) for n, m in error.members.items() if n != "message"]
    if not members:
        return out
    params: list[str] = []
    assigns: list[str] = []
    field_decls: list[str] = []
    for name, member in members:
        py_name = snake_case(name)
        py_type = ctx.python_type(member)
        if member.has_trait("required"):
            params.append(f"{py_name}: {py_type}")
        else:
            params.append(f"{py_name}: {py_type} | None = None")
            py_type = f"{py_type} | None"
        field_decls.append(f"    {py_name}: {py_type}")
        member_doc = docstring(_doc(member), indent="    ")
        if member_doc:
            field_decls.append(member_doc)
        assigns.append(f"        self.{py_name} = {py_name}")
    out += ["", *field_decls, ""]
    out += [
        "    def __init__(",
        '        self, message: str = "", *, '
        + ", ".join(params)
        + ", request_id: str | None = None",
        "    ) -> None:",
        "        super().__init__(message, request_id=request_id)",
        *assigns,
        "",
        "    def _fields(self) -> dict[str, object]:",
        "        return {"
        + ", ".join(f'"{snake_case(n)}": self.{snake_case(n)}' for n, _ in members)
        + "}",
    ]
    return out


# --------------------------------------------------------------------- serde


_SERDE_SUPPORT = r'''
type JsonValue = bool | int | float | str | list[JsonValue] | dict[str, JsonValue] | None
type EventHeaders = dict[str, str]
"""The string headers of one event-stream message (``:event-type`` ...)."""
type EventParts = tuple[EventHeaders, bytes]
"""An event as its event-stream headers and payload, ready for the codec."""


class DeserializationError(ValueError):
    """A message or header does not have the shape the model says."""


def _expect_str(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise DeserializationError(f"{where}: expected a string, got {type(value).__name__}")
    return value


def _expect_bool(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise DeserializationError(f"{where}: expected a boolean, got {type(value).__name__}")
    return value


def _expect_int(value: object, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise DeserializationError(f"{where}: expected an integer, got {type(value).__name__}")
    return value


def _expect_float(value: object, where: str) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise DeserializationError(f"{where}: expected a number, got {type(value).__name__}")
    return float(value)


def _expect_list(value: object, where: str) -> list[object]:
    if not isinstance(value, list):
        raise DeserializationError(f"{where}: expected a list, got {type(value).__name__}")
    return cast(list[object], value)


def _expect_object(value: object, where: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise DeserializationError(f"{where}: expected an object, got {type(value).__name__}")
    return cast(dict[str, object], value)


def _parse_json(payload: bytes, where: str) -> dict[str, object]:
    if not payload:
        return {}
    try:
        data: object = json.loads(payload)
    except (UnicodeDecodeError, ValueError) as exc:
        raise DeserializationError(f"{where}: payload is not valid JSON: {exc}") from None
    return _expect_object(data, where)


def _dump_json(data: dict[str, JsonValue]) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def quote_header_list(values: Iterable[str]) -> str:
    """Join list values into one header field per the HTTP binding rules.

    Values are separated by ``", "``; a value that is empty, contains a comma or
    a double quote, or has surrounding whitespace is sent double-quoted, with
    inner quotes and backslashes escaped, so that ``split_header_list`` gives
    back exactly the same values.
    """
    parts: list[str] = []
    for value in values:
        if not value or "," in value or '"' in value or value != value.strip():
            escaped = value.replace("\\", "\\\\").replace('"', '\\"')
            parts.append(f'"{escaped}"')
        else:
            parts.append(value)
    return ", ".join(parts)


def split_header_list(fields: Iterable[str]) -> list[str]:
    """Split list header fields (one joined field or repeated fields) into values.

    The inverse of ``quote_header_list``: splits on commas outside double
    quotes, trims whitespace around unquoted values and drops empty unquoted
    ones (as HTTP list syntax does).
    """
    values: list[str] = []
    for text in fields:
        i, end = 0, len(text)
        while i <= end:
            while i < end and text[i] in " \t":
                i += 1
            if i < end and text[i] == '"':
                chars: list[str] = []
                i += 1
                while i < end and text[i] != '"':
                    if text[i] == "\\" and i + 1 < end:
                        i += 1
                    chars.append(text[i])
                    i += 1
                values.append("".join(chars))
                comma = text.find(",", i)
                i = end + 1 if comma < 0 else comma + 1
            else:
                comma = text.find(",", i)
                stop = end if comma < 0 else comma
                item = text[i:stop].strip()
                if item:
                    values.append(item)
                i = stop + 1
    return values
'''


def _used_support(body: str) -> str:
    """The support code, less the ``_expect_*`` helpers ``body`` never calls."""
    chunks = _SERDE_SUPPORT.strip("\n").split("\n\n\n")
    return "\n\n\n".join(
        chunk
        for chunk in chunks
        if not chunk.startswith("def _expect_")
        or chunk.startswith(("def _expect_object", "def _expect_list"))
        or chunk[4 : chunk.index("(")] + "(" in body
    )


@dataclass
class _Serde:
    ctx: _Context
    functions: list[str] = field(default_factory=list[str])
    rendered: set[str] = field(default_factory=set[str])

    # Conversions for JSON documents ------------------------------------

    def to_json_expr(self, member: MemberShape, expr: str) -> str:
        target = self.ctx.target(member)
        if isinstance(target, StructureShape):
            self.struct_to_json(target)
            return f"_{snake_case(target.id.name)}_to_json({expr})"
        if isinstance(target, ListShape):
            inner = self.to_json_expr(target.member, "item")
            return f"[{inner} for item in {expr}]"
        if isinstance(target, EnumShape):
            return f"str({expr})"
        if target.type is ShapeType.BLOB:
            return f"base64.b64encode({expr}).decode()"
        return expr

    def from_json_expr(self, member: MemberShape, expr: str, where: str) -> str:
        target = self.ctx.target(member)
        if isinstance(target, StructureShape):
            self.struct_from_json(target)
            return f"_{snake_case(target.id.name)}_from_json({expr}, {where})"
        if isinstance(target, ListShape):
            inner = self.from_json_expr(target.member, "item", where)
            return f"[{inner} for item in _expect_list({expr}, {where})]"
        if isinstance(target, EnumShape):
            return f"{_class_name(target)}(_expect_str({expr}, {where}))"
        if target.type is ShapeType.BLOB:
            return f"base64.b64decode(_expect_str({expr}, {where}))"
        py_type = _SCALARS.get(target.type)
        if py_type is None:
            msg = f"{member.id}: cannot deserialize {target.type}"
            raise GenerationError(msg)
        return f"{_EXPECT[py_type]}({expr}, {where})"

    def zero(self, member: MemberShape) -> str:
        py_type = self.ctx.python_type(member)
        target = self.ctx.target(member)
        if py_type.startswith("list["):
            return "[]"
        if isinstance(target, EnumShape):
            return f'{_class_name(target)}("")'
        if py_type in _ZERO:
            return _ZERO[py_type]
        msg = f"{member.id}: a required member of type {py_type} has no zero value"
        raise GenerationError(msg)

    def json_members(self, shape: _HasMembers) -> list[tuple[str, MemberShape]]:
        return [
            (n, m)
            for n, m in shape.members.items()
            if not m.has_trait("eventPayload") and not m.has_trait("eventHeader")
        ]

    def to_json_body(self, shape: _HasMembers, value: str) -> list[str]:
        lines = ["    out: dict[str, JsonValue] = {}"]
        for name, member in self.json_members(shape):
            key = member.get_trait("jsonName") or name
            attr = f"{value}.{snake_case(name)}"
            conv = self.to_json_expr(member, attr)
            if member.has_trait("required"):
                lines.append(f'    out["{key}"] = {conv}')
            else:
                lines += [
                    f"    if {attr} is not None:",
                    f'        out["{key}"] = {conv}',
                ]
        return lines

    def from_json_body(
        self, shape: _HasMembers, data: str, where: str
    ) -> tuple[list[str], list[str]]:
        """Local reads of each JSON member, and the constructor arguments.

        ``where`` is a Python expression naming the place for error messages; a
        missing required member becomes its zero value (never an error while
        reading a service error), a missing optional one ``None``.
        """
        reads: list[str] = []
        args: list[str] = []
        for name, member in self.json_members(shape):
            key = member.get_trait("jsonName") or name
            local = f"raw_{snake_case(name)}"
            here = _join_where(where, f".{key}")
            conv = self.from_json_expr(member, local, here)
            fallback = self.zero(member) if member.has_trait("required") else "None"
            reads.append(f'    {local} = {data}.get("{key}")')
            args.append(
                f"{snake_case(name)}={conv} if {local} is not None else {fallback}"
            )
        return reads, args

    def struct_to_json(self, shape: StructureShape) -> None:
        fn = f"_{snake_case(shape.id.name)}_to_json"
        if fn in self.rendered:
            return
        self.rendered.add(fn)
        cls = _class_name(shape)
        lines = [f"def {fn}(value: {cls}) -> dict[str, JsonValue]:"]
        lines += self.to_json_body(shape, "value")
        lines.append("    return out")
        self.functions.append("\n".join(lines))

    def struct_from_json(self, shape: StructureShape) -> None:
        fn = f"_{snake_case(shape.id.name)}_from_json"
        if fn in self.rendered:
            return
        self.rendered.add(fn)
        cls = _class_name(shape)
        reads, args = self.from_json_body(shape, "data", "where")
        lines = [
            f"def {fn}(value: object, where: str) -> {cls}:",
            "    data = _expect_object(value, where)",
            *reads,
            f"    return {cls}(" + ", ".join(args) + ")",
        ]
        self.functions.append("\n".join(lines))

    # Events -------------------------------------------------------------

    def payload_member(self, shape: Shape) -> MemberShape | None:
        for member in shape.members.values():
            if member.has_trait("eventPayload"):
                return member
        return None

    def content_type(self, shape: Shape) -> str:
        payload = self.payload_member(shape)
        if payload is None:
            return "application/json"
        target = self.ctx.target(payload)
        if target.type is ShapeType.BLOB:
            return "application/octet-stream"
        if target.type is ShapeType.STRING:
            return "text/plain"
        return "application/json"

    def event_serializer(self, shape: StructureShape, name: str) -> str:
        fn = f"serialize_{snake_case(name)}"
        cls = _class_name(shape)
        is_error = self.ctx.is_error(shape)
        if is_error:
            headers = (
                '{":message-type": "exception", '
                f'":exception-type": "{name}", ":content-type": "application/json"}}'
            )
        else:
            headers = (
                '{":message-type": "event", '
                f'":event-type": "{name}", ":content-type": "{self.content_type(shape)}"}}'
            )
        lines = [
            f"def {fn}(value: {cls}) -> EventParts:",
            f'    """Serialize ``{name}`` to event-stream headers and payload."""',
            f"    headers: EventHeaders = {headers}",
        ]
        for member_name, member in shape.members.items():
            if member.has_trait("eventHeader"):
                attr = f"value.{snake_case(member_name)}"
                lines += [
                    f"    if {attr} is not None:",
                    f'        headers["{member_name}"] = str({attr})',
                ]
        payload = self.payload_member(shape)
        if is_error:
            body = self.to_json_body(_WithoutMessage(shape), "value")
            lines += [
                body[0],
                "    if value.message:",
                '        out["message"] = value.message',
                *body[1:],
            ]
            lines.append("    return headers, _dump_json(out)")
        elif payload is not None:
            attr = f"value.{snake_case(payload.name)}"
            target = self.ctx.target(payload)
            if target.type is ShapeType.BLOB:
                lines.append(f"    return headers, {attr} or b''")
            elif target.type is ShapeType.STRING:
                lines.append(f"    return headers, ({attr} or '').encode()")
            else:
                conv = self.to_json_expr(payload, attr)
                lines.append(f"    return headers, _dump_json({conv})")
        else:
            lines += self.to_json_body(shape, "value")
            lines.append("    return headers, _dump_json(out)")
        return "\n".join(lines)

    def event_deserializer(self, shape: StructureShape, name: str) -> str:
        fn = f"deserialize_{snake_case(name)}"
        cls = _class_name(shape)
        payload = self.payload_member(shape)
        lines = [f"def {fn}(payload: bytes) -> {cls}:"]
        lines.append(f'    """Deserialize ``{name}`` from its event-stream payload."""')
        if payload is not None:
            target = self.ctx.target(payload)
            attr = snake_case(payload.name)
            if target.type is ShapeType.BLOB:
                lines.append(f"    return {cls}({attr}=payload)")
            elif target.type is ShapeType.STRING:
                lines.append(f"    return {cls}({attr}=payload.decode())")
            else:
                conv = self.from_json_expr(
                    payload, f'_parse_json(payload, "{name}")', f'"{name}"'
                )
                lines.append(f"    return {cls}({attr}={conv})")
        elif not self.json_members(shape):
            lines.append(
                f'    _parse_json(payload, "{name}")  # must still be a JSON object'
            )
            lines.append(f"    return {cls}()")
        else:
            lines.append(f'    data = _parse_json(payload, "{name}")')
            reads, args = self.from_json_body(shape, "data", f'"{name}"')
            lines += reads
            lines.append(f"    return {cls}(" + ", ".join(args) + ")")
        return "\n".join(lines)

    def error_deserializer(self) -> str:
        lines = [
            "def deserialize_error(code: str, payload: bytes, *, request_id: str | None = None) -> ServiceException:",
            '    """Build the exception for a service error type and its JSON body.',
            "",
            "    Used for exception events and for non-2xx responses alike. ``code`` may",
            "    carry a namespace or a suffix (``aws.polly#ThrottlingException:http://...``);",
            "    the bare type decides the class. Unknown types give a plain",
            "    ``ServiceException`` with that code. A malformed body never hides the",
            "    error: its raw text becomes the message.",
            '    """',
            '    name = code.split(":", 1)[0].rsplit("#", 1)[-1]',
            "    try:",
            "        data = _parse_json(payload, name)",
            "    except DeserializationError:",
            '        return ServiceException(payload.decode("utf-8", "replace"), code=name, request_id=request_id)',
            '    raw_message = data.get("message", data.get("Message", ""))',
            '    message = raw_message if isinstance(raw_message, str) else ""',
            "    try:",
            "        match name:",
        ]
        for error in self.ctx.errors:
            cls = _class_name(error)
            reads, args = self.from_json_body(
                _WithoutMessage(error), "data", f'"{error.id.name}"'
            )
            call_args = ", ".join(["message", *args, "request_id=request_id"])
            lines.append(f'            case "{error.id.name}":')
            lines += ["                " + r.strip() for r in reads]
            lines.append(f"                return {cls}({call_args})")
        lines += [
            "            case _:",
            "                pass",
            "    except DeserializationError:",
            "        pass  # a modeled error whose fields are malformed: keep code and text",
            "    return ServiceException(message, code=name, request_id=request_id)",
        ]
        return "\n".join(lines)

    def stream_functions(self, stream: UnionShape) -> list[str]:
        alias = _class_name(stream)
        events = [(name, self.ctx.target(m)) for name, m in stream.members.items()]
        plain = [(n, s) for n, s in events if not self.ctx.is_error(s)]
        errors = [(n, s) for n, s in events if self.ctx.is_error(s)]
        ser = [
            f"def serialize_{snake_case(stream.id.name)}(event: {alias}) -> EventParts:",
            f'    """Serialize any event of the ``{stream.id.name}`` stream."""',
            "    match event:",
        ]
        for name, shape in plain:
            ser += [
                f"        case {_class_name(shape)}():",
                f"            return serialize_{snake_case(name)}(event)",
            ]
        des = [
            f"def deserialize_{snake_case(stream.id.name)}(event_type: str, payload: bytes) -> {alias} | UnknownEvent:",
            f'    """Deserialize a ``{stream.id.name}`` event by its ``:event-type``.',
            "",
            "    An event type this client version does not know becomes ``UnknownEvent``.",
            '    """',
            "    match event_type:",
        ]
        for name, _shape in plain:
            des += [
                f'        case "{name}":',
                f"            return deserialize_{snake_case(name)}(payload)",
            ]
        des += [
            "        case _:",
            "            return UnknownEvent(event_type=event_type, payload=payload)",
        ]
        out = ["\n".join(ser), "\n".join(des)]
        names = ", ".join(f'"{n}"' for n, _ in errors)
        if errors:
            out.append(
                f"{constant_case(stream.id.name)}_EXCEPTIONS: frozenset[str] = frozenset(({names},))\n"
                f'"""Exception event types the ``{stream.id.name}`` stream models."""'
            )
        return out

    # HTTP bindings ------------------------------------------------------

    def header_functions(self, shape: StructureShape) -> list[str]:
        cls = _class_name(shape)
        fn = snake_case(shape.id.name)
        ser = [
            f"def serialize_{fn}_headers(value: {cls}) -> list[tuple[str, str]]:",
            f'    """The HTTP headers that carry a ``{shape.id.name}``.',
            "",
            "    Names are lower-case (HTTP/2 requires it); list members are joined into",
            "    one field per the HTTP binding rules; absent members are omitted.",
            '    """',
            "    headers: list[tuple[str, str]] = []",
        ]
        des = [
            f"def deserialize_{fn}_headers(headers: Iterable[tuple[str, str]]) -> {cls}:",
            f'    """Read a ``{shape.id.name}`` from HTTP headers (case-insensitive).',
            "",
            "    List members may arrive as one comma-joined field or as repeated fields.",
            "    A missing required header raises ``DeserializationError`` naming it.",
            '    """',
            "    fields: dict[str, list[str]] = {}",
            "    for name, value in headers:",
            "        fields.setdefault(name.lower(), []).append(value)",
        ]
        args: list[str] = []
        for name, member in shape.members.items():
            header = member.get_trait("httpHeader")
            if not isinstance(header, str):
                continue
            lower = header.lower()
            attr = f"value.{snake_case(name)}"
            target = self.ctx.target(member)
            if isinstance(target, ListShape):
                item = self.ctx.target(target.member)
                if item.type is not ShapeType.STRING and not isinstance(
                    item, EnumShape
                ):
                    msg = f"{member.id}: only string lists are supported in headers"
                    raise GenerationError(msg)
                ser += [
                    f"    if {attr}:",
                    f'        headers.append(("{lower}", quote_header_list(str(v) for v in {attr})))',
                ]
                value_expr = f'split_header_list(fields["{lower}"])'
                if isinstance(item, EnumShape):
                    value_expr = f"[{_class_name(item)}(v) for v in {value_expr}]"
            elif target.type is ShapeType.STRING or isinstance(target, EnumShape):
                if member.has_trait("required"):
                    ser.append(f'    headers.append(("{lower}", str({attr})))')
                else:
                    ser += [
                        f"    if {attr} is not None:",
                        f'        headers.append(("{lower}", str({attr})))',
                    ]
                raw = f'", ".join(fields["{lower}"])'
                value_expr = (
                    f"{_class_name(target)}({raw})"
                    if isinstance(target, EnumShape)
                    else raw
                )
            else:
                msg = f"{member.id}: header members of type {target.type} are not supported"
                raise GenerationError(msg)
            if member.has_trait("required"):
                des += [
                    f'    if "{lower}" not in fields:',
                    f'        raise DeserializationError("missing required header {header}")',
                ]
                args.append(f"{snake_case(name)}={value_expr}")
            else:
                args.append(
                    f'{snake_case(name)}={value_expr} if "{lower}" in fields else None'
                )
        ser.append("    return headers")
        des.append(f"    return {cls}(" + ", ".join(args) + ")")
        return ["\n".join(ser), "\n".join(des)]


def _join_where(where: str, suffix: str) -> str:
    """Extend a ``where`` expression: one literal when it is a literal."""
    if where.startswith('"') and where.endswith('"'):
        return where[:-1] + suffix + '"'
    return f'{where} + "{suffix}"'


class _HasMembers(Protocol):
    @property
    def members(self) -> Mapping[str, MemberShape]: ...


@dataclass(frozen=True)
class _WithoutMessage:
    """An error shape seen without its ``message`` member (handled apart)."""

    shape: StructureShape

    @property
    def members(self) -> Mapping[str, MemberShape]:
        return {n: m for n, m in self.shape.members.items() if n != "message"}


def render_serde(ctx: _Context) -> str:
    serde = _Serde(ctx)
    public: list[str] = []
    for op in ctx.operations:
        input_shape = ctx.model.expect_shape(op.input, StructureShape)
        public += serde.header_functions(input_shape)
    for stream in ctx.streams:
        for name, member in stream.members.items():
            shape = ctx.target(member)
            assert isinstance(shape, StructureShape)  # noqa: S101 - checked by _collect
            public.append(serde.event_serializer(shape, name))
            if not ctx.is_error(shape):
                public.append(serde.event_deserializer(shape, name))
        public += serde.stream_functions(stream)
    public.append(serde.error_deserializer())

    shape_names = sorted(
        {_class_name(s) for s in ctx.structures}
        - {
            _class_name(s)
            for s in ctx.structures
            if ctx.stream_member(s) is not None and len(s.members) == 1
        }
        | {_class_name(s) for s in ctx.streams}
        | {"UnknownEvent"}
    )
    enum_names = sorted(_class_name(e) for e in ctx.enums)
    error_names = sorted(
        ["ERRORS_BY_CODE", "ServiceException", *(_class_name(e) for e in ctx.errors)]
    )
    out = _header(
        ctx,
        '"""Serializers and deserializers: HTTP header bindings and event-stream events.\n\n'
        "Events are produced and consumed as ``(headers, payload)``; the event-stream\n"
        'codec of the hand-written layer frames them into binary messages."""',
    )
    out += [
        "from __future__ import annotations",
        "",
        "import base64",
        "import json",
        "from collections.abc import Iterable",
        "from typing import cast",
        "",
        f"from .enums import {', '.join(enum_names)}",
        f"from .errors import {', '.join(error_names)}",
        f"from .shapes import {', '.join(shape_names)}",
        "",
        "__all__ = [",
    ]
    names = [
        "DeserializationError",
        "EventHeaders",
        "EventParts",
        "quote_header_list",
        "split_header_list",
    ]
    for text in public:
        first = text.split("\n", 1)[0]
        names.append(first.removeprefix("def ").split("(")[0].split(":")[0])
    out += [f'    "{n}",' for n in sorted(names)]
    body = "\n\n\n".join([*public, *serde.functions])
    out += ["]", "", _used_support(body), "", "", "", body]
    return "\n".join(out) + "\n"


# ----------------------------------------------------------------- operation


def _as_list(value: object) -> list[object]:
    return list(value) if isinstance(value, list) else []  # pyright: ignore[reportUnknownArgumentType]


def render_operation(ctx: _Context) -> str:
    sigv4 = to_json(ctx.service.get_trait("aws.auth#sigv4"))
    protocol = to_json(ctx.service.get_trait("aws.protocols#restJson1"))
    api = to_json(ctx.service.get_trait("aws.api#service"))
    if not isinstance(sigv4, dict) or not isinstance(api, dict):
        msg = "the service needs aws.auth#sigv4 and aws.api#service traits"
        raise GenerationError(msg)
    if not isinstance(protocol, dict):
        msg = "only aws.protocols#restJson1 is supported"
        raise GenerationError(msg)
    versions = tuple(str(v) for v in _as_list(protocol.get("eventStreamHttp")))
    out = _header(ctx, '"""Operation metadata of the Polly streaming model."""')
    out += [
        "from dataclasses import dataclass",
        "",
        "",
        "@dataclass(frozen=True, slots=True, kw_only=True)",
        "class OperationMetadata:",
        '    """What the transport needs to know about an operation."""',
        "",
        "    name: str",
        "    method: str",
        '    """HTTP method."""',
        "    path: str",
        '    """HTTP request path (no labels for this service\'s streaming operation)."""',
        "    success_code: int",
        "    signing_name: str",
        '    """SigV4 signing name (``aws.auth#sigv4``)."""',
        "    content_type: str",
        '    """Request content type: the event-stream media type for streaming input."""',
        "    event_stream_http: tuple[str, ...]",
        '    """HTTP versions the protocol allows for event streams (``h2``)."""',
        "    input_event_stream: bool",
        "    output_event_stream: bool",
        "",
        "",
        f"SERVICE_ID = {json.dumps(api.get('sdkId'))}",
        f"ENDPOINT_PREFIX = {json.dumps(api.get('endpointPrefix'))}",
        f"API_VERSION = {json.dumps(ctx.service.version)}",
        f"SIGNING_NAME = {json.dumps(sigv4.get('name'))}",
        "",
    ]
    for op in ctx.operations:
        http = to_json(op.get_trait("http"))
        if not isinstance(http, dict):
            msg = f"{op.id}: needs the smithy.api#http trait"
            raise GenerationError(msg)
        input_shape = ctx.model.get_shape(op.input)
        output_shape = ctx.model.get_shape(op.output)
        streaming_in = ctx.stream_member(input_shape) is not None
        streaming_out = ctx.stream_member(output_shape) is not None
        content_type = EVENT_STREAM_CONTENT_TYPE if streaming_in else "application/json"
        out += [
            "",
            f"{constant_case(op.id.name)} = OperationMetadata(",
            f"    name={json.dumps(op.id.name)},",
            f"    method={json.dumps(http['method'])},",
            f"    path={json.dumps(http['uri'])},",
            f"    success_code={http.get('code', 200)!r},",
            "    signing_name=SIGNING_NAME,",
            f"    content_type={json.dumps(content_type)},",
            f"    event_stream_http={versions!r},",
            f"    input_event_stream={streaming_in},",
            f"    output_event_stream={streaming_out},",
            ")",
            docstring(_doc(op), fallback=op.id.name),
        ]
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------ package


def render_init(ctx: _Context, modules: dict[str, list[str]]) -> str:
    title = ctx.service.get_trait("title")
    doc = docstring(
        _doc(ctx.service),
        fallback=str(title or ctx.service.id.name),
    )
    summary = (
        f'"""Generated client model of {title} (``{ctx.service.id}``), trimmed to\n'
        + ", ".join(f"``{o.id.name}``" for o in ctx.operations)
        + ".\n\n"
        + doc.strip('"').strip()
        + '\n"""'
    )
    out = _header(ctx, summary)
    everything: list[str] = []
    for module, names in modules.items():
        out.append(f"from .{module} import {', '.join(sorted(names))}")
        everything += names
    out += ["", "__all__ = ["]
    out += [f'    "{n}",' for n in sorted(everything)]
    out.append("]")
    return "\n".join(out) + "\n"


def _as_object(value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        msg = f"expected a JSON object, got {type(value).__name__}"
        raise GenerationError(msg)
    return cast(dict[str, Any], value)


def _with_header(ctx: _Context, source: str) -> str:
    """Put the generated header after the module docstring of ``source``."""
    if not source.startswith('"""'):
        msg = "rendered module must start with its docstring"
        raise GenerationError(msg)
    end = source.index('"""', 3) + 3
    return "\n".join(_header(ctx, source[:end])) + "\n" + source[end:].lstrip("\n")


def render_package(model_bytes: bytes, partitions: dict[str, Any]) -> dict[str, str]:
    """Render every module of the generated package: file name -> source."""
    model = load_model(model_bytes)
    ctx = _collect(model, hashlib.sha256(model_bytes).hexdigest())
    ruleset = ctx.service.get_trait("smithy.rules#endpointRuleSet")
    if ruleset is None:
        msg = "the service has no smithy.rules#endpointRuleSet"
        raise GenerationError(msg)
    files = {
        "enums.py": render_enums(ctx),
        "shapes.py": render_shapes(ctx),
        "errors.py": render_errors(ctx),
        "serde.py": render_serde(ctx),
        "operation.py": render_operation(ctx),
        "endpoints.py": _with_header(
            ctx,
            endpoints.render_endpoints_module(_as_object(to_json(ruleset)), partitions),
        ),
    }
    exports = {
        "enums": ["OpenEnum", *(_class_name(e) for e in ctx.enums)],
        "errors": [
            "ERRORS_BY_CODE",
            "ServiceException",
            *(_class_name(e) for e in ctx.errors),
        ],
        "shapes": [
            *(
                _class_name(s)
                for s in ctx.structures
                if not (ctx.stream_member(s) is not None and len(s.members) == 1)
            ),
            *(_class_name(s) for s in ctx.streams),
            "UnknownEvent",
        ],
        "endpoints": [
            "Endpoint",
            "EndpointParameters",
            "EndpointResolutionError",
            "resolve_endpoint",
        ],
        "operation": [
            "OperationMetadata",
            *(constant_case(o.id.name) for o in ctx.operations),
        ],
    }
    files["__init__.py"] = render_init(ctx, exports)
    files["py.typed"] = ""
    return files


def _format(directory: Path) -> None:
    """Format with the project's pinned ruff, configured explicitly."""
    ruff = [sys.executable, "-m", "ruff"]
    config = ["--config", str(REPO / "pyproject.toml"), "--no-cache"]
    py_files = sorted(str(p) for p in directory.glob("*.py"))
    subprocess.run(
        [
            *ruff,
            "check",
            *config,
            "--fix-only",
            "--select",
            "I,F401,UP,RUF022",
            "--quiet",
            *py_files,
        ],
        check=True,
    )
    subprocess.run([*ruff, "format", *config, "--quiet", *py_files], check=True)


def generate(model_path: Path, partitions_path: Path, out: Path) -> None:
    """Render, format and write the package to ``out`` (replacing its contents)."""
    files = render_package(
        model_path.read_bytes(), json.loads(partitions_path.read_text())
    )
    with tempfile.TemporaryDirectory(prefix="polly-codegen-") as tmp:
        staging = Path(tmp) / out.name
        staging.mkdir()
        for name, text in files.items():
            (staging / name).write_text(text)
        _format(staging)
        out.mkdir(parents=True, exist_ok=True)
        for stale in out.iterdir():
            if stale.name not in files:
                if stale.is_dir():
                    shutil.rmtree(stale)
                else:
                    stale.unlink()
        for name in files:
            target = out / name
            if not target.exists() or not filecmp.cmp(
                staging / name, target, shallow=False
            ):
                shutil.copyfile(staging / name, target)


def compare(expected: Path, actual: Path) -> list[str]:
    """Files that differ between two generated trees (names relative to them)."""
    diffs: list[str] = []
    names = sorted(
        {p.name for p in expected.iterdir() if p.name != "__pycache__"}
        | {p.name for p in actual.iterdir() if p.name != "__pycache__"}
    )
    for name in names:
        a, b = expected / name, actual / name
        if not a.exists():
            diffs.append(f"{name}: missing from the checked-in tree")
        elif not b.exists():
            diffs.append(f"{name}: not produced by the generator (stale file)")
        elif not filecmp.cmp(a, b, shallow=False):
            diffs.append(f"{name}: differs")
    return diffs


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--partitions", type=Path, default=DEFAULT_PARTITIONS)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument(
        "--check",
        action="store_true",
        help="generate into a temporary directory and fail if --out differs",
    )
    args = parser.parse_args(argv)
    if not args.check:
        generate(args.model, args.partitions, args.out)
        return 0
    with tempfile.TemporaryDirectory(prefix="polly-check-") as tmp:
        fresh = Path(tmp) / PACKAGE
        generate(args.model, args.partitions, fresh)
        diffs = compare(args.out, fresh) if args.out.exists() else ["(no tree)"]
        if diffs:
            print(
                f"check-generated: {args.out} does not match the generator:",
                file=sys.stderr,
            )
            for line in diffs:
                print(f"  {line}", file=sys.stderr)
            subprocess.run(
                ["diff", "-ru", "-x", "__pycache__", str(args.out), str(fresh)],
                check=False,
            )
            print(
                "run `make generate` (and never edit generated/ by hand)",
                file=sys.stderr,
            )
            return 1
    print("check-generated: generated/ matches the model and the generator")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
