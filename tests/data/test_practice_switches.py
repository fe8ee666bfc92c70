"""The DataConfig practice switches change what the loader yields: pose_balance, background, target_schema,
and crops given by alignment matrices (align; align_with itself is tested in tests/models/test_cascade.py)."""

from dataclasses import replace
from importlib import resources

import cv2
import numpy as np
import pytest

from distill.config import load_recipe
from distill.data.augment import AugmentConfig
from distill.data.background import BackgroundConfig
from distill.data.datamodule import DataConfig, LandmarkDataModule
from distill.data.dataset import LandmarkDataset
from distill.data.formats import Sample
from distill.data.sampling import sample_weights
from distill.data.schema import SCHEMAS
from distill.data.transforms import crop_matrix
from distill.errors import ConfigError, DataError

SIZE = 64


def frontal(size: int = SIZE) -> np.ndarray:
    """(68, 2) frontal iBUG points from the packaged mean face, filling ~60% of a size x size image."""
    xyz = np.loadtxt(resources.files("distill") / "assets" / "mean_face_68_3d.txt")
    xy = xyz[:, :2] - xyz[:, :2].mean(axis=0)
    return (xy * (0.3 * size / np.abs(xy).max()) + size / 2 + 0.3).astype(np.float32)


def write_image(path, seed: int, size: int = SIZE) -> None:
    # smooth random colours: warps keep them, and a replaced background differs from them almost everywhere
    small = np.random.default_rng(seed).integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
    cv2.imwrite(str(path), cv2.resize(small, (size, size), interpolation=cv2.INTER_LINEAR))


def config(**kw) -> DataConfig:
    base = DataConfig(schema="ibug68", crop_size=32, batch_size=8, seed=1, val_fraction=0.0,
                      augment=AugmentConfig.none())
    return replace(base, **kw)


@pytest.fixture
def skewed(tmp_path):
    """40 faces: 36 frontal (yaw 0), 4 profiles (yaw 70), as SynthFace's attributes give them."""
    write_image(tmp_path / "face.png", 0)
    return [Sample(tmp_path / "face.png", frontal(), attributes={"yaw": 70.0 if i >= 36 else 0.0, "pitch": 0.0,
                                                                   "roll": 0.0})
            for i in range(40)]


def drawn_indices(dm: LandmarkDataModule, epochs: int) -> np.ndarray:
    dm.setup("fit")
    # the sampler the loader uses, over several epochs (each a fresh, reproducible draw)
    loader = dm.train_dataloader()
    return np.array([i for _ in range(epochs) for _, i in loader.sampler])


def test_pose_balance_raises_the_large_yaw_share_towards_uniform(skewed):
    plain = drawn_indices(LandmarkDataModule(config(), samples={"train": skewed}), epochs=20)
    balanced = drawn_indices(LandmarkDataModule(config(pose_balance=True), samples={"train": skewed}), epochs=20)
    assert np.mean(plain >= 36) == pytest.approx(0.1)          # a shuffle draws each sample once
    assert 0.4 < np.mean(balanced >= 36) < 0.6                  # two non-empty bins: half each
    # items come through the loader too (the sampler's indices are the items' indices)
    dm = LandmarkDataModule(config(pose_balance=True), samples={"train": skewed})
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (8, 3, 32, 32)


def test_pose_weights_give_unlabelled_samples_a_bin_of_their_own(skewed, tmp_path):
    extra = [Sample(tmp_path / "face.png", None) for _ in range(10)]
    w = sample_weights(skewed + extra)
    # three non-empty bins (frontal, profile, unlabelled): each carries a third of the mass
    np.testing.assert_allclose([w[:36].sum(), w[36:40].sum(), w[40:].sum()], [1 / 3] * 3)


def test_background_changes_pixels_outside_the_mask_only_and_only_in_training(tmp_path):
    write_image(tmp_path / "face.png", 3)
    mask = np.zeros((SIZE, SIZE), np.uint8)
    mask[22:42, 24:40] = 255                         # well inside the crop of the face box
    cv2.imwrite(str(tmp_path / "mask.png"), mask)
    samples = [Sample(tmp_path / "face.png", frontal(), attributes={"mask": str(tmp_path / "mask.png")})] * 4
    given = {"train": samples, "val": samples}
    cfg = config(crop_size=SIZE, margin=0.0, background=BackgroundConfig(prob=1.0, feather_px=2.0))
    on, off = LandmarkDataModule(cfg, samples=given), LandmarkDataModule(config(crop_size=SIZE, margin=0.0),
                                                                         samples=given)
    on.setup("fit")
    off.setup("fit")
    a, b = on.train_dataset.crop(0), off.train_dataset.crop(0)
    np.testing.assert_allclose(a["matrix"], b["matrix"])            # same geometry: the switch only paints
    crop_mask = cv2.warpAffine(mask, a["matrix"], (SIZE, SIZE), flags=cv2.INTER_NEAREST)
    inside = cv2.erode(crop_mask, np.ones((11, 11), np.uint8)) > 0   # clear of the feathered band (x1.6 zoom)
    outside = cv2.dilate(crop_mask, np.ones((11, 11), np.uint8)) == 0
    np.testing.assert_array_equal(a["image"][inside], b["image"][inside])
    assert np.mean(np.any(a["image"][outside] != b["image"][outside], axis=-1)) > 0.8
    # validation crops are never repainted, and a dataset without the switch does not draw from its stream
    np.testing.assert_array_equal(on.val_dataset.crop(0)["image"], off.val_dataset.crop(0)["image"])
    assert on.val_dataset.background is None


def test_background_falls_back_to_the_landmark_hull(tmp_path):
    write_image(tmp_path / "face.png", 4)
    pts = frontal()
    cfg = BackgroundConfig(prob=1.0, feather_px=2.0)
    ds_on = LandmarkDataset([Sample(tmp_path / "face.png", pts)], "ibug68", SIZE, margin=0.6, background=cfg)
    ds_off = LandmarkDataset([Sample(tmp_path / "face.png", pts)], "ibug68", SIZE, margin=0.6)
    a, b = ds_on.crop(0)["image"], ds_off.crop(0)["image"]
    mid = SIZE // 2                                  # the face's middle is inside the hull
    np.testing.assert_array_equal(a[mid - 4:mid + 4, mid - 4:mid + 4], b[mid - 4:mid + 4, mid - 4:mid + 4])
    for corner in (a[:4, :4] != b[:4, :4], a[-4:, -4:] != b[-4:, -4:]):   # the crop's corners are background
        assert corner.any(axis=-1).mean() > 0.8


def test_target_schema_five_derives_points_visibility_and_normaliser(tmp_path):
    write_image(tmp_path / "face.png", 5)
    pts = frontal()
    vis = np.ones(68, np.float32)
    vis[36:40] = 0                                       # 4 of 6 right-eye points hidden -> derived eye hidden
    sample = Sample(tmp_path / "face.png", pts, vis)
    plain = LandmarkDataset([sample], "ibug68", SIZE)
    five = LandmarkDataset([sample], "ibug68", SIZE, target_schema="five")
    assert five.schema.name == "five" and five.source_schema.name == "ibug68"
    p68, p5 = plain.crop(0), five.crop(0)
    np.testing.assert_allclose(p5["points"], SCHEMAS["ibug68"].to_five(p68["points"]), atol=1e-4)
    np.testing.assert_array_equal(p5["visibility"], [0, 1, 1, 1, 1])
    np.testing.assert_allclose(p5["norm"], np.linalg.norm(p5["points"][0] - p5["points"][1]), rtol=1e-5)
    # a flip swaps the derived eyes and mouth corners: the image-left eye stays first
    flipped = LandmarkDataset([sample], "ibug68", SIZE, target_schema="five",
                              augment=replace(AugmentConfig.none(), flip_prob=1.0)).crop(0)
    assert flipped["flipped"] and flipped["points"][0, 0] < flipped["points"][1, 0]
    assert flipped["points"][3, 0] < flipped["points"][4, 0]
    item = five[0]
    assert item["points"].shape == (5, 2) and item["pt_weight"].shape == (5,)
    with pytest.raises(DataError, match="cannot derive"):
        LandmarkDataset([sample], "ibug68", SIZE, target_schema="cofw29")


def test_align_matrices_replace_the_box_crop_and_augment_on_top(tmp_path):
    write_image(tmp_path / "face.png", 6)
    sample = Sample(tmp_path / "face.png", frontal())
    m = crop_matrix((10.0, 12.0, 50.0, 52.0), 32, 0.1, rotation_deg=20.0)   # any image -> crop similarity
    ds = LandmarkDataset([sample], "ibug68", 32, align=m[None])
    np.testing.assert_allclose(ds.crop(0)["matrix"], m)
    aug = replace(AugmentConfig.none(), rotation_deg=30.0)
    c = LandmarkDataset([sample], "ibug68", 32, align=m[None], augment=aug).crop(0)
    # the augmentation turns the aligned crop about its centre: the centre's preimage is unchanged
    centre = np.array([15.5, 15.5])
    back = lambda mat: np.linalg.solve(mat[:, :2], centre - mat[:, 2])  # noqa: E731
    np.testing.assert_allclose(back(c["matrix"]), back(m), atol=1e-9)
    assert not np.allclose(c["matrix"], m)
    with pytest.raises(DataError, match="align"):
        LandmarkDataset([sample], "ibug68", 32, align=np.zeros((2, 2, 3)))


def test_switches_are_recipe_fields():
    cfg = load_recipe("synthface/regressor_wing", ["data.pose_balance=true", "data.background.prob=0.5",
                                                   "data.target_schema=five", "data.align_with=stage1.ckpt"])
    assert cfg.data.pose_balance and cfg.data.background.prob == 0.5
    assert cfg.data.target_schema == "five" and cfg.data.align_with == "stage1.ckpt"
    stage1 = load_recipe("synthface/cascade_stage1")
    assert stage1.data.target_schema == "five" and stage1.data.augment.rotation_deg >= 30
    with pytest.raises(ConfigError, match="data.background.prob"):
        load_recipe("synthface/regressor_wing", ["data.background.prob=2.0"])
    with pytest.raises(ConfigError, match="data.target_schema"):
        DataConfig(target_schema="no_such_schema")
