"""Training augmentation settings and the pixel-only augmentations (photometric, occlusion).

Geometry (flip, scale, rotation, shift) is drawn by the dataset and folded into the one crop
affine of ``transforms.crop_matrix``; what lives here only changes pixel values of the finished
uint8 BGR crop (and, for occlusion, which points count as visible). All randomness comes from the
numpy Generator passed in, so a (seed, epoch, index) triple always gives the same crop.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

from distill.errors import ConfigError


@dataclass
class AugmentConfig:
    """What a training crop may go through. Ranges are (low, high); amplitudes are symmetric +-.

    Geometry (applied by the dataset through the crop affine):
      flip_prob: chance of a horizontal flip (points re-indexed with the schema's flip_perm).
      scale: crop window scale range (1.25 = window 25% larger, face smaller).
      rotation_deg: rotation drawn uniformly in [-rotation_deg, rotation_deg].
      shift: window shift per axis, uniform in [-shift, shift] times the window side.
    Photometric (``photometric``), in this order:
      color_jitter: per-channel gain 1 +- color_jitter (white balance).
      contrast: gain about the image mean, 1 +- contrast.
      brightness: offset +- brightness * 255.
      gamma: exponent range, drawn log-uniformly (1 = unchanged).
      grayscale_prob: chance of dropping colour (camera / IR look).
      blur_prob, blur_max_kernel: chance of a Gaussian blur with an odd kernel 3..max.
      noise_std: Gaussian noise with a std drawn uniformly in [0, noise_std] grey levels.
      jpeg_prob, jpeg_quality: chance of a JPEG round trip at a quality drawn in the range.
    Occlusion (``occlude``):
      occlusion_prob: chance that 1..occlusion_max_patches solid rectangles are drawn, each side up
          to occlusion_max_size of the crop; points under a patch become hidden (visibility 0).
    """

    flip_prob: float = 0.5
    scale: tuple[float, float] = (0.75, 1.25)
    rotation_deg: float = 30.0
    shift: float = 0.05
    color_jitter: float = 0.1
    contrast: float = 0.3
    brightness: float = 0.2
    gamma: tuple[float, float] = (0.7, 1.4)
    grayscale_prob: float = 0.05
    blur_prob: float = 0.1
    blur_max_kernel: int = 5
    noise_std: float = 4.0
    jpeg_prob: float = 0.1
    jpeg_quality: tuple[int, int] = (40, 90)
    occlusion_prob: float = 0.2
    occlusion_max_patches: int = 2
    occlusion_max_size: float = 0.3

    def __post_init__(self) -> None:
        # YAML gives lists; keep ranges as tuples so configs compare and hash the same either way
        for key in ("scale", "gamma", "jpeg_quality"):
            value = getattr(self, key)
            if not isinstance(value, (list, tuple)) or len(value) != 2:
                raise ConfigError(f"data.augment.{key}: expected a [low, high] pair, got {value!r}")
            lo, hi = value
            if not lo <= hi:
                raise ConfigError(f"data.augment.{key}: low {lo} is above high {hi}")
            cast = int if key == "jpeg_quality" else float
            setattr(self, key, (cast(lo), cast(hi)))
        for key in ("flip_prob", "grayscale_prob", "blur_prob", "jpeg_prob", "occlusion_prob"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ConfigError(f"data.augment.{key}: a probability in [0, 1], got {getattr(self, key)!r}")
        for key in ("rotation_deg", "shift", "color_jitter", "contrast", "brightness", "noise_std"):
            if not getattr(self, key) >= 0:  # NaN too
                raise ConfigError(f"data.augment.{key}: must be >= 0, got {getattr(self, key)!r}")
        if self.scale[0] <= 0 or self.gamma[0] <= 0:
            raise ConfigError("data.augment.scale and data.augment.gamma must be positive ranges")
        if not 1 <= self.jpeg_quality[0] <= self.jpeg_quality[1] <= 100:
            raise ConfigError(f"data.augment.jpeg_quality: within 1..100, got {self.jpeg_quality!r}")
        if self.blur_max_kernel < 3 and self.blur_prob > 0:
            raise ConfigError(f"data.augment.blur_max_kernel: at least 3 when blur_prob > 0, got {self.blur_max_kernel}")
        if self.occlusion_max_patches < 1 or not 0.0 < self.occlusion_max_size <= 1.0:
            raise ConfigError("data.augment.occlusion_max_patches must be >= 1 and occlusion_max_size in (0, 1]")

    def is_off(self) -> bool:
        """True when every crop is the plain box crop on every epoch (items can then be cached)."""
        probs = (self.flip_prob, self.grayscale_prob, self.blur_prob, self.jpeg_prob, self.occlusion_prob)
        amps = (self.rotation_deg, self.shift, self.color_jitter, self.contrast, self.brightness, self.noise_std)
        return (all(p == 0 for p in probs) and all(x == 0 for x in amps) and tuple(self.scale) == (1.0, 1.0)
                and tuple(self.gamma) == (1.0, 1.0))

    @classmethod
    def none(cls) -> AugmentConfig:
        """Everything off: the crop is the plain box crop (what evaluation sees)."""
        return cls(flip_prob=0.0, scale=(1.0, 1.0), rotation_deg=0.0, shift=0.0, color_jitter=0.0, contrast=0.0,
                   brightness=0.0, gamma=(1.0, 1.0), grayscale_prob=0.0, blur_prob=0.0, noise_std=0.0,
                   jpeg_prob=0.0, occlusion_prob=0.0)


@functools.cache
def _noise_bank() -> np.ndarray:
    return np.random.default_rng(0x5EED).standard_normal(1 << 20, dtype=np.float32)  # (2**20,), 4 MB


def _standard_noise(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """N(0, 1) float32 noise of ``shape``: a random window of a fixed bank of normals.

    Drawing 200k fresh normals per 256 px crop was 3/4 of the photometric cost; a window at a
    random offset is as good for augmentation and stays a pure function of ``rng``.
    """
    n = int(np.prod(shape))
    bank = _noise_bank()
    if n > bank.size:
        return rng.standard_normal(shape, dtype=np.float32)
    start = int(rng.integers(0, bank.size - n + 1))
    return bank[start:start + n].reshape(shape)


def photometric(image: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """A new uint8 BGR image (S, S, 3) with colour, contrast, gamma, blur, noise and JPEG changes.

    The per-pixel intensity part is one 256-entry lookup table per channel (cv2.LUT), so it costs the
    same at any strength: v -> 255 * clip((a * (g_c * v - m) + m + b) / 255, 0, 1) ** gamma with
    g_c the channel gain, a the contrast, m the image mean, b the brightness offset.
    """
    img = image
    gains = 1.0 + rng.uniform(-cfg.color_jitter, cfg.color_jitter, size=3) if cfg.color_jitter else np.ones(3)
    a = 1.0 + rng.uniform(-cfg.contrast, cfg.contrast) if cfg.contrast else 1.0
    b = rng.uniform(-cfg.brightness, cfg.brightness) * 255.0 if cfg.brightness else 0.0
    lo, hi = cfg.gamma
    gamma = float(np.exp(rng.uniform(np.log(lo), np.log(hi)))) if hi > lo else lo
    if a != 1.0 or b != 0.0 or gamma != 1.0 or np.any(gains != 1.0):
        m = float(img.mean())
        v = np.arange(256, dtype=np.float64)[:, None]  # (256, 1)
        lin = np.clip((a * (gains[None, :] * v - m) + m + b) / 255.0, 0.0, 1.0)  # (256, 3)
        lut = np.round(255.0 * lin ** gamma).astype(np.uint8)  # (256, 3)
        img = cv2.LUT(img, lut.reshape(1, 256, 3))
    if cfg.grayscale_prob and rng.random() < cfg.grayscale_prob:
        img = cv2.cvtColor(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    if cfg.blur_prob and rng.random() < cfg.blur_prob:
        k = 2 * int(rng.integers(1, cfg.blur_max_kernel // 2 + 1)) + 1  # odd, 3..max
        img = cv2.GaussianBlur(img, (k, k), 0)
    if cfg.noise_std:
        std = np.float32(rng.uniform(0.0, cfg.noise_std))
        noisy = img.astype(np.float32)
        noisy += _standard_noise(img.shape, rng) * std
        np.clip(noisy, 0, 255, out=noisy)
        img = (noisy + 0.5).astype(np.uint8)  # round half up
    if cfg.jpeg_prob and rng.random() < cfg.jpeg_prob:
        quality = int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1))
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if ok:
            img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return img if img is not image else image.copy()


def occlude(image: np.ndarray, points: np.ndarray, visibility: np.ndarray | None, cfg: AugmentConfig,
            rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Draw random solid rectangles on the crop -> (new image, new visibility (K,) float32).

    A patch fills pixels x0..x1-1, y0..y1-1, i.e. the area [x0 - 0.5, x1 - 0.5) x [y0 - 0.5, y1 - 0.5)
    in point coordinates; a point inside it becomes hidden (visibility 0), the way a hand or a
    microphone hides a real landmark (cf. COFW). Its position label is kept.
    """
    k = len(points)
    vis = np.ones(k, np.float32) if visibility is None else np.asarray(visibility, np.float32).copy()
    if not cfg.occlusion_prob or rng.random() >= cfg.occlusion_prob:
        return image.copy(), vis
    img = image.copy()
    h, w = img.shape[:2]
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    n = int(rng.integers(1, cfg.occlusion_max_patches + 1))
    for _ in range(n):
        pw = max(1, int(round(rng.uniform(0.1, cfg.occlusion_max_size) * w)))
        ph = max(1, int(round(rng.uniform(0.1, cfg.occlusion_max_size) * h)))
        x0 = int(rng.integers(-(pw // 2), w - pw // 2))  # the patch centre stays on the crop
        y0 = int(rng.integers(-(ph // 2), h - ph // 2))
        x1, y1 = min(x0 + pw, w), min(y0 + ph, h)
        x0, y0 = max(x0, 0), max(y0, 0)
        img[y0:y1, x0:x1] = rng.integers(0, 256, size=3, dtype=np.uint8)
        under = (pts[:, 0] >= x0 - 0.5) & (pts[:, 0] < x1 - 0.5) & (pts[:, 1] >= y0 - 0.5) & (pts[:, 1] < y1 - 0.5)
        vis[under] = 0.0
    return img, vis
