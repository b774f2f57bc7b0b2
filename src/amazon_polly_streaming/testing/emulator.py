"""``PollyEmulator``: a local Amazon Polly streaming endpoint for tests and demos."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import threading
from collections.abc import Coroutine, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from .certs import TestCertificates, create_test_ca, server_ssl_context
from .faults import FaultPlan
from .log import ConnectionRecord, RequestLog, RequestRecord
from .server import EmulatorServer, ServerConfig
from .service import expected_audio
from .sigv4 import Credentials
from .voices import GENERATIVE_VOICES


@dataclass(frozen=True, slots=True)
class TestCredentials:
    """Credentials the emulator accepts (they are worthless anywhere else)."""

    __test__ = False  # not a pytest test class, despite the name

    access_key_id: str = "AKIAPOLLYEMULATOR001"
    secret_access_key: str = field(default="emulator-secret-not-an-aws-key", repr=False)
    session_token: str | None = field(default=None, repr=False)

    def as_signing_credentials(self) -> Credentials:
        """The same key pair, as the signature verifier takes it."""
        return Credentials(
            access_key_id=self.access_key_id,
            secret_access_key=self.secret_access_key,
            session_token=self.session_token,
        )


class PollyEmulator:
    """A Polly-compatible ``StartSpeechSynthesisStream`` server on loopback.

    HTTP/2 over TLS (ALPN h2) with a test CA it creates (``ca_path``), strict
    SigV4 and chained event-signature checks against ``credentials``, Polly's
    validation and synthesis semantics (``service.py``), real audio in every
    output format, fault injection (``faults``) and a request log
    (``requests``, ``connections``) to assert on::

        async with PollyEmulator() as emu:
            ...  # point a client at emu.endpoint_url, trusting emu.ca_path

    Knobs: ``idle_timeout`` (Polly: 5 s between input events) and
    ``max_stream_duration`` (Polly: 10 min) end a stream with
    ``ServiceQuotaExceededException``; ``ms_per_character`` fixes the audio
    duration per character; ``audio_event_bytes`` the largest audio event;
    ``synthesis_delay`` a pause before each sentence's audio;
    ``max_concurrent_streams`` the HTTP/2 setting it advertises;
    ``connection_idle_timeout`` (default: never) closes a connection that
    carried no stream for that long (GOAWAY, then close), as servers do.

    It runs on the event loop that starts it (``async with``), or on its own
    loop in a thread it owns (``with emu.running_in_thread():``), which suits
    synchronous tests and other event loops alike.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        region: str = "us-east-1",
        credentials: TestCredentials | Sequence[TestCredentials] = TestCredentials(),
        voices: Mapping[str, str] = GENERATIVE_VOICES,
        idle_timeout: float = 5.0,
        max_stream_duration: float = 600.0,
        ms_per_character: float = 40.0,
        audio_event_bytes: int = 4096,
        synthesis_delay: float = 0.0,
        max_concurrent_streams: int = 100,
        clock_skew: float = 300.0,
        connection_idle_timeout: float | None = None,
        cert_dir: Path | None = None,
    ) -> None:
        creds = (
            [credentials]
            if isinstance(credentials, TestCredentials)
            else list(credentials)
        )
        if not creds:
            msg = "credentials: give at least one TestCredentials"
            raise ValueError(msg)
        for name, value in (
            ("idle_timeout", idle_timeout),
            ("max_stream_duration", max_stream_duration),
            ("ms_per_character", ms_per_character),
        ):
            if value <= 0:
                msg = f"{name} must be positive, got {value}"
                raise ValueError(msg)
        if connection_idle_timeout is not None and connection_idle_timeout <= 0:
            msg = (
                "connection_idle_timeout must be positive, "
                f"got {connection_idle_timeout}"
            )
            raise ValueError(msg)
        if audio_event_bytes < 1 or max_concurrent_streams < 1:
            msg = "audio_event_bytes and max_concurrent_streams must be at least 1"
            raise ValueError(msg)
        self.host = host
        self._requested_port = port
        self.region = region
        self.credentials = creds[0]
        self.all_credentials = tuple(creds)
        self.config = ServerConfig(
            region=region,
            credentials={c.access_key_id: c.as_signing_credentials() for c in creds},
            voices=voices,
            idle_timeout=idle_timeout,
            max_stream_duration=max_stream_duration,
            ms_per_character=ms_per_character,
            audio_event_bytes=audio_event_bytes,
            synthesis_delay=synthesis_delay,
            max_concurrent_streams=max_concurrent_streams,
            clock_skew=clock_skew,
            connection_idle_timeout=connection_idle_timeout,
        )
        self.log = RequestLog()
        self.faults = FaultPlan()
        self._cert_dir = cert_dir
        self._owns_cert_dir = cert_dir is None
        self._certs: TestCertificates | None = None
        self._server: EmulatorServer | None = None
        self._port: int | None = None
        self._thread: _LoopThread | None = None

    # Lifecycle -----------------------------------------------------------

    async def start(self) -> Self:
        """Create the test CA (once) and start listening."""
        if self._server is not None:
            msg = "the emulator is already running"
            raise RuntimeError(msg)
        certs = self._ensure_certs()
        server = EmulatorServer(
            self.config, server_ssl_context(certs), self.log, self.faults
        )
        self._port = await server.start(
            self.host, self._requested_port or self._port or 0
        )
        self._server = server
        return self

    async def stop(self) -> None:
        """Stop listening and close every connection (the CA files stay until
        ``close()``, so a restarted emulator keeps its CA)."""
        server, self._server = self._server, None
        if server is not None:
            await server.close()

    def close(self) -> None:
        """Delete the CA directory the emulator created (after ``stop``)."""
        if self._owns_cert_dir and self._cert_dir is not None:
            shutil.rmtree(self._cert_dir, ignore_errors=True)
            self._cert_dir = None
            self._certs = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
        self.close()

    @contextlib.contextmanager
    def running_in_thread(self) -> Generator[Self]:
        """Run the emulator on its own event loop in a thread, for the block."""
        thread = _LoopThread()
        thread.start()
        try:
            thread.run(self.start())
            self._thread = thread
            yield self
        finally:
            with contextlib.suppress(Exception):
                thread.run(self.stop())
            thread.stop()
            self._thread = None
            self.close()

    def _ensure_certs(self) -> TestCertificates:
        if self._certs is None:
            if self._cert_dir is None:
                self._cert_dir = Path(tempfile.mkdtemp(prefix="polly-emulator-"))
            self._certs = create_test_ca(self._cert_dir)
        return self._certs

    # What clients need ---------------------------------------------------

    @property
    def port(self) -> int:
        """The TCP port (known once started)."""
        if self._port is None:
            msg = "the emulator has not been started"
            raise RuntimeError(msg)
        return self._port

    @property
    def endpoint_url(self) -> str:
        """``https://127.0.0.1:<port>``: pass it as the client's ``endpoint_url``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}"

    @property
    def ca_path(self) -> Path:
        """PEM file of the emulator's test CA: the client's ``ca_bundle``."""
        return self._ensure_certs().ca_path

    def env(self) -> dict[str, str]:
        """Environment variables that point AWS clients at the emulator."""
        env = {
            "AWS_ENDPOINT_URL_POLLY": self.endpoint_url,
            "AWS_CA_BUNDLE": str(self.ca_path),
            "AWS_ACCESS_KEY_ID": self.credentials.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.credentials.secret_access_key,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
        }
        if self.credentials.session_token:
            env["AWS_SESSION_TOKEN"] = self.credentials.session_token
        return env

    # What tests look at ----------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request received, in order."""
        return self.log.requests

    @property
    def connections(self) -> list[ConnectionRecord]:
        """Every TLS connection accepted (one per handshake), in order."""
        return self.log.connections

    def expected_audio(
        self,
        text: str | list[str],
        *,
        voice_id: str,
        output_format: str = "mp3",
        sample_rate: int | None = None,
        force_each: bool = False,
    ) -> bytes:
        """The exact audio bytes this emulator streams for these text events."""
        return expected_audio(
            text,
            voice_id=voice_id,
            output_format=output_format,
            sample_rate=sample_rate,
            ms_per_character=self.config.ms_per_character,
            force_each=force_each,
        )


class _LoopThread:
    """An event loop in a thread of its own; ``run`` submits and waits."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="polly-emulator", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def run[T](self, coroutine: Coroutine[Any, Any, T]) -> T:
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return future.result(timeout=60)

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
