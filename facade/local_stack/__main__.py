"""`python -m facade.local_stack`: run the local stack (see the package doc)."""

from __future__ import annotations

import sys

from facade.local_stack import main

if __name__ == "__main__":
    sys.exit(main())
