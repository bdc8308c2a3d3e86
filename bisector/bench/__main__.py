"""``python -m bisector.bench``: runs the harness (:mod:`bisector.harness.__main__`)."""

from __future__ import annotations

import sys

from bisector.harness.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
