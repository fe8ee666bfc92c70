"""Losses: each against its written formula on hand-sized inputs."""

import math

import pytest
import torch

from distill.losses import (
    adaptive_wing_loss,
    awing_weight_map,
    feature_mse,
    heatmap_mse,
    l1_loss,
    l2_loss,
    wing_loss,
)


def _single_x_error(x: float) -> tuple[torch.Tensor, torch.Tensor]:
    """One point whose x is off by ``x`` px and y is exact."""
    return torch.tensor([[[x, 0.0]]]), torch.zeros(1, 1, 2)


def test_wing_matches_the_piecewise_formula_on_both_sides_of_w():
    w, eps = 10.0, 2.0
    c = w - w * math.log(1 + w / eps)
    for x in (0.5, 3.0, 9.9):
        assert float(wing_loss(*_single_x_error(x), w=w, eps=eps)) == pytest.approx(w * math.log(1 + x / eps))
    for x in (10.5, 25.0):
        assert float(wing_loss(*_single_x_error(-x), w=w, eps=eps)) == pytest.approx(x - c)


def test_wing_is_continuous_at_w_and_scales_with_its_parameters():
    for w, eps in ((10.0, 2.0), (4.0, 0.5)):
        below = float(wing_loss(*_single_x_error(w - 1e-4), w=w, eps=eps))
        above = float(wing_loss(*_single_x_error(w + 1e-4), w=w, eps=eps))
        assert above == pytest.approx(below, abs=1e-3)


def test_wing_sums_x_and_y_and_averages_points_with_weights():
    pred = torch.tensor([[[1.0, 2.0], [30.0, 0.0]]])
    target = torch.zeros(1, 2, 2)
    p0 = 10 * math.log(1.5) + 10 * math.log(2.0)
    p1 = 30.0 - (10 - 10 * math.log(6.0))
    assert float(wing_loss(pred, target)) == pytest.approx((p0 + p1) / 2, rel=1e-5)
    assert float(wing_loss(pred, target, weight=torch.tensor([[1.0, 0.0]]))) == pytest.approx(p0, rel=1e-5)


def test_l1_and_l2_conventions():
    pred = torch.tensor([[[3.0, 4.0], [1.0, 0.0]]])
    target = torch.zeros(1, 2, 2)
    assert float(l1_loss(pred, target)) == pytest.approx((7.0 + 1.0) / 2)
    assert float(l2_loss(pred, target)) == pytest.approx((25.0 + 1.0) / 2)  # squared Euclidean, no 1/2
    assert float(l2_loss(pred, target, weight=torch.tensor([[0.0, 2.0]]))) == pytest.approx(1.0)


def test_heatmap_mse_zero_weight_ignores_that_point():
    target = torch.zeros(2, 3, 4, 4)
    pred = torch.zeros(2, 3, 4, 4)
    pred[0, 1] = 5.0  # a wildly wrong point...
    pred[1, 2, 0, 0] = 4.0  # ...and a right-ish one: 16 / 16 pixels = 1.0
    weight = torch.ones(2, 3)
    weight[0, 1] = 0.0  # ...that is hidden
    assert float(heatmap_mse(pred, target, weight)) == pytest.approx(1.0 / 5)
    assert float(heatmap_mse(pred, target)) == pytest.approx((25.0 + 1.0) / 6)
    assert float(heatmap_mse(pred, target, torch.zeros(2, 3))) == 0.0  # all hidden: 0, not NaN


def test_adaptive_wing_matches_a_hand_computed_value():
    # One 3x3 map: a target peak of 1 in the middle, pred 0.3 there, 0.1 error on a background pixel
    # and a large error (0.8 > theta) on another.
    target = torch.zeros(1, 1, 3, 3)
    target[0, 0, 1, 1] = 1.0
    pred = torch.zeros(1, 1, 3, 3)
    pred[0, 0, 1, 1] = 0.3
    pred[0, 0, 0, 0] = 0.1
    pred[0, 0, 2, 2] = 0.8
    omega, eps, theta, alpha = 14.0, 1.0, 0.5, 2.1

    def awing(d, y):
        p = alpha - y
        if d < theta:
            return omega * math.log(1 + (d / eps) ** p)
        a = omega / (1 + (theta / eps) ** p) * p * (theta / eps) ** (p - 1) / eps
        c = theta * a - omega * math.log(1 + (theta / eps) ** p)
        return a * d - c

    # The 3x3 dilation of the peak covers the whole 3x3 map: every pixel has weight 11.
    expected = 11 * (awing(0.7, 1.0) + awing(0.1, 0.0) + awing(0.8, 0.0)) / 9
    assert float(adaptive_wing_loss(pred, target)) == pytest.approx(expected, rel=1e-5)
    no_map = (awing(0.7, 1.0) + awing(0.1, 0.0) + awing(0.8, 0.0)) / 9
    assert float(adaptive_wing_loss(pred, target, use_weight_map=False)) == pytest.approx(no_map, rel=1e-5)


def test_adaptive_wing_is_continuous_at_theta():
    target = torch.zeros(1, 1, 1, 2)
    target[0, 0, 0, 1] = 0.6
    for y in (0.0, 0.6):
        col = 0 if y == 0.0 else 1
        lo, hi = target.clone(), target.clone()
        lo[0, 0, 0, col] = y + 0.5 - 1e-5
        hi[0, 0, 0, col] = y + 0.5 + 1e-5
        a = adaptive_wing_loss(lo, target, use_weight_map=False)
        b = adaptive_wing_loss(hi, target, use_weight_map=False)
        assert float(a) == pytest.approx(float(b), abs=1e-3)


def test_awing_weight_map_marks_the_dilated_region():
    target = torch.zeros(1, 1, 7, 7)
    target[0, 0, 3, 3] = 1.0
    target[0, 0, 3, 4] = 0.3
    target[0, 0, 0, 6] = 0.1  # below 0.2: not foreground even after dilation
    wmap = awing_weight_map(target)
    expected = torch.ones(7, 7)
    expected[2:5, 2:6] = 11.0  # 3x3 around (3,3) and around (3,4)
    assert torch.equal(wmap[0, 0], expected)


def test_feature_mse_raw_value():
    s, t = torch.zeros(1, 2, 2, 2), torch.full((1, 2, 2, 2), 3.0)
    assert float(feature_mse(s, t)) == pytest.approx(9.0)


def test_feature_mse_channel_normalisation_is_scale_and_shift_invariant():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(2, 4, 5, 5, generator=g), torch.randn(2, 4, 5, 5, generator=g)
    scale = torch.tensor([0.1, 3.0, 50.0, 7.0])[None, :, None, None]  # per channel, positive
    base = feature_mse(s, t, "channel")
    assert float(feature_mse(s * scale + 2.0, t * 100.0 - 5.0, "channel")) == pytest.approx(float(base), rel=1e-4)
    assert float(feature_mse(s * scale, t, "none")) != pytest.approx(float(feature_mse(s, t, "none")), rel=1e-2)
    assert float(feature_mse(t * 9.0 + 1.0, t, "channel")) == pytest.approx(0.0, abs=1e-6)


def test_feature_mse_l2_normalisation_is_per_position_scale_invariant():
    g = torch.Generator().manual_seed(1)
    s, t = torch.randn(2, 4, 5, 5, generator=g), torch.randn(2, 4, 5, 5, generator=g)
    per_position = torch.rand(2, 1, 5, 5, generator=g) * 10 + 0.1
    base = feature_mse(s, t, "l2")
    assert float(feature_mse(s * per_position, t * 3.0, "l2")) == pytest.approx(float(base), rel=1e-4)
    # Unit vectors: the per-position squared distance is at most 4, so the mean is at most 4 / C.
    assert 0.0 < float(base) <= 4.0 / 4
    with pytest.raises(ValueError, match="normalize"):
        feature_mse(s, t, "batch")


def test_losses_are_differentiable_and_check_shapes():
    pred = torch.rand(2, 3, 4, 4, requires_grad=True)
    adaptive_wing_loss(pred, torch.rand(2, 3, 4, 4), weight=torch.ones(2, 3)).backward()
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="same"):
        heatmap_mse(torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 4, 5))
    with pytest.raises(ValueError, match="weight"):
        wing_loss(torch.zeros(1, 2, 2), torch.zeros(1, 2, 2), weight=torch.ones(2))
