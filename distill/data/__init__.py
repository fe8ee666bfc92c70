"""Data: schemas, readers, synthetic faces, transforms, the DataModule."""

from distill.data.formats import Sample, read_pts, write_pts
from distill.data.schema import SCHEMAS, LandmarkSchema, get_schema, load_schema
from distill.errors import DataError

__all__ = ["SCHEMAS", "DataError", "LandmarkSchema", "Sample", "get_schema", "load_schema", "read_pts", "write_pts"]
