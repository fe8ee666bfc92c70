"""Files in and out: atomic writes, and images as OpenCV reads and writes them.

Every writer puts the bytes in a hidden temporary file beside the target (same folder, so the rename
is atomic; the process id in its name, so two runs writing one path cannot collide; the target's
suffix kept last, so encoders that look at it still work), then renames it over the target: what the
library writes for a user lands whole or not at all.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np

from distill.errors import DataError

# What the library takes for an image file, wherever it looks for one (data folders, unlabelled
# images, background folders, `distill predict` on a folder): the formats OpenCV decodes.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")


def temp_path(path: str | Path) -> Path:
    """Where to write before renaming to ``path``: ``.<stem>.<pid>.tmp<suffix>`` in the same folder."""
    path = Path(path)
    return path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        tmp.write_bytes(data)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, value, indent: int = 2) -> Path:
    return atomic_write_text(path, json.dumps(value, indent=indent, sort_keys=True, default=str) + "\n")


def read_image(path: str | Path) -> np.ndarray:
    """uint8 BGR (H, W, 3) as OpenCV reads it; grayscale and alpha images become 3-channel BGR."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: image not found")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise DataError(f"{path}: cannot read image (truncated or not an image file)")
    return image


def write_image(path: str | Path, image: np.ndarray) -> Path:
    """Encode ``image`` (uint8 BGR or gray) in the format of ``path``'s suffix and write it atomically."""
    path = Path(path)
    try:
        ok, buf = cv2.imencode(path.suffix or ".png", image)
    except cv2.error:
        ok = False
    if not ok:
        raise DataError(f"{path}: OpenCV cannot write an image with suffix {path.suffix!r} (use .png or .jpg)")
    return atomic_write_bytes(path, buf.tobytes())
