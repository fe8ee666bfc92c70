"""Folders of annotated images: the iBUG ``.pts`` format, 300W (:func:`read_300w`) and any folder of
``.pts``/``.json`` files (:func:`read_folder`). Both merge a SynthFace ``annotations.jsonl`` when one
lies beside the data.

Every reader takes ``strict`` (raise the first bad sample) and ``report`` (a ScanReport that counts
what a non-strict scan skipped and why). Errors are ``DataError`` naming file and line.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from distill.data.formats.check import BadSample, ScanReport, check_image, scan
from distill.data.formats.sample import Sample, Sidecar, expectation, make_sample
from distill.data.schema import LandmarkSchema
from distill.errors import DataError
from distill.io import IMAGE_SUFFIXES, atomic_write_text

# ----------------------------------------------------------------------------- iBUG .pts


def read_pts(path: str | Path, num_points: int | None = None) -> np.ndarray:
    """Read an iBUG ``.pts`` file -> (K, 2) float32, 0-based (the file is 1-based).

    Tolerant of CRLF, tabs and repeated spaces; strict about the header, the braces, the count
    (``n_points`` must match the rows, and ``num_points`` when given) and finite numbers.
    Errors are BadSample (a DataError) whose ``reason`` a scan counts.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig", errors="replace")  # a BOM is not content
    except FileNotFoundError:
        raise BadSample("missing annotation", f"{path}: file not found") from None
    except OSError as e:
        raise BadSample("unreadable annotation", f"{path}: cannot read ({e.strerror})") from None
    lines = [ln.strip() for ln in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    # (line number, content) of non-empty lines, numbers 1-based for messages
    rows = [(i + 1, ln) for i, ln in enumerate(lines) if ln]
    n_declared = None
    k = 0
    while k < len(rows) and rows[k][1] != "{":
        lineno, ln = rows[k]
        key, _, value = ln.partition(":")
        if key.strip() == "n_points":
            try:
                n_declared = int(value.strip())
            except ValueError:
                raise BadSample("malformed",
                                f"{path}:{lineno}: n_points is not an integer: {value.strip()!r}") from None
        elif key.strip() != "version":
            raise BadSample("malformed",
                            f"{path}:{lineno}: unexpected header line {ln!r} (expected version/n_points/{{)")
        k += 1
    if k == len(rows):
        raise BadSample("truncated", f"{path}: no opening brace '{{' (truncated or not a .pts file)")
    if n_declared is None:
        raise BadSample("malformed", f"{path}: header has no n_points line")
    body = rows[k + 1:]
    close = next((i for i, (_, ln) in enumerate(body) if ln == "}"), None)
    if close is None:  # before parsing: a file cut mid-line is truncated, not malformed
        raise BadSample("truncated", f"{path}: no closing brace '}}' after {len(body)} point lines (truncated file?)")
    pts = []
    for lineno, ln in body[:close]:
        parts = ln.split()
        if len(parts) != 2:
            raise BadSample("malformed", f"{path}:{lineno}: expected 'x y', got {ln!r}")
        try:
            x, y = float(parts[0]), float(parts[1])
        except ValueError:
            raise BadSample("non-numeric value", f"{path}:{lineno}: non-numeric coordinate in {ln!r}") from None
        if not (math.isfinite(x) and math.isfinite(y)):
            raise BadSample("non-finite value", f"{path}:{lineno}: coordinate is NaN or infinite: {ln!r}")
        pts.append((x - 1.0, y - 1.0))
    if len(pts) != n_declared:
        raise BadSample("wrong point count", f"{path}: n_points says {n_declared} but {len(pts)} points follow")
    if num_points is not None and len(pts) != num_points:
        n, name = expectation(num_points)
        expects = f"the schema {name} expects" if name else "expected"
        raise BadSample("wrong point count", f"{path}: has {len(pts)} points, {expects} {n}")
    return np.asarray(pts, dtype=np.float32).reshape(-1, 2)


def write_pts(path: str | Path, points: np.ndarray) -> None:
    """Write (K, 2) 0-based points as an iBUG ``.pts`` (1-based), atomically.

    The +1 is done in float64, where it is exact for every float32 x with |x| >= 2**-29 (or
    x = +0), and ``repr`` of a float64 round-trips, so write -> read gives back the same float32
    bits for any real pixel coordinate.
    """
    path = Path(path)
    pts = np.asarray(points, dtype=np.float32).reshape(-1, 2).astype(np.float64)
    body = "".join(f"{float(x) + 1.0!r} {float(y) + 1.0!r}\n" for x, y in pts)
    atomic_write_text(path, f"version: 1\nn_points: {len(pts)}\n{{\n{body}}}\n")


# ----------------------------------------------------------------------------- folders of images


def walk_annotated(root: Path, ann_suffixes: tuple[str, ...]):
    """Yield (annotation file, sibling image or None) under ``root``, recursively, sorted.

    An image's annotation is the file with the same stem in the same folder. Images without
    one (SynthFace's masks, say) are not samples; annotations without an image are, and fail.
    """
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        images = {}
        for name in files:
            stem, suffix = os.path.splitext(name)
            if suffix.lower() in IMAGE_SUFFIXES:
                images.setdefault(stem, name)
        for name in sorted(files):
            stem, suffix = os.path.splitext(name)
            if suffix.lower() in ann_suffixes:
                image = images.get(stem)
                yield Path(folder, name), None if image is None else Path(folder, image)


def _image_beside(ann: Path, image: Path | None) -> tuple[int, int] | None:
    if image is None:
        raise BadSample("missing image", f"{ann}: no image beside it (looked for {', '.join(IMAGE_SUFFIXES)})")
    return check_image(image, where=str(ann))


# 300W's published split, by the folder a file lies in (relative to the 300W root).
SPLITS_300W = {
    "train": (("afw",), ("helen", "trainset"), ("lfpw", "trainset")),
    "common": (("helen", "testset"), ("lfpw", "testset")),
    "challenging": (("ibug",),),
}
SPLIT_GROUPS_300W = {"train": ("train",), "common": ("common",), "challenging": ("challenging",),
                     "full": ("common", "challenging")}


def subset_300w(relative: Path) -> str | None:
    """'train' / 'common' / 'challenging' for a path relative to the scanned root, else None.

    The 300W folders may sit a level or two down (``300W/afw``, ``ibug_300W_large_face_landmark_dataset/afw``).
    """
    parts = tuple(p.lower() for p in relative.parent.parts)
    for start in range(len(parts)):
        for name, prefixes in SPLITS_300W.items():
            if any(parts[start: start + len(pre)] == pre for pre in prefixes):
                return name
    return None


def has_300w_splits(root: str | Path) -> bool:
    """Whether ``root`` holds 300W's folders (afw, helen/..., lfpw/..., ibug) with .pts files, so its named
    splits exist; a plain folder of .pts files has none (its whole content is the one split)."""
    root = Path(root)
    return any(subset_300w(ann.relative_to(root)) for ann, _ in walk_annotated(root, (".pts",)))


def read_300w(root: str | Path, split: str | None = None, num_points: int | str | LandmarkSchema = 68,
              strict: bool = False, report: ScanReport | None = None) -> list[Sample]:
    """Every image under ``root`` with a sibling ``.pts``, recursively (``split=None``), or a 300W split.

    Splits: train = afw + helen/trainset + lfpw/trainset; common = helen/testset + lfpw/testset;
    challenging = ibug; full = common + challenging. Samples of common/challenging carry
    ``attributes["subset"]``. ``num_points`` is a count or a schema (name, YAML path or object).
    An ``annotations.jsonl`` in ``root`` or its parent (SynthFace) is merged into each sample.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: not a folder (read_300w expects a folder of images with .pts files)")
    if split is not None and split not in SPLIT_GROUPS_300W:
        raise DataError(f"{root}: unknown 300W split {split!r}; use one of {', '.join(SPLIT_GROUPS_300W)} or None")
    expect = expectation(num_points)
    items = [(ann, img, subset_300w(ann.relative_to(root))) for ann, img in walk_annotated(root, (".pts",))]
    if split is not None:
        if not any(sub for _, _, sub in items):
            raise DataError(f"{root}: no 300W folders (afw, helen/trainset, helen/testset, lfpw/trainset, "
                            f"lfpw/testset, ibug) with .pts files, so split {split!r} is empty")
        items = [it for it in items if it[2] in SPLIT_GROUPS_300W[split]]
    sidecar = Sidecar.find(root, root.parent)

    def build(item) -> Sample:
        ann, image, subset = item
        size = _image_beside(ann, image)
        attrs = {"subset": subset} if subset in ("common", "challenging") else {}
        sample = make_sample(str(ann), image, read_pts(ann), expect, attributes=attrs, image_size=size)
        return sidecar.merge(sample) if sidecar else sample

    return scan(items, build, strict, report)


def read_folder(root: str | Path, schema: str | LandmarkSchema, strict: bool = False,
                report: ScanReport | None = None) -> list[Sample]:
    """Every image under ``root`` with a sibling ``.pts`` (1-based) or ``.json`` (0-based), recursively.

    JSON: ``{"points": [[x, y], ...], "visibility": [...] (optional), "box": [x1, y1, x2, y2] (optional)}``.
    Every ``.pts`` and ``.json`` file under ``root`` is taken as an annotation.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: not a folder")
    expect = expectation(schema)
    sidecar = Sidecar.find(root, root.parent)

    def build(item) -> Sample:
        ann, image = item
        size = _image_beside(ann, image)
        if ann.suffix.lower() == ".pts":
            sample = make_sample(str(ann), image, read_pts(ann), expect, image_size=size)
        else:
            ann_json = read_json_annotation(ann)
            sample = make_sample(str(ann), image, ann_json["points"], expect, visibility=ann_json.get("visibility"),
                                 box=ann_json.get("box"), image_size=size)
        return sidecar.merge(sample) if sidecar else sample

    return scan(walk_annotated(root, (".pts", ".json")), build, strict, report)


def read_json_annotation(path: str | Path) -> dict:
    """A folder's ``.json`` annotation: ``{"points": [[x, y], ...], "visibility"?, "box"?}`` (0-based px)."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as e:
        raise BadSample("malformed", f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise BadSample("unreadable annotation", f"{path}: cannot read ({e})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("points"), list):
        raise BadSample("malformed", f"{path}: expected an object with a 'points' list of [x, y] pairs")
    unknown = sorted(set(raw) - {"points", "visibility", "box"})
    if unknown:
        raise BadSample("malformed", f"{path}: unknown key '{unknown[0]}' (known: points, visibility, box)")
    return raw
