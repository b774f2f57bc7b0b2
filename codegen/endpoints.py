"""Compile a Smithy endpoint ruleset (``smithy.rules#endpointRuleSet``) to Python.

:func:`render_endpoints_module` turns the ruleset document and the AWS
partitions data into the source of a self-contained module (standard library
only) whose ``resolve_endpoint`` is the rules written out as nested ``if``
statements: no interpreter walks the ruleset at runtime.

The compiler type-checks the ruleset the way the rules engine specifies:

* a parameter without a default is optional until an ``isSet`` condition (or a
  ``required`` check at the start of resolution) proves it set, and only set
  values may be templated into strings or passed to functions;
* a condition holds when its function returns neither ``false`` nor an empty
  optional, and a condition with ``assign`` binds that result for the
  conditions after it and the rules under it;
* rules are tried in order; a tree rule whose conditions hold is terminal, so
  running out of its sub-rules is an error, as is running out of top-level rules.

Anything the compiler does not understand (an unknown function, a malformed
path, a value that may be unset where a set one is needed) raises
:class:`RulesetCompileError` at generation time, naming the culprit.
"""

from __future__ import annotations

import enum
import keyword
import re
import textwrap
from collections.abc import Callable, Generator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final, TypeIs

__all__ = ["RulesetCompileError", "render_endpoints_module"]


class RulesetCompileError(ValueError):
    """The ruleset uses something the compiler does not support, or is ill-typed."""


# ---------------------------------------------------------------------------
# Static types of rule expressions


class _Kind(enum.Enum):
    STRING = "str"
    BOOLEAN = "bool"
    INTEGER = "int"
    STRING_ARRAY = "tuple[str, ...]"
    PARTITION = "_Partition"
    URL = "_Url"
    ARN = "_Arn"


@dataclass(frozen=True, slots=True)
class _Type:
    kind: _Kind
    optional: bool = False

    @property
    def annotation(self) -> str:
        base = self.kind.value
        return f"{base} | None" if self.optional else base

    def required(self) -> _Type:
        return _Type(self.kind)

    def describe(self) -> str:
        names = {
            _Kind.STRING: "string",
            _Kind.BOOLEAN: "boolean",
            _Kind.INTEGER: "integer",
            _Kind.STRING_ARRAY: "stringArray",
            _Kind.PARTITION: "Partition",
            _Kind.URL: "URL",
            _Kind.ARN: "ARN",
        }
        name = names[self.kind]
        return f"option<{name}>" if self.optional else name


_STRING: Final = _Type(_Kind.STRING)
_BOOLEAN: Final = _Type(_Kind.BOOLEAN)
_INTEGER: Final = _Type(_Kind.INTEGER)

# Records the functions return: rules attribute name -> (Python field, type).
_RECORD_FIELDS: Final[Mapping[_Kind, Mapping[str, tuple[str, _Type]]]] = {
    _Kind.PARTITION: {
        "name": ("name", _STRING),
        "dnsSuffix": ("dns_suffix", _STRING),
        "dualStackDnsSuffix": ("dual_stack_dns_suffix", _STRING),
        "supportsFIPS": ("supports_fips", _BOOLEAN),
        "supportsDualStack": ("supports_dual_stack", _BOOLEAN),
        "implicitGlobalRegion": ("implicit_global_region", _STRING),
    },
    _Kind.URL: {
        "scheme": ("scheme", _STRING),
        "authority": ("authority", _STRING),
        "path": ("path", _STRING),
        "normalizedPath": ("normalized_path", _STRING),
        "isIp": ("is_ip", _BOOLEAN),
    },
    _Kind.ARN: {
        "partition": ("partition", _STRING),
        "service": ("service", _STRING),
        "region": ("region", _STRING),
        "accountId": ("account_id", _STRING),
        "resourceId": ("resource_id", _Type(_Kind.STRING_ARRAY)),
    },
}

# Python precedence of generated expressions (higher binds tighter).
_ATOM: Final = 4
_COMPARE: Final = 3
_NOT: Final = 2


@dataclass(frozen=True, slots=True)
class _Expr:
    """A compiled rules expression: Python source plus its static type."""

    code: str
    type: _Type
    precedence: int = _ATOM
    # The value, when it is known at generation time (a literal).
    constant: str | bool | int | None = None
    # Python source of the negation, when there is a nicer one than `not (...)`.
    negation: str | None = None
    # Rules names proven set when this expression is true (from `isSet`).
    narrows: tuple[str, ...] = ()
    # The rules name, when the expression is a plain reference.
    ref: str | None = None

    @property
    def is_constant(self) -> bool:
        return self.constant is not None

    def operand(self, min_precedence: int = _ATOM) -> str:
        """The code, parenthesized if it binds looser than an operand needs."""
        return self.code if self.precedence >= min_precedence else f"({self.code})"


def _constant(value: str | bool | int) -> _Expr:
    if isinstance(value, bool):
        return _Expr(repr(value), _BOOLEAN, constant=value)
    if isinstance(value, int):
        return _Expr(repr(value), _INTEGER, constant=value)
    return _Expr(_py_string(value), _STRING, constant=value)


def _negate(expr: _Expr) -> _Expr:
    if isinstance(expr.constant, bool):
        return _constant(not expr.constant)
    if expr.negation is not None:
        return _Expr(expr.negation, _BOOLEAN, _COMPARE, negation=expr.code)
    return _Expr(f"not {expr.operand(_NOT)}", _BOOLEAN, _NOT, negation=expr.code)


# ---------------------------------------------------------------------------
# Python source helpers


def _py_string(text: str, *, f_string: bool = False) -> str:
    """A double-quoted Python literal for ``text`` (the body of an f-string)."""
    out: list[str] = []
    for char in text:
        if char == "\\":
            out.append("\\\\")
        elif char == '"':
            out.append('\\"')
        elif f_string and char in "{}":
            out.append(char * 2)
        elif char.isprintable():
            out.append(char)
        else:
            out.append(repr(char)[1:-1])
    body = "".join(out)
    return body if f_string else f'"{body}"'


def _py_regex(pattern: str) -> str:
    """A raw string literal for a regular expression, when one can hold it."""
    if '"' in pattern or pattern.endswith("\\") or not pattern.isprintable():
        return _py_string(pattern)
    return f'r"{pattern}"'


def _docstring(text: str, indent: str) -> list[str]:
    """Lines of a docstring for ``text``, wrapped to fit under 88 columns."""
    width = max(88 - len(indent) - 6, 40)
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text.strip())]
    lines: list[str] = []
    for paragraph in paragraphs:
        if lines:
            lines.append("")
        lines.extend(textwrap.wrap(paragraph, width) or [""])
    escaped = [_docstring_line(line) for line in lines]
    if escaped[-1].endswith('"'):
        escaped[-1] = escaped[-1][:-1] + '\\"'
    if len(escaped) == 1:
        return [f'{indent}"""{escaped[0]}"""']
    return [
        f'{indent}"""{escaped[0]}',
        *(f"{indent}{line}" if line else "" for line in escaped[1:]),
        f'{indent}"""',
    ]


def _docstring_line(text: str) -> str:
    out = [
        "\\\\" if char == "\\" else char if char.isprintable() else repr(char)[1:-1]
        for char in text
    ]
    return "".join(out).replace('"""', '\\"""')


def _snake_case(name: str) -> str:
    """``UseDualStack`` -> ``use_dual_stack``, ``UseFIPS`` -> ``use_fips``."""
    text = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    text = re.sub(r"([a-z\d])([A-Z])", r"\1_\2", text)
    text = re.sub(r"\W", "_", text, flags=re.ASCII).lower().strip("_")
    text = re.sub(r"_+", "_", text) or "value"
    if text[0].isdigit():
        text = f"v_{text}"
    return f"{text}_" if keyword.iskeyword(text) else text


def _constant_name(name: str) -> str:
    return re.sub(r"\W+", "_", name, flags=re.ASCII).strip("_").upper() or "X"


class _Writer:
    """Indented lines of Python source."""

    def __init__(self, level: int = 0) -> None:
        self.lines: list[str] = []
        self.level = level

    def line(self, text: str = "") -> None:
        self.lines.append(f"{'    ' * self.level}{text}" if text else "")

    @contextmanager
    def block(self, header: str) -> Generator[None]:
        self.line(header)
        self.level += 1
        try:
            yield
        finally:
            self.level -= 1


# ---------------------------------------------------------------------------
# Runtime support emitted into the generated module, only when a rule needs it

_PREAMBLE: Final = '''\
type JsonValue = (
    str | bool | int | float | Sequence[JsonValue] | Mapping[str, JsonValue] | None
)
"""A JSON value, as found in endpoint properties."""
'''

_ENDPOINT_CLASSES: Final = '''\
@dataclass(frozen=True, slots=True)
class Endpoint:
    """A resolved endpoint."""

    url: str
    """The URL to send the request to."""
    headers: Mapping[str, tuple[str, ...]] = MappingProxyType({})
    """Transport headers the request must carry, by name."""
    properties: Mapping[str, JsonValue] = MappingProxyType({})
    """Further endpoint properties, such as ``authSchemes``."""


class EndpointResolutionError(ValueError):
    """The endpoint rules reject the parameters; the message says why."""
'''

_PARTITION_CLASS: Final = '''\
@dataclass(frozen=True, slots=True)
class _Partition:
    """What the ``aws.partition`` function returns for a region."""

    name: str
    dns_suffix: str
    dual_stack_dns_suffix: str
    supports_fips: bool
    supports_dual_stack: bool
    implicit_global_region: str
'''

_PARTITION_FUNCTION: Final = '''\
def _aws_partition(region: str) -> _Partition:
    """The ``aws.partition`` function: the partition ``region`` belongs to.

    A region a partition lists belongs to it; otherwise the first partition
    whose region pattern matches; otherwise the ``aws`` partition.
    """
    partition = _REGION_PARTITIONS.get(region)
    if partition is not None:
        return partition
    for pattern, candidate in _REGION_PATTERNS:
        if pattern.fullmatch(region):
            return candidate
    return _DEFAULT_PARTITION
'''

_HOST_LABEL_HELPER: Final = '''\
_HOST_LABEL: Final = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9-]{0,62}", re.ASCII)


def _is_valid_host_label(value: str, allow_sub_domains: bool) -> bool:
    """The ``isValidHostLabel`` function (RFC 1123 host labels)."""
    labels = value.split(".") if allow_sub_domains else [value]
    return all(_HOST_LABEL.fullmatch(label) for label in labels)
'''

_S3_BUCKET_HELPER: Final = '''\
_IPV4_LIKE: Final = re.compile(r"\\d+\\.\\d+\\.\\d+\\.\\d+", re.ASCII)


def _is_virtual_hostable_s3_bucket(value: str, allow_sub_domains: bool) -> bool:
    """The ``aws.isVirtualHostableS3Bucket`` function.

    True for lower-case names of at least three characters that do not look
    like an IPv4 address and are valid host labels.
    """
    return (
        len(value) >= 3
        and value == value.lower()
        and not _IPV4_LIKE.fullmatch(value)
        and _is_valid_host_label(value, allow_sub_domains)
    )
'''

_SUBSTRING_HELPER: Final = '''\
def _substring(value: str, start: int, stop: int, reverse: bool) -> str | None:
    """The ``substring`` function; ``reverse`` counts from the end.

    None when ``value`` is too short or not ASCII.
    """
    if start >= stop or len(value) < stop or not value.isascii():
        return None
    if reverse:
        return value[len(value) - stop : len(value) - start]
    return value[start:stop]
'''

_URI_ENCODE_HELPER: Final = '''\
def _uri_encode(value: str) -> str:
    """The ``uriEncode`` function: percent-encode all but RFC 3986 unreserved."""
    return quote(value, safe="")
'''

_PARSE_URL_HELPER: Final = '''\
@dataclass(frozen=True, slots=True)
class _Url:
    """What the ``parseURL`` function returns."""

    scheme: str
    authority: str
    path: str
    normalized_path: str
    is_ip: bool


def _parse_url(value: str) -> _Url | None:
    """The ``parseURL`` function: the parts of an http(s) URL.

    None for other schemes, and for URLs with a query, a fragment, user info
    or a malformed port.
    """
    if "?" in value or "#" in value:
        return None
    try:
        parts = urlsplit(value)
        host, _port = parts.hostname, parts.port  # `port` validates the port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not host or "@" in parts.netloc:
        return None
    normalized_path = parts.path if parts.path.startswith("/") else f"/{parts.path}"
    if not normalized_path.endswith("/"):
        normalized_path = f"{normalized_path}/"
    try:
        ipaddress.ip_address(host)
    except ValueError:
        is_ip = False
    else:
        is_ip = True
    return _Url(
        scheme=parts.scheme,
        authority=parts.netloc,
        path=parts.path,
        normalized_path=normalized_path,
        is_ip=is_ip,
    )
'''

_PARSE_ARN_HELPER: Final = '''\
_ARN_RESOURCE_SEPARATORS: Final = re.compile(r"[:/]")


@dataclass(frozen=True, slots=True)
class _Arn:
    """What the ``aws.parseArn`` function returns."""

    partition: str
    service: str
    region: str
    account_id: str
    resource_id: tuple[str, ...]


def _parse_arn(value: str) -> _Arn | None:
    """The ``aws.parseArn`` function: the parts of an ARN, or None."""
    parts = value.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        return None
    _, partition, service, region, account_id, resource = parts
    if not partition or not service or not resource:
        return None
    return _Arn(
        partition=partition,
        service=service,
        region=region,
        account_id=account_id,
        resource_id=tuple(_ARN_RESOURCE_SEPARATORS.split(resource)),
    )
'''

_ITEM_AT_HELPER: Final = '''\
def _item_at(values: tuple[str, ...], index: int) -> str | None:
    """A ``getAttr`` index: the item at ``index``, or None past the end."""
    return values[index] if index < len(values) else None
'''


@dataclass(frozen=True, slots=True)
class _Support:
    """A block of runtime support and what it needs."""

    source: str
    imports: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _HelperCall:
    """A library function implemented by a helper in the generated module."""

    function: str
    signature: tuple[_Type, ...]
    result: _Type


_HELPER_CALLS: Final[Mapping[str, _HelperCall]] = {
    # Unknown regions fall back to the `aws` partition: never empty.
    "aws.partition": _HelperCall("_aws_partition", (_STRING,), _Type(_Kind.PARTITION)),
    "parseURL": _HelperCall("_parse_url", (_STRING,), _Type(_Kind.URL, True)),
    "substring": _HelperCall(
        "_substring",
        (_STRING, _INTEGER, _INTEGER, _BOOLEAN),
        _Type(_Kind.STRING, True),
    ),
    "isValidHostLabel": _HelperCall(
        "_is_valid_host_label", (_STRING, _BOOLEAN), _BOOLEAN
    ),
    "uriEncode": _HelperCall("_uri_encode", (_STRING,), _STRING),
    "aws.parseArn": _HelperCall("_parse_arn", (_STRING,), _Type(_Kind.ARN, True)),
    "aws.isVirtualHostableS3Bucket": _HelperCall(
        "_is_virtual_hostable_s3_bucket", (_STRING, _BOOLEAN), _BOOLEAN
    ),
}

_SUPPORT: Final[Mapping[str, _Support]] = {
    "isValidHostLabel": _Support(_HOST_LABEL_HELPER, ("re", "typing.Final")),
    "aws.isVirtualHostableS3Bucket": _Support(
        _S3_BUCKET_HELPER, ("re", "typing.Final"), ("isValidHostLabel",)
    ),
    "substring": _Support(_SUBSTRING_HELPER),
    "uriEncode": _Support(_URI_ENCODE_HELPER, ("urllib.parse.quote",)),
    "parseURL": _Support(
        _PARSE_URL_HELPER,
        ("ipaddress", "urllib.parse.urlsplit", "dataclasses.dataclass"),
    ),
    "aws.parseArn": _Support(
        _PARSE_ARN_HELPER, ("re", "typing.Final", "dataclasses.dataclass")
    ),
    "getAttr[index]": _Support(_ITEM_AT_HELPER),
}


def _render_imports(imports: set[str]) -> list[str]:
    """Import statements in isort order: plain imports, then `from` imports."""
    plain = sorted(name for name in imports if "." not in name)
    from_imports: dict[str, set[str]] = {}
    for name in imports:
        if "." in name:
            module, _, member = name.rpartition(".")
            from_imports.setdefault(module, set()).add(member)
    lines = [f"import {name}" for name in plain]
    for module in sorted(from_imports):
        members = sorted(from_imports[module], key=_isort_member_key)
        lines.append(f"from {module} import {', '.join(members)}")
    return lines


def _isort_member_key(name: str) -> tuple[int, str]:
    # isort's order-by-type: CONSTANTS, then Classes, then functions/variables.
    if name.isupper() and len(name) > 1:
        return (0, name)
    if name[:1].isupper():
        return (1, name)
    return (2, name)


# ---------------------------------------------------------------------------
# The compiler


@dataclass(frozen=True, slots=True)
class _Parameter:
    name: str
    field: str
    type: _Type  # the field's type: optional unless a default is given
    default: str | bool | tuple[str, ...] | None
    required: bool
    documentation: str
    built_in: str | None
    deprecated: Mapping[str, Any] | None


@dataclass(frozen=True, slots=True)
class _Binding:
    """A rules name in scope: its Python local and its type at this point."""

    local: str
    type: _Type


@dataclass(slots=True)
class _Counts:
    """What ruff's pylint rules count in ``resolve_endpoint``."""

    statements: int = 1  # the docstring
    branches: int = 0
    returns: int = 0


class _Steps:
    """A rule's conditions, compiled: tests, and assignments between them."""

    def __init__(self, scope: Mapping[str, _Binding]) -> None:
        self.steps: list[tuple[str, str]] = []  # ("test" | "assign", code)
        self.scope = dict(scope)  # the names the rule's result sees
        self.dead = False  # a condition is always false


_PARAMETER_TYPES: Final[Mapping[str, _Kind]] = {
    "string": _Kind.STRING,
    "boolean": _Kind.BOOLEAN,
    "stringarray": _Kind.STRING_ARRAY,
}

_EXHAUSTED: Final = "Rules exhausted: no endpoint rule matched the parameters"


def _check_default(
    name: str, kind: _Kind, default: Any
) -> str | bool | tuple[str, ...] | None:
    """A parameter's default, checked against the parameter's type."""
    if default is None:
        return None
    if kind is _Kind.BOOLEAN and isinstance(default, bool):
        return default
    if kind is _Kind.STRING and isinstance(default, str):
        return default
    if (
        kind is _Kind.STRING_ARRAY
        and _is_array(default)
        and all(isinstance(item, str) for item in default)
    ):
        return tuple(str(item) for item in default)
    raise RulesetCompileError(
        f"parameter {name!r}: default {default!r} does not match its type"
    )


def _is_object(value: object) -> TypeIs[Mapping[str, Any]]:
    return isinstance(value, Mapping)


def _is_array(value: object) -> TypeIs[Sequence[Any]]:
    return isinstance(value, list | tuple)


def _object(value: object, what: str) -> Mapping[str, Any]:
    """``value`` as a JSON object, or a compile error naming ``what``."""
    if not _is_object(value):
        raise RulesetCompileError(f"{what} must be a JSON object, not {value!r}")
    return value


def _array(value: object, what: str) -> Sequence[Any]:
    """``value`` as a JSON array, or a compile error naming ``what``."""
    if not _is_array(value):
        raise RulesetCompileError(f"{what} must be a JSON array, not {value!r}")
    return value


def _lines(text: str) -> list[str]:
    return text.splitlines()


def _py_tuple(items: Sequence[str]) -> str:
    """A tuple display of already-rendered items."""
    return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"


class _Compiler:
    """Compiles one ruleset; :meth:`render` is called once."""

    def __init__(
        self, ruleset: Mapping[str, Any], partitions: Mapping[str, Any]
    ) -> None:
        self._ruleset = ruleset
        self._partitions = partitions
        self._parameters = self._read_parameters()
        self._support: list[str] = []  # support blocks used, in first-use order
        self._imports: set[str] = {
            "collections.abc.Mapping",
            "collections.abc.Sequence",
            "dataclasses.dataclass",
            "types.MappingProxyType",
        }
        self._used_parameters: set[str] = set()
        # Python locals of assigned variables -> their Python type, so that a
        # name reused in sibling rules always holds one type.
        self._locals: dict[str, str] = {
            p.field: p.type.annotation for p in self._parameters
        }
        self._counts = _Counts()

    # -- parameters ---------------------------------------------------------

    def _read_parameters(self) -> list[_Parameter]:
        raw = _object(self._ruleset.get("parameters", {}), "ruleset 'parameters'")
        parameters: list[_Parameter] = []
        fields: dict[str, str] = {}
        for name, spec in raw.items():
            parameters.append(self._read_parameter(str(name), spec))
            field_name = parameters[-1].field
            if field_name in fields or field_name == "params":
                raise RulesetCompileError(
                    f"parameters {fields.get(field_name, 'params')!r} and {name!r}"
                    f" both map to the Python name {field_name!r}"
                )
            fields[field_name] = name
        return parameters

    @staticmethod
    def _read_parameter(name: str, value: Any) -> _Parameter:
        spec = _object(value, f"parameter {name!r}")
        type_name = str(spec.get("type", "")).lower()
        kind = _PARAMETER_TYPES.get(type_name)
        if kind is None:
            raise RulesetCompileError(
                f"parameter {name!r} has unsupported type {spec.get('type')!r}"
            )
        checked_default = _check_default(name, kind, spec.get("default"))
        deprecated = spec.get("deprecated")
        built_in = spec.get("builtIn")
        return _Parameter(
            name=name,
            field=_snake_case(name),
            type=_Type(kind, optional=checked_default is None),
            default=checked_default,
            required=bool(spec.get("required", False)),
            documentation=str(spec.get("documentation", "")).strip(),
            built_in=None if built_in is None else str(built_in),
            deprecated=None if deprecated is None else _object(deprecated, name),
        )

    # -- module -------------------------------------------------------------

    def render(self) -> str:
        rules = _array(self._ruleset.get("rules"), "ruleset 'rules'")
        if not rules:
            raise RulesetCompileError("ruleset 'rules' must not be empty")
        body = _Writer(level=1)
        scope = {
            p.name: _Binding(p.field, p.type.required() if p.required else p.type)
            for p in self._parameters
        }
        self._emit_rules(rules, scope, body, where="the ruleset")

        sections: list[list[str]] = []
        sections.append(self._render_parameters())
        sections.append(_lines(_ENDPOINT_CLASSES))
        if "aws.partition" in self._support:
            self._imports.update({"re", "typing.Final", "dataclasses.dataclass"})
            sections.extend(_render_partitions(self._partitions))
        for name in self._support:
            if name != "aws.partition":
                sections.append(_lines(_SUPPORT[name].source))
        sections.append(self._render_resolver(body))

        head = [
            '"""Endpoint resolution, compiled from the service\'s Smithy endpoint'
            ' rules."""',
            "",
            *_render_imports(self._imports),
            "",
            "__all__ = [",
            '    "Endpoint",',
            '    "EndpointParameters",',
            '    "EndpointResolutionError",',
            '    "JsonValue",',
            '    "resolve_endpoint",',
            "]",
            "",
            *_lines(_PREAMBLE),
        ]
        out = head
        for section in sections:
            out.extend(["", "", *section])
        return "\n".join(out) + "\n"

    def _render_parameters(self) -> list[str]:
        w = _Writer()
        w.line("@dataclass(frozen=True, slots=True, kw_only=True)")
        with w.block("class EndpointParameters:"):
            w.lines.extend(
                _docstring(
                    "The inputs of endpoint resolution, one per parameter of the"
                    " endpoint rules.",
                    "    ",
                )
            )
            for parameter in self._parameters:
                w.line()
                if parameter.default is None:
                    default = "None"
                elif isinstance(parameter.default, tuple):
                    default = _py_tuple([_py_string(v) for v in parameter.default])
                elif isinstance(parameter.default, bool):
                    default = repr(parameter.default)
                else:
                    default = _py_string(parameter.default)
                w.line(f"{parameter.field}: {parameter.type.annotation} = {default}")
                w.lines.extend(_docstring(self._field_doc(parameter), "    "))
        return w.lines

    @staticmethod
    def _field_doc(parameter: _Parameter) -> str:
        parts = [parameter.documentation or f"The ``{parameter.name}`` parameter."]
        notes = [f"Rules parameter ``{parameter.name}``"]
        if parameter.built_in:
            notes.append(f"built-in ``{parameter.built_in}``")
        if parameter.required and parameter.default is None:
            notes.append("required")
        parts.append(", ".join(notes) + ".")
        if parameter.deprecated is not None:
            message = str(parameter.deprecated.get("message", "")).strip()
            since = str(parameter.deprecated.get("since", "")).strip()
            text = "Deprecated" + (f" since {since}" if since else "") + "."
            parts.append(f"{text} {message}".strip())
        return "\n\n".join(parts)

    def _render_resolver(self, body: _Writer) -> list[str]:
        w = _Writer()
        prologue = _Writer(level=1)
        for parameter in self._parameters:
            used = parameter.name in self._used_parameters
            if used:
                prologue.line(f"{parameter.field} = params.{parameter.field}")
                self._counts.statements += 1
            if parameter.required and parameter.default is None:
                subject = parameter.field if used else f"params.{parameter.field}"
                message = _py_string(
                    f"Missing required endpoint parameter: {parameter.name}"
                )
                with prologue.block(f"if {subject} is None:"):
                    prologue.line(f"raise EndpointResolutionError({message})")
                self._counts.statements += 2
                self._counts.branches += 1
        noqa = [
            code
            for code, count, limit in (
                ("PLR0911", self._counts.returns, 6),
                ("PLR0912", self._counts.branches, 12),
                ("PLR0915", self._counts.statements, 50),
            )
            if count > limit
        ]
        suffix = f"  # noqa: {', '.join(noqa)}" if noqa else ""
        w.line(f"def resolve_endpoint(params: EndpointParameters) -> Endpoint:{suffix}")
        w.lines.extend(
            [
                '    """Resolve the endpoint for a request from its endpoint'
                " parameters.",
                "",
                "    The service's endpoint rules, compiled: they are tried in order"
                " and the",
                "    first whose conditions hold decides the endpoint or the error.",
                "",
                "    Raises:",
                "        EndpointResolutionError: The rules reject the parameters;"
                " the message",
                "            is the rules' own error text.",
                '    """',
            ]
        )
        w.lines.extend(prologue.lines)
        w.lines.extend(body.lines)
        return w.lines

    def _use(self, support: str) -> None:
        if support in self._support:
            return
        if support == "aws.partition":
            self._support.append(support)
            return
        block = _SUPPORT[support]
        for requirement in block.requires:
            self._use(requirement)
        self._imports.update(block.imports)
        self._support.append(support)

    # -- rules --------------------------------------------------------------

    def _emit_rules(
        self,
        rules: Sequence[Any],
        scope: Mapping[str, _Binding],
        w: _Writer,
        where: str,
    ) -> None:
        for index, rule in enumerate(rules):
            if self._emit_rule(rule, scope, w, f"{where}, rule {index + 1}"):
                return  # the rest can never be reached
        w.line(f"raise EndpointResolutionError({_py_string(_EXHAUSTED)})")
        self._counts.statements += 1

    def _emit_rule(
        self, value: Any, scope: Mapping[str, _Binding], w: _Writer, where: str
    ) -> bool:
        """Emit one rule; True when it always ends resolution (no test failed)."""
        rule = _object(value, where)
        rule_type = rule.get("type")
        if rule_type not in ("endpoint", "error", "tree"):
            raise RulesetCompileError(f"{where}: unknown rule type {rule_type!r}")
        compiled = self._compile_conditions(rule.get("conditions", []), scope, where)
        if compiled.dead:
            return False
        documentation = rule.get("documentation")
        if isinstance(documentation, str) and documentation.strip():
            for line in textwrap.wrap(" ".join(documentation.split()), 76):
                w.line(f"# {line}")
        start_level = w.level
        self._emit_guards(compiled.steps, w)
        conditional = w.level > start_level
        self._emit_result(rule, compiled.scope, w, where)
        w.level = start_level
        return not conditional

    def _emit_guards(self, steps: Sequence[tuple[str, str]], w: _Writer) -> None:
        """Open one ``if`` per run of tests; assignments go between them."""
        tests: list[str] = []
        for step, code in steps:
            if step == "test":
                tests.append(code)
                continue
            if tests:
                self._open_if(tests, w)
                tests = []
            w.line(code)
            self._counts.statements += 1
        if tests:
            self._open_if(tests, w)

    def _emit_result(
        self,
        rule: Mapping[str, Any],
        scope: Mapping[str, _Binding],
        w: _Writer,
        where: str,
    ) -> None:
        """What a rule does once its conditions hold."""
        if rule["type"] == "endpoint":
            self._emit_endpoint(rule.get("endpoint"), scope, w, where)
        elif rule["type"] == "error":
            message = self._compile_string(rule.get("error"), scope, f"{where} error")
            w.line(f"raise EndpointResolutionError({message.code})")
            self._counts.statements += 1
        else:
            sub_rules = _array(rule.get("rules"), f"{where}: tree rule 'rules'")
            if not sub_rules:
                raise RulesetCompileError(f"{where}: a tree rule needs rules")
            self._emit_rules(sub_rules, scope, w, where)

    def _open_if(self, tests: list[str], w: _Writer) -> None:
        w.line(f"if {' and '.join(tests)}:")
        w.level += 1
        self._counts.statements += 1
        self._counts.branches += 1

    def _emit_endpoint(
        self, value: Any, scope: Mapping[str, _Binding], w: _Writer, where: str
    ) -> None:
        endpoint = _object(value, f"{where}: 'endpoint'")
        arguments = [
            f"url={self._compile_string(endpoint.get('url'), scope, where).code}"
        ]
        headers = _object(endpoint.get("headers") or {}, f"{where}: 'headers'")
        if headers:
            items: list[str] = []
            for name, values in headers.items():
                at = f"{where}, header {name!r}"
                codes = [
                    self._compile_string(v, scope, at).code for v in _array(values, at)
                ]
                if not codes:
                    raise RulesetCompileError(f"{at}: needs at least one value")
                items.append(f"{_py_string(str(name))}: {_py_tuple(codes)}")
            arguments.append(f"headers={{{', '.join(items)}}}")
        properties = _object(endpoint.get("properties") or {}, f"{where}: 'properties'")
        if properties:
            arguments.append(
                f"properties={self._compile_document(properties, scope, where)}"
            )
        w.line(f"return Endpoint({', '.join(arguments)})")
        self._counts.returns += 1

    def _compile_document(
        self, value: Any, scope: Mapping[str, _Binding], where: str
    ) -> str:
        """A property value: JSON with template strings."""
        if _is_object(value):
            items = ", ".join(
                f"{_py_string(k)}: {self._compile_document(v, scope, where)}"
                for k, v in value.items()
            )
            return f"{{{items}}}"
        if _is_array(value):
            items = ", ".join(self._compile_document(v, scope, where) for v in value)
            return f"[{items}]"
        if isinstance(value, str):
            return self._compile_template(value, scope, where).code
        if value is None or isinstance(value, (bool, int, float)):
            return repr(value)
        raise RulesetCompileError(f"{where}: unsupported property value {value!r}")

    # -- conditions -----------------------------------------------------------

    def _compile_conditions(
        self, conditions: Any, scope: Mapping[str, _Binding], where: str
    ) -> _Steps:
        result = _Steps(scope)
        items = _array(conditions, f"{where}: 'conditions'")
        for number, value in enumerate(items, start=1):
            at = f"{where}, condition {number}"
            condition = _object(value, at)
            if "fn" not in condition:
                raise RulesetCompileError(f"{at}: a condition must be a function call")
            expr = self._compile_function(condition, result.scope, at)
            assign = condition.get("assign")
            if assign is not None:
                self._compile_assignment(str(assign), expr, result, at)
            elif expr.type.optional:
                result.steps.append(("test", f"{expr.operand()} is not None"))
            elif expr.type.kind is _Kind.BOOLEAN:
                if expr.constant is False:
                    result.dead = True
                    return result
                if expr.constant is not True:
                    result.steps.append(("test", expr.code))
            # Any other value is always present: the condition always holds.
            for name in expr.narrows:
                binding = result.scope[name]
                result.scope[name] = _Binding(binding.local, binding.type.required())
        return result

    def _compile_assignment(
        self, name: str, expr: _Expr, result: _Steps, where: str
    ) -> None:
        if name in result.scope:
            raise RulesetCompileError(f"{where}: {name!r} is already defined")
        if expr.type.kind is _Kind.BOOLEAN and expr.constant is False:
            result.dead = True
            return
        python_type = expr.type.annotation
        local = self._allocate_local(name, python_type, result.scope)
        if expr.type.optional:
            result.steps.append(("test", f"({local} := {expr.code}) is not None"))
        elif expr.type.kind is _Kind.BOOLEAN and not expr.is_constant:
            result.steps.append(("test", f"({local} := {expr.code})"))
        else:
            result.steps.append(("assign", f"{local} = {expr.code}"))
        result.scope[name] = _Binding(local, expr.type.required())

    def _allocate_local(
        self, name: str, python_type: str, scope: Mapping[str, _Binding]
    ) -> str:
        base = _snake_case(name)
        in_scope = {binding.local for binding in scope.values()}
        candidate, suffix = base, 1
        while (
            candidate in in_scope
            or candidate == "params"
            or self._locals.get(candidate, python_type) != python_type
            or any(p.field == candidate for p in self._parameters)
        ):
            suffix += 1
            candidate = f"{base}_{suffix}"
        self._locals[candidate] = python_type
        return candidate

    # -- expressions --------------------------------------------------------

    def _compile_value(
        self, value: Any, scope: Mapping[str, _Binding], where: str
    ) -> _Expr:
        if isinstance(value, bool | int) or value is None:
            if value is None:
                raise RulesetCompileError(f"{where}: null is not a rules value")
            return _constant(value)
        if isinstance(value, str):
            return self._compile_template(value, scope, where)
        if _is_object(value):
            if "ref" in value:
                return self._compile_ref(str(value["ref"]), scope, where)
            if "fn" in value:
                return self._compile_function(value, scope, where)
        raise RulesetCompileError(f"{where}: unsupported rules value {value!r}")

    def _compile_ref(
        self, name: str, scope: Mapping[str, _Binding], where: str
    ) -> _Expr:
        binding = scope.get(name)
        if binding is None:
            raise RulesetCompileError(f"{where}: unknown reference {name!r}")
        if any(p.name == name for p in self._parameters):
            self._used_parameters.add(name)
        return _Expr(binding.local, binding.type, ref=name)

    def _compile_string(
        self, value: Any, scope: Mapping[str, _Binding], where: str
    ) -> _Expr:
        """A value that must be a set string (URL, error, header value)."""
        expr = self._compile_value(value, scope, where)
        self._expect(expr, _STRING, where)
        return expr

    def _compile_template(
        self, template: str, scope: Mapping[str, _Binding], where: str
    ) -> _Expr:
        """``"https://{Region}.{PartitionResult#dnsSuffix}"`` -> an f-string."""
        segments: list[str | _Expr] = []  # literal text and holes, in order
        literal: list[str] = []
        index = 0
        while index < len(template):
            char = template[index]
            if template.startswith(("{{", "}}"), index):
                literal.append(char)
                index += 2
            elif char == "}":
                raise RulesetCompileError(f"{where}: unmatched '}}' in {template!r}")
            elif char == "{":
                end = template.find("}", index)
                if end == -1:
                    raise RulesetCompileError(f"{where}: unclosed '{{' in {template!r}")
                if literal:
                    segments.append("".join(literal))
                    literal = []
                hole = template[index + 1 : end]
                segments.append(
                    self._compile_hole(hole, scope, f"{where}, template {template!r}")
                )
                index = end + 1
            else:
                literal.append(char)
                index += 1
        if literal:
            segments.append("".join(literal))
        holes = [segment for segment in segments if isinstance(segment, _Expr)]
        if not holes:
            return _constant("".join(literal))
        if len(segments) == 1:
            return holes[0]  # "{Name}" is just the value
        body = "".join(
            f"{{{segment.code}}}"
            if isinstance(segment, _Expr)
            else _py_string(segment, f_string=True)
            for segment in segments
        )
        return _Expr(f'f"{body}"', _STRING)

    def _compile_hole(
        self, hole: str, scope: Mapping[str, _Binding], where: str
    ) -> _Expr:
        name, _, path = hole.partition("#")
        expr = self._compile_ref(name.strip(), scope, where)
        if path:
            expr = self._get_attr(expr, path, where)
        self._expect(expr, _STRING, f"{where}, {{{hole}}}")
        return expr

    @staticmethod
    def _expect(expr: _Expr, expected: _Type, where: str) -> None:
        if expr.type == expected:
            return
        hint = ""
        if expr.type.required() == expected:
            hint = " (it may be unset: test it with isSet or bind it with assign)"
        raise RulesetCompileError(
            f"{where}: expected {expected.describe()} but found"
            f" {expr.type.describe()}{hint}"
        )

    def _compile_function(
        self, call: Mapping[str, Any], scope: Mapping[str, _Binding], where: str
    ) -> _Expr:
        name = call.get("fn")
        argv = _array(call.get("argv", []), f"{where}: 'argv' of {name!r}")
        at = f"{where}, {name}"
        if name == "getAttr":
            return self._compile_get_attr(argv, scope, at)
        operator = _OPERATORS.get(str(name))
        if operator is None and name not in _HELPER_CALLS:
            raise RulesetCompileError(
                f"{where}: unsupported endpoint rules function {name!r}"
            )
        args = [self._compile_value(arg, scope, at) for arg in argv]
        if operator is None:
            return self._call(str(name), args, at)
        return operator(self, args, at)

    def _arity(self, args: Sequence[_Expr], count: int, where: str) -> None:
        if len(args) != count:
            raise RulesetCompileError(
                f"{where}: takes {count} argument(s), got {len(args)}"
            )

    def fn_is_set(self, args: Sequence[_Expr], where: str) -> _Expr:
        self._arity(args, 1, where)
        (value,) = args
        if not value.type.optional:
            return _constant(True)  # a value that is always set
        return _Expr(
            f"{value.operand()} is not None",
            _BOOLEAN,
            _COMPARE,
            negation=f"{value.operand()} is None",
            narrows=(value.ref,) if value.ref is not None else (),
        )

    def fn_not(self, args: Sequence[_Expr], where: str) -> _Expr:
        self._arity(args, 1, where)
        self._expect(args[0], _BOOLEAN, where)
        return _negate(args[0])

    def fn_boolean_equals(self, args: Sequence[_Expr], where: str) -> _Expr:
        self._arity(args, 2, where)
        for arg in args:
            if arg.type.kind is not _Kind.BOOLEAN:
                self._expect(arg, _BOOLEAN, where)
        left, right = args
        if left.is_constant and right.is_constant:
            return _constant(left.constant == right.constant)
        if left.is_constant:
            left, right = right, left
        if isinstance(right.constant, bool):
            if left.type.optional:  # unset compares unequal
                return _Expr(
                    f"{left.operand()} is {right.constant!r}",
                    _BOOLEAN,
                    _COMPARE,
                    negation=f"{left.operand()} is not {right.constant!r}",
                )
            return left if right.constant else _negate(left)
        return _Expr(
            f"{left.operand()} == {right.operand()}",
            _BOOLEAN,
            _COMPARE,
            negation=f"{left.operand()} != {right.operand()}",
        )

    def fn_string_equals(self, args: Sequence[_Expr], where: str) -> _Expr:
        self._arity(args, 2, where)
        for arg in args:
            if arg.type.kind is not _Kind.STRING:
                self._expect(arg, _STRING, where)
        left, right = args
        if left.is_constant and right.is_constant:
            return _constant(left.constant == right.constant)
        if left.is_constant:
            left, right = right, left  # read as `name == "literal"`
        return _Expr(
            f"{left.operand()} == {right.operand()}",
            _BOOLEAN,
            _COMPARE,
            negation=f"{left.operand()} != {right.operand()}",
        )

    def _call(self, name: str, args: Sequence[_Expr], where: str) -> _Expr:
        """A call of the runtime helper that implements library function ``name``."""
        helper = _HELPER_CALLS[name]
        self._arity(args, len(helper.signature), where)
        for number, (arg, expected) in enumerate(
            zip(args, helper.signature, strict=True), start=1
        ):
            self._expect(arg, expected, f"{where}, argument {number}")
        self._use(name)
        return _Expr(
            f"{helper.function}({', '.join(a.code for a in args)})", helper.result
        )

    def _compile_get_attr(
        self, argv: Sequence[Any], scope: Mapping[str, _Binding], where: str
    ) -> _Expr:
        if len(argv) != 2 or not isinstance(argv[1], str):
            raise RulesetCompileError(f"{where}: takes a value and a literal path")
        value = self._compile_value(argv[0], scope, where)
        return self._get_attr(value, argv[1], where)

    def _get_attr(self, value: _Expr, path: str, where: str) -> _Expr:
        """``getAttr`` with a path such as ``name`` or ``resourceId[2]``."""
        if value.type.optional:
            self._expect(value, value.type.required(), where)
        code, current = value.operand(), value.type
        segments = path.split(".")
        for position, segment in enumerate(segments):
            match = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)?(?:\[(\d+)\])?", segment)
            if not segment or match is None:
                raise RulesetCompileError(f"{where}: malformed path {path!r}")
            key, index = match.group(1), match.group(2)
            if key is not None:
                fields = _RECORD_FIELDS.get(current.kind, {})
                if key not in fields:
                    raise RulesetCompileError(
                        f"{where}: {current.describe()} has no attribute {key!r}"
                    )
                attribute, current = fields[key]
                code = f"{code}.{attribute}"
            if index is not None:
                if current.kind is not _Kind.STRING_ARRAY:
                    raise RulesetCompileError(
                        f"{where}: cannot index {current.describe()} in {path!r}"
                    )
                if position != len(segments) - 1:
                    raise RulesetCompileError(
                        f"{where}: an index must end the path {path!r}"
                    )
                self._use("getAttr[index]")
                code = f"_item_at({code}, {int(index)})"
                current = _Type(_Kind.STRING, optional=True)
        return _Expr(code, current)


@dataclass(frozen=True, slots=True)
class _PartitionData:
    id: str
    outputs: Mapping[str, Any]
    regions: Mapping[str, Any]
    region_regex: str | None


def _read_partitions(data: Mapping[str, Any]) -> list[_PartitionData]:
    raw = _array(data.get("partitions"), "partitions data 'partitions'")
    partitions: list[_PartitionData] = []
    for value in raw:
        entry = _object(value, "a partition")
        partition_id = str(entry.get("id", ""))
        if not partition_id:
            raise RulesetCompileError(f"partition {entry!r} has no 'id'")
        outputs = _object(entry.get("outputs"), f"partition {partition_id!r} outputs")
        regions = _object(
            entry.get("regions", {}), f"partition {partition_id!r} regions"
        )
        regex = entry.get("regionRegex")
        if regex is not None:
            try:
                re.compile(str(regex), re.ASCII)
            except re.error as exc:
                raise RulesetCompileError(
                    f"partition {partition_id!r}: bad regionRegex {regex!r}: {exc}"
                ) from exc
        partitions.append(
            _PartitionData(
                id=partition_id,
                outputs={"name": partition_id, **outputs},
                regions=regions,
                region_regex=None if regex is None else str(regex),
            )
        )
    return partitions


def _render_partitions(data: Mapping[str, Any]) -> list[list[str]]:
    """The ``aws.partition`` support: the data as literals and the lookup."""
    constants: list[str] = []
    by_region: dict[str, str] = {}  # region -> Python expression of its partition
    patterns: list[str] = []
    default: str | None = None
    for partition in _read_partitions(data):
        name = f"_PARTITION_{_constant_name(partition.id)}"
        while any(line.startswith(f"{name}:") for line in constants):
            name = f"{name}_"
        constants.append(f"{name}: Final = {_partition_literal(partition.outputs)}")
        if partition.id == "aws" and default is None:
            default = name
        for region, overrides in partition.regions.items():
            # The first partition that lists a region owns it.
            by_region.setdefault(
                str(region), _region_partition(name, partition.outputs, overrides)
            )
        if partition.region_regex is not None:
            regex = _py_regex(partition.region_regex)
            patterns.append(f"    (re.compile({regex}, re.ASCII), {name}),")
    if default is None:
        raise RulesetCompileError("partitions data has no 'aws' partition")
    tables = [
        "_REGION_PARTITIONS: Final[Mapping[str, _Partition]] = {",
        *(f"    {_py_string(region)}: {value}," for region, value in by_region.items()),
        "}",
        '"""Partitions by the names of the regions they list."""',
        "",
        "_REGION_PATTERNS: Final[tuple[tuple[re.Pattern[str], _Partition], ...]] = (",
        *patterns,
        ")",
        '"""Partitions by the pattern of the region names they own, in order."""',
        "",
        f"_DEFAULT_PARTITION: Final = {default}",
    ]
    return [
        _lines(_PARTITION_CLASS),
        constants,
        tables,
        _lines(_PARTITION_FUNCTION),
    ]


def _region_partition(name: str, outputs: Mapping[str, Any], region: Any) -> str:
    """The partition of a listed region: ``name``, unless the region overrides."""
    if not _is_object(region):
        return name
    fields = _RECORD_FIELDS[_Kind.PARTITION]
    merged = {**outputs, **{k: v for k, v in region.items() if k in fields}}
    return name if merged == outputs else _partition_literal(merged)


def _partition_literal(outputs: Mapping[str, Any]) -> str:
    values: list[str] = []
    for key, (attribute, value_type) in _RECORD_FIELDS[_Kind.PARTITION].items():
        value = outputs.get(key)
        if value_type.kind is _Kind.BOOLEAN and isinstance(value, bool):
            values.append(f"{attribute}={value!r}")
        elif value_type.kind is _Kind.STRING and isinstance(value, str):
            values.append(f"{attribute}={_py_string(value)}")
        else:
            raise RulesetCompileError(
                f"partition {outputs.get('name')!r}: output {key!r} is missing or"
                f" not a {value_type.describe()}"
            )
    return f"_Partition({', '.join(values)})"


_Operator = Callable[[_Compiler, Sequence[_Expr], str], _Expr]

# Library functions compiled to Python operators (`getAttr` is compiled apart:
# its path argument is not an expression).
_OPERATORS: Final[Mapping[str, _Operator]] = {
    "isSet": _Compiler.fn_is_set,
    "not": _Compiler.fn_not,
    "booleanEquals": _Compiler.fn_boolean_equals,
    "stringEquals": _Compiler.fn_string_equals,
}


def render_endpoints_module(
    ruleset: Mapping[str, Any], partitions: Mapping[str, Any]
) -> str:
    """Compile an endpoint ruleset into the source of a Python module.

    Args:
        ruleset: The ``smithy.rules#endpointRuleSet`` document.
        partitions: AWS partitions data (botocore's ``partitions.json``
            layout), used when the rules call ``aws.partition``.

    Returns:
        The module source: ``EndpointParameters``, ``Endpoint``,
        ``EndpointResolutionError`` and ``resolve_endpoint``, standard library
        only. Deterministic: the same inputs give the same text.

    Raises:
        RulesetCompileError: The ruleset uses an unsupported function or
            construct, or is ill-typed.
    """
    return _Compiler(ruleset, partitions).render()
