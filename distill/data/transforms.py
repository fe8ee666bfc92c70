"""Geometry of one training crop: the image -> crop affine, flips, warping, heatmap targets.

Every sample is cut out of its image by ONE 2x3 affine matrix ``M`` (image px -> crop px) that
combines centring on the face box, scale, rotation, shift and the horizontal flip. The points move
by the same ``M`` (never rounded), the pixels by ``cv2.warpAffine`` with the same ``M``, and
predictions go back through ``invert_affine(M)``. Because there is exactly one matrix, the image
and its annotation cannot drift apart, and nothing is resampled twice.

Conventions (docs/architecture.md): points are float, 0-based, x first, pixel centres at integer
coordinates (pixel i covers [i - 0.5, i + 0.5)); heatmap and crop coordinates relate by
``x_hm = (x_crop + 0.5) * h / S - 0.5``. Photometric and occlusion augmentation live in ``augment.py``.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch

from distill.errors import DataError

# Network input normalisation, shared with export (the ONNX graph applies the same two numbers).
PIXEL_MEAN = 0.5
PIXEL_STD = 0.25
# Context around the face box in a crop: the crop's side is max(w, h) * (1 + margin). Training, export
# metadata and inference all fall back to this one number when a model does not say its own.
DEFAULT_MARGIN = 0.25


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 BGR (..., S, S, 3) -> float32 (..., 3, S, S) as (x / 255 - 0.5) / 0.25.

    Channel order stays BGR (as OpenCV reads it) so training, export and inference agree without a
    swap anywhere. A 2-D grayscale image is repeated to 3 channels.
    """
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    # numpy in place, not torch: per-item torch ops on a busy machine paid ~30 ms in OpenMP hand-offs
    x = np.ascontiguousarray(np.moveaxis(image, -1, -3)).astype(np.float32)  # (..., 3, S, S)
    x /= 255.0
    x -= PIXEL_MEAN
    x /= PIXEL_STD
    return torch.from_numpy(x)


# ----------------------------------------------------------------------------- boxes and the crop affine
def box_from_points(points: np.ndarray, visibility: np.ndarray | None = None) -> np.ndarray:
    """Tight (4,) float32 box x1, y1, x2, y2 around the finite points.

    With ``visibility`` only visible points count (some data sets park missing points at 0,0),
    unless fewer than two are visible, in which case all finite points are used.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    use = np.isfinite(pts).all(axis=1)
    if visibility is not None:
        visible = use & (np.asarray(visibility).reshape(-1) > 0)
        if visible.sum() >= 2:
            use = visible
    if not use.any():
        raise DataError("box_from_points: no finite points to take a box from")
    x1, y1 = pts[use].min(axis=0)
    x2, y2 = pts[use].max(axis=0)
    return np.array([x1, y1, x2, y2], dtype=np.float32)


def crop_matrix(box, size: int, margin: float = DEFAULT_MARGIN, scale: float = 1.0, rotation_deg: float = 0.0,
                shift=(0.0, 0.0), flip: bool = False) -> np.ndarray:
    """The (2, 3) float64 affine image px -> crop px for a square crop of ``size`` px.

    side = max(w, h) * (1 + margin) * scale image px around the box centre c span the whole crop:
    the square's edges [c - side/2, c + side/2] land on the crop's pixel edges [-0.5, size - 0.5],
    so c lands on (size - 1) / 2. Then, in this order:
      rotation_deg: the content turns counter-clockwise on screen (y down) about the box centre,
          like cv2.getRotationMatrix2D;
      shift: (sx, sy) as a fraction of the side: the window moves by shift * side, so the face moves
          the other way by shift * size crop px;
      flip: mirror in the crop, x -> size - 1 - x (pixel i <-> pixel size - 1 - i). The caller also
          permutes point indices with the schema's flip_perm (see flip_points).
    scale > 1 means a larger window, i.e. the face looks smaller.
    """
    x1, y1, x2, y2 = (float(v) for v in np.asarray(box, dtype=np.float64).reshape(4))
    side = max(x2 - x1, y2 - y1) * (1.0 + margin) * scale
    if not (math.isfinite(side) and side > 0):
        raise DataError(f"crop_matrix: degenerate box {[x1, y1, x2, y2]} (side {side})")
    k = size / side  # crop px per image px
    t = math.radians(rotation_deg)
    cos, sin = k * math.cos(t), k * math.sin(t)
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    sx, sy = shift
    mid = (size - 1) / 2.0
    # x_crop = k * R (x - c) + mid - shift * size, written out as one matrix
    m = np.array([[cos, sin, 0.0], [-sin, cos, 0.0]], dtype=np.float64)
    m[0, 2] = mid - sx * size - (cos * cx + sin * cy)
    m[1, 2] = mid - sy * size - (-sin * cx + cos * cy)
    if flip:
        m = np.array([[-1.0, 0.0, size - 1.0], [0.0, 1.0, 0.0]]) @ np.vstack([m, [0.0, 0.0, 1.0]])
    return m


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a (2, 3) affine to (K, 2) points. NaN stays NaN; float64 in -> float64 out, else float32."""
    pts = np.asarray(points)
    out_dtype = np.float64 if pts.dtype == np.float64 else np.float32
    m = np.asarray(matrix, dtype=np.float64)
    p = pts.astype(np.float64).reshape(-1, 2)
    out = p @ m[:, :2].T + m[:, 2]  # (K, 2)
    return out.astype(out_dtype).reshape(pts.shape)


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """(2, 3) -> (2, 3) float64 inverse: crop px -> image px for predictions."""
    m = np.asarray(matrix, dtype=np.float64)
    a = m[:, :2]
    det = a[0, 0] * a[1, 1] - a[0, 1] * a[1, 0]
    if not abs(det) > 1e-12:
        raise DataError(f"invert_affine: matrix is singular (det {det})")
    # OpenCV's closed form: ~1 us, against ~20 us for np.linalg.inv + hstack (a tenth of a small
    # model's end-to-end time per face)
    return cv2.invertAffineTransform(m)


def warp(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """Cut the (size, size) crop out of ``image`` with the image -> crop ``matrix``.

    Bilinear; OpenCV also puts pixel centres at integers, so a point moved by transform_points
    lands on the pixel that shows it. Outside the image is black (BORDER_CONSTANT 0), not
    BORDER_REPLICATE: replicated edge rows smear into streaks that look like jaw lines or hair at
    large rotations, and a constant is what inference crops near an image edge look like too.
    """
    return cv2.warpAffine(image, np.asarray(matrix, dtype=np.float64), (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def flip_points(points: np.ndarray, perm, width: int) -> np.ndarray:
    """Mirror (K, 2) points in an image ``width`` px wide and re-index them with ``perm``.

    x -> width - 1 - x, then new point i is old point perm[i], so the subject's right eye stays
    "right eye" after the mirror. Applying it twice is the identity (perm is an involution).
    """
    pts = np.asarray(points)
    mirrored = pts.astype(np.float64, copy=True)
    mirrored[..., 0] = (width - 1) - mirrored[..., 0]
    return mirrored[..., list(perm), :].astype(pts.dtype if pts.dtype.kind == "f" else np.float32)


# ----------------------------------------------------------------------------- heatmap targets
def heatmap_targets(points_crop: np.ndarray, visibility: np.ndarray | None, crop_size: int, heatmap_size: int,
                    sigma: float, hidden_weight: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian heatmaps at float centres -> (heatmaps (K, h, h) float32, weight (K,) float32).

    H_k(x, y) = exp(-((x - x_k)^2 + (y - y_k)^2) / (2 sigma^2)), amplitude 1 at the true centre
    (x_k, y_k) = (p + 0.5) * h / S - 0.5 in heatmap px, sigma in heatmap px (Newell et al., Stacked
    Hourglass, 2016; float centres as in DARK, Zhang et al., 2020, so the target is not quantised).
    A centre outside [0, h - 1] (or NaN, unlabelled) gives an all-zero map and weight 0.
    Hidden points (visibility 0) keep their Gaussian -- SynthFace knows where they are and real sets
    annotate an estimate -- and get weight ``hidden_weight`` (1.0: trained like visible ones).
    """
    h = int(heatmap_size)
    pts = np.asarray(points_crop, dtype=np.float64).reshape(-1, 2)
    centres = (pts + 0.5) * (h / crop_size) - 0.5  # (K, 2) heatmap px
    inside = np.isfinite(centres).all(axis=1) & (centres >= 0).all(axis=1) & (centres <= h - 1).all(axis=1)
    centres = np.where(inside[:, None], centres, 0.0)
    grid = np.arange(h, dtype=np.float64)
    # separable: the 2-D Gaussian is the outer product of two 1-D ones
    gx = np.exp(-((grid[None, :] - centres[:, :1]) ** 2) / (2.0 * sigma ** 2)).astype(np.float32)  # (K, w)
    gy = np.exp(-((grid[None, :] - centres[:, 1:]) ** 2) / (2.0 * sigma ** 2)).astype(np.float32)  # (K, h)
    heatmaps = gy[:, :, None] * gx[:, None, :]  # (K, h, w) float32
    heatmaps[~inside] = 0.0
    weight = inside.astype(np.float32)
    if visibility is not None:
        hidden = np.asarray(visibility).reshape(-1) <= 0
        weight = np.where(hidden, weight * np.float32(hidden_weight), weight).astype(np.float32)
    return heatmaps, weight

