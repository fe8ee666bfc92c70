"""One face per text line: WFLW annotation files and HRNet's AFLW-19 CSV files."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from distill.data.formats.check import BadSample, ScanReport, check_image, scan
from distill.data.formats.sample import SUBSET_NAMES, Sample, Sidecar, expectation, make_sample
from distill.errors import DataError

# ----------------------------------------------------------------------------- WFLW

WFLW_POINTS = 98
WFLW_FIELDS = 2 * WFLW_POINTS + 4 + len(SUBSET_NAMES) + 1  # 207: coordinates, box, flags, image path


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8-sig").splitlines()  # splitlines also eats CRLF; -sig a BOM
    except FileNotFoundError:
        raise DataError(f"{path}: annotation file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read ({e})") from None


def _number(token: str, where: str, what: str) -> float:
    try:
        return float(token)
    except ValueError:
        raise BadSample("non-numeric value", f"{where}: {what} {token!r} is not a number") from None


def _numbers(tokens: list[str], where: str) -> list[float]:
    try:
        return [float(t) for t in tokens]
    except ValueError:  # the slow path only to name the bad field
        return [_number(t, where, f"field {i + 1}") for i, t in enumerate(tokens)]


def default_wflw_images_root(annotation_file: Path, image: str | None = None) -> Path:
    """The folder a WFLW file's image paths are relative to: ``WFLW_images`` a few levels up (the official
    layout keeps it beside ``WFLW_annotations``), else the first of the file's folder and the folders above it
    where ``image`` (the file's first image path) exists (SynthFace's paths are relative to its data
    folder), else the file's folder."""
    above = list(annotation_file.parents)[:4]
    for folder in above:
        if (folder / "WFLW_images").is_dir():
            return folder / "WFLW_images"
    if image:
        for folder in above:
            if (folder / image).is_file():
                return folder
    return annotation_file.parent


def read_wflw(annotation_file: str | Path, images_root: str | Path | None = None, strict: bool = False,
              report: ScanReport | None = None) -> list[Sample]:
    """A WFLW annotation file: one face per line of 207 whitespace-separated fields.

    Fields: 196 coordinates (x0 y0 x1 y1 ...), the box x_min y_min x_max y_max, six 0/1 flags
    (pose, expression, illumination, make-up, occlusion, blur -> ``attributes`` keys
    ``pose``... ``makeup``... as ints), then the image path relative to ``images_root``
    (default: :func:`default_wflw_images_root`).
    Coordinates are taken as they are (0-based). An ``annotations.jsonl`` in ``images_root`` or
    its parent (SynthFace) is merged into each sample.
    """
    path = Path(annotation_file)
    numbered = [(i, ln) for i, ln in enumerate(_lines(path), 1) if ln.strip()]
    if images_root is None:
        first = numbered[0][1].split()[WFLW_FIELDS - 1:] if numbered else []
        images_root = default_wflw_images_root(path, " ".join(first))
    images_root = Path(images_root)
    expect = expectation("wflw98")
    sidecar = Sidecar.find(images_root, images_root.parent)

    def build(item) -> Sample:
        lineno, line = item
        where = f"{path}:{lineno}"
        tokens = line.split()
        if len(tokens) < WFLW_FIELDS:
            raise BadSample("truncated", f"{where}: has {len(tokens)} fields, expected {WFLW_FIELDS} "
                            f"({2 * WFLW_POINTS} coordinates, 4 box values, 6 flags, image path)")
        numbers = _numbers(tokens[: WFLW_FIELDS - 7], where)
        flags = {}
        for name, token in zip(SUBSET_NAMES, tokens[WFLW_FIELDS - 7: WFLW_FIELDS - 1]):
            if token not in ("0", "1"):
                raise BadSample("bad attribute", f"{where}: {name} flag must be 0 or 1, got {token!r}")
            flags[name] = int(token)
        rest = tokens[WFLW_FIELDS - 1:]
        if len(rest) > 1 and _is_number(rest[0]):
            raise BadSample("malformed", f"{where}: has {len(tokens)} fields, expected {WFLW_FIELDS}")
        image = images_root / " ".join(rest)  # a path with spaces is the one thing after the flags
        size = check_image(image, where=where)
        points = np.asarray(numbers[: 2 * WFLW_POINTS]).reshape(WFLW_POINTS, 2)  # (98, 2)
        sample = make_sample(where, image, points, expect, box=numbers[2 * WFLW_POINTS:],
                             attributes=flags, image_size=size)
        return sidecar.merge(sample) if sidecar else sample

    return scan(numbered, build, strict, report)


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


# ----------------------------------------------------------------------------- AFLW-19 (HRNet CSV)

AFLW_POINTS = 19
AFLW_CSV_LEAD = ("image_name", "scale", "box_size", "center_w", "center_h")
HRNET_SCALE_PIXELS = 200.0  # HRNet's convention: the face box side is scale * 200 pixels


def default_aflw_csv_images_root(csv_path: Path) -> Path:
    """HRNet keeps ``face_landmarks_aflw_*.csv`` in data/aflw/ and the images in data/aflw/images/."""
    return csv_path.parent / "images" if (csv_path.parent / "images").is_dir() else csv_path.parent


def read_aflw_csv(csv_path: str | Path, images_root: str | Path | None = None, strict: bool = False,
                  report: ScanReport | None = None) -> list[Sample]:
    """HRNet-Facial's ``face_landmarks_aflw_{train,test}.csv``: a header row, then one face per row.

    Columns (as HRNet's lib/datasets/aflw.py reads them): image_name, scale, box_size, center_w,
    center_h, then x0, y0, ..., x18, y18 (interleaved), coordinates taken as they are.
    The box is HRNet's square crop before its 1.25 enlargement: centre +- scale * 100
    (``scale * 200`` is the side). HRNet normalises AFLW NME by the ``box_size`` column, which
    is kept in ``attributes["box_size"]`` (the schema's default normaliser is sqrt(w*h) of the
    box, which equals box_size only when box_size == scale * 200).
    """
    path = Path(csv_path)
    images_root = default_aflw_csv_images_root(path) if images_root is None else Path(images_root)
    expect = expectation("aflw19")
    columns = len(AFLW_CSV_LEAD) + 2 * AFLW_POINTS
    rows = list(csv.reader(_lines(path)))
    if not rows:
        raise DataError(f"{path}: empty file (expected a header row, then one face per row)")
    if len(rows[0]) != columns:
        raise DataError(f"{path}:1: header has {len(rows[0])} columns, expected {columns} "
                        f"({', '.join(AFLW_CSV_LEAD)}, then x, y of {AFLW_POINTS} points)")
    numbered = [(i, row) for i, row in enumerate(rows[1:], 2) if any(cell.strip() for cell in row)]

    def build(item) -> Sample:
        lineno, row = item
        where = f"{path}:{lineno}"
        if len(row) != columns:
            kind = "truncated" if len(row) < columns else "malformed"
            raise BadSample(kind, f"{where}: has {len(row)} columns, expected {columns}")
        name = row[0].strip()
        scale, box_size, cx, cy, *coords = (_number(c, where, f"column {i + 2}") for i, c in enumerate(row[1:]))
        image = images_root / name
        size = check_image(image, where=where)
        half = scale * HRNET_SCALE_PIXELS / 2
        points = np.asarray(coords).reshape(AFLW_POINTS, 2)  # (19, 2)
        return make_sample(where, image, points, expect, box=[cx - half, cy - half, cx + half, cy + half],
                           attributes={"box_size": box_size, "scale": scale}, image_size=size)

    return scan(numbered, build, strict, report)
