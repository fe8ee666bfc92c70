"""What every reader checks before it trusts a sample, and how a scan counts what it skipped.

A data set scan must fail early and say where: a missing image found at epoch 3 costs an hour.
So each reader hands every candidate to :func:`scan`, which either raises the first problem
(``strict=True``) or skips the sample and counts the reason in a :class:`ScanReport`.

Images are checked cheaply at scan time by the library's one image rule (``distill.io.image_problem``):
the file exists, is not empty, starts with a known image signature and is not cut short; PNG, JPEG,
PPM/PGM and BMP headers also give the size, which bounds the coordinates. The Dataset reads images
through the same rule, so a file the scan kept is not refused later for the same reason. A full
decode of every image is not done here (3,837 decodes for 300W): pass ``validate_images=True`` to
``load_samples`` for that.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ClassVar, Iterable

import numpy as np

from distill.errors import DataError
from distill.io import image_problem, read_image

# Coordinates beyond these bounds are annotation bugs, not faces: 10x the image size (or minus
# the image size), and, when the size is unknown at scan time, this many pixels.
ABSURD_FACTOR = 10.0
ABSURD_UNKNOWN_SIZE = 1e5


class BadSample(DataError):
    """One sample is unusable. ``reason`` is the short category a ScanReport counts."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass
class ScanReport:
    """How many candidate samples a scan saw, how many it skipped, and why: every skipped sample with its
    reason and the message that names its file (and line)."""

    total: int = 0
    skipped: int = 0
    reasons: Counter = field(default_factory=Counter)
    skips: list[dict] = field(default_factory=list)  # {"reason": ..., "message": ...} per skipped sample

    SHOWN: ClassVar[int] = 3  # skipped samples a summary line names

    @property
    def kept(self) -> int:
        return self.total - self.skipped

    @property
    def examples(self) -> list[str]:
        return [s["message"] for s in self.skips]

    def skip(self, err: BadSample) -> None:
        self.skipped += 1
        self.reasons[err.reason] += 1
        self.skips.append({"reason": err.reason, "message": str(err)})

    def summary(self) -> str:
        """One line: kept / skipped by reason, and the first few skipped samples with their files."""
        if not self.skipped:
            return f"{self.total} samples, none skipped"
        why = ", ".join(f"{reason}: {n}" for reason, n in self.reasons.most_common())
        first = "; ".join(self.examples[: self.SHOWN]) + ("; ..." if self.skipped > self.SHOWN else "")
        return f"kept {self.kept} of {self.total} samples, skipped {self.skipped} ({why}); skipped: {first}"

    def to_dict(self) -> dict:
        """The whole report as plain JSON values (what run.json and `distill eval --json` record)."""
        return {"total": self.total, "kept": self.kept, "skipped": self.skipped, "reasons": dict(self.reasons),
                "skips": list(self.skips)}


def scan(items: Iterable, build: Callable, strict: bool, report: ScanReport | None) -> list:
    """``[build(item) for item in items]``, where a BadSample is raised (strict) or counted."""
    report = ScanReport() if report is None else report
    out = []
    for item in items:
        report.total += 1
        try:
            out.append(build(item))
        except BadSample as err:
            if strict:
                raise
            report.skip(err)
    return out


# ----------------------------------------------------------------------------- points


def check_points(pts: np.ndarray, where: str, num_points: int, schema_name: str | None,
                 image_size: tuple[int, int] | None) -> None:
    """Count, finiteness and plausibility of (K, 2) points; raises BadSample naming ``where``."""
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise BadSample("malformed", f"{where}: points must be (K, 2) pairs, got shape {pts.shape}")
    if len(pts) != num_points:
        expects = f"the schema {schema_name} expects" if schema_name else "expected"
        raise BadSample("wrong point count", f"{where}: has {len(pts)} points, {expects} {num_points}")
    finite = np.isfinite(pts).all(axis=1)
    if not finite.all():
        i = int(np.flatnonzero(~finite)[0])
        raise BadSample("non-finite value", f"{where}: point {i} is NaN or infinite: {pts[i].tolist()}")
    if image_size is None:
        bad = (np.abs(pts) > ABSURD_UNKNOWN_SIZE).any(axis=1)
        bound = f"|coordinate| > {ABSURD_UNKNOWN_SIZE:g}"
    else:
        size = np.asarray(image_size, dtype=np.float64)  # (2,) width, height
        bad = ((pts < -size) | (pts > ABSURD_FACTOR * size)).any(axis=1)
        bound = f"outside [-size, {ABSURD_FACTOR:g} x size] of the {image_size[0]}x{image_size[1]} image"
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        x, y = pts[i]
        raise BadSample("absurd coordinates", f"{where}: point {i} = ({x:g}, {y:g}) is {bound}")


def check_visibility(vis: np.ndarray, where: str, num_points: int) -> None:
    if vis.shape != (num_points,):
        raise BadSample("bad visibility", f"{where}: visibility has {vis.size} values, expected {num_points}")
    if not (np.isfinite(vis).all() and ((vis >= 0) & (vis <= 1)).all()):
        raise BadSample("bad visibility", f"{where}: visibility values must be in [0, 1]")


def check_box(box: np.ndarray, where: str) -> None:
    """A face box is 4 finite numbers x1, y1, x2, y2 with positive width and height."""
    if box.shape != (4,) or not np.isfinite(box).all():
        raise BadSample("bad box", f"{where}: box must be 4 finite numbers x1 y1 x2 y2, got {box.tolist()}")
    if not (box[2] > box[0] and box[3] > box[1]):
        raise BadSample("bad box", f"{where}: box {box.tolist()} has no area (need x2 > x1 and y2 > y1)")


# ----------------------------------------------------------------------------- images

def check_image(path: str | Path, where: str | None = None, decode: bool = False) -> tuple[int, int] | None:
    """Is ``path`` a usable image (``distill.io.image_problem``: the one rule the whole library applies)?
    Returns (width, height) when the header says, else None; raises BadSample naming ``where``.
    ``decode=True`` also decodes the pixels with OpenCV (slow; catches damage inside the data).
    """
    path = Path(path)
    where = f"{where}: {path}" if where and where != str(path) else str(path)
    problem, size = image_problem(path)
    if problem is not None:
        raise BadSample(problem[0], f"{where}: {problem[1]}")
    if decode:
        try:
            image = read_image(path)
        except DataError:  # the file passed the rule above: only its pixels can be wrong
            raise BadSample("unreadable image", f"{where}: OpenCV cannot decode the image") from None
        size = (int(image.shape[1]), int(image.shape[0]))
    return size
