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

from distill.data.synthface.face_model import FX_SHIFT, PIVOT, Geometry
from distill.data.synthface.shape import EXPRESSION, HEAD_AXES, HEAD_CENTRE, catmull_rom_weights

AA = cv2.LINE_AA
SHIFT = FX_SHIFT               # fractional bits for cv2 drawing
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
    cv2.ellipse(img, (round(float(cx) * ONE), round(float(cy) * ONE)),
                (max(1, round(float(ax) * ONE)), max(1, round(float(ay) * ONE))), float(angle), 0, 360, colour,
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
        contour = g.fixed["eye_contours"][0 if side == "right" else 1]       # fixed point: upper + lower lid
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


def _nose(img, g: Geometry, f: dict, look, light) -> None:
    """The wall facing away from the light in shade, round wings and tip, nostrils (``f``: g.fixed)."""
    lx, ly, lz = light.direction
    ln = math.sqrt(lx * lx + ly * ly + lz * lz)
    lx, ly, lz = lx / ln, ly / ln, lz / ln
    (_, _, c0), (_, _, c1), (_, _, c2) = g.rot.tolist()
    front_l = -(c0 * lx + c1 * ly + c2 * lz)
    (_, n_r), (_, n_l) = g.nose_walls
    (a0, a1, a2), (b0, b1, b2) = n_r.tolist(), n_l.tolist()
    nr, nl = a0 * lx + a1 * ly + a2 * lz, b0 * lx + b1 * ly + b2 * lz
    wall, nL = (f["walls"][0], nr) if nr < nl else (f["walls"][1], nl)
    k = min(max(1.0 + 0.5 * (nL - front_l), 0.72), 0.97)
    skin = look.skin
    cv2.fillPoly(img, [wall], tone(skin, k), AA, SHIFT)
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
    cv2.polylines(img, [f["p98"][55:60]], False, tone(skin, 0.72), 1, AA, SHIFT)   # the underside (68-pt 31-35)


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
    return head_shadings([g], [light], size, grid)[0]


def head_shadings(geoms: list, lights: list, size: int, grid: int = 16) -> np.ndarray:
    """(N, grid, grid) :func:`head_shading` of several faces at once, elementwise numpy only (each face's
    numbers do not depend on the batch).

    The ray through a cell centre is d = (u, v, 1); with the head ellipsoid's quadric Q = R diag(1/axes^2) R'
    and centre C (camera frame) it meets the surface at s d, s = (b - sqrt(b^2 - a c)) / a with a = d'Qd,
    b = d'QC, c = C'QC - 1 (a miss grazes the silhouette: the discriminant is clamped at 0); the normal
    there is n = Q (s d - C)."""
    R = np.array([g.rot for g in geoms])                                   # (N, 3, 3)
    Rt = [[R[:, j, m, None, None] for m in range(3)] for j in range(3)]    # (N, 1, 1) entries
    hc = (HEAD_CENTRE - PIVOT).tolist()
    depth = np.array([g.depth for g in geoms])[:, None, None]
    C = [Rt[j][0] * hc[0] + Rt[j][1] * hc[1] + Rt[j][2] * hc[2] for j in range(3)]
    C[2] = C[2] + depth
    w = (1.0 / HEAD_AXES**2).tolist()
    Q = [[Rt[j][0] * Rt[k][0] * w[0] + Rt[j][1] * Rt[k][1] * w[1] + Rt[j][2] * Rt[k][2] * w[2] for k in range(3)]
         for j in range(3)]
    t = (np.arange(grid) + 0.5) * (size / grid) - 0.5
    centre = np.array([g.centre for g in geoms])
    focal = np.array([g.focal for g in geoms])[:, None]
    U = ((t - centre[:, :1]) / focal)[:, None, :]                          # (N, 1, G) columns
    V = ((t - centre[:, 1:]) / focal)[:, :, None]                          # (N, G, 1) rows
    qd = [Q[0][k] * U + (Q[1][k] * V + Q[2][k]) for k in range(3)]        # (N, G, G): Q d (Q symmetric)
    qc = [Q[k][0] * C[0] + Q[k][1] * C[1] + Q[k][2] * C[2] for k in range(3)]
    a = qd[0] * U + qd[1] * V + qd[2]
    b = qd[0] * C[0] + qd[1] * C[1] + qd[2] * C[2]
    c = C[0] * qc[0] + C[1] * qc[1] + C[2] * qc[2] - 1.0
    s = (b - np.sqrt(np.maximum(b * b - a * c, 0.0))) / a
    nv = [s * qd[k] - qc[k] for k in range(3)]                             # gradient Q (x - C), x = s d
    L = np.array([l.direction for l in lights], dtype=np.float64)
    L = L / np.sqrt((L * L).sum(axis=1, keepdims=True))
    L = L[:, :, None, None]
    cos = (nv[0] * L[:, 0] + nv[1] * L[:, 1] + nv[2] * L[:, 2]) / np.sqrt(nv[0] * nv[0] + nv[1] * nv[1] + nv[2] * nv[2])
    ambient = np.array([l.ambient for l in lights])[:, None, None]
    diffuse = np.array([l.diffuse for l in lights])[:, None, None]
    return (ambient + diffuse * np.maximum(cos, 0.0)).astype(np.float32)


# ----------------------------------------------------------------------------- the person
def prepare(geoms: list) -> list[dict]:
    """Per face, what :func:`draw_person` needs in fixed point beyond the outlines, converted for all
    faces at once: the four lid curves (float and fixed point) and the 98 points; stored in (and
    returned as) each ``g.fixed``."""
    curves = np.stack([_LIDS @ g.p98 for g in geoms]).reshape(len(geoms), 4, len(_LID), 2)   # eye_contours
    fcurves = fx(curves)
    contours = np.ascontiguousarray(np.concatenate([fcurves[:, [0, 2]], fcurves[:, [1, 3], 1:-1]], axis=2))   # (N, 2, 32, 2)
    f98 = fx(np.stack([g.p98 for g in geoms]))
    out = []
    for i, g in enumerate(geoms):
        if g.fixed is None:
            g.fixed = _fixed(g)
        g.fixed.update(lids=curves[i], lids_fx=fcurves[i], p98=f98[i], eye_contours=contours[i])
        out.append(g.fixed)
    return out


def _fixed(g: Geometry) -> dict:
    """Geometry.fixed for a Geometry built without it."""
    return {"torso": fx(g.torso), "neck": fx(g.neck), "hair_back": fx(g.hair_back), "head_outline": fx(g.head_outline),
            "hair_outline": fx(g.hair_outline), "face_outline": fx(g.face_outline),
            "ears": tuple(fx(ear) for ear, _ in g.ears), "walls": tuple(fx(wall) for wall, _ in g.nose_walls)}


def draw_person(img: np.ndarray, mask: np.ndarray, g: Geometry, look, light, expression) -> None:
    """Paint the person onto ``img`` (H, W, 3) uint8 and its anti-aliased silhouette onto ``mask`` (H, W)
    (255 inside, partial coverage on the edge)."""
    mouth_open, close_right, close_left = float(expression[_MOUTH_OPEN]), float(expression[_CLOSE_R]), \
        float(expression[_CLOSE_L])
    skin = look.skin
    f = g.fixed if g.fixed is not None else _fixed(g)                       # the polygons in fixed point
    shapes = [(f["torso"], look.clothes), (f["neck"], tone(skin, 0.78))]
    if look.hair_style == "long":
        shapes.append((f["hair_back"], look.hair))
    shapes += [(ear, tone(skin, 0.9)) for ear, (_, facing) in zip(f["ears"], g.ears) if facing < 0.35]
    shapes.append((f["head_outline"], skin))
    if look.hair_style != "bald":
        shapes.append((f["hair_outline"], look.hair))
    shapes.append((f["face_outline"], skin))
    for pts, colour in shapes:
        cv2.fillPoly(img, [pts], colour, AA, SHIFT)
        cv2.fillPoly(mask, [pts], 255, AA, SHIFT)
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
    f = g.fixed if g.fixed is not None and "lids" in g.fixed else prepare([g])[0]
    curves, fcurves, f98 = f["lids"], f["lids_fx"], f["p98"]
    lids = {"right": ((curves[0], curves[1]), (fcurves[0], fcurves[1])),
            "left": ((curves[2], curves[3]), (fcurves[2], fcurves[3]))}
    ink = tone(look.hair, 0.35)
    fx_, fy_, fz_ = (-g.rot[:, 2]).tolist()                                 # the face's forward direction
    ball = (max(0.35, abs(fz_)), math.degrees(math.atan2(fy_, fx_)) if abs(fz_) < 0.999 else 0.0)
    for side, closure in sides:
        _eye(img, g, look, side, closure, *lids[side], ink, ball)
        _brow(img, f98, look, side)
    _mouth(img, g, f98, look, mouth_open)
    _nose(img, g, f, look, light)
    if look.glasses:
        _glasses(img, g, look)


_MOUTH_OPEN, _CLOSE_R, _CLOSE_L = (EXPRESSION.index(k) for k in ("mouth_open", "close_right", "close_left"))
