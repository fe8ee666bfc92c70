"""distill: knowledge distillation for facial landmark detection."""

from distill.errors import ConfigError, DataError, ExportError, TrainingError

__version__ = "0.1.0"

__all__ = ["ConfigError", "DataError", "ExportError", "TrainingError", "__version__"]
