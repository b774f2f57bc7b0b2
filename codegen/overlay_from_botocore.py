"""Draft the Smithy overlay for an operation the upstream Smithy model lacks.

Polly's public Smithy model predates ``StartSpeechSynthesisStream``; botocore's
JSON model has it. This tool translates the operation's shape closure from
botocore's format to Smithy 2.0 JSON AST, one to one:

* ``eventstream`` structure -> union with ``smithy.api#streaming``
* ``eventpayload`` member -> ``smithy.api#eventPayload``
* ``location: header`` -> ``smithy.api#httpHeader``
* ``payload`` -> ``smithy.api#httpPayload``
* ``error.httpStatusCode`` -> ``smithy.api#httpError``; ``fault`` -> ``error: server``
* ``protocolSettings.h2 = eventstream`` -> ``restJson1``, ``eventStreamHttp: ["h2"]``

Only what upstream does not already have is written: new shapes whole, enum
values upstream lacks (as partial enums that ``codegen.trim`` merges), and an
``apply`` of the service traits. The output is the draft of the reviewable
overlay file in ``model/overlay/``; ``make overlay`` runs it.

Usage: ``python -m codegen.overlay_from_botocore BOTOCORE_JSON UPSTREAM_SMITHY_JSON
--operation NAME --out FILE``
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

type Json = dict[str, Any]

_SIMPLE = {
    "string": "string",
    "blob": "blob",
    "boolean": "boolean",
    "integer": "integer",
    "long": "long",
    "float": "float",
    "double": "double",
    "timestamp": "timestamp",
}


def _closure(botocore: Json, operation: str) -> list[str]:
    """Names of every botocore shape the operation reaches, in discovery order."""
    shapes: Json = botocore["shapes"]
    op: Json = botocore["operations"][operation]
    seen: list[str] = []

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.append(name)
        shape: Json = shapes[name]
        for member in shape.get("members", {}).values():
            visit(member["shape"])
        for key in ("member", "key", "value"):
            if key in shape:
                visit(shape[key]["shape"])

    for key in ("input", "output"):
        if key in op:
            visit(op[key]["shape"])
    for error in op.get("errors", []):
        visit(error["shape"])
    return seen


def _member_name_style(existing: Json) -> str:
    """How an upstream enum names its members: ``value``, ``snake`` or ``upper``."""
    pairs = [
        (name, m["traits"]["smithy.api#enumValue"])
        for name, m in existing["members"].items()
    ]
    if all(name == value for name, value in pairs):
        return "value"
    if all(name == _identifier(value) for name, value in pairs):
        return "snake"
    return "upper"


def _identifier(value: str) -> str:
    return re.sub(r"[^0-9A-Za-z_]", "_", value)


def _enum_member_name(value: str, style: str) -> str:
    if style == "value":
        return value
    if style == "snake":
        return _identifier(value)
    # camelCase and kebab-case alike become UPPER_SNAKE: invalidInboundEvent
    # -> INVALID_INBOUND_EVENT, long-form -> LONG_FORM.
    return _identifier(re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", value)).upper()


def _doc(node: Json) -> Json:
    doc = node.get("documentation")
    return {"smithy.api#documentation": doc} if doc else {}


def _convert_member(member: Json, ns: str, *, required: bool, payload: bool) -> Json:
    traits: Json = {}
    if required:
        traits["smithy.api#required"] = {}
    if member.get("location") == "header":
        traits["smithy.api#httpHeader"] = member["locationName"]
    if member.get("eventpayload"):
        traits["smithy.api#eventPayload"] = {}
    if payload:
        traits["smithy.api#httpPayload"] = {}
    traits.update(_doc(member))
    out: Json = {"target": f"{ns}#{member['shape']}"}
    if traits:
        out["traits"] = traits
    return out


def _convert_shape(name: str, shape: Json, ns: str, role: str | None) -> Json:
    kind = shape["type"]
    traits: Json = {}
    if kind == "structure":
        required = set(shape.get("required", []))
        payload = shape.get("payload")
        members = {
            member_name: _convert_member(
                member,
                ns,
                required=member_name in required,
                payload=member_name == payload,
            )
            for member_name, member in shape.get("members", {}).items()
        }
        if shape.get("eventstream"):
            out: Json = {"type": "union", "members": members}
            traits["smithy.api#streaming"] = {}
        else:
            out = {"type": "structure", "members": members}
        if shape.get("exception"):
            traits["smithy.api#error"] = "server" if shape.get("fault") else "client"
            status = shape.get("error", {}).get("httpStatusCode")
            if status is not None:
                traits["smithy.api#httpError"] = status
        if role is not None:
            traits[f"smithy.api#{role}"] = {}
    elif kind == "list":
        out = {"type": "list", "member": {"target": f"{ns}#{shape['member']['shape']}"}}
        length = {k: shape[k] for k in ("min", "max") if k in shape}
        if length:
            traits["smithy.api#length"] = length
    elif kind == "string" and "enum" in shape:
        out = {
            "type": "enum",
            "members": {
                _enum_member_name(value, "upper"): {
                    "target": "smithy.api#Unit",
                    "traits": {"smithy.api#enumValue": value},
                }
                for value in shape["enum"]
            },
        }
    elif kind in _SIMPLE:
        out = {"type": _SIMPLE[kind]}
        if "pattern" in shape:
            traits["smithy.api#pattern"] = shape["pattern"]
    else:
        msg = f"botocore shape {name!r} has unsupported type {kind!r}"
        raise ValueError(msg)
    traits.update(_doc(shape))
    if traits:
        out["traits"] = traits
    return out


def draft_overlay(botocore: Json, upstream: Json, operation: str) -> Json:
    """Return the overlay document (Smithy JSON AST) for ``operation``."""
    upstream_shapes: Json = upstream["shapes"]
    services = [k for k, v in upstream_shapes.items() if v["type"] == "service"]
    if len(services) != 1:
        msg = f"expected one service shape upstream, found {services}"
        raise ValueError(msg)
    service_id = services[0]
    ns = service_id.split("#")[0]
    op: Json = botocore["operations"][operation]
    roles = {op["input"]["shape"]: "input", op["output"]["shape"]: "output"}
    shapes: Json = {}

    http = op["http"]
    op_traits: Json = {
        "smithy.api#http": {
            "method": http["method"],
            "uri": http["requestUri"],
            "code": http.get("responseCode", 200),
        }
    }
    op_traits.update(_doc(op))
    shapes[f"{ns}#{operation}"] = {
        "type": "operation",
        "input": {"target": f"{ns}#{op['input']['shape']}"},
        "output": {"target": f"{ns}#{op['output']['shape']}"},
        "errors": [{"target": f"{ns}#{e['shape']}"} for e in op.get("errors", [])],
        "traits": op_traits,
    }

    for name in _closure(botocore, operation):
        shape: Json = botocore["shapes"][name]
        shape_id = f"{ns}#{name}"
        existing: Json | None = upstream_shapes.get(shape_id)
        if existing is None:
            shapes[shape_id] = _convert_shape(name, shape, ns, roles.get(name))
        elif existing["type"] == "enum" and "enum" in shape:
            known = {
                m["traits"]["smithy.api#enumValue"]
                for m in existing["members"].values()
            }
            style = _member_name_style(existing)
            added = {
                _enum_member_name(value, style): {
                    "target": "smithy.api#Unit",
                    "traits": {"smithy.api#enumValue": value},
                }
                for value in shape["enum"]
                if value not in known
            }
            if added:
                shapes[shape_id] = {"type": "enum", "members": added}

    if botocore["metadata"].get("protocolSettings", {}).get("h2") == "eventstream":
        shapes[service_id] = {
            "type": "apply",
            "traits": {"aws.protocols#restJson1": {"eventStreamHttp": ["h2"]}},
        }
    return {"smithy": "2.0", "shapes": shapes}


def main(argv: list[str] | None = None) -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("botocore", type=Path, help="botocore service-2.json")
    parser.add_argument("upstream", type=Path, help="upstream Smithy JSON AST")
    parser.add_argument("--operation", required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    overlay = draft_overlay(
        json.loads(args.botocore.read_text()),
        json.loads(args.upstream.read_text()),
        args.operation,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(overlay, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
