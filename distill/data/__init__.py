"""Data: schemas, readers, synthetic faces, transforms, the DataModule."""

from distill.data.formats import Sample, read_300w, read_folder, read_pts, write_pts
from distill.data.formats_check import BadSample, ScanReport, check_image
from distill.data.formats_load import DEFAULT_SCHEMA, READERS, guess_format, load_samples
from distill.data.formats_mat import read_aflw, read_cofw
from distill.data.formats_text import read_aflw_csv, read_wflw
from distill.data.schema import SCHEMAS, LandmarkSchema, get_schema, load_schema
from distill.errors import DataError

__all__ = [
    "DEFAULT_SCHEMA", "READERS", "SCHEMAS", "BadSample", "DataError", "LandmarkSchema", "Sample", "ScanReport",
    "check_image", "get_schema", "guess_format", "load_samples", "load_schema", "read_300w", "read_aflw",
    "read_aflw_csv", "read_cofw", "read_folder", "read_pts", "read_wflw", "write_pts",
]
