"""One entry point for every format: ``load_samples(fmt, path) -> (samples, ScanReport)``.

``READERS`` is a plain dict from format name to a reader with one signature
``(path, schema, split, strict, report, images_root) -> list[Sample]``; ``"auto"`` guesses the
format from the path. ``DEFAULT_SCHEMA`` names each format's point set.
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path

from distill.data.formats.check import BadSample, ScanReport, check_image
from distill.data.formats.folders import read_300w, read_folder
from distill.data.formats.mat import mat_keys, read_aflw, read_cofw
from distill.data.formats.sample import SIDECAR, Sample
from distill.data.formats.text import read_aflw_csv, read_wflw
from distill.data.schema import LandmarkSchema, get_schema
from distill.errors import DataError
from distill.io import IMAGE_SUFFIXES

DEFAULT_SCHEMA: dict[str, str | None] = {
    "300w": "ibug68", "synthface": "ibug68", "wflw": "wflw98", "cofw": "cofw29",
    "aflw": "aflw19", "aflw_csv": "aflw19", "folder": None,  # a plain folder must say its schema
}
# Formats whose files fix the point count, whatever schema is asked for.
FIXED_POINTS = {"wflw": 98, "cofw": 29, "aflw": 19, "aflw_csv": 19}
# Formats whose annotation files name images relative to a folder elsewhere (``images_root``).
IMAGES_ROOT_FORMATS = ("wflw", "aflw", "aflw_csv")


def _no_split(fmt: str, path: Path, split: str | None) -> None:
    if split is not None:
        raise DataError(f"{path}: split {split!r} does not apply to format {fmt!r} (the file itself is the split)")


def _read_300w(path, schema, split, strict, report, images_root):
    return read_300w(path, split, schema, strict, report)


def read_synthface(root: Path, schema, split, strict, report, images_root=None) -> list[Sample]:
    """SynthFace in the 300W layout: DIR/<split>/*.png + .pts, and DIR/annotations.jsonl."""
    folder = root if split is None else root / split
    if not folder.is_dir():
        have = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        raise DataError(f"{root}: no split folder {split!r} (found: {', '.join(have) or 'nothing'})")
    return read_300w(folder, None, schema, strict, report)


# The file names each data set's folder holds, in the order they are looked for ({split}: the split's name).
# WFLW: the official release, then SynthFace's own layout; COFW: the colour release, then the grey one
# (COFW.mat holds both splits).
SPLIT_FILES = {
    "wflw": ("list_98pt_rect_attr_{split}.txt", "list_98pt_{split}.txt"),
    "aflw_csv": ("face_landmarks_aflw_{split}.csv",),
    "cofw": ("COFW_{split}_color.mat", "COFW_{split}.mat", "COFW.mat"),
    "aflw": ("AFLWinfo_release.mat",),
}


def find_split_file(fmt: str, folder: Path, split: str | None) -> Path:
    """The file of ``split`` inside a data set folder (searched recursively, by SPLIT_FILES[fmt])."""
    names = [name.format(split=split) for name in SPLIT_FILES[fmt]]
    if split is None and any("{split}" in name for name in SPLIT_FILES[fmt]):
        raise DataError(f"{folder}: a {fmt} folder needs a split, e.g. train or test (or pass the file itself)")
    for name in names:
        found = sorted(folder.rglob(name))
        if found:
            return found[0]
    where = f" for split {split!r}" if split is not None else ""
    raise DataError(f"{folder}: no {' or '.join(dict.fromkeys(names))} inside{where}")


def _split_file(fmt: str, path: Path, split: str | None) -> Path:
    """The annotation file to read: ``path`` itself (a file is its own split), or the split's file inside a
    data set folder (WFLW and HRNet's AFLW keep one file per split)."""
    if not path.is_dir():
        _no_split(fmt, path, split)
        return path
    return find_split_file(fmt, path, split)


def _read_wflw(path, schema, split, strict, report, images_root):
    return read_wflw(_split_file("wflw", path, split), images_root, strict, report)


def _read_cofw(path, schema, split, strict, report, images_root):
    # a .mat holds its splits as keys (phisTr / phisT); a folder holds one file per split
    path = find_split_file("cofw", path, split or "train") if path.is_dir() else path
    return read_cofw(path, split, None, strict, report)


def _read_aflw(path, schema, split, strict, report, images_root):
    path = find_split_file("aflw", path, None) if path.is_dir() else path
    return read_aflw(path, split or "all", images_root, strict, report)


def _read_aflw_csv(path, schema, split, strict, report, images_root):
    return read_aflw_csv(_split_file("aflw_csv", path, split), images_root, strict, report)


def _read_folder(path, schema, split, strict, report, images_root):
    _no_split("folder", path, split)
    return read_folder(path, schema, strict, report)


READERS = {
    "300w": _read_300w, "synthface": read_synthface, "wflw": _read_wflw, "cofw": _read_cofw,
    "aflw": _read_aflw, "aflw_csv": _read_aflw_csv, "folder": _read_folder,
}


def guess_format(path: str | Path) -> str:
    """The format of ``path`` from its look: .mat -> cofw/aflw by keys, .txt -> wflw, .csv -> aflw_csv;
    a folder with annotations.jsonl -> synthface, with .json annotations -> folder, with .pts -> 300w, else
    by the files a data set's folder holds (SPLIT_FILES: WFLW's list files, AFLWinfo_release.mat, HRNet's
    AFLW CSVs, COFW's .mat files)."""
    path = Path(path)
    if path.is_dir():
        if (path / SIDECAR).is_file():
            return "synthface"
        suffixes, names = set(), set()
        for _, _, files in os.walk(path):
            suffixes |= {os.path.splitext(f)[1].lower() for f in files}
            names |= {f for f in files if not f.lower().endswith(IMAGE_SUFFIXES)}
            if ".json" in suffixes:
                return "folder"
        if ".pts" in suffixes:
            return "300w"
        for fmt in ("wflw", "aflw", "aflw_csv", "cofw"):  # aflw first: a folder may hold both AFLW forms
            if any(fnmatch.fnmatch(name, pattern.format(split="*")) for pattern in SPLIT_FILES[fmt] for name in names):
                return fmt
        raise DataError(f"{path}: cannot guess the format: no annotations.jsonl, .pts or .json files inside, "
                        "nor the files of WFLW, COFW or AFLW")
    suffix = path.suffix.lower()
    if suffix == ".mat":
        keys = mat_keys(path)
        if {"data", "nameList"} <= keys:
            return "aflw"
        if keys & {"phisTr", "phisT"}:
            return "cofw"
        raise DataError(f"{path}: neither a COFW (phisTr/phisT) nor an AFLW-19 (data/nameList) .mat "
                        f"(it has: {', '.join(sorted(keys))})")
    if suffix == ".txt":
        return "wflw"
    if suffix == ".csv":
        return "aflw_csv"
    raise DataError(f"{path}: cannot guess the format from the suffix {suffix!r}; "
                    f"pass one of {', '.join(READERS)}")


def load_samples(fmt: str, path: str | Path, schema: str | LandmarkSchema | None = None,
                 split: str | None = None, strict: bool = False, images_root: str | Path | None = None,
                 validate_images: bool = False) -> tuple[list[Sample], ScanReport]:
    """Read a data set of format ``fmt`` (a key of READERS, or "auto") -> (samples, ScanReport).

    ``schema`` defaults to DEFAULT_SCHEMA[fmt]; ``split`` is the 300W split, the SynthFace
    split folder, the COFW split (None: what the file has) or the AFLW split (None: all); for
    WFLW / AFLW CSV it picks the split's file (SPLIT_FILES) when ``path`` is the data set folder, and
    must be None when it is the file. A COFW / AFLW folder is searched for its .mat the same way.
    ``images_root``: the folder a WFLW / AFLW / AFLW CSV file's image paths are relative to (None: where
    the official layout keeps the images; see each reader).
    Non-strict scans skip bad samples and count them in the report; strict ones raise the
    first DataError. ``validate_images=True`` also decodes every image (slow).
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: not found")
    if fmt == "auto":
        fmt = guess_format(path)
    if fmt not in READERS:
        raise DataError(f"unknown data format {fmt!r}; use one of {', '.join(READERS)} or 'auto'")
    if schema is None:
        if DEFAULT_SCHEMA[fmt] is None:
            raise DataError(f"{path}: format {fmt!r} needs a schema (a built-in name or a schema .yaml)")
        schema = DEFAULT_SCHEMA[fmt]
    schema = get_schema(schema)
    if images_root is not None and fmt not in IMAGES_ROOT_FORMATS:
        raise DataError(f"{path}: images_root applies to {', '.join(IMAGES_ROOT_FORMATS)} only; {fmt} images lie "
                        "beside their annotations or inside the file")
    fixed = FIXED_POINTS.get(fmt)
    if fixed is not None and schema.num_points != fixed:
        raise DataError(f"{path}: {fmt} data has {fixed} points, the schema {schema.name} expects {schema.num_points}")
    report = ScanReport()
    samples = READERS[fmt](path, schema, split, strict, report, images_root)
    if validate_images:
        samples = _decodable(samples, strict, report)
    return samples, report


def _decodable(samples: list[Sample], strict: bool, report: ScanReport) -> list[Sample]:
    """Keep the samples whose image OpenCV decodes (already counted in report.total)."""
    kept = []
    for s in samples:
        try:
            check_image(s.image_path, decode=True)
        except BadSample as err:
            if strict:
                raise
            report.skip(err)
            continue
        kept.append(s)
    return kept
