"""SynthFace backgrounds: several procedural families, so that a model cannot ignore the background.

Each family is a function ``(size, rng) -> (size, size, 3) uint8 BGR``; ``BACKGROUNDS`` maps names to
them (a plain dict). The "faces" family draws loose eyes, mouths, brows and nostrils: distractors that
look like the features a landmark model looks for, but are not the annotated face.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

AA = cv2.LINE_AA


def _colour(rng: np.random.Generator, lo: int = 0, hi: int = 255) -> tuple:
    return tuple(int(c) for c in rng.integers(lo, hi, 3))


_T8 = np.linspace(-0.5, 0.5, 8)


def gradient(size: int, rng: np.random.Generator) -> np.ndarray:
    """A linear ramp between two colours at a random angle (drawn at 8x8, resized: ramps stay linear)."""
    a = float(rng.uniform(0, 2 * np.pi))
    ramp = np.minimum(np.maximum(math.cos(a) * _T8[None, :] + math.sin(a) * _T8[:, None] + 0.5, 0.0), 1.0)   # (8, 8)
    c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    small = (c0 + 0.5 + ramp[..., None] * (c1 - c0)).astype(np.uint8)                      # (8, 8, 3), rounded
    return cv2.resize(small, (size, size), interpolation=cv2.INTER_LINEAR)


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
    # both octaves are summed on the fine grain's (size/4)^2 grid (the blotches, cubic from k x k, are
    # smooth there), then one linear resize to the image
    g = max(size // 4, 1)
    coarse = cv2.resize(rng.uniform(0, 255, (k, k, 3)).astype(np.float32), (g, g), interpolation=cv2.INTER_CUBIC)
    fine = rng.uniform(-1, 1, (g, g, 1)).astype(np.float32)
    small = np.minimum(np.maximum(coarse + np.float32(rng.uniform(10, 50)) * fine + np.float32(0.5), np.float32(0.0)),
                       np.float32(255.0)).astype(np.uint8)
    return cv2.resize(small, (size, size), interpolation=cv2.INTER_LINEAR)


def clutter(size: int, rng: np.random.Generator) -> np.ndarray:
    """Random rectangles, discs, lines and triangles over a ramp: indoor/outdoor clutter.
    The random numbers of all shapes are drawn in one block (one call instead of a dozen per shape)."""
    img = gradient(size, rng)
    n = int(rng.integers(5, 15))
    u = rng.random((n, 13))
    for row in u.tolist():
        c = (int(row[0] * 255), int(row[1] * 255), int(row[2] * 255))
        x, y = row[3] * size, row[4] * size
        r = (0.04 + 0.26 * row[5]) * size
        kind = int(row[6] * 4)
        if kind == 0:
            cv2.rectangle(img, (int(x), int(y)), (int(x + r), int(y + r * (0.3 + 1.7 * row[7]))), c, -1, AA)
        elif kind == 1:
            cv2.circle(img, (int(x), int(y)), int(r / 2), c, -1, AA)
        elif kind == 2:
            cv2.line(img, (int(x), int(y)), (int(row[7] * size), int(row[8] * size)), c, 1 + int(row[9] * 4), AA)
        else:
            pts = np.array([[x + r * (2 * row[7] - 1), y + r * (2 * row[8] - 1)],
                            [x + r * (2 * row[9] - 1), y + r * (2 * row[10] - 1)],
                            [x + r * (2 * row[11] - 1), y + r * (2 * row[12] - 1)]]).astype(np.int32)
            cv2.fillConvexPoly(img, pts, c, AA)
    return img


def face_parts(size: int, rng: np.random.Generator) -> np.ndarray:
    """Loose facial features (eyes, mouths, brows, nostrils) of face-like sizes on a texture
    (the random numbers of all features drawn in one block)."""
    img = texture(size, rng) if rng.random() < 0.5 else gradient(size, rng)
    unit = size / 128.0
    n = int(rng.integers(2, 6))
    for row in rng.random((n, 8)).tolist():
        x, y = row[0] * size, row[1] * size
        s = (4 + 8 * row[2]) * unit
        kind = int(row[3] * 4)
        angle = -40 + 80 * row[4]
        c = (int(x), int(y))
        if kind == 0:    # eye
            iris = (10 + int(row[5] * 110), 10 + int(row[6] * 110), 10 + int(row[7] * 110))
            cv2.ellipse(img, c, (int(s), max(1, int(s * 0.45))), angle, 0, 360, (230, 235, 240), -1, AA)
            cv2.circle(img, c, max(1, int(s * 0.4)), iris, -1, AA)
            cv2.circle(img, c, max(1, int(s * 0.15)), (15, 15, 15), -1, AA)
            cv2.ellipse(img, c, (int(s), max(1, int(s * 0.45))), angle, 180, 360, (30, 30, 40), 1, AA)
        elif kind == 1:  # mouth
            cv2.ellipse(img, c, (int(s * 1.3), max(1, int(s * 0.4))), angle, 0, 360, (70, 60, 170), -1, AA)
            cv2.ellipse(img, c, (int(s * 1.3), 1), angle, 0, 360, (40, 30, 80), 1, AA)
        elif kind == 2:  # brow
            colour = (10 + int(row[5] * 80), 10 + int(row[6] * 80), 10 + int(row[7] * 80))
            cv2.ellipse(img, c, (int(s * 1.2), max(1, int(s * 0.3))), angle, 180, 360, colour,
                        max(1, int(s * 0.25)), AA)
        else:            # nostrils
            for dx in (-0.4, 0.4):
                cv2.ellipse(img, (int(x + dx * s), int(y)), (max(1, int(s * 0.25)), max(1, int(s * 0.15))), 0, 0, 360,
                            (30, 35, 50), -1, AA)
    return img


BACKGROUNDS = {"gradient": gradient, "texture": texture, "clutter": clutter, "faces": face_parts}


def make_background(family: str, size: int, rng: np.random.Generator) -> np.ndarray:
    return BACKGROUNDS[family](size, rng)
