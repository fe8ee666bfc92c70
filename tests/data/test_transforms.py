"""Crop geometry, flips, warping and heatmap targets: one affine carries pixels and points alike."""

import cv2
import numpy as np
import pytest
import torch

from distill.data.schema import SCHEMAS
from distill.data.transforms import (
    PIXEL_MEAN,
    PIXEL_STD,
    box_from_points,
    crop_matrix,
    flip_points,
    heatmap_targets,
    invert_affine,
    to_tensor,
    transform_points,
    warp,
)
from distill.errors import DataError


def test_to_tensor_keeps_bgr_and_normalises():
    img = np.zeros((4, 4, 3), np.uint8)
    img[..., 0] = 255  # blue channel first, as OpenCV reads it
    x = to_tensor(img)
    assert x.shape == (3, 4, 4) and x.dtype == torch.float32
    assert torch.allclose(x[0], torch.full((4, 4), (1.0 - PIXEL_MEAN) / PIXEL_STD))
    assert torch.allclose(x[1], torch.full((4, 4), -PIXEL_MEAN / PIXEL_STD))


def test_box_from_points_ignores_nan_and_optionally_hidden():
    pts = np.array([[1, 2], [5, 9], [np.nan, np.nan], [0, 0]], np.float32)
    assert box_from_points(pts).tolist() == [0, 0, 5, 9]
    assert box_from_points(pts, visibility=np.array([1, 1, 1, 0])).tolist() == [1, 2, 5, 9]
    with pytest.raises(DataError):
        box_from_points(np.full((3, 2), np.nan))


def test_crop_matrix_maps_box_centre_to_crop_centre_and_side_to_crop():
    box = np.array([10, 20, 50, 40])  # 40 x 20, centre (30, 30)
    m = crop_matrix(box, 64, margin=0.25)
    side = 40 * 1.25
    centre, left_edge = transform_points(np.array([[30.0, 30.0], [30 - side / 2, 30.0]]), m)
    np.testing.assert_allclose(centre, [31.5, 31.5], atol=1e-9)
    np.testing.assert_allclose(left_edge, [-0.5, 31.5], atol=1e-9)  # the square's edge is the crop's edge
    # rotation is about the box centre; shift moves the face by shift * size crop px
    m = crop_matrix(box, 64, rotation_deg=37.0, shift=(0.1, -0.05))
    np.testing.assert_allclose(transform_points(np.array([[30.0, 30.0]]), m)[0], [31.5 - 6.4, 31.5 + 3.2], atol=1e-9)


def test_flip_twice_is_identity_for_points_and_image():
    rng = np.random.default_rng(0)
    perm = SCHEMAS["ibug68"].flip_perm
    width = 64
    # points on a 1/64 px grid are exactly representable, so the double flip must be bit-exact
    pts = (rng.integers(0, 64 * width, size=(68, 2)) / 64.0).astype(np.float32)
    twice = flip_points(flip_points(pts, perm, width), perm, width)
    assert twice.dtype == np.float32 and np.array_equal(twice, pts)
    once = flip_points(pts, perm, width)
    np.testing.assert_array_equal(once[36], [width - 1 - pts[45, 0], pts[45, 1]])  # right eye corner <- left
    # arbitrary floats: identity up to float32 rounding
    pts = rng.uniform(0, width - 1, size=(68, 2)).astype(np.float32)
    np.testing.assert_allclose(flip_points(flip_points(pts, perm, width), perm, width), pts, atol=1e-5)

    img = rng.integers(0, 256, size=(width, width, 3), dtype=np.uint8)
    m = crop_matrix([-0.5, -0.5, width - 0.5, width - 0.5], width, margin=0.0, flip=True)
    np.testing.assert_array_equal(m, [[-1, 0, width - 1], [0, 1, 0]])  # a pure mirror, nothing else
    flipped = warp(img, m, width)
    assert np.array_equal(flipped, cv2.flip(img, 1))
    assert np.array_equal(warp(flipped, m, width), img)


@pytest.mark.parametrize("flip", [False, True])
def test_affine_round_trip_below_1e4_px(flip):
    rng = np.random.default_rng(1)
    pts = rng.uniform(-50, 400, size=(98, 2))
    m = crop_matrix([100, 80, 260, 250], 256, 0.25, scale=1.17, rotation_deg=-23.0, shift=(0.03, -0.04), flip=flip)
    back = transform_points(transform_points(pts.astype(np.float32), m), invert_affine(m))
    assert np.abs(back - pts).max() < 1e-4
    np.testing.assert_allclose(invert_affine(invert_affine(m)), m, atol=1e-12)
    assert np.isnan(transform_points(np.array([[np.nan, 1.0]]), m)).all(axis=1)[0]


@pytest.mark.parametrize("rotation,scale,flip", [(0.0, 1.0, False), (25.0, 0.9, False), (-40.0, 1.2, True)])
def test_warped_dot_lands_where_transform_points_says(rotation, scale, flip):
    img = np.zeros((200, 200, 3), np.uint8)
    dot = np.array([[70.0, 120.0]])
    img[117:124, 67:74] = (10, 200, 30)  # a 7 x 7 block centred on the dot
    m = crop_matrix([40, 60, 170, 180], 128, margin=0.0, scale=scale, rotation_deg=rotation, flip=flip)
    x, y = transform_points(dot, m)[0]
    crop = warp(img, m, 128)
    assert crop[int(round(y)), int(round(x))].tolist() == [10, 200, 30]
    assert crop.sum() > 0 and crop[0, 0].tolist() == [0, 0, 0]


def _log_parabola_peak(hm: np.ndarray) -> tuple[float, float]:
    """Sub-pixel peak: fit a parabola to the log of the 3 values around the argmax per axis."""
    y, x = np.unravel_index(np.argmax(hm), hm.shape)
    lg = np.log(np.maximum(hm, 1e-30))
    dx = 0.5 * (lg[y, x - 1] - lg[y, x + 1]) / (lg[y, x - 1] - 2 * lg[y, x] + lg[y, x + 1])
    dy = 0.5 * (lg[y - 1, x] - lg[y + 1, x]) / (lg[y - 1, x] - 2 * lg[y, x] + lg[y + 1, x])
    return x + dx, y + dy


def test_heatmap_peak_at_float_target():
    rng = np.random.default_rng(2)
    crop, size = 128, 32
    pts = rng.uniform(12, 115, size=(20, 2))
    heatmaps, weight = heatmap_targets(pts, None, crop, size, sigma=1.5)
    assert heatmaps.shape == (20, size, size) and heatmaps.dtype == np.float32 and weight.dtype == np.float32
    assert np.all(weight == 1.0) and heatmaps.max() <= 1.0
    target = (pts + 0.5) * size / crop - 0.5
    for hm, (tx, ty) in zip(heatmaps, target):
        y, x = np.unravel_index(np.argmax(hm), hm.shape)
        assert (x, y) == (int(np.floor(tx + 0.5)), int(np.floor(ty + 0.5)))
        px, py = _log_parabola_peak(hm)
        assert abs(px - tx) < 0.1 and abs(py - ty) < 0.1
    # an integer centre reaches the amplitude 1.0 exactly
    hm, _ = heatmap_targets(np.array([[(10 + 0.5) * crop / size - 0.5, (7 + 0.5) * crop / size - 0.5]]), None,
                            crop, size, 1.0)
    assert hm[0].max() == pytest.approx(1.0)


def test_heatmap_outside_points_and_hidden_weight():
    pts = np.array([[-3.0, 10.0], [10.0, 64.0], [np.nan, np.nan], [30.0, 30.0], [20.0, 20.0]])
    vis = np.array([1, 1, 1, 1, 0])
    heatmaps, weight = heatmap_targets(pts, vis, 64, 16, 1.0, hidden_weight=0.25)
    assert weight.tolist() == [0.0, 0.0, 0.0, 1.0, 0.25]
    assert not heatmaps[:3].any()
    assert heatmaps[3].max() > 0.5 and heatmaps[4].max() > 0.5  # hidden keeps its Gaussian
