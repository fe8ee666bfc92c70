"""Losses: small pure functions, each with its formula and its paper.

Shared conventions, so the training modules can swap one loss for another:

- Heatmap losses take ``pred, target (B, K, H, W)`` and an optional per-point ``weight (B, K)``
  (visibility, or 0 for a point that fell outside the heatmap). Each point's loss is the MEAN over
  its H*W pixels; points and images are then combined by the weighted mean
  ``sum(w * l) / max(sum(w), 1e-6)`` (the guard makes an all-zero-weight batch give 0, not NaN).
  Without a weight it is the plain mean over B*K points.
- Coordinate losses take ``pred, target (B, K, 2)`` in PIXELS of the input crop (Wing's w and eps
  are pixel lengths, so they only mean something in a known unit). The per-coordinate function is
  SUMMED over x and y into one value per point, then reduced over points and images exactly as above.
- Feature losses take ``student, teacher (B, C, H, W)`` and return the mean over all elements.

All functions return a 0-dim tensor and are differentiable in ``pred`` / ``student``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _reduce_points(per_point: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """(B, K) per-point losses -> scalar: mean, or weighted mean over points and batch."""
    if weight is None:
        return per_point.mean()
    if weight.shape != per_point.shape:
        raise ValueError(f"weight has shape {tuple(weight.shape)}, expected (B, K) = {tuple(per_point.shape)}")
    weight = weight.to(per_point.dtype)
    # Dividing by the weight sum (not B*K) keeps the loss scale independent of how many points are hidden.
    return (per_point * weight).sum() / weight.sum().clamp_min(1e-6)


def _check_same(pred: torch.Tensor, target: torch.Tensor, ndim: int, what: str) -> None:
    if pred.shape != target.shape or pred.dim() != ndim:
        raise ValueError(f"{what}: pred {tuple(pred.shape)} and target {tuple(target.shape)} "
                         f"must have the same {ndim}-d shape")


# ----------------------------------------------------------------------------- heatmaps
def heatmap_mse(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Heatmap mean squared error (Tompson et al., NeurIPS 2014; Newell et al., ECCV 2016).

    l_k = mean_{h,w} (pred_k - target_k)^2 per point, then the weighted mean over points and batch:
    sum(w_bk * l_bk) / sum(w_bk). Units: squared heatmap values. pred, target (B, K, H, W); weight (B, K).
    """
    _check_same(pred, target, 4, "heatmap_mse")
    per_point = (pred - target).pow(2).mean(dim=(2, 3))  # (B, K)
    return _reduce_points(per_point, weight)


def awing_weight_map(target: torch.Tensor, threshold: float = 0.2, scale: float = 10.0) -> torch.Tensor:
    """Adaptive Wing's loss weight map: W = scale * M + 1, M = 1 where maxpool3x3(target) >= threshold.

    The 3x3 max-pool dilates the foreground by one pixel so the pixels just around a peak, where a
    missed location shows first, also get the large weight. target (B, K, H, W) -> (B, K, H, W).
    """
    dilated = F.max_pool2d(target, kernel_size=3, stride=1, padding=1)  # (B, K, H, W)
    return scale * (dilated >= threshold).to(target.dtype) + 1.0


def adaptive_wing_loss(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None,
                       alpha: float = 2.1, omega: float = 14.0, epsilon: float = 1.0, theta: float = 0.5,
                       use_weight_map: bool = True) -> torch.Tensor:
    """Adaptive Wing loss (Wang, Bo, Fuxin, "Adaptive Wing Loss for Robust Face Alignment via Heatmap
    Regression", ICCV 2019).

    With y the target heatmap value, d = |y - pred| and p = alpha - y (the exponent adapts per pixel:
    near 1 on the foreground, where it acts like L1 and keeps the gradient, near 2.1 on the background,
    where it acts like L2 and tolerates small errors):

        AWing(d) = omega * ln(1 + (d / epsilon)^p)     if d < theta
                   A * d - C                           otherwise
        A = omega / (1 + (theta/epsilon)^p) * p * (theta/epsilon)^(p-1) / epsilon
        C = theta * A - omega * ln(1 + (theta/epsilon)^p)      (continuity at d = theta)

    Each pixel is multiplied by the weight map 10 * M + 1 (:func:`awing_weight_map`) when
    ``use_weight_map``; per-point mean over pixels, weighted mean over points and batch (module docstring).
    pred, target (B, K, H, W) heatmap values; weight (B, K).
    """
    _check_same(pred, target, 4, "adaptive_wing_loss")
    d = (target - pred).abs()  # (B, K, H, W)
    p = alpha - target  # (B, K, H, W)
    r = theta / epsilon
    a = omega / (1.0 + r ** p) * p * r ** (p - 1.0) / epsilon
    c = theta * a - omega * torch.log1p(r ** p)
    loss = torch.where(d < theta, omega * torch.log1p((d / epsilon) ** p), a * d - c)  # (B, K, H, W)
    if use_weight_map:
        loss = loss * awing_weight_map(target)
    return _reduce_points(loss.mean(dim=(2, 3)), weight)


# ----------------------------------------------------------------------------- coordinates
def wing_loss(pred: torch.Tensor, target: torch.Tensor, w: float = 10.0, eps: float = 2.0,
              weight: torch.Tensor | None = None) -> torch.Tensor:
    """Wing loss (Feng, Kittler, Awais, Huber, Wu, "Wing Loss for Robust Facial Landmark Localisation
    with Convolutional Neural Networks", CVPR 2018).

        wing(x) = w * ln(1 + |x| / eps)     if |x| < w
                  |x| - C                    otherwise,   C = w - w * ln(1 + w / eps)

    applied to the x and y error separately and summed per point; mean (or weighted mean with
    ``weight (B, K)``) over points and batch. x is in PIXELS of the input crop: the paper's
    w = 10, eps = 2 were chosen for its 128 px crop, so recipes scale them with the crop size.
    The log part amplifies small and medium errors (gradient w / (eps + |x|)) that L1/L2 neglect.
    pred, target (B, K, 2).
    """
    _check_same(pred, target, 3, "wing_loss")
    x = (pred - target).abs()  # (B, K, 2)
    c = w - w * math.log1p(w / eps)
    per_coord = torch.where(x < w, w * torch.log1p(x / eps), x - c)  # (B, K, 2)
    return _reduce_points(per_coord.sum(dim=-1), weight)


def l1_loss(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """L1 on coordinates: |dx| + |dy| per point (pixels of the crop), mean / weighted mean over
    points and batch. pred, target (B, K, 2)."""
    _check_same(pred, target, 3, "l1_loss")
    return _reduce_points((pred - target).abs().sum(dim=-1), weight)


def l2_loss(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """L2 on coordinates: the squared Euclidean error dx^2 + dy^2 per point (no 1/2 factor; squared
    pixels of the crop), mean / weighted mean over points and batch. pred, target (B, K, 2)."""
    _check_same(pred, target, 3, "l2_loss")
    return _reduce_points((pred - target).pow(2).sum(dim=-1), weight)


# ----------------------------------------------------------------------------- features
def _standardise_channels(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """(B, C, H, W): zero mean, unit std for each channel of each image, over its H*W positions."""
    flat = x.flatten(2)  # (B, C, H*W)
    centred = flat - flat.mean(dim=-1, keepdim=True)
    # the population std written out: torch's std kernel over the last dim is several times slower on CPU,
    # and this runs on every KD pair, both sides, every step
    std = centred.pow(2).mean(dim=-1, keepdim=True).sqrt()
    return (centred / (std + eps)).view_as(x)


def feature_mse(student: torch.Tensor, teacher: torch.Tensor, normalize: str = "none") -> torch.Tensor:
    """Feature (hint) MSE between an adapted student feature and the teacher's (Romero et al.,
    "FitNets: Hints for Thin Deep Nets", ICLR 2015): mean over all B*C*H*W elements of (s - t)^2.

    normalize:
      "none"     raw features; the loss scale follows the teacher's activation scale, which differs by
                 orders of magnitude between blocks, so per-block weights must absorb it.
      "channel"  each channel of each image of BOTH features is standardised independently to zero mean
                 and unit std over its H*W positions before the MSE, as in PKD (Cao et al., "PKD: General
                 Distillation Framework for Object Detectors via Pearson Correlation Coefficient",
                 NeurIPS 2022; mmrazor's PKDLoss). Then the loss is 1 - Pearson correlation per channel
                 (times 2), bounded in [0, 4], and invariant to any positive per-channel scale and any
                 shift of either feature. Independent (not teacher-statistics) normalisation is chosen so
                 the student is asked for the teacher's spatial pattern, not its magnitude.
      "l2"       each position's channel vector of both features is divided by its L2 norm
                 (F.normalize over C), so only directions are matched; invariant to positive per-position
                 scale. (mmrazor's L2Loss with normalize=True divides the whole flattened feature of each
                 image instead; both remove the global scale.) The mean over elements makes the value
                 scale as 1/C: per position the squared distance of unit vectors is in [0, 4].
    student, teacher (B, C, H, W). The teacher should be detached by the caller (it is frozen).
    """
    _check_same(student, teacher, 4, "feature_mse")
    if normalize == "channel":
        student, teacher = _standardise_channels(student), _standardise_channels(teacher)
    elif normalize == "l2":
        student, teacher = F.normalize(student, dim=1), F.normalize(teacher, dim=1)
    elif normalize != "none":
        raise ValueError(f"feature_mse: normalize must be 'none', 'channel' or 'l2', got {normalize!r}")
    return (student - teacher).pow(2).mean()


# The losses recipes can name, by kind of output.
HEATMAP_LOSSES = {"mse": heatmap_mse, "awing": adaptive_wing_loss}
COORD_LOSSES = {"wing": wing_loss, "l1": l1_loss, "l2": l2_loss}
