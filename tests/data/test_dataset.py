"""LandmarkDataset items: keys, shapes, determinism, flip semantics, unlabelled images, errors."""

from dataclasses import replace
from importlib import resources

import cv2
import numpy as np
import pytest
import torch

from distill.data.augment import AugmentConfig
from distill.data.dataset import SUBSET_NAMES, LandmarkDataset
from distill.data.formats import Sample
from distill.data.schema import SCHEMAS
from distill.errors import DataError

IBUG = SCHEMAS["ibug68"]
# five far-apart points, each drawn in its own colour: eye corners 36 / 45, nose tip 30, mouth 48 / 54
MARKED = {36: (255, 0, 0), 45: (0, 255, 0), 30: (0, 0, 255), 48: (255, 255, 0), 54: (0, 255, 255)}


def frontal_face(size: int = 128) -> np.ndarray:
    """(68, 2) float32 frontal iBUG layout from the packaged 3-D mean face (subject's right on image left)."""
    xyz = np.loadtxt(resources.files("distill") / "assets" / "mean_face_68_3d.txt")
    xy = xyz[:, :2] - xyz[:, :2].mean(axis=0)
    return (xy * (0.45 * size / np.abs(xy).max()) + size / 2 + 0.3).astype(np.float32)


def write_face(path, points, size: int = 128, gray: bool = False) -> None:
    img = np.full((size, size, 3), 40, np.uint8)
    order = [i for i in range(len(points)) if i not in MARKED] + list(MARKED)  # marked dots drawn last, whole
    for i in order:
        colour = MARKED.get(i, (128, 128, 128))
        xi, yi = int(round(points[i][0])), int(round(points[i][1]))
        img[yi - 2:yi + 3, xi - 2:xi + 3] = colour  # 5 x 5 dot
    cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_BGR2GRAY) if gray else img)


@pytest.fixture
def faces(tmp_path):
    pts = frontal_face()
    samples = []
    for i in range(3):
        p = pts + np.float32(i)  # small shift per face
        write_face(tmp_path / f"{i}.png", p)
        samples.append(Sample(tmp_path / f"{i}.png", p, None, None, {"pose": 1, "blur": i % 2}))
    return samples


def test_item_keys_shapes_dtypes(faces):
    ds = LandmarkDataset(faces, IBUG, 64, heatmap_size=16, sigma=1.0, augment=AugmentConfig(), seed=0)
    item = ds[1]
    expect = {"image": ((3, 64, 64), torch.float32), "points": ((68, 2), torch.float32),
              "visibility": ((68,), torch.float32), "pt_weight": ((68,), torch.float32),
              "heatmaps": ((68, 16, 16), torch.float32), "hm_weight": ((68,), torch.float32),
              "matrix": ((2, 3), torch.float32), "norm": ((), torch.float32), "subsets": ((6,), torch.bool),
              "index": ((), torch.int64), "labelled": ((), torch.bool)}
    assert set(item) == set(expect)
    for key, (shape, dtype) in expect.items():
        assert tuple(item[key].shape) == shape and item[key].dtype == dtype, key
    assert item["index"].item() == 1 and item["labelled"].item()
    assert item["subsets"].tolist() == [n in ("pose", "blur") for n in SUBSET_NAMES]
    assert "heatmaps" not in LandmarkDataset(faces, IBUG, 64)[0]


def test_plain_crop_points_norm_and_matrix(faces):
    ds = LandmarkDataset(faces, "ibug68", 64)
    item = ds[0]
    m = item["matrix"].double().numpy()
    pts = faces[0].points.astype(np.float64)
    np.testing.assert_allclose(item["points"].numpy(), pts @ m[:, :2].T + m[:, 2], atol=1e-4)
    crop_pts = item["points"].numpy()
    assert item["norm"].item() == pytest.approx(np.linalg.norm(crop_pts[36] - crop_pts[45]), rel=1e-5)
    assert torch.all(item["visibility"] == 1) and torch.all(item["pt_weight"] == 1)


def test_same_seed_same_item_new_epoch_new_augmentation(faces):
    make = lambda seed: LandmarkDataset(faces, IBUG, 64, heatmap_size=16, augment=AugmentConfig(), seed=seed)
    a, b = make(0)[2], make(0)[2]
    for key in a:
        assert torch.equal(a[key], b[key]), key
    ds = make(0)
    ds.set_epoch(1)
    c = ds[2]
    assert not torch.equal(a["points"], c["points"]) and not torch.equal(a["image"], c["image"])
    assert torch.equal(c["points"], make(0)[(1, 2)]["points"])  # (epoch, index) addressing
    assert not torch.equal(a["points"], make(1)[2]["points"])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_flip_moves_left_eye_to_right_eye_and_points_stay_on_their_dots(faces, seed):
    plain = LandmarkDataset(faces, IBUG, 96)[0]
    flipped = LandmarkDataset(faces, IBUG, 96, augment=replace(AugmentConfig.none(), flip_prob=1.0))[0]
    p, f = plain["points"].numpy(), flipped["points"].numpy()
    perm = list(IBUG.flip_perm)
    np.testing.assert_allclose(f[:, 0], 95 - p[perm, 0], atol=1e-4)
    np.testing.assert_allclose(f[:, 1], p[perm, 1], atol=1e-4)
    assert f[36, 0] < f[45, 0]  # "right eye corner" is still on the image's left after the flip
    # the mirrored crop samples the same image points; OpenCV quantises sample positions to 1/32 px, so
    # pixels on sharp edges may differ by a few grey levels between the two matrices
    levels = np.abs(flipped["image"].numpy() - plain["image"].numpy()[:, :, ::-1]) * 0.25 * 255
    assert np.percentile(levels, 99) <= 1.0 and levels.max() <= 16

    # with rotation / scale / shift too, every marked point sits on the dot of its (re-indexed) source point
    geometry = replace(AugmentConfig.none(), flip_prob=0.5, scale=(0.9, 1.1), rotation_deg=15.0, shift=0.03)
    ds = LandmarkDataset(faces, IBUG, 96, augment=geometry, seed=seed)
    for index in range(len(faces)):
        c = ds.crop(index)
        for i, (x, y) in enumerate(c["points"]):
            source = perm[i] if c["flipped"] else i
            if source in MARKED:
                got = c["image"][int(round(y)), int(round(x))].astype(int)
                assert np.abs(got - np.array(MARKED[source])).max() < 60, (index, i, c["flipped"])


def test_unlabelled_samples_have_zero_weights(tmp_path):
    img = np.full((100, 80, 3), 90, np.uint8)
    cv2.imwrite(str(tmp_path / "u.png"), img)
    samples = [Sample(tmp_path / "u.png", None), Sample(tmp_path / "u.png", np.full((68, 2), np.nan, np.float32),
                                                          box=np.array([10, 10, 60, 70], np.float32))]
    ds = LandmarkDataset(samples, IBUG, 32, heatmap_size=8, augment=AugmentConfig())
    for item in (ds[0], ds[1]):
        assert not item["labelled"].item()
        assert torch.all(item["points"] == 0) and torch.isfinite(item["points"]).all()
        assert not item["hm_weight"].any() and not item["pt_weight"].any() and not item["heatmaps"].any()
        assert item["norm"].item() == 1.0
    # no box: the crop covers the whole image (its longer side) -> corner pixels map inside the crop
    m = LandmarkDataset(samples[:1], IBUG, 32)[0]["matrix"].double().numpy()
    corners = np.array([[-0.5, -0.5], [79.5, 99.5]]) @ m[:, :2].T + m[:, 2]
    np.testing.assert_allclose(corners[:, 1], [-0.5, 31.5], atol=1e-4)


def test_partially_missing_points_and_hidden_weight(faces):
    pts = faces[0].points.copy()
    pts[5] = np.nan
    vis = np.ones(68, np.float32)
    vis[10] = 0
    s = Sample(faces[0].image_path, pts, vis, None, {})
    item = LandmarkDataset([s], IBUG, 64, heatmap_size=16, hidden_weight=0.5)[0]
    assert item["labelled"].item() and item["points"][5].tolist() == [0.0, 0.0]
    assert item["pt_weight"][5] == 0 and item["hm_weight"][5] == 0 and item["visibility"][5] == 0
    assert item["pt_weight"][10] == 0.5 and item["hm_weight"][10] == 0.5 and item["heatmaps"][10].max() > 0.5


def test_bad_inputs_raise_data_error_naming_the_file(tmp_path, faces):
    (tmp_path / "broken.png").write_bytes(b"not a png")
    bad = Sample(tmp_path / "broken.png", faces[0].points)
    with pytest.raises(DataError, match="broken.png"):
        LandmarkDataset([bad], IBUG, 32)[0]
    with pytest.raises(DataError, match="0.png"):
        LandmarkDataset([Sample(faces[0].image_path, faces[0].points[:5])], IBUG, 32)


def test_grayscale_image_becomes_three_channels(tmp_path):
    pts = frontal_face()
    write_face(tmp_path / "g.png", pts, gray=True)
    image = LandmarkDataset([Sample(tmp_path / "g.png", pts)], IBUG, 32)[0]["image"]
    assert image.shape == (3, 32, 32)
    assert torch.equal(image[0], image[1]) and torch.equal(image[1], image[2])


def test_cache_keeps_items_only_when_every_epoch_sees_the_same_crop(tmp_path):
    from distill.data.augment import AugmentConfig

    samples = _cache_samples(tmp_path)
    cached = LandmarkDataset(samples, "ibug68", 32, heatmap_size=8, cache=True)
    first = cached[0]
    assert cached[0] is first  # served from memory, not rebuilt
    assert torch.equal(first["image"], LandmarkDataset(samples, "ibug68", 32, heatmap_size=8)[0]["image"])
    augmented = LandmarkDataset(samples, "ibug68", 32, heatmap_size=8, augment=AugmentConfig(), cache=True)
    assert augmented[0] is not augmented[0]  # augmentation on: never cached


def _cache_samples(tmp_path):
    import cv2

    from distill.data.formats import Sample

    img = np.full((48, 48, 3), 90, np.uint8)
    cv2.circle(img, (24, 24), 6, (0, 0, 255), -1)
    path = tmp_path / "face.png"
    cv2.imwrite(str(path), img)
    pts = np.stack([np.linspace(10, 38, 68), np.linspace(12, 36, 68)], axis=1).astype(np.float32)
    return [Sample(image_path=path, points=pts)]
