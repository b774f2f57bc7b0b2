"""SSO: the token ``aws sso login`` cached, then the portal's GetRoleCredentials,
in the legacy profile form and the ``sso_session`` form."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from amazon_polly_streaming.credentials import CredentialsError, DefaultCredentialsChain
from tests.credentials.fakes import T0, FakeServer, FakeSso, Secrets, iso

MakeChain = Callable[..., DefaultCredentialsChain]
Serve = Callable[..., FakeServer]
START_URL = "https://my-org.awsapps.com/start"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def cache_token(home: Path, key: str, token: str, expires_at: str) -> Path:
    name = hashlib.sha1(key.encode(), usedforsecurity=False).hexdigest() + ".json"
    document = {
        "startUrl": START_URL,
        "region": "eu-west-1",
        "accessToken": token,
        "expiresAt": expires_at,
    }
    return write(home / ".aws" / "sso" / "cache" / name, json.dumps(document))


@pytest.fixture
def sso(
    env: dict[str, str], serve: Serve, secrets: Secrets
) -> tuple[FakeSso, FakeServer]:
    fake = FakeSso(secrets, token=secrets.new("sso-bearer"))
    server = serve(fake)
    env["AWS_ENDPOINT_URL_SSO"] = server.url
    return fake, server


LEGACY = (
    "[profile legacy]\n"
    f"sso_start_url = {START_URL}\nsso_region = eu-west-1\n"
    "sso_account_id = 111122223333\nsso_role_name = PollyUser\n"
)
SESSION = (
    "[profile dev]\nsso_session = my-sso\n"
    "sso_account_id = 444455556666\nsso_role_name = Speaker\nregion = us-west-2\n"
    f"[sso-session my-sso]\nsso_start_url = {START_URL}\nsso_region = eu-west-1\n"
    "sso_registration_scopes = sso:account:access\n"
)


async def test_sso_legacy_profile(
    make_chain: MakeChain, home: Path, sso: tuple[FakeSso, FakeServer]
) -> None:
    fake, server = sso
    write(home / ".aws" / "config", LEGACY)
    cache_token(home, START_URL, fake.token, iso(T0 + timedelta(hours=8)))
    got = await make_chain(profile="legacy").get_credentials()
    issued = fake.issue.issued[0]
    assert (got.access_key_id, got.secret_access_key, got.session_token) == (
        issued.access_key_id,
        issued.secret_access_key,
        issued.session_token,
    )
    assert got.expiration == issued.expiration
    assert got.source == "profile:legacy/sso"
    [request] = server.requests
    assert request.path == "/federation/credentials"
    assert request.query_params() == {
        "account_id": "111122223333",
        "role_name": "PollyUser",
    }
    assert request.header("x-amz-sso_bearer_token") == fake.token


async def test_sso_session_profile(
    make_chain: MakeChain,
    env: dict[str, str],
    home: Path,
    sso: tuple[FakeSso, FakeServer],
) -> None:
    """The cache file is named after the session name, not the start URL; the
    older CLI's ``...UTC`` timestamp form is read too."""
    fake, server = sso
    write(home / ".aws" / "config", SESSION)
    cache_token(home, "my-sso", fake.token, "2030-01-01T20:00:00UTC")
    env["AWS_PROFILE"] = "dev"
    got = await make_chain().get_credentials()
    assert got.source == "profile:dev/sso"
    assert server.requests[0].query_params() == {
        "account_id": "444455556666",
        "role_name": "Speaker",
    }
    assert server.requests[0].header("x-amz-sso_bearer_token") == fake.token


async def test_expired_sso_token(
    make_chain: MakeChain, home: Path, sso: tuple[FakeSso, FakeServer]
) -> None:
    fake, server = sso
    write(home / ".aws" / "config", SESSION)
    cache_token(home, "my-sso", fake.token, iso(T0 - timedelta(seconds=1)))
    with pytest.raises(CredentialsError) as caught:
        await make_chain(profile="dev").get_credentials()
    assert str(caught.value) == (
        "profile 'dev' (SSO): the SSO token expired at 2030-01-01T11:59:59Z; "
        "run `aws sso login --profile dev`"
    )
    assert server.requests == []


async def test_missing_sso_token(make_chain: MakeChain, home: Path) -> None:
    write(home / ".aws" / "config", LEGACY)
    digest = hashlib.sha1(START_URL.encode(), usedforsecurity=False).hexdigest()
    with pytest.raises(CredentialsError) as caught:
        await make_chain(profile="legacy").get_credentials()
    assert str(caught.value) == (
        f"profile 'legacy' (SSO): no cached SSO token "
        f"({home}/.aws/sso/cache/{digest}.json); run `aws sso login --profile legacy`"
    )


async def test_sso_token_refused_by_the_portal(
    make_chain: MakeChain, home: Path, sso: tuple[FakeSso, FakeServer], secrets: Secrets
) -> None:
    """A token revoked before its expiry: the portal's 401 says log in again."""
    write(home / ".aws" / "config", LEGACY)
    cache_token(home, START_URL, secrets.new("revoked"), iso(T0 + timedelta(hours=1)))
    with pytest.raises(CredentialsError) as caught:
        await make_chain(profile="legacy").get_credentials()
    assert str(caught.value) == (
        "profile 'legacy' (SSO): GetRoleCredentials failed: HTTP 401 "
        "UnauthorizedException: Session token not found or invalid; "
        "run `aws sso login --profile legacy`"
    )


@pytest.mark.parametrize(
    ("config", "match"),
    [
        (
            "[profile p]\nsso_start_url = https://x/start\nsso_role_name = R\n",
            "incomplete SSO configuration, missing sso_region, sso_account_id$",
        ),
        (
            "[profile p]\nsso_session = nope\nsso_account_id = 1\nsso_role_name = R\n",
            r"no \[sso-session nope\] section in",
        ),
        (
            "[profile p]\nsso_session = s\nsso_region = us-east-1\nsso_account_id = 1\n"
            "sso_role_name = R\n[sso-session s]\nsso_start_url = https://x\nsso_region = eu-west-1\n",
            "its sso_region differs from sso-session 's''s",
        ),
    ],
)
async def test_sso_configuration_errors(
    make_chain: MakeChain, home: Path, config: str, match: str
) -> None:
    write(home / ".aws" / "config", config)
    with pytest.raises(CredentialsError, match=match):
        await make_chain(profile="p").get_credentials()


async def test_corrupt_sso_cache(
    make_chain: MakeChain, home: Path, secrets: Secrets
) -> None:
    write(home / ".aws" / "config", LEGACY)
    digest = hashlib.sha1(START_URL.encode(), usedforsecurity=False).hexdigest()
    write(
        home / ".aws" / "sso" / "cache" / f"{digest}.json",
        '{"accessToken": "' + secrets.new("half") + '", ',
    )
    with pytest.raises(
        CredentialsError, match=r"the cached SSO token .* is not valid"
    ) as caught:
        await make_chain(profile="legacy").get_credentials()
    secrets.assert_absent(str(caught.value))
