"""distill: knowledge distillation for facial landmark detection."""

from distill.errors import ConfigError, DataError, ExportError

__version__ = "0.1.0"

__all__ = ["ConfigError", "DataError", "ExportError", "__version__"]
