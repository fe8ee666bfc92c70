"""SynthFace geometry: the shape posed, projected and placed in the image, with self-occlusion.

The shape comes from :mod:`.shape` (head frame: mm, x right, y DOWN, z AWAY from the camera).

Pose (degrees), as seen in the image:
    yaw   > 0: the subject turns toward the IMAGE's right (the nose tip moves right of the face centre,
               the image-right half of the face, points 9-16, turns away and hides first);
    pitch > 0: the subject looks up (the nose tip moves up);
    roll  > 0: the head tilts clockwise in the image (the top of the head moves right).
    R = Rz(roll) @ Ry(yaw) @ Rx(pitch), about a pivot at the top of the neck.

Camera: an exact pinhole whose principal point is the image centre (so it mirrors onto itself); see
:func:`pose_face` for how the focal length and the placement are chosen.

Self-occlusion: a point is hidden when its rotated normal (shape.normals68/98) faces away from the ray
to the camera, or when it falls inside the projected silhouette of the nose while lying behind the nose
tip, or (pupils) when the lids are closed. Hidden points keep their true projected coordinates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from distill.data.synthface.shape import (EXPRESSION, HEAD_AXES, HEAD_CENTRE, IDENTITY, JAW, NOSE, NOSE98,
                                          deform, normals68, normals98, to98)

PIVOT = np.array([0.0, 60.0, 70.0])  # top of the neck: the head turns about this point
FX_SHIFT = 4                         # fractional bits of the cv2 fixed-point polygons (draw.SHIFT)


# ----------------------------------------------------------------------------- extra 3D points for drawing
@lru_cache(maxsize=1)
def _ellipsoid_grid() -> np.ndarray:
    """(N, 3) points on the head ellipsoid, upper part only (the jaw draws the lower outline)."""
    lat = np.radians(np.linspace(-90, 20, 12))   # from the top (-90) to a little below the equator
    lon = np.radians(np.arange(0, 360, 20))
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    s = np.stack([np.cos(la) * np.sin(lo), np.sin(la), -np.cos(la) * np.cos(lo)], axis=-1).reshape(-1, 3)
    return HEAD_CENTRE + s * HEAD_AXES


def hairline_plane(hairline: float) -> tuple[float, float]:
    """(y at the front of the forehead, slope dy/dz): the hair covers the ellipsoid above this plane."""
    return -98.0 - 6.0 * hairline, 0.68


@lru_cache(maxsize=1024)
def hairline_curve(hairline: float, num: int = 13) -> np.ndarray:
    """(num, 3) front half of the circle where the hair plane cuts the head ellipsoid (temple to temple).

    Called with ``hairline`` rounded to 0.01 so the cache holds a few hundred curves."""
    y0, k = hairline_plane(hairline)
    z0 = -5.0
    # in ellipsoid-normalised coordinates the ellipsoid is the unit sphere and the plane is n.s = d
    n = np.array([0.0, HEAD_AXES[1], -k * HEAD_AXES[2]])
    d = y0 - HEAD_CENTRE[1] - k * (z0 - HEAD_CENTRE[2])
    nn = np.linalg.norm(n)
    n, d = n / nn, d / nn
    r = np.sqrt(max(1.0 - d * d, 1e-6))
    u1 = np.array([1.0, 0.0, 0.0])
    u2 = np.cross(n, u1)
    if u2[2] > 0:       # make t = 0 the front of the face
        u2 = -u2
    t = np.linspace(-0.5 * np.pi, 0.5 * np.pi, num) * 1.05
    s = n * d + r * (np.sin(t)[:, None] * u1 + np.cos(t)[:, None] * u2)
    out = HEAD_CENTRE + s * HEAD_AXES
    out.setflags(write=False)
    return out


def _hairline_curves(values: np.ndarray, num: int = 13) -> np.ndarray:
    """:func:`hairline_curve` for an array of hairline values at once: (V, num, 3)."""
    y0, k = -98.0 - 6.0 * values, hairline_plane(0.0)[1]
    z0 = -5.0
    n = np.array([0.0, HEAD_AXES[1], -k * HEAD_AXES[2]])
    d = y0 - HEAD_CENTRE[1] - k * (z0 - HEAD_CENTRE[2])
    nn = np.linalg.norm(n)
    n, d = n / nn, d / nn
    r = np.sqrt(np.maximum(1.0 - d * d, 1e-6))
    u1 = np.array([1.0, 0.0, 0.0])
    u2 = np.cross(n, u1)
    if u2[2] > 0:
        u2 = -u2
    t = np.linspace(-0.5 * np.pi, 0.5 * np.pi, num) * 1.05
    s = n * d[:, None, None] + r[:, None, None] * (np.sin(t)[:, None] * u1 + np.cos(t)[:, None] * u2)
    return HEAD_CENTRE + s * HEAD_AXES


def _ring(centre, rx, rz, num=10) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, num, endpoint=False)
    return np.stack([centre[0] + rx * np.cos(t), np.full(num, centre[1]), centre[2] + rz * np.sin(t)], axis=1)


def _ear(side: float) -> np.ndarray:
    """(8, 3) outline of one ear, a flat ellipse on the side of the head."""
    t = np.linspace(0, 2 * np.pi, 8, endpoint=False)
    # attached at the front (x 81, z 64), standing out at the back (x 91, z 84)
    return np.stack([side * (86.0 + 5.0 * np.cos(t)), -18.0 + 17.0 * np.sin(t), 74.0 + 10.0 * np.cos(t)], axis=1)


NECK_TOP = _ring(np.array([0.0, 40.0, 78.0]), 42.0, 40.0)
NECK_BOTTOM = _ring(np.array([0.0, 175.0, 78.0]), 46.0, 44.0)
HAIR_BACK = np.array([[-92, 40, 85], [-96, 130, 100], [-60, 150, 110], [60, 150, 110], [96, 130, 100], [92, 40, 85]],
                     dtype=np.float64)  # long hair falling behind the neck
TORSO = np.array([[-60, 160, 75], [-140, 180, 80], [-200, 230, 80], [-230, 700, 80],
                  [230, 700, 80], [200, 230, 80], [140, 180, 80], [60, 160, 75]], dtype=np.float64)
EARS = np.stack([_ear(-1.0), _ear(1.0)])                               # (2, 8, 3)
EAR_NORMALS = np.array([[-1.0, 0.0, 0.5], [1.0, 0.0, 0.5]])
NOSE_BASE = np.array([[-16.0, -18.0, -12.0], [16.0, -18.0, -12.0],     # where the nose sides meet the cheeks
                      [-9.0, -38.0, -8.0], [9.0, -38.0, -8.0]])
NOSE_WALL_NORMALS = np.array([[-0.75, 0.1, -0.65], [0.75, 0.1, -0.65]])


# ----------------------------------------------------------------------------- pose and projection
def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """(3, 3) head -> camera rotation for angles in degrees (conventions in the module docstring):
    Rz(roll) @ Ry(yaw) @ Rx(pitch), written out (scalar math: this runs twice per face)."""
    y, p, r = math.radians(yaw), math.radians(pitch), math.radians(roll)
    cy, sy, cp, sp, cr, sr = math.cos(y), math.sin(y), math.cos(p), math.sin(p), math.cos(r), math.sin(r)
    a0, a1, a2 = (cy, sy * sp, -sy * cp), (0.0, cp, sp), (sy, -cy * sp, cy * cp)      # Ry @ Rx
    return np.array([[cr * a0[0] - sr * a1[0], cr * a0[1] - sr * a1[1], cr * a0[2] - sr * a1[2]],
                     [sr * a0[0] + cr * a1[0], sr * a0[1] + cr * a1[1], sr * a0[2] + cr * a1[2]],
                     a2])


@dataclass
class Geometry:
    """One posed face in image pixels. 2D arrays are (N, 2) float64, x first, 0-based."""

    p68: np.ndarray
    p98: np.ndarray
    vis68: np.ndarray            # (68,) float32 self-occlusion only (occluders are applied later)
    vis98: np.ndarray
    px_per_mm: float             # image scale at the face (for line widths, iris radius, blur)
    rot: np.ndarray              # (3, 3) head rotation
    depth: float                 # camera distance of the pivot, mm
    focal: float                 # pixels
    centre: np.ndarray           # (2,) principal point + placement offset: where the optical axis lands
    head_outline: np.ndarray     # convex polygon: skull + jaw
    face_outline: np.ndarray     # convex polygon: jaw + hairline
    hair_outline: np.ndarray     # convex polygon of the hair cap
    hair_back: np.ndarray        # convex polygon of long hair (behind the head)
    neck: np.ndarray
    torso: np.ndarray
    ears: list                   # [(polygon, facing)] for the right and left ear
    nose_walls: list             # [(polygon, normal in camera frame)] right then left
    cam: dict                    # name -> (N, 3) camera-frame points kept for drawing (glasses, masks)
    box: np.ndarray              # (4,) tight box of the 98 points
    fixed: dict = None           # name -> the same polygon in cv2 fixed point (int32, FX_SHIFT fractional bits):
                                 # head_outline, face_outline, hair_outline, hair_back, neck, torso, ears, walls
                                 # (draw.prepare adds the lids and the 98 points)


def _convex_hull(points: np.ndarray) -> np.ndarray:
    """(N, 2) points -> (M, 2) float64 convex hull, counter-clockwise with the y axis taken as up."""
    hull = cv2.convexHull(points.astype(np.float32), clockwise=False)[:, 0, :]
    return hull.astype(np.float64)


def inside_convex(points: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """(N,) bool: strictly inside the counter-clockwise convex polygon ``poly`` (M, 2)."""
    a = poly
    b = np.concatenate([poly[1:], poly[:1]])
    ex, ey = b[:, 0] - a[:, 0], b[:, 1] - a[:, 1]                               # (M,) edges
    cross = ex * (points[:, 1:2] - a[:, 1]) - ey * (points[:, 0:1] - a[:, 0])  # (N, M)
    return (cross > 0).all(axis=1)


# rows of the one array of head-frame points that is posed per face: (name, count)
_HEAD_ROWS = (("p68", 68), ("p98", 98), ("hairline", 13), ("skull", len(_ellipsoid_grid())), ("neck_top", 10),
              ("hair_back", len(HAIR_BACK)), ("ears", 16), ("nose_base", 4))
ROWS = {}
_start = 0
for _name, _n in _HEAD_ROWS:
    ROWS[_name] = slice(_start, _start + _n)
    _start += _n
_STATIC_HEAD = np.concatenate([NECK_TOP, HAIR_BACK, EARS.reshape(-1, 3), NOSE_BASE])
_BODY = np.concatenate([NECK_BOTTOM, TORSO])
_HAIRLINE = IDENTITY.index("hairline")
_BROW = IDENTITY.index("brow_thickness")
_CLOSE_R, _CLOSE_L = EXPRESSION.index("close_right"), EXPRESSION.index("close_left")


@lru_cache(maxsize=1)
def _points_model() -> tuple[np.ndarray, np.ndarray]:
    """(base (166, 3), basis (I + E, 166 * 3)): the 68 and 98 points of a face are
    base + [identity, expression] . basis. deform and to98 are both linear in the components (the brow
    thickness too), so one product replaces them; the rows are read off those functions."""
    def points(identity, expression):
        p68, pupils = deform(identity, expression)
        return np.concatenate([p68, to98(p68, pupils, 5.0 + 1.2 * identity[_BROW])])
    n_id, n_ex = len(IDENTITY), len(EXPRESSION)
    base = points(np.zeros(n_id), np.zeros(n_ex))
    eye = np.eye(n_id + n_ex)
    basis = np.stack([(points(e[:n_id], e[n_id:]) - base).ravel() for e in eye])
    for a in (base, basis):
        a.setflags(write=False)
    return base, basis


def _rotations(angles: list[tuple[float, float, float]]) -> np.ndarray:
    """(N, 3, 3) :func:`rotation` of each (yaw, pitch, roll), scalar math per face (math.sin/cos:
    the same bits whatever the batch)."""
    rows = []
    for yaw, pitch, roll in angles:
        y, p, r = math.radians(yaw), math.radians(pitch), math.radians(roll)
        cy, sy, cp, sp, cr, sr = math.cos(y), math.sin(y), math.cos(p), math.sin(p), math.cos(r), math.sin(r)
        a0, a1, a2 = (cy, sy * sp, -sy * cp), (0.0, cp, sp), (sy, -cy * sp, cy * cp)
        rows.append([cr * a0[0] - sr * a1[0], cr * a0[1] - sr * a1[1], cr * a0[2] - sr * a1[2],
                     sr * a0[0] + cr * a1[0], sr * a0[1] + cr * a1[1], sr * a0[2] + cr * a1[2],
                     a2[0], a2[1], a2[2]])
    return np.array(rows, dtype=np.float64).reshape(-1, 3, 3)


def _rotate(x: np.ndarray, R: np.ndarray) -> np.ndarray:
    """(N, P, 3) points x -> (N, P, 3) points R x per face, R (N, 3, 3); written out elementwise
    (no BLAS): every face gets the same bits whatever the batch it is posed in."""
    X, Y, Z = x[..., 0], x[..., 1], x[..., 2]
    out = np.empty(np.broadcast_shapes(X.shape, R.shape[:1] + (1,)) + (3,))
    for j in range(3):
        r = R[:, j, :, None]                                                # (N, 3, 1)
        out[..., j] = X * r[:, 0] + Y * r[:, 1] + Z * r[:, 2]
    return out


def pose_face(params, size: int) -> Geometry:
    """Deform, pose, project and place one face (``params``: a :class:`~.params.FaceParams`).

    The face is projected with a unit focal length first; the focal length is then the one that
    makes the longer side of the 98-point box ``face_frac * size``, and the optical axis is placed so
    that the box sits at (place_x, place_y) of the free room (plus the sub-pixel shift). Both steps
    keep an exact pinhole camera whose principal point mirrors onto itself.
    """
    return pose_faces([params], size)[0]


def pose_faces(params_list, size: int) -> list[Geometry]:
    """:func:`pose_face` for several faces at once: the per-point arithmetic runs once over the batch,
    elementwise (or as one small product per face), so each face's numbers do not depend on the batch
    it is in; the convex hulls are then taken face by face."""
    n = len(params_list)
    base, basis = _points_model()
    comps = np.array([np.concatenate([p.identity, p.expression]) for p in params_list])   # (N, I + E)
    # base + comps . basis: a stack of one-row products (the same product for a face whatever the batch)
    p166 = (base.ravel() + np.matmul(comps[:, None, :], basis)[:, 0]).reshape(n, 166, 3)
    rests, caps = zip(*(_head_rest(round(float(p.identity[_HAIRLINE]), 2)) for p in params_list))
    R = _rotations([(p.yaw, p.pitch, p.roll) for p in params_list])
    Rb = _rotations([(0.4 * p.yaw, 0.0, 0.0) for p in params_list])         # the body follows the head only partly
    depth = np.array([p.distance * 150.0 for p in params_list])

    head = np.concatenate([p166 - PIVOT, np.stack(rests)], axis=1)         # (N, P, 3)
    cam = _rotate(head, R)                                                  # camera frame
    cam[..., 2] += depth[:, None]
    body = _rotate(_BODY_P[None], Rb)
    body[..., 2] += depth[:, None]
    uv = cam[..., :2] / cam[..., 2:3]                                       # unit focal length
    uv_body = body[..., :2] / body[..., 2:3]

    u98 = uv[:, ROWS["p98"]]
    lo, hi = u98.min(axis=1), u98.max(axis=1)                               # (N, 2)
    extent = hi - lo
    frac = np.array([p.face_frac for p in params_list])
    focal = frac * size / np.maximum(extent[:, 0], extent[:, 1])
    place = np.array([(p.place_x, p.place_y) for p in params_list])
    shift = np.array([(p.shift_x, p.shift_y) for p in params_list])
    lo_room = 0.5 * extent * focal[:, None] + 0.03 * size                   # keep 3% of the image free
    hi_room = (size - 1) - lo_room
    target = np.where(hi_room > lo_room, lo_room + place * (hi_room - lo_room), 0.5 * (size - 1))
    centre = target - 0.5 * (lo + hi) * focal[:, None] + shift              # (N, 2)
    # the head's rows then the body's, one array: every polygon below is one gather from it
    q = np.concatenate([uv, uv_body], axis=1) * focal[:, None, None] + centre[:, None, :]
    q32 = q.astype(np.float32)                                              # what cv2.convexHull takes
    qfx = np.rint(q32 * (1 << FX_SHIFT)).astype(np.int32)                   # the same in cv2 fixed point

    vis = _visibility(cam[:, :166], q[:, :166], q32, R, params_list)        # (N, 166) float32

    ear_cam = cam[:, ROWS["ears"]].reshape(n, 2, 8, 3)
    view = -ear_cam.sum(axis=2)                                             # toward the camera (scale cancels)
    ear_n = _rotate(_EAR_UNIT[None], R)                                     # (N, 2, 3)
    facing = ((ear_n * view).sum(axis=2) / np.sqrt((view * view).sum(axis=2))).tolist()
    wall_n = _rotate(NOSE_WALL_NORMALS[None], R)                            # (N, 2, 3)
    q98 = q[:, ROWS["p98"]]
    box = np.concatenate([q98.min(axis=1), q98.max(axis=1)], axis=1)
    walls = q[:, _WALLS]                                                    # (N, 2, 7, 2)
    walls_fx = np.ascontiguousarray(qfx[:, _WALLS])                         # cv2 wants contiguous rows
    torso = q[:, _TORSO]

    out = []
    for i in range(n):
        qi, fi, xi = q[i], q32[i], qfx[i]
        cap = np.concatenate([_SKULL_IDX[caps[i]], _HAIRLINE_IDX])
        hulls = {name: idx[_hull_index(fi[idx])] for name, idx in
                 (("head_outline", _HEAD_IDX), ("face_outline", _FACE_IDX), ("hair_outline", cap), ("neck", _NECK_IDX))}
        back = np.concatenate([hulls["hair_outline"], _HAIR_BACK_IDX])     # hull(A + B) = hull(hull(A) + B)
        hulls["hair_back"] = back[_hull_index(fi[back])]
        fixed = {name: xi[idx] for name, idx in hulls.items()}
        fixed["torso"] = xi[_TORSO]
        fixed["ears"] = (xi[_EARS_IDX[0]], xi[_EARS_IDX[1]])
        fixed["walls"] = (walls_fx[i, 0], walls_fx[i, 1])
        out.append(Geometry(
            p68=qi[ROWS["p68"]], p98=q98[i], vis68=vis[i, :68], vis98=vis[i, 68:],
            px_per_mm=float(focal[i] / depth[i]), rot=R[i], depth=float(depth[i]), focal=float(focal[i]),
            centre=centre[i],
            head_outline=qi[hulls["head_outline"]], face_outline=qi[hulls["face_outline"]],
            hair_outline=qi[hulls["hair_outline"]], hair_back=qi[hulls["hair_back"]], neck=qi[hulls["neck"]],
            torso=torso[i],
            ears=[(qi[_EARS_IDX[0]], facing[i][0]), (qi[_EARS_IDX[1]], facing[i][1])],
            nose_walls=[(walls[i, 0], wall_n[i, 0]), (walls[i, 1], wall_n[i, 1])],
            cam={"p68": cam[i, ROWS["p68"]]},
            box=box[i], fixed=fixed,
        ))
    return out


def _hull_index(points: np.ndarray) -> np.ndarray:
    """Indices into ``points`` (float32) of their convex hull, counter-clockwise as :func:`_convex_hull`."""
    return cv2.convexHull(points, clockwise=False, returnPoints=False)[:, 0]


def _rows(name: str) -> np.ndarray:
    return np.arange(ROWS[name].start, ROWS[name].stop)


_N_HEAD = sum(n for _, n in _HEAD_ROWS)
_JAW_IDX = _rows("p68")[JAW]
_SKULL_IDX, _HAIRLINE_IDX = _rows("skull"), _rows("hairline")
_HEAD_IDX = np.concatenate([_SKULL_IDX, _JAW_IDX])                          # skull + jaw
_FACE_IDX = np.concatenate([_JAW_IDX, _HAIRLINE_IDX])                       # jaw + hairline
_HAIR_BACK_IDX = _rows("hair_back")
_NECK_IDX = np.concatenate([_rows("neck_top"), _N_HEAD + np.arange(len(NECK_BOTTOM))])
_TORSO = _N_HEAD + len(NECK_BOTTOM) + np.arange(len(TORSO))
_NB = _rows("nose_base")
_WALLS = np.stack([np.r_[27:32, _NB[0], _NB[2]], np.r_[27:31, 35, _NB[1], _NB[3]]])   # right, left nose wall
_NOSE_HULL = np.arange(28, 36)
_EARS_IDX = _rows("ears").reshape(2, 8)


_BODY_P = _BODY - PIVOT
_EAR_UNIT = EAR_NORMALS / np.linalg.norm(EAR_NORMALS, axis=1, keepdims=True)


HAIRLINE_STEPS = 250     # hairline values on the 0.01 grid within +-2.5 (the clipped identity range) are tabled


@lru_cache(maxsize=1)
def _head_rest_table() -> tuple[np.ndarray, np.ndarray]:
    """(2 HAIRLINE_STEPS + 1, R, 3) head-frame rows after the 166 points, minus the pivot, and the
    (.., skull grid) hair-cap flags, for every hairline value on the 0.01 grid in +-2.5: one
    vectorised pass per process instead of one curve per distinct value."""
    values = np.round(np.arange(-HAIRLINE_STEPS, HAIRLINE_STEPS + 1) / 100.0, 2)
    curves = _hairline_curves(values)                                      # (V, 13, 3)
    grid = _ellipsoid_grid()
    fixed = np.concatenate([grid, _STATIC_HEAD]) - PIVOT
    rest = np.concatenate([curves - PIVOT, np.broadcast_to(fixed, (len(values),) + fixed.shape)], axis=1)
    y0 = -98.0 - 6.0 * values                                              # hairline_plane, vectorised
    cap = grid[None, :, 1] < y0[:, None] + 0.68 * (grid[None, :, 2] + 5.0)
    rest.setflags(write=False)
    cap.setflags(write=False)
    return rest, cap


def _head_rest_direct(hairline: float) -> tuple[np.ndarray, np.ndarray]:
    grid = _ellipsoid_grid()
    y0, k = hairline_plane(hairline)
    cap = grid[:, 1] < y0 + k * (grid[:, 2] + 5.0)                        # grid points under the hair
    rest = np.concatenate([hairline_curve.__wrapped__(hairline), grid, _STATIC_HEAD]) - PIVOT
    return rest, cap


def _head_rest(hairline: float) -> tuple[np.ndarray, np.ndarray]:
    """The head-frame rows after the 166 points (hairline curve, skull grid, static parts) minus the
    pivot, and the skull-grid points under the hair, for one hairline value rounded to 0.01."""
    i = int(round(hairline * 100.0))
    if abs(i) <= HAIRLINE_STEPS and abs(i / 100.0 - hairline) < 1e-12:
        rest, cap = _head_rest_table()
        return rest[i + HAIRLINE_STEPS], cap[i + HAIRLINE_STEPS]
    return _head_rest_direct(hairline)


@lru_cache(maxsize=1)
def _point_tables() -> tuple[np.ndarray, np.ndarray]:
    """(166, 3) normals of the 68 then the 98 points; (166,) True for nose points (never behind the nose)."""
    normals = np.concatenate([normals68(), normals98()])
    nose = np.zeros(166, bool)
    nose[NOSE] = True
    nose[68 + NOSE98] = True
    return normals, nose


def _visibility(cam: np.ndarray, q: np.ndarray, q32: np.ndarray, R: np.ndarray, params_list) -> np.ndarray:
    """(N, 166) self-occlusion flags (1 visible, 0 hidden) of the 68 then 98 points (rows of ``cam``/``q``,
    (N, 166, 3) and (N, 166, 2); ``q32``: the image points in float32) of each face."""
    normals, nose = _point_tables()
    nc = _rotate(normals[None], R)                                          # (N, 166, 3) normals, camera frame
    vis = (nc[..., 0] * cam[..., 0] + nc[..., 1] * cam[..., 1] + nc[..., 2] * cam[..., 2]) < 0.0   # faces the camera
    behind = (cam[..., 2] > cam[:, 30:31, 2] + 8.0) & ~nose                 # only these can hide behind the nose
    if behind.any():
        # the nose silhouette of every face as 8 edges (a hull of fewer vertices repeats its first edge,
        # which changes nothing), then one strict inside test of all points against all edges
        n = len(q)
        a = np.empty((n, 8, 2))
        b = np.empty((n, 8, 2))
        for i in range(n):
            h = cv2.convexHull(q32[i, _NOSE_HULL], clockwise=False)[:, 0, :]
            m = len(h)
            a[i, :m] = h
            b[i, :m - 1] = h[1:]
            b[i, m - 1] = h[0]
            a[i, m:] = h[0]
            b[i, m:] = h[1 % m]
        ex, ey = (b - a)[..., 0][:, None, :], (b - a)[..., 1][:, None, :]        # (N, 1, 8)
        cross = ex * (q[..., 1:2] - a[:, None, :, 1]) - ey * (q[..., 0:1] - a[:, None, :, 0])   # (N, 166, 8)
        vis &= ~(behind & (cross > 0).all(axis=2))
    closed = np.array([(p.expression[_CLOSE_R] < 0.5, p.expression[_CLOSE_L] < 0.5) for p in params_list])
    vis[:, 68 + 96] &= closed[:, 0]
    vis[:, 68 + 97] &= closed[:, 1]
    return vis.astype(np.float32)
