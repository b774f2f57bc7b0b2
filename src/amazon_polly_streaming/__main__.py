"""``python -m amazon_polly_streaming``: the ``polly-stream`` command line."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
