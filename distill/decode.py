"""Heatmap -> sub-pixel coordinates, and the coordinate frames around it.

Every decoder here is plain tensor arithmetic: argmax, index arithmetic, gather, where, clamp. No
Python branch looks at tensor values, nothing calls ``.item()`` or numpy, so ``decode_heatmaps`` traces
into TorchScript and ONNX (opset 17) and exported models decode inside the graph.

Coordinates are heatmap pixels, x first, pixel centres at integers. Frames (docs/architecture.md):
    x_crop = (x_hm + 0.5) * S / H - 0.5          heatmap_to_crop / crop_to_heatmap
    x_crop = u * S - 0.5,  u = (x_crop + 0.5) / S  normalised_to_crop / crop_to_normalised

Decoders (accuracy on Gaussians at random sub-pixel centres: benchmarks/decoding.py):
    argmax      the integer peak: up to 0.5 px error per axis.
    quarter     argmax + 0.25 px toward the higher neighbour in x and in y (Newell et al. 2016): still
                quantised, at best halves the error.
    dark        distribution-aware decoding (Zhang, Zhu, Dai, Ye, Zhu, "Distribution-Aware Coordinate
                Representation for Human Pose Estimation", CVPR 2020): smooth, log, one Newton step.
    softargmax  the expectation of (x, y) under softmax(beta * h) (integral regression, Sun et al.,
                ECCV 2018); differentiable, so it can sit inside a loss.
"""

from __future__ import annotations

import math

import numpy as np
import torch

DECODERS = ("dark", "argmax", "quarter", "softargmax")


# ----------------------------------------------------------------------------- frames
def _size_xy(size, like):
    """An int -> the same scale for x and y; a (width, height) pair -> per-axis, typed like ``like``."""
    if isinstance(size, (int, float)):
        return float(size)
    w, h = size
    if isinstance(like, torch.Tensor):
        return torch.tensor([float(w), float(h)], dtype=like.dtype, device=like.device)
    return np.array([w, h], dtype=np.asarray(like).dtype)


def heatmap_to_crop(points_hm, heatmap_size, crop_size):
    """(..., 2) heatmap pixels -> crop pixels: x_crop = (x_hm + 0.5) * S / H - 0.5.

    Sizes are an int (square) or a (width, height) pair; works on tensors and numpy arrays.
    """
    return (points_hm + 0.5) * (_size_xy(crop_size, points_hm) / _size_xy(heatmap_size, points_hm)) - 0.5


def crop_to_heatmap(points_crop, crop_size, heatmap_size):
    """(..., 2) crop pixels -> heatmap pixels: x_hm = (x_crop + 0.5) * H / S - 0.5."""
    return (points_crop + 0.5) * (_size_xy(heatmap_size, points_crop) / _size_xy(crop_size, points_crop)) - 0.5


def normalised_to_crop(u, crop_size):
    """(..., 2) regressor output u in [0, 1] across the crop -> crop pixels: x_crop = u * S - 0.5."""
    return u * _size_xy(crop_size, u) - 0.5


def crop_to_normalised(points_crop, crop_size):
    """(..., 2) crop pixels -> u = (x_crop + 0.5) / S, the regressor's target."""
    return (points_crop + 0.5) / _size_xy(crop_size, points_crop)


# ----------------------------------------------------------------------------- pieces
def gaussian_kernel(sigma: float, dtype=torch.float32, device=None) -> torch.Tensor:
    """(1, 1, k, k) normalised Gaussian, k = 2 * ceil(3 * sigma) + 1 (odd, ~6 sigma + 1)."""
    radius = max(1, math.ceil(3.0 * sigma))
    r = torch.arange(-radius, radius + 1, dtype=dtype, device=device)  # (k,)
    g = torch.exp(-0.5 * (r / sigma) ** 2)
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]  # (1, 1, k, k)


def _gather(flat: torch.Tensor, x: torch.Tensor, y: torch.Tensor, width: int) -> torch.Tensor:
    """Values of flat (B, K, H*W) at integer (x, y) (B, K) that are already inside the map."""
    return torch.gather(flat, 2, (y * width + x).unsqueeze(-1)).squeeze(-1)  # (B, K)


def _argmax(heatmaps: torch.Tensor):
    """(B, K, H, W) -> integer x, y (B, K) int64 and the peak value (B, K)."""
    width = heatmaps.shape[-1]
    peak, idx = heatmaps.flatten(2).max(dim=-1)  # (B, K), (B, K)
    return idx % width, torch.div(idx, width, rounding_mode="floor"), peak


def _quarter_offset(heatmaps: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """0.25 px toward the higher neighbour per axis; 0 on the border, where one neighbour is missing."""
    h, w = heatmaps.shape[-2:]
    flat = heatmaps.flatten(2)  # (B, K, H*W)
    xl, xr = (x - 1).clamp(0, w - 1), (x + 1).clamp(0, w - 1)
    yu, yd = (y - 1).clamp(0, h - 1), (y + 1).clamp(0, h - 1)
    dx = _gather(flat, xr, y, w) - _gather(flat, xl, y, w)
    dy = _gather(flat, x, yd, w) - _gather(flat, x, yu, w)
    inside_x = ((x > 0) & (x < w - 1)).to(heatmaps.dtype)
    inside_y = ((y > 0) & (y < h - 1)).to(heatmaps.dtype)
    return 0.25 * torch.stack([torch.sign(dx) * inside_x, torch.sign(dy) * inside_y], dim=-1)  # (B, K, 2)


DARK_DET_FLOOR = 0.01  # see _dark_offset


# (9, 5): finite differences on a flattened 3x3 window (index 3 * row(y) + col(x): 1 up, 3 left,
# 4 centre, 5 right, 7 down) -> columns gx, gy, hxx, hyy, hxy. Built at import, outside any trace.
_DARK_STENCIL = torch.tensor([
    # gx    gy    hxx   hyy   hxy
    [0.0, 0.0, 0.0, 0.0, 0.25],    # 0 up-left
    [0.0, -0.5, 0.0, 1.0, 0.0],    # 1 up
    [0.0, 0.0, 0.0, 0.0, -0.25],   # 2 up-right
    [-0.5, 0.0, 1.0, 0.0, 0.0],    # 3 left
    [0.0, 0.0, -2.0, -2.0, 0.0],   # 4 centre
    [0.5, 0.0, 1.0, 0.0, 0.0],     # 5 right
    [0.0, 0.0, 0.0, 0.0, -0.25],   # 6 down-left
    [0.0, 0.5, 0.0, 1.0, 0.0],     # 7 down
    [0.0, 0.0, 0.0, 0.0, 0.25],    # 8 down-right
], dtype=torch.float64)


def _dark_window(sigma: float, dtype, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Constants of the windowed DARK step for smoothing sigma (radius r = ceil(3 sigma), n = 2r + 3):

    offsets (n,) int64, -(r+1)..r+1: the raw window around the peak that the 3x3 smoothed one needs;
    blur (n, 3): column j holds the 1-D Gaussian taps at rows j..j+2r, so blur.T @ window @ blur is the
    separable Gaussian of the window, valid part only -> (3, 3), rows/columns = peak -1, 0, +1;
    stencil (9, 5): finite differences on the flattened 3x3 log window -> gx, gy, hxx, hyy, hxy.
    """
    g = gaussian_kernel(sigma, torch.float64)[0, 0].sum(0)  # (2r+1,) the 1-D taps (the 2-D kernel is g g^T)
    r = (g.numel() - 1) // 2
    blur = torch.zeros(2 * r + 3, 3, dtype=torch.float64)
    for j in range(3):
        blur[j:j + 2 * r + 1, j] = g
    offsets = torch.arange(-(r + 1), r + 2, device=device)
    return offsets, blur.to(dtype=dtype, device=device), _DARK_STENCIL.to(dtype=dtype, device=device)


def _dark_offset(heatmaps: torch.Tensor, x: torch.Tensor, y: torch.Tensor, peak: torch.Tensor,
                 sigma: float) -> torch.Tensor:
    """DARK's Newton step from the integer peak (x, y) on the log of the smoothed heatmap.

    A Gaussian's log is a quadratic, so one step x <- x - H^-1 g lands on its centre. The smoothing
    makes a network's peaky output more Gaussian. Only the 3x3 smoothed values around the peak enter
    the step, so only they are computed: the raw (2r+3)^2 window around the peak (edge pixels
    repeated past the border, as a replicate-padded convolution sees them) is gathered and blurred
    separably. Smoothing whole maps (pad, 7x7 depthwise conv, log of every pixel) cost a quarter of a
    small student's ONNX Runtime time; the window is ~1/3 of the pixels of a 16x16 map and two
    small matmuls. The window is rescaled so its smoothed maximum equals the raw peak, which keeps
    the log's floor (1e-10) relative to the peak for every map. (Whole-map smoothing scaled by the
    whole map's smoothed maximum instead. The scale cancels in the derivatives unless the floor binds,
    i.e. unless a smoothed value next to the peak is <= ~0: non-negative maps decode the same to 1e-5
    px, and so did four trained checkpoints' test sets (NME equal to 1e-8); on signed maps with
    non-positive values beside the peak, low-confidence points can differ by up to ~1 px.) Where the 2x2 Hessian is not negative
    definite the step falls back to the 1-D step -g/h on each axis that curves down; an axis whose
    peak sits on the border gets no offset (its outer neighbour does not exist). Offsets are clamped
    to [-1, 1].
    """
    b, k, h, w = heatmaps.shape
    offsets, blur, stencil = _dark_window(sigma, heatmaps.dtype, heatmaps.device)
    n = offsets.numel()
    xs = (x.unsqueeze(-1) + offsets).clamp(0, w - 1)  # (B, K, n)
    ys = (y.unsqueeze(-1) + offsets).clamp(0, h - 1)
    index = (ys.unsqueeze(-1) * w + xs.unsqueeze(-2)).reshape(b, k, n * n)  # (B, K, n*n) row-major window
    window = torch.gather(heatmaps.reshape(b, k, h * w), 2, index).reshape(b, k, n, n)
    smooth = blur.t() @ window @ blur  # (B, K, 3, 3)
    smooth = smooth.reshape(b, k, 9)
    smooth = smooth * (peak / smooth.amax(dim=-1).clamp_min(1e-10)).unsqueeze(-1)
    logwin = smooth.clamp_min(1e-10).log()  # (B, K, 9)
    gx, gy, hxx, hyy, hxy = (logwin @ stencil).unbind(-1)  # (B, K) each

    inside_x = (x > 0) & (x < w - 1)
    inside_y = (y > 0) & (y < h - 1)
    det = hxx * hyy - hxy * hxy
    full = inside_x & inside_y & (hxx < 0) & (det > 0)  # negative definite Hessian at an inner peak
    # A nearly flat peak (det -> 0) turns float noise into large steps: ONNX Runtime and torch then
    # disagree by > 1e-3 px on low-confidence points. The floor caps that gain; it is far below a
    # real Gaussian's det (1 / sigma_eff^4: 0.25 for sigma 1 smoothed by sigma 1, 0.04 for sigma 2).
    det = torch.where(full, det.clamp_min(DARK_DET_FLOOR), torch.ones_like(det))  # ones: the unused branch
    ox2 = -(hyy * gx - hxy * gy) / det  # -H^-1 g, written out for 2x2
    oy2 = -(hxx * gy - hxy * gx) / det
    ok_x, ok_y = inside_x & (hxx < 0), inside_y & (hyy < 0)
    # the 1-D steps get the same floor on their curvature (sqrt of the det floor)
    h_floor = DARK_DET_FLOOR ** 0.5
    ox1 = torch.where(ok_x, -gx / torch.where(ok_x, hxx.clamp(max=-h_floor), -torch.ones_like(hxx)), torch.zeros_like(gx))
    oy1 = torch.where(ok_y, -gy / torch.where(ok_y, hyy.clamp(max=-h_floor), -torch.ones_like(hyy)), torch.zeros_like(gy))
    offset = torch.stack([torch.where(full, ox2, ox1), torch.where(full, oy2, oy1)], dim=-1)  # (B, K, 2)
    return offset.clamp(-1.0, 1.0)


def _softargmax(heatmaps: torch.Tensor, beta: float) -> torch.Tensor:
    """E[(x, y)] under p = softmax(beta * h) over all H*W pixels.

    beta is an inverse temperature: large enough that the flat background (H*W pixels of value ~0,
    each with weight exp(0) = 1) carries no mass next to the peak (weight ~exp(beta)), small enough that
    the peak stays several pixels wide, since the expectation of a sub-pixel-wide sampled bump snaps to
    the grid. For unit-peak heatmaps with sigma 1-2 px on 16-64 px maps, beta = 16 balances the two
    (benchmarks/decoding.py: 0.02-0.22 px on clean Gaussians); below ~12 the background pulls 64 px
    maps toward their centre. It stays well behind DARK for decoding: use it where a gradient is needed.
    """
    b, k, h, w = heatmaps.shape
    p = torch.softmax(beta * heatmaps.reshape(b, k, h * w), dim=-1).reshape(b, k, h, w)
    xs = torch.arange(w, dtype=heatmaps.dtype, device=heatmaps.device)
    ys = torch.arange(h, dtype=heatmaps.dtype, device=heatmaps.device)
    ex = (p.sum(dim=2) * xs).sum(dim=-1)  # (B, K): marginal over rows, then expectation
    ey = (p.sum(dim=3) * ys).sum(dim=-1)
    return torch.stack([ex, ey], dim=-1)  # (B, K, 2)


# ----------------------------------------------------------------------------- public
def decode_heatmaps(heatmaps: torch.Tensor, method: str = "dark", return_confidence: bool = False,
                    dark_sigma: float = 1.0, softargmax_beta: float = 16.0):
    """(B, K, H, W) heatmaps -> (B, K, 2) float coordinates in heatmap pixels (x first).

    method: "dark" (default), "argmax", "quarter" or "softargmax" (module docstring). ``dark_sigma``
    is the smoothing Gaussian's sigma in heatmap pixels; ``softargmax_beta`` the inverse temperature.
    With ``return_confidence``: ``(points, confidence (B, K))``, confidence = the raw heatmap maximum of
    each point (before any smoothing). Results always lie inside [0, W-1] x [0, H-1].
    """
    if heatmaps.dim() != 4:
        raise ValueError(f"decode_heatmaps expects (B, K, H, W), got shape {tuple(heatmaps.shape)}")
    if method not in DECODERS:
        raise ValueError(f"unknown decode method {method!r}: use one of {', '.join(DECODERS)}")
    x, y, peak = _argmax(heatmaps)  # (B, K) each
    points = torch.stack([x, y], dim=-1).to(heatmaps.dtype)  # (B, K, 2)
    if method == "quarter":
        points = points + _quarter_offset(heatmaps, x, y)
    elif method == "dark":
        points = points + _dark_offset(heatmaps, x, y, peak, dark_sigma)
    elif method == "softargmax":
        points = _softargmax(heatmaps, softargmax_beta)
    return (points, peak) if return_confidence else points
