"""A stage-1 checkpoint that answers a known 5-point layout, and faces to align: the cascade's training
(tests/training/test_alignment.py) and export (tests/deploy/test_export.py) tests share them."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from distill.checkpoint import model_info, save_model_checkpoint
from distill.data.formats import Sample
from distill.data.pose import mean_face
from distill.data.schema import SCHEMAS
from distill.models import build_model
from distill.models.cascade import CANONICAL_FIVE


def stage1_checkpoint(path, shift_u=(0.0, 0.0), size=32):
    """A real 5-point ConvDW checkpoint whose head always answers CANONICAL_FIVE (+ shift_u, normalised)."""
    model = build_model("convdw_tiny", num_points=5, input_size=size).eval()
    with torch.no_grad():
        model.head.fc.weight.zero_()
        model.head.fc.bias.copy_(torch.tensor(CANONICAL_FIVE + np.float32(shift_u)).reshape(-1))
    save_model_checkpoint(path, model, model_info(model, SCHEMAS["five"], recipe={"data": {"margin": 0.25}}))
    return path


def face_samples(folder, n=3, size=96):
    rng = np.random.default_rng(0)
    p = mean_face()[:, :2]
    samples = []
    for i in range(n):
        pts = (p - p.mean(0)) / np.ptp(p[:, 0]) * size * 0.5 + size / 2 + rng.uniform(-5, 5, 2)
        cv2.imwrite(str(folder / f"{i}.png"), rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
        samples.append(Sample(folder / f"{i}.png", pts.astype(np.float32)))
    return samples
