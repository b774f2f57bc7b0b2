"""AWS credentials: explicit ones, or the AWS default chain, resolved lazily and cached.

:class:`DefaultCredentialsChain` looks, in order, at

1. the environment (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
   ``AWS_SESSION_TOKEN``, ``AWS_CREDENTIAL_EXPIRATION``);
2. the shared config and credentials files (``AWS_CONFIG_FILE``,
   ``AWS_SHARED_CREDENTIALS_FILE``) and the profile ``AWS_PROFILE`` names:
   ``role_arn`` with ``source_profile`` or ``credential_source`` (STS
   ``AssumeRole``, chains followed, loops refused), ``role_arn`` with
   ``web_identity_token_file``, SSO (the token ``aws sso login`` cached), static
   keys, ``credential_process``;
3. web identity from the environment (``AWS_WEB_IDENTITY_TOKEN_FILE`` +
   ``AWS_ROLE_ARN``: EKS IRSA);
4. container credentials (``AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`` or
   ``..._FULL_URI``, with ``AWS_CONTAINER_AUTHORIZATION_TOKEN[_FILE]``: ECS,
   Fargate, EKS Pod Identity);
5. EC2 instance metadata (IMDSv2; ``AWS_EC2_METADATA_DISABLED``,
   ``AWS_EC2_METADATA_SERVICE_ENDPOINT[_MODE]``).

A ``profile=`` argument outranks the environment (links 1 and 3 are then
skipped, as boto3 does for ``Session(profile_name=...)``); ``AWS_PROFILE``
does not. A source that is not configured is skipped (the reason is kept for
:class:`NoCredentialsError`); a source that is configured but fails raises
:class:`CredentialsError` at once rather than quietly falling through to
another identity.

Construction does no I/O. The first :meth:`~DefaultCredentialsChain.get_credentials`
resolves the chain in a worker thread (file reads, subprocess, HTTP through the
standard library: this runs once an hour at most, and blocking code in a thread
needs no event loop). The result is cached and refreshed ahead of its expiry in
the background while callers keep using the current credentials; callers wait
only when no valid credentials are at hand (``refresh()`` forces one, e.g.
after the service reports expired credentials). One refresh runs at a time,
shared by every caller. Nothing is bound to an event loop: the state is plain data
under a :class:`threading.Lock` and an in-flight refresh is a
:class:`concurrent.futures.Future` that each caller awaits through
:func:`asyncio.wrap_future`, so one provider serves one ``asyncio.run`` after
another.

Secrets (secret keys, session tokens, SSO bearer tokens, container
authorization tokens, web identity tokens, IMDS tokens) never appear in a
``repr``, an exception message or a log record.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import configparser
import hashlib
import http.client
import ipaddress
import json
import logging
import os
import re
import shlex
import ssl
import subprocess
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final, Protocol, cast, runtime_checkable
from urllib.parse import SplitResult, quote, urlencode, urlsplit

from aws_sdk_signers import (
    URI,
    AWSCredentialIdentity,
    AWSRequest,
    Field,
    Fields,
    SigV4Signer,
    SigV4SigningProperties,
)

__all__ = [
    "AwsCredentials",
    "CredentialsError",
    "CredentialsProvider",
    "DefaultCredentialsChain",
    "NoCredentialsError",
    "StaticCredentialsProvider",
]

_LOG: Final = logging.getLogger("amazon_polly_streaming.credentials")

DEFAULT_REFRESH_MARGIN: Final = timedelta(minutes=5)
_EXPIRY_BUFFER: Final = timedelta(seconds=10)
"""Credentials this close to expiry are no longer handed out: callers wait."""
_RETRY_INTERVAL: Final = timedelta(seconds=30)
"""After a failed refresh (current credentials still valid), the next try."""
_MIN_REFRESH_INTERVAL: Final = timedelta(seconds=30)
"""Credentials that arrive already inside the margin are refetched no sooner."""
_FAR_FUTURE: Final = datetime.max.replace(tzinfo=UTC)

_HTTP_TIMEOUT: Final = 5.0
_CONTAINER_TIMEOUT: Final = 2.0
_IMDS_TIMEOUT: Final = 1.0
_IMDS_TTL_SECONDS: Final = "21600"
_MAX_BODY: Final = 1 << 20
_RETRY_DELAY: Final = 0.1
_STS_VERSION: Final = "2011-06-15"
_STS_RETRY_CODES: Final = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "IDPCommunicationError",
    }
)
_SAFE_TEXT: Final = re.compile(r"[\x21-\x7e]+")
_PROFILE_SECTION: Final = re.compile(r"profile\s+(\S.*)")
_SSO_SESSION_SECTION: Final = re.compile(r"sso-session\s+(\S.*)")
_SIGNER: Final = SigV4Signer()  # stateless

_ECS_ENDPOINT = "http://169.254.170.2"
"""Where ``AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`` points (tests aim it at a fake)."""
_IMDS_IPV4: Final = "http://169.254.169.254"
_IMDS_IPV6: Final = "http://[fd00:ec2::254]"
_CONTAINER_HOSTS: Final = frozenset(
    {"169.254.170.2", "169.254.170.23", "fd00:ec2::23", "localhost"}
)


# ------------------------------------------------------------------ public types


@dataclass(frozen=True, slots=True)
class AwsCredentials:
    """A set of AWS credentials; its ``repr`` shows no secret.

    ``expiration`` is ``None`` for credentials that do not expire;
    ``source`` says where they came from (``"environment"``, ``"profile:dev"``,
    ``"profile:dev/assume-role"``, ``"web-identity"``, ``"container"``,
    ``"imds"``, ``"explicit"``, ...).
    """

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)
    expiration: datetime | None = None
    source: str = "explicit"

    def __post_init__(self) -> None:
        _check_secret_text("access_key_id", self.access_key_id)
        _check_secret_text("secret_access_key", self.secret_access_key)
        if self.session_token is not None:
            _check_secret_text("session_token", self.session_token)
        _check_expiration(self.expiration)
        if not isinstance(self.source, str):  # pyright: ignore[reportUnnecessaryIsInstance]
            msg = f"source must be a str, got {type(self.source).__name__}"
            raise TypeError(msg)


def _check_secret_text(name: str, value: object) -> None:
    """Checks a credential string without ever echoing it."""
    if not isinstance(value, str):
        msg = f"{name} must be a str, got {type(value).__name__}"
        raise TypeError(msg)
    if not value:
        msg = f"{name} must not be empty"
        raise ValueError(msg)
    if not _SAFE_TEXT.fullmatch(value):
        msg = f"{name} must be printable ASCII without spaces or control characters"
        raise ValueError(msg)


def _check_expiration(value: object) -> None:
    if value is None:
        return
    if not isinstance(value, datetime):
        msg = f"expiration must be a datetime or None, got {type(value).__name__}"
        raise TypeError(msg)
    if value.utcoffset() is None:
        msg = "expiration must be an aware datetime (with a time zone)"
        raise ValueError(msg)


class CredentialsError(RuntimeError):
    """Credentials could not be had: a source is misconfigured or failed.

    The message names the source and the reason, never a secret.
    """


class NoCredentialsError(CredentialsError):
    """No source of the chain is configured; ``tried`` says why each was skipped."""

    def __init__(self, tried: Sequence[tuple[str, str]]) -> None:
        self.tried: tuple[tuple[str, str], ...] = tuple(tried)
        """``(source, why it was skipped)`` for every source, in chain order."""
        lines = "\n".join(
            f"  {n}. {name}: {reason}" for n, (name, reason) in enumerate(self.tried, 1)
        )
        super().__init__(f"no AWS credentials found; tried, in order:\n{lines}")

    def __reduce__(self) -> tuple[type[NoCredentialsError], tuple[object, ...]]:
        return type(self), (self.tried,)


@runtime_checkable
class CredentialsProvider(Protocol):
    """Anything that hands out credentials; called before every request."""

    async def get_credentials(self) -> AwsCredentials:
        """Current credentials (cheap when cached)."""
        ...


class StaticCredentialsProvider:
    """Explicit credentials: always the same, never refreshed."""

    __slots__ = ("_credentials",)

    def __init__(
        self,
        access_key_id: str,
        secret_access_key: str,
        session_token: str | None = None,
        *,
        expiration: datetime | None = None,
    ) -> None:
        self._credentials = AwsCredentials(
            access_key_id,
            secret_access_key,
            session_token,
            expiration=expiration,
            source="explicit",
        )

    @property
    def credentials(self) -> AwsCredentials:
        return self._credentials

    async def get_credentials(self) -> AwsCredentials:
        return self._credentials

    def __repr__(self) -> str:
        key = self._credentials.access_key_id
        return f"StaticCredentialsProvider(access_key_id={key!r})"


# ------------------------------------------------------------------ the chain


class DefaultCredentialsChain:
    """The AWS default credential chain, resolved on first use, cached, refreshed.

    :param profile: the profile of the shared config files (else ``AWS_PROFILE``,
        else ``default``). Chosen here, it outranks the environment: the
        environment's keys and web identity variables are then not consulted
        (as with boto3's ``Session(profile_name=...)``).
    :param region: the region for STS (else ``AWS_REGION``,
        ``AWS_DEFAULT_REGION``, the profile's ``region``, ``us-east-1``).
    :param environ: the environment to read (default: ``os.environ``, read at
        each resolution, never at construction).
    :param home: the home directory for ``~/.aws`` (default: ``HOME`` of the
        environment, else the user's home).
    :param ca_bundle: CA bundle for the HTTPS calls (STS, SSO, container);
        else ``AWS_CA_BUNDLE``, else the profile's ``ca_bundle``, else the
        system's trust store.
    :param refresh_margin: how long before expiry a refresh starts (in the
        background: callers keep the current credentials meanwhile).
    :param credential_process_timeout: seconds a ``credential_process`` may run.
    :param clock: the current time, aware (tests inject one).
    """

    __slots__ = (
        "_ca_bundle",
        "_cached",
        "_clock",
        "_environ",
        "_home",
        "_lock",
        "_margin",
        "_pending",
        "_pid",
        "_process_timeout",
        "_profile",
        "_refresh_at",
        "_region",
    )

    def __init__(
        self,
        *,
        profile: str | None = None,
        region: str | None = None,
        environ: Mapping[str, str] | None = None,
        home: Path | None = None,
        ca_bundle: str | os.PathLike[str] | None = None,
        refresh_margin: timedelta = DEFAULT_REFRESH_MARGIN,
        credential_process_timeout: float = 60.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._profile = _optional_name("profile", profile)
        self._region = _optional_name("region", region)
        if environ is not None and not isinstance(environ, Mapping):  # pyright: ignore[reportUnnecessaryIsInstance]
            msg = f"environ must be a mapping, got {type(environ).__name__}"
            raise TypeError(msg)
        self._environ = environ
        if home is not None and not isinstance(home, Path):  # pyright: ignore[reportUnnecessaryIsInstance]
            msg = f"home must be a Path, got {type(home).__name__}"
            raise TypeError(msg)
        self._home = home
        self._ca_bundle = None if ca_bundle is None else os.fspath(ca_bundle)
        self._margin = _check_margin(refresh_margin)
        self._process_timeout = _check_seconds(
            "credential_process_timeout", credential_process_timeout
        )
        self._clock: Callable[[], datetime] = _utc_now if clock is None else clock
        self._lock = threading.Lock()
        self._cached: AwsCredentials | None = None
        self._refresh_at = _FAR_FUTURE
        self._pending: concurrent.futures.Future[AwsCredentials] | None = None
        self._pid = os.getpid()

    def __repr__(self) -> str:
        return (
            f"DefaultCredentialsChain(profile={self._profile!r}, "
            f"region={self._region!r})"
        )

    async def get_credentials(self) -> AwsCredentials:
        """Current credentials: cached, else resolved (once, for every caller).

        :raises NoCredentialsError: no source is configured.
        :raises CredentialsError: a configured source failed.
        """
        found = self._current_or_refresh()
        if isinstance(found, AwsCredentials):
            return found
        return await asyncio.wrap_future(found)

    async def refresh(self) -> AwsCredentials:
        """Resolve again now (or join the refresh in flight) and return the result.

        Unlike :meth:`get_credentials`, a failure raises even while the current
        credentials are still valid (they stay cached). A client calls this
        when the service says the credentials it sent have expired.
        """
        return await asyncio.wrap_future(self._join_refresh())

    # The lock guards plain data only; it is never held across I/O or an await.

    def _current_or_refresh(
        self,
    ) -> AwsCredentials | concurrent.futures.Future[AwsCredentials]:
        """Valid credentials to use now, else the refresh to await.

        Credentials inside the refresh margin are still handed out while a
        background refresh (started here if none runs) replaces them.
        """
        self._after_fork()
        with self._lock:
            now = self._clock()
            current = self._cached
            if current is not None and _usable(current, now):
                if now >= self._refresh_at and self._pending is None:
                    self._pending = self._start_refresh()
                return current
            if self._pending is None:
                self._pending = self._start_refresh()
            return self._pending

    def _join_refresh(self) -> concurrent.futures.Future[AwsCredentials]:
        """The refresh in flight, else a new one."""
        self._after_fork()
        with self._lock:
            if self._pending is None:
                self._pending = self._start_refresh()
            return self._pending

    def _start_refresh(self) -> concurrent.futures.Future[AwsCredentials]:
        future: concurrent.futures.Future[AwsCredentials] = concurrent.futures.Future()
        # Running from the start: a caller's cancelled wrap_future cannot cancel it.
        future.set_running_or_notify_cancel()
        thread = threading.Thread(
            target=self._refresh_in_thread,
            args=(future,),
            name="amazon-polly-streaming-credentials",
            daemon=True,
        )
        thread.start()
        return future

    def _refresh_in_thread(
        self, future: concurrent.futures.Future[AwsCredentials]
    ) -> None:
        try:
            credentials = self._resolve()
        except BaseException as exc:  # the future carries it to every caller
            with self._lock:
                if self._pending is future:
                    self._pending = None
                now = self._clock()
                self._refresh_at = now + _RETRY_INTERVAL
                kept = (
                    self._cached
                    if self._cached and _usable(self._cached, now)
                    else None
                )
            if kept is not None:
                _LOG.warning(
                    "refreshing AWS credentials failed, still using those from %s "
                    "(they expire at %s); next try in %d s: %s",
                    kept.source,
                    _format_time(kept.expiration),
                    _RETRY_INTERVAL.total_seconds(),
                    exc,
                )
            future.set_exception(exc)
            return
        with self._lock:
            if self._pending is future:
                self._pending = None
            self._cached = credentials
            now = self._clock()
            if credentials.expiration is None:
                self._refresh_at = _FAR_FUTURE
            else:
                self._refresh_at = max(
                    credentials.expiration - self._margin, now + _MIN_REFRESH_INTERVAL
                )
        future.set_result(credentials)

    def _after_fork(self) -> None:
        """In a forked child, the parent's refresh thread and lock state are gone."""
        pid = os.getpid()
        if pid != self._pid:
            self._lock = threading.Lock()
            self._pending = None
            self._pid = pid

    def _resolve(self) -> AwsCredentials:
        """One walk of the chain (blocking; runs in the worker thread)."""
        env: Mapping[str, str] = dict(
            os.environ if self._environ is None else self._environ
        )
        resolution = _Resolution(
            env=env,
            home=self._home if self._home is not None else _home_of(env),
            profile=self._profile,
            region=self._region,
            ca_bundle=self._ca_bundle,
            process_timeout=self._process_timeout,
            clock=self._clock,
        )
        credentials = _walk_chain(resolution)
        now = self._clock()
        if not _usable(credentials, now):
            msg = (
                f"the credentials from {credentials.source} expired at "
                f"{_format_time(credentials.expiration)}"
            )
            raise CredentialsError(msg)
        _LOG.debug(
            "resolved AWS credentials from %s (expire: %s)",
            credentials.source,
            _format_time(credentials.expiration),
        )
        return credentials


def _usable(credentials: AwsCredentials, now: datetime) -> bool:
    expiration = credentials.expiration
    return expiration is None or now < expiration - _EXPIRY_BUFFER


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _format_time(value: datetime | None) -> str:
    return (
        "never"
        if value is None
        else value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    )


def _optional_name(name: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        msg = f"{name} must be a str or None, got {type(value).__name__}"
        raise TypeError(msg)
    if not value:
        msg = f"{name} must not be empty"
        raise ValueError(msg)
    return value


def _check_margin(value: object) -> timedelta:
    if not isinstance(value, timedelta):
        msg = f"refresh_margin must be a timedelta, got {type(value).__name__}"
        raise TypeError(msg)
    if value < timedelta(0):
        msg = "refresh_margin must not be negative"
        raise ValueError(msg)
    return value


def _check_seconds(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        msg = f"{name} must be a number of seconds, got {type(value).__name__}"
        raise TypeError(msg)
    if not 0 < value < float("inf"):
        msg = f"{name} must be a positive, finite number of seconds, got {value!r}"
        raise ValueError(msg)
    return float(value)


def _home_of(env: Mapping[str, str]) -> Path:
    home = env.get("HOME") or env.get("USERPROFILE")
    return Path(home) if home else Path.home()


# ------------------------------------------------------------------ one resolution


class _Skip(Exception):
    """This source is not configured here; the chain goes on."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


_PROFILE_ARGUMENT: Final = "the profile argument"


class _Resolution:
    """The inputs of one walk of the chain, and the secrets it has seen."""

    __slots__ = (
        "_files",
        "_ssl",
        "ca_bundle",
        "clock",
        "env",
        "home",
        "process_timeout",
        "profile",
        "profile_origin",
        "region_arg",
        "secrets",
    )

    def __init__(
        self,
        *,
        env: Mapping[str, str],
        home: Path,
        profile: str | None,
        region: str | None,
        ca_bundle: str | None,
        process_timeout: float,
        clock: Callable[[], datetime],
    ) -> None:
        self.env = env
        self.home = home
        self.profile: str
        self.profile_origin: str | None
        if profile is not None:
            self.profile, self.profile_origin = profile, _PROFILE_ARGUMENT
        elif env.get("AWS_PROFILE"):
            self.profile, self.profile_origin = env["AWS_PROFILE"], "AWS_PROFILE"
        elif env.get("AWS_DEFAULT_PROFILE"):
            self.profile, self.profile_origin = (
                env["AWS_DEFAULT_PROFILE"],
                "AWS_DEFAULT_PROFILE",
            )
        else:
            self.profile, self.profile_origin = "default", None
        self.region_arg = region
        self.ca_bundle = ca_bundle
        self.process_timeout = process_timeout
        self.clock = clock
        self.secrets: list[str] = []
        self._files: _ProfileFiles | None = None
        self._ssl: ssl.SSLContext | None = None

    def secret(self, value: str) -> str:
        """Remember a secret, so that no message built from remote text shows it."""
        if value:
            self.secrets.append(value)
        return value

    def clean(self, text: str, limit: int = 300) -> str:
        """Remote or user-program text, fit for a message: secrets masked, short."""
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, "<redacted>")
        text = " ".join(text.split())
        return text if len(text) <= limit else text[: limit - 3] + "..."

    def files(self) -> _ProfileFiles:
        if self._files is None:
            self._files = _ProfileFiles.load(
                _expand(self.env.get("AWS_CONFIG_FILE") or "~/.aws/config", self.home),
                _expand(
                    self.env.get("AWS_SHARED_CREDENTIALS_FILE") or "~/.aws/credentials",
                    self.home,
                ),
            )
        return self._files

    def setting(self, key: str) -> str | None:
        """A setting of the selected profile (``None`` if absent)."""
        profile = self.files().profiles.get(self.profile)
        return None if profile is None else profile.get(key)

    def region(self) -> str:
        return (
            self.region_arg
            or self.env.get("AWS_REGION")
            or self.env.get("AWS_DEFAULT_REGION")
            or self.setting("region")
            or "us-east-1"
        )

    def endpoint(self, service: str, default: str) -> str:
        """``AWS_ENDPOINT_URL_<SERVICE>``, else ``AWS_ENDPOINT_URL``, else default."""
        url = None
        if not _truthy(self.env.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")):
            url = self.env.get(f"AWS_ENDPOINT_URL_{service}") or self.env.get(
                "AWS_ENDPOINT_URL"
            )
        return (url or default).rstrip("/")

    def ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            bundle = (
                self.ca_bundle
                or self.env.get("AWS_CA_BUNDLE")
                or self.setting("ca_bundle")
            )
            try:
                self._ssl = ssl.create_default_context(cafile=bundle or None)
            except (OSError, ssl.SSLError) as exc:
                msg = f"cannot load the CA bundle {bundle}: {_error_text(exc)}"
                raise CredentialsError(msg) from None
        return self._ssl

    def now(self) -> datetime:
        return self.clock()


def _truthy(value: str | None) -> bool:
    return value is not None and value.strip().lower() in {"true", "1"}


def _expand(raw: str, home: Path) -> Path:
    if raw == "~":
        return home
    if raw.startswith(("~/", "~" + os.sep)):
        return home / raw[2:]
    return Path(raw)


def _walk_chain(r: _Resolution) -> AwsCredentials:
    tried: list[tuple[str, str]] = []
    sources: tuple[tuple[str, Callable[[_Resolution], AwsCredentials]], ...] = (
        ("environment", _from_environment),
        ("shared config files", _from_profile),
        ("web identity", _from_web_identity_env),
        ("container", _from_container),
        ("EC2 instance metadata", _from_imds),
    )
    for name, source in sources:
        try:
            return source(r)
        except _Skip as skip:
            _LOG.debug("credentials: %s skipped: %s", name, skip.reason)
            tried.append((name, skip.reason))
    raise NoCredentialsError(tried)


def _make(
    r: _Resolution,
    what: str,
    *,
    access_key_id: object,
    secret_access_key: object,
    session_token: object,
    expiration: datetime | None,
    source: str,
) -> AwsCredentials:
    """Credentials from a source's answer; a bad answer is the source's error."""
    for value in (secret_access_key, session_token):
        if isinstance(value, str):
            r.secret(value)
    try:
        if not isinstance(access_key_id, str) or not isinstance(secret_access_key, str):
            msg = "the access key id or the secret access key is missing"
            raise ValueError(msg)
        token = (
            session_token if isinstance(session_token, str) and session_token else None
        )
        return AwsCredentials(
            access_key_id,
            secret_access_key,
            token,
            expiration=expiration,
            source=source,
        )
    except (TypeError, ValueError) as exc:
        msg = f"{what}: invalid credentials: {exc}"
        raise CredentialsError(msg) from None


def _parse_time(text: str, what: str) -> datetime:
    value = text.strip()
    if value.endswith("UTC"):
        value = value[:-3].rstrip() + "+00:00"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        msg = f"{what}: not an ISO 8601 time: {text[:40]!r}"
        raise CredentialsError(msg) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


# ------------------------------------------------------------------ 1. environment


def _explicit_profile(r: _Resolution) -> None:
    """A ``profile=`` argument outranks the environment's keys (as in boto3)."""
    if r.profile_origin == _PROFILE_ARGUMENT:
        raise _Skip(f"not consulted: profile {r.profile!r} was chosen by argument")


def _from_environment(r: _Resolution) -> AwsCredentials:
    _explicit_profile(r)
    return _environment_credentials(r)


def _environment_credentials(r: _Resolution) -> AwsCredentials:
    env = r.env
    key = env.get("AWS_ACCESS_KEY_ID") or ""
    secret = env.get("AWS_SECRET_ACCESS_KEY") or ""
    if not key and not secret:
        raise _Skip("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set")
    if not secret:
        msg = "environment: AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not"
        raise CredentialsError(msg)
    if not key:
        msg = "environment: AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not"
        raise CredentialsError(msg)
    raw_expiration = env.get("AWS_CREDENTIAL_EXPIRATION")
    return _make(
        r,
        "environment",
        access_key_id=key,
        secret_access_key=secret,
        session_token=env.get("AWS_SESSION_TOKEN") or env.get("AWS_SECURITY_TOKEN"),
        expiration=(
            _parse_time(raw_expiration, "AWS_CREDENTIAL_EXPIRATION")
            if raw_expiration
            else None
        ),
        source="environment",
    )


# ------------------------------------------------------------------ 2. profiles


@dataclass(frozen=True, slots=True)
class _ProfileFiles:
    """The shared config and credentials files, parsed and merged."""

    config_path: Path
    credentials_path: Path
    config_found: bool
    credentials_found: bool
    profiles: Mapping[str, Mapping[str, str]]
    """Profile name -> settings; the credentials file wins over the config file."""
    sso_sessions: Mapping[str, Mapping[str, str]]

    @classmethod
    def load(cls, config_path: Path, credentials_path: Path) -> _ProfileFiles:
        config_text = _read_optional(config_path)
        credentials_text = _read_optional(credentials_path)
        profiles, sessions = _merge_profiles(
            _parse_ini(config_text, config_path) if config_text is not None else {},
            _parse_ini(credentials_text, credentials_path)
            if credentials_text is not None
            else {},
        )
        return cls(
            config_path=config_path,
            credentials_path=credentials_path,
            config_found=config_text is not None,
            credentials_found=credentials_text is not None,
            profiles=profiles,
            sso_sessions=sessions,
        )

    def describe(self) -> str:
        def one(path: Path, found: bool) -> str:
            return str(path) if found else f"{path} (absent)"

        return (
            f"{one(self.config_path, self.config_found)} and "
            f"{one(self.credentials_path, self.credentials_found)}"
        )


def _read_optional(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except UnicodeDecodeError:
        msg = f"{path}: not UTF-8 text"
        raise CredentialsError(msg) from None
    except OSError as exc:
        msg = f"cannot read {path}: {_error_text(exc)}"
        raise CredentialsError(msg) from None


def _parse_ini(text: str, path: Path) -> dict[str, dict[str, str]]:
    """Sections of an AWS config file; errors name lines, never their content."""
    parser = configparser.RawConfigParser(
        strict=False,
        interpolation=None,
        default_section="\x00 no default section",
        empty_lines_in_values=False,
    )
    try:
        parser.read_string(text, source=str(path))
    except configparser.MissingSectionHeaderError as exc:
        msg = f"{path}, line {exc.lineno}: a setting before any [section]"
        raise CredentialsError(msg) from None
    except configparser.ParsingError as exc:
        lines = ", ".join(str(lineno) for lineno, _ in exc.errors)
        msg = (
            f"{path}: cannot parse line(s) {lines} (expected [section] or key = value)"
        )
        raise CredentialsError(msg) from None
    except configparser.Error as exc:
        msg = f"{path}: cannot parse ({type(exc).__name__})"
        raise CredentialsError(msg) from None
    sections: dict[str, dict[str, str]] = {}
    for name in parser.sections():
        values = {
            key: value.strip() for key, value in parser.items(name) if value.strip()
        }
        sections.setdefault(name.strip(), {}).update(values)
    return sections


def _merge_profiles(
    config: Mapping[str, Mapping[str, str]],
    credentials: Mapping[str, Mapping[str, str]],
) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]]]:
    profiles: dict[str, dict[str, str]] = {}
    sessions: dict[str, dict[str, str]] = {}
    for section, values in config.items():
        if section == "default":
            profiles.setdefault("default", dict(values))  # [profile default] wins
        elif match := _PROFILE_SECTION.fullmatch(section):
            profiles[match[1].strip()] = dict(values)
        elif match := _SSO_SESSION_SECTION.fullmatch(section):
            sessions[match[1].strip()] = dict(values)
    for section, values in credentials.items():
        profiles.setdefault(section, {}).update(values)
    return profiles, sessions


def _from_profile(r: _Resolution) -> AwsCredentials:
    files = r.files()
    name = r.profile
    if name not in files.profiles:
        if r.profile_origin is not None:
            msg = (
                f"profile {name!r} (from {r.profile_origin}) is not in "
                f"{files.describe()}"
            )
            raise CredentialsError(msg)
        raise _Skip(f"no profile {name!r} in {files.describe()}")
    return _profile_credentials(r, files, name, ())


def _profile_credentials(
    r: _Resolution, files: _ProfileFiles, name: str, visited: tuple[str, ...]
) -> AwsCredentials:
    """A profile's credentials, as the first link of a chain or a source profile."""
    profile = files.profiles[name]
    label = f"profile:{name}"
    role_arn = profile.get("role_arn")
    if role_arn:
        return _role_profile(
            r,
            files=files,
            name=name,
            profile=profile,
            role_arn=role_arn,
            visited=visited,
        )
    if profile.get("sso_session") or profile.get("sso_start_url"):
        return _sso(r, files, name, profile)
    static = _static_keys(r, name, profile)
    if static is not None:
        return static
    command = profile.get("credential_process")
    if command:
        return _credential_process(
            r,
            command,
            what=f"profile {name!r}: credential_process",
            source=f"{label}/process",
        )
    raise _Skip(
        f"profile {name!r} has no credentials "
        "(no keys, role_arn, SSO or credential_process)"
    )


def _static_keys(
    r: _Resolution, name: str, profile: Mapping[str, str]
) -> AwsCredentials | None:
    key = profile.get("aws_access_key_id")
    secret = profile.get("aws_secret_access_key")
    if not key and not secret:
        return None
    if not key or not secret:
        present, absent = (
            ("aws_access_key_id", "aws_secret_access_key")
            if key
            else ("aws_secret_access_key", "aws_access_key_id")
        )
        msg = f"profile {name!r} has {present} but no {absent}"
        raise CredentialsError(msg)
    return _make(
        r,
        f"profile {name!r}",
        access_key_id=key,
        secret_access_key=secret,
        session_token=profile.get("aws_session_token")
        or profile.get("aws_security_token"),
        expiration=None,
        source=f"profile:{name}",
    )


def _role_profile(
    r: _Resolution,
    *,
    files: _ProfileFiles,
    name: str,
    profile: Mapping[str, str],
    role_arn: str,
    visited: tuple[str, ...],
) -> AwsCredentials:
    what = f"profile {name!r} (role {role_arn})"
    source_profile = profile.get("source_profile")
    credential_source = profile.get("credential_source")
    token_file = profile.get("web_identity_token_file")
    if source_profile and credential_source:
        msg = f"{what}: has both source_profile and credential_source; keep one"
        raise CredentialsError(msg)
    if not source_profile and not credential_source:
        if token_file:
            return _assume_role_with_web_identity(
                r,
                what,
                role_arn=role_arn,
                token_file=_expand(token_file, r.home),
                session_name=profile.get("role_session_name"),
                source=f"profile:{name}/web-identity",
            )
        msg = (
            f"{what}: role_arn needs source_profile, credential_source or "
            "web_identity_token_file"
        )
        raise CredentialsError(msg)
    if profile.get("mfa_serial"):
        msg = (
            f"{what}: mfa_serial is set, but an MFA code cannot be asked for here "
            "(non-interactive); use credentials that need no MFA, or run "
            "`aws configure export-credentials` / a credential_process"
        )
        raise CredentialsError(msg)
    params = _assume_role_params(profile, what, role_arn)
    if source_profile:
        source = _source_profile(r, files, source_profile, (*visited, name))
    else:
        source = _credential_source(r, what, credential_source or "")
    return _call_sts(
        r,
        "AssumeRole",
        params,
        signer=source,
        what=what,
        source=f"profile:{name}/assume-role",
    )


def _assume_role_params(
    profile: Mapping[str, str], what: str, role_arn: str
) -> dict[str, str]:
    params = {
        "RoleArn": role_arn,
        "RoleSessionName": profile.get("role_session_name") or _default_session_name(),
    }
    external_id = profile.get("external_id")
    if external_id:
        params["ExternalId"] = external_id
    duration = profile.get("duration_seconds")
    if duration:
        if not duration.isdigit() or not 900 <= int(duration) <= 43200:
            msg = f"{what}: duration_seconds must be a whole number from 900 to 43200"
            raise CredentialsError(msg)
        params["DurationSeconds"] = str(int(duration))
    return params


def _default_session_name() -> str:
    return f"amazon-polly-streaming-{int(time.time() * 1000)}"


def _source_profile(
    r: _Resolution, files: _ProfileFiles, name: str, visited: tuple[str, ...]
) -> AwsCredentials:
    """Credentials of a ``source_profile``: its static keys win over its own role."""
    referrer = visited[-1]
    profile = files.profiles.get(name)
    if profile is None:
        msg = (
            f"profile {referrer!r}: its source_profile {name!r} is not in "
            f"{files.describe()}"
        )
        raise CredentialsError(msg)
    static = _static_keys(r, name, profile)
    if static is not None:
        return static
    if name in visited:
        chain = " -> ".join((*visited, name))
        msg = f"profile {visited[0]!r}: source_profile loop: {chain}"
        raise CredentialsError(msg)
    try:
        return _profile_credentials(r, files, name, visited)
    except _Skip:
        msg = f"profile {referrer!r}: its source_profile {name!r} has no credentials"
        raise CredentialsError(msg) from None


def _credential_source(r: _Resolution, what: str, name: str) -> AwsCredentials:
    sources: Mapping[str, Callable[[_Resolution], AwsCredentials]] = {
        "Environment": _environment_credentials,
        "Ec2InstanceMetadata": _from_imds,
        "EcsContainer": _from_container,
    }
    source = sources.get(name)
    if source is None:
        msg = f"{what}: credential_source {name!r} is not one of {', '.join(sources)}"
        raise CredentialsError(msg)
    try:
        return source(r)
    except _Skip as skip:
        msg = f"{what}: credential_source {name}: {skip.reason}"
        raise CredentialsError(msg) from None


# -------------------------------------------------------------- credential_process


def _credential_process(
    r: _Resolution, command: str, *, what: str, source: str
) -> AwsCredentials:
    try:
        argv = shlex.split(command)
    except ValueError:
        msg = f"{what}: not a valid command line (unbalanced quotes?)"
        raise CredentialsError(msg) from None
    if not argv:
        msg = f"{what}: empty command"
        raise CredentialsError(msg)
    program = argv[0]  # the rest of the command line may hold secrets: never shown
    try:
        completed = subprocess.run(  # noqa: S603 - the user's configured command, no shell
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=r.process_timeout,
            env=dict(r.env),
            check=False,
        )
    except subprocess.TimeoutExpired:
        msg = f"{what}: {program} did not finish within {r.process_timeout:g} s"
        raise CredentialsError(msg) from None
    except OSError as exc:
        msg = f"{what}: cannot run {program}: {_error_text(exc)}"
        raise CredentialsError(msg) from None
    if completed.returncode != 0:
        stderr = r.clean(completed.stderr.decode("utf-8", "replace")[-2000:])
        detail = f": {stderr}" if stderr else ""
        msg = f"{what}: {program} exited with status {completed.returncode}{detail}"
        raise CredentialsError(msg)
    document = _json_object(completed.stdout)
    if document is None:
        msg = f"{what}: {program} did not print a JSON object"
        raise CredentialsError(msg)
    version = document.get("Version")
    if type(version) is not int or version != 1:
        msg = f"{what}: {program} printed Version {str(version)[:20]!r}; expected 1"
        raise CredentialsError(msg)
    what = f"{what}: {program}"
    raw_expiration = document.get("Expiration")
    if raw_expiration is not None and not isinstance(raw_expiration, str):
        msg = f"{what}: Expiration must be an ISO 8601 string"
        raise CredentialsError(msg)
    return _make(
        r,
        what,
        access_key_id=document.get("AccessKeyId"),
        secret_access_key=document.get("SecretAccessKey"),
        session_token=document.get("SessionToken"),
        expiration=_parse_time(raw_expiration, f"{what}: Expiration")
        if raw_expiration
        else None,
        source=source,
    )


# ------------------------------------------------------------------ SSO


@dataclass(frozen=True, slots=True)
class _SsoSettings:
    start_url: str
    region: str
    account_id: str
    role_name: str
    cache_key: str
    """sha1 of it names the token file: the session name, else the start URL."""


def _sso_settings(
    files: _ProfileFiles, name: str, profile: Mapping[str, str], what: str
) -> _SsoSettings:
    session_name = profile.get("sso_session")
    if session_name:
        session = files.sso_sessions.get(session_name)
        if session is None:
            msg = (
                f"{what}: no [sso-session {session_name}] section "
                f"in {files.config_path}"
            )
            raise CredentialsError(msg)
        start_url = session.get("sso_start_url")
        region = session.get("sso_region")
        for key, value in (("sso_start_url", start_url), ("sso_region", region)):
            own = profile.get(key)
            if own is not None and own != value:
                msg = f"{what}: its {key} differs from sso-session {session_name!r}'s"
                raise CredentialsError(msg)
        cache_key = session_name
    else:
        start_url = profile.get("sso_start_url")
        region = profile.get("sso_region")
        cache_key = start_url or ""
    account = profile.get("sso_account_id")
    role = profile.get("sso_role_name")
    if not start_url or not region or not account or not role:
        settings = {
            "sso_start_url": start_url,
            "sso_region": region,
            "sso_account_id": account,
            "sso_role_name": role,
        }
        missing = ", ".join(key for key, value in settings.items() if not value)
        msg = f"{what}: incomplete SSO configuration, missing {missing}"
        raise CredentialsError(msg)
    return _SsoSettings(start_url, region, account, role, cache_key)


def _sso_token(r: _Resolution, settings: _SsoSettings, what: str, login: str) -> str:
    """The access token ``aws sso login`` cached, if it has not expired."""
    digest = hashlib.sha1(settings.cache_key.encode(), usedforsecurity=False)
    cache_path = r.home / ".aws" / "sso" / "cache" / f"{digest.hexdigest()}.json"
    try:
        cached = cache_path.read_bytes()
    except FileNotFoundError:
        msg = f"{what}: no cached SSO token ({cache_path}); {login}"
        raise CredentialsError(msg) from None
    except OSError as exc:
        msg = f"{what}: cannot read {cache_path}: {_error_text(exc)}"
        raise CredentialsError(msg) from None
    document = _json_object(cached) or {}
    token = document.get("accessToken")
    expires_at = document.get("expiresAt")
    if not isinstance(token, str) or not token or not isinstance(expires_at, str):
        msg = f"{what}: the cached SSO token {cache_path} is not valid; {login}"
        raise CredentialsError(msg)
    r.secret(token)
    expires = _parse_time(expires_at, f"{what}: expiresAt of {cache_path}")
    if expires <= r.now():
        msg = f"{what}: the SSO token expired at {_format_time(expires)}; {login}"
        raise CredentialsError(msg)
    return token


def _sso(
    r: _Resolution, files: _ProfileFiles, name: str, profile: Mapping[str, str]
) -> AwsCredentials:
    """SSO ``GetRoleCredentials`` with the token of ``aws sso login``."""
    what = f"profile {name!r} (SSO)"
    settings = _sso_settings(files, name, profile, what)
    login = f"run `aws sso login --profile {name}`"
    token = _sso_token(r, settings, what, login)
    query = urlencode(
        {"account_id": settings.account_id, "role_name": settings.role_name}
    )
    default = f"https://portal.sso.{settings.region}.{_dns_suffix(settings.region)}"
    url = f"{r.endpoint('SSO', default)}/federation/credentials?{query}"
    headers = {"x-amz-sso_bearer_token": token, "Accept": "application/json"}
    try:
        response = _with_retries(
            lambda: _request(r, "GET", url, headers=headers, timeout=_HTTP_TIMEOUT),
            attempts=2,
        )
    except _FetchError as exc:
        msg = f"{what}: GetRoleCredentials failed: {exc}"
        raise CredentialsError(msg) from None
    if response.status != 200:
        error_type, message = _json_error(r, response)
        hint = f"; {login}" if response.status == 401 else ""
        msg = (
            f"{what}: GetRoleCredentials failed: HTTP {response.status} "
            f"{error_type}{message}{hint}"
        )
        raise CredentialsError(msg)
    role_credentials = (_json_object(response.body) or {}).get("roleCredentials")
    if not isinstance(role_credentials, dict):
        msg = f"{what}: GetRoleCredentials answered without roleCredentials"
        raise CredentialsError(msg)
    creds = cast("dict[str, object]", role_credentials)
    expiration_ms = creds.get("expiration")
    if isinstance(expiration_ms, bool) or not isinstance(expiration_ms, int | float):
        msg = f"{what}: GetRoleCredentials answered without an expiration"
        raise CredentialsError(msg)
    return _make(
        r,
        what,
        access_key_id=creds.get("accessKeyId"),
        secret_access_key=creds.get("secretAccessKey"),
        session_token=creds.get("sessionToken"),
        expiration=datetime.fromtimestamp(expiration_ms / 1000, UTC),
        source=f"profile:{name}/sso",
    )


# ------------------------------------------------------------------ STS


def _dns_suffix(region: str) -> str:
    return "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"


def _call_sts(
    r: _Resolution,
    action: str,
    params: Mapping[str, str],
    *,
    signer: AwsCredentials | None,
    what: str,
    source: str,
) -> AwsCredentials:
    """An STS call; SigV4-signed with ``signer``, or unsigned (web identity)."""
    region = r.region()
    url = r.endpoint("STS", f"https://sts.{region}.{_dns_suffix(region)}")
    body = urlencode({"Action": action, "Version": _STS_VERSION, **params}).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}

    def attempt() -> _Response:
        sent = (
            headers
            if signer is None
            else _sigv4_headers(url, body, headers, signer, region)
        )
        return _request(r, "POST", url, headers=sent, body=body, timeout=_HTTP_TIMEOUT)

    def retryable(response: _Response) -> bool:
        return (
            response.status >= 500 or _sts_error(response.body)[0] in _STS_RETRY_CODES
        )

    try:
        response = _with_retries(attempt, attempts=3, retry=retryable)
    except _FetchError as exc:
        msg = f"{what}: STS {action} failed: {exc}"
        raise CredentialsError(msg) from None
    root = _parse_xml(response.body)
    if response.status != 200:
        code, message = _sts_error(response.body)
        request_id = _xml_text(root, "RequestId") if root is not None else None
        text = f"HTTP {response.status}"
        if code:
            text += f" {r.clean(code, 80)}"
        if message:
            text += f": {r.clean(message)}"
        if request_id:
            text += f" (request id {r.clean(request_id, 80)})"
        msg = f"{what}: STS {action} failed: {text}"
        raise CredentialsError(msg)
    credentials = (
        None if root is None else _xml_child(root, f"{action}Result", "Credentials")
    )
    if credentials is None:
        msg = f"{what}: STS {action} answered without credentials"
        raise CredentialsError(msg)
    expiration = _xml_text(credentials, "Expiration")
    return _make(
        r,
        f"{what}: STS {action}",
        access_key_id=_xml_text(credentials, "AccessKeyId"),
        secret_access_key=_xml_text(credentials, "SecretAccessKey"),
        session_token=_xml_text(credentials, "SessionToken"),
        expiration=_parse_time(expiration, f"{what}: STS Expiration")
        if expiration
        else None,
        source=source,
    )


def _sigv4_headers(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    signer: AwsCredentials,
    region: str,
) -> dict[str, str]:
    parts = urlsplit(url)
    fields = {"Host": _host_header(parts), **headers}
    request = AWSRequest(
        destination=URI(
            scheme=parts.scheme,
            host=parts.hostname or "",
            port=parts.port,
            path=parts.path or "/",
            query=parts.query or None,
        ),
        method="POST",
        body=[body],
        fields=Fields(
            [Field(name=name, values=[value]) for name, value in fields.items()]
        ),
    )
    signed = _SIGNER.sign(
        request=request,
        identity=AWSCredentialIdentity(
            access_key_id=signer.access_key_id,
            secret_access_key=signer.secret_access_key,
            session_token=signer.session_token,
        ),
        properties=SigV4SigningProperties(region=region, service="sts"),
    )
    return {f.name: f.as_string() for f in signed.fields}


def _parse_xml(body: bytes) -> ET.Element | None:
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:  # STS sends neither
        return None
    try:
        return ET.fromstring(body)  # noqa: S314 - no DTD (checked above); expat >= 2.4 is safe
    except ET.ParseError:
        return None


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _xml_child(element: ET.Element, *path: str) -> ET.Element | None:
    """The first descendant along ``path`` of local names (any namespace)."""
    current = element
    for name in path:
        found = next((c for c in current if _local(c.tag) == name), None)
        if found is None:
            return None
        current = found
    return current


def _xml_text(element: ET.Element, *path: str) -> str | None:
    found = _xml_child(element, *path)
    text = None if found is None else (found.text or "").strip()
    return text or None


def _sts_error(body: bytes) -> tuple[str, str]:
    root = _parse_xml(body)
    if root is None:
        return "", ""
    error = _xml_child(root, "Error")
    if error is None:
        return "", ""
    return _xml_text(error, "Code") or "", _xml_text(error, "Message") or ""


# ------------------------------------------------------------------ web identity


def _assume_role_with_web_identity(
    r: _Resolution,
    what: str,
    *,
    role_arn: str,
    token_file: Path,
    session_name: str | None,
    source: str,
) -> AwsCredentials:
    try:
        token = token_file.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        msg = (
            f"{what}: cannot read the web identity token file {token_file}: "
            f"{_error_text(exc)}"
        )
        raise CredentialsError(msg) from None
    if not token:
        msg = f"{what}: the web identity token file {token_file} is empty"
        raise CredentialsError(msg)
    r.secret(token)
    params = {
        "RoleArn": role_arn,
        "RoleSessionName": session_name or _default_session_name(),
        "WebIdentityToken": token,
    }
    return _call_sts(
        r, "AssumeRoleWithWebIdentity", params, signer=None, what=what, source=source
    )


def _from_web_identity_env(r: _Resolution) -> AwsCredentials:
    _explicit_profile(r)
    token_file = r.env.get("AWS_WEB_IDENTITY_TOKEN_FILE")
    role_arn = r.env.get("AWS_ROLE_ARN")
    if not token_file and not role_arn:
        raise _Skip("AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN are not set")
    if not token_file:
        raise _Skip("AWS_ROLE_ARN is set but AWS_WEB_IDENTITY_TOKEN_FILE is not")
    if not role_arn:
        msg = "web identity: AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not"
        raise CredentialsError(msg)
    return _assume_role_with_web_identity(
        r,
        f"web identity (role {role_arn})",
        role_arn=role_arn,
        token_file=_expand(token_file, r.home),
        session_name=r.env.get("AWS_ROLE_SESSION_NAME"),
        source="web-identity",
    )


# ------------------------------------------------------------------ 4. container


def _from_container(r: _Resolution) -> AwsCredentials:
    relative = r.env.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
    full = r.env.get("AWS_CONTAINER_CREDENTIALS_FULL_URI")
    if relative:
        url = _ECS_ENDPOINT + ("" if relative.startswith("/") else "/") + relative
    elif full:
        url = full
        _check_container_url(url)
    else:
        raise _Skip(
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and "
            "AWS_CONTAINER_CREDENTIALS_FULL_URI are not set"
        )
    what = f"container credentials ({_display(url)})"
    headers = {"Accept": "application/json"}
    token = _container_token(r, what)
    if token is not None:
        headers["Authorization"] = token
    try:
        response = _with_retries(
            lambda: _request(
                r, "GET", url, headers=headers, timeout=_CONTAINER_TIMEOUT
            ),
            attempts=2,
        )
    except _FetchError as exc:
        msg = f"{what}: {exc}"
        raise CredentialsError(msg) from None
    if response.status != 200:
        error_type, message = _json_error(r, response)
        msg = f"{what}: HTTP {response.status} {error_type}{message}"
        raise CredentialsError(msg.rstrip())
    return _credentials_document(r, response.body, what, "container")


def _check_container_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    host = parts.hostname or ""
    allowed = host in _CONTAINER_HOSTS
    if not allowed:
        try:
            allowed = ipaddress.ip_address(host).is_loopback
        except ValueError:
            allowed = False
    if parts.scheme != "http" or not allowed:
        msg = (
            f"container credentials: AWS_CONTAINER_CREDENTIALS_FULL_URI "
            f"{_display(url)} is not allowed: an http:// URI must name a loopback "
            "address, 169.254.170.2, 169.254.170.23 or fd00:ec2::23 (or use https://)"
        )
        raise CredentialsError(msg)


def _container_token(r: _Resolution, what: str) -> str | None:
    token_file = r.env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
    if token_file:
        path = _expand(token_file, r.home)
        try:
            token = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            msg = (
                f"{what}: cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE "
                f"{path}: {_error_text(exc)}"
            )
            raise CredentialsError(msg) from None
        origin = "the file AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE names"
    else:
        token = (r.env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN") or "").strip()
        origin = "AWS_CONTAINER_AUTHORIZATION_TOKEN"
    if not token:
        return None
    r.secret(token)
    if any(c in token for c in "\r\n\0"):
        msg = f"{what}: the token in {origin} is not a valid header value"
        raise CredentialsError(msg)
    return token


def _credentials_document(
    r: _Resolution, body: bytes, what: str, source: str
) -> AwsCredentials:
    """Container and IMDS answers: AccessKeyId, SecretAccessKey, Token, Expiration."""
    document = _json_object(body)
    if document is None:
        msg = f"{what}: the answer is not a JSON object"
        raise CredentialsError(msg)
    expiration = document.get("Expiration")
    return _make(
        r,
        what,
        access_key_id=document.get("AccessKeyId"),
        secret_access_key=document.get("SecretAccessKey"),
        session_token=document.get("Token"),
        expiration=_parse_time(expiration, f"{what}: Expiration")
        if isinstance(expiration, str) and expiration
        else None,
        source=source,
    )


# ------------------------------------------------------------------ 5. IMDS


def _imds_endpoint(r: _Resolution) -> str:
    endpoint = r.env.get("AWS_EC2_METADATA_SERVICE_ENDPOINT") or r.setting(
        "ec2_metadata_service_endpoint"
    )
    if endpoint:
        return endpoint.rstrip("/")
    mode = (
        r.env.get("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE")
        or r.setting("ec2_metadata_service_endpoint_mode")
        or "IPv4"
    )
    if mode.lower() == "ipv4":
        return _IMDS_IPV4
    if mode.lower() == "ipv6":
        return _IMDS_IPV6
    msg = (
        f"EC2 instance metadata: endpoint mode must be IPv4 or IPv6, got {mode[:20]!r}"
    )
    raise CredentialsError(msg)


def _imds_number(r: _Resolution, name: str, default: float) -> float:
    raw = r.env.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not 0 < value < 3600:
        msg = (
            f"EC2 instance metadata: {name} must be a positive number, got {raw[:20]!r}"
        )
        raise CredentialsError(msg)
    return value


def _from_imds(r: _Resolution) -> AwsCredentials:
    if _truthy(r.env.get("AWS_EC2_METADATA_DISABLED")):
        raise _Skip("disabled by AWS_EC2_METADATA_DISABLED")
    endpoint = _imds_endpoint(r)
    timeout = _imds_number(r, "AWS_METADATA_SERVICE_TIMEOUT", _IMDS_TIMEOUT)
    attempts = max(1, int(_imds_number(r, "AWS_METADATA_SERVICE_NUM_ATTEMPTS", 1)))

    def call(method: str, path: str, headers: Mapping[str, str]) -> _Response:
        return _with_retries(
            lambda: _request(
                r, method, endpoint + path, headers=headers, timeout=timeout
            ),
            attempts=attempts,
        )

    try:
        token_response = call(
            "PUT",
            "/latest/api/token",
            {"x-aws-ec2-metadata-token-ttl-seconds": _IMDS_TTL_SECONDS},
        )
    except _FetchError as exc:
        raise _Skip(f"not reachable ({exc})") from None
    headers: dict[str, str] = {}
    if token_response.status == 200:
        headers["x-aws-ec2-metadata-token"] = r.secret(
            token_response.body.decode("ascii", "replace").strip()
        )
    elif token_response.status in {403, 404, 405} and not _truthy(
        r.env.get("AWS_EC2_METADATA_V1_DISABLED")
    ):
        _LOG.debug(
            "IMDSv2 token refused (HTTP %d); trying IMDSv1", token_response.status
        )
    else:
        raise _Skip(
            f"{endpoint} answered HTTP {token_response.status} "
            "to the IMDSv2 token request"
        )
    base = "/latest/meta-data/iam/security-credentials/"
    try:
        listing = call("GET", base, headers)
        if listing.status == 404:
            raise _Skip(f"{endpoint}: no IAM role is attached to this instance")
        if listing.status != 200:
            raise _Skip(f"{endpoint} answered HTTP {listing.status} to the role lookup")
        roles = listing.body.decode("utf-8", "replace").split()
        if not roles:
            raise _Skip(f"{endpoint}: no IAM role is attached to this instance")
        answer = call("GET", base + quote(roles[0], safe=""), headers)
    except _FetchError as exc:
        raise _Skip(f"{endpoint}: {exc}") from None
    what = f"EC2 instance metadata ({endpoint}, role {roles[0]})"
    if answer.status != 200:
        msg = f"{what}: HTTP {answer.status}"
        raise CredentialsError(msg)
    document = _json_object(answer.body)
    code = None if document is None else document.get("Code")
    if code is not None and code != "Success":
        msg = f"{what}: the answer's Code is {r.clean(str(code), 60)!r}"
        raise CredentialsError(msg)
    return _credentials_document(r, answer.body, what, "imds")


# ------------------------------------------------------------------ HTTP


@dataclass(frozen=True, slots=True)
class _Response:
    status: int
    headers: Mapping[str, str]
    """Lower-case names."""
    body: bytes = field(repr=False)


class _FetchError(Exception):
    """No HTTP response; the message names the host and the reason, no secret."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


def _display(url: str) -> str:
    """``scheme://host:port`` of a URL: its path and query may be capabilities."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "")


def _host_header(parts: SplitResult) -> str:
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    default = 443 if parts.scheme == "https" else 80
    return host if parts.port in {None, default} else f"{host}:{parts.port}"


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted ({exc.verify_message})"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error ({exc.reason or type(exc).__name__})"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return type(exc).__name__


def _request(
    r: _Resolution,
    method: str,
    url: str,
    *,
    headers: Mapping[str, str],
    body: bytes | None = None,
    timeout: float,
) -> _Response:
    """One HTTP/1.1 exchange (blocking); ``timeout`` bounds connect and each read."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in {"http", "https"} or not parts.hostname or port == -1:
        msg = f"not a valid http(s) URL: {_display(url)}"
        raise CredentialsError(msg)
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(
            parts.hostname, port or 443, timeout=timeout, context=r.ssl_context()
        )
    else:
        connection = http.client.HTTPConnection(
            parts.hostname, port or 80, timeout=timeout
        )
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    sent = dict(headers)
    if not any(name.lower() == "host" for name in sent):
        sent["Host"] = _host_header(parts)
    try:
        connection.request(method, target, body=body, headers=sent)
        response = connection.getresponse()
        data = response.read(_MAX_BODY + 1)
        if len(data) > _MAX_BODY:
            msg = f"{_display(url)}: answer larger than {_MAX_BODY} bytes"
            raise _FetchError(msg)
        return _Response(
            status=response.status,
            headers={name.lower(): value for name, value in response.getheaders()},
            body=data,
        )
    except (OSError, http.client.HTTPException) as exc:
        msg = f"{_display(url)}: {_error_text(exc)}"
        # The same certificate will not become trusted on a second try.
        retryable = not isinstance(exc, ssl.SSLCertVerificationError)
        raise _FetchError(msg, retryable=retryable) from None
    finally:
        connection.close()


def _with_retries(
    call: Callable[[], _Response],
    *,
    attempts: int,
    retry: Callable[[_Response], bool] = lambda response: response.status >= 500,
) -> _Response:
    """``call`` until it answers (not ``retry``-able) or ``attempts`` are spent."""
    for attempt in range(attempts):
        last = attempt == attempts - 1
        try:
            response = call()
        except _FetchError as exc:
            if last or not exc.retryable:
                raise
        else:
            if last or not retry(response):
                return response
        time.sleep(_RETRY_DELAY * 2**attempt)
    msg = "attempts must be at least 1"
    raise ValueError(msg)


def _json_object(body: bytes) -> dict[str, object] | None:
    try:
        value: object = json.loads(body)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError alike
        return None
    return cast("dict[str, object]", value) if isinstance(value, dict) else None


def _json_error(r: _Resolution, response: _Response) -> tuple[str, str]:
    """``(error type, ": message")`` of a JSON error answer, cleaned."""
    error_type = response.headers.get("x-amzn-errortype", "").partition(":")[0]
    document = _json_object(response.body) or {}
    if not error_type:
        for key in ("__type", "code", "Code"):
            value = document.get(key)
            if isinstance(value, str) and value:
                error_type = value.rpartition("#")[2]
                break
    message = ""
    for key in ("message", "Message"):
        value = document.get(key)
        if isinstance(value, str) and value:
            message = f": {r.clean(value)}"
            break
    return r.clean(error_type, 80), message
