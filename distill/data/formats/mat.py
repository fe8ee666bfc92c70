"""MATLAB files: COFW (images embedded in the .mat) and AFLW-19 (AFLWinfo_release.mat).

Both come in two containers: the old MATLAB format (read with scipy.io.loadmat) and v7.3,
which is HDF5 (read with h5py). :func:`load_mat` hides the difference: arrays come back in
MATLAB's orientation (one row per sample), cell arrays as lists of arrays or strings.
scipy and h5py are optional (``pip install distill[mat]``).
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from distill.data.formats.check import BadSample, ScanReport, check_image, scan
from distill.data.formats.sample import Sample, expectation, make_sample
from distill.errors import DataError
from distill.io import temp_path

# ----------------------------------------------------------------------------- .mat containers


def _scipy_io():
    try:
        import scipy.io
    except ImportError:
        raise DataError("MATLAB .mat files (COFW, AFLW, and writing their layouts) need scipy: "
                        "pip install distill[mat]") from None
    return scipy.io


def _h5py():
    try:
        import h5py
    except ImportError:
        raise DataError("reading MATLAB v7.3 .mat files needs h5py: pip install distill[mat]") from None
    return h5py


def _is_hdf5(path: Path) -> bool:
    """v7.3 files are HDF5 behind a 512-byte MATLAB text header; h5py-written ones start with HDF5's."""
    try:
        with open(path, "rb") as f:
            head = f.read(128)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from None
    return head.startswith(b"\x89HDF") or head.startswith(b"MATLAB 7.3")


def mat_keys(path: str | Path) -> set[str]:
    """The variable names in a .mat file, without loading any of them."""
    path = Path(path)
    try:
        if _is_hdf5(path):
            with _h5py().File(path, "r") as f:
                return {k for k in f.keys() if not k.startswith("#")}  # '#refs#' holds cell contents
        return {name for name, _, _ in _scipy_io().whosmat(str(path))}
    except DataError:
        raise
    except Exception as e:  # scipy and h5py raise many types for a file that is not a .mat
        raise DataError(f"{path}: not a readable .mat file ({type(e).__name__}: {e})") from None


def load_mat(path: str | Path, names: list[str]) -> dict:
    """Load ``names`` from a .mat: numeric arrays as MATLAB shows them, cells as Python lists."""
    path = Path(path)
    try:
        if _is_hdf5(path):
            with _h5py().File(path, "r") as f:
                return {name: _h5_value(f, f[name]) for name in names}
        raw = _scipy_io().loadmat(str(path), variable_names=names)
        return {name: _cell_list(raw[name]) if raw[name].dtype == object else raw[name] for name in names}
    except DataError:
        raise
    except Exception as e:
        raise DataError(f"{path}: cannot load {', '.join(names)} ({type(e).__name__}: {e})") from None


def write_mat(path: str | Path, variables: dict) -> None:
    """Write ``variables`` as an old-format MATLAB file (scipy), atomically: arrays as matrices, lists as
    (N, 1) cell arrays (of arrays or strings), which :func:`load_mat` reads back as lists."""
    path = Path(path)
    out = {}
    for name, value in variables.items():
        if isinstance(value, list):
            cell = np.empty((len(value), 1), dtype=object)
            for i, v in enumerate(value):
                cell[i, 0] = v
            out[name] = cell
        else:
            out[name] = np.asarray(value)
    tmp = temp_path(path)
    try:
        _scipy_io().savemat(str(tmp), out)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def _cell_list(cell: np.ndarray) -> list:
    # loadmat gives a cell as an object array (N, 1) or (1, N); a string inside is a (1,) str array
    return [str(v.flat[0]) if v.dtype.kind == "U" and v.size else ("" if v.dtype.kind == "U" else v)
            for v in cell.reshape(-1)]


def _h5_value(f, dset):
    """HDF5 stores MATLAB arrays transposed (column-major); undo that, dereference cells."""
    h5py = _h5py()
    if dset.dtype == h5py.ref_dtype:
        return [_h5_value(f, f[ref]) for ref in dset[()].T.reshape(-1)]
    value = dset[()]
    if dset.attrs.get("MATLAB_class", b"") in (b"char", "char"):
        return "".join(map(chr, np.asarray(value).reshape(-1)))  # UTF-16 code units
    return np.asarray(value).T


# ----------------------------------------------------------------------------- COFW

COFW_POINTS = 29
COFW_KEYS = {"train": ("IsTr", "phisTr", "bboxesTr"), "test": ("IsT", "phisT", "bboxesT")}


def read_cofw(mat_path: str | Path, split: str | None = "train", cache_dir: str | Path | None = None,
              strict: bool = False, report: ScanReport | None = None) -> list[Sample]:
    """COFW from ``COFW_train_color.mat`` / ``COFW_test_color.mat`` (old MATLAB format or v7.3).

    Keys IsTr/phisTr/bboxesTr (train) or IsT/phisT/bboxesT (test); ``split=None`` reads every
    split the file has. ``phis`` columns 0-28 are x, 29-57 y, 58-86 occlusion flags
    (1 = occluded -> visibility 0). Coordinates and the box (x, y, w, h) are 1-based MATLAB
    pixels: 1 is subtracted, and the box becomes (x - 1, y - 1, x - 1 + w, y - 1 + h).
    The images live inside the .mat; they are written once as PNGs (colour ones converted
    RGB -> BGR) to ``cache_dir`` (default ``<mat stem>_images`` beside the .mat) as
    ``<split>_<row:05d>.png``, so ``image_path`` is a real file. A later scan whose cache is
    complete does not load the images at all.
    """
    path = Path(mat_path)
    keys = mat_keys(path)
    if split is None:
        splits = [s for s, (_, phis, _) in COFW_KEYS.items() if phis in keys]
        if not splits:
            raise DataError(f"{path}: no COFW keys phisTr or phisT (the file has: {', '.join(sorted(keys))})")
    elif split in COFW_KEYS:
        splits = [split]
        if COFW_KEYS[split][1] not in keys:
            raise DataError(f"{path}: no key '{COFW_KEYS[split][1]}' for COFW split {split!r} "
                            f"(the file has: {', '.join(sorted(keys))})")
    else:
        raise DataError(f"{path}: unknown COFW split {split!r}; use 'train', 'test' or None")
    cache = path.with_name(f"{path.stem}_images") if cache_dir is None else Path(cache_dir)
    items = []
    for s in splits:
        items += _cofw_rows(path, s, keys, cache)
    expect = expectation("cofw29")

    def build(item) -> Sample:
        where, phis, bbox, image, target, s = item
        if image is not None:
            _write_png(target, image, where)
        size = check_image(target, where=where)
        if phis.shape != (3 * COFW_POINTS,):
            raise BadSample("wrong point count", f"{where}: has {phis.size} values, expected "
                            f"{3 * COFW_POINTS} (29 x, 29 y, 29 occlusion flags)")
        flags = phis[2 * COFW_POINTS:]
        if not np.isin(flags, (0, 1)).all():
            raise BadSample("bad visibility", f"{where}: occlusion flags must be 0 or 1")
        points = np.stack([phis[:COFW_POINTS], phis[COFW_POINTS: 2 * COFW_POINTS]], axis=1) - 1.0  # (29, 2)
        box = None if bbox is None else [bbox[0] - 1, bbox[1] - 1, bbox[0] - 1 + bbox[2], bbox[1] - 1 + bbox[3]]
        return make_sample(where, target, points, expect, visibility=1.0 - flags, box=box,
                           attributes={"split": s}, image_size=size)

    return scan(items, build, strict, report)


def _cofw_rows(path: Path, split: str, keys: set[str], cache: Path) -> list[tuple]:
    """(where, phis row, box row or None, image or None when cached, cache file, split) per face."""
    is_key, phis_key, box_key = COFW_KEYS[split]
    data = load_mat(path, [phis_key] + ([box_key] if box_key in keys else []))
    phis = np.asarray(data[phis_key], dtype=np.float64)
    if phis.ndim != 2 or 3 * COFW_POINTS not in phis.shape:
        raise DataError(f"{path}: '{phis_key}' has shape {phis.shape}, expected (N, {3 * COFW_POINTS})")
    if phis.shape[1] != 3 * COFW_POINTS:
        phis = phis.T  # some exporters save (87, N)
    n = len(phis)
    boxes = None
    if box_key in data:
        boxes = np.asarray(data[box_key], dtype=np.float64)
        boxes = boxes.T if boxes.shape == (4, n) and n != 4 else boxes
        if boxes.shape != (n, 4):
            raise DataError(f"{path}: '{box_key}' has shape {boxes.shape}, expected ({n}, 4)")
    targets = [cache / f"{split}_{i:05d}.png" for i in range(n)]
    images = [None] * n
    if not all(t.is_file() and t.stat().st_size > 0 for t in targets):
        if is_key not in keys:
            raise DataError(f"{path}: no key '{is_key}' (the images of split {split!r})")
        images = load_mat(path, [is_key])[is_key]
        if not isinstance(images, list) or len(images) != n:
            count = len(images) if isinstance(images, list) else "no cell array"
            raise DataError(f"{path}: '{is_key}' has {count} images, '{phis_key}' has {n} rows")
        images = [None if t.is_file() and t.stat().st_size > 0 else img for t, img in zip(targets, images)]
    return [(f"{path} ({phis_key} row {i + 1})", phis[i], None if boxes is None else boxes[i], images[i],
             targets[i], split) for i in range(n)]


def _write_png(target: Path, image, where: str) -> None:
    """One embedded image -> PNG, atomically (a killed scan must not leave a half file)."""
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    if img.size == 0 or not (img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 3)):
        raise BadSample("unreadable image", f"{where}: embedded image has shape {img.shape}, "
                        "expected (H, W) or (H, W, 3)")
    if img.dtype != np.uint8:
        img = img.astype(np.float64)
        img = np.clip(img * 255.0 if img.max() <= 1.0 else img, 0, 255).round().astype(np.uint8)
    if img.ndim == 3:
        img = np.ascontiguousarray(img[..., ::-1])  # MATLAB's RGB -> OpenCV's BGR
    ok, encoded = cv2.imencode(".png", img)
    if not ok:
        raise BadSample("unreadable image", f"{where}: cannot encode the embedded image as PNG")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_bytes(encoded.tobytes())
    tmp.replace(target)


# ----------------------------------------------------------------------------- AFLW-19

AFLW_POINTS = 19
AFLW_TRAIN_SIZE = 20000  # the standard split: the first 20000 of the permutation 'ra' train, the rest test


def default_aflw_images_root(mat_path: Path) -> Path:
    """The usual layout: AFLWinfo_release.mat beside AFLW's data/flickr folder."""
    flickr = mat_path.parent / "data" / "flickr"
    return flickr if flickr.is_dir() else mat_path.parent


def read_aflw(mat_path: str | Path, split: str = "train", images_root: str | Path | None = None,
              strict: bool = False, report: ScanReport | None = None,
              train_size: int = AFLW_TRAIN_SIZE) -> list[Sample]:
    """AFLW-19 from ``AFLWinfo_release.mat`` (the CCL release used by HRNet, FaRL, mmpose).

    Keys: ``data`` (N, 38): 19 x then 19 y; ``nameList`` (N cells): image path relative to
    ``images_root`` (default ``data/flickr`` beside the .mat); ``bbox`` (N, 4): x1 x2 y1 y2;
    ``ra`` (N,): a 1-based permutation, rows ``ra[:20000]`` train and ``ra[20000:]`` test;
    ``mask_new`` (N, 19): 1 visible (optional); ``num_train`` (optional, not in the CCL release; the smaller
    files of ``distill data synth --layout aflw`` carry it): the train count instead of 20000.
    ``split="all"`` reads every row in file order.
    Assumption: coordinates are used as published, without a 1-based shift, as the reference
    code (FaRL, HRNet's CSV export) does.
    """
    path = Path(mat_path)
    if split not in ("train", "test", "all"):
        raise DataError(f"{path}: unknown AFLW split {split!r}; use 'train', 'test' or 'all'")
    images_root = default_aflw_images_root(path) if images_root is None else Path(images_root)
    keys = mat_keys(path)
    needed = ["data", "nameList", "bbox"] + (["ra"] if split != "all" else [])
    missing = [k for k in needed if k not in keys]
    if missing:
        raise DataError(f"{path}: no key '{missing[0]}' (AFLWinfo_release.mat has data, nameList, bbox, ra, "
                        f"mask_new; this file has: {', '.join(sorted(keys))})")
    raw = load_mat(path, needed + [k for k in ("mask_new", "num_train") if k in keys])
    if "num_train" in raw:
        train_size = int(np.asarray(raw["num_train"]).reshape(-1)[0])
    data = np.asarray(raw["data"], dtype=np.float64)
    n = len(data)
    names = raw["nameList"]
    bbox = np.asarray(raw["bbox"], dtype=np.float64)
    mask = np.asarray(raw["mask_new"], dtype=np.float64) if "mask_new" in raw else None
    for key, value, shape in (("data", data, (n, 2 * AFLW_POINTS)), ("bbox", bbox, (n, 4)),
                              ("mask_new", mask, (n, AFLW_POINTS))):
        if value is not None and value.shape != shape:
            raise DataError(f"{path}: '{key}' has shape {value.shape}, expected {shape}")
    if not isinstance(names, list) or len(names) != n or not all(isinstance(s, str) for s in names):
        raise DataError(f"{path}: 'nameList' must be a cell array of {n} image paths")
    rows = list(range(n))
    if split != "all":
        ra = np.asarray(raw["ra"]).reshape(-1).astype(np.int64) - 1  # 1-based -> 0-based
        if sorted(ra.tolist()) != rows:
            raise DataError(f"{path}: 'ra' is not a permutation of 1..{n}")
        rows = ra[:train_size].tolist() if split == "train" else ra[train_size:].tolist()
    expect = expectation("aflw19")

    def build(i: int) -> Sample:
        where = f"{path} (data row {i + 1})"
        image = images_root / names[i]
        size = check_image(image, where=where)
        points = np.stack([data[i, :AFLW_POINTS], data[i, AFLW_POINTS:]], axis=1)  # (19, 2)
        x1, x2, y1, y2 = bbox[i]
        return make_sample(where, image, points, expect, box=[x1, y1, x2, y2],
                           visibility=None if mask is None else mask[i], image_size=size)

    return scan(rows, build, strict, report)
