"""SynthFace drawing: one posed face (a :class:`~.face_model.Geometry`) painted with OpenCV.

Painter's order, back to front: torso, neck, long hair, ears turned away, head, hair cap, face,
ears turned toward the camera, beard, then the features from the far side to the near side (eye
shadow, eye, brow), the mouth, the nose (last: it covers the far eye on a turned face), glasses.
Features are drawn FROM the landmark points (eye contours through the 98-point lids, brows as the
polygon of their 9 points, lips from the lip points, iris centred on the pupil point), so the points sit
on what is drawn. Then the head is shaded: each pixel's ray is intersected with the posed head
ellipsoid and lit with Lambert's law, so the shading follows the pose and the light.

All polygons use cv2.LINE_AA with 4 fractional bits (coordinates are float, never rounded to whole
pixels); OpenCV puts pixel centres at integer coordinates, as the rest of the library does.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from distill.data.synthface.face_model import PIVOT, Geometry
from distill.data.synthface.shape import EXPRESSION, HEAD_AXES, HEAD_CENTRE, catmull_rom_weights

AA = cv2.LINE_AA
SHIFT = 4                      # fractional bits for cv2 drawing
ONE = 1 << SHIFT
SCLERA = (215, 222, 228)
PUPIL = (12, 12, 14)


def fx(points: np.ndarray) -> np.ndarray:
    """Float pixel coordinates -> cv2 fixed point (int32, SHIFT fractional bits)."""
    return np.rint(points * ONE).astype(np.int32)


def poly(img: np.ndarray, pts: np.ndarray, colour, aa: bool = True) -> None:
    cv2.fillPoly(img, [fx(pts)], colour, AA if aa else cv2.LINE_8, SHIFT)


def lines(img: np.ndarray, pts: np.ndarray, colour, thickness: int = 1, closed: bool = False) -> None:
    cv2.polylines(img, [fx(pts)], closed, colour, max(1, int(thickness)), AA, SHIFT)


def ellipse(img: np.ndarray, centre, axes, angle: float, colour, thickness: int = -1, aa: bool = True) -> None:
    cx, cy = centre
    ax, ay = axes
    cv2.ellipse(img, (int(round(cx * ONE)), int(round(cy * ONE))),
                (max(1, int(round(ax * ONE))), max(1, int(round(ay * ONE)))), float(angle), 0, 360, colour,
                thickness, AA if aa else cv2.LINE_8, SHIFT)


def tone(colour, k: float) -> tuple:
    b, g, r = colour
    return (min(255.0, b * k), min(255.0, g * k), min(255.0, r * k))


def _blend(img: np.ndarray, draw, alpha: float) -> None:
    """Draw with ``draw(layer)`` on a copy and mix it in with opacity ``alpha``."""
    layer = img.copy()
    draw(layer)
    cv2.addWeighted(layer, alpha, img, 1.0 - alpha, 0.0, dst=img)


# ----------------------------------------------------------------------------- 2D lid curves
def _cr_matrix(n_ctrl: int, per_seg: int) -> np.ndarray:
    """(M, n_ctrl) open Catmull-Rom weights, ``per_seg`` samples per segment, ends included."""
    ts = np.linspace(0, n_ctrl - 1, (n_ctrl - 1) * per_seg + 1)
    return np.stack([catmull_rom_weights(n_ctrl, t) for t in ts])


_LID = _cr_matrix(5, 4)        # a lid: 5 of the 98 points (corner, 3 lid points, corner)
EYES98 = {"right": ([60, 61, 62, 63, 64], [64, 65, 66, 67, 60], 96, [33, 34, 35, 36, 37], [41, 40, 39, 38]),
          "left": ([68, 69, 70, 71, 72], [72, 73, 74, 75, 68], 97, [42, 43, 44, 45, 46], [50, 49, 48, 47])}


def _lids_matrix() -> np.ndarray:
    """(4 * 17, 98): the right upper, right lower, left upper, left lower lid curves from the 98 points."""
    W = np.zeros((4, len(_LID), 98))
    for k, idx in enumerate((EYES98["right"][0], EYES98["right"][1], EYES98["left"][0], EYES98["left"][1])):
        W[k][:, idx] = _LID
    return W.reshape(-1, 98)


_LIDS = _lids_matrix()


def eye_contours(p98: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{side: dense (17, 2) upper and lower lid curves} through the 98 eye points (one product for all four)."""
    c = (_LIDS @ p98).reshape(4, len(_LID), 2)
    return {"right": (c[0], c[1]), "left": (c[2], c[3])}


# ----------------------------------------------------------------------------- features
def _eye(img, g: Geometry, look, side: str, closure: float, lids, flids, ink, ball) -> None:
    """One eye. ``lids``: float (17, 2) upper and lower lid curves, ``flids`` the same in cv2 fixed point;
    ``ink``: the lid colour; ``ball``: (squash, angle) of the iris/pupil ellipses, shared by both eyes."""
    up, low = lids
    fup, flow = flids
    s = g.px_per_mm
    if look.eye_shadow is not None:
        brow_low = g.p98[EYES98[side][4]]
        above = np.concatenate([up, (0.55 * brow_low + 0.45 * up[[16, 11, 6, 1]])[::-1]])  # lid up toward the brow
        _blend(img, lambda layer: poly(layer, above, look.eye_shadow), 0.55)
    if closure < 0.85:
        contour = np.concatenate([fup, flow[1:-1]])                          # fixed point
        bx, by, bw, bh = cv2.boundingRect(contour)
        h, w = img.shape[:2]
        x0, y0 = max((bx >> SHIFT) - 1, 0), max((by >> SHIFT) - 1, 0)
        x1, y1 = min(((bx + bw - 1 + ONE - 1) >> SHIFT) + 2, w), min(((by + bh - 1 + ONE - 1) >> SHIFT) + 2, h)
        if x1 > x0 and y1 > y0:
            # paint the eyeball in a small patch and copy it through the eye opening; the lid lines
            # drawn next cover the opening's hard edge
            roi = img[y0:y1, x0:x1]
            m = np.zeros(roi.shape[:2], np.uint8)
            cv2.fillPoly(m, [contour], 255, cv2.LINE_8, SHIFT, (-x0 * ONE, -y0 * ONE))
            content = np.empty_like(roi)
            content[:] = SCLERA
            px, py = g.p98[EYES98[side][2]].tolist()
            px, py = px - x0, py - y0
            squash, angle = ball
            ellipse(content, (px, py), (5.6 * s * squash, 5.6 * s), angle, look.iris)
            ellipse(content, (px, py), (2.2 * s * squash, 2.2 * s), angle, PUPIL)
            ellipse(content, (px + 2.0 * s, py - 2.0 * s), (0.6 * s, 0.6 * s), 0, (235, 240, 245))   # catch light
            cv2.copyTo(content, m, roi)
        cv2.polylines(img, [flow], False, tone(look.skin, 0.65), 1, AA, SHIFT)
    cv2.polylines(img, [fup], False, ink, 2 if look.eyeliner else max(1, round(0.9 * s)), AA, SHIFT)
    if look.eyeliner:
        corner = up[0] if side == "right" else up[-1]
        inner = up[1] if side == "right" else up[-2]
        wing = corner + (corner - inner) * 1.2 + (0, -1.0 * s)
        lines(img, np.stack([corner, wing]), ink, 2)


_BROWS = {side: EYES98[side][3] + EYES98[side][4] for side in EYES98}


def _brow(img, f98: np.ndarray, look, side: str) -> None:
    """The brow polygon, from the 98 points in fixed point (``f98 = fx(g.p98)``)."""
    hair = look.hair
    colour = tone(hair, 0.75) if (hair[0] + hair[1] + hair[2]) < 360 else tone(hair, 0.55)
    cv2.fillPoly(img, [f98[_BROWS[side]]], colour, AA, SHIFT)


_OPEN_MOUTH = np.arange(88, 96)
_UPPER_LIP = np.r_[76:83, 92:87:-1]
_LOWER_LIP = np.r_[82:88, 76, 88, 95, 94, 93, 92]


def _mouth(img, g: Geometry, f98: np.ndarray, look, mouth_open: float) -> None:
    p = g.p98
    lips = look.lipstick if look.lipstick is not None else look.lips
    if mouth_open > 0.08:
        inner_up = p[88:93]                              # 60..64, left corner to right corner
        cv2.fillPoly(img, [f98[_OPEN_MOUTH]], (40, 30, 55), AA, SHIFT)   # the whole inner contour: the open mouth
        gap = math.hypot(*(p[94] - p[90]).tolist())
        teeth = np.concatenate([inner_up, inner_up[::-1] + (0, min(0.45 * gap, 3.0 * g.px_per_mm))])
        poly(img, teeth, (205, 215, 222))
    cv2.fillPoly(img, [f98[_UPPER_LIP]], lips, AA, SHIFT)
    cv2.fillPoly(img, [f98[_LOWER_LIP]], tone(lips, 1.08), AA, SHIFT)
    cv2.polylines(img, [f98[88:93]], False, tone(lips, 0.55), 1, AA, SHIFT)


def _nose(img, g: Geometry, look, light) -> None:
    """The wall facing away from the light in shade, round wings and tip, nostrils."""
    lx, ly, lz = light.direction
    ln = math.sqrt(lx * lx + ly * ly + lz * lz)
    L = np.array([lx / ln, ly / ln, lz / ln])
    front_l = -float(g.rot[:, 2] @ L)
    (wall_r, n_r), (wall_l, n_l) = g.nose_walls
    nr, nl = float(n_r @ L), float(n_l @ L)
    wall, nL = (wall_r, nr) if nr < nl else (wall_l, nl)
    k = min(max(1.0 + 0.5 * (nL - front_l), 0.72), 0.97)
    skin = look.skin
    poly(img, wall, tone(skin, k))
    q, s = g.p68.tolist(), g.px_per_mm
    vis = g.vis68
    (x30, y30), (x33, y33) = q[30], q[33]
    for wing in (31, 35):
        if vis[wing] > 0:
            x, y = q[wing]
            ellipse(img, (0.8 * x + 0.2 * x30, 0.8 * y + 0.2 * y30), (3.2 * s, 2.8 * s), 0, tone(skin, 0.94))
    ellipse(img, (0.75 * x30 + 0.25 * x33, 0.75 * y30 + 0.25 * y33), (3.6 * s, 3.4 * s), 0, tone(skin, 1.02))
    dark = tone(skin, 0.35)
    for wing, mid in ((31, 32), (35, 34)):
        if vis[mid] == 0:
            continue
        (xw, yw), (xm, ym) = q[wing], q[mid]
        ellipse(img, (0.55 * xm + 0.45 * xw, 0.55 * ym + 0.45 * yw), (1.7 * s, 0.9 * s),
                math.degrees(math.atan2(yw - y33, xw - x33)), dark)
    lines(img, g.p68[31:36], tone(skin, 0.72), 1)          # the underside of the nose


def _beard(img, g: Geometry, look) -> None:
    q = g.p68
    top = [0.5 * q[54] + 0.5 * q[35], 0.55 * q[51] + 0.45 * q[33], 0.5 * q[48] + 0.5 * q[31]]
    pts = np.concatenate([q[3:14], np.stack(top)])
    _blend(img, lambda layer: poly(layer, pts, look.hair), 0.8)


def _glasses(img, g: Geometry, look) -> None:
    q, s = g.p68, g.px_per_mm
    frame = (30, 30, 35)
    centres = []
    for eye in (slice(36, 42), slice(42, 48)):
        c = q[eye].mean(axis=0)
        d = q[eye.start + 3] - q[eye.start]
        ang = np.degrees(np.arctan2(d[1], d[0]))
        r = max(np.linalg.norm(d) * 0.75, 3.0)
        ellipse(img, c, (r, 0.75 * r), ang, frame, 1)
        centres.append((c, r, ang))
    (c0, r0, a0), (c1, r1, a1) = centres
    u = (c1 - c0) / max(np.linalg.norm(c1 - c0), 1e-6)
    lines(img, np.stack([c0 + u * r0, q[27] + (0, 1.5 * s), c1 - u * r1]), frame, 1)


# ----------------------------------------------------------------------------- shading
def head_shading(g: Geometry, light, size: int, grid: int = 16) -> np.ndarray:
    """(grid, grid) float32 Lambert factor of the posed head ellipsoid (ambient + diffuse * max(0, n.L)),
    sampled at the centres of a grid x grid tiling of the image: cv2.resize (INTER_LINEAR) to (size, size)
    gives the per-pixel factor (the shading is smooth, so a coarse grid is all it needs)."""
    R = g.rot
    C = R @ (HEAD_CENTRE - PIVOT)
    C[2] += g.depth
    M = R.T / HEAD_AXES[:, None]                                           # (3, 3) camera -> unit sphere
    Q = M.T @ M                                                            # the ellipsoid's quadric
    t = (np.arange(grid) + 0.5) * (size / grid) - 0.5
    d = np.empty((grid, grid, 3))                                          # rays through the grid's pixel centres
    d[..., 0] = ((t - g.centre[0]) / g.focal)[None, :]
    d[..., 1] = ((t - g.centre[1]) / g.focal)[:, None]
    d[..., 2] = 1.0
    d = d.reshape(-1, 3)
    qd = d @ Q                                                             # (G*G, 3)
    qc = Q @ C
    a = (qd * d).sum(axis=1)
    b = qd @ C
    disc = np.maximum(b * b - a * (C @ qc - 1.0), 0.0)                    # misses graze the silhouette
    s = (b - np.sqrt(disc)) / a
    n = s[:, None] * qd - qc                                               # gradient Q (x - C), x = s d
    L = np.asarray(light.direction, dtype=np.float64)
    L = L / np.linalg.norm(L)
    cos = (n @ L) / np.sqrt((n * n).sum(axis=1))
    shade = light.ambient + light.diffuse * np.maximum(cos, 0.0)
    return shade.reshape(grid, grid).astype(np.float32)


# ----------------------------------------------------------------------------- the person
def draw_person(img: np.ndarray, mask: np.ndarray, g: Geometry, look, light, expression) -> None:
    """Paint the person onto ``img`` (H, W, 3) uint8 and its anti-aliased silhouette onto ``mask`` (H, W)
    (255 inside, partial coverage on the edge)."""
    mouth_open, close_right, close_left = float(expression[_MOUTH_OPEN]), float(expression[_CLOSE_R]), \
        float(expression[_CLOSE_L])
    skin = look.skin
    shapes = [(g.torso, look.clothes), (g.neck, tone(skin, 0.78))]
    if look.hair_style == "long":
        shapes.append((g.hair_back, look.hair))
    shapes += [(ear, tone(skin, 0.9)) for ear, facing in g.ears if facing < 0.35]
    shapes.append((g.head_outline, skin))
    if look.hair_style != "bald":
        shapes.append((g.hair_outline, look.hair))
    shapes.append((g.face_outline, skin))
    for pts, colour in shapes:
        f = [fx(pts)]
        cv2.fillPoly(img, f, colour, AA, SHIFT)
        cv2.fillPoly(mask, f, 255, AA, SHIFT)
    for ear, facing in g.ears:
        if facing >= 0.35:
            poly(img, ear, tone(skin, 0.93))
            poly(mask, ear, 255)
            c = ear.mean(axis=0)
            lines(img, 0.55 * ear + 0.45 * c, tone(skin, 0.7), 1, closed=True)
    if look.blush > 0:
        for a, b in ((2, 31), (14, 35)):
            c = 0.5 * g.p68[a] + 0.5 * g.p68[b]
            r = 0.3 * np.linalg.norm(g.p68[a] - g.p68[b])
            _blend(img, lambda layer: ellipse(layer, c, (r, 0.7 * r), 0, (120, 110, 230)), look.blush)
    if look.beard:
        _beard(img, g, look)

    depth_r, depth_l = g.cam["p68"][39, 2], g.cam["p68"][42, 2]
    sides = [("right", close_right), ("left", close_left)]
    if depth_r < depth_l:   # the nearer eye last
        sides.reverse()
    curves = (_LIDS @ g.p98).reshape(4, len(_LID), 2)                       # eye_contours, all four at once
    fcurves = fx(curves)
    f98 = fx(g.p98)
    lids = {"right": ((curves[0], curves[1]), (fcurves[0], fcurves[1])),
            "left": ((curves[2], curves[3]), (fcurves[2], fcurves[3]))}
    ink = tone(look.hair, 0.35)
    fx_, fy_, fz_ = (-g.rot[:, 2]).tolist()                                 # the face's forward direction
    ball = (max(0.35, abs(fz_)), math.degrees(math.atan2(fy_, fx_)) if abs(fz_) < 0.999 else 0.0)
    for side, closure in sides:
        _eye(img, g, look, side, closure, *lids[side], ink, ball)
        _brow(img, f98, look, side)
    _mouth(img, g, f98, look, mouth_open)
    _nose(img, g, look, light)
    if look.glasses:
        _glasses(img, g, look)


_MOUTH_OPEN, _CLOSE_R, _CLOSE_L = (EXPRESSION.index(k) for k in ("mouth_open", "close_right", "close_left"))
