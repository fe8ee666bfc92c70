"""The cascade's stage-2 crops: aligned by a trained stage 1's own predictions, in every split."""

from __future__ import annotations

import numpy as np
import pytest

from distill.data.augment import AugmentConfig
from distill.data.datamodule import DataConfig, LandmarkDataModule
from distill.data.transforms import box_from_points, crop_matrix
from distill.errors import ConfigError
from distill.models.cascade import apply_affine, invert_similarity, template
from distill.training.alignment import stage1_align_matrices, stage1_aligner
from tests.models.helpers import face_samples, stage1_checkpoint


def test_stage1_align_matrices_use_stage_1s_own_predictions(tmp_path):
    samples = face_samples(tmp_path)
    # stage 1 answers the template in its crop: aligning to the template of an equal-size crop is the box crop
    exact = stage1_align_matrices(stage1_checkpoint(tmp_path / "s1.ckpt"), samples, "ibug68", 32)
    for m, s in zip(exact, samples):
        np.testing.assert_allclose(m, crop_matrix(box_from_points(s.points), 32, 0.25), atol=1e-5)
    # stage 1 off by 0.1 of its crop to the right: the aligned crop follows the prediction, not the truth
    shifted = stage1_align_matrices(stage1_checkpoint(tmp_path / "s1b.ckpt", (0.1, 0.0)), samples, "ibug68", 32)
    for m, e, s in zip(shifted, exact, samples):
        side = np.ptp(s.points, axis=0).max() * 1.25                                     # stage 1's crop, image px
        moved = apply_affine(invert_similarity(m), template(32).astype(np.float64)) - \
            apply_affine(invert_similarity(e), template(32).astype(np.float64))       # (5, 2) image px
        np.testing.assert_allclose(moved, np.tile([0.1 * side, 0.0], (5, 1)), atol=1e-3)
    with pytest.raises(ConfigError, match="data.align_with"):
        stage1_align_matrices(tmp_path / "missing.ckpt", samples, "ibug68", 32)


def test_datamodule_align_with_cuts_every_split_by_stage_1(tmp_path):
    samples = face_samples(tmp_path, n=4)
    ckpt = stage1_checkpoint(tmp_path / "s1.ckpt", (0.05, -0.03))
    cfg = DataConfig(schema="ibug68", crop_size=32, batch_size=2, val_fraction=0.0, augment=AugmentConfig.none(),
                     align_with=str(ckpt))
    with pytest.raises(ConfigError, match="align function"):
        LandmarkDataModule(cfg, samples={"train": samples})  # the data layer cannot read checkpoints itself
    dm = LandmarkDataModule(cfg, samples={"train": samples, "val": samples[:2], "test": samples[2:]},
                            align=stage1_aligner(ckpt))
    dm.setup()
    want = stage1_align_matrices(ckpt, samples, "ibug68", 32)
    np.testing.assert_allclose(dm.train_dataset.align, want)
    np.testing.assert_allclose(dm.test_dataset.align, want[2:])
    batch = next(iter(dm.val_dataloader()))
    np.testing.assert_allclose(batch["matrix"].numpy(), want[:2], atol=1e-5)
    # the labels move with the stage-1 matrices (stage 2 learns where the points are in THESE crops)
    truth = np.stack([apply_affine(m, s.points.astype(np.float64)) for m, s in zip(want[:2], samples[:2])])
    np.testing.assert_allclose(batch["points"].numpy(), truth, atol=1e-3)
