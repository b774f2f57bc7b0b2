"""Trim a full Polly Smithy model to the operations this package serves.

``make model SRC=<full Polly Smithy JSON AST>`` runs this module. It

1. merges the overlay files (``model/overlay/*.json``: shapes the upstream model
   lacks, written for review, see ``codegen.overlay_from_botocore``) into the
   upstream model:

   * a shape upstream lacks is added;
   * an ``enum`` that upstream has gains the overlay's extra members (a member
     upstream already has must be identical);
   * an ``apply`` entry sets traits on an upstream shape (a trait it names is
     replaced whole, except ``smithy.rules#endpointTests``, whose cases replace
     the upstream cases with the same ``params``);
   * any other shape upstream already has is left as upstream defines it, and a
     notice says the overlay entry can go (upstream caught up);

2. reduces the service's ``operations`` to the kept ones (no resources), and
3. keeps only the closure of the service shape: every shape it reaches.

The result is sorted by shape id, records the SHA-256 of its inputs in its
metadata, and must load with smithy-python's model loader. The same inputs
always give the same bytes, so ``make check-model`` can prove the checked-in
model is reproducible.

It also trims the AWS partitions data the endpoint rules need (botocore's
``partitions.json``) to ``model/partitions.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from smithy_python.model import load_model

type Json = dict[str, Any]

DEFAULT_OPERATIONS = ("StartSpeechSynthesisStream",)
PROVENANCE_KEY = "amazonPollyStreaming.provenance"
ENDPOINT_TESTS = "smithy.rules#endpointTests"


class TrimError(Exception):
    """The inputs cannot be merged or trimmed as asked."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def merge_overlay(shapes: Json, overlay: Json, *, notices: list[str]) -> None:
    """Merge one overlay document's shapes into ``shapes`` in place."""
    for shape_id, shape in overlay.get("shapes", {}).items():
        existing: Json | None = shapes.get(shape_id)
        kind = shape["type"]
        if kind == "apply":
            if existing is None:
                msg = f"overlay applies traits to {shape_id}, which the model lacks"
                raise TrimError(msg)
            traits: Json = existing.setdefault("traits", {})
            for trait, value in shape["traits"].items():
                if trait == ENDPOINT_TESTS and trait in traits:
                    _amend_endpoint_tests(traits[trait], value, notices)
                else:
                    traits[trait] = value
        elif existing is None:
            shapes[shape_id] = shape
        elif kind == "enum" and existing["type"] == "enum":
            members: Json = existing["members"]
            for name, member in shape["members"].items():
                if name in members and members[name] != member:
                    msg = f"overlay redefines enum member {shape_id}${name}"
                    raise TrimError(msg)
                if name in members:
                    notices.append(f"{shape_id}${name}: upstream has it already")
                members.setdefault(name, member)
        elif existing != shape:
            notices.append(
                f"{shape_id}: upstream defines it; the overlay's version is ignored"
            )


def _amend_endpoint_tests(tests: Json, amendments: Json, notices: list[str]) -> None:
    """Replace upstream endpoint test cases that have the same ``params``.

    Test cases are data about the partitions of their day; an amendment updates
    one whose expectation the current partitions data changed. A case upstream
    lacks is added; one upstream already agrees with raises a notice.
    """
    cases: list[Json] = tests["testCases"]
    index = {
        json.dumps(c.get("params", {}), sort_keys=True): i for i, c in enumerate(cases)
    }
    for case in amendments["testCases"]:
        key = json.dumps(case.get("params", {}), sort_keys=True)
        if key not in index:
            cases.append(case)
        elif cases[index[key]] == case:
            notices.append(
                f"endpoint test {case.get('documentation')!r}: upstream agrees"
            )
        else:
            cases[index[key]] = case


def _targets(shape: Json) -> Iterable[str]:
    """Shape ids a shape refers to (members, operation and service references)."""
    for member in shape.get("members", {}).values():
        yield member["target"]
    for key in ("member", "key", "value", "input", "output"):
        ref: Json | None = shape.get(key)
        if ref is not None:
            yield str(ref["target"])
    for key in ("operations", "resources", "errors"):
        for item in shape.get(key, []):
            yield item["target"]


def closure(shapes: Json, root: str) -> list[str]:
    """Every shape id reachable from ``root`` within ``shapes``."""
    seen: set[str] = set()
    stack = [root]
    while stack:
        shape_id = stack.pop()
        if shape_id in seen or shape_id not in shapes:
            continue  # prelude shapes (smithy.api#...) live outside the file
        seen.add(shape_id)
        stack.extend(_targets(shapes[shape_id]))
    return sorted(seen)


def trim_model(
    upstream_bytes: bytes,
    overlays: Sequence[tuple[str, bytes]],
    operations: Sequence[str] = DEFAULT_OPERATIONS,
    *,
    upstream_name: str = "upstream",
) -> tuple[Json, list[str]]:
    """Return the trimmed model and the notices raised while merging."""
    model: Json = json.loads(upstream_bytes)
    shapes: Json = model["shapes"]
    notices: list[str] = []
    for _name, data in overlays:
        merge_overlay(shapes, json.loads(data), notices=notices)

    services = [k for k, v in shapes.items() if v["type"] == "service"]
    if len(services) != 1:
        msg = f"expected exactly one service shape, found {services}"
        raise TrimError(msg)
    service_id = services[0]
    namespace = service_id.split("#")[0]
    service: Json = shapes[service_id]
    kept: list[Json] = []
    for name in operations:
        op_id = name if "#" in name else f"{namespace}#{name}"
        if shapes.get(op_id, {}).get("type") != "operation":
            msg = f"operation {op_id} is in neither the model nor an overlay"
            raise TrimError(msg)
        kept.append({"target": op_id})
    service["operations"] = kept
    service.pop("resources", None)

    metadata: Json = dict(model.get("metadata", {}))
    metadata[PROVENANCE_KEY] = {
        "upstream": {"file": upstream_name, "sha256": _sha256(upstream_bytes)},
        "overlays": [{"file": n, "sha256": _sha256(d)} for n, d in overlays],
        "operations": list(operations),
    }
    trimmed: Json = {
        "smithy": model["smithy"],
        "metadata": metadata,
        "shapes": {k: shapes[k] for k in closure(shapes, service_id)},
    }
    load_model(trimmed)  # must be a valid model; raises ModelError otherwise
    return trimmed, notices


def trim_partitions(partitions: Json) -> Json:
    """Drop what the endpoint rules never read (region descriptions)."""
    out: list[Json] = []
    for partition in partitions["partitions"]:
        regions = {
            name: {k: v for k, v in region.items() if k != "description"}
            for name, region in partition["regions"].items()
        }
        out.append({**partition, "regions": regions})
    return {"version": partitions["version"], "partitions": out}


def dump(document: Json) -> str:
    """The one canonical JSON text form of model files."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _default_partitions_source() -> Path:
    """botocore's partitions.json (a build-time dependency, found, not imported)."""
    spec = importlib.util.find_spec("botocore")
    if spec is None or spec.origin is None:
        msg = "botocore is not installed: pass --partitions <partitions.json>"
        raise TrimError(msg)
    return Path(spec.origin).parent / "data" / "partitions.json"


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("src", type=Path, help="full upstream Smithy JSON AST")
    parser.add_argument("--overlay", type=Path, action="append", default=[])
    parser.add_argument("--operation", action="append", dest="operations")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--partitions", type=Path, help="botocore partitions.json")
    parser.add_argument("--partitions-out", type=Path)
    args = parser.parse_args(argv)

    overlays = [(p.name, p.read_bytes()) for p in sorted(args.overlay)]
    try:
        trimmed, notices = trim_model(
            args.src.read_bytes(),
            overlays,
            args.operations or DEFAULT_OPERATIONS,
            upstream_name=args.src.name,
        )
    except TrimError as exc:
        print(f"trim: {exc}", file=sys.stderr)
        return 1
    for notice in notices:
        print(f"trim: notice: {notice}", file=sys.stderr)
    args.out.write_text(dump(trimmed))
    if args.partitions_out is not None:
        source = args.partitions or _default_partitions_source()
        partitions = trim_partitions(json.loads(source.read_text()))
        args.partitions_out.write_text(dump(partitions))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
