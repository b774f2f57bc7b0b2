"""A bare HTTP/2 client for testing the emulator itself.

It signs like AWS's clients (the request with ``aws-sdk-signers``' SigV4
signer, every event with its chained event signer) and frames events with the
project's codec, but lets a test bend every rule the real client would never
break: skip or spoil signatures, send raw bytes, pause, send GOAWAY while
sending, never close. Responses are recorded frame by frame so that tests can
assert on exactly what a client sees.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from aws_sdk_signers import (
    URI,
    AsyncEventSigner,
    AsyncSigV4Signer,
    AWSCredentialIdentity,
    AWSRequest,
    Field,
    Fields,
    SigV4SigningProperties,
)
from aws_sdk_signers.interfaces.events import HEADERS_DICT
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    RemoteSettingsChanged,
    ResponseReceived,
    StreamEnded,
    StreamReset,
)
from hyperframe.frame import GoAwayFrame

from amazon_polly_streaming.eventstream import (
    Message,
    MessageDecoder,
    encode_message,
)
from amazon_polly_streaming.signing import HeaderEncoder, codec_headers
from amazon_polly_streaming.testing import PollyEmulator, TestCredentials
from amazon_polly_streaming_generated import serde
from amazon_polly_streaming_generated.shapes import (
    CloseStreamEvent,
    StartSpeechSynthesisStreamInput,
    TextEvent,
)

PATH = "/v1/synthesisStream"


class _Event:
    """aws-sdk-signers' EventMessage: an inner event, then its envelope."""

    def __init__(self, headers: HEADERS_DICT, payload: bytes) -> None:
        self.headers: HEADERS_DICT = headers
        self.payload = payload

    def encode(self) -> bytes:
        return encode_message(codec_headers(self.headers), self.payload)


@dataclass
class RawStream:
    """One request: what was sent and, frame by frame, what came back."""

    connection: RawConnection
    stream_id: int
    signer: AsyncEventSigner | None
    status: int | None = None
    response_headers: list[tuple[str, str]] = field(
        default_factory=list[tuple[str, str]]
    )
    body: bytearray = field(default_factory=bytearray)
    messages: list[Message] = field(default_factory=list[Message])
    ended: bool = False
    reset_code: int | None = None
    connection_lost: bool = False
    goaway: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    decoder: MessageDecoder = field(default_factory=MessageDecoder)

    # Sending ---------------------------------------------------------------

    async def send(
        self, event: TextEvent | CloseStreamEvent, *, spoil: bool = False
    ) -> None:
        """Send one event in its signed envelope (``spoil``: a wrong signature)."""
        headers, payload = serde.serialize_start_speech_synthesis_stream_action_stream(
            event
        )
        await self.send_signed(_Event(dict(headers), payload), spoil=spoil)

    async def send_signed(self, event: _Event, *, spoil: bool = False) -> None:
        assert self.signer is not None, "request was not signed"
        c = self.connection
        signed = await self.signer.sign(
            event=event, identity=c.identity, properties=c.properties
        )
        headers = codec_headers(signed.headers)
        if spoil:
            signature = headers[":chunk-signature"]
            assert isinstance(signature, bytes)
            headers[":chunk-signature"] = bytes(b ^ 0xFF for b in signature)
        await self.send_raw(encode_message(headers, signed.payload))

    async def send_final_envelope(self) -> None:
        """The signed empty envelope that ends the input."""
        assert self.signer is not None
        c = self.connection
        signed = await self.signer.sign_empty(
            event=_Event({}, b""), identity=c.identity, properties=c.properties
        )
        await self.send_raw(
            encode_message(codec_headers(signed.headers), signed.payload)
        )

    async def send_raw(self, data: bytes, *, end: bool = False) -> None:
        c = self.connection
        c.h2.send_data(self.stream_id, data, end_stream=end)
        await c.flush()

    async def end_input(self) -> None:
        """END_STREAM on the request side."""
        c = self.connection
        c.h2.end_stream(self.stream_id)
        await c.flush()

    async def finish(self, *, final_envelope: bool = True) -> None:
        """CloseStreamEvent, the empty envelope, END_STREAM: as AWS's clients end."""
        await self.send(CloseStreamEvent())
        if final_envelope:
            await self.send_final_envelope()
        await self.end_input()

    # Receiving -------------------------------------------------------------

    async def wait(self, limit: float = 15.0) -> Self:
        """Wait until the response ended (END_STREAM, reset, or connection lost)."""
        await asyncio.wait_for(self.done.wait(), limit)
        return self

    async def wait_for_messages(self, count: int, limit: float = 10.0) -> None:
        """Wait until at least ``count`` event-stream messages arrived (or the end)."""
        async with asyncio.timeout(limit):
            while len(self.messages) < count and not self.done.is_set():
                self.changed.clear()
                await self.changed.wait()

    def _notify(self) -> None:
        self.changed.set()

    @property
    def audio(self) -> bytes:
        """The audio received so far, concatenated."""
        return b"".join(
            m.payload
            for m in self.messages
            if m.headers.get(":event-type") == "AudioEvent"
        )

    @property
    def audio_events(self) -> int:
        return sum(
            1 for m in self.messages if m.headers.get(":event-type") == "AudioEvent"
        )

    @property
    def kinds(self) -> list[str]:
        """Each message's ``:event-type`` or ``:exception-type``, in order."""
        return [
            str(m.headers.get(":event-type") or m.headers.get(":exception-type"))
            for m in self.messages
        ]

    @property
    def stream_closed(self) -> dict[str, Any] | None:
        """The ``StreamClosedEvent`` payload, if one arrived."""
        for m in self.messages:
            if m.headers.get(":event-type") == "StreamClosedEvent":
                return dict(json.loads(m.payload))
        return None

    @property
    def exception(self) -> tuple[str, dict[str, Any]] | None:
        """The exception event (type, JSON body), if one arrived."""
        for m in self.messages:
            if m.headers.get(":message-type") == "exception":
                return str(m.headers[":exception-type"]), dict(json.loads(m.payload))
        return None

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.response_headers if k == name), None)

    @property
    def json_body(self) -> dict[str, Any]:
        """An error response's JSON body."""
        return dict(json.loads(bytes(self.body)))


@dataclass(frozen=True)
class Target:
    """Where an emulator listens and what it trusts (also for one in another process)."""

    port: int
    ca_path: Path
    credentials: TestCredentials
    region: str

    @classmethod
    def of(cls, emulator: PollyEmulator) -> Target:
        return cls(
            emulator.port, emulator.ca_path, emulator.credentials, emulator.region
        )


class RawConnection:
    """One HTTP/2 connection to the emulator (``async with``)."""

    def __init__(
        self,
        emulator: PollyEmulator | Target,
        *,
        secret_access_key: str | None = None,
        access_key_id: str | None = None,
    ) -> None:
        if isinstance(emulator, PollyEmulator):
            emulator = Target.of(emulator)
        self.emulator = emulator
        creds = emulator.credentials
        self.identity = AWSCredentialIdentity(
            access_key_id=access_key_id or creds.access_key_id,
            secret_access_key=secret_access_key or creds.secret_access_key,
            session_token=creds.session_token,
        )
        self.properties = SigV4SigningProperties(
            region=emulator.region, service="polly"
        )
        self.h2 = H2Connection(
            H2Configuration(client_side=True, header_encoding="utf-8")
        )
        self.streams: dict[int, RawStream] = {}
        self.remote_max_concurrent_streams: int | None = None
        self.goaway_last_stream_id: int | None = None
        self.settings_received = asyncio.Event()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        context = ssl.create_default_context(cafile=str(self.emulator.ca_path))
        context.set_alpn_protocols(["h2"])
        self._reader, self._writer = await asyncio.open_connection(
            "127.0.0.1", self.emulator.port, ssl=context, server_hostname="127.0.0.1"
        )
        ssl_object = self._writer.get_extra_info("ssl_object")
        assert ssl_object.selected_alpn_protocol() == "h2"
        self.h2.initiate_connection()
        await self.flush()
        self._task = asyncio.create_task(self._read_loop())
        await asyncio.wait_for(self.settings_received.wait(), 5)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()

    async def flush(self) -> None:
        assert self._writer is not None
        data = self.h2.data_to_send()
        if data:
            self._writer.write(data)
            await self._writer.drain()

    async def send_goaway(self) -> None:
        """A graceful GOAWAY (NO_ERROR), as AWS's JS client sends mid-request.

        Written straight to the socket: ``h2``'s own state machine would refuse
        to send anything after it, which is the very thing under test.
        """
        assert self._writer is not None
        await self.flush()
        frame = GoAwayFrame(0)
        frame.last_stream_id = 0
        frame.error_code = 0
        self._writer.write(frame.serialize())
        await self._writer.drain()

    async def start(
        self,
        *,
        voice_id: str = "Matthew",
        output_format: str = "mp3",
        engine: str = "generative",
        sample_rate: str | None = None,
        language_code: str | None = None,
        lexicon_names: Sequence[str] | None = None,
        content_type: str = "application/vnd.amazon.eventstream",
        extra_headers: Mapping[str, str] | None = None,
        drop_headers: Sequence[str] = (),
        sign: bool = True,
        tamper_after_signing: Mapping[str, str] | None = None,
    ) -> RawStream:
        """Open a request: signed headers out, ready to send events."""
        from amazon_polly_streaming_generated.enums import (
            Engine,
            LanguageCode,
            OutputFormat,
            VoiceId,
        )

        bound = serde.serialize_start_speech_synthesis_stream_input_headers(
            StartSpeechSynthesisStreamInput(
                engine=Engine(engine),
                output_format=OutputFormat(output_format),
                voice_id=VoiceId(voice_id),
                sample_rate=sample_rate,
                language_code=None
                if language_code is None
                else LanguageCode(language_code),
                lexicon_names=None if lexicon_names is None else list(lexicon_names),
            )
        )
        fields = [
            ("content-type", content_type),
            *bound,
            *(extra_headers or {}).items(),
        ]
        port = self.emulator.port
        signer: AsyncEventSigner | None = None
        if sign:
            request = AWSRequest(
                destination=URI(host="127.0.0.1", port=port, path=PATH),
                method="POST",
                body=None,
                fields=Fields([Field(name=k, values=[v]) for k, v in fields]),
            )
            signed = await AsyncSigV4Signer().sign(
                request=request, identity=self.identity, properties=self.properties
            )
            fields = [(f.name.lower(), f.as_string()) for f in signed.fields]
            authorization = dict(fields)["authorization"]
            seed = authorization.rsplit("Signature=", 1)[1]
            signer = AsyncEventSigner(
                initial_signature=seed.encode(), event_encoder_cls=HeaderEncoder
            )
        fields = [(k, v) for k, v in fields if k not in drop_headers]
        for name, value in (tamper_after_signing or {}).items():
            fields = [(k, value if k == name else v) for k, v in fields]
        stream_id = self.h2.get_next_available_stream_id()
        stream = RawStream(self, stream_id, signer)
        self.streams[stream_id] = stream
        self.h2.send_headers(
            stream_id,
            [
                (":method", "POST"),
                (":scheme", "https"),
                (":authority", f"127.0.0.1:{port}"),
                (":path", PATH),
                *fields,
            ],
        )
        await self.flush()
        return stream

    async def synthesize(self, texts: Sequence[str], **options: Any) -> RawStream:
        """A whole request: each text a TextEvent, then the close; waits for the end."""
        stream = await self.start(**options)
        for text in texts:
            await stream.send(TextEvent(text=text))
        await stream.finish()
        return await stream.wait()

    async def _read_loop(self) -> None:
        assert self._reader is not None
        try:
            while data := await self._reader.read(65536):
                for event in self.h2.receive_data(data):
                    self._on_event(event)
                await self.flush()
        except (ConnectionError, ssl.SSLError):
            pass
        for stream in self.streams.values():
            if not stream.done.is_set():
                stream.connection_lost = True
                stream.done.set()
            stream._notify()

    def _on_event(self, event: object) -> None:
        match event:
            case RemoteSettingsChanged(changed_settings=changed):
                from h2.settings import SettingCodes

                setting = changed.get(SettingCodes.MAX_CONCURRENT_STREAMS)
                if setting is not None:
                    self.remote_max_concurrent_streams = setting.new_value
                self.settings_received.set()
            case ResponseReceived(stream_id=sid, headers=headers):
                stream = self.streams[sid or 0]
                stream.response_headers = [(str(k), str(v)) for k, v in headers or []]
                stream.status = int(dict(stream.response_headers)[":status"])
                stream._notify()
            case DataReceived(stream_id=sid, data=data, flow_controlled_length=n):
                stream = self.streams[sid or 0]
                stream.body += data or b""
                if n:
                    self.h2.acknowledge_received_data(n, sid or 0)
                if stream.status == 200 and data:
                    stream.messages += stream.decoder.feed(data)
                stream._notify()
            case StreamEnded(stream_id=sid):
                stream = self.streams[sid or 0]
                stream.ended = True
                stream.done.set()
                stream._notify()
            case StreamReset(stream_id=sid, error_code=code):
                stream = self.streams[sid or 0]
                stream.reset_code = int(code) if code is not None else None
                stream.done.set()
                stream._notify()
            case ConnectionTerminated(last_stream_id=last):
                self.goaway_last_stream_id = last
                for stream in self.streams.values():
                    stream.goaway = True
                    stream._notify()
            case _:
                pass
