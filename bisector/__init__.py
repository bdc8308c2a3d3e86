"""bisector: find the change that made a model-serving stack regress, and roll configs back.

The public surface is deliberately small; the CLI (the `bisector.cli` package) is the only code
that prints or exits.
"""

from bisector.errors import BisectorError

__all__ = ["BisectorError", "__version__"]
__version__ = "0.1.0"
