"""Coarse-to-fine cascade: a 5-point aligner, a similarity to a canonical template, a second stage.

    face crop (B,3,S,S) -> resize to 64 -> stage 1 -> 5 points -> similarity M to CANONICAL_FIVE
                        -> aligned crop (B,3,S2,S2) = warp(crop, M) -> stage 2 -> K points
                        -> M^-1 -> K points in the input crop

Stage 1 (a tiny 5-point model, trained with heavy augmentation) removes most of the box's error in
position, scale and in-plane rotation, so stage 2 always sees an upright face of the same size at
the same place and spends its capacity on shape. Stage 2 is trained on crops aligned by stage 1's
OWN predictions (``aligned_crop_matrix`` of stage-1 outputs, not of ground truth), so it learns the
residual misalignment it will meet at test time.

:class:`Cascade` is the whole thing as one ``nn.Module`` (plain tensor arithmetic and grid_sample,
so it exports as one graph); it behaves like a coordinate model of its input crop (``output_kind =
"coords"``). :func:`cascade_predict` is the same pipeline in numpy/OpenCV over a full image and a
face box, with any two callables as stages (torch models, ONNX sessions).
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from distill.data.transforms import crop_matrix, to_tensor, warp
from distill.decode import output_to_crop
from distill.errors import DataError

# The 5-point template (left eye centre, right eye centre, nose tip, left mouth corner, right mouth
# corner; "left" = image left) in normalised crop coordinates u = (x + 0.5) / S, so it serves any
# crop size S (pixels: u * S - 0.5, see `template`). Derived from the 3D mean face
# (distill/assets/mean_face_68_3d.txt) seen frontally: eye centres = mean of 36-41 / 42-47, nose
# tip 30, mouth corners 48 / 54, mirrored to be exactly symmetric, in a square of 200 mm centred
# on the 68 points' box. The 68 points span 145 x 140 mm of it, so the aligned crop keeps a margin
# of about 14% on each side for the jaw at large yaw.
CANONICAL_FIVE = np.array([
    [0.33569, 0.27166],
    [0.66431, 0.27166],
    [0.50000, 0.42222],
    [0.35572, 0.60602],
    [0.64428, 0.60602],
], dtype=np.float32)


def template(size: int) -> np.ndarray:
    """(5, 2) CANONICAL_FIVE in pixels of a size x size crop."""
    return CANONICAL_FIVE * size - 0.5


# ----------------------------------------------------------------------------- similarity

def similarity_transform(src, dst):
    """Least-squares similarity (rotation, uniform scale, translation; no reflection) src -> dst.

    src: (..., N, 2), dst: (..., N, 2) or (N, 2); numpy arrays or torch tensors (batched over the
    leading dims). Returns (..., 2, 3) M with dst ~ M @ [src; 1].

    Umeyama's solution specialised to 2D: with centred points s, d the optimal linear part is
    [[a, -b], [b, a]], a = sum(s . d) / sum|s|^2, b = sum(s_x d_y - s_y d_x) / sum|s|^2, and
    t = mean(d) - A mean(s). That form has det = a^2 + b^2 >= 0, so it never reflects, and it
    needs no SVD (which ONNX lacks).
    """
    xp = torch if isinstance(src, torch.Tensor) else np
    mu_s, mu_d = src.mean(-2, keepdims=True), dst.mean(-2, keepdims=True)    # (..., 1, 2)
    s, d = src - mu_s, dst - mu_d                                            # (..., N, 2)
    denom = (s * s).sum((-2, -1))                                            # (...,)
    if xp is np and np.any(denom < 1e-12):
        raise DataError("similarity_transform: source points coincide (no scale to estimate)")
    denom = denom.clamp_min(1e-12) if xp is torch else denom
    a = (s * d).sum((-2, -1)) / denom                                        # (...,)
    b = (s[..., 0] * d[..., 1] - s[..., 1] * d[..., 0]).sum(-1) / denom      # (...,)
    mx, my = mu_s[..., 0, 0], mu_s[..., 0, 1]
    tx = mu_d[..., 0, 0] - (a * mx - b * my)
    ty = mu_d[..., 0, 1] - (b * mx + a * my)
    row0 = xp.stack([a, -b, tx], -1)
    row1 = xp.stack([b, a, ty], -1)
    return xp.stack([row0, row1], -2)                                        # (..., 2, 3)


def invert_similarity(m):
    """(..., 2, 3) similarity -> its inverse (..., 2, 3); numpy or torch."""
    xp = torch if isinstance(m, torch.Tensor) else np
    a, b, tx, ty = m[..., 0, 0], m[..., 1, 0], m[..., 0, 2], m[..., 1, 2]
    n = a * a + b * b
    ia, ib = a / n, -b / n                                  # inverse linear part [[ia, -ib], [ib, ia]]
    row0 = xp.stack([ia, -ib, -(ia * tx - ib * ty)], -1)
    row1 = xp.stack([ib, ia, -(ib * tx + ia * ty)], -1)
    return xp.stack([row0, row1], -2)


def apply_affine(m, points):
    """(..., 2, 3) matrices applied to (..., K, 2) points -> (..., K, 2); numpy or torch."""
    return points @ m[..., :2].swapaxes(-1, -2) + m[..., None, :, 2]


def aligned_crop_matrix(five_points, size: int) -> np.ndarray:
    """(5, 2) or (N, 5, 2) five points in image pixels -> (2, 3) / (N, 2, 3) image -> aligned crop.

    Warp with ``distill.data.transforms.warp(image, M, size)``; train stage 2 on these crops built from
    stage 1's own predictions, and map its outputs back with ``invert_similarity(M)``.
    """
    return similarity_transform(np.asarray(five_points, dtype=np.float64), template(size).astype(np.float64))


# ----------------------------------------------------------------------------- the module

class Cascade(nn.Module):
    """stage1 (5 points) + similarity alignment + stage2 (K points), as one coordinate model.

    forward(x): x (B, 3, S, S) normalised face crop (the library's network input), S = input_size
    -> (B, K, 2) normalised coordinates u = (x_crop + 0.5) / S of that crop, like a regressor.
    Stage 1 sees x resized to its own input size; stage 2 sees a stage2_size crop aligned to
    CANONICAL_FIVE. pad_value fills what the aligned crop takes from outside x (in network-input
    units: the default -2.0 is black, (0 / 255 - 0.5) / 0.25, like transforms.warp's border).
    """

    output_kind = "coords"

    def __init__(self, stage1: nn.Module, stage2: nn.Module, stage2_size: int | None = None,
                 input_size: int | None = None, pad_value: float = -2.0, decode: str = "dark"):
        super().__init__()
        self.stage1, self.stage2 = stage1, stage2
        self.stage1_size = int(stage1.input_size)
        self.stage2_size = int(stage2_size or stage2.input_size)
        self.input_size = int(input_size or self.stage2_size)
        self.num_points = int(stage2.num_points)
        self.pad_value = float(pad_value)
        self.decode = decode
        self.config = {"family": "cascade", "stage2_size": self.stage2_size, "input_size": self.input_size,
                       "pad_value": self.pad_value, "decode": decode}
        self.register_buffer("template", torch.from_numpy(template(self.stage2_size)), persistent=False)
        q = torch.arange(self.stage2_size, dtype=torch.float32)
        qy, qx = torch.meshgrid(q, q, indexing="ij")
        self.register_buffer("grid_px", torch.stack([qx, qy], -1).reshape(-1, 2), persistent=False)  # (S2*S2, 2)

    def _stage1_input(self, x: torch.Tensor) -> torch.Tensor:
        s, s1 = self.input_size, self.stage1_size
        if s == s1:
            return x
        if s % s1 == 0:
            return F.avg_pool2d(x, s // s1)          # exact box filter, no aliasing
        return F.interpolate(x, size=(s1, s1), mode="bilinear", align_corners=False)

    def align(self, x: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
        """Warp x (B, 3, S, S) by matrix (B, 2, 3) input px -> aligned px into (B, 3, S2, S2)."""
        b, s = x.shape[0], self.input_size
        src = apply_affine(invert_similarity(matrix), self.grid_px.expand(b, -1, -1))  # (B, S2*S2, 2) input px
        grid = ((2 * src + 1) / s - 1).reshape(b, self.stage2_size, self.stage2_size, 2)  # align_corners=False
        # grid_sample pads with zeros: shift so that "zero" is pad_value
        out = F.grid_sample(x - self.pad_value, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        return out + self.pad_value                                                  # (B, 3, S2, S2)

    def forward_stages(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every intermediate, for inspection and tests: five (B,5,2) and points (B,K,2) in input px,
        matrix (B,2,3) input -> aligned crop, aligned (B,3,S2,S2), stage2_out (raw)."""
        if not torch.jit.is_tracing() and tuple(x.shape[-2:]) != (self.input_size, self.input_size):
            s = self.input_size
            raise DataError(f"Cascade: expected (B, 3, {s}, {s}) input, got {tuple(x.shape)}")
        s = self.input_size   # a Python int, so export bakes the sizes in (only the batch is dynamic)
        x1 = self._stage1_input(x)
        out1 = self.stage1(x1)
        five = output_to_crop(out1, self.stage1.output_kind, self.stage1_size, self.decode)[0]  # (B, 5, 2) x1 px
        five = (five + 0.5) * (s / self.stage1_size) - 0.5                                      # (B, 5, 2) x px
        matrix = similarity_transform(five, self.template)                                      # (B, 2, 3)
        aligned = self.align(x, matrix)
        out2 = self.stage2(aligned)
        pts = output_to_crop(out2, self.stage2.output_kind, self.stage2_size, self.decode)[0]   # (B, K, 2) aligned px
        points = apply_affine(invert_similarity(matrix), pts)                                   # (B, K, 2) x px
        return {"five": five, "matrix": matrix, "aligned": aligned, "stage2_out": out2, "points": points}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) -> (B, K, 2) normalised coordinates of the input crop."""
        return (self.forward_stages(x)["points"] + 0.5) / self.input_size

    def forward_intermediates(self, x: torch.Tensor) -> tuple[list[torch.Tensor], OrderedDict]:
        """([coords], stage 2's features on the aligned crop, named 'stage2.<name>')."""
        st = self.forward_stages(x)
        feats: OrderedDict[str, torch.Tensor] = OrderedDict()
        if hasattr(self.stage2, "forward_intermediates"):
            _, f2 = self.stage2.forward_intermediates(st["aligned"])
            feats.update((f"stage2.{k}", v) for k, v in f2.items())
        return [(st["points"] + 0.5) / self.input_size], feats

    def feature_channels(self) -> dict[str, int]:
        inner = self.stage2.feature_channels() if hasattr(self.stage2, "feature_channels") else {}
        return {f"stage2.{k}": v for k, v in inner.items()}


# ----------------------------------------------------------------------------- numpy / OpenCV path

def stage_fn(model: nn.Module, decode: str = "dark"):
    """Wrap a torch landmark model as a cascade stage: (S, S, 3) uint8 crop -> (K, 2) crop px."""

    def run(crop: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            out = model(to_tensor(crop)[None])                                   # (1, ...) raw output
            return output_to_crop(out, model.output_kind, crop.shape[0], decode)[0][0].double().numpy()

    return run


def cascade_predict(image: np.ndarray, box, stage1_fn, stage2_fn, stage1_size: int = 64, stage2_size: int = 64,
                    margin: float = 0.25) -> dict[str, np.ndarray]:
    """Run a cascade on one face of a full image.

    image: (H, W, 3) uint8 BGR. box: x1, y1, x2, y2 face box in image pixels.
    stage1_fn: (S1, S1, 3) uint8 crop -> (5, 2) points in that crop's pixels.
    stage2_fn: (S2, S2, 3) uint8 aligned crop -> (K, 2) points in that crop's pixels.
    (:func:`stage_fn` wraps a torch model; an ONNX session works the same way.) The stage-1 crop is
    the data pipeline's: ``crop_matrix(box, S1, margin)``, black outside the image.
    Returns {"points": (K, 2) image px, "five": (5, 2) image px, "matrix": (2, 3) image -> aligned}.
    """
    x1, y1, x2, y2 = (float(v) for v in np.asarray(box, dtype=np.float64).reshape(4))
    if not (x2 > x1 and y2 > y1):
        raise DataError(f"cascade_predict: box {[x1, y1, x2, y2]} must have x2 > x1 and y2 > y1")
    m1 = crop_matrix(box, stage1_size, margin)
    five = apply_affine(invert_similarity(m1), np.asarray(stage1_fn(warp(image, m1, stage1_size)), dtype=np.float64))
    m2 = aligned_crop_matrix(five, stage2_size)                                                   # image -> aligned
    points = apply_affine(invert_similarity(m2), np.asarray(stage2_fn(warp(image, m2, stage2_size)), dtype=np.float64))
    return {"points": points.astype(np.float32), "five": five.astype(np.float32), "matrix": m2}
