"""SynthFace shape model: the 3D mean face, identity and expression blendshapes, 68 -> 98 points, normals.

Everything is in the head frame of ``distill/assets/mean_face_68_3d.txt``: millimetres, x to the image
right (the subject's left), y DOWN, z AWAY from the camera. The mean face is symmetrised first
(averaged with its own mirror image through the iBUG-68 flip permutation), so a mirrored parameter set
gives the exact mirror image; that is what the mirror test relies on.

The 98-point (WFLW) shape is interpolated in 3D from the deformed 68 points BEFORE projection, so the
same visibility test applies to both; :func:`wflw_matrix` documents how each of the 98 is made.
Normals (for self-occlusion, see face_model): the gradient of a head ellipsoid, tilted 0.6 toward the
camera because landmarks sit on the front of the face; hand-set normals for the nose.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from distill.data import pose
from distill.data.schema import SCHEMAS

FLIP68 = np.array(SCHEMAS["ibug68"].flip_perm)

# Identity components: each value is in standard deviations (sampled ~N(0,1), clipped to +-2.5).
# The last four are asymmetric: mirroring a face negates them.
IDENTITY = ("face_width", "face_length", "jaw_width", "chin", "nose_length", "nose_width", "nose_depth",
            "eye_spacing", "eye_size", "lip_fullness", "mouth_width", "brow_height", "brow_thickness",
            "hairline", "eye_tilt_asym", "mouth_asym", "nose_dev", "jaw_asym")
ASYMMETRIC = ("eye_tilt_asym", "mouth_asym", "nose_dev", "jaw_asym")
# Expression components in [0, 1] (gaze in [-1, 1]); mirroring swaps the eyes and negates gaze_x.
EXPRESSION = ("mouth_open", "smile", "close_right", "close_left", "brows_up", "gaze_x", "gaze_y")

JAW = np.arange(0, 17)
NOSE = np.arange(27, 36)
R_EYE, L_EYE = np.arange(36, 42), np.arange(42, 48)
MOUTH = np.arange(48, 68)
NOSE98 = np.arange(51, 60)

# A head ellipsoid (centre, semi-axes, mm): normals for visibility, shading, the skull and the hair.
HEAD_CENTRE = np.array([0.0, -20.0, 70.0])
HEAD_AXES = np.array([82.0, 125.0, 82.0])
NORMAL_TILT = 0.6                    # how far landmark normals lean toward the camera


# ----------------------------------------------------------------------------- the mean face
@lru_cache(maxsize=1)
def mean_face() -> np.ndarray:
    """(68, 3) symmetrised mean face with the mouth closed (the published one is slightly open)."""
    p = pose.mean_face()
    p = 0.5 * (p + p[FLIP68] * np.array([-1.0, 1.0, 1.0]))
    # close the lips: the inner upper and lower lip lines meet halfway
    upper, lower = [61, 62, 63], [67, 66, 65]
    mid_y = 0.5 * (p[upper, 1] + p[lower, 1])
    p[upper, 1] = mid_y - 0.3
    p[lower, 1] = mid_y + 0.3
    p.setflags(write=False)
    return p


@lru_cache(maxsize=1)
def normals68() -> np.ndarray:
    """(68, 3) unit surface normals in the head frame (see module docstring)."""
    p = mean_face()
    g = (p - HEAD_CENTRE) / HEAD_AXES**2
    g /= np.linalg.norm(g, axis=1, keepdims=True)
    n = g + np.array([0.0, 0.0, -NORMAL_TILT])
    # the nose is not on the ellipsoid: its wings face sideways, its ridge forward
    n[27:31] = [0.0, -0.2, -1.0]
    n[31], n[35] = [-0.8, 0.25, -0.6], [0.8, 0.25, -0.6]
    n[32], n[34] = [-0.4, 0.5, -0.75], [0.4, 0.5, -0.75]
    n[33] = [0.0, 0.5, -0.85]
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    n.setflags(write=False)
    return n


# ----------------------------------------------------------------------------- identity and expression
def _deform_written_out(identity: np.ndarray, expression: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The definition of every identity and expression component, applied to the mean face.

    Returns the (68, 3) shape and (2, 3) pupils (right eye, left eye). Used once, with one unit
    component at a time, to build the linear blendshapes of :func:`deform`. Every deformation is
    mirror-equivariant (the mirrored face with mirrored parameters deforms to the mirrored result).
    Pupils are placed from the open-eye shape so closing the lids does not move them.
    """
    a = dict(zip(IDENTITY, np.asarray(identity, dtype=np.float64)))
    e = dict(zip(EXPRESSION, np.asarray(expression, dtype=np.float64)))
    p = mean_face().copy()
    x, y = p[:, 0], p[:, 1]  # views: edits below write into p
    side = np.sign(x)         # -1 subject's right (image left), +1 left, 0 midline

    # --- identity (mm or relative scale per unit of standard deviation)
    x *= 1.0 + 0.06 * a["face_width"]
    y[:] = -38.0 + (y + 38.0) * (1.0 + 0.06 * a["face_length"])  # about eye level
    low = np.clip(y / 77.0, 0.0, 1.0)                  # 0 above the mouth .. 1 at the chin
    x[JAW] *= 1.0 + 0.10 * a["jaw_width"] * low[JAW]
    y[JAW] += 5.0 * a["chin"] * low[JAW] ** 3
    y[NOSE[3:]] += 3.0 * a["nose_length"]
    y[NOSE[1:3]] += 1.5 * a["nose_length"]
    p[NOSE[1:4], 2] -= np.array([2.0, 4.0, 6.0]) * 0.7 * a["nose_depth"]
    p[NOSE[4:], 2] -= 2.0 * 0.7 * a["nose_depth"]
    x[NOSE[4:]] *= 1.0 + 0.15 * a["nose_width"]
    x[NOSE[3:]] += 1.5 * a["nose_dev"]
    for eye in (R_EYE, L_EYE):
        c = p[eye].mean(axis=0)
        p[eye] = c + (p[eye] - c) * (1.0 + 0.10 * a["eye_size"])
    x[36:48] += side[36:48] * 2.5 * a["eye_spacing"]
    y[36:42] -= 1.5 * a["eye_tilt_asym"]
    y[42:48] += 1.5 * a["eye_tilt_asym"]
    x[MOUTH] *= 1.0 + 0.08 * a["mouth_width"]
    y[49:54] -= 1.5 * a["lip_fullness"]
    y[55:60] += 2.0 * a["lip_fullness"]
    y[MOUTH] += 1.5 * a["mouth_asym"] * x[MOUTH] / 30.0   # tilts the mouth line
    y[17:27] -= 3.0 * a["brow_height"]
    x[JAW] += 3.0 * a["jaw_asym"] * low[JAW]

    pupils = np.stack([p[R_EYE].mean(axis=0), p[L_EYE].mean(axis=0)])
    pupils[:, 0] += 3.0 * np.clip(e["gaze_x"], -1, 1)
    pupils[:, 1] += 2.0 * np.clip(e["gaze_y"], -1, 1)
    pupils[:, 2] -= 2.0  # the cornea bulges in front of the lid line

    # --- expression
    m = e["mouth_open"]
    drop = np.zeros(68)
    drop[JAW] = low[JAW] ** 1.5
    drop[55:60] = 0.9
    drop[[65, 66, 67]] = 0.95
    drop[[48, 54, 60, 64]] = 0.35
    y += 20.0 * m * drop
    p[:, 2] += 4.0 * m * drop
    y[[61, 62, 63]] -= 1.5 * m
    x[[48, 54, 60, 64]] *= 1.0 - 0.12 * m

    s = e["smile"]
    corners = np.array([48, 54, 60, 64])
    x[corners] += side[corners] * 5.0 * s
    y[corners] -= 5.0 * s
    p[corners, 2] += 2.0 * s
    x[[49, 53, 59, 55]] += side[[49, 53, 59, 55]] * 2.5 * s
    y[[49, 53, 59, 55, 61, 63, 65, 67]] -= 2.0 * s

    # lids: upper lid points slide onto the lower lid (37->41, 38->40 and mirrored)
    for c, upper, lower in ((e["close_right"], [37, 38], [41, 40]), (e["close_left"], [43, 44], [47, 46])):
        c = float(np.clip(c, 0.0, 1.0))
        target = p[lower] + np.array([0.0, -0.6, -0.5])
        p[upper] = (1.0 - c) * p[upper] + c * target

    y[17:27] -= 8.0 * e["brows_up"] * np.where(np.isin(np.arange(17, 27), [20, 21, 22, 23]), 1.0, 0.7)
    return p, pupils


@lru_cache(maxsize=1)
def blendshapes() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean (70, 3), identity bases (I, 70, 3), expression bases (E, 70, 3)); rows 68, 69 are the pupils.

    A linear shape model in the manner of a 3D morphable model: each basis is the displacement that
    one unit of one component makes in :func:`_deform_written_out`.
    """
    zi, ze = np.zeros(len(IDENTITY)), np.zeros(len(EXPRESSION))
    mean = np.concatenate(_deform_written_out(zi, ze))
    b_id = np.stack([np.concatenate(_deform_written_out(np.eye(len(IDENTITY))[k], ze)) - mean
                     for k in range(len(IDENTITY))])
    b_ex = np.stack([np.concatenate(_deform_written_out(zi, np.eye(len(EXPRESSION))[k])) - mean
                     for k in range(len(EXPRESSION))])
    for a in (mean, b_id, b_ex):
        a.setflags(write=False)
    return mean, b_id, b_ex


def deform(identity: np.ndarray, expression: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(68, 3) shape and (2, 3) pupils = mean + identity . B_id + expression . B_ex."""
    mean, b_id, b_ex = blendshapes()
    p = mean + np.tensordot(identity, b_id, 1) + np.tensordot(expression, b_ex, 1)   # (70, 3)
    return p[:68], p[68:]


# ----------------------------------------------------------------------------- 68 -> 98 in 3D
def catmull_rom_weights(n: int, t: float) -> np.ndarray:
    """(n,) weights of an open uniform Catmull-Rom curve through n control points at parameter t in
    [0, n-1]; the end points are duplicated so the curve ends exactly on them (pointed eye corners)."""
    i = min(int(np.floor(t)), n - 2)
    u = t - i
    w = np.zeros(n)
    idx = [max(i - 1, 0), i, i + 1, min(i + 2, n - 1)]
    coef = 0.5 * np.array([-u**3 + 2 * u**2 - u, 3 * u**3 - 5 * u**2 + 2, -3 * u**3 + 4 * u**2 + u, u**3 - u**2])
    for k, c in zip(idx, coef):
        w[k] += c
    return w


def _curve_rows(control: list[int], params: list[float]) -> np.ndarray:
    """(len(params), 68) rows that interpolate the 68-point curve ``control`` at ``params``."""
    rows = np.zeros((len(params), 68))
    for r, t in enumerate(params):
        rows[r, control] = catmull_rom_weights(len(control), t)
    return rows


@lru_cache(maxsize=1)
def wflw_matrix() -> tuple[np.ndarray, np.ndarray]:
    """(W (98, 68), brow_lower (98,)): points98 = W @ points68 + brows and pupils (see :func:`to98`).

    How the 98 are made (WFLW index order):
      jaw 0-32      68-jaw i -> 98-jaw 2i; the odd ones are Catmull-Rom midpoints along the jaw;
      brows 33-50   upper edge 33-37 = 17-21 and 42-46 = 22-26; the lower edge 38-41 (inner -> outer)
                    and 47-50 (outer -> inner) lie on the upper curve at parameters 3.6/2.53/1.47/0.4
                    (from the outer end), moved down by the brow thickness (thicker at the inner end);
      nose 51-59    = 27-35;
      eyes 60-75    corners = 36, 39 / 42, 45; the lids are curves through 36-37-38-39 and 39-40-41-36
                    (and 42-45, 45-42), sampled at 1/4, 1/2, 3/4;
      lips 76-95    = 48-67;  pupils 96, 97 = the right and left pupil (eye centre + gaze, on the cornea).
    """
    W = np.zeros((98, 68))
    jaw = list(range(17))
    W[0:33] = _curve_rows(jaw, [k / 2 for k in range(33)])
    W[33:38] = np.eye(68)[17:22]
    W[42:47] = np.eye(68)[22:27]
    lower_t = [3.6, 2.5333, 1.4667, 0.4]
    W[38:42] = _curve_rows(list(range(17, 22)), lower_t)                 # inner -> outer
    W[47:51] = _curve_rows(list(range(22, 27)), [4 - t for t in lower_t[::-1]])  # outer -> inner
    W[51:60] = np.eye(68)[27:36]
    q = [0.75, 1.5, 2.25]
    W[60], W[64] = np.eye(68)[36], np.eye(68)[39]
    W[61:64] = _curve_rows([36, 37, 38, 39], q)
    W[65:68] = _curve_rows([39, 40, 41, 36], q)
    W[68], W[72] = np.eye(68)[42], np.eye(68)[45]
    W[69:72] = _curve_rows([42, 43, 44, 45], q)
    W[73:76] = _curve_rows([45, 46, 47, 42], q)
    W[76:96] = np.eye(68)[48:68]
    # brow thickness profile: 1 at the inner end, 0.55 at the outer end
    lower = np.zeros(98)
    lower[38:42] = [0.55 + 0.45 * t / 4 for t in lower_t]
    lower[47:51] = lower[38:42][::-1]
    W.setflags(write=False)
    lower.setflags(write=False)
    return W, lower


def to98(p68: np.ndarray, pupils: np.ndarray, brow_mm: float) -> np.ndarray:
    """(68, 3) + (2, 3) pupils -> (98, 3) in WFLW order."""
    W, lower = wflw_matrix()
    p = W @ p68
    p[:, 1] += brow_mm * lower
    p[96:98] = pupils
    return p


@lru_cache(maxsize=1)
def normals98() -> np.ndarray:
    W, _ = wflw_matrix()
    n = W @ normals68()
    n[96:98] = [0.0, 0.0, -1.0]
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    n.setflags(write=False)
    return n
