"""SynthFace in memory: points on the drawn features, pose sign, mirror symmetry, visibility."""

import dataclasses

import numpy as np
import pytest

from distill.data.schema import SCHEMAS
from distill.data.synthface import HardCases, mirror_params, render_face, sample_params
from distill.data.synthface.backgrounds import BACKGROUNDS
from distill.data.synthface.params import Degrade, Light, Occluder
from distill.data.synthface.shape import EXPRESSION, IDENTITY


def neutral(**changes):
    """A frontal, neutral, well-lit face with no hard case, centred; ``changes`` override fields."""
    p = sample_params(np.random.default_rng(0), HardCases.none())
    p = dataclasses.replace(p, identity=np.zeros(len(IDENTITY)), expression=np.zeros(len(EXPRESSION)),
                            yaw=0.0, pitch=0.0, roll=0.0, place_x=0.5, place_y=0.5, face_frac=0.7,
                            occluder=None, degrade=Degrade(), light=Light(), background="gradient")
    return dataclasses.replace(p, **changes)


def pixel(img, point):
    x, y = np.rint(point).astype(int)
    return img[y, x].astype(int)


def test_pupil_and_sclera_pixels_sit_under_their_points():
    r = render_face(neutral(), 256)
    for pupil, corner in ((96, 60), (97, 72)):
        assert pixel(r.image, r.points98[pupil]).max() < 40            # the pupil is drawn at the pupil point
        between = 0.6 * r.points98[corner] + 0.4 * r.points98[pupil]     # inside the eye, off the iris
        assert pixel(r.image, between).min() > 150                       # white of the eye
    for upper, lower in ((35, 39), (44, 48)):
        brow = 0.5 * (r.points98[upper] + r.points98[lower])            # between the brow's two edges
        forehead = r.points98[upper] + 2.0 * (r.points98[upper] - r.points98[lower])
        assert pixel(r.image, brow).sum() < pixel(r.image, forehead).sum() - 60   # the brow is drawn there


@pytest.mark.parametrize("yaw", [30.0, -30.0, 60.0])
def test_yaw_sign_moves_the_nose_tip_the_same_way(yaw):
    # positive yaw = the subject turns to the image's right: the nose tip lands right of the face centre
    r = render_face(neutral(yaw=yaw), 128)
    jaw = r.points68[:17]
    centre = 0.5 * (jaw[:, 0].min() + jaw[:, 0].max())
    assert np.sign(r.points68[30, 0] - centre) == np.sign(yaw)
    assert abs(r.attributes["yaw"] - yaw) < 1e-9


def test_pitch_and_roll_signs():
    up = render_face(neutral(pitch=25.0), 128).points68
    level = render_face(neutral(), 128).points68
    # looking up brings the nose tip toward the eyes (up the image)
    assert (up[30, 1] - up[36:48, 1].mean()) < (level[30, 1] - level[36:48, 1].mean())
    tilted = render_face(neutral(roll=20.0), 128).points68
    d = tilted[45] - tilted[36]
    assert np.degrees(np.arctan2(d[1], d[0])) > 10   # clockwise tilt: the image-right eye corner drops


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_mirrored_parameters_render_the_flipped_points(seed):
    p = sample_params(np.random.default_rng(seed), HardCases(pose_tail=0.8), tuple(BACKGROUNDS))
    p = dataclasses.replace(p, occluder=None)   # occluder pixels are not rasterised symmetrically
    size = 96
    a, b = render_face(p, size), render_face(mirror_params(p), size)
    for pts, mirrored, vis, mvis, schema in ((a.points68, b.points68, a.vis68, b.vis68, "ibug68"),
                                             (a.points98, b.points98, a.vis98, b.vis98, "wflw98")):
        perm = list(SCHEMAS[schema].flip_perm)
        flipped = pts.copy()
        flipped[:, 0] = (size - 1) - flipped[:, 0]
        np.testing.assert_allclose(flipped[perm], mirrored, atol=0.5)
        assert np.abs(flipped[perm] - mirrored).max() < 1e-3   # in fact exact up to float rounding
        np.testing.assert_array_equal(vis[perm], mvis)


def test_mirror_flips_the_image_too():
    # no texture, light from straight ahead: the mirrored face is the flipped image up to anti-aliasing
    p = neutral(yaw=25.0, roll=8.0, background="gradient", light=Light(direction=(0.0, -0.5, -1.0)))
    a, b = render_face(p, 96), render_face(mirror_params(p), 96)
    face = (a.mask[:, ::-1] > 250) & (b.mask > 250)
    diff = np.abs(a.image[:, ::-1].astype(int) - b.image.astype(int)).max(axis=2)
    assert face.sum() > 1000
    assert np.median(diff[face]) <= 2


def test_turned_face_hides_the_far_side_only():
    frontal = render_face(neutral(), 128)
    assert frontal.vis68.all() and frontal.vis98.all()
    right = render_face(neutral(yaw=70.0), 128)   # turned to the image right: points 9-16 turn away
    assert (right.vis68[12:17] == 0).all() and (right.vis68[0:6] == 1).all()
    assert (right.vis98[24:33] == 0).all() and (right.vis98[0:10] == 1).all()
    left = render_face(neutral(yaw=-70.0), 128)
    assert (left.vis68[0:5] == 0).all() and (left.vis68[11:17] == 1).all()
    # hidden points keep true coordinates: the far jaw still lies between the near jaw and the nose
    assert right.points68[16, 0] > right.points68[0, 0]


def test_closed_eyes_hide_the_pupils():
    e = np.zeros(len(EXPRESSION))
    e[EXPRESSION.index("close_right")] = 1.0
    r = render_face(neutral(expression=e), 128)
    assert r.vis98[96] == 0 and r.vis98[97] == 1
    assert r.attributes["expression"] == 1


def test_bar_over_the_mouth_hides_exactly_the_points_under_it():
    occ = Occluder(kind="bar", anchor=62, angle=0.0, size=0.9, offset=(0.0, 0.0), colour=(0.0, 0.0, 255.0), seed=0)
    r = render_face(neutral(occluder=occ), 128)
    plain = render_face(neutral(), 128)
    assert (r.vis68[48:68] == 0).all() and (r.vis68[36:48] == 1).all()
    assert (r.vis98[76:96] == 0).all() and (r.vis98[60:76] == 1).all()
    np.testing.assert_array_equal(r.points68, plain.points68)   # coordinates stay true under the occluder
    # visibility 0 exactly where the bar's pixels are: red pixels under every hidden point, none under visible ones
    for pts, vis in ((r.points68, r.vis68), (r.points98, r.vis98)):
        for p, v in zip(pts, vis):
            b, g, red = pixel(r.image, p)
            assert (red > 200 and g < 60 and b < 60) == (v == 0)
    assert r.attributes["occlusion"] == 1


def test_hard_case_flags_follow_the_drawn_values():
    flags = np.array([[render_face(sample_params(np.random.default_rng(s), HardCases(), ("gradient",)), 64)
                       .attributes[k] for k in ("pose", "illumination", "occlusion", "blur")] for s in range(40)])
    none = np.array([[render_face(sample_params(np.random.default_rng(s), HardCases.none(), ("gradient",)), 64)
                      .attributes[k] for k in ("pose", "expression", "illumination", "makeup", "occlusion", "blur")]
                     for s in range(10)])
    assert flags.sum(axis=0).min() > 0     # every hard case shows up among 40 faces
    assert none.sum() == 0                 # and none without hard cases


def test_noise_is_reproducible_zero_mean_and_of_the_asked_sigma():
    from distill.data.synthface.hardcases import noise

    img = np.full((64, 64, 3), 128, np.uint8)
    a, b = noise(img, 8.0, np.random.default_rng(1)), noise(img, 8.0, np.random.default_rng(1))
    np.testing.assert_array_equal(a, b)
    d = a.astype(float) - 128
    assert abs(d.mean()) < 0.5 and 7.0 < d.std() < 9.0
    assert (noise(img, 8.0, np.random.default_rng(2)) != a).mean() > 0.5   # another offset, other noise
