import cv2
import numpy as np
import pytest

from distill import ConfigError, DataError
from distill.data.background import (
    BACKGROUNDS,
    BackgroundConfig,
    BackgroundSource,
    apply_background,
    face_mask_from_points,
    feather_alpha,
    replace_background,
)
from distill.data.pose import WFLW98_TO_IBUG68, project_mean_face

H = W = 128


def face_points(roll=0.0):
    return project_mean_face(10, 0, roll, (W, H), distance=350.0)  # (68, 2), face ~ 50 px wide


def face_image(points):
    """A smooth skin-coloured face with darker eyes and mouth: its own edges are ~60-level steps."""
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    img = np.empty((H, W, 3), np.float32)
    img[:] = (110, 140, 190)
    img += (xx / W * 30)[..., None]                       # soft shading
    for idx in (range(36, 42), range(42, 48), range(48, 60)):
        cv2.fillPoly(img, [np.round(points[list(idx)]).astype(np.int32)], (60, 80, 130))
    return np.clip(img, 0, 255).astype(np.uint8)


def sobel_max(img, where, reduce=True):
    """The steepest edge among ``where``'s pixels, per colour channel (a colour seam counts too)."""
    g = img.astype(np.float32)
    mag = np.hypot(cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1)).max(axis=2)  # (H, W)
    return float(mag[where].max()) if reduce else mag


def test_mask_covers_inner_face_and_not_corners():
    for roll in (0.0, 30.0):
        pts = face_points(roll)
        mask = face_mask_from_points(pts, (H, W))
        inner = np.round(pts[27:68]).astype(int)         # nose, eyes, mouth
        assert mask[inner[:, 1], inner[:, 0]].min() == 1.0
        assert mask[0, 0] == mask[0, -1] == mask[-1, 0] == mask[-1, -1] == 0
        # the forehead: above the brows (along the face's up direction) is still face
        up = pts[17:27].mean(0) - pts[8]
        fx, fy = np.round(pts[17:27].mean(0) + 0.25 * up).astype(int)
        assert mask[fy, fx] == 1.0
    # 98 WFLW points give the same hull
    p98 = np.zeros((98, 2), np.float32)
    p98[list(WFLW98_TO_IBUG68)] = face_points()
    np.testing.assert_array_equal(face_mask_from_points(p98, (H, W)), face_mask_from_points(face_points(), (H, W)))
    # a missing (NaN) point falls back to the hull of the others, still covering the inner face
    holed = face_points()
    holed[8] = np.nan
    inner = np.round(holed[27:68]).astype(int)
    assert face_mask_from_points(holed, (H, W))[inner[:, 1], inner[:, 0]].min() == 1.0
    with pytest.raises(DataError, match="3 finite"):
        face_mask_from_points(np.full((68, 2), np.nan), (H, W))


def test_replacement_keeps_the_face_changes_the_rest_and_leaves_no_sharp_seam():
    pts = face_points()
    # skin all the way out (a close-up): any sharp edge on the mask boundary is the compositing's
    image = face_image(pts)
    mask = face_mask_from_points(pts, (H, W))
    background = np.full((H, W, 3), (230, 60, 20), np.uint8)   # far from skin: a hard seam would show
    feather = 5.0
    out = replace_background(image, mask, background, feather_px=feather, harmonise=True, strength=0.5)
    alpha = feather_alpha(mask, feather)
    inside, outside = alpha == 1.0, alpha == 0.0
    assert inside.sum() > 500 and outside.sum() > 5000
    np.testing.assert_array_equal(out[inside], image[inside])
    assert np.mean(np.any(out[outside] != image[outside], axis=1)) > 0.95

    # the seam: the feather band where the face image itself is flat (away from eyes and mouth)
    flat = cv2.erode((sobel_max(image, None, reduce=False) < 20).astype(np.uint8), np.ones((3, 3))) > 0
    seam = (alpha > 0) & (alpha < 1) & flat
    own = max(sobel_max(out, inside), sobel_max(out, outside))
    assert sobel_max(out, seam) <= own
    # and the check has teeth: a hard, unharmonised paste makes the seam the sharpest edge
    hard = replace_background(image, mask, background, feather_px=0.0, harmonise=False)
    assert sobel_max(hard, seam) > own


def test_harmonisation_moves_background_colour_towards_the_face():
    pts = face_points()
    image, mask = face_image(pts), face_mask_from_points(pts, (H, W))
    background = np.full((H, W, 3), (230, 60, 20), np.uint8)
    plain = replace_background(image, mask, background, feather_px=0, harmonise=False)
    harmonised = replace_background(image, mask, background, feather_px=0, harmonise=True, strength=0.5)
    face_mean = image[mask == 1].mean(0)
    far = mask == 0
    assert np.abs(harmonised[far].mean(0) - face_mean).sum() < 0.6 * np.abs(plain[far].mean(0) - face_mean).sum()


def test_background_source_families_and_folder(tmp_path):
    rng = np.random.default_rng(1)
    for name in BACKGROUNDS:
        bg = BackgroundSource(families=(name,))((40, 60), rng)
        assert bg.shape == (40, 60, 3) and bg.dtype == np.uint8 and bg.std() > 1.0
    cv2.imwrite(str(tmp_path / "wall.png"), np.full((100, 150, 3), (1, 2, 3), np.uint8))
    only_folder = BackgroundSource(folder=tmp_path, families=())
    np.testing.assert_array_equal(only_folder((32, 32), rng), np.full((32, 32, 3), (1, 2, 3), np.uint8))
    with pytest.raises(DataError, match="not found"):
        BackgroundSource(folder=tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images"):
        BackgroundSource(folder=tmp_path / "empty")


def test_apply_background_probability_and_dataset_mask(tmp_path):
    pts = face_points()
    image = face_image(pts)
    rng = np.random.default_rng(0)
    assert apply_background(image, pts, None, BackgroundConfig(prob=0.0), rng) is image
    changed = apply_background(image, pts, None, BackgroundConfig(prob=1.0), rng)
    assert changed.shape == image.shape and np.any(changed != image)
    # a data set mask (a file, 0/255) is used instead of the landmark hull: keep only a square
    square = np.zeros((H, W), np.uint8)
    square[40:90, 40:90] = 255
    cv2.imwrite(str(tmp_path / "m.png"), square)
    out = apply_background(image, pts, tmp_path / "m.png", BackgroundConfig(prob=1.0, feather_px=2), rng)
    np.testing.assert_array_equal(out[45:85, 45:85], image[45:85, 45:85])
    assert np.any(out[10:20, 10:20] != image[10:20, 10:20])
    with pytest.raises(DataError, match="mask is 10x10"):
        apply_background(image, pts, np.zeros((10, 10), np.uint8), BackgroundConfig(prob=1.0), rng)
    with pytest.raises(ConfigError, match="data.background.families"):
        BackgroundConfig(families=["sky"])
    with pytest.raises(ConfigError, match="data.background.prob"):
        BackgroundConfig(prob=1.5)
