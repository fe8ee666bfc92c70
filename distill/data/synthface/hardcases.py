"""SynthFace hard cases applied to a drawn face: occluders, scene light, blur, noise, JPEG artefacts.

Occluders are drawn into the image AND into a binary occluder mask; a landmark whose pixel is under
the mask gets visibility 0 (its coordinates stay true). Their shapes are anchored on the posed
landmarks, so a mirrored face gets the mirrored occluder. Image-level degradations run after all
drawing, in the order light -> blur -> noise -> JPEG (a camera's order).
"""

from __future__ import annotations

import math
from functools import lru_cache

import cv2
import numpy as np

from distill.data.synthface.draw import SHIFT, ellipse, fx, lines, poly, tone

AA = cv2.LINE_AA


def _rot(angle_deg: float) -> np.ndarray:
    a = np.radians(angle_deg)
    return np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])


def _capsule(img, mask, a, b, width, colour) -> None:
    """A thick segment with round ends (a finger, an arm, a strand)."""
    ax, ay = float(a[0]), float(a[1])
    bx, by = float(b[0]), float(b[1])
    k = width / 2 / max(math.hypot(bx - ax, by - ay), 1e-6)
    nx, ny = -(by - ay) * k, (bx - ax) * k
    quad = [fx(np.array([[ax + nx, ay + ny], [bx + nx, by + ny], [bx - nx, by - ny], [ax - nx, ay - ny]]))]
    cv2.fillPoly(img, quad, colour, AA, SHIFT)
    cv2.fillPoly(mask, quad, 255, cv2.LINE_8, SHIFT)
    r = width / 2
    for x, y in ((ax, ay), (bx, by)):
        ellipse(img, (x, y), (r, r), 0, colour)
        cv2.circle(mask, (int(round(x)), int(round(y))), max(1, int(r)), 255, -1)


def _both(img, mask, pts, colour) -> None:
    poly(img, pts, colour)
    poly(mask, pts, 255, aa=False)


def draw_occluder(img: np.ndarray, mask: np.ndarray, occ, g, look) -> None:
    """Draw one :class:`~.params.Occluder` into ``img`` and 255s into ``mask`` (H, W) uint8."""
    rng = np.random.default_rng(occ.seed)
    q = g.p68
    side = max(g.box[2] - g.box[0], g.box[3] - g.box[1])          # face size in px
    a = q[occ.anchor] + np.asarray(occ.offset) * side
    R = _rot(occ.angle)
    size = occ.size * side
    if occ.kind == "hand":
        colour = tone(look.skin, rng.uniform(0.85, 1.1)) if rng.random() < 0.8 else occ.colour
        up = R @ np.array([0.0, -1.0])                             # fingers point this way
        across = np.array([-up[1], up[0]])
        palm = a - up * 0.2 * size
        _capsule(img, mask, palm - up * 0.15 * size, palm - up * 3.0 * size, 0.55 * size, colour)   # the arm
        ellipse(img, palm, (0.32 * size, 0.38 * size), np.degrees(np.arctan2(up[1], up[0])) + 90, colour)
        cv2.ellipse(mask, tuple(int(v) for v in np.round(palm)), (max(1, int(0.32 * size)), max(1, int(0.38 * size))),
                    float(np.degrees(np.arctan2(up[1], up[0])) + 90), 0, 360, 255, -1)
        for k, length in zip((-1.5, -0.5, 0.5, 1.5), (0.5, 0.62, 0.6, 0.48)):
            base = palm + across * k * 0.14 * size + up * 0.25 * size
            _capsule(img, mask, base, base + up * length * size * rng.uniform(0.9, 1.1), 0.13 * size, colour)
        lines(img, np.stack([palm + across * 0.1 * size, palm + up * 0.3 * size]), tone(colour, 0.8), 1)
    elif occ.kind == "mask":
        centre = q[27:36].mean(axis=0)
        jaw = q[2:15] + (q[2:15] - centre) * 0.06                  # a little beyond the jaw line
        top = np.stack([0.5 * q[14] + 0.5 * q[29], q[29], 0.5 * q[2] + 0.5 * q[29]])
        colour = occ.colour if rng.random() < 0.5 else (225, 205, 175) if rng.random() < 0.5 else (235, 235, 235)
        _both(img, mask, np.concatenate([jaw, top]), colour)
        for strap in ((top[0], q[16]), (top[2], q[0])):
            lines(img, np.stack(strap), tone(colour, 0.8), 1)
        lines(img, 0.5 * jaw[3:10] + 0.5 * q[[50, 51, 52, 52, 52, 53, 54]], tone(colour, 0.85), 1)
    elif occ.kind == "bar":
        d = R @ np.array([1.0, 0.0])
        n = np.array([-d[1], d[0]])
        half_len, half_w = 0.8 * side, 0.18 * size + 1.0
        _both(img, mask, np.stack([a - d * half_len - n * half_w, a + d * half_len - n * half_w,
                                   a + d * half_len + n * half_w, a - d * half_len + n * half_w]), occ.colour)
    elif occ.kind == "sunglasses":
        lens = tuple(float(c) for c in rng.uniform(10, 70, 3))
        for eye in (slice(36, 42), slice(42, 48)):
            pts = q[eye]
            c = pts.mean(axis=0)
            d = pts[3] - pts[0]
            r = max(np.linalg.norm(pts - c, axis=1).max() * 1.35, 2.0)
            ang = np.degrees(np.arctan2(d[1], d[0]))
            ellipse(img, c, (r, 0.8 * r), ang, lens)
            cv2.ellipse(mask, tuple(int(v) for v in np.round(c)), (int(np.ceil(r)), int(np.ceil(0.8 * r))), ang,
                        0, 360, 255, -1)
        lines(img, np.stack([q[39], q[27], q[42]]), (20, 20, 20), 1)
    elif occ.kind == "hair":
        strand = (a - (R @ np.array([0.3, -1.0])) * size, a, a + (R @ np.array([0.2, 1.0])) * size)
        for p0, p1 in zip(strand[:-1], strand[1:]):
            _capsule(img, mask, p0, p1, 0.28 * size, tone(look.hair, 0.9))
    else:  # object: a phone, a cup or a random blob
        kind = rng.integers(3)
        if kind == 0:
            w, h = 0.45 * size, 0.85 * size
            corners = np.array([[-w, -h], [w, -h], [w, h], [-w, h]]) @ R.T + a
            _both(img, mask, corners, occ.colour)
            poly(img, 0.8 * corners + 0.2 * a, tone(occ.colour, 0.5))   # the screen
        elif kind == 1:
            r = 0.55 * size
            ellipse(img, a, (r, 0.8 * r), occ.angle, occ.colour)
            cv2.ellipse(mask, tuple(int(v) for v in np.round(a)), (max(1, int(r)), max(1, int(0.8 * r))), occ.angle,
                        0, 360, 255, -1)
            ellipse(img, a, (0.6 * r, 0.4 * r), occ.angle, tone(occ.colour, 0.7))
        else:
            t = np.sort(rng.uniform(0, 2 * np.pi, int(rng.integers(5, 9))))
            rad = size * rng.uniform(0.35, 0.65, len(t))
            pts = a + np.stack([np.cos(t) * rad, np.sin(t) * rad], axis=1)
            _both(img, mask, pts, occ.colour)


def occluded(points: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(K,) bool: the pixel nearest each point is under the occluder mask."""
    h, w = mask.shape
    ij = np.rint(points).astype(np.int64)
    x = np.minimum(np.maximum(ij[:, 0], 0), w - 1)
    y = np.minimum(np.maximum(ij[:, 1], 0), h - 1)
    return mask[y, x] > 127


# ----------------------------------------------------------------------------- scene light and camera
@lru_cache(maxsize=8)
def _cell_centres(grid: int) -> np.ndarray:
    t = (np.arange(grid) + 0.5) / grid - 0.5
    t.setflags(write=False)
    return t


def scene_gain(light, grid: int = 16) -> np.ndarray:
    """(grid, grid) float32 exposure gain with a fall-off across the image toward the light, at the
    same cell centres as :func:`~.draw.head_shading` (a linear ramp: resizing it keeps it linear)."""
    dx, dy = float(light.direction[0]), float(light.direction[1])
    norm = max(math.hypot(dx, dy), 1e-6)
    k = light.gain * light.gradient * 2.0 / norm
    t = _cell_centres(grid)
    ramp = (k * dx) * t[None, :] + (k * dy) * t[:, None] + light.gain          # (G, G) toward the light
    return ramp.astype(np.float32)


def scene_gains(lights: list, grid: int = 16) -> np.ndarray:
    """(N, grid, grid) :func:`scene_gain` of several lights at once (elementwise: the same numbers)."""
    k, dx, dy, gain = [], [], [], []
    for light in lights:
        x, y = float(light.direction[0]), float(light.direction[1])
        k.append(light.gain * light.gradient * 2.0 / max(math.hypot(x, y), 1e-6))
        dx.append(x)
        dy.append(y)
        gain.append(light.gain)
    k, dx, dy, gain = (np.array(a)[:, None, None] for a in (k, dx, dy, gain))
    t = _cell_centres(grid)
    return ((k * dx) * t[None, None, :] + (k * dy) * t[None, :, None] + gain).astype(np.float32)


def apply_light(img: np.ndarray, person: np.ndarray, scene: np.ndarray, head: np.ndarray, cast) -> np.ndarray:
    """img * scene * (1 + (head - 1) * person) * cast, rounded and saturated to uint8 in one pass.

    img (S, S, 3) uint8; person (S, S) uint8 coverage of the lit person (255 = fully); scene, head
    (G, G) float32 grids (resized here); cast: BGR multipliers."""
    size = img.shape[:2][::-1]
    s = cv2.resize(scene, size, interpolation=cv2.INTER_LINEAR)             # (S, S)
    h = cv2.resize(head - 1.0, size, interpolation=cv2.INTER_LINEAR)
    hp = cv2.multiply(h, person, scale=1.0 / 255.0, dtype=cv2.CV_32F)      # (head - 1) * coverage
    gain = cv2.add(s, cv2.multiply(s, hp))                                  # (S, S) float32
    # one (S, S, 3) gain with the cast per channel, then one saturating multiply of the image
    return cv2.multiply(img, cv2.merge([gain * np.float32(c) for c in cast]), dtype=cv2.CV_8U)


def blur(img: np.ndarray, degrade, size: int) -> np.ndarray:
    scale = size / 128.0
    if degrade.blur_kind == "motion":
        length = max(degrade.blur * scale, 1.0)
        k = int(np.ceil(length)) | 1
        kernel = np.zeros((k, k), np.float32)
        c = (k - 1) / 2
        d = np.array([np.cos(np.radians(degrade.blur_angle)), np.sin(np.radians(degrade.blur_angle))]) * (length - 1) / 2
        cv2.line(kernel, tuple(int(v) for v in np.round((c - d) * 16)), tuple(int(v) for v in np.round((c + d) * 16)),
                 1.0, 1, AA, 4)
        kernel /= kernel.sum()
        return cv2.filter2D(img, -1, kernel, borderType=cv2.BORDER_REFLECT)
    if degrade.blur_kind == "defocus":
        # GaussianBlur's own kernel (size from sigma as it picks it for 8-bit images), applied with
        # sepFilter2D: the same blur (within 1 level of rounding) at a third of GaussianBlur's bit-exact cost
        sigma = degrade.blur * scale
        kernel = cv2.getGaussianKernel(int(round(sigma * 6 + 1)) | 1, sigma)
        return cv2.sepFilter2D(img, -1, kernel, kernel, borderType=cv2.BORDER_REFLECT_101)
    return img


@lru_cache(maxsize=4)
def _noise_bank(size: int) -> np.ndarray:
    """(2 size, 2 size, 3) float32 unit Gaussian noise, drawn once per process from a fixed seed (so
    every worker holds the same bank)."""
    bank = np.random.default_rng(0x5EED).standard_normal((2 * size, 2 * size, 3), dtype=np.float32)
    bank.setflags(write=False)
    return bank


def noise(img: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian sensor noise: a window at a random offset of a precomputed bank, times ``sigma``
    (drawing fresh normals for every pixel cost more than the rest of a face's light and camera)."""
    h, w = img.shape[:2]
    bank = _noise_bank(max(h, w))
    y, x = rng.integers(0, bank.shape[0] - h + 1), rng.integers(0, bank.shape[1] - w + 1)
    return cv2.addWeighted(img, 1.0, bank[y:y + h, x:x + w], float(sigma), 0.0, dtype=cv2.CV_8U)


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)
