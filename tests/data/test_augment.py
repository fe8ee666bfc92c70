"""Augmentation: photometric changes and occluders, reproducible from the item's generator."""

import numpy as np
import pytest

from distill.data.augment import AugmentConfig, occlude, photometric
from distill.errors import ConfigError


def test_occlusion_hides_points_under_patches():
    cfg = AugmentConfig(occlusion_prob=1.0, occlusion_max_patches=3, occlusion_max_size=0.5)
    for seed in range(10):
        rng = np.random.default_rng(seed)
        img = np.full((64, 64, 3), (1, 2, 3), np.uint8)
        pts = rng.uniform(-2, 65, size=(200, 2))
        out, vis = occlude(img, pts, None, cfg, rng)
        assert out is not img and img[0, 0].tolist() == [1, 2, 3]  # input untouched
        changed = np.any(out != img, axis=2)  # (H, W)
        assert changed.any()
        for (x, y), v in zip(pts, vis):
            xi, yi = int(np.floor(x + 0.5)), int(np.floor(y + 0.5))
            covered = 0 <= xi < 64 and 0 <= yi < 64 and changed[yi, xi]
            assert v == (0.0 if covered else 1.0)
    # already hidden points stay hidden; probability 0 changes nothing
    vis0 = np.zeros(5, np.float32)
    out, vis = occlude(img, pts[:5], vis0, AugmentConfig.none(), np.random.default_rng(0))
    assert np.array_equal(out, img) and vis.tolist() == [0.0] * 5


def test_photometric_reproducible_and_none_is_identity():
    img = np.random.default_rng(3).integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
    cfg = AugmentConfig(blur_prob=1.0, jpeg_prob=1.0, grayscale_prob=0.0)
    a = photometric(img, cfg, np.random.default_rng(7))
    b = photometric(img, cfg, np.random.default_rng(7))
    c = photometric(img, cfg, np.random.default_rng(8))
    assert a.dtype == np.uint8 and a.shape == img.shape
    assert np.array_equal(a, b) and not np.array_equal(a, c) and not np.array_equal(a, img)
    assert np.array_equal(photometric(img, AugmentConfig.none(), np.random.default_rng(0)), img)


def test_augment_config_validates():
    assert AugmentConfig(scale=[0.9, 1.1]).scale == (0.9, 1.1)
    with pytest.raises(ConfigError, match="flip_prob"):
        AugmentConfig(flip_prob=1.5)
    with pytest.raises(ConfigError, match="scale"):
        AugmentConfig(scale=(1.2, 0.8))
