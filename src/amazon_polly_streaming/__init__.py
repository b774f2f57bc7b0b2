"""Amazon Polly bidirectional streaming synthesis for asyncio."""
