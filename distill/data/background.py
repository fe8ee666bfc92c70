"""Background replacement augmentation: the face kept, everything around it swapped.

A landmark model can lean on the background (a studio wall, SynthFace's few background families)
and then jitter when the background changes. Pasting each face onto other backgrounds during
training removes that crutch. The seed does this with a GAN; here it is compositing:

1. a face mask: the data set's own (SynthFace writes one per image) or, from 68/98 landmarks, the
   convex hull of the jaw and the brows, with the brows pushed up towards the hairline
   (:func:`face_mask_from_points`);
2. a background: one of SynthFace's procedural families (gradient, texture, clutter, loose face
   parts) or a random crop of an image from a user folder (:class:`BackgroundSource`);
3. compositing with a feathered alpha (the mask blurred by a Gaussian) and colour harmonisation
   (the background's per-channel mean/std moved part of the way to the face's), so that neither a
   hard edge nor a colour jump marks where the face ends: the seam must carry no shortcut
   (:func:`replace_background`).

:func:`apply_background` is the one call the augmentation pipeline makes, on the full image,
before the crop warp.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from distill.data.pose import to_ibug68
from distill.data.synthface.backgrounds import BACKGROUNDS
from distill.errors import ConfigError, DataError
from distill.io import IMAGE_SUFFIXES


@dataclass
class BackgroundConfig:
    """Recipe block ``data.background``.

    prob: chance that an image gets a new background (0 disables the augmentation).
    folder: optional folder of background images (searched recursively); each draw picks uniformly
        among the procedural ``families`` (SynthFace's, see ``BACKGROUNDS``) and, when given, the folder.
    families: the procedural families drawn from (SynthFace's: gradient, texture, clutter, faces).
    feather_px: half-width in image pixels of the band where face and background blend.
    harmonise: move the background's colour statistics part of the way to the face's.
    forehead: how far above the brows the landmark mask reaches, as a fraction of the
        brow-to-chin height.
    """

    prob: float = 0.0
    folder: str | None = None
    families: tuple[str, ...] = ("gradient", "texture", "clutter", "faces")
    feather_px: float = 4.0
    harmonise: bool = True
    forehead: float = 0.35

    def __post_init__(self) -> None:
        self.families = tuple(self.families)   # recipes hand over lists
        if not 0.0 <= self.prob <= 1.0:
            raise ConfigError(f"data.background.prob: expected a probability in [0, 1], got {self.prob!r}")
        if not self.feather_px >= 0:  # NaN too
            raise ConfigError(f"data.background.feather_px: expected >= 0, got {self.feather_px!r}")
        unknown = [f for f in self.families if f not in BACKGROUNDS]
        if unknown:
            raise ConfigError(f"data.background.families: unknown {unknown[0]!r} (known: {', '.join(BACKGROUNDS)})")
        if not self.families and not self.folder:
            raise ConfigError("data.background: no families and no folder: nothing to draw backgrounds from")


# ----------------------------------------------------------------------------- masks

def face_mask_from_points(points: np.ndarray, shape: tuple[int, int], forehead: float = 0.35) -> np.ndarray:
    """(H, W) float32 mask, 1 on the face: hull of jaw + brows, the brows raised by ``forehead``.

    points: (68, 2) iBUG or (98, 2) WFLW image pixels (other schemas, or points with NaN for
    missing ones: the hull of the finite points, raised along -y). "Up" is the chin -> brow-centre
    direction, so rolled faces get their forehead in the right place, and the brows move up by
    forehead * |chin - brow centre|.
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise DataError(f"face_mask_from_points: points must be (K, 2), got shape {pts.shape}")
    finite = np.isfinite(pts).all(axis=1)
    if finite.sum() < 3:
        raise DataError(f"face_mask_from_points: need at least 3 finite points, got {int(finite.sum())}")
    if len(pts) in (68, 98) and finite.all():
        p68 = to_ibug68(pts, "ibug68" if len(pts) == 68 else "wflw98")
        jaw, brows, chin = p68[0:17], p68[17:27], p68[8]
        up = brows.mean(axis=0) - chin                     # (2,) chin -> brow centre
        hull_pts = np.concatenate([jaw, brows, brows + forehead * up])
    else:
        pts = pts[finite]
        height = pts[:, 1].max() - pts[:, 1].min()
        hull_pts = np.concatenate([pts, pts - [0.0, forehead * height]])
    h, w = shape[:2]
    mask = np.zeros((h, w), dtype=np.uint8)
    hull = cv2.convexHull(np.round(hull_pts * 16).astype(np.int32))   # 4 fractional bits
    cv2.fillConvexPoly(mask, hull, 1, lineType=cv2.LINE_8, shift=4)
    return mask.astype(np.float32)


def load_mask(mask, shape: tuple[int, int]) -> np.ndarray:
    """A data set mask (file path, or array) -> (H, W) float32 in {0, 1}; checks it fits the image."""
    if isinstance(mask, (str, Path)):
        arr = cv2.imread(str(mask), cv2.IMREAD_GRAYSCALE)
        if arr is None:
            raise DataError(f"{mask}: cannot read the face mask")
        name = str(mask)
    else:
        arr, name = np.asarray(mask), "mask array"
        if arr.ndim == 3:
            arr = arr[..., 0]
    if arr.shape[:2] != tuple(shape[:2]):
        raise DataError(f"{name}: mask is {arr.shape[1]}x{arr.shape[0]}, image is {shape[1]}x{shape[0]}")
    # uint8 masks are 0/255, float masks 0/1: both split at half their range
    threshold = 127 if arr.dtype == np.uint8 else 0.5
    return (arr > threshold).astype(np.float32)


# ----------------------------------------------------------------------------- backgrounds

def procedural_background(family: str, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """(H, W, 3) uint8 from one of SynthFace's background families (square ones, cropped to shape).

    Reusing SynthFace's generators keeps one set of procedural backgrounds in the library; its
    "faces" family (loose eyes, mouths, brows) is the useful hard case here: distractors that look
    like what the model searches for, right next to the real face.
    """
    h, w = shape
    side = max(h, w)
    square = BACKGROUNDS[family](side, rng)                                  # (side, side, 3)
    y0, x0 = int(rng.integers(0, side - h + 1)), int(rng.integers(0, side - w + 1))
    return np.ascontiguousarray(square[y0:y0 + h, x0:x0 + w])


def random_crop_resized(image: np.ndarray, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A random crop of ``image`` with the target aspect ratio, 30-100% of the largest, resized to shape."""
    h, w = shape
    ih, iw = image.shape[:2]
    full = min(iw / w, ih / h)                      # largest crop scale that fits
    s = full * rng.uniform(0.3, 1.0)
    cw, ch = max(1, int(round(w * s))), max(1, int(round(h * s)))
    x0, y0 = int(rng.integers(0, iw - cw + 1)), int(rng.integers(0, ih - ch + 1))
    return cv2.resize(image[y0:y0 + ch, x0:x0 + cw], (w, h), interpolation=cv2.INTER_AREA)


class BackgroundSource:
    """Draws (H, W, 3) uint8 BGR backgrounds: uniformly among the procedural families and a folder."""

    def __init__(self, folder: str | Path | None = None, families=tuple(BACKGROUNDS)):
        self.families = tuple(families)
        self.files: list[Path] = []
        if folder is not None:
            folder = Path(folder)
            if not folder.is_dir():
                raise DataError(f"{folder}: background folder not found")
            self.files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
            if not self.files:
                raise DataError(f"{folder}: background folder has no images ({', '.join(IMAGE_SUFFIXES)})")
        if not self.families and not self.files:
            raise DataError("BackgroundSource: no procedural families and no folder to draw from")

    def __call__(self, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        choices = list(self.families) + (["folder"] if self.files else [])
        kind = choices[int(rng.integers(len(choices)))]
        if kind != "folder":
            return procedural_background(kind, tuple(shape[:2]), rng)
        path = self.files[int(rng.integers(len(self.files)))]
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise DataError(f"{path}: cannot read the background image")
        return random_crop_resized(image, tuple(shape[:2]), rng)


# ----------------------------------------------------------------------------- compositing

def feather_alpha(mask: np.ndarray, feather_px: float) -> np.ndarray:
    """(H, W) {0, 1} mask -> (H, W) float32 alpha ramping over +-feather_px around the edge.

    A Gaussian of sigma feather_px / 3, truncated at feather_px: exactly 1 (or 0) further than
    feather_px inside (outside) the mask, up to float rounding, which is snapped away. The band is
    centred on the mask edge: a landmark hull runs along the jaw, so fading only inwards would
    erase the jaw contour the model must find; the price is that up to feather_px of the original
    background survives, faded, just outside the hull.
    """
    mask = mask.astype(np.float32)
    if feather_px <= 0:
        return mask
    radius = int(math.ceil(feather_px))
    alpha = cv2.GaussianBlur(mask, (2 * radius + 1, 2 * radius + 1), feather_px / 3.0,
                             borderType=cv2.BORDER_REPLICATE)
    alpha[alpha > 1.0 - 1e-4] = 1.0
    alpha[alpha < 1e-4] = 0.0
    return alpha


def harmonise_colours(background: np.ndarray, image: np.ndarray, mask: np.ndarray, strength: float = 0.5) -> np.ndarray:
    """Move the background's per-channel mean and std ``strength`` of the way to the face's.

    Reinhard-style statistics transfer (per channel, in BGR): bg' = (bg - m_bg) * s_t / s_bg + m_t
    with m_t = m_bg + strength (m_face - m_bg), likewise s_t. Partial, so backgrounds still vary,
    but the face no longer stands out by colour alone.
    """
    face = image[mask > 0.5].astype(np.float64)                  # (P, 3) face pixels
    if len(face) < 2:
        return background
    bg = background.astype(np.float64)
    m_bg, s_bg = bg.reshape(-1, 3).mean(0), bg.reshape(-1, 3).std(0) + 1e-6
    m_t = m_bg + strength * (face.mean(0) - m_bg)
    s_t = s_bg + strength * (face.std(0) - s_bg)
    return np.clip((bg - m_bg) * (s_t / s_bg) + m_t, 0, 255).astype(np.uint8)


def replace_background(image: np.ndarray, mask: np.ndarray, background: np.ndarray, feather_px: float = 4.0,
                       harmonise: bool = True, strength: float = 0.5) -> np.ndarray:
    """Composite ``image`` (H, W, 3) uint8 over ``background`` with a feathered ``mask`` (H, W).

    out = alpha * image + (1 - alpha) * background', alpha = :func:`feather_alpha`, background'
    resized to the image and (if ``harmonise``) colour-harmonised with ``strength``. Pixels where
    alpha == 1 are returned bit for bit.
    """
    h, w = image.shape[:2]
    if background.shape[:2] != (h, w):
        background = cv2.resize(background, (w, h), interpolation=cv2.INTER_AREA)
    mask = mask.astype(np.float32)
    if harmonise:
        background = harmonise_colours(background, image, mask, strength)
    alpha = feather_alpha(mask, feather_px)[..., None]                     # (H, W, 1)
    out = alpha * image.astype(np.float32) + (1 - alpha) * background.astype(np.float32)
    out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    inside = alpha[..., 0] == 1.0
    out[inside] = image[inside]
    return out


@lru_cache(maxsize=8)
def _source(folder: str | None, families: tuple[str, ...]) -> BackgroundSource:
    # one folder listing per process (each data loader worker builds its own once)
    return BackgroundSource(folder, families)


def apply_background(image: np.ndarray, points: np.ndarray, mask, cfg: BackgroundConfig,
                     rng: np.random.Generator, source: BackgroundSource | None = None) -> np.ndarray:
    """The augmentation step: with probability ``cfg.prob``, a new background behind the face.

    image: (H, W, 3) uint8 BGR, the full image (call before the crop warp).
    points: (K, 2) image pixels (used for the mask when ``mask`` is None).
    mask: the data set's face mask (path or array) or None. Returns the image (unchanged when not
    drawn). ``rng`` draws whether, which background, and the harmonisation strength (0.3-0.7).
    """
    if cfg.prob <= 0 or rng.random() >= cfg.prob:
        return image
    shape = image.shape[:2]
    face = face_mask_from_points(points, shape, cfg.forehead) if mask is None else load_mask(mask, shape)
    source = source or _source(cfg.folder, tuple(cfg.families))
    background = source(shape, rng)
    return replace_background(image, face, background, cfg.feather_px, cfg.harmonise, float(rng.uniform(0.3, 0.7)))
