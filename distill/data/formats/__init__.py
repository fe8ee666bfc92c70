"""Readers of landmark data sets: one module per format family, one entry point.

    sample.py   the record every reader returns (Sample), make_sample, the SynthFace sidecar
    check.py    what every reader checks, ScanReport / BadSample (what a scan skipped and why)
    folders.py  iBUG .pts files, 300W, any folder of images with .pts / .json points
    text.py     one face per text line: WFLW annotation files, HRNet's AFLW-19 CSV
    mat.py      MATLAB files: COFW, AFLW-19
    load.py     load_samples(fmt, path, ...) -> (samples, ScanReport) through the plain dict READERS

Import from here; the modules above import each other, never this package.
"""

from distill.data.formats.check import BadSample, ScanReport, check_image
from distill.data.formats.folders import (
                                         has_300w_splits,
                                         read_300w,
                                         read_folder,
                                         read_json_annotation,
                                         read_pts,
                                         write_pts,
)
from distill.data.formats.load import DEFAULT_SCHEMA, READERS, guess_format, load_samples
from distill.data.formats.mat import read_aflw, read_cofw
from distill.data.formats.sample import SIDECAR, SUBSET_NAMES, Sample
from distill.data.formats.text import read_aflw_csv, read_wflw

__all__ = [
    "DEFAULT_SCHEMA", "READERS", "SIDECAR", "SUBSET_NAMES", "BadSample", "Sample", "ScanReport", "check_image",
    "guess_format", "has_300w_splits", "load_samples", "read_json_annotation", "read_300w", "read_aflw", "read_aflw_csv", "read_cofw", "read_folder",
    "read_pts", "read_wflw", "write_pts",
]
