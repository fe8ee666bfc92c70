"""distill: knowledge distillation for facial landmark detection."""

from distill.errors import ConfigError, DataError

__version__ = "0.1.0"

__all__ = ["ConfigError", "DataError", "__version__"]
