"""Head pose (yaw, pitch, roll in degrees) from 2D landmarks, by solvePnP against a 3D mean face.

The 3D model is ``distill/assets/mean_face_68_3d.txt`` (68 iBUG points, millimetres). Its axes are
the camera's (OpenCV's): x to the image right, y DOWN, z AWAY from the camera, so a frontal face sits
in the camera frame with the identity rotation. A pinhole camera with focal length = the image width
(unless given) and no distortion is assumed. The principal point is, by default (``principal="face"``),
the centre of the landmarks' box: the pose is then measured against the line of sight to the face,
which is what decides how the face looks (and what pose balancing should bin by), whatever its place
in the image; it also matches SynthFace, which renders every head on the optical axis and then
shifts the image. ``principal="image"`` uses the image centre, the physical camera of an uncropped
photo: pose against the camera axes (a frontal face near the edge of a wide shot reads as turned).
On SynthFace's ground-truth points the "face" choice is the more accurate (benchmarks/pose_accuracy.py).

Sign conventions (SynthFace's, ``distill/data/synthface/face_model.py``; ``pose_matrix`` is the one
definition here and the tests pin it to the image):

- yaw   > 0: the subject turns towards the IMAGE's right (the nose tip moves right of the face's
  centre line; the image-left half of the face, points 0-7, turns away).
- pitch > 0: the subject looks UP (the nose tip moves up in the image, towards the eyes).
- roll  > 0: the head tilts clockwise in the image as displayed (y down): the top of the head moves
  right, the eye on the image's right moves down.

The rotation that carries model points into the camera frame is ``R = Rz(roll) @ Ry(yaw) @
Rx(pitch)``, with Ry(yaw) turning the nose (-z) towards +x and Rx(pitch) turning it towards -y:
nod first, then turn, then tilt in the image plane. Roll is applied last about the optical axis, so
rotating an image in plane changes roll only. ``X_cam = R @ X_model + t``; ``x_img = f * X/Z + c``.

Only the stable subset of landmarks.md is used (brow ends, eye corners, nostrils, mouth corners,
lower lip, chin): those move least with expression. WFLW's 98 points are first mapped onto iBUG's 68
with :data:`WFLW98_TO_IBUG68`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from distill.data.formats.check import check_image
from distill.data.schema import LandmarkSchema, get_schema
from distill.errors import DataError

MEAN_FACE_PATH = Path(__file__).resolve().parents[1] / "assets" / "mean_face_68_3d.txt"

# brow ends, eye corners, nostril wings, mouth corners, lower lip centre, chin
STABLE_68 = (17, 21, 22, 26, 36, 39, 42, 45, 31, 35, 48, 54, 57, 8)

# The standard WFLW-98 -> iBUG-68 correspondence: iBUG point i is WFLW point WFLW98_TO_IBUG68[i].
# Jaw: every 2nd of WFLW's 33 contour points; brows: WFLW's upper brow contour (33-37, 42-46);
# nose: the same 9 points (51-59); eyes: WFLW has 8 per eye (corner, 3 upper lid, corner, 3 lower
# lid), iBUG 6, so the middle lid points (62, 66, 70, 74) are dropped; lips: the same 20 points.
# It commutes with the two flip permutations (tested), and maps WFLW's normaliser (60, 72) onto
# iBUG's (36, 45).
WFLW98_TO_IBUG68 = (
    tuple(range(0, 33, 2))                   # jaw 0-16
    + (33, 34, 35, 36, 37)                   # right brow 17-21
    + (42, 43, 44, 45, 46)                   # left brow 22-26
    + tuple(range(51, 60))                   # nose 27-35
    + (60, 61, 63, 64, 65, 67)               # right eye 36-41
    + (68, 69, 71, 72, 73, 75)               # left eye 42-47
    + tuple(range(76, 96))                   # lips 48-67
)


@lru_cache(maxsize=1)
def mean_face() -> np.ndarray:
    """(68, 3) float64 mean face in millimetres, axes x right, y down, z away from the camera."""
    return np.loadtxt(MEAN_FACE_PATH, dtype=np.float64, comments="#")


def to_ibug68(points: np.ndarray, schema: str | LandmarkSchema = "ibug68") -> np.ndarray:
    """(..., K, 2) points of ``schema`` -> (..., 68, 2) iBUG points (68 as is, 98 through the mapping)."""
    schema = get_schema(schema)
    points = np.asarray(points)
    if points.shape[-2] != schema.num_points:
        raise DataError(f"points have {points.shape[-2]} rows but schema {schema.name!r} has {schema.num_points}")
    if schema.num_points == 68:
        return points
    if schema.num_points == 98:
        return points[..., list(WFLW98_TO_IBUG68), :]
    raise DataError(f"head pose needs 68 (iBUG) or 98 (WFLW) points; schema {schema.name!r} has {schema.num_points}")


# ----------------------------------------------------------------------------- angles <-> rotation

def _rx(a: float) -> np.ndarray:
    # pitch: +a turns the nose tip (z < 0) towards -y, i.e. up in the image
    c, s = np.cos(a), np.sin(a)
    return np.array([[1, 0, 0], [0, c, s], [0, -s, c]])


def _ry(a: float) -> np.ndarray:
    # yaw: +a turns the nose tip (z < 0) towards +x, the image's right
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0, -s], [0, 1, 0], [s, 0, c]])


def _rz(a: float) -> np.ndarray:
    # roll: +a turns +x towards +y, clockwise on a y-down display
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def pose_matrix(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """(3, 3) rotation carrying mean-face coordinates into the camera frame; angles in degrees.

    R = Rz(roll) @ Ry(yaw) @ Rx(pitch): the one definition of the conventions in the module
    docstring, the same product SynthFace renders with.
    """
    y, p, r = np.deg2rad([yaw, pitch, roll])
    return _rz(r) @ _ry(y) @ _rx(p)


def rotation_to_euler(rot: np.ndarray) -> tuple[float, float, float]:
    """Inverse of :func:`pose_matrix`: (3, 3) rotation -> (yaw, pitch, roll) in degrees.

    M = Ry(y) Rx(p) = [[cy, sy sp, -sy cp], [0, cp, sp], [sy, -cy sp, cy cp]]. Rz(r) only mixes the
    top two rows, so the bottom row of R is M's: sin y = R[2,0], tan p = -R[2,1] / R[2,2]; and
    M's first column (cy, 0, sy) becomes (cr cy, sr cy, sy): tan r = R[1,0] / R[0,0].
    Unique for |yaw| < 90.
    """
    yaw = np.arcsin(np.clip(rot[2, 0], -1.0, 1.0))
    pitch = np.arctan2(-rot[2, 1], rot[2, 2])
    roll = np.arctan2(rot[1, 0], rot[0, 0])
    return tuple(float(v) for v in np.rad2deg([yaw, pitch, roll]))


def camera_matrix(image_size: tuple[float, float], focal: float | None = None,
                  centre: tuple[float, float] | None = None) -> np.ndarray:
    """(3, 3) pinhole intrinsics: focal = image width unless given, principal point ``centre``.

    The default centre is the image's, (w - 1) / 2, (h - 1) / 2, since pixel centres sit at integers.
    """
    w, h = image_size
    f = float(w if focal is None else focal)
    cx, cy = ((w - 1) / 2, (h - 1) / 2) if centre is None else centre
    return np.array([[f, 0, cx], [0, f, cy], [0, 0, 1]], dtype=np.float64)


def project_mean_face(yaw: float, pitch: float, roll: float, image_size: tuple[float, float],
                      distance: float = 600.0, focal: float | None = None,
                      offset: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """(68, 2) image points of the mean face at the given pose, ``distance`` mm in front of the camera.

    ``offset`` moves the head sideways/down in mm (camera frame). Used by tests and benchmarks as
    the reference projection for the sign conventions.
    """
    cam = camera_matrix(image_size, focal)
    world = mean_face() @ pose_matrix(yaw, pitch, roll).T + np.array([offset[0], offset[1], distance])  # (68, 3)
    uv = world[:, :2] / world[:, 2:3]
    return (uv * [cam[0, 0], cam[1, 1]] + cam[:2, 2]).astype(np.float32)


# ----------------------------------------------------------------------------- estimation

def _solve_one(points68: np.ndarray, cam: np.ndarray) -> tuple[float, float, float]:
    obj = mean_face()[list(STABLE_68)]                                # (14, 3)
    img = points68[list(STABLE_68)].astype(np.float64)                # (14, 2)
    # SQPnP finds the global minimum of the reprojection error; the iterative (LM) refinement
    # after it only polishes. The default ITERATIVE alone can settle in a mirrored local minimum
    # for large yaw.
    ok, rvec, tvec = cv2.solvePnP(obj, img, cam, None, flags=cv2.SOLVEPNP_SQPNP)
    if ok:
        ok, rvec, tvec = cv2.solvePnP(obj, img, cam, None, rvec, tvec, useExtrinsicGuess=True,
                                      flags=cv2.SOLVEPNP_ITERATIVE)
    if not ok:
        return (float("nan"),) * 3
    rot, _ = cv2.Rodrigues(rvec)
    return rotation_to_euler(rot)


def estimate_pose(points: np.ndarray, image_size: tuple[float, float], schema: str | LandmarkSchema = "ibug68",
                  focal: float | None = None, principal: str = "face"):
    """Head pose from landmarks: (yaw, pitch, roll) in degrees (conventions in the module docstring).

    points: (K, 2) or (N, K, 2) image pixels, K = 68 (iBUG) or 98 (WFLW, mapped to 68).
    image_size: (width, height) of the image the points live in (the focal length unless
        ``focal`` is given; the principal point for ``principal="image"``).
    principal: "face" (the centre of each face's landmark box) or "image" (the image centre).
    Returns three floats for one face, or three (N,) float arrays for a batch. A face whose
    solve fails gets NaN.
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim not in (2, 3) or pts.shape[-1] != 2:
        raise DataError(f"estimate_pose: points must be (K, 2) or (N, K, 2), got shape {pts.shape}")
    if principal not in ("face", "image"):
        raise DataError(f"estimate_pose: principal must be 'face' or 'image', got {principal!r}")
    pts68 = to_ibug68(pts, schema)
    if not np.all(np.isfinite(pts68[..., list(STABLE_68), :])):
        raise DataError("estimate_pose: points contain NaN or inf")

    def solve(p68: np.ndarray) -> tuple[float, float, float]:
        centre = (p68.min(axis=0) + p68.max(axis=0)) / 2 if principal == "face" else None
        return _solve_one(p68, camera_matrix(image_size, focal, centre))

    if pts68.ndim == 2:
        return solve(pts68)
    angles = np.array([solve(p) for p in pts68], dtype=np.float64).reshape(-1, 3)  # (N, 3)
    return angles[:, 0], angles[:, 1], angles[:, 2]


def _image_size(path: Path) -> tuple[int, int]:
    # the header is enough (and fast); decode only formats whose header check_image does not parse
    size = check_image(path, f"{path} (its size is needed to estimate head pose)")
    if size is None:
        size = check_image(path, f"{path} (its size is needed to estimate head pose)", decode=True)
    return size


def pose_from_samples(samples, schema: str | LandmarkSchema | None = None,
                      image_size: tuple[float, float] | None = None, principal: str = "face") -> np.ndarray:
    """(N, 3) yaw, pitch, roll in degrees for a list of :class:`~distill.data.Sample`.

    A sample's own ``attributes["yaw"/"pitch"/"roll"]`` win when all three are present (SynthFace's
    true pose, AFLW's annotated pose); the others are estimated from their points. The image size
    comes from ``image_size`` when given, else from ``attributes["image_size"]`` (w, h), else the
    image file is read. ``schema`` defaults to the one implied by the point count (68 or 98).
    """
    out = np.full((len(samples), 3), np.nan, dtype=np.float64)
    for i, s in enumerate(samples):
        attrs = s.attributes or {}
        if all(attrs.get(k) is not None for k in ("yaw", "pitch", "roll")):
            out[i] = [float(attrs["yaw"]), float(attrs["pitch"]), float(attrs["roll"])]
            continue
        k = len(s.points)
        sch = schema if schema is not None else {68: "ibug68", 98: "wflw98"}.get(k)
        if sch is None:
            raise DataError(f"{s.image_path}: no yaw/pitch/roll attributes and {k} points (pose needs 68 or 98)")
        size = image_size or attrs.get("image_size") or _image_size(Path(s.image_path))
        out[i] = estimate_pose(s.points, size, schema=sch, principal=principal)
    return out
