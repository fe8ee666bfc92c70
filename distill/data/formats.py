"""Readers and writers for landmark data sets; every reader returns a list of :class:`Sample`.

(Filled in by the formats work: .pts, 300W, WFLW, COFW, AFLW-19, generic folders.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


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


# ----------------------------------------------------------------------------- iBUG .pts
from distill.errors import DataError  # noqa: E402


def read_pts(path: str | Path, num_points: int | None = None) -> np.ndarray:
    """Read an iBUG ``.pts`` file -> (K, 2) float32, 0-based (the file is 1-based).

    Tolerant of CRLF, tabs and repeated spaces; strict about the header, the braces, the count
    (``n_points`` must match the rows, and ``num_points`` when given) and finite numbers.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
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
                raise DataError(f"{path}:{lineno}: n_points is not an integer: {value.strip()!r}") from None
        elif key.strip() != "version":
            raise DataError(f"{path}:{lineno}: unexpected header line {ln!r} (expected version/n_points/{{)")
        k += 1
    if k == len(rows):
        raise DataError(f"{path}: no opening brace '{{' (truncated or not a .pts file)")
    if n_declared is None:
        raise DataError(f"{path}: header has no n_points line")
    pts = []
    closed = False
    for lineno, ln in rows[k + 1:]:
        if ln == "}":
            closed = True
            break
        parts = ln.split()
        if len(parts) != 2:
            raise DataError(f"{path}:{lineno}: expected 'x y', got {ln!r}")
        try:
            x, y = float(parts[0]), float(parts[1])
        except ValueError:
            raise DataError(f"{path}:{lineno}: non-numeric coordinate in {ln!r}") from None
        if not (np.isfinite(x) and np.isfinite(y)):
            raise DataError(f"{path}:{lineno}: coordinate is NaN or infinite: {ln!r}")
        pts.append((x - 1.0, y - 1.0))
    if not closed:
        raise DataError(f"{path}: no closing brace '}}' after {len(pts)} points (truncated file?)")
    if len(pts) != n_declared:
        raise DataError(f"{path}: n_points says {n_declared} but {len(pts)} points follow")
    if num_points is not None and len(pts) != num_points:
        raise DataError(f"{path}: has {len(pts)} points, the schema expects {num_points}")
    return np.asarray(pts, dtype=np.float32).reshape(-1, 2)


def write_pts(path: str | Path, points: np.ndarray) -> None:
    """Write (K, 2) 0-based points as an iBUG ``.pts`` (1-based), atomically.

    The +1 is done in float64, where it is exact for any float32 below 2**29, and ``repr`` of a
    float64 round-trips, so write -> read gives back the same float32 bits.
    """
    path = Path(path)
    pts = np.asarray(points, dtype=np.float32).reshape(-1, 2).astype(np.float64)
    body = "".join(f"{float(x) + 1.0!r} {float(y) + 1.0!r}\n" for x, y in pts)
    text = f"version: 1\nn_points: {len(pts)}\n{{\n{body}}}\n"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
