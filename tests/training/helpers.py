"""Tiny data and tiny recipes for the training tests.

``make_tiny_set`` writes a SynthFace set (or, when the generator is not available, a look-alike in
the same layout: <root>/train, <root>/test with .png + .pts). ``shrink`` is the override list that
makes any shipped recipe train in a second or two.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from distill.data.formats import write_pts

MEAN_FACE = Path(__file__).resolve().parents[2] / "distill" / "assets" / "mean_face_68_3d.txt"


def mean_face_2d() -> np.ndarray:
    """(68, 2) frontal mean face, unit inter-ocular-ish scale, centred at 0."""
    xyz = np.loadtxt(MEAN_FACE, comments="#", dtype=np.float64)
    xy = xyz[:, :2] - xyz[:, :2].mean(axis=0)
    return xy / np.ptp(xy[:, 0])


def draw_face(points: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """A learnable picture: a grey background, a skin ellipse and a dot at every landmark."""
    img = np.full((size, size, 3), int(rng.integers(40, 90)), np.uint8)
    c = points.mean(axis=0)
    axes = (int(np.ptp(points[:, 0]) * 0.6), int(np.ptp(points[:, 1]) * 0.7))
    cv2.ellipse(img, (int(c[0]), int(c[1])), axes, 0, 0, 360, (120, 150, 190), -1)
    for i, (x, y) in enumerate(points):
        cv2.circle(img, (int(round(x)), int(round(y))), 1, (20 + 3 * i, 60, 230 - 3 * i), -1)
    return img


def make_lookalike_set(root: Path, num: int, num_test: int, size: int = 64, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    base = mean_face_2d()
    for split, n in (("train", num), ("test", num_test)):
        for i in range(n):
            scale = size * rng.uniform(0.45, 0.6)
            angle = np.deg2rad(rng.uniform(-15, 15))
            rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
            pts = base @ rot.T * scale + size / 2 + rng.uniform(-3, 3, size=2)
            pts = pts.astype(np.float32)
            (root / split).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(root / split / f"{i:04d}.png"), draw_face(pts, size, rng))
            write_pts(root / split / f"{i:04d}.pts", pts)
    return root


def make_tiny_set(root: Path, num: int = 24, num_test: int = 8, size: int = 64) -> Path:
    """A tiny SynthFace set; falls back to the look-alike while the generator is unavailable."""
    try:
        from distill.data.synthface import generate
    except ImportError:
        return make_lookalike_set(root, num, num_test, size)
    generate(root, num=num, seed=0, size=size, workers=1, num_test=num_test)
    return root


def shrink(out_root: Path, data_root: Path | None, model: str = "hourglass", steps: int = 2,
           val_split: str | None = "test") -> list[str]:
    """Overrides that make a recipe tiny: small model, 16 samples, a few steps, no loggers; validation
    on the (8-face) test split so every run scores the same images."""
    tiny = {"hourglass": "model.args={channels: 8, depth: 3, stem_channels: 8}",
            "convdw": "model.args={width_mult: 0.25}"}[model]
    out = [tiny, f"trainer.max_steps={steps}", f"trainer.val_every_n_steps={steps}", "data.max_samples=16",
           "data.batch_size=4", "data.num_workers=0", "logging.logger=none", "logging.progress=false",
           "logging.grid_images=2", f"output.root={out_root}"]
    if data_root is not None:
        out.append(f"data.root={data_root}")
    if val_split is not None:
        out.append(f"data.val_split={val_split}")
    return out
