"""SynthFace rendering: one :class:`~.params.FaceParams` -> image, points, visibility, mask, attributes.

The pipeline, in order (render_faces poses and shades a batch of faces at once): pose the 3D face (face_model) -> background (backgrounds) -> person
(draw) -> occluder (hardcases) -> light (scene gain x head shading, one pass) -> blur -> noise -> JPEG. Points never
depend on the pixel randomness, only on the parameters, so a face and its mirror can be compared
exactly.
"""

from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np

from distill.data.synthface import hardcases
from distill.data.synthface.backgrounds import make_background
from distill.data.synthface.draw import draw_person, head_shadings, prepare
from distill.data.synthface.face_model import pose_faces
from distill.data.synthface.params import FaceParams, attribute_flags


class Render(NamedTuple):
    image: np.ndarray            # (S, S, 3) uint8 BGR
    points68: np.ndarray         # (68, 2) float32, 0-based pixels
    points98: np.ndarray         # (98, 2) float32
    vis68: np.ndarray            # (68,) float32: 1 visible, 0 self-occluded or under an occluder
    vis98: np.ndarray            # (98,) float32
    mask: np.ndarray             # (S, S) uint8: 255 person (and occluders in front of it), 0 background
    attributes: dict             # WFLW flags + yaw/pitch/roll


def render_face(params: FaceParams, size: int = 128, rng: np.random.Generator | None = None) -> Render:
    """Render one face. ``rng`` drives textures and noise only (default: seeded from ``params.seed``)."""
    return render_faces([params], size, [rng])[0]


def render_faces(params_list: list[FaceParams], size: int = 128, rngs=None) -> list[Render]:
    """:func:`render_face` for several faces: they are posed together (face_model.pose_faces), then drawn
    one by one. Each face's result is the same as rendering it alone. ``rngs``: one Generator (or None)
    per face."""
    rngs = [None] * len(params_list) if rngs is None else rngs
    geometries = pose_faces(params_list, size)
    lights = [p.light for p in params_list]
    shades = head_shadings(geometries, lights, size)
    scenes = hardcases.scene_gains(lights)
    prepare(geometries)
    return [_render(params, g, shade, scene, size, rng)
            for params, g, shade, scene, rng in zip(params_list, geometries, shades, scenes, rngs)]


def _render(params: FaceParams, g, shade: np.ndarray, scene: np.ndarray, size: int,
            rng: np.random.Generator | None) -> Render:
    if rng is None:
        rng = np.random.default_rng(params.seed)
    img = make_background(params.background, size, rng)
    mask = np.zeros((size, size), np.uint8)
    draw_person(img, mask, g, params.look, params.light, params.expression)

    vis68, vis98 = g.vis68.copy(), g.vis98.copy()
    hidden = 0
    shaded = mask                         # the head shading lights the person, not what is in front
    if params.occluder is not None:
        occ = np.zeros((size, size), np.uint8)
        hardcases.draw_occluder(img, occ, params.occluder, g, params.look)
        under68, under98 = hardcases.occluded(g.p68, occ), hardcases.occluded(g.p98, occ)
        hidden = int(under68.sum())
        vis68[under68] = 0.0
        vis98[under98] = 0.0
        shaded = cv2.subtract(mask, occ)
        mask = cv2.max(mask, occ)

    # one pass of light: scene gain everywhere, times the head's Lambert shading on the person
    img = hardcases.apply_light(img, shaded, scene, shade,
                                params.light.cast)
    img = hardcases.blur(img, params.degrade, size)
    if params.degrade.noise > 0:
        img = hardcases.noise(img, params.degrade.noise, rng)
    if params.degrade.jpeg > 0:
        img = hardcases.jpeg(img, params.degrade.jpeg)

    attributes = attribute_flags(params, hidden)
    attributes.update(yaw=float(params.yaw), pitch=float(params.pitch), roll=float(params.roll))
    return Render(img, g.p68.astype(np.float32), g.p98.astype(np.float32), vis68, vis98, mask, attributes)
