"""Metadata links: EC2 instance metadata (IMDSv2) and container credentials
(ECS relative URI, full URI with an authorization token or token file)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

import amazon_polly_streaming.credentials as credentials_module
from amazon_polly_streaming.credentials import (
    CredentialsError,
    DefaultCredentialsChain,
    NoCredentialsError,
)
from amazon_polly_streaming.testing.certs import create_test_ca, server_ssl_context
from tests.credentials.fakes import (
    T0,
    FakeClock,
    FakeContainer,
    FakeImds,
    FakeServer,
    Recorded,
    Reply,
    Secrets,
)

MakeChain = Callable[..., DefaultCredentialsChain]
Serve = Callable[..., FakeServer]


def ipv6_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.fixture
def imds(
    env: dict[str, str], serve: Serve, secrets: Secrets
) -> tuple[FakeImds, FakeServer]:
    fake = FakeImds(secrets)
    server = serve(fake)
    del env["AWS_EC2_METADATA_DISABLED"]
    env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = server.url
    return fake, server


# ------------------------------------------------------------------ IMDS


async def test_imdsv2(make_chain: MakeChain, imds: tuple[FakeImds, FakeServer]) -> None:
    fake, server = imds
    got = await make_chain().get_credentials()
    issued = fake.issue.issued[0]
    assert (got.access_key_id, got.secret_access_key, got.session_token) == (
        issued.access_key_id,
        issued.secret_access_key,
        issued.session_token,
    )
    assert got.expiration == T0 + timedelta(hours=1)
    assert got.source == "imds"
    requests = [(r.method, r.path) for r in server.requests]
    assert requests == [
        ("PUT", "/latest/api/token"),
        ("GET", "/latest/meta-data/iam/security-credentials/"),
        ("GET", "/latest/meta-data/iam/security-credentials/polly-role"),
    ]
    assert server.requests[0].header("x-aws-ec2-metadata-token-ttl-seconds") == "21600"
    assert server.requests[0].header("x-aws-ec2-metadata-token") is None
    for request in server.requests[1:]:
        assert request.header("x-aws-ec2-metadata-token") == fake.token


async def test_imds_disabled_sends_nothing(
    make_chain: MakeChain, env: dict[str, str], imds: tuple[FakeImds, FakeServer]
) -> None:
    _, server = imds
    env["AWS_EC2_METADATA_DISABLED"] = "TRUE"
    with pytest.raises(NoCredentialsError):
        await make_chain().get_credentials()
    assert server.requests == []


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections (backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


async def test_imds_unresponsive_fails_fast(
    make_chain: MakeChain, env: dict[str, str], silent_port: int
) -> None:
    del env["AWS_EC2_METADATA_DISABLED"]
    env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = f"http://127.0.0.1:{silent_port}"
    env["AWS_METADATA_SERVICE_TIMEOUT"] = "0.2"
    started = time.monotonic()
    with pytest.raises(NoCredentialsError) as caught:
        await make_chain().get_credentials()
    assert time.monotonic() - started < 1.0
    assert dict(caught.value.tried)["EC2 instance metadata"] == (
        f"not reachable (http://127.0.0.1:{silent_port}: timed out)"
    )


async def test_imds_unreachable_fails_fast_with_default_timeout(
    make_chain: MakeChain, env: dict[str, str]
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    del env["AWS_EC2_METADATA_DISABLED"]
    env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    with pytest.raises(NoCredentialsError, match="Connection refused"):
        await make_chain().get_credentials()
    assert time.monotonic() - started < 0.5


async def test_imds_v1_fallback(
    make_chain: MakeChain, env: dict[str, str], imds: tuple[FakeImds, FakeServer]
) -> None:
    """A token request refused with 403/404/405 falls back to IMDSv1 (no token),
    unless AWS_EC2_METADATA_V1_DISABLED."""
    fake, server = imds
    fake.token_status = 403
    fake.accept_v1 = True
    got = await make_chain().get_credentials()
    assert got.source == "imds"
    assert all(r.header("x-aws-ec2-metadata-token") is None for r in server.requests)
    env["AWS_EC2_METADATA_V1_DISABLED"] = "true"
    with pytest.raises(NoCredentialsError) as caught:
        await make_chain().get_credentials()
    assert dict(caught.value.tried)["EC2 instance metadata"] == (
        f"{server.url} answered HTTP 403 to the IMDSv2 token request"
    )


async def test_imds_without_role(
    make_chain: MakeChain, imds: tuple[FakeImds, FakeServer]
) -> None:
    fake, server = imds
    fake.role = ""
    with pytest.raises(NoCredentialsError) as caught:
        await make_chain().get_credentials()
    assert dict(caught.value.tried)["EC2 instance metadata"] == (
        f"{server.url}: no IAM role is attached to this instance"
    )


async def test_imds_endpoint_from_profile_over_ipv6(
    make_chain: MakeChain,
    env: dict[str, str],
    home: Path,
    serve: Serve,
    secrets: Secrets,
) -> None:
    """An IPv6 literal endpoint (brackets in the URL and Host header), set by the
    profile's ec2_metadata_service_endpoint."""
    if not ipv6_available():
        pytest.skip("no IPv6 loopback on this machine")
    fake = FakeImds(secrets)
    server = serve(fake, ipv6=True)
    del env["AWS_EC2_METADATA_DISABLED"]
    (home / ".aws" / "config").write_text(
        f"[default]\nec2_metadata_service_endpoint = {server.url}/\n"
    )
    got = await make_chain().get_credentials()
    assert got.source == "imds"
    assert server.requests[0].header("host") == f"[::1]:{server.port}"


async def test_imds_endpoint_mode(
    make_chain: MakeChain, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The IPv6 mode selects fd00:ec2::254 (seen through the request it would send:
    the HTTP layer is replaced, nothing leaves the machine); a bad mode is an error."""
    urls: list[str] = []

    def no_network(r: object, method: str, url: str, **kwargs: object) -> object:
        urls.append(url)
        raise credentials_module._FetchError("not on EC2")

    monkeypatch.setattr(credentials_module, "_request", no_network)
    del env["AWS_EC2_METADATA_DISABLED"]
    env["AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE"] = "IPv6"
    with pytest.raises(NoCredentialsError):
        await make_chain().get_credentials()
    assert urls == ["http://[fd00:ec2::254]/latest/api/token"]
    env["AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE"] = "IPv4"
    with pytest.raises(NoCredentialsError):
        await make_chain().get_credentials()
    assert urls[-1] == "http://169.254.169.254/latest/api/token"
    env["AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE"] = "IPv5"
    with pytest.raises(
        CredentialsError, match="endpoint mode must be IPv4 or IPv6, got 'IPv5'"
    ):
        await make_chain().get_credentials()


async def test_imds_error_answer(
    make_chain: MakeChain, imds: tuple[FakeImds, FakeServer]
) -> None:
    fake, _ = imds
    fake.credentials_status = 500
    with pytest.raises(
        CredentialsError,
        match=r"EC2 instance metadata \(.*, role polly-role\): HTTP 500$",
    ):
        await make_chain().get_credentials()


# ------------------------------------------------------------------ container


async def test_ecs_relative_uri(
    make_chain: MakeChain,
    env: dict[str, str],
    serve: Serve,
    secrets: Secrets,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = FakeContainer(secrets, path="/v2/credentials/7f1d2a")
    server = serve(fake)
    monkeypatch.setattr(credentials_module, "_ECS_ENDPOINT", server.url)
    env["AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"] = "/v2/credentials/7f1d2a"
    env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = "http://127.0.0.1:1/ignored"
    got = await make_chain().get_credentials()
    issued = fake.issue.issued[0]
    assert (
        got.access_key_id,
        got.secret_access_key,
        got.session_token,
        got.source,
    ) == (
        issued.access_key_id,
        issued.secret_access_key,
        issued.session_token,
        "container",
    )
    assert got.expiration == issued.expiration
    [request] = server.requests
    assert request.path == "/v2/credentials/7f1d2a"
    assert request.header("authorization") is None


def test_ecs_endpoint_is_the_link_local_address() -> None:
    assert credentials_module._ECS_ENDPOINT == "http://169.254.170.2"


async def test_full_uri_with_authorization_token(
    make_chain: MakeChain, env: dict[str, str], serve: Serve, secrets: Secrets
) -> None:
    token = secrets.new("container-auth")
    fake = FakeContainer(secrets, token=token)
    server = serve(fake)
    env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = server.url + fake.path
    env["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = token
    got = await make_chain().get_credentials()
    assert got.source == "container"
    assert server.requests[0].header("authorization") == token


async def test_token_file_wins_and_is_reread(
    make_chain: MakeChain,
    env: dict[str, str],
    serve: Serve,
    secrets: Secrets,
    tmp_path: Path,
    clock: FakeClock,
) -> None:
    """EKS Pod Identity: the token file beats the variable and is read at each fetch."""
    first, second = secrets.new("pod-token-1"), secrets.new("pod-token-2")
    token_file = tmp_path / "eks-pod-identity-token"
    token_file.write_text(first + "\n")
    fake = FakeContainer(secrets, token=first, now=clock)
    server = serve(fake)
    env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = server.url + fake.path
    env["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"] = str(token_file)
    env["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = secrets.new("env-token-loses")
    chain = make_chain()
    await chain.get_credentials()
    token_file.write_text(second)
    fake.token = second
    clock.advance(timedelta(minutes=58))
    got = await chain.get_credentials()  # inside the margin: refresh runs behind
    assert got.access_key_id == fake.issue.issued[0].access_key_id
    got = await chain.refresh()
    assert got.access_key_id == fake.issue.issued[1].access_key_id
    assert [r.header("authorization") for r in server.requests] == [first, second]


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/creds",
        "http://10.0.0.1/creds",
        "http://169.254.170.3/creds",
        "ftp://127.0.0.1/creds",
    ],
)
async def test_disallowed_full_uri(
    make_chain: MakeChain, env: dict[str, str], url: str
) -> None:
    env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = url
    with pytest.raises(
        CredentialsError, match="is not allowed: an http:// URI must name a loopback"
    ):
        await make_chain().get_credentials()


async def test_full_uri_over_https_is_allowed_for_any_host(
    make_chain: MakeChain,
    env: dict[str, str],
    serve: Serve,
    secrets: Secrets,
    tmp_path: Path,
) -> None:
    certs = create_test_ca(tmp_path / "ca")
    fake = FakeContainer(secrets)
    server = serve(fake, tls=server_ssl_context(certs))
    env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = (
        f"https://localhost:{server.port}{fake.path}"
    )
    env["AWS_CA_BUNDLE"] = str(certs.ca_path)
    got = await make_chain().get_credentials()
    assert got.source == "container"


async def test_container_error_answer(
    make_chain: MakeChain, env: dict[str, str], serve: Serve, secrets: Secrets
) -> None:
    fake = FakeContainer(secrets)
    fake.fail_with = 500
    server = serve(fake)
    env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = server.url + fake.path
    with pytest.raises(CredentialsError) as caught:
        await make_chain().get_credentials()
    assert str(caught.value) == (
        f"container credentials ({server.url}): HTTP 500 Boom: failed on purpose"
    )
    assert len(server.requests) == 2  # retried once


async def test_container_token_with_newline_is_refused(
    make_chain: MakeChain, env: dict[str, str], secrets: Secrets
) -> None:
    token = secrets.new("line1") + "\n" + secrets.new("line2")
    env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = "http://127.0.0.1:9/creds"
    env["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = token
    with pytest.raises(CredentialsError, match="is not a valid header value") as caught:
        await make_chain().get_credentials()
    secrets.assert_absent(str(caught.value))


async def test_container_answer_without_keys(
    make_chain: MakeChain, env: dict[str, str], serve: Serve, secrets: Secrets
) -> None:
    def only_a_token(request: Recorded) -> Reply:
        return Reply(200, {"Token": secrets.new("orphan-token")})

    server = serve(only_a_token)
    env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = server.url + "/creds"
    with pytest.raises(
        CredentialsError, match="invalid credentials: the access key id"
    ) as caught:
        await make_chain().get_credentials()
    secrets.assert_absent(str(caught.value))
