"""What every reader checks before it trusts a sample, and how a scan counts what it skipped.

A data set scan must fail early and say where: a missing image found at epoch 3 costs an hour.
So each reader hands every candidate to :func:`scan`, which either raises the first problem
(``strict=True``) or skips the sample and counts the reason in a :class:`ScanReport`.

Images are checked cheaply at scan time: the file exists, is not empty, and starts with a known
image signature; PNG, JPEG, PPM/PGM and BMP headers also give the size, which bounds the
coordinates. A full decode of every image is not done here (3,837 decodes for 300W): pass
``validate_images=True`` to ``load_samples`` for that, or let the Dataset raise when OpenCV
cannot decode a file.
"""

from __future__ import annotations

import struct
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ClassVar, Iterable

import cv2
import numpy as np

from distill.errors import DataError

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
    """How many candidate samples a scan saw, how many it skipped, and why."""

    total: int = 0
    skipped: int = 0
    reasons: Counter = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    MAX_EXAMPLES: ClassVar[int] = 10

    @property
    def kept(self) -> int:
        return self.total - self.skipped

    def skip(self, err: BadSample) -> None:
        self.skipped += 1
        self.reasons[err.reason] += 1
        if len(self.examples) < self.MAX_EXAMPLES:
            self.examples.append(str(err))

    def summary(self) -> str:
        if not self.skipped:
            return f"{self.total} samples, none skipped"
        why = ", ".join(f"{reason}: {n}" for reason, n in self.reasons.most_common())
        return f"kept {self.kept} of {self.total} samples, skipped {self.skipped} ({why})"


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

_SIGNATURES = {
    b"\x89PNG\r\n\x1a\n": "png", b"\xff\xd8\xff": "jpeg", b"BM": "bmp",
    b"P2": "pnm", b"P3": "pnm", b"P5": "pnm", b"P6": "pnm",
    b"II*\x00": "tiff", b"MM\x00*": "tiff", b"RIFF": "webp",
}


def check_image(path: str | Path, where: str | None = None, decode: bool = False) -> tuple[int, int] | None:
    """Is ``path`` a readable image? Returns (width, height) when the header says, else None.

    Raises BadSample for a missing or empty file or one without a known image signature.
    ``decode=True`` decodes the whole image with OpenCV instead (slow; catches truncated data).
    """
    path = Path(path)
    where = where or str(path)
    try:
        nbytes = path.stat().st_size
    except OSError:
        raise BadSample("missing image", f"{where}: image {path} not found") from None
    if nbytes == 0:
        raise BadSample("unreadable image", f"{where}: image {path} is empty (0 bytes)")
    if decode:
        img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if img is None:
            raise BadSample("unreadable image", f"{where}: OpenCV cannot decode image {path}")
        return int(img.shape[1]), int(img.shape[0])
    try:
        with open(path, "rb") as f:
            head = f.read(32)
            kind = next((k for sig, k in _SIGNATURES.items() if head.startswith(sig)), None)
            if kind is None:
                raise BadSample("unreadable image",
                                f"{where}: {path} is not a PNG/JPEG/PPM/BMP/TIFF/WebP image")
            return _header_size(kind, head, f)
    except OSError as e:
        raise BadSample("unreadable image", f"{where}: cannot read image {path} ({e.strerror})") from None


def _header_size(kind: str, head: bytes, f) -> tuple[int, int] | None:
    """(width, height) from the file header, or None when this format's header is not parsed."""
    try:
        if kind == "png" and len(head) >= 24:
            return struct.unpack(">II", head[16:24])
        if kind == "bmp" and len(head) >= 26:
            w, h = struct.unpack("<ii", head[18:26])
            return abs(w), abs(h)  # negative height means a top-down bitmap
        if kind == "pnm":
            f.seek(0)
            text = f.read(512).split(b"\n")
            tokens = [t for ln in text for t in ln.split(b"#")[0].split()]
            return int(tokens[1]), int(tokens[2])
        if kind == "jpeg":
            return _jpeg_size(f)
    except (ValueError, IndexError, struct.error):
        return None  # an odd header is not an error here; the Dataset's decode is the judge
    return None


def _jpeg_size(f) -> tuple[int, int] | None:
    """Walk the JPEG markers to the first start-of-frame, seeking over every other segment."""
    f.seek(2)
    for _ in range(256):  # real files reach SOF within a dozen segments
        byte = f.read(1)
        while byte and byte != b"\xff":
            byte = f.read(1)
        while byte == b"\xff":
            byte = f.read(1)
        if not byte:
            return None
        marker = byte[0]
        if marker in (0xD9, 0xDA):  # end of image / start of scan: no frame header before it
            return None
        if marker in (0x01, *range(0xD0, 0xD9)):  # segments without a length
            continue
        (length,) = struct.unpack(">H", f.read(2))
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack(">xHH", f.read(5))
            return w, h
        f.seek(length - 2, 1)
    return None
