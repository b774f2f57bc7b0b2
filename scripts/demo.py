"""``make demo``: start the emulator, run examples/hello.py against it, stop it.

The emulator runs as its own process (``python -m amazon_polly_streaming.testing``);
the example runs as another, with only the environment variables the emulator
printed (endpoint, CA bundle, test credentials, region), exactly as a user
would point any AWS client at it. Then hello.mp3 is decoded to prove it is audio.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import soundfile

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    emulator = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "amazon_polly_streaming.testing",
            "--json",
            "--region",
            "eu-central-1",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=base,
    )
    try:
        assert emulator.stdout is not None
        info = json.loads(emulator.stdout.readline())
        print(f"emulator: {info['endpoint_url']} (CA {info['ca_path']})")
        env = {
            **base,
            **info["env"],
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }
        subprocess.run(
            [sys.executable, str(ROOT / "examples" / "hello.py")], env=env, check=True
        )
    finally:
        emulator.send_signal(signal.SIGTERM)
        emulator.wait(timeout=15)
    out = Path("hello.mp3")
    sound = soundfile.info(str(out))
    print(
        f"wrote {out} ({out.stat().st_size} bytes): {sound.format} "
        f"{sound.samplerate} Hz, {sound.duration:.2f} s - it decodes"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
