"""The chain as a whole: public types, the environment link, precedence, order,
laziness, and the error that lists every source tried."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from amazon_polly_streaming.credentials import (
    AwsCredentials,
    CredentialsError,
    CredentialsProvider,
    DefaultCredentialsChain,
    NoCredentialsError,
    StaticCredentialsProvider,
)
from tests.credentials.fakes import (
    T0,
    FakeContainer,
    FakeImds,
    FakeServer,
    FakeSts,
    Secrets,
    iso,
)

MakeChain = Callable[..., DefaultCredentialsChain]
Serve = Callable[..., FakeServer]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ------------------------------------------------------------------ public types


def test_credentials_repr_hides_secrets(secrets: Secrets) -> None:
    secret, token = secrets.new("s"), secrets.new("t")
    creds = AwsCredentials("AKIDEXAMPLE", secret, token, expiration=T0, source="x")
    for text in (repr(creds), str(creds)):
        secrets.assert_absent(text)
        assert "AKIDEXAMPLE" in text
        assert "source='x'" in text


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"access_key_id": ""}, ValueError, "access_key_id must not be empty"),
        ({"access_key_id": 5}, TypeError, "access_key_id must be a str"),
        (
            {"secret_access_key": "has space"},
            ValueError,
            "secret_access_key must be printable",
        ),
        ({"session_token": "a\r\nb"}, ValueError, "session_token must be printable"),
        ({"expiration": datetime(2030, 1, 1)}, ValueError, "aware"),
        ({"expiration": "2030-01-01"}, TypeError, "expiration must be a datetime"),
    ],
)
def test_credentials_are_validated_without_echoing(
    kwargs: dict[str, object], error: type[Exception], match: str
) -> None:
    values: dict[str, object] = {
        "access_key_id": "AKID",
        "secret_access_key": "secret",
        "session_token": None,
    }
    values.update(kwargs)
    with pytest.raises(error, match=match) as caught:
        AwsCredentials(**values)  # type: ignore[arg-type]
    assert "has space" not in str(caught.value)


async def test_static_provider_is_explicit(secrets: Secrets) -> None:
    secret = secrets.new("static")
    provider = StaticCredentialsProvider("AKIDSTATIC", secret, expiration=T0)
    assert isinstance(provider, CredentialsProvider)
    got = await provider.get_credentials()
    assert (got.access_key_id, got.secret_access_key, got.source) == (
        "AKIDSTATIC",
        secret,
        "explicit",
    )
    assert got.expiration == T0
    assert provider.credentials is got
    secrets.assert_absent(repr(provider))


async def test_explicit_credentials_override_the_chain(
    monkeypatch: pytest.MonkeyPatch, secrets: Secrets
) -> None:
    """A static provider never consults the environment or anything else."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDFROMENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secrets.new("env"))
    provider = StaticCredentialsProvider("AKIDEXPLICIT", secrets.new("explicit"))
    assert (await provider.get_credentials()).access_key_id == "AKIDEXPLICIT"


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"profile": ""}, ValueError, "profile must not be empty"),
        ({"region": 3}, TypeError, "region must be a str or None"),
        ({"environ": ["A=b"]}, TypeError, "environ must be a mapping"),
        ({"home": "/tmp"}, TypeError, "home must be a Path"),
        ({"refresh_margin": 300}, TypeError, "refresh_margin must be a timedelta"),
        ({"refresh_margin": timedelta(seconds=-1)}, ValueError, "must not be negative"),
        ({"credential_process_timeout": 0}, ValueError, "positive"),
        ({"credential_process_timeout": True}, TypeError, "number of seconds"),
    ],
)
def test_chain_arguments_are_checked(
    kwargs: dict[str, object], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        DefaultCredentialsChain(**kwargs)  # type: ignore[arg-type]


def test_chain_repr() -> None:
    chain = DefaultCredentialsChain(profile="dev", region="eu-west-1")
    assert repr(chain) == "DefaultCredentialsChain(profile='dev', region='eu-west-1')"
    assert isinstance(chain, CredentialsProvider)


# ------------------------------------------------------------------ laziness


class SpyEnviron(Mapping[str, str]):
    """An environment that records every read."""

    def __init__(self, data: dict[str, str]) -> None:
        self.data = data
        self.reads = 0

    def __getitem__(self, key: str) -> str:
        self.reads += 1
        return self.data[key]

    def __iter__(self) -> Iterator[str]:
        self.reads += 1
        return iter(self.data)

    def __len__(self) -> int:
        self.reads += 1
        return len(self.data)


async def test_construction_does_no_io(home: Path, secrets: Secrets) -> None:
    """No environment read, no file read at construction: a broken config file
    and the environment are seen only on first use."""
    (home / ".aws" / "config").write_text("this is not an ini file\n")
    environ = SpyEnviron({"HOME": str(home), "AWS_EC2_METADATA_DISABLED": "true"})
    chain = DefaultCredentialsChain(environ=environ, home=home)
    assert environ.reads == 0
    with pytest.raises(
        CredentialsError, match=r"config, line 1: a setting before any \[section\]"
    ):
        await chain.get_credentials()
    assert environ.reads > 0


async def test_os_environ_is_read_at_first_use(
    monkeypatch: pytest.MonkeyPatch, secrets: Secrets
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    chain = DefaultCredentialsChain()
    secret = secrets.new("late")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDLATE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_SECURITY_TOKEN", raising=False)
    monkeypatch.delenv("AWS_CREDENTIAL_EXPIRATION", raising=False)
    got = await chain.get_credentials()
    assert (got.access_key_id, got.secret_access_key, got.source) == (
        "AKIDLATE",
        secret,
        "environment",
    )


# ------------------------------------------------------------------ environment


async def test_environment_credentials(
    make_chain: MakeChain,
    env: dict[str, str],
    secrets: Secrets,
    caplog: pytest.LogCaptureFixture,
) -> None:
    env["AWS_ACCESS_KEY_ID"] = "AKIDENV"
    env["AWS_SECRET_ACCESS_KEY"] = secrets.new("env-secret")
    env["AWS_SESSION_TOKEN"] = secrets.new("env-token")
    env["AWS_CREDENTIAL_EXPIRATION"] = iso(T0 + timedelta(hours=2))
    got = await make_chain().get_credentials()
    assert got == AwsCredentials(
        "AKIDENV",
        env["AWS_SECRET_ACCESS_KEY"],
        env["AWS_SESSION_TOKEN"],
        expiration=T0 + timedelta(hours=2),
        source="environment",
    )
    assert "resolved AWS credentials from environment" in caplog.text


@pytest.mark.parametrize(
    ("present", "match"),
    [
        (
            "AWS_ACCESS_KEY_ID",
            "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not",
        ),
        (
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not",
        ),
    ],
)
async def test_partial_environment_is_an_error(
    make_chain: MakeChain,
    env: dict[str, str],
    secrets: Secrets,
    present: str,
    match: str,
) -> None:
    env[present] = secrets.new("partial")
    with pytest.raises(CredentialsError, match=match) as caught:
        await make_chain().get_credentials()
    secrets.assert_absent(str(caught.value))


async def test_expired_environment_credentials_are_refused(
    make_chain: MakeChain, env: dict[str, str], secrets: Secrets
) -> None:
    env["AWS_ACCESS_KEY_ID"] = "AKIDOLD"
    env["AWS_SECRET_ACCESS_KEY"] = secrets.new("old")
    env["AWS_CREDENTIAL_EXPIRATION"] = iso(T0 - timedelta(minutes=1))
    with pytest.raises(
        CredentialsError,
        match=r"the credentials from environment expired at 2030-01-01T11:59:00Z",
    ):
        await make_chain().get_credentials()


async def test_bad_expiration_in_environment(
    make_chain: MakeChain, env: dict[str, str], secrets: Secrets
) -> None:
    env["AWS_ACCESS_KEY_ID"] = "AKID"
    env["AWS_SECRET_ACCESS_KEY"] = secrets.new("s")
    env["AWS_CREDENTIAL_EXPIRATION"] = "tomorrow"
    with pytest.raises(
        CredentialsError, match="AWS_CREDENTIAL_EXPIRATION: not an ISO 8601"
    ):
        await make_chain().get_credentials()


# ------------------------------------------------------------------ order


@pytest.fixture
def every_source(
    env: dict[str, str], home: Path, serve: Serve, secrets: Secrets, tmp_path: Path
) -> dict[str, object]:
    """All five sources configured at once, each distinguishable."""
    env["AWS_ACCESS_KEY_ID"] = "AKIDENV"
    env["AWS_SECRET_ACCESS_KEY"] = secrets.new("env")
    (home / ".aws" / "credentials").write_text(
        f"[default]\naws_access_key_id = AKIDPROFILE\n"
        f"aws_secret_access_key = {secrets.new('profile')}\n"
    )
    sts = FakeSts(secrets)
    env["AWS_ENDPOINT_URL_STS"] = serve(sts).url
    token_file = tmp_path / "web-identity-token"
    token_file.write_text(secrets.new("jwt"))
    env["AWS_WEB_IDENTITY_TOKEN_FILE"] = str(token_file)
    env["AWS_ROLE_ARN"] = "arn:aws:iam::123456789012:role/irsa"
    container = FakeContainer(secrets)
    env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = serve(container).url + container.path
    imds = FakeImds(secrets)
    del env["AWS_EC2_METADATA_DISABLED"]
    env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = serve(imds).url
    return {"sts": sts, "container": container, "imds": imds}


@pytest.mark.parametrize(
    ("removed", "expected_source"),
    [
        ((), "environment"),
        (("env",), "profile:default"),
        (("env", "profile"), "web-identity"),
        (("env", "profile", "web"), "container"),
        (("env", "profile", "web", "container"), "imds"),
    ],
)
async def test_chain_order(
    make_chain: MakeChain,
    env: dict[str, str],
    home: Path,
    every_source: dict[str, object],
    removed: tuple[str, ...],
    expected_source: str,
) -> None:
    """env > profile > web identity > container > IMDS; later links untouched."""
    if "env" in removed:
        del env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]
    if "profile" in removed:
        (home / ".aws" / "credentials").unlink()
    if "web" in removed:
        del env["AWS_WEB_IDENTITY_TOKEN_FILE"], env["AWS_ROLE_ARN"]
    if "container" in removed:
        del env["AWS_CONTAINER_CREDENTIALS_FULL_URI"]
    got = await make_chain().get_credentials()
    assert got.source == expected_source
    sts = every_source["sts"]
    container = every_source["container"]
    imds = every_source["imds"]
    assert isinstance(sts, FakeSts)
    assert isinstance(container, FakeContainer)
    assert isinstance(imds, FakeImds)
    used = {
        "web-identity": len(sts.calls),
        "container": len(container.issue.issued),
        "imds": len(imds.issue.issued),
    }
    assert used == {name: int(name == expected_source) for name in used}


async def test_environment_beats_a_misconfigured_profile(
    make_chain: MakeChain, env: dict[str, str], home: Path, secrets: Secrets
) -> None:
    """Later links are not even read once one answers."""
    (home / ".aws" / "config").write_text("garbage without section\n")
    env["AWS_ACCESS_KEY_ID"] = "AKIDENV"
    env["AWS_SECRET_ACCESS_KEY"] = secrets.new("env")
    env["AWS_PROFILE"] = "missing"
    assert (await make_chain().get_credentials()).source == "environment"


# ------------------------------------------------------------------ nothing found


async def test_no_credentials_lists_every_source(
    make_chain: MakeChain, env: dict[str, str], home: Path
) -> None:
    del env["AWS_EC2_METADATA_DISABLED"]
    env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(NoCredentialsError) as caught:
        await make_chain().get_credentials()
    error = caught.value
    assert isinstance(error, CredentialsError)
    assert isinstance(error, RuntimeError)
    names = [name for name, _ in error.tried]
    assert names == [
        "environment",
        "shared config files",
        "web identity",
        "container",
        "EC2 instance metadata",
    ]
    reasons = dict(error.tried)
    assert (
        reasons["environment"]
        == "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set"
    )
    assert reasons["shared config files"] == (
        f"no profile 'default' in {home}/.aws/config (absent) and "
        f"{home}/.aws/credentials (absent)"
    )
    assert (
        reasons["web identity"]
        == "AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN are not set"
    )
    assert "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI" in reasons["container"]
    assert reasons["EC2 instance metadata"].startswith(
        "not reachable (http://127.0.0.1:"
    )
    assert "Connection refused" in reasons["EC2 instance metadata"]
    text = str(error)
    assert text.startswith(
        "no AWS credentials found; tried, in order:\n  1. environment: "
    )
    assert "\n  5. EC2 instance metadata: not reachable" in text


async def test_no_credentials_with_imds_disabled(make_chain: MakeChain) -> None:
    with pytest.raises(NoCredentialsError) as caught:
        await make_chain().get_credentials()
    assert dict(caught.value.tried)["EC2 instance metadata"] == (
        "disabled by AWS_EC2_METADATA_DISABLED"
    )


async def test_no_credentials_is_not_cached(
    make_chain: MakeChain, env: dict[str, str], secrets: Secrets
) -> None:
    """A failure is not remembered: fixing the environment fixes the next call."""
    chain = make_chain()
    with pytest.raises(NoCredentialsError):
        await chain.get_credentials()
    env["AWS_ACCESS_KEY_ID"] = "AKIDNOW"
    env["AWS_SECRET_ACCESS_KEY"] = secrets.new("now")
    assert (await chain.get_credentials()).access_key_id == "AKIDNOW"


async def test_no_credentials_error_pickles(make_chain: MakeChain) -> None:
    """It crosses process boundaries (multiprocessing, concurrent.futures) intact."""
    import pickle

    with pytest.raises(NoCredentialsError) as caught:
        await make_chain().get_credentials()
    copy = pickle.loads(pickle.dumps(caught.value))  # noqa: S301 - our own bytes
    assert copy.tried == caught.value.tried
    assert str(copy) == str(caught.value)
