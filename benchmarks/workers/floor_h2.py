"""Baseline, not a client: the emulator's own response time, for the TTFA target.

The least any client can do per stream: on a warm TLS connection (blocking
socket, TCP_NODELAY, no event loop), send HEADERS and the whole pre-encoded,
pre-signed body (text event, close event, final envelope) in one write, then
read until the stream ends, decoding only what is needed to spot the first
audio event. Signing and encoding happen before the clock starts (for the next
stream, after the previous one ended), so the measured time to first audio is
the emulator's response plus the bare minimum of client work (one hpack
encode, one TLS write, TLS read + h2 + event-stream decoding of a frame).

Only the ``warm`` scenario is meaningful here; its TTFA is what the report
uses. Its total time and CPU include the next request's signing: ignore them.
Runs under .venv (``h2`` comes with the emulator's dependencies).
"""

from __future__ import annotations

import importlib.metadata
import socket
import ssl
import sys
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import (
    DataReceived,
    ResponseReceived,
    StreamEnded,
    StreamReset,
)
from worker_common import Job, OnAudio, serve

from amazon_polly_streaming import AwsCredentials, protocol
from amazon_polly_streaming.eventstream import MessageDecoder
from amazon_polly_streaming.signing import EventSigner, sign_request
from amazon_polly_streaming_generated import serde


def _run[T](coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends (signing does no I/O)."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        result: T = done.value
        return result
    coroutine.close()
    raise RuntimeError("a signing coroutine suspended")


@dataclass(slots=True)
class _Prepared:
    texts: list[str]
    headers: list[tuple[str, str]]
    body: bytes


class _Connection:
    def __init__(self, job: Job) -> None:
        url = urlsplit(job["endpoint_url"])
        self.host = url.hostname or "127.0.0.1"
        self.port = url.port or 443
        context = ssl.create_default_context(cafile=job["ca_path"])
        context.set_alpn_protocols(["h2"])
        raw = socket.create_connection((self.host, self.port), timeout=10)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.tls = context.wrap_socket(raw, server_hostname=self.host)
        self.h2 = H2Connection(
            H2Configuration(client_side=True, header_encoding="utf-8")
        )
        self.h2.initiate_connection()
        self.tls.sendall(self.h2.data_to_send())
        self.prepared: _Prepared | None = None

    def prepare(self, job: Job, texts: list[str]) -> _Prepared:
        credentials = AwsCredentials(
            access_key_id=job["access_key_id"],
            secret_access_key=job["secret_access_key"],
        )
        request = serde.deserialize_start_speech_synthesis_stream_input_headers(
            [
                ("x-amzn-Engine", "generative"),
                ("x-amzn-VoiceId", job["voice_id"]),
                ("x-amzn-OutputFormat", job["output_format"]),
                ("x-amzn-SampleRate", job["sample_rate"]),
            ]
        )
        operation = protocol.OPERATION
        signed, seed = _run(
            sign_request(
                method=operation.method,
                host=self.host,
                port=self.port,
                path=operation.path,
                headers=protocol.request_headers(request),
                credentials=credentials,
                region=job["region"],
                service=operation.signing_name,
            )
        )
        signer = EventSigner(
            seed=seed,
            credentials=credentials,
            region=job["region"],
            service=operation.signing_name,
        )
        parts = [_run(signer.envelope(protocol.text_event(text))) for text in texts]
        parts.append(_run(signer.envelope(protocol.close_event())))
        parts.append(_run(signer.end()))
        authority = f"{self.host}:{self.port}"
        headers = [
            (":method", operation.method),
            (":scheme", "https"),
            (":authority", authority),
            (":path", operation.path),
            *((k, v) for k, v in signed if k != "host"),
        ]
        return _Prepared(list(texts), headers, b"".join(parts))

    def stream(self, prepared: _Prepared, on_audio: OnAudio) -> None:
        h2 = self.h2
        stream_id = h2.get_next_available_stream_id()
        h2.send_headers(stream_id, prepared.headers)
        h2.send_data(stream_id, prepared.body, end_stream=True)
        self.tls.sendall(h2.data_to_send())
        decoder = MessageDecoder()
        while True:
            data = self.tls.recv(65536)
            if not data:
                raise ConnectionError("the emulator closed the connection")
            for event in h2.receive_data(data):
                if isinstance(event, ResponseReceived) and event.stream_id == stream_id:
                    # str with header_encoding set, bytes to h2's annotations
                    status = next(
                        (
                            v
                            for k, v in event.headers or []
                            if k in {":status", b":status"}
                        ),
                        None,
                    )
                    if status not in {"200", b"200"}:
                        raise RuntimeError(f"HTTP {status!r}")
                elif isinstance(event, DataReceived) and event.stream_id == stream_id:
                    if event.flow_controlled_length:
                        h2.acknowledge_received_data(
                            event.flow_controlled_length, stream_id
                        )
                    for message in decoder.feed(event.data or b""):
                        kind = message.headers.get(":event-type")
                        if kind == "AudioEvent":
                            on_audio(message.payload)
                        elif message.headers.get(":message-type") != "event":
                            raise RuntimeError(f"service error: {message.headers}")
                elif isinstance(event, StreamEnded) and event.stream_id == stream_id:
                    self.tls.sendall(h2.data_to_send())
                    return
                elif isinstance(event, StreamReset) and event.stream_id == stream_id:
                    raise ConnectionError(f"stream reset ({event.error_code})")
            outgoing = h2.data_to_send()
            if outgoing:
                self.tls.sendall(outgoing)

    def close(self) -> None:
        try:
            self.h2.close_connection()
            self.tls.sendall(self.h2.data_to_send())
        except OSError:
            pass
        self.tls.close()


class Floor:
    async def make(self, job: Job, concurrency: int) -> _Connection:
        if concurrency != 1:
            raise ValueError("the floor baseline runs one stream at a time")
        connection = _Connection(job)
        connection.prepared = connection.prepare(job, job["texts"])
        return connection

    async def synthesize(
        self, client: Any, job: Job, texts: list[str], on_audio: OnAudio
    ) -> None:
        assert isinstance(client, _Connection)
        prepared = client.prepared
        if prepared is None or prepared.texts != texts:
            prepared = client.prepare(job, texts)  # not pre-signed: a warm-up
        client.prepared = None
        client.stream(prepared, on_audio)
        # Sign the next request now, after this one ended: off the clock.
        client.prepared = client.prepare(job, texts)

    async def close(self, client: Any) -> None:
        client.close()


def main() -> int:
    return serve(
        Floor(), client="floor", versions={"h2": importlib.metadata.version("h2")}
    )


if __name__ == "__main__":
    sys.exit(main())
