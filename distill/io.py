"""Atomic file writes: everything the library writes for a user lands whole or not at all.

Each writer puts the bytes in a hidden temporary file beside the target (same folder, so the rename
is atomic; the process id in its name, so two runs writing one path cannot collide; the target's
suffix kept last, so encoders that look at it still work), then renames it over the target.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np


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


def write_png(path: str | Path, image: np.ndarray) -> Path:
    """Encode ``image`` (uint8 BGR or gray) as PNG and write it atomically."""
    import cv2

    from distill.errors import DataError

    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise DataError(f"{path}: could not encode the image as PNG")
    return atomic_write_bytes(path, buf.tobytes())
