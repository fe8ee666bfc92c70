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

import functools
import math
import warnings

import numpy as np
import torch

DECODERS = ("dark", "argmax", "quarter", "softargmax")

# Tracing warns wherever a size becomes an int or a tensor is made from constants: here that is the
# point (the batch is the only dynamic size of an exported decoder), so this module's warnings are noise.
warnings.filterwarnings("ignore", category=torch.jit.TracerWarning, module=__name__)


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


def _map_shape(heatmaps: torch.Tensor) -> tuple[int, int, int]:
    """(K, H, W) as Python ints. Under tracing they become constants of the graph, so only the batch
    stays dynamic: sizes read from the tensor at run time cost Shape / Gather / Concat nodes."""
    return tuple(int(s) for s in heatmaps.shape[1:])


def _gather(flat: torch.Tensor, x: torch.Tensor, y: torch.Tensor, width: int) -> torch.Tensor:
    """Values of flat (B, K, H*W) at integer (x, y) (B, K) that are already inside the map."""
    return torch.gather(flat, 2, (y * width + x).unsqueeze(-1)).squeeze(-1)  # (B, K)


def _argmax(heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, K, H, W) -> the integer peak xy (B, K, 2) as floats of the heatmaps' dtype (x first), and the
    peak value (B, K).

    The index arithmetic runs in floating point on (B, K) tensors: ONNX Runtime's int64 elementwise
    kernels, and any elementwise op that broadcasts over a short last axis, run an element or a few at
    a time (a broadcast int64 Add over a batch of windows cost more than the window's matmul). Exact for
    maps up to 1024 px a side in float32: floor(i / W) errs only when i / W is within W * 2^-24 of an integer.
    """
    k, h, w = _map_shape(heatmaps)
    flat = heatmaps.reshape(-1, k, h * w)
    idx = flat.argmax(dim=-1, keepdim=True)  # (B, K, 1) the first maximum, as max() picks it
    # the peak gathered at idx, not a second pass over every map (ReduceMax cost half of ArgMax)
    peak = flat.gather(-1, idx).squeeze(-1)  # (B, K)
    i = idx.squeeze(-1).to(heatmaps.dtype)
    y = torch.floor(i / w)
    return torch.stack([i - y * w, y], dim=-1), peak


def _quarter_offset(heatmaps: torch.Tensor, xy: torch.Tensor) -> torch.Tensor:
    """0.25 px toward the higher neighbour per axis; 0 on the border, where one neighbour is missing."""
    k, h, w = _map_shape(heatmaps)
    x, y = xy.long().unbind(-1)
    flat = heatmaps.reshape(-1, k, h * w)  # (B, K, H*W)
    xl, xr = (x - 1).clamp(0, w - 1), (x + 1).clamp(0, w - 1)
    yu, yd = (y - 1).clamp(0, h - 1), (y + 1).clamp(0, h - 1)
    dx = _gather(flat, xr, y, w) - _gather(flat, xl, y, w)
    dy = _gather(flat, x, yd, w) - _gather(flat, x, yu, w)
    inside_x = ((x > 0) & (x < w - 1)).to(heatmaps.dtype)
    inside_y = ((y > 0) & (y < h - 1)).to(heatmaps.dtype)
    return 0.25 * torch.stack([torch.sign(dx) * inside_x, torch.sign(dy) * inside_y], dim=-1)  # (B, K, 2)


DARK_DET_FLOOR = 0.01  # see _dark_offset


# (9, 10): finite differences on a flattened 3x3 window (index 3 * row(y) + col(x): 1 up, 3 left, 4 centre,
# 5 right, 7 down) -> columns (gx, gy), (gy, gx), (hxx, hyy), (hyy, hxx), (hxy, hxy): each pair, its swap
# and hxy twice, so the 2x2 Newton step is elementwise arithmetic between (B, K, 2) tensors of one shape.
_GX = np.array([0, 0, 0, -0.5, 0, 0.5, 0, 0, 0])
_GY = np.array([0, -0.5, 0, 0, 0, 0, 0, 0.5, 0])
_HXX = np.array([0, 0, 0, 1.0, -2.0, 1.0, 0, 0, 0])
_HYY = np.array([0, 1.0, 0, 0, -2.0, 0, 0, 1.0, 0])
_HXY = np.array([0.25, 0, -0.25, 0, 0, 0, -0.25, 0, 0.25])
_DARK_STENCIL = np.stack([_GX, _GY, _GY, _GX, _HXX, _HYY, _HYY, _HXX, _HXY, _HXY], axis=1)  # (9, 10)


@functools.lru_cache(maxsize=32)
def _dark_constants(sigma: float, h: int, w: int) -> dict[str, np.ndarray]:
    """Constants of the windowed DARK step for smoothing sigma on H x W maps (radius r = ceil(3 sigma),
    window side n = 2r + 3: the raw pixels the 3x3 smoothed values around the peak need). numpy, so that
    a trace records constants, not their making.

    lines (2, 2n) and offsets (2n,): xy @ lines + offsets = the window's rows y-r-1..y+r+1, then its
        columns x-r-1..x+r+1; upper (2n,): their last valid value (H-1 or W-1), for the replicate clamp;
    spread (2n, n*n): rows @ spread = row * W + column for every window pixel, row-major (a matmul, so
        the outer sum of rows and columns needs no broadcasting op);
    blur (n*n, 9) = kron(b, b), column j of b (n, 3) holding the 1-D Gaussian taps at rows j..j+2r:
        window @ blur = the separable Gaussian of the window, valid part only, flattened (3, 3);
    stencil (9, 10): _DARK_STENCIL; swap (2, 2): v @ swap = v with x and y exchanged; last (2,): W-1, H-1.
    """
    g = gaussian_kernel(sigma, torch.float64)[0, 0].sum(0).numpy()  # (2r+1,) the 1-D taps (2-D = g g^T)
    r = (g.size - 1) // 2
    n = 2 * r + 3
    b = np.zeros((n, 3))
    for j in range(3):
        b[j:j + 2 * r + 1, j] = g
    lines = np.zeros((2, 2 * n))
    lines[1, :n] = 1.0  # y -> rows
    lines[0, n:] = 1.0  # x -> columns
    spread = np.zeros((2 * n, n * n))
    for i in range(n):
        spread[i, i * n:(i + 1) * n] = w
        spread[n + i, i::n] = 1.0
    return dict(lines=lines, offsets=np.tile(np.arange(-(r + 1), r + 2, dtype=np.float64), 2),
                upper=np.repeat([h - 1.0, w - 1.0], n), spread=spread, blur=np.kron(b, b), stencil=_DARK_STENCIL,
                swap=np.array([[0.0, 1.0], [1.0, 0.0]]), last=np.array([w - 1.0, h - 1.0]))


def _dark_offset(heatmaps: torch.Tensor, xy: torch.Tensor, peak: torch.Tensor, sigma: float) -> torch.Tensor:
    """DARK's Newton step from the integer peak xy (B, K, 2; integer-valued floats) on the log of the
    smoothed heatmap.

    A Gaussian's log is a quadratic, so one step x <- x - H^-1 g lands on its centre. The smoothing
    makes a network's peaky output more Gaussian. Only the 3x3 smoothed values around the peak enter
    the step, so only they are computed: the raw (2r+3)^2 window around the peak (edge pixels
    repeated past the border, as a replicate-padded convolution sees them) is gathered and blurred by
    one matmul. Smoothing whole maps (pad, 7x7 depthwise conv, log of every pixel) cost a quarter of a
    small student's ONNX Runtime time; the window is ~1/3 of the pixels of a 16x16 map. The window is
    rescaled so its smoothed maximum equals the raw peak, which keeps the log's floor (1e-10) relative
    to the peak for every map. (Whole-map smoothing scaled by the whole map's smoothed maximum instead.
    The scale cancels in the derivatives unless the floor binds, i.e. unless a smoothed value next to
    the peak is <= ~0: non-negative maps decode the same to 1e-5 px, and so did four trained
    checkpoints' test sets (NME equal to 1e-8); on signed maps with non-positive values beside the peak,
    low-confidence points can differ by up to ~1 px.) Where the 2x2 Hessian is not negative definite
    the step falls back to the 1-D step -g/h on each axis that curves down; an axis whose peak sits on
    the border gets no offset (its outer neighbour does not exist). Offsets are clamped to [-1, 1].

    Written for ONNX Runtime (benchmarks/RESULTS.md: about half the time of the previous version, at batch
    1 and at batch 32): sizes and matrices are constants of the graph, index arithmetic is float and
    done by matmuls, and elementwise ops never broadcast over the short last axis (ORT runs those pair by
    pair), so x and y travel together as (B, K, 2) tensors of one shape.
    """
    k, h, w = _map_shape(heatmaps)
    c = {name: torch.from_numpy(v).to(heatmaps) for name, v in _dark_constants(float(sigma), h, w).items()}
    lines = xy @ c["lines"] + c["offsets"]  # (B, K, 2n): the window's rows, then its columns
    # replicate: clamp into the map (one scalar clamp when the map is square)
    lines = lines.clamp(0, w - 1) if h == w else torch.minimum(lines.clamp_min(0), c["upper"])
    index = (lines @ c["spread"]).long()  # (B, K, n*n) flat indices of the row-major window
    window = torch.gather(heatmaps.reshape(-1, k, h * w), 2, index)  # (B, K, n*n)
    smooth = window @ c["blur"]  # (B, K, 9)
    smax = smooth.amax(dim=-1, keepdim=True).clamp_min(1e-10)
    logwin = (smooth * (peak.unsqueeze(-1) / smax)).clamp_min(1e-10).log()  # (B, K, 9)
    g, g_swap, hd, hd_swap, hxy = (logwin @ c["stencil"]).split(2, dim=-1)  # (B, K, 2) each

    # both neighbours exist on that axis
    inside = (xy > 0) & ((xy < w - 1) if h == w else (xy < c["last"]))
    ok = inside & (hd < 0)                                  # (B, K, 2): the axes whose 1-D step is defined
    det = hd * hd_swap - hxy * hxy                          # (B, K, 2): hxx hyy - hxy^2 in both columns
    # negative definite Hessian at an inner peak: both axes ok (det > 0 is the same in both columns);
    # "both" as ok * ok swapped (a 2x2 matmul), which keeps the shape (B, K, 2): a (B, K, 1) mask would
    # make the Where below broadcast over a last axis of 2, which ONNX Runtime runs pair by pair
    ok2 = (ok & (det > 0)).to(xy.dtype)
    full = (ok2 * (ok2 @ c["swap"])) > 0                   # (B, K, 2), the same in both columns
    # A nearly flat peak (det -> 0) turns float noise into large steps: ONNX Runtime and torch then
    # disagree by > 1e-3 px on low-confidence points. The floor caps that gain; it is far below a
    # real Gaussian's det (1 / sigma_eff^4: 0.25 for sigma 1 smoothed by sigma 1, 0.04 for sigma 2).
    # Where the step is not taken the floor only keeps the unused branch finite.
    step2 = (hxy * g_swap - hd_swap * g) / det.clamp_min(DARK_DET_FLOOR)  # -H^-1 g, written out for 2x2
    # the 1-D steps get the same floor on their curvature (sqrt of the det floor)
    step1 = torch.where(ok, -g / hd.clamp(max=-DARK_DET_FLOOR ** 0.5), 0.0)
    return torch.where(full, step2, step1).clamp(-1.0, 1.0)  # (B, K, 2)


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
    if heatmaps.dtype in (torch.float16, torch.bfloat16):
        heatmaps = heatmaps.float()  # the index arithmetic is float: 8-11 bits of mantissa cannot hold it
    points, peak = _argmax(heatmaps)  # (B, K, 2) integer-valued floats, (B, K)
    if method == "quarter":
        points = points + _quarter_offset(heatmaps, points)
    elif method == "dark":
        points = points + _dark_offset(heatmaps, points, peak, dark_sigma)
    elif method == "softargmax":
        points = _softargmax(heatmaps, softargmax_beta)
    return (points, peak) if return_confidence else points


def output_to_crop(output, output_kind: str, crop_size: int, method: str = "dark", heatmap_size=None):
    """A landmark model's raw output -> (points (B, K, 2) crop px, confidence (B, K) or None).

    The one place where a model's output becomes crop pixels (training's metrics, the cascade's stages,
    the exported graph, evaluation all go through it):
        "heatmap": (B, K, h, w) -> ``decode_heatmaps(method)`` -> :func:`heatmap_to_crop`; confidence =
                   the heatmap peak.
        "coords":  (B, K, 2) normalised u, or a (coords, confidence) pair -> :func:`normalised_to_crop`;
                   confidence None when the model gives none.
    heatmap_size: (w, h) of the maps; default read off ``output`` as Python ints, which a traced graph
    holds as constants (only the batch stays dynamic).
    """
    if output_kind == "heatmap":
        points, confidence = decode_heatmaps(output, method=method, return_confidence=True)  # heatmap px
        size = (int(output.shape[-1]), int(output.shape[-2])) if heatmap_size is None else heatmap_size
        return heatmap_to_crop(points, size, crop_size), confidence
    if output_kind != "coords":
        raise ValueError(f"unknown output kind {output_kind!r}: expected 'heatmap' or 'coords'")
    coords, confidence = output if isinstance(output, tuple) else (output, None)
    return normalised_to_crop(coords, crop_size), confidence
