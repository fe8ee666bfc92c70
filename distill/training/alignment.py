"""The cascade's stage-2 crops: aligned by a trained stage 1's OWN predictions (``data.align_with``).

    stage-1 checkpoint + samples -> each sample cut as stage 1 was trained (its input size and margin,
    no augmentation) -> 5 points -> ``aligned_crop_matrix`` onto the template of the stage-2 crop
    -> (N, 2, 3) image -> crop matrices that the DataModule uses instead of box crops

Stage 2 then trains on exactly the misalignment stage 1 will leave at test time, not on a
ground-truth alignment it will never see. The similarity maths lives with the model
(:mod:`distill.models.cascade`); reading a checkpoint to run it on data is training's job.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from distill.checkpoint import crop_margin, load_model
from distill.data.dataset import LandmarkDataset
from distill.data.schema import LandmarkSchema
from distill.data.transforms import invert_affine, to_tensor
from distill.decode import output_to_crop
from distill.errors import ConfigError, DataError
from distill.models.cascade import aligned_crop_matrix, apply_affine


def stage1_aligner(stage1_path: str | Path, batch_size: int = 256):
    """Load a 5-point stage-1 checkpoint once -> ``align(samples, schema, size) -> (N, 2, 3)``, the
    function :class:`~distill.data.datamodule.LandmarkDataModule` takes as ``align``."""
    try:
        model, info = load_model(stage1_path)
    except DataError as e:
        raise ConfigError(f"data.align_with: {e}") from None
    if int(model.num_points) != 5:
        raise ConfigError(f"data.align_with: {stage1_path} predicts {model.num_points} points; stage 1 must predict 5")
    s1, margin, decode = int(model.input_size), crop_margin(info), info.get("decode", "dark")

    def align(samples: list, schema: LandmarkSchema, size: int) -> np.ndarray:
        crops = LandmarkDataset(samples, schema, s1, augment=None, margin=margin)
        out = np.zeros((len(samples), 2, 3), dtype=np.float64)
        for start in range(0, len(samples), batch_size):
            idx = range(start, min(start + batch_size, len(samples)))
            cs = [crops.crop(i) for i in idx]
            with torch.no_grad():
                x = to_tensor(np.stack([c["image"] for c in cs]))                       # (B, 3, S1, S1)
                five = output_to_crop(model(x), model.output_kind, s1, decode)[0]     # (B, 5, 2) crop px
            for j, (i, c) in enumerate(zip(idx, cs)):
                five_img = apply_affine(invert_affine(c["matrix"]), five[j].double().numpy())  # (5, 2) image px
                try:
                    out[i] = aligned_crop_matrix(five_img, size)
                except DataError:
                    raise DataError(f"{samples[i].image_path}: stage 1 ({stage1_path}) put all 5 points on one "
                                    f"spot; cannot align") from None
        return out

    return align


def stage1_align_matrices(stage1_path: str | Path, samples: list, schema: LandmarkSchema, size: int,
                          batch_size: int = 256) -> np.ndarray:
    """(N, 2, 3) image -> aligned-crop matrices of ``samples`` for a ``size`` stage-2 crop (module docstring)."""
    return stage1_aligner(stage1_path, batch_size)(samples, schema, size)
