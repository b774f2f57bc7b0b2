"""The product brief's example: synthesize a greeting into hello.mp3.

Runs against real Polly with your AWS credentials, or against the local
emulator when its environment is exported (``make demo`` does that).
"""

import asyncio

from amazon_polly_streaming import PollyStreamingClient


async def main() -> None:
    client = PollyStreamingClient(region="eu-central-1")  # no I/O here
    audio = b""
    async for chunk in client.start_speech_synthesis_stream(
        text="hello world, how are you today", voice_id="Matthew"
    ):
        audio += chunk
    with open("hello.mp3", "wb") as f:
        f.write(audio)


asyncio.run(main())
