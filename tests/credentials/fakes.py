"""Local fakes of the endpoints the credential chain talks to, and test helpers.

Every fake is a real HTTP/1.1 server on 127.0.0.1 (``ThreadingHTTPServer`` in
a thread, optionally TLS) that records each request and answers through a
handler: IMDS, ECS/EKS container endpoints, STS (verifying SigV4 with the
project's independent verifier), SSO portal.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from amazon_polly_streaming.testing.sigv4 import (
    Credentials,
    RequestVerification,
    verify_request,
)

STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"
T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ------------------------------------------------------------------ secrets


class Secrets:
    """Mints distinctive secret strings and checks that text holds none of them."""

    def __init__(self) -> None:
        self.all: list[str] = []

    def new(self, label: str) -> str:
        value = f"{label}-SECRET-{uuid.uuid4().hex}"
        self.all.append(value)
        return value

    def add(self, value: str) -> str:
        self.all.append(value)
        return value

    def leaked(self, text: str) -> list[str]:
        return [s for s in self.all if s in text]

    def assert_absent(self, text: str) -> None:
        leaked = self.leaked(text)
        assert not leaked, f"secret(s) leaked: {leaked!r} in {text!r}"


class FakeClock:
    """An aware clock the test moves by hand."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


# ------------------------------------------------------------------ HTTP server


@dataclass
class Recorded:
    """A request as the fake received it."""

    method: str
    path: str
    query: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def form(self) -> dict[str, str]:
        return {
            k: v[0]
            for k, v in parse_qs(self.body.decode(), keep_blank_values=True).items()
        }

    def query_params(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.query).items()}


@dataclass
class Reply:
    status: int = 200
    body: bytes | str | dict[str, Any] = b""
    headers: dict[str, str] = field(default_factory=dict[str, str])
    delay: float = 0.0
    """Seconds to wait before answering (a gate for concurrency tests)."""

    def encoded(self) -> bytes:
        if isinstance(self.body, dict):
            return json.dumps(self.body).encode()
        if isinstance(self.body, str):
            return self.body.encode()
        return self.body


Handler = Callable[[Recorded], Reply]


class FakeServer:
    """An HTTP/1.1 server on 127.0.0.1 answering with ``handler``; records requests."""

    def __init__(
        self, handler: Handler, *, tls: ssl.SSLContext | None = None, ipv6: bool = False
    ) -> None:
        self.handler = handler
        self.requests: list[Recorded] = []
        self.gate = threading.Event()
        self.gate.set()
        fake = self

        class _RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                request = Recorded(
                    method=self.command,
                    path=parts.path,
                    query=parts.query,
                    headers=list(self.headers.items()),
                    body=body,
                )
                fake.requests.append(request)
                fake.gate.wait(10)
                try:
                    reply = fake.handler(request)
                except Exception as exc:  # the test sees it as a 599
                    reply = Reply(599, f"fake handler failed: {exc!r}")
                if reply.delay:
                    threading.Event().wait(reply.delay)
                data = reply.encoded()
                self.send_response(reply.status)
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_POST = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class _Server(ThreadingHTTPServer):
            address_family = socket.AF_INET6 if ipv6 else socket.AF_INET
            daemon_threads = True

        host = "::1" if ipv6 else "127.0.0.1"
        self._server = _Server((host, 0), _RequestHandler)
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        self.host = "[::1]" if ipv6 else "127.0.0.1"
        self.url = f"{'https' if tls else 'http'}://{self.host}:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.02,), daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self.gate.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


# ------------------------------------------------------------------ fakes


@dataclass
class Issued:
    """Credentials a fake handed out."""

    access_key_id: str
    secret_access_key: str
    session_token: str
    expiration: datetime


class Issuer:
    """Mints a new set of credentials per call, expiring ``lifetime`` after ``now``."""

    def __init__(
        self,
        secrets: Secrets,
        prefix: str,
        *,
        now: Callable[[], datetime] = lambda: T0,
        lifetime: timedelta = timedelta(hours=1),
    ) -> None:
        self.secrets = secrets
        self.prefix = prefix
        self.now = now
        self.lifetime = lifetime
        self.issued: list[Issued] = []

    def __call__(self) -> Issued:
        n = len(self.issued) + 1
        issued = Issued(
            access_key_id=f"ASIA{self.prefix.upper()}{n:04d}",
            secret_access_key=self.secrets.new(f"{self.prefix}-secret{n}"),
            session_token=self.secrets.new(f"{self.prefix}-token{n}"),
            expiration=self.now() + self.lifetime,
        )
        self.issued.append(issued)
        return issued


def metadata_json(issued: Issued, **extra: Any) -> dict[str, Any]:
    return {
        "Code": "Success",
        "Type": "AWS-HMAC",
        "AccessKeyId": issued.access_key_id,
        "SecretAccessKey": issued.secret_access_key,
        "Token": issued.session_token,
        "Expiration": iso(issued.expiration),
        **extra,
    }


class FakeImds:
    """IMDSv2: PUT a token, then GETs carrying it."""

    def __init__(self, secrets: Secrets, *, role: str = "polly-role") -> None:
        self.token = secrets.new("imds-token")
        self.role = role
        self.issue = Issuer(secrets, "imds")
        self.accept_v1 = False
        self.token_status = 200
        self.credentials_status = 200

    def __call__(self, request: Recorded) -> Reply:
        if request.path == "/latest/api/token":
            if request.method != "PUT":
                return Reply(405)
            if request.header("x-aws-ec2-metadata-token-ttl-seconds") != "21600":
                return Reply(400, "bad ttl")
            if self.token_status != 200:
                return Reply(self.token_status)
            return Reply(200, self.token)
        if request.method != "GET":
            return Reply(405)
        if (
            request.header("x-aws-ec2-metadata-token") != self.token
            and not self.accept_v1
        ):
            return Reply(401)
        base = "/latest/meta-data/iam/security-credentials/"
        if request.path == base:
            return Reply(200, self.role) if self.role else Reply(404)
        if request.path == base + self.role:
            if self.credentials_status != 200:
                return Reply(self.credentials_status, "unavailable")
            return Reply(200, metadata_json(self.issue(), LastUpdated=iso(T0)))
        return Reply(404)


class FakeContainer:
    """ECS / EKS Pod Identity: GET with an optional Authorization header."""

    def __init__(
        self,
        secrets: Secrets,
        *,
        path: str = "/v2/credentials/abc",
        token: str | None = None,
        now: Callable[[], datetime] = lambda: T0,
    ) -> None:
        self.path = path
        self.token = token
        self.issue = Issuer(secrets, "ecs", now=now)
        self.fail_with: int | None = None

    def __call__(self, request: Recorded) -> Reply:
        if self.fail_with is not None:
            return Reply(
                self.fail_with, {"code": "Boom", "message": "failed on purpose"}
            )
        if request.method != "GET" or request.path != self.path:
            return Reply(404)
        if self.token is not None and request.header("authorization") != self.token:
            return Reply(401, {"code": "Unauthorized", "message": "wrong token"})
        return Reply(200, metadata_json(self.issue()))


def sts_xml(action: str, issued: Issued) -> str:
    return (
        f'<{action}Response xmlns="{STS_NS}">'
        f"<{action}Result>"
        "<Credentials>"
        f"<AccessKeyId>{issued.access_key_id}</AccessKeyId>"
        f"<SecretAccessKey>{issued.secret_access_key}</SecretAccessKey>"
        f"<SessionToken>{issued.session_token}</SessionToken>"
        f"<Expiration>{issued.expiration.strftime('%Y-%m-%dT%H:%M:%S.000Z')}</Expiration>"
        "</Credentials>"
        "<AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/r/s</Arn>"
        "<AssumedRoleId>AROAEXAMPLE:s</AssumedRoleId></AssumedRoleUser>"
        f"</{action}Result>"
        "<ResponseMetadata><RequestId>req-ok</RequestId></ResponseMetadata>"
        f"</{action}Response>"
    )


def sts_error_xml(code: str, message: str, request_id: str = "req-err") -> str:
    return (
        f'<ErrorResponse xmlns="{STS_NS}"><Error><Type>Sender</Type>'
        f"<Code>{code}</Code><Message>{message}</Message></Error>"
        f"<RequestId>{request_id}</RequestId></ErrorResponse>"
    )


class FakeSts:
    """STS: AssumeRole must be SigV4-signed by a known key (checked server-side
    by the project's own verifier); AssumeRoleWithWebIdentity must be unsigned.
    Credentials it issues become known keys (for chained roles)."""

    def __init__(
        self,
        secrets: Secrets,
        *,
        region: str = "us-east-1",
        known: Iterable[Credentials] = (),
        trusted: Iterable[Issuer] = (),
        now: Callable[[], datetime] = lambda: T0,
    ) -> None:
        self.region = region
        self.known: list[Credentials] = list(known)
        self.trusted = list(trusted)
        """Other fakes whose issued credentials may sign AssumeRole too."""
        self.issue = Issuer(secrets, "sts", now=now)
        self.calls: list[dict[str, str]] = []
        self.verifications: list[RequestVerification] = []
        self.errors: list[tuple[int, str, str]] = []
        """Queued error answers (status, code, message), used first."""

    def __call__(self, request: Recorded) -> Reply:
        form = request.form()
        self.calls.append(form)
        if request.method != "POST" or form.get("Version") != "2011-06-15":
            return Reply(400, sts_error_xml("InvalidAction", "bad request"))
        if self.errors:
            status, code, message = self.errors.pop(0)
            return Reply(status, sts_error_xml(code, message))
        action = form.get("Action", "")
        if action == "AssumeRole":
            result = verify_request(
                method=request.method,
                path=request.path,
                query=request.query,
                headers=request.headers,
                credentials=[
                    *self.known,
                    *(
                        Credentials(
                            i.access_key_id, i.secret_access_key, i.session_token
                        )
                        for issuer in self.trusted
                        for i in issuer.issued
                    ),
                ],
                region=self.region,
                service="sts",
                now=datetime.now(UTC),
                payload=request.body,
            )
            self.verifications.append(result)
            if not result.ok:
                return Reply(
                    403, sts_error_xml(result.error_type or "?", result.message)
                )
        elif action == "AssumeRoleWithWebIdentity":
            if request.header("authorization") is not None:
                return Reply(400, sts_error_xml("InvalidRequest", "must be unsigned"))
        else:
            return Reply(400, sts_error_xml("InvalidAction", action))
        issued = self.issue()
        self.known.append(
            Credentials(
                issued.access_key_id, issued.secret_access_key, issued.session_token
            )
        )
        return Reply(200, sts_xml(action, issued), {"Content-Type": "text/xml"})


class FakeSso:
    """SSO portal GetRoleCredentials: bearer token header, account and role query."""

    def __init__(
        self,
        secrets: Secrets,
        *,
        token: str,
        now: Callable[[], datetime] = lambda: T0,
    ) -> None:
        self.token = token
        self.issue = Issuer(secrets, "sso", now=now)

    def __call__(self, request: Recorded) -> Reply:
        if request.method != "GET" or request.path != "/federation/credentials":
            return Reply(404)
        if request.header("x-amz-sso_bearer_token") != self.token:
            return Reply(
                401,
                {"message": "Session token not found or invalid"},
                {"x-amzn-ErrorType": "UnauthorizedException:http://internal"},
            )
        issued = self.issue()
        return Reply(
            200,
            {
                "roleCredentials": {
                    "accessKeyId": issued.access_key_id,
                    "secretAccessKey": issued.secret_access_key,
                    "sessionToken": issued.session_token,
                    "expiration": int(issued.expiration.timestamp() * 1000),
                }
            },
        )
