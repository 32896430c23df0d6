"""`python -m benchmarks` (tests/ on PYTHONPATH): the suite; see benchmarks/suite.py."""

import sys

from benchmarks.suite import main

sys.exit(main())
