"""Shared config and credentials files: profile selection, static keys, parsing,
and ``credential_process``."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from amazon_polly_streaming.credentials import (
    CredentialsError,
    DefaultCredentialsChain,
    NoCredentialsError,
)
from tests.credentials.fakes import T0, Secrets, iso

MakeChain = Callable[..., DefaultCredentialsChain]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# ------------------------------------------------------------------ static keys


async def test_default_profile_from_credentials_file(
    make_chain: MakeChain, home: Path, secrets: Secrets
) -> None:
    secret, token = secrets.new("default"), secrets.new("token")
    write(
        home / ".aws" / "credentials",
        "# a comment\n; another\n[default]\n"
        f"aws_access_key_id = AKIDDEFAULT\naws_secret_access_key = {secret}\n"
        f"aws_session_token = {token}\n",
    )
    got = await make_chain().get_credentials()
    assert (got.access_key_id, got.secret_access_key, got.session_token) == (
        "AKIDDEFAULT",
        secret,
        token,
    )
    assert got.source == "profile:default"
    assert got.expiration is None


async def test_aws_profile_selects_a_config_profile(
    make_chain: MakeChain, env: dict[str, str], home: Path, secrets: Secrets
) -> None:
    """Config file sections are ``[profile name]``; ``[name]`` there is no profile."""
    write(
        home / ".aws" / "config",
        f"[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = {secrets.new('d')}\n"
        f"[dev]\naws_access_key_id = AKIDWRONG\naws_secret_access_key = {secrets.new('w')}\n"
        f"[profile dev]\nregion = eu-west-1\naws_access_key_id = AKIDDEV\n"
        f"aws_secret_access_key = {secrets.new('dev')}\n"
        "s3 =\n  max_concurrent_requests = 20\n",
    )
    env["AWS_PROFILE"] = "dev"
    got = await make_chain().get_credentials()
    assert (got.access_key_id, got.source) == ("AKIDDEV", "profile:dev")


async def test_profile_argument_beats_aws_profile(
    make_chain: MakeChain, env: dict[str, str], home: Path, secrets: Secrets
) -> None:
    write(
        home / ".aws" / "credentials",
        f"[a]\naws_access_key_id = AKIDA\naws_secret_access_key = {secrets.new('a')}\n"
        f"[b]\naws_access_key_id = AKIDB\naws_secret_access_key = {secrets.new('b')}\n",
    )
    env["AWS_PROFILE"] = "a"
    assert (await make_chain(profile="b").get_credentials()).access_key_id == "AKIDB"
    assert (await make_chain().get_credentials()).access_key_id == "AKIDA"


async def test_credentials_file_wins_over_config_file(
    make_chain: MakeChain, home: Path, secrets: Secrets
) -> None:
    write(
        home / ".aws" / "config",
        f"[profile x]\naws_access_key_id = AKIDCONFIG\naws_secret_access_key = {secrets.new('c')}\n",
    )
    write(
        home / ".aws" / "credentials",
        f"[x]\naws_access_key_id = AKIDCREDS\naws_secret_access_key = {secrets.new('k')}\n",
    )
    assert (
        await make_chain(profile="x").get_credentials()
    ).access_key_id == "AKIDCREDS"


async def test_file_locations_from_environment(
    make_chain: MakeChain, env: dict[str, str], home: Path, secrets: Secrets
) -> None:
    write(
        home / "elsewhere" / "creds",
        f"[default]\naws_access_key_id = AKIDMOVED\naws_secret_access_key = {secrets.new('m')}\n",
    )
    env["AWS_SHARED_CREDENTIALS_FILE"] = "~/elsewhere/creds"
    env["AWS_CONFIG_FILE"] = str(home / "nowhere")
    assert (await make_chain().get_credentials()).access_key_id == "AKIDMOVED"


@pytest.mark.parametrize("via", ["AWS_PROFILE", "argument"])
async def test_missing_selected_profile_is_an_error(
    make_chain: MakeChain, env: dict[str, str], home: Path, secrets: Secrets, via: str
) -> None:
    write(
        home / ".aws" / "credentials",
        f"[default]\naws_access_key_id = AKID\naws_secret_access_key = {secrets.new('d')}\n",
    )
    if via == "AWS_PROFILE":
        env["AWS_PROFILE"] = "nope"
        chain = make_chain()
        origin = "AWS_PROFILE"
    else:
        chain = make_chain(profile="nope")
        origin = "the profile argument"
    with pytest.raises(CredentialsError) as caught:
        await chain.get_credentials()
    assert not isinstance(caught.value, NoCredentialsError)
    assert str(caught.value) == (
        f"profile 'nope' (from {origin}) is not in {home}/.aws/config (absent) "
        f"and {home}/.aws/credentials"
    )


async def test_profile_without_credentials_is_skipped(
    make_chain: MakeChain, home: Path
) -> None:
    write(home / ".aws" / "config", "[default]\nregion = eu-central-1\n")
    with pytest.raises(NoCredentialsError) as caught:
        await make_chain().get_credentials()
    assert dict(caught.value.tried)["shared config files"] == (
        "profile 'default' has no credentials "
        "(no keys, role_arn, SSO or credential_process)"
    )


async def test_partial_static_keys_are_an_error(
    make_chain: MakeChain, home: Path, secrets: Secrets
) -> None:
    write(
        home / ".aws" / "credentials",
        f"[default]\naws_secret_access_key = {secrets.new('p')}\n",
    )
    with pytest.raises(
        CredentialsError,
        match="profile 'default' has aws_secret_access_key but no aws_access_key_id",
    ) as caught:
        await make_chain().get_credentials()
    secrets.assert_absent(str(caught.value))


async def test_parse_error_names_the_line_not_its_content(
    make_chain: MakeChain, home: Path, secrets: Secrets
) -> None:
    secret = secrets.new("unparsable")
    write(
        home / ".aws" / "credentials",
        f"[default]\naws_access_key_id = AKID\n{secret}\n",
    )
    with pytest.raises(CredentialsError) as caught:
        await make_chain().get_credentials()
    assert str(caught.value) == (
        f"{home}/.aws/credentials: cannot parse line(s) 3 "
        "(expected [section] or key = value)"
    )
    secrets.assert_absent(str(caught.value))
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


# ------------------------------------------------------------------ credential_process

SCRIPT = """\
import json, os, sys, time
mode = sys.argv[1]
if mode == "ok":
    doc = {"Version": 1, "AccessKeyId": os.environ["FAKE_KEY_ID"],
           "SecretAccessKey": os.environ["FAKE_SECRET"],
           "SessionToken": os.environ["FAKE_TOKEN"],
           "Expiration": os.environ["FAKE_EXPIRATION"]}
    print(json.dumps(doc))
elif mode == "static":
    print(json.dumps({"Version": 1, "AccessKeyId": "AKIDSTATIC",
                      "SecretAccessKey": os.environ["FAKE_SECRET"]}))
elif mode == "fail":
    print("could not log in: account locked", file=sys.stderr)
    sys.exit(3)
elif mode == "notjson":
    print("AccessKeyId=x SecretAccessKey=" + os.environ["FAKE_SECRET"])
elif mode == "v2":
    print(json.dumps({"Version": 2, "AccessKeyId": "a",
                      "SecretAccessKey": os.environ["FAKE_SECRET"]}))
elif mode == "nosecret":
    print(json.dumps({"Version": 1, "AccessKeyId": "AKID"}))
elif mode == "sleep":
    time.sleep(30)
"""


@pytest.fixture
def process_profile(
    home: Path, tmp_path: Path, env: dict[str, str], secrets: Secrets
) -> Callable[[str], None]:
    script = write(tmp_path / "creds.py", SCRIPT)
    env["FAKE_KEY_ID"] = "AKIDPROCESS"
    env["FAKE_SECRET"] = secrets.new("process-secret")
    env["FAKE_TOKEN"] = secrets.new("process-token")
    env["FAKE_EXPIRATION"] = iso(T0 + timedelta(minutes=45))

    def configure(mode: str, *extra: str) -> None:
        command = shlex.join([sys.executable, str(script), mode, *extra])
        write(
            home / ".aws" / "config",
            f"[profile proc]\ncredential_process = {command}\n",
        )

    return configure


async def test_credential_process(
    make_chain: MakeChain, env: dict[str, str], process_profile: Callable[[str], None]
) -> None:
    process_profile("ok")
    got = await make_chain(profile="proc").get_credentials()
    assert (got.access_key_id, got.secret_access_key, got.session_token) == (
        "AKIDPROCESS",
        env["FAKE_SECRET"],
        env["FAKE_TOKEN"],
    )
    assert got.expiration == T0 + timedelta(minutes=45)
    assert got.source == "profile:proc/process"


async def test_credential_process_without_expiration(
    make_chain: MakeChain, process_profile: Callable[[str], None]
) -> None:
    process_profile("static")
    got = await make_chain(profile="proc").get_credentials()
    assert (got.access_key_id, got.session_token, got.expiration) == (
        "AKIDSTATIC",
        None,
        None,
    )


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("fail", r"exited with status 3: could not log in: account locked$"),
        ("notjson", r"did not print a JSON object$"),
        ("v2", r"printed Version '2'; expected 1$"),
        (
            "nosecret",
            r"invalid credentials: the access key id or the secret access key is missing$",
        ),
    ],
)
async def test_credential_process_failures(
    make_chain: MakeChain,
    process_profile: Callable[..., None],
    secrets: Secrets,
    mode: str,
    message: str,
) -> None:
    process_profile(mode, "--password", secrets.add("hunter2-on-the-command-line"))
    with pytest.raises(CredentialsError, match=message) as caught:
        await make_chain(profile="proc").get_credentials()
    text = str(caught.value)
    assert text.startswith(f"profile 'proc': credential_process: {sys.executable}")
    secrets.assert_absent(text)


async def test_credential_process_timeout(
    make_chain: MakeChain, process_profile: Callable[[str], None]
) -> None:
    process_profile("sleep")
    chain = make_chain(profile="proc", credential_process_timeout=0.3)
    with pytest.raises(CredentialsError, match=r"did not finish within 0.3 s"):
        await chain.get_credentials()


async def test_credential_process_not_found(make_chain: MakeChain, home: Path) -> None:
    write(
        home / ".aws" / "config",
        "[default]\ncredential_process = /no/such/program --x\n",
    )
    with pytest.raises(
        CredentialsError,
        match=r"^profile 'default': credential_process: cannot run /no/such/program: "
        r"No such file or directory$",
    ):
        await make_chain().get_credentials()


async def test_credential_process_unbalanced_quotes(
    make_chain: MakeChain, home: Path
) -> None:
    write(
        home / ".aws" / "config", "[default]\ncredential_process = prog 'unterminated\n"
    )
    with pytest.raises(CredentialsError, match="not a valid command line"):
        await make_chain().get_credentials()


async def test_static_keys_win_over_credential_process(
    make_chain: MakeChain, home: Path, secrets: Secrets
) -> None:
    write(
        home / ".aws" / "config",
        f"[default]\naws_access_key_id = AKIDKEYS\naws_secret_access_key = {secrets.new('k')}\n"
        "credential_process = /no/such/program\n",
    )
    assert (await make_chain().get_credentials()).access_key_id == "AKIDKEYS"
