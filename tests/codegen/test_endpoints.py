"""The endpoint ruleset compiler (codegen/endpoints.py) and the module it writes.

The compiled Polly resolver is checked against all of the model's own
``smithy.rules#endpointTests`` vectors, and against botocore's rules engine
over every known region; small synthetic rulesets cover the functions Polly's
rules do not use, the partition lookup and the compile-time errors.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from codegen.endpoints import RulesetCompileError, render_endpoints_module

REPO = Path(__file__).resolve().parents[2]
TRIMMED_MODEL = REPO / "model" / "polly-streaming.smithy.json"
UPSTREAM_MODEL = next((REPO / "model" / "upstream").glob("*.json"))
MODEL_PARTITIONS = REPO / "model" / "partitions.json"

# Rules parameter names -> EndpointParameters fields.
FIELDS = {
    "Region": "region",
    "UseDualStack": "use_dual_stack",
    "UseFIPS": "use_fips",
    "Endpoint": "endpoint",
}

# Upstream's (2025-04) vectors for these cases predate the partitions data we
# ship: aws-iso and aws-iso-b now support dual-stack, so the overlay
# model/overlay/endpoint-tests-partitions-2026.json amends them in the trimmed
# model; `test_upstream_vectors_hold_with_partitions_of_their_era` shows the
# compiler gives upstream's original answers on the data of their day.
AMENDED_VECTORS = frozenset(
    {
        "For region us-iso-east-1 with FIPS enabled and DualStack enabled",
        "For region us-iso-east-1 with FIPS disabled and DualStack enabled",
        "For region us-isob-east-1 with FIPS enabled and DualStack enabled",
        "For region us-isob-east-1 with FIPS disabled and DualStack enabled",
    }
)


def _service_traits(path: Path) -> Mapping[str, Any]:
    model = json.loads(path.read_text(encoding="utf-8"))
    for shape in model["shapes"].values():
        traits = shape.get("traits", {})
        if "smithy.rules#endpointRuleSet" in traits:
            return traits
    raise AssertionError(f"no endpoint ruleset in {path}")


TRAITS = _service_traits(TRIMMED_MODEL)
RULESET: Mapping[str, Any] = TRAITS["smithy.rules#endpointRuleSet"]
VECTORS: list[Mapping[str, Any]] = TRAITS["smithy.rules#endpointTests"]["testCases"]
UPSTREAM_VECTORS: list[Mapping[str, Any]] = _service_traits(UPSTREAM_MODEL)[
    "smithy.rules#endpointTests"
]["testCases"]
PARTITIONS: Mapping[str, Any] = json.loads(MODEL_PARTITIONS.read_text(encoding="utf-8"))


def _vector_params(vectors: list[Mapping[str, Any]]) -> list[Any]:
    return [
        pytest.param(case, id=case.get("documentation", f"case {index}"))
        for index, case in enumerate(vectors)
    ]


def _vector_era_partitions() -> Mapping[str, Any]:
    """The partitions data as it was when upstream's vectors were written."""
    data = copy.deepcopy(dict(PARTITIONS))
    for partition in data["partitions"]:
        if partition["id"] in ("aws-iso", "aws-iso-b"):
            partition["outputs"]["supportsDualStack"] = False
    return data


def _import_source(source: str, directory: Path, name: str) -> ModuleType:
    path = directory / f"{name}.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def module_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[[str, Mapping[str, Any], Mapping[str, Any]], ModuleType]]:
    directory = tmp_path_factory.mktemp("endpoints")
    names: list[str] = []

    def build(
        name: str, ruleset: Mapping[str, Any], partitions: Mapping[str, Any]
    ) -> ModuleType:
        names.append(name)
        return _import_source(
            render_endpoints_module(ruleset, partitions), directory, name
        )

    yield build
    for name in names:
        sys.modules.pop(name, None)


@pytest.fixture(scope="module")
def polly(module_factory: Callable[..., ModuleType]) -> ModuleType:
    return module_factory("polly_endpoints_current", RULESET, PARTITIONS)


@pytest.fixture(scope="module")
def polly_vector_era(module_factory: Callable[..., ModuleType]) -> ModuleType:
    return module_factory(
        "polly_endpoints_vector_era", RULESET, _vector_era_partitions()
    )


def _resolve(module: ModuleType, params: Mapping[str, Any]) -> Any:
    fields = {FIELDS[name]: value for name, value in params.items()}
    return module.resolve_endpoint(module.EndpointParameters(**fields))


def _check_vector(module: ModuleType, case: Mapping[str, Any]) -> None:
    params = case.get("params", {})
    expect = case["expect"]
    if "error" in expect:
        with pytest.raises(module.EndpointResolutionError) as raised:
            _resolve(module, params)
        assert str(raised.value) == expect["error"]
        return
    endpoint = _resolve(module, params)
    expected = expect["endpoint"]
    assert endpoint.url == expected["url"]
    if "headers" in expected:
        assert {k: list(v) for k, v in endpoint.headers.items()} == expected["headers"]
    if "properties" in expected:
        assert endpoint.properties == expected["properties"]


# ---------------------------------------------------------------------------
# Polly: the model's endpoint tests


def test_there_are_49_vectors_and_only_the_stale_ones_are_amended() -> None:
    assert len(VECTORS) == len(UPSTREAM_VECTORS) == 49
    changed = {
        case["documentation"]
        for case, original in zip(VECTORS, UPSTREAM_VECTORS, strict=True)
        if case != original
    }
    assert changed == AMENDED_VECTORS


@pytest.mark.parametrize("case", _vector_params(VECTORS))
def test_endpoint_vectors(polly: ModuleType, case: Mapping[str, Any]) -> None:
    _check_vector(polly, case)


@pytest.mark.parametrize("case", _vector_params(UPSTREAM_VECTORS))
def test_upstream_vectors_hold_with_partitions_of_their_era(
    polly_vector_era: ModuleType, case: Mapping[str, Any]
) -> None:
    _check_vector(polly_vector_era, case)


@pytest.mark.parametrize("case", _vector_params(VECTORS))
def test_generated_package_endpoint_vectors(case: Mapping[str, Any]) -> None:
    from amazon_polly_streaming_generated import endpoints

    _check_vector(endpoints, case)


def test_agrees_with_botocore_rules_engine_on_every_region(
    polly: ModuleType,
) -> None:
    from botocore.endpoint_provider import (
        EndpointProvider,
    )
    from botocore.exceptions import (
        EndpointResolutionError as BotocoreError,
    )

    provider = EndpointProvider(copy.deepcopy(dict(RULESET)), PARTITIONS)
    regions = [
        region
        for partition in PARTITIONS["partitions"]
        for region in partition["regions"]
    ]
    # Unlisted names: found by a partition's pattern, or by the default.
    regions += ["us-east-42", "cn-south-9", "us-gov-north-3", "mars-central-1"]
    mismatches: list[str] = []
    for region in [*regions, None]:
        for endpoint in (None, "https://example.com:8443/path"):
            for use_fips in (False, True):
                for use_dual_stack in (False, True):
                    params = {
                        "Region": region,
                        "Endpoint": endpoint,
                        "UseFIPS": use_fips,
                        "UseDualStack": use_dual_stack,
                    }
                    given = {k: v for k, v in params.items() if v is not None}
                    try:
                        theirs = provider.resolve_endpoint(**given).url
                    except BotocoreError as exc:
                        theirs = f"error: {exc}"
                    try:
                        ours = _resolve(polly, given).url
                    except polly.EndpointResolutionError as exc:
                        ours = f"error: {exc}"
                    if ours != theirs:
                        mismatches.append(f"{given}: ours {ours!r}, {theirs!r}")
    assert mismatches == []


def test_parameters_fields_defaults_and_docs(polly: ModuleType) -> None:
    params = polly.EndpointParameters()
    assert (params.region, params.endpoint) == (None, None)
    assert (params.use_fips, params.use_dual_stack) == (False, False)
    with pytest.raises(TypeError):
        polly.EndpointParameters("us-east-1")  # keyword-only
    source = render_endpoints_module(RULESET, PARTITIONS)
    assert (
        'region: str | None = None\n    """The AWS region used to dispatch the'
        " request." in source
    )
    assert "use_fips: bool = False\n" in source
    endpoint = polly.resolve_endpoint(polly.EndpointParameters(region="eu-west-1"))
    assert endpoint == polly.Endpoint(url="https://polly.eu-west-1.amazonaws.com")
    assert dict(endpoint.headers) == {}
    assert dict(endpoint.properties) == {}
    assert issubclass(polly.EndpointResolutionError, ValueError)


# ---------------------------------------------------------------------------
# Determinism


def test_rendering_is_deterministic() -> None:
    first = render_endpoints_module(RULESET, PARTITIONS)
    again = render_endpoints_module(copy.deepcopy(dict(RULESET)), PARTITIONS)
    assert first == again
    assert str(REPO) not in first


def test_rendered_code_is_compiled_not_interpreted() -> None:
    source = render_endpoints_module(RULESET, PARTITIONS)
    assert "import json" not in source
    assert "eval(" not in source
    assert "booleanEquals" not in source
    assert "_REGION_PARTITIONS: Final[Mapping[str, _Partition]] = {" in source
    assert '"us-east-1": _PARTITION_AWS,' in source
    assert "description" not in source.lower().split("def resolve_endpoint")[0]


# ---------------------------------------------------------------------------
# Partitions: region overrides, exact names before patterns, the default


def _outputs(name: str, suffix: str) -> dict[str, Any]:
    return {
        "name": name,
        "dnsSuffix": suffix,
        "dualStackDnsSuffix": f"dual.{suffix}",
        "supportsFIPS": True,
        "supportsDualStack": True,
        "implicitGlobalRegion": f"{name}-global-1",
    }


TOY_PARTITIONS: Mapping[str, Any] = {
    "version": "1.1",
    "partitions": [
        {
            "id": "aws",
            "regionRegex": "^(us|eu)\\-\\w+\\-\\d+$",
            "regions": {
                "us-east-1": {"description": "US East"},
                "us-odd-1": {"supportsFIPS": False, "dnsSuffix": "odd.example"},
            },
            "outputs": _outputs("aws", "aws.example"),
        },
        {
            "id": "other",
            "regionRegex": "^xx\\-\\w+\\-\\d+$",
            "regions": {
                "us-east-1": {},  # listed by aws first: aws owns it
                "us-other-1": {},  # matches aws's pattern, but listed here
                "xx-listed-1": {},
            },
            "outputs": _outputs("other", "other.example"),
        },
    ],
}

PARTITION_RULESET: Mapping[str, Any] = {
    "version": "1.0",
    "parameters": {
        "Region": {"type": "String", "required": True, "documentation": "Region."}
    },
    "rules": [
        {
            "type": "endpoint",
            "conditions": [
                {"fn": "aws.partition", "argv": [{"ref": "Region"}], "assign": "P"},
                {
                    "fn": "booleanEquals",
                    "argv": [
                        {"fn": "getAttr", "argv": [{"ref": "P"}, "supportsFIPS"]},
                        False,
                    ],
                },
            ],
            "endpoint": {"url": "https://nofips.{P#name}.{P#dnsSuffix}"},
        },
        {
            "type": "endpoint",
            "conditions": [
                {"fn": "aws.partition", "argv": [{"ref": "Region"}], "assign": "P"}
            ],
            "endpoint": {
                "url": "https://{Region}.{P#name}.{P#dnsSuffix}",
                "headers": {
                    "x-dual": ["{P#dualStackDnsSuffix}"],
                    "x-global": ["{P#implicitGlobalRegion}"],
                },
            },
        },
    ],
}


@pytest.mark.parametrize(
    ("region", "url"),
    [
        ("us-east-1", "https://us-east-1.aws.aws.example"),
        ("us-odd-1", "https://nofips.aws.odd.example"),  # region-level overrides
        ("us-other-1", "https://us-other-1.other.other.example"),  # name > pattern
        ("xx-listed-1", "https://xx-listed-1.other.other.example"),
        ("xx-south-9", "https://xx-south-9.other.other.example"),  # pattern
        ("eu-new-7", "https://eu-new-7.aws.aws.example"),  # first pattern
        ("mars-1", "https://mars-1.aws.aws.example"),  # the default: aws
        ("xx-south-9\n", "https://xx-south-9\n.aws.aws.example"),  # whole name
    ],
)
def test_partition_lookup(
    module_factory: Callable[..., ModuleType], region: str, url: str
) -> None:
    module = module_factory("toy_partitions", PARTITION_RULESET, TOY_PARTITIONS)
    endpoint = module.resolve_endpoint(module.EndpointParameters(region=region))
    assert endpoint.url == url
    if region == "xx-south-9":
        assert dict(endpoint.headers) == {
            "x-dual": ("dual.other.example",),
            "x-global": ("other-global-1",),
        }


def test_partitions_without_aws_are_rejected() -> None:
    data = {"partitions": [TOY_PARTITIONS["partitions"][1]]}
    with pytest.raises(RulesetCompileError, match="'aws' partition"):
        render_endpoints_module(PARTITION_RULESET, data)


# ---------------------------------------------------------------------------
# The rest of the standard library, on a synthetic ruleset


def _fn(name: str, *argv: Any, assign: str | None = None) -> dict[str, Any]:
    call: dict[str, Any] = {"fn": name, "argv": list(argv)}
    if assign is not None:
        call["assign"] = assign
    return call


def _ref(name: str) -> dict[str, str]:
    return {"ref": name}


KITCHEN_SINK: Mapping[str, Any] = {
    "version": "1.3",
    "parameters": {
        "Region": {"type": "string", "required": True, "documentation": "Where."},
        "Endpoint": {"type": "string", "documentation": "A custom endpoint."},
        "Bucket": {"type": "string", "documentation": "A bucket name or ARN."},
        "UseFIPS": {
            "type": "boolean",
            "required": True,
            "default": False,
            "documentation": "FIPS.",
        },
        "Flag": {
            "type": "boolean",
            "documentation": 'Optional flag with "quotes" and a \\ backslash.',
            "deprecated": {"message": "Do not use.", "since": "2024-01-01"},
        },
        "Mode": {
            "type": "string",
            "required": True,
            "default": "standard",
            "documentation": "Mode.",
        },
        "Labels": {
            "type": "stringArray",
            "required": True,
            "default": ["a", "b"],
            "documentation": "Labels.",
        },
    },
    "rules": [
        {
            "type": "tree",
            "documentation": "A custom endpoint that parses as a URL.",
            "conditions": [
                _fn("isSet", _ref("Endpoint")),
                _fn("parseURL", _ref("Endpoint"), assign="url"),
            ],
            "rules": [
                {
                    "type": "endpoint",
                    "conditions": [
                        _fn("booleanEquals", _fn("getAttr", _ref("url"), "isIp"), True)
                    ],
                    "endpoint": {
                        "url": "{url#scheme}://{url#authority}{url#normalizedPath}ip"
                    },
                },
                {
                    "type": "endpoint",
                    "conditions": [_fn("stringEquals", "{url#path}", "/custom")],
                    "endpoint": {
                        "url": "{url#scheme}://{url#authority}/x",
                        "headers": {"x-url-path": ["{url#path}", "static"]},
                    },
                },
                {
                    "type": "endpoint",
                    "conditions": [],
                    "endpoint": {
                        "url": "{url#scheme}://{url#authority}{url#normalizedPath}"
                    },
                },
            ],
        },
        {
            "type": "error",
            "conditions": [_fn("isSet", _ref("Endpoint"))],
            "error": "Invalid endpoint: {Endpoint}",
        },
        {
            "type": "endpoint",
            "conditions": [
                _fn("isSet", _ref("Bucket")),
                _fn("aws.parseArn", _ref("Bucket"), assign="arn"),
                _fn("getAttr", _ref("arn"), "resourceId[1]", assign="ResourceName"),
            ],
            "endpoint": {
                "url": "https://{ResourceName}.{arn#service}.{Region}.example.com",
                "properties": {
                    "authSchemes": [
                        {
                            "name": "sigv4",
                            "signingRegion": "{arn#region}",
                            "disableDoubleEncoding": True,
                        }
                    ],
                    "literal": "{{braces}}",
                },
            },
        },
        {
            "type": "endpoint",
            "conditions": [
                _fn("isSet", _ref("Bucket")),
                _fn("aws.isVirtualHostableS3Bucket", _ref("Bucket"), False),
            ],
            "endpoint": {"url": "https://{Bucket}.s3.{Region}.amazonaws.com"},
        },
        {
            "type": "endpoint",
            "conditions": [
                _fn("isSet", _ref("Bucket")),
                _fn("substring", _ref("Bucket"), 0, 3, False, assign="prefix"),
                _fn("substring", _ref("Bucket"), 0, 2, True, assign="suffix"),
                _fn("uriEncode", _ref("Bucket"), assign="encoded"),
                _fn("not", _fn("isValidHostLabel", _ref("Bucket"), False)),
            ],
            "endpoint": {"url": "https://example.com/{prefix}/{suffix}/{encoded}"},
        },
        {
            "type": "error",
            "conditions": [_fn("booleanEquals", _ref("Flag"), True)],
            "error": "flagged",
        },
        {
            "type": "tree",
            "conditions": [_fn("stringEquals", _ref("Mode"), "legacy")],
            "rules": [
                {
                    "type": "error",
                    "conditions": [_fn("booleanEquals", _ref("UseFIPS"), True)],
                    "error": "no FIPS in legacy mode",
                }
            ],
        },
        {
            "type": "endpoint",
            "conditions": [
                _fn("isValidHostLabel", _ref("Region"), True),
                _fn("getAttr", _ref("Labels"), "[0]", assign="FirstLabel"),
            ],
            "endpoint": {"url": "https://{FirstLabel}.{Region}.example.com"},
        },
        {
            "type": "endpoint",
            "conditions": [_fn("isValidHostLabel", _ref("Region"), True)],
            "endpoint": {"url": "https://{Region}.example.com"},
        },
        {"type": "error", "conditions": [], "error": "Invalid region: {Region}"},
    ],
}

EXHAUSTED = "Rules exhausted: no endpoint rule matched the parameters"
ARN = "arn:aws:s3:us-west-2:123456789012:accesspoint/my-ap"

KITCHEN_SINK_CASES: list[tuple[str, dict[str, Any], str | dict[str, Any]]] = [
    (
        "url ipv4",
        {"endpoint": "https://10.0.0.1:8443/base"},
        "https://10.0.0.1:8443/base/ip",
    ),
    ("url ipv6", {"endpoint": "https://[::1]"}, "https://[::1]/ip"),
    (
        "url path and headers",
        {"endpoint": "http://example.com/custom"},
        {
            "url": "http://example.com/x",
            "headers": {"x-url-path": ("/custom", "static")},
        },
    ),
    ("url no path", {"endpoint": "https://example.com"}, "https://example.com/"),
    (
        "url with query",
        {"endpoint": "https://e.com/a?b=c"},
        "error:Invalid endpoint: https://e.com/a?b=c",
    ),
    (
        "url bad scheme",
        {"endpoint": "ftp://e.com"},
        "error:Invalid endpoint: ftp://e.com",
    ),
    (
        "url bad port",
        {"endpoint": "https://e.com:port"},
        "error:Invalid endpoint: https://e.com:port",
    ),
    (
        "arn and properties",
        {"bucket": ARN},
        {
            "url": "https://my-ap.s3.us-east-1.example.com",
            "properties": {
                "authSchemes": [
                    {
                        "name": "sigv4",
                        "signingRegion": "us-west-2",
                        "disableDoubleEncoding": True,
                    }
                ],
                "literal": "{braces}",
            },
        },
    ),
    (
        "arn index past the end, substring, uriEncode",
        {"bucket": "arn:aws:s3:::justone"},
        "https://example.com/arn/ne/arn%3Aaws%3As3%3A%3A%3Ajustone",
    ),
    (
        "virtual hostable bucket",
        {"bucket": "my-bucket"},
        "https://my-bucket.s3.us-east-1.amazonaws.com",
    ),
    (
        "upper-case bucket",
        {"bucket": "My_Bucket"},
        "https://example.com/My_/et/My_Bucket",
    ),
    (
        "ip-like bucket",
        {"bucket": "192.168.0.1"},
        "https://example.com/192/.1/192.168.0.1",
    ),
    (
        "bucket too short for substring",
        {"bucket": "ab"},
        "https://a.us-east-1.example.com",
    ),
    ("non-ascii bucket", {"bucket": "ünicode"}, "https://a.us-east-1.example.com"),
    ("optional flag true", {"flag": True}, "error:flagged"),
    ("optional flag false", {"flag": False}, "https://a.us-east-1.example.com"),
    (
        "tree error",
        {"mode": "legacy", "use_fips": True},
        "error:no FIPS in legacy mode",
    ),
    ("tree exhausted", {"mode": "legacy"}, f"error:{EXHAUSTED}"),
    ("empty string array", {"labels": ()}, "https://us-east-1.example.com"),
    ("sub-domains allowed", {"region": "a.b"}, "https://a.a.b.example.com"),
    ("error template", {"region": "bad region"}, "error:Invalid region: bad region"),
    (
        "required parameter",
        {"region": None},
        "error:Missing required endpoint parameter: Region",
    ),
]


@pytest.mark.parametrize(
    ("params", "expected"),
    [pytest.param(p, e, id=name) for name, p, e in KITCHEN_SINK_CASES],
)
def test_kitchen_sink(
    module_factory: Callable[..., ModuleType],
    params: dict[str, Any],
    expected: str | dict[str, Any],
) -> None:
    module = module_factory("kitchen_sink", KITCHEN_SINK, PARTITIONS)
    arguments = {"region": "us-east-1", **params}
    resolve = module.resolve_endpoint
    if isinstance(expected, str) and expected.startswith("error:"):
        with pytest.raises(module.EndpointResolutionError) as raised:
            resolve(module.EndpointParameters(**arguments))
        assert str(raised.value) == expected.removeprefix("error:")
        return
    endpoint = resolve(module.EndpointParameters(**arguments))
    if isinstance(expected, str):
        expected = {"url": expected}
    assert endpoint.url == expected["url"]
    assert dict(endpoint.headers) == expected.get("headers", {})
    assert dict(endpoint.properties) == expected.get("properties", {})


def test_kitchen_sink_parameter_types() -> None:
    source = render_endpoints_module(KITCHEN_SINK, PARTITIONS)
    assert "region: str | None = None\n" in source
    assert "flag: bool | None = None\n" in source
    assert 'mode: str = "standard"\n' in source
    assert 'labels: tuple[str, ...] = ("a", "b")\n' in source
    assert 'with "quotes" and a \\\\ backslash.' in source
    assert "Deprecated since 2024-01-01. Do not use." in source
    # Only the support the rules use is emitted: no partitions here.
    assert "_aws_partition" not in source


# ---------------------------------------------------------------------------
# Compile-time errors


def _ruleset_with(
    condition: Mapping[str, Any], url: str = "https://x"
) -> dict[str, Any]:
    return {
        "version": "1.0",
        "parameters": {"Region": {"type": "String", "documentation": "Region."}},
        "rules": [
            {"type": "endpoint", "conditions": [condition], "endpoint": {"url": url}},
            {"type": "error", "conditions": [], "error": "no"},
        ],
    }


@pytest.mark.parametrize(
    ("condition", "function"),
    [
        (_fn("coalesce", _ref("Region"), "x"), "coalesce"),
        (_fn("not", _fn("aws.magic", _ref("Region"))), "aws.magic"),
    ],
)
def test_unsupported_function_is_named(
    condition: Mapping[str, Any], function: str
) -> None:
    with pytest.raises(RulesetCompileError, match=f"unsupported .*'{function}'"):
        render_endpoints_module(_ruleset_with(condition), PARTITIONS)


@pytest.mark.parametrize(
    ("ruleset", "message"),
    [
        (
            _ruleset_with(_fn("isSet", _ref("Region")), "https://{Nope}"),
            "unknown reference 'Nope'",
        ),
        (
            _ruleset_with(_fn("stringEquals", _ref("Region"), "x"), "https://{Region}"),
            "may be unset",
        ),
        (
            _ruleset_with(_fn("aws.partition", _ref("Region"), assign="P")),
            "may be unset",
        ),
        (
            _ruleset_with(
                _fn("getAttr", _fn("parseURL", "https://x"), "nope"), "https://x"
            ),
            "may be unset",
        ),
        (
            _ruleset_with(_fn("isSet", _ref("Region")), "https://{Region#name}"),
            "string has no attribute 'name'",
        ),
        (_ruleset_with(_fn("isSet", _ref("Region")), "https://{Region"), "unclosed"),
        (_ruleset_with(_fn("not", "text")), "expected boolean but found string"),
        (_ruleset_with(_fn("uriEncode", _ref("Region"), "x")), "takes 1 argument"),
    ],
)
def test_ill_typed_rulesets_fail_at_generation(
    ruleset: Mapping[str, Any], message: str
) -> None:
    with pytest.raises(RulesetCompileError, match=message):
        render_endpoints_module(ruleset, PARTITIONS)


# ---------------------------------------------------------------------------
# The rendered modules type-check


def test_rendered_modules_pass_mypy_strict(tmp_path: Path) -> None:
    (tmp_path / "polly_endpoints.py").write_text(
        render_endpoints_module(RULESET, PARTITIONS), encoding="utf-8"
    )
    (tmp_path / "kitchen_sink.py").write_text(
        render_endpoints_module(KITCHEN_SINK, PARTITIONS), encoding="utf-8"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--cache-dir",
            str(tmp_path / ".mypy_cache"),
            "polly_endpoints.py",
            "kitchen_sink.py",
        ],
        cwd=tmp_path,  # away from the project's mypy configuration
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
