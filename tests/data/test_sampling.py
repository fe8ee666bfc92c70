import numpy as np
import pytest
import torch

from distill import DataError
from distill.data import Sample
from distill.data.sampling import PoseBalancedSampler, balanced_weights, make_pose_balanced_sampler, pose_bins


def test_pose_bins_edges_and_clipping():
    yaws = np.array([-120, -90, -61, -45, -20, 0, 14.9, 15, 29, 45, 89, 150])
    np.testing.assert_array_equal(pose_bins(yaws), [0, 0, 0, 1, 2, 3, 3, 4, 4, 5, 6, 6])
    with pytest.raises(DataError, match="NaN"):
        pose_bins([0.0, np.nan])
    with pytest.raises(DataError, match="increasing"):
        pose_bins([0.0], edges=(0, 0, 1))


def test_balanced_weights_give_each_bin_equal_mass():
    bins = np.array([0] * 90 + [1] * 9 + [3] * 1)
    w = balanced_weights(bins)
    assert w.sum() == pytest.approx(1.0)
    for b in (0, 1, 3):
        assert w[bins == b].sum() == pytest.approx(1 / 3)
    # strength 0 keeps the data set's own distribution
    np.testing.assert_allclose(balanced_weights(bins, strength=0.0), np.full(100, 0.01))


def test_sampler_equalises_bin_frequencies_on_a_skewed_set():
    rng = np.random.default_rng(0)
    # mostly frontal, few profiles: bin counts 2, 42, 157, 618, 140, 41, 0 (one empty bin)
    yaws = np.clip(rng.normal(0, 18, size=1000), -89, 89)
    bins = pose_bins(yaws)
    counts = np.bincount(bins, minlength=7)
    assert counts.max() > 20 * counts[counts > 0].min()  # really skewed
    sampler = PoseBalancedSampler(balanced_weights(bins), num_samples=20000, seed=3)
    drawn = np.bincount(bins[list(sampler)], minlength=7) / 20000
    present = counts > 0
    np.testing.assert_allclose(drawn[present], 1 / present.sum(), atol=0.02)


def test_sampler_is_reproducible_per_seed_and_epoch():
    w = np.linspace(1, 2, 50)
    a, b = PoseBalancedSampler(w, seed=1), PoseBalancedSampler(torch.tensor(w), seed=1)
    assert len(a) == 50
    assert list(a) == list(b)
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first
    b.set_epoch(1)
    assert list(a) == list(b)
    assert list(PoseBalancedSampler(w, seed=2)) != first
    with pytest.raises(DataError, match="weights"):
        PoseBalancedSampler(np.zeros(4))


def test_factory_uses_sample_yaw_attributes(tmp_path):
    samples = [Sample(tmp_path / f"{i}.png", np.zeros((68, 2), np.float32),
                      attributes={"yaw": y, "pitch": 0.0, "roll": 0.0})
               for i, y in enumerate([0.0] * 30 + [70.0] * 2)]
    sampler = make_pose_balanced_sampler(samples, seed=0, num_samples=4000)
    idx = np.array(list(sampler))
    assert 0.45 < np.mean(idx >= 30) < 0.55   # the two profiles are drawn half of the time
