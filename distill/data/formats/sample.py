"""The record every reader returns (:class:`Sample`), the checks that build one, and the SynthFace
sidecar (``annotations.jsonl``) that adds what ``.pts`` files and WFLW lines cannot hold.

Every reader builds its samples through :func:`make_sample`, so a point count, a NaN or an absurd
coordinate is caught the same way whatever the format, and reported with the file and line it came from.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from distill.data.formats.check import BadSample, check_box, check_points, check_visibility
from distill.data.schema import SCHEMAS, LandmarkSchema, get_schema
from distill.errors import DataError

SIDECAR = "annotations.jsonl"
# WFLW's six attribute flags, in the order of its annotation lines: the subsets every metric reports,
# the ``subsets`` columns of a training item and the flags SynthFace writes.
SUBSET_NAMES = ("pose", "expression", "illumination", "makeup", "occlusion", "blur")


@dataclass
class Sample:
    """One annotated face.

    image_path: the image file (absolute or relative to the working directory).
    points: (K, 2) float32, 0-based pixel coordinates, x first; pixel centres at integers.
    visibility: (K,) float32, 1 visible / 0 hidden (occluded or self-occluded), or None if unknown.
    box: (4,) float32 face box x1, y1, x2, y2 in pixels, or None (then derived from the points).
    attributes: free dict: WFLW's six flags as ints under "pose", "expression", "illumination",
        "makeup", "occlusion", "blur"; "subset" for 300W ("common"/"challenging"); "yaw"/"pitch"/"roll"
        in degrees where known; SynthFace adds "mask", "group", "frame".
    """

    image_path: Path
    points: np.ndarray
    visibility: np.ndarray | None = None
    box: np.ndarray | None = None
    attributes: dict = field(default_factory=dict)


def expectation(spec: int | str | LandmarkSchema) -> tuple[int, str | None]:
    """(point count, schema name) from a schema, a schema name or YAML path, or a bare count."""
    if isinstance(spec, (int, np.integer)) and not isinstance(spec, bool):
        # a bare count still gets a name in messages when exactly one built-in has it
        names = [s.name for s in SCHEMAS.values() if s.num_points == spec]
        return int(spec), names[0] if len(names) == 1 else None
    schema = get_schema(spec)
    return schema.num_points, schema.name


def make_sample(where: str, image_path: Path, points, expect: tuple[int, str | None], *,
                visibility=None, box=None, attributes: dict | None = None,
                image_size: tuple[int, int] | None = None) -> Sample:
    """Check one annotation and build its Sample; every problem is a BadSample naming ``where``."""
    try:
        pts = np.asarray(points, dtype=np.float64)
        vis = None if visibility is None else np.asarray(visibility, dtype=np.float64).reshape(-1)
        bx = None if box is None else np.asarray(box, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise BadSample("non-numeric value", f"{where}: points, visibility and box must be numbers") from None
    check_points(pts, where, expect[0], expect[1], image_size)
    if vis is not None:
        check_visibility(vis, where, len(pts))
    if bx is not None:
        check_box(bx, where)
    return Sample(image_path=Path(image_path), points=pts.astype(np.float32),
                  visibility=None if vis is None else vis.astype(np.float32),
                  box=None if bx is None else bx.astype(np.float32), attributes=dict(attributes or {}))


# ----------------------------------------------------------------------------- SynthFace sidecar


def _abspath(path: str | Path) -> str:
    # abspath, not resolve(): no symlink lookups per file, and the scan builds paths the same way
    return os.path.normcase(os.path.abspath(path))


class Sidecar:
    """``annotations.jsonl`` beside a data set: per-image extras that ``.pts``/WFLW lines cannot hold.

    One JSON object per line: ``image`` (relative to the file's folder), ``visibility`` (68),
    ``visibility98`` (98), ``attributes`` (the six flags), ``yaw``/``pitch``/``roll`` (degrees),
    ``mask`` (relative path or null), ``group``, ``frame``, ``split``.
    """

    EXTRA_KEYS = ("yaw", "pitch", "roll", "group", "frame", "split", "stability_kind")

    def __init__(self, path: Path):
        self.path = path
        self.root = path.parent
        self.entries: dict[str, tuple[int, dict]] = {}  # absolute image path -> (line number, entry)
        try:
            lines = path.read_text(encoding="utf-8-sig").splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise DataError(f"{path}: cannot read ({e})") from None
        for lineno, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
            if not isinstance(entry, dict) or not isinstance(entry.get("image"), str):
                raise DataError(f"{path}:{lineno}: expected an object with an 'image' path")
            self.entries[_abspath(self.root / entry["image"])] = (lineno, entry)

    @classmethod
    def find(cls, *folders: Path) -> Sidecar | None:
        """The sidecar in the first of ``folders`` that has one, or None."""
        for folder in folders:
            if (Path(folder) / SIDECAR).is_file():
                return cls(Path(folder) / SIDECAR)
        return None

    def merge(self, sample: Sample) -> Sample:
        """Fill in visibility and attributes from this image's line (no line: unchanged)."""
        hit = self.entries.get(_abspath(sample.image_path))
        if hit is None:
            return sample
        lineno, entry = hit
        where = f"{self.path}:{lineno}"
        k = len(sample.points)
        key = "visibility98" if k == 98 else "visibility"
        if entry.get(key) is not None:
            try:
                vis = np.asarray(entry[key], dtype=np.float64).reshape(-1)
            except (TypeError, ValueError):
                raise BadSample("bad visibility", f"{where}: '{key}' must be a list of numbers") from None
            check_visibility(vis, f"{where}: '{key}'", k)
            sample.visibility = vis.astype(np.float32)
        flags = entry.get("attributes") or {}
        if not isinstance(flags, dict):
            raise BadSample("bad attribute", f"{where}: 'attributes' must be an object of flags")
        for name, value in flags.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
                raise BadSample("bad attribute", f"{where}: attribute '{name}' must be an integer flag, got {value!r}")
            sample.attributes[name] = int(value)
        for name in self.EXTRA_KEYS:
            if name in entry:
                sample.attributes[name] = entry[name]
        if "mask" in entry:
            mask = entry["mask"]
            sample.attributes["mask"] = os.path.abspath(self.root / mask) if mask else None
        return sample
