"""Pose-balanced sampling: bin the training set by yaw and draw every bin equally often.

Large poses are rare in face data sets (and in SynthFace's default yaw distribution), so a model
trained on uniform draws sees few of them and does worst there. The Wing loss paper (Feng et al.,
CVPR 2018, "pose-based data balancing") duplicates the samples of rare pose bins, with
augmentation, until the bins are about equal. Drawing with replacement from per-sample weights
``1 / count(bin)`` is the same thing in expectation, because augmentation is drawn anew for every
item, so a duplicated sample is a fresh augmented view each time it comes up.

Pose comes from ``distill.data.pose.pose_from_samples``: the data set's own yaw when present (SynthFace,
AFLW), else estimated from 68/98 landmarks with solvePnP.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Sampler

from distill.data.pose import pose_from_samples
from distill.errors import DataError

# Yaw bin edges in degrees: finer near frontal, where most faces are; symmetric about 0.
DEFAULT_EDGES = (-90.0, -60.0, -30.0, -15.0, 15.0, 30.0, 60.0, 90.0)


def pose_bins(yaws: np.ndarray, edges: Sequence[float] = DEFAULT_EDGES) -> np.ndarray:
    """(N,) yaw in degrees -> (N,) int64 bin ids in 0 .. len(edges) - 2.

    Bin i holds edges[i] <= yaw < edges[i + 1]; yaws beyond the outer edges fall into the end
    bins (a 95 degree profile is still "the most extreme"). NaN yaws raise.
    """
    yaws = np.asarray(yaws, dtype=np.float64).reshape(-1)
    edges = np.asarray(edges, dtype=np.float64)
    if edges.ndim != 1 or len(edges) < 2 or np.any(np.diff(edges) <= 0):
        raise DataError(f"pose_bins: edges must be at least two strictly increasing values, got {edges.tolist()}")
    if not np.all(np.isfinite(yaws)):
        bad = np.flatnonzero(~np.isfinite(yaws))[:5].tolist()
        raise DataError(f"pose_bins: yaw is NaN/inf for samples {bad}")
    # the inner edges decide; the outer ones only name the range
    return np.searchsorted(edges[1:-1], yaws, side="right").astype(np.int64)


def balanced_weights(bin_ids: np.ndarray, strength: float = 1.0) -> np.ndarray:
    """(N,) bin ids -> (N,) float64 sampling weights summing to 1.

    strength = 1: every non-empty bin gets the same total weight (weight = 1 / count(bin)).
    strength = s in [0, 1]: weight proportional to count(bin) ** -s, a partial rebalance
    (0 leaves the data set's own distribution). Empty bins get nothing, as there is nothing to draw.
    """
    bin_ids = np.asarray(bin_ids).reshape(-1)
    if len(bin_ids) == 0:
        raise DataError("balanced_weights: no samples")
    _, inverse, counts = np.unique(bin_ids, return_inverse=True, return_counts=True)
    w = counts[inverse].astype(np.float64) ** -float(strength)
    return w / w.sum()


class PoseBalancedSampler(Sampler[int]):
    """Indices drawn with replacement from per-sample weights, reproducible per (seed, epoch).

    source: (N,) weights, or a list of Samples (binned by yaw and weighted by
        :func:`balanced_weights`).
    num_samples: draws per epoch (default N, so an epoch has the usual length).
    Call ``set_epoch(e)`` before each epoch (Lightning does) for a fresh, still reproducible draw.
    """

    def __init__(self, source, num_samples: int | None = None, seed: int = 0,
                 edges: Sequence[float] = DEFAULT_EDGES, strength: float = 1.0):
        is_weights = isinstance(source, (np.ndarray, torch.Tensor)) or (
            len(source) > 0 and isinstance(source[0], numbers.Real))
        if not is_weights:
            source = sample_weights(source, edges=edges, strength=strength)
        weights = torch.as_tensor(np.asarray(source, dtype=np.float64))
        if weights.ndim != 1 or len(weights) == 0 or not torch.all(weights >= 0) or weights.sum() <= 0:
            raise DataError("PoseBalancedSampler: weights must be a non-empty 1-D array, >= 0, not all zero")
        self.weights = weights
        self.num_samples = int(num_samples) if num_samples is not None else len(weights)
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator()
        # one stream per (seed, epoch); the large odd multiplier keeps nearby seeds' streams apart
        g.manual_seed(self.seed * 1_000_003 + self.epoch)
        idx = torch.multinomial(self.weights, self.num_samples, replacement=True, generator=g)  # (num_samples,)
        return iter(idx.tolist())


def sample_weights(samples, edges: Sequence[float] = DEFAULT_EDGES, strength: float = 1.0,
                   image_size: tuple[float, float] | None = None) -> np.ndarray:
    """(N,) balanced weights of a list of Samples, from their (given or estimated) yaw.

    Unlabelled samples (points None: distillation extras) have no pose; they form one extra bin of
    their own, so they keep a bin's share instead of breaking the estimate.
    """
    labelled = np.array([s.points is not None for s in samples], dtype=bool)
    bins = np.full(len(samples), len(edges) - 1, dtype=np.int64)  # the extra bin, past the yaw bins
    if labelled.any():
        yaws = pose_from_samples([s for s, ok in zip(samples, labelled) if ok], image_size=image_size)[:, 0]
        bins[labelled] = pose_bins(yaws, edges)
    return balanced_weights(bins, strength)


def make_pose_balanced_sampler(samples, seed: int = 0, num_samples: int | None = None,
                               edges: Sequence[float] = DEFAULT_EDGES, strength: float = 1.0) -> PoseBalancedSampler:
    """The factory a DataModule calls for ``data.pose_balance: true``: samples -> sampler."""
    return PoseBalancedSampler(sample_weights(samples, edges, strength), num_samples=num_samples, seed=seed)
