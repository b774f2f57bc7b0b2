"""Command line: run the Polly emulator until interrupted.

    python -m amazon_polly_streaming.testing [--port 8443] [--json]

Prints the endpoint, the CA file and the environment variables that point
AWS clients (ours, AWS's own SDKs, the AWS CLI) at it; with ``--json``, one
JSON object on one line instead, for scripts that start it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import shlex
import signal
import sys
from pathlib import Path

from .emulator import PollyEmulator, TestCredentials


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="polly-emulator",
        description="Run a local Amazon Polly streaming emulator.",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (loopback)"
    )
    parser.add_argument(
        "--port", type=int, default=0, help="TCP port; 0 picks a free one"
    )
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--access-key-id", default=TestCredentials().access_key_id)
    parser.add_argument(
        "--secret-access-key", default=None, help="default: the test key"
    )
    parser.add_argument(
        "--idle-timeout", type=float, default=5.0, help="seconds (Polly: 5)"
    )
    parser.add_argument(
        "--max-stream-duration", type=float, default=600.0, help="seconds (Polly: 600)"
    )
    parser.add_argument("--ms-per-character", type=float, default=40.0)
    parser.add_argument("--audio-event-bytes", type=int, default=4096)
    parser.add_argument(
        "--synthesis-delay", type=float, default=0.0, help="seconds per sentence"
    )
    parser.add_argument("--max-concurrent-streams", type=int, default=100)
    parser.add_argument(
        "--connection-idle-timeout",
        type=float,
        default=None,
        help="seconds; close connections idle that long (default: never)",
    )
    parser.add_argument(
        "--cert-dir", type=Path, default=None, help="where to write the test CA"
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON line, not prose"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log each request")
    return parser


def _credentials(args: argparse.Namespace) -> TestCredentials:
    if args.secret_access_key is None:
        return TestCredentials(access_key_id=args.access_key_id)
    return TestCredentials(
        access_key_id=args.access_key_id, secret_access_key=args.secret_access_key
    )


async def _serve(args: argparse.Namespace) -> None:
    emulator = PollyEmulator(
        host=args.host,
        port=args.port,
        region=args.region,
        credentials=_credentials(args),
        idle_timeout=args.idle_timeout,
        max_stream_duration=args.max_stream_duration,
        ms_per_character=args.ms_per_character,
        audio_event_bytes=args.audio_event_bytes,
        synthesis_delay=args.synthesis_delay,
        max_concurrent_streams=args.max_concurrent_streams,
        connection_idle_timeout=args.connection_idle_timeout,
        cert_dir=args.cert_dir,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with emulator:
        env = emulator.env()
        if args.json:
            info = {
                "endpoint_url": emulator.endpoint_url,
                "ca_path": str(emulator.ca_path),
                "env": env,
            }
            print(json.dumps(info), flush=True)
        else:
            print(f"Polly emulator listening on {emulator.endpoint_url}")
            print(f"Test CA certificate: {emulator.ca_path}")
            print("Point AWS clients at it with:")
            for name, value in env.items():
                print(f"  export {name}={shlex.quote(value)}")
            print("Ctrl-C stops it.", flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m amazon_polly_streaming.testing`` (polly-emulator)."""
    args = _parser().parse_args(argv)
    if args.verbose:
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
    asyncio.run(_serve(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
