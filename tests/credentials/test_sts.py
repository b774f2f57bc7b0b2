"""STS links: AssumeRole (SigV4-signed with the source credentials, verified by
the project's independent verifier) and AssumeRoleWithWebIdentity (unsigned),
from profiles and from the environment; endpoints, regions, errors, HTTPS."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from amazon_polly_streaming.credentials import (
    CredentialsError,
    DefaultCredentialsChain,
)
from amazon_polly_streaming.testing.certs import create_test_ca, server_ssl_context
from amazon_polly_streaming.testing.sigv4 import Credentials
from tests.credentials.fakes import (
    T0,
    FakeContainer,
    FakeImds,
    FakeServer,
    FakeSts,
    Secrets,
)

MakeChain = Callable[..., DefaultCredentialsChain]
Serve = Callable[..., FakeServer]
ROLE = "arn:aws:iam::123456789012:role/polly-speaker"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def source_keys(home: Path, secrets: Secrets) -> Credentials:
    """A static ``[base]`` profile in the credentials file."""
    keys = Credentials("AKIDSOURCE", secrets.new("source-secret"))
    write(
        home / ".aws" / "credentials",
        f"[base]\naws_access_key_id = {keys.access_key_id}\n"
        f"aws_secret_access_key = {keys.secret_access_key}\n",
    )
    return keys


# ------------------------------------------------------------------ AssumeRole


async def test_assume_role_from_source_profile(
    make_chain: MakeChain,
    env: dict[str, str],
    home: Path,
    serve: Serve,
    secrets: Secrets,
    source_keys: Credentials,
) -> None:
    sts = FakeSts(secrets, region="eu-west-1", known=[source_keys])
    server = serve(sts)
    env["AWS_ENDPOINT_URL_STS"] = server.url
    write(
        home / ".aws" / "config",
        f"[profile dev]\nregion = eu-west-1\nrole_arn = {ROLE}\nsource_profile = base\n"
        "role_session_name = polly-session\nexternal_id = ext-42\nduration_seconds = 1800\n",
    )
    got = await make_chain(profile="dev").get_credentials()

    issued = sts.issue.issued[0]
    assert (got.access_key_id, got.secret_access_key, got.session_token) == (
        issued.access_key_id,
        issued.secret_access_key,
        issued.session_token,
    )
    assert got.expiration == T0 + timedelta(hours=1)
    assert got.source == "profile:dev/assume-role"
    assert sts.calls == [
        {
            "Action": "AssumeRole",
            "Version": "2011-06-15",
            "RoleArn": ROLE,
            "RoleSessionName": "polly-session",
            "ExternalId": "ext-42",
            "DurationSeconds": "1800",
        }
    ]
    [verification] = sts.verifications
    assert verification.ok, verification.message
    assert verification.access_key_id == "AKIDSOURCE"
    assert verification.scope is not None
    assert verification.scope.endswith("/eu-west-1/sts/aws4_request")
    assert {"host", "content-type", "x-amz-date"} <= set(verification.signed_headers)
    [request] = server.requests
    assert request.path == "/"
    assert (
        request.header("content-type")
        == "application/x-www-form-urlencoded; charset=utf-8"
    )
    assert request.header("x-amz-security-token") is None


async def test_assume_role_signature_is_really_checked(
    make_chain: MakeChain,
    env: dict[str, str],
    home: Path,
    serve: Serve,
    secrets: Secrets,
    source_keys: Credentials,
) -> None:
    """The fake refuses a request signed with another secret (proof the check bites)."""
    sts = FakeSts(secrets, known=[Credentials("AKIDSOURCE", secrets.new("other"))])
    env["AWS_ENDPOINT_URL_STS"] = serve(sts).url
    write(
        home / ".aws" / "config",
        f"[default]\nrole_arn = {ROLE}\nsource_profile = base\n",
    )
    with pytest.raises(CredentialsError) as caught:
        await make_chain().get_credentials()
    assert str(caught.value) == (
        f"profile 'default' (role {ROLE}): STS AssumeRole failed: HTTP 403 "
        "InvalidSignatureException: The request signature we calculated does not match "
        "the signature you provided. Check your AWS Secret Access Key and signing method. "
        "Consult the service documentation for details. (request id req-err)"
    )
    secrets.assert_absent(str(caught.value))


async def test_role_chain_with_session_token_and_default_session_name(
    make_chain: MakeChain,
    env: dict[str, str],
    home: Path,
    serve: Serve,
    secrets: Secrets,
) -> None:
    """a -> b (a role) -> c (keys with a session token): two AssumeRole calls,
    the second signed with what the first returned."""
    base = Credentials("ASIABASE", secrets.new("c-secret"), secrets.new("c-token"))
    sts = FakeSts(secrets, known=[base])
    env["AWS_ENDPOINT_URL"] = serve(sts).url  # the generic override reaches STS too
    env["AWS_REGION"] = "us-east-1"
    write(
        home / ".aws" / "config",
        f"[profile a]\nrole_arn = {ROLE}-a\nsource_profile = b\n"
        f"[profile b]\nrole_arn = {ROLE}-b\nsource_profile = c\n"
        f"[profile c]\naws_access_key_id = ASIABASE\n"
        f"aws_secret_access_key = {base.secret_access_key}\n"
        f"aws_session_token = {base.session_token}\n",
    )
    got = await make_chain(profile="a").get_credentials()
    assert [call["RoleArn"] for call in sts.calls] == [f"{ROLE}-b", f"{ROLE}-a"]
    assert [v.access_key_id for v in sts.verifications] == [
        "ASIABASE",
        sts.issue.issued[0].access_key_id,
    ]
    assert all(v.ok for v in sts.verifications)
    assert "x-amz-security-token" in sts.verifications[0].signed_headers
    assert got.access_key_id == sts.issue.issued[1].access_key_id
    for call in sts.calls:
        assert call["RoleSessionName"].startswith("amazon-polly-streaming-")
        assert "ExternalId" not in call


async def test_source_profile_static_keys_win_over_its_role(
    make_chain: MakeChain,
    env: dict[str, str],
    home: Path,
    serve: Serve,
    secrets: Secrets,
) -> None:
    """A self-referencing profile (role_arn + source_profile = itself + keys)
    assumes its role with its own keys."""
    keys = Credentials("AKIDSELF", secrets.new("self"))
    sts = FakeSts(secrets, known=[keys])
    env["AWS_ENDPOINT_URL_STS"] = serve(sts).url
    write(
        home / ".aws" / "credentials",
        f"[me]\nrole_arn = {ROLE}\nsource_profile = me\n"
        f"aws_access_key_id = AKIDSELF\naws_secret_access_key = {keys.secret_access_key}\n",
    )
    got = await make_chain(profile="me").get_credentials()
    assert got.source == "profile:me/assume-role"
    assert [v.access_key_id for v in sts.verifications] == ["AKIDSELF"]


async def test_source_profile_loop_is_refused(
    make_chain: MakeChain, home: Path
) -> None:
    write(
        home / ".aws" / "config",
        f"[profile a]\nrole_arn = {ROLE}\nsource_profile = b\n"
        f"[profile b]\nrole_arn = {ROLE}\nsource_profile = c\n"
        f"[profile c]\nrole_arn = {ROLE}\nsource_profile = a\n",
    )
    with pytest.raises(
        CredentialsError, match=r"^profile 'a': source_profile loop: a -> b -> c -> a$"
    ):
        await make_chain(profile="a").get_credentials()


@pytest.mark.parametrize(
    ("profile", "match"),
    [
        (
            f"role_arn = {ROLE}\n",
            "role_arn needs source_profile, credential_source or web_identity_token_file",
        ),
        (
            f"role_arn = {ROLE}\nsource_profile = base\ncredential_source = Environment\n",
            "has both source_profile and credential_source",
        ),
        (
            f"role_arn = {ROLE}\nsource_profile = ghost\n",
            "its source_profile 'ghost' is not in",
        ),
        (
            f"role_arn = {ROLE}\nsource_profile = empty\n",
            "its source_profile 'empty' has no credentials",
        ),
        (
            f"role_arn = {ROLE}\ncredential_source = Magic\n",
            "credential_source 'Magic' is not one of Environment, Ec2InstanceMetadata, EcsContainer",
        ),
        (
            f"role_arn = {ROLE}\nsource_profile = base\nduration_seconds = 60\n",
            "duration_seconds must be a whole number from 900 to 43200",
        ),
        (
            f"role_arn = {ROLE}\nsource_profile = base\nmfa_serial = arn:aws:iam::1:mfa/me\n",
            "mfa_serial is set, but an MFA code cannot be asked for here",
        ),
    ],
)
async def test_role_profile_configuration_errors(
    make_chain: MakeChain,
    home: Path,
    source_keys: Credentials,
    profile: str,
    match: str,
) -> None:
    write(
        home / ".aws" / "config", f"[default]\n{profile}[profile empty]\nregion = x\n"
    )
    with pytest.raises(CredentialsError, match=match) as caught:
        await make_chain().get_credentials()
    assert str(caught.value).startswith("profile ")


async def test_credential_source_environment(
    make_chain: MakeChain,
    env: dict[str, str],
    home: Path,
    serve: Serve,
    secrets: Secrets,
) -> None:
    """With profile= chosen, the environment's keys are not the answer: they sign
    the AssumeRole of ``credential_source = Environment``."""
    env["AWS_ACCESS_KEY_ID"] = "AKIDENVSOURCE"
    env["AWS_SECRET_ACCESS_KEY"] = secrets.new("env-source")
    sts = FakeSts(
        secrets,
        region="ap-southeast-2",
        known=[Credentials("AKIDENVSOURCE", env["AWS_SECRET_ACCESS_KEY"])],
    )
    env["AWS_ENDPOINT_URL_STS"] = serve(sts).url
    write(
        home / ".aws" / "config",
        f"[profile ci]\nrole_arn = {ROLE}\ncredential_source = Environment\n",
    )
    got = await make_chain(profile="ci", region="ap-southeast-2").get_credentials()
    assert got.source == "profile:ci/assume-role"
    assert sts.verifications[0].ok
    assert sts.verifications[0].access_key_id == "AKIDENVSOURCE"


@pytest.mark.parametrize("source", ["Ec2InstanceMetadata", "EcsContainer"])
async def test_credential_source_metadata(
    make_chain: MakeChain,
    env: dict[str, str],
    home: Path,
    serve: Serve,
    secrets: Secrets,
    source: str,
) -> None:
    if source == "Ec2InstanceMetadata":
        imds = FakeImds(secrets)
        del env["AWS_EC2_METADATA_DISABLED"]
        env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = serve(imds).url
        issuer = imds.issue
    else:
        container = FakeContainer(secrets)
        env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = (
            serve(container).url + container.path
        )
        issuer = container.issue
    sts = FakeSts(secrets, trusted=[issuer])
    env["AWS_ENDPOINT_URL_STS"] = serve(sts).url
    write(
        home / ".aws" / "config",
        f"[default]\nrole_arn = {ROLE}\ncredential_source = {source}\n",
    )
    got = await make_chain().get_credentials()
    assert got.source == "profile:default/assume-role"
    assert sts.verifications[0].ok
    assert sts.verifications[0].access_key_id == issuer.issued[0].access_key_id
    assert got.access_key_id == sts.issue.issued[0].access_key_id


async def test_credential_source_not_available(
    make_chain: MakeChain, home: Path
) -> None:
    write(
        home / ".aws" / "config",
        f"[default]\nrole_arn = {ROLE}\ncredential_source = EcsContainer\n",
    )
    with pytest.raises(
        CredentialsError,
        match=r"credential_source EcsContainer: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and",
    ):
        await make_chain().get_credentials()


async def test_sts_regional_endpoint_and_retry(
    make_chain: MakeChain,
    env: dict[str, str],
    home: Path,
    serve: Serve,
    secrets: Secrets,
    source_keys: Credentials,
) -> None:
    """A 5xx or a throttle is retried (re-signed); the region comes from AWS_REGION."""
    sts = FakeSts(secrets, region="sa-east-1", known=[source_keys])
    sts.errors = [
        (500, "InternalFailure", "oops"),
        (400, "Throttling", "Rate exceeded"),
    ]
    env["AWS_ENDPOINT_URL_STS"] = serve(sts).url
    env["AWS_REGION"] = "sa-east-1"
    write(
        home / ".aws" / "config",
        f"[default]\nrole_arn = {ROLE}\nsource_profile = base\n",
    )
    got = await make_chain().get_credentials()
    assert got.source == "profile:default/assume-role"
    assert len(sts.calls) == 3
    assert sts.verifications[0].ok


async def test_sts_error_is_reported(
    make_chain: MakeChain,
    env: dict[str, str],
    home: Path,
    serve: Serve,
    secrets: Secrets,
    source_keys: Credentials,
) -> None:
    sts = FakeSts(secrets, known=[source_keys])
    sts.errors = [
        (403, "AccessDenied", "User is not authorized to perform: sts:AssumeRole")
    ]
    env["AWS_ENDPOINT_URL_STS"] = serve(sts).url
    write(
        home / ".aws" / "config",
        f"[default]\nrole_arn = {ROLE}\nsource_profile = base\n",
    )
    with pytest.raises(CredentialsError) as caught:
        await make_chain().get_credentials()
    assert str(caught.value) == (
        f"profile 'default' (role {ROLE}): STS AssumeRole failed: HTTP 403 AccessDenied: "
        "User is not authorized to perform: sts:AssumeRole (request id req-err)"
    )


async def test_sts_unreachable(
    make_chain: MakeChain, env: dict[str, str], home: Path, source_keys: Credentials
) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env["AWS_ENDPOINT_URL_STS"] = f"http://127.0.0.1:{port}"
    write(
        home / ".aws" / "config",
        f"[default]\nrole_arn = {ROLE}\nsource_profile = base\n",
    )
    with pytest.raises(
        CredentialsError,
        match=rf"STS AssumeRole failed: http://127.0.0.1:{port}: Connection refused$",
    ):
        await make_chain().get_credentials()


async def test_sts_over_https_with_ca_bundle(
    make_chain: MakeChain,
    env: dict[str, str],
    home: Path,
    serve: Serve,
    secrets: Secrets,
    source_keys: Credentials,
    tmp_path: Path,
) -> None:
    certs = create_test_ca(tmp_path / "ca")
    sts = FakeSts(secrets, known=[source_keys])
    server = serve(sts, tls=server_ssl_context(certs))
    env["AWS_ENDPOINT_URL_STS"] = server.url
    write(
        home / ".aws" / "config",
        f"[default]\nrole_arn = {ROLE}\nsource_profile = base\n",
    )
    # Not trusted without the bundle...
    with pytest.raises(CredentialsError, match="TLS certificate not trusted"):
        await make_chain().get_credentials()
    # ...trusted with AWS_CA_BUNDLE, and with the ca_bundle argument.
    env["AWS_CA_BUNDLE"] = str(certs.ca_path)
    assert (
        await make_chain().get_credentials()
    ).source == "profile:default/assume-role"
    del env["AWS_CA_BUNDLE"]
    got = await make_chain(ca_bundle=certs.ca_path).get_credentials()
    assert got.source == "profile:default/assume-role"
    assert all(v.ok for v in sts.verifications)
    assert ssl.OPENSSL_VERSION  # the client side is the standard library's


# ------------------------------------------------------------------ web identity


async def test_web_identity_from_environment(
    make_chain: MakeChain,
    env: dict[str, str],
    serve: Serve,
    secrets: Secrets,
    tmp_path: Path,
) -> None:
    """EKS IRSA: the token file's content goes to AssumeRoleWithWebIdentity, unsigned."""
    token = secrets.new("eks-jwt")
    token_file = write(tmp_path / "token", token + "\n")
    sts = FakeSts(secrets, region="eu-central-1")
    server = serve(sts)
    env.update(
        {
            "AWS_WEB_IDENTITY_TOKEN_FILE": str(token_file),
            "AWS_ROLE_ARN": ROLE,
            "AWS_ROLE_SESSION_NAME": "pod-session",
            "AWS_ENDPOINT_URL_STS": server.url,
            "AWS_DEFAULT_REGION": "eu-central-1",
        }
    )
    got = await make_chain().get_credentials()
    assert got.source == "web-identity"
    assert got.access_key_id == sts.issue.issued[0].access_key_id
    assert sts.calls == [
        {
            "Action": "AssumeRoleWithWebIdentity",
            "Version": "2011-06-15",
            "RoleArn": ROLE,
            "RoleSessionName": "pod-session",
            "WebIdentityToken": token,
        }
    ]
    assert server.requests[0].header("authorization") is None
    assert sts.verifications == []


async def test_web_identity_token_file_is_reread(
    make_chain: MakeChain,
    env: dict[str, str],
    serve: Serve,
    secrets: Secrets,
    tmp_path: Path,
) -> None:
    """Kubernetes rotates the projected token: each refresh reads the file again."""
    token_file = write(tmp_path / "token", secrets.new("jwt-1"))
    sts = FakeSts(secrets)
    env.update(
        {
            "AWS_WEB_IDENTITY_TOKEN_FILE": str(token_file),
            "AWS_ROLE_ARN": ROLE,
            "AWS_ENDPOINT_URL_STS": serve(sts).url,
        }
    )
    chain = make_chain()
    await chain.get_credentials()
    token_file.write_text(secrets.new("jwt-2"))
    await chain.refresh()
    assert [c["WebIdentityToken"].split("-SECRET-")[0] for c in sts.calls] == [
        "jwt-1",
        "jwt-2",
    ]


async def test_web_identity_from_profile(
    make_chain: MakeChain,
    env: dict[str, str],
    home: Path,
    serve: Serve,
    secrets: Secrets,
) -> None:
    token = secrets.new("profile-jwt")
    write(home / "tokens" / "jwt", token)
    sts = FakeSts(secrets)
    env["AWS_ENDPOINT_URL_STS"] = serve(sts).url
    write(
        home / ".aws" / "config",
        f"[profile web]\nrole_arn = {ROLE}\nweb_identity_token_file = ~/tokens/jwt\n"
        "role_session_name = from-profile\n",
    )
    env["AWS_PROFILE"] = "web"
    got = await make_chain().get_credentials()
    assert got.source == "profile:web/web-identity"
    assert sts.calls[0]["WebIdentityToken"] == token
    assert sts.calls[0]["RoleSessionName"] == "from-profile"


@pytest.mark.parametrize(
    ("variables", "match"),
    [
        (
            {"AWS_WEB_IDENTITY_TOKEN_FILE": "/x"},
            "AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not",
        ),
        (
            {"AWS_WEB_IDENTITY_TOKEN_FILE": "/no/such/token", "AWS_ROLE_ARN": ROLE},
            "cannot read the web identity token file /no/such/token: No such file or directory",
        ),
    ],
)
async def test_web_identity_misconfigured(
    make_chain: MakeChain, env: dict[str, str], variables: dict[str, str], match: str
) -> None:
    env.update(variables)
    with pytest.raises(CredentialsError, match=match):
        await make_chain().get_credentials()


async def test_web_identity_error_hides_the_token(
    make_chain: MakeChain,
    env: dict[str, str],
    serve: Serve,
    secrets: Secrets,
    tmp_path: Path,
) -> None:
    """Even an endpoint that echoes the token back does not get it into the message."""
    token = secrets.new("echoed-jwt")
    sts = FakeSts(secrets)
    sts.errors = [(400, "InvalidIdentityToken", f"Token {token} is not valid")]
    env.update(
        {
            "AWS_WEB_IDENTITY_TOKEN_FILE": str(write(tmp_path / "t", token)),
            "AWS_ROLE_ARN": ROLE,
            "AWS_ENDPOINT_URL_STS": serve(sts).url,
        }
    )
    with pytest.raises(CredentialsError) as caught:
        await make_chain().get_credentials()
    assert "InvalidIdentityToken: Token <redacted> is not valid" in str(caught.value)
    secrets.assert_absent(str(caught.value))


async def test_ignore_configured_endpoint_urls(
    make_chain: MakeChain,
    env: dict[str, str],
    serve: Serve,
    secrets: Secrets,
    tmp_path: Path,
) -> None:
    """AWS_IGNORE_CONFIGURED_ENDPOINT_URLS sends STS to its real (here: unreachable)
    endpoint; with ca_bundle pointing at nothing it fails before any network I/O."""
    env.update(
        {
            "AWS_WEB_IDENTITY_TOKEN_FILE": str(
                write(tmp_path / "t", secrets.new("jwt"))
            ),
            "AWS_ROLE_ARN": ROLE,
            "AWS_ENDPOINT_URL_STS": serve(FakeSts(secrets)).url,
            "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true",
            "AWS_CA_BUNDLE": str(tmp_path / "missing-ca.pem"),
        }
    )
    with pytest.raises(
        CredentialsError, match=r"cannot load the CA bundle .*missing-ca.pem"
    ):
        await make_chain().get_credentials()
