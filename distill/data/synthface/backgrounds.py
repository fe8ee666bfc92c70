"""SynthFace backgrounds: several procedural families, so that a model cannot ignore the background.

Each family is a function ``(size, rng) -> (size, size, 3) uint8 BGR``; ``BACKGROUNDS`` maps names to
them (a plain dict). The "faces" family draws loose eyes, mouths, brows and nostrils: distractors that
look like the features a landmark model looks for, but are not the annotated face.
"""

from __future__ import annotations

import cv2
import numpy as np

AA = cv2.LINE_AA


def _colour(rng: np.random.Generator, lo: int = 0, hi: int = 255) -> tuple:
    return tuple(int(c) for c in rng.integers(lo, hi, 3))


def gradient(size: int, rng: np.random.Generator) -> np.ndarray:
    """A linear ramp between two colours at a random angle (drawn at 8x8, resized: ramps stay linear)."""
    a = rng.uniform(0, 2 * np.pi)
    t = np.linspace(-0.5, 0.5, 8)
    ramp = np.clip(np.cos(a) * t[None, :] + np.sin(a) * t[:, None] + 0.5, 0, 1)   # (8, 8)
    c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    small = (c0 + ramp[..., None] * (c1 - c0)).astype(np.float32)                   # (8, 8, 3)
    return cv2.resize(small, (size, size), interpolation=cv2.INTER_LINEAR).astype(np.uint8)


def texture(size: int, rng: np.random.Generator) -> np.ndarray:
    """Blotches plus finer grain (two octaves of value noise), or stripes / tiles."""
    if rng.random() < 0.3:
        img = gradient(size, rng)
        period = rng.uniform(0.05, 0.25) * size
        step = max(int(period), 2)
        c = _colour(rng)
        if rng.random() < 0.5:   # stripes
            for x in range(int(rng.integers(0, step)), size, step):
                cv2.line(img, (x, 0), (x, size - 1), c, max(1, step // 3), AA)
        else:                    # tiles
            for x in range(0, size, step):
                cv2.line(img, (x, 0), (x, size - 1), c, 1, AA)
                cv2.line(img, (0, x), (size - 1, x), c, 1, AA)
        return img
    k = int(rng.integers(2, 7))
    coarse = cv2.resize(rng.uniform(0, 255, (k, k, 3)).astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
    fine = cv2.resize(rng.uniform(-1, 1, (size // 4, size // 4, 1)).astype(np.float32), (size, size),
                      interpolation=cv2.INTER_LINEAR)
    img = coarse + rng.uniform(10, 50) * fine[..., None]
    return np.clip(img, 0, 255).astype(np.uint8)


def clutter(size: int, rng: np.random.Generator) -> np.ndarray:
    """Random rectangles, discs, lines and triangles over a ramp: indoor/outdoor clutter."""
    img = gradient(size, rng)
    for _ in range(int(rng.integers(5, 15))):
        c = _colour(rng)
        x, y = rng.uniform(0, size, 2)
        r = rng.uniform(0.04, 0.3) * size
        kind = rng.integers(4)
        if kind == 0:
            cv2.rectangle(img, (int(x), int(y)), (int(x + r), int(y + r * rng.uniform(0.3, 2))), c, -1, AA)
        elif kind == 1:
            cv2.circle(img, (int(x), int(y)), int(r / 2), c, -1, AA)
        elif kind == 2:
            x2, y2 = rng.uniform(0, size, 2)
            cv2.line(img, (int(x), int(y)), (int(x2), int(y2)), c, int(rng.integers(1, 5)), AA)
        else:
            pts = (np.array([x, y]) + rng.uniform(-r, r, (3, 2))).astype(np.int32)
            cv2.fillConvexPoly(img, pts, c, AA)
    return img


def face_parts(size: int, rng: np.random.Generator) -> np.ndarray:
    """Loose facial features (eyes, mouths, brows, nostrils) of face-like sizes on a texture."""
    img = texture(size, rng) if rng.random() < 0.5 else gradient(size, rng)
    unit = size / 128.0
    for _ in range(int(rng.integers(2, 6))):
        x, y = rng.uniform(0, size, 2)
        s = rng.uniform(4, 12) * unit
        kind = rng.integers(4)
        angle = float(rng.uniform(-40, 40))
        if kind == 0:    # eye
            cv2.ellipse(img, (int(x), int(y)), (int(s), max(1, int(s * 0.45))), angle, 0, 360, (230, 235, 240), -1, AA)
            cv2.circle(img, (int(x), int(y)), max(1, int(s * 0.4)), _colour(rng, 10, 120), -1, AA)
            cv2.circle(img, (int(x), int(y)), max(1, int(s * 0.15)), (15, 15, 15), -1, AA)
            cv2.ellipse(img, (int(x), int(y)), (int(s), max(1, int(s * 0.45))), angle, 180, 360, (30, 30, 40), 1, AA)
        elif kind == 1:  # mouth
            cv2.ellipse(img, (int(x), int(y)), (int(s * 1.3), max(1, int(s * 0.4))), angle, 0, 360, (70, 60, 170), -1, AA)
            cv2.ellipse(img, (int(x), int(y)), (int(s * 1.3), 1), angle, 0, 360, (40, 30, 80), 1, AA)
        elif kind == 2:  # brow
            cv2.ellipse(img, (int(x), int(y)), (int(s * 1.2), max(1, int(s * 0.3))), angle, 180, 360,
                        _colour(rng, 10, 90), max(1, int(s * 0.25)), AA)
        else:            # nostrils
            for dx in (-0.4, 0.4):
                cv2.ellipse(img, (int(x + dx * s), int(y)), (max(1, int(s * 0.25)), max(1, int(s * 0.15))), 0, 0, 360,
                            (30, 35, 50), -1, AA)
    return img


BACKGROUNDS = {"gradient": gradient, "texture": texture, "clutter": clutter, "faces": face_parts}


def make_background(family: str, size: int, rng: np.random.Generator) -> np.ndarray:
    return BACKGROUNDS[family](size, rng)
