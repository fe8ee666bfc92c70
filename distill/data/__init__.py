"""Data: point schemas, readers, SynthFace, transforms and augmentation, the Dataset and DataModule."""

from distill.data.formats import (
                                  DEFAULT_SCHEMA,
                                  READERS,
                                  SUBSET_NAMES,
                                  BadSample,
                                  Sample,
                                  ScanReport,
                                  check_image,
                                  guess_format,
                                  load_samples,
                                  read_300w,
                                  read_aflw,
                                  read_aflw_csv,
                                  read_cofw,
                                  read_folder,
                                  read_pts,
                                  read_wflw,
                                  write_pts,
)
from distill.data.schema import SCHEMAS, LandmarkSchema, get_schema, load_schema

__all__ = [
    "DEFAULT_SCHEMA", "READERS", "SCHEMAS", "SUBSET_NAMES", "BadSample", "LandmarkSchema", "Sample", "ScanReport",
    "check_image", "get_schema", "guess_format", "load_samples", "load_schema", "read_300w", "read_aflw",
    "read_aflw_csv", "read_cofw", "read_folder", "read_pts", "read_wflw", "write_pts",
]
