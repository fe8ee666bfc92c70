"""Files in and out: atomic writes, and images as OpenCV reads and writes them.

Every writer puts the bytes in a hidden temporary file beside the target (same folder, so the rename
is atomic; the process id in its name, so two runs writing one path cannot collide; the target's
suffix kept last, so encoders that look at it still work), then renames it over the target: what the
library writes for a user lands whole or not at all. A killed process leaves its temporary files
behind; :func:`remove_stale_temps` clears those of dead processes, and every command that writes into
a folder calls it there first.

One rule decides whether an image file is usable, wherever one is read (:func:`image_problem`): it
exists, is not empty, starts with a known signature and is not cut short (a JPEG's entropy-coded data
reaches its end-of-image marker, a PNG ends with IEND, a BMP or WebP is as long as its header says).
OpenCV decodes a truncated JPEG into a grey-filled image with only a warning on stderr, so the check is
made on the file's structure before decoding; scans (which only look at headers and tails) and
:func:`read_image` (which then decodes) apply the same rule.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
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


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs (POSIX; elsewhere every process counts as running)."""
    if os.name != "posix":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temps(folder: str | Path) -> list[Path]:
    """Remove the temporary files and folders (:func:`temp_path` names: ``.<name>.<pid>.tmp<suffix>``)
    that dead processes left in ``folder``; those of running processes stay. -> what was removed."""
    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    for entry in folder.iterdir():
        tokens = entry.name.split(".")
        if not entry.name.startswith(".") or "tmp" not in tokens[2:]:
            continue
        at = len(tokens) - 1 - tokens[::-1].index("tmp")  # the last "tmp": the pid stands before it
        if not tokens[at - 1].isdigit() or pid_alive(int(tokens[at - 1])):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


# ----------------------------------------------------------------------------- image files
_SIGNATURES = {
    b"\x89PNG\r\n\x1a\n": "png", b"\xff\xd8\xff": "jpeg", b"BM": "bmp",
    b"P2": "pnm", b"P3": "pnm", b"P5": "pnm", b"P6": "pnm",
    b"II*\x00": "tiff", b"MM\x00*": "tiff", b"RIFF": "webp",
}
_TAIL = 4096  # bytes read from a file's end to find its end marker
_IEND = b"IEND\xaeB`\x82"


def image_problem(path: str | Path) -> tuple[tuple[str, str] | None, tuple[int, int] | None]:
    """((reason, what is wrong) or None for a usable file, (width, height) when the header says): the one
    rule (module docstring). Reads the header and the tail, not the pixels. Reasons: "missing image",
    "unreadable image", "truncated image"."""
    path = Path(path)
    try:
        nbytes = path.stat().st_size
    except OSError:
        return ("missing image", "image not found"), None
    if nbytes == 0:
        return ("unreadable image", "image file is empty (0 bytes)"), None
    try:
        with open(path, "rb") as f:
            head = f.read(32)
            kind = next((k for sig, k in _SIGNATURES.items() if head.startswith(sig)), None)
            if kind is None:
                return ("unreadable image", "not a PNG/JPEG/PPM/BMP/TIFF/WebP image"), None
            try:
                size, complete = _header(kind, head, f, nbytes)
            except (ValueError, IndexError, struct.error):
                return ("unreadable image", f"the {kind} header cannot be read"), None
    except OSError as e:
        return ("unreadable image", f"cannot read image ({e.strerror})"), None
    return (None if complete else ("truncated image", f"image file is truncated ({kind}, {nbytes} bytes)")), size


def _header(kind: str, head: bytes, f, nbytes: int) -> tuple[tuple[int, int] | None, bool]:
    """((width, height) or None, whether the file is whole) for one image format; a header too odd to
    parse raises ValueError, IndexError or struct.error."""
    if kind == "jpeg":
        return _jpeg(f, nbytes)
    if kind == "png":
        # the IEND chunk with its constant CRC ends every whole PNG; the tail first, then the file
        f.seek(max(0, nbytes - _TAIL))
        whole = _IEND in f.read()
        if not whole and nbytes > _TAIL:
            f.seek(0)
            whole = _IEND in f.read()
        return struct.unpack(">II", head[16:24]), whole
    if kind == "bmp":
        declared = struct.unpack("<I", head[2:6])[0]
        w, h = struct.unpack("<ii", head[18:26])
        return (abs(w), abs(h)), declared == 0 or nbytes >= declared  # negative height: top-down rows
    if kind == "webp":
        return None, nbytes >= struct.unpack("<I", head[4:8])[0] + 8
    if kind == "pnm":
        return _pnm(f, nbytes)
    return None, True  # TIFF: no cheap end check; decoding is the judge


def _jpeg(f, nbytes: int) -> tuple[tuple[int, int] | None, bool]:
    """Walk the markers (seeking over each segment) to the frame header and the first start-of-scan;
    the file is whole when an end-of-image marker follows the scan data. In entropy-coded data 0xFF is
    always followed by 0x00 or a restart marker, so FF D9 after the scan start can only be the end of
    the image (an EXIF thumbnail's own FF D9 sits inside a segment before it)."""
    f.seek(2)
    size = None
    for _ in range(1024):  # real files reach their scan within a few dozen segments
        byte = f.read(1)
        while byte and byte != b"\xff":
            byte = f.read(1)
        while byte == b"\xff":
            byte = f.read(1)
        if not byte:
            return size, False
        marker = byte[0]
        if marker in (0x01, *range(0xD0, 0xD8)):  # segments without a length
            continue
        if marker == 0xD9:  # end of image before any scan: nothing to decode
            return size, False
        raw = f.read(2)
        if len(raw) < 2:
            return size, False
        (length,) = struct.unpack(">H", raw)
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC) and size is None:
            h, w = struct.unpack(">xHH", f.read(5))
            size = (w, h)
            f.seek(-5, 1)
        if marker == 0xDA:  # start of scan: the image data runs from here to the end marker
            scan = f.tell() + length - 2
            if scan > nbytes:
                return size, False
            f.seek(max(scan, nbytes - _TAIL))
            if b"\xff\xd9" in f.read():
                return size, True
            f.seek(scan)  # not in the tail: data after the image (a phone's motion photo) or cut short
            return size, b"\xff\xd9" in f.read()
        f.seek(length - 2, 1)
    return size, False


def _pnm(f, nbytes: int) -> tuple[tuple[int, int] | None, bool]:
    """Netpbm: magic, width, height (and maxval, but P1/P4), whitespace and comments between; binary
    P5/P6 hold width * height * channels samples of 1 or 2 bytes after one whitespace byte."""
    f.seek(0)
    data = f.read(1024)
    tokens, i = [], 0
    while len(tokens) < 4 and i < len(data):
        if data[i:i + 1] == b"#":
            while i < len(data) and data[i:i + 1] not in (b"\n", b"\r"):
                i += 1
        elif data[i:i + 1].isspace():
            i += 1
        else:
            j = i
            while j < len(data) and not data[j:j + 1].isspace() and data[j:j + 1] != b"#":
                j += 1
            tokens.append(data[i:j])
            i = j
    w, h = int(tokens[1]), int(tokens[2])
    if tokens[0] not in (b"P5", b"P6"):
        return (w, h), True  # ASCII Netpbm: no fixed length
    sample = 1 if int(tokens[3]) < 256 else 2
    return (w, h), nbytes >= i + 1 + w * h * (3 if tokens[0] == b"P6" else 1) * sample


def read_image(path: str | Path) -> np.ndarray:
    """uint8 BGR (H, W, 3) as OpenCV reads it; grayscale and alpha images become 3-channel BGR. A file
    :func:`image_problem` finds fault with, or that OpenCV cannot decode, is a DataError naming it."""
    problem, _ = image_problem(path)
    if problem is not None:
        raise DataError(f"{path}: {problem[1]}")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise DataError(f"{path}: cannot read image (OpenCV cannot decode it)")
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
