"""agrivision: satellite and drone imagery to field-level crop-health answers."""

from agrivision.errors import AgrivisionError

__version__ = "0.1.0"

__all__ = ["AgrivisionError", "__version__"]
