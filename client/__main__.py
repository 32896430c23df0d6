"""`python -m client` and the `toolq-client` console script."""

from __future__ import annotations

import sys

from client.claude_client import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
