"""Writers of GOOD files in every format the readers accept, for the reader tests.

Each writer takes the truth (0-based points, boxes, flags) and writes it the way the
public data sets do (1-based where they are, transposed HDF5 for MATLAB v7.3, ...),
so a test can read it back and compare with what it wrote.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np


def write_image(path: Path, width: int = 8, height: int = 8, seed: int = 0, gray: bool = False) -> np.ndarray:
    """A tiny random image; the format follows the suffix. Returns the BGR (or gray) pixels."""
    rng = np.random.default_rng(seed)
    shape = (height, width) if gray else (height, width, 3)
    img = rng.integers(0, 256, size=shape, dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), img)
    return img


def random_points(n: int, width: float, height: float, seed: int = 0) -> np.ndarray:
    """(n, 2) float32 inside a width x height image, with sub-pixel fractions."""
    rng = np.random.default_rng(seed)
    return (rng.random((n, 2)) * [width - 1, height - 1]).astype(np.float32)


def pts_text(points: np.ndarray, newline: str = "\n", sep: str = " ") -> str:
    """The text of a .pts file written by hand (1-based), to control line endings and spacing."""
    rows = "".join(f"{x + 1:.3f}{sep}{y + 1:.3f}{newline}" for x, y in np.asarray(points, np.float64))
    return f"version: 1{newline}n_points:  {len(points)}{newline}{{{newline}{rows}}}{newline}"


def write_pts_text(path: Path, points: np.ndarray, newline: str = "\n", sep: str = " ") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pts_text(points, newline, sep).encode())


# ----------------------------------------------------------------------------- 300W / folders

TREE_300W = {  # folder -> (number of faces, split, subset attribute)
    "afw": (2, "train", None), "helen/trainset": (1, "train", None), "lfpw/trainset": (1, "train", None),
    "helen/testset": (1, "common", "common"), "lfpw/testset": (2, "common", "common"),
    "ibug": (2, "challenging", "challenging"),
}


def make_300w_tree(root: Path) -> dict[Path, np.ndarray]:
    """A fake 300W root with tiny 8x8 images (.jpg and .png) and 68-point .pts files."""
    truth = {}
    seed = 0
    for folder, (count, _, _) in TREE_300W.items():
        for i in range(count):
            seed += 1
            image = root / folder / f"face_{i}{'.jpg' if i % 2 else '.png'}"
            write_image(image, seed=seed)
            points = random_points(68, 8, 8, seed=seed)
            write_pts_text(image.with_suffix(".pts"), points)
            truth[image] = points
    return truth


def write_sidecar(root: Path, entries: list[dict]) -> Path:
    path = root / "annotations.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in entries))
    return path


# ----------------------------------------------------------------------------- WFLW


def wflw_line(points: np.ndarray, box, flags, image: str) -> str:
    """One WFLW annotation line: 196 coordinates, box, 6 flags, image path."""
    coords = " ".join(repr(float(v)) for v in np.asarray(points, np.float64).reshape(-1))
    return f"{coords} {' '.join(repr(float(b)) for b in box)} {' '.join(str(f) for f in flags)} {image}"


def write_wflw(annotation_file: Path, lines: list[str], newline: str = "\n") -> None:
    annotation_file.parent.mkdir(parents=True, exist_ok=True)
    annotation_file.write_bytes(newline.join(lines).encode() + newline.encode())


# ----------------------------------------------------------------------------- MATLAB .mat


def write_mat_v73(path: Path, variables: dict) -> None:
    """MATLAB v7.3 as MATLAB lays it out in HDF5: every array transposed (column-major),
    cell arrays as (1, N) object references into '#refs#', strings as uint16 char arrays."""
    import h5py

    with h5py.File(path, "w") as f:
        refs = f.create_group("#refs#")
        for name, value in variables.items():
            if isinstance(value, list):
                targets = []
                for i, v in enumerate(value):
                    if isinstance(v, str):
                        d = refs.create_dataset(f"{name}_{i}", data=np.array([[ord(c) for c in v]], np.uint16).T)
                        d.attrs["MATLAB_class"] = np.bytes_("char")
                    else:
                        d = refs.create_dataset(f"{name}_{i}", data=np.asarray(v).T)
                        d.attrs["MATLAB_class"] = np.bytes_("uint8" if np.asarray(v).dtype == np.uint8 else "double")
                    targets.append(d.ref)
                d = f.create_dataset(name, data=np.array(targets, dtype=h5py.ref_dtype).reshape(1, -1))
                d.attrs["MATLAB_class"] = np.bytes_("cell")
            else:
                d = f.create_dataset(name, data=np.asarray(value, dtype=np.float64).T)
                d.attrs["MATLAB_class"] = np.bytes_("double")


def cofw_truth(n: int = 3, seed: int = 0) -> dict:
    """COFW faces: RGB images (one grayscale), 0-based points, occlusion flags, 0-based boxes."""
    rng = np.random.default_rng(seed)
    images, points, flags, boxes = [], [], [], []
    for i in range(n):
        h, w = 12 + i, 16 + 2 * i
        shape = (h, w) if i == 1 else (h, w, 3)
        images.append(rng.integers(0, 256, size=shape, dtype=np.uint8))
        points.append(random_points(29, w, h, seed=seed + i))
        flags.append((rng.random(29) < 0.3).astype(np.float64))
        boxes.append(np.array([1.0 + i, 2.0, 10.0, 8.0]))  # 0-based x1, y1, width, height
    return {"images": images, "points": points, "flags": flags, "boxes": boxes}


def cofw_variables(truth: dict, split: str = "train") -> dict:
    """The .mat variables of one COFW split, 1-based as MATLAB writes them."""
    suffix = "Tr" if split == "train" else "T"
    phis = np.stack([np.concatenate([p[:, 0] + 1.0, p[:, 1] + 1.0, f])  # (N, 87): x, y, flags
                     for p, f in zip(truth["points"], truth["flags"])])
    boxes = np.stack([b + [1.0, 1.0, 0.0, 0.0] for b in truth["boxes"]])
    return {f"Is{suffix}": list(truth["images"]), f"phis{suffix}": phis, f"bboxes{suffix}": boxes}


def aflw_truth(n: int = 5, seed: int = 0) -> dict:
    """AFLW-19 rows: names, points (n, 19, 2), boxes x1 y1 x2 y2, visibility, a permutation."""
    rng = np.random.default_rng(seed)
    return {
        "names": [f"0/image{i:05d}.png" for i in range(n)],
        "points": np.stack([random_points(19, 8, 8, seed=seed + i) for i in range(n)]),
        "boxes": np.array([[0.5, 1.0, 7.0, 7.5]] * n),
        "mask": (rng.random((n, 19)) < 0.8).astype(np.float64),
        "perm": rng.permutation(n),  # 0-based; the file stores it 1-based
    }


def aflw_variables(truth: dict) -> dict:
    pts = truth["points"]
    x1, y1, x2, y2 = truth["boxes"].T
    return {
        "data": np.concatenate([pts[:, :, 0], pts[:, :, 1]], axis=1),  # (n, 38): 19 x then 19 y
        "nameList": list(truth["names"]),
        "bbox": np.stack([x1, x2, y1, y2], axis=1),  # the release's column order
        "ra": (truth["perm"] + 1)[None, :].astype(np.float64),  # (1, n), 1-based
        "mask_new": truth["mask"],
    }


def write_aflw_csv(path: Path, rows: list[tuple[str, float, float, float, float, np.ndarray]]) -> None:
    """HRNet's face_landmarks_aflw_*.csv: image_name, scale, box_size, center_w, center_h, x0, y0, ..."""
    header = ["image_name", "scale", "box_size", "center_w", "center_h"]
    header += [f"original_{i}_{c}" for i in range(19) for c in "xy"]
    lines = [",".join(header)]
    for name, scale, box_size, cx, cy, points in rows:
        values = [scale, box_size, cx, cy, *np.asarray(points, np.float64).reshape(-1)]
        lines.append(",".join([name] + [repr(float(v)) for v in values]))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
