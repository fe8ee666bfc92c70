"""A model-free yardstick for a SynthFace set: the NME of the mean shape placed in each test face's box.

Mean shape: every training face's 68 points normalised to their own tight box ([0, 1] on each axis),
averaged. Prediction for a test face: that mean shape stretched into the test face's tight box (so the
yardstick is told the box, as a detector would). NME: mean point error / inter-ocular distance (points
36 and 45), averaged over images, per subset (all, each WFLW flag, "easy" = no flag set).
A learned model must do much better than this; the hard subsets should stay clearly above "easy".
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from distill.data.formats.folders import read_pts
from distill.data.formats.sample import SUBSET_NAMES
from distill.errors import DataError


def _load(root: Path, split: str) -> tuple[np.ndarray, list[dict]]:
    """(N, 68, 2) points and the annotation records of one split."""
    ann = root / "annotations.jsonl"
    if not ann.exists():
        raise DataError(f"{ann}: not found (is {root} a SynthFace folder?)")
    records = []
    for lineno, line in enumerate(ann.read_text().splitlines(), 1):
        try:
            r = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{ann}:{lineno}: not JSON ({e})") from None
        if r.get("split") == split:
            records.append(r)
    pts = [read_pts(root / Path(r["image"]).with_suffix(".pts"), 68) for r in records]
    return np.stack(pts) if pts else np.zeros((0, 68, 2), np.float32), records


def _normalise(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N, 68, 2) -> points in their own box, box origin (N, 1, 2), box size (N, 1, 2)."""
    lo = points.min(axis=1, keepdims=True)
    size = np.maximum(points.max(axis=1, keepdims=True) - lo, 1e-6)
    return (points - lo) / size, lo, size


def mean_shape_nme(root: str | Path) -> dict[str, dict]:
    """{subset: {"nme": float, "count": int}} for subsets all, easy and the six flags (see module doc)."""
    root = Path(root)
    train, _ = _load(root, "train")
    test, records = _load(root, "test")
    if len(train) == 0 or len(test) == 0:
        raise DataError(f"{root}: needs train and test faces for the mean-shape yardstick")
    mean = _normalise(train.astype(np.float64))[0].mean(axis=0)              # (68, 2)
    _, lo, size = _normalise(test.astype(np.float64))
    pred = lo + mean[None] * size                                            # (N, 68, 2)
    iod = np.linalg.norm(test[:, 36] - test[:, 45], axis=1)
    nme = np.linalg.norm(pred - test, axis=2).mean(axis=1) / np.maximum(iod, 1e-6)
    flags = np.array([[r["attributes"][f] for f in SUBSET_NAMES] for r in records], dtype=bool)   # (N, 6)
    subsets = {"all": np.ones(len(test), bool), "easy": ~flags.any(axis=1)}
    subsets.update({f: flags[:, i] for i, f in enumerate(SUBSET_NAMES)})
    return {name: {"nme": float(nme[m].mean()) if m.any() else float("nan"), "count": int(m.sum())}
            for name, m in subsets.items()}
