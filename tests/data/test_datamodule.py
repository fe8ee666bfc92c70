"""LandmarkDataModule: determinism across worker counts, epochs, splits, hooks, unlabelled extras."""

from dataclasses import replace
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch
from lightning.fabric.utilities.data import _set_sampler_epoch
from torch.utils.data import Sampler

from distill.data.augment import AugmentConfig
from distill.data.datamodule import DataConfig, LandmarkDataModule, hold_out, infer_schema
from distill.data.formats import Sample
from distill.errors import ConfigError, DataError


def make_samples(folder, n, size=48):
    """n tiny images with 5 random points each (the 'five' schema)."""
    rng = np.random.default_rng(0)
    samples = []
    for i in range(n):
        img = rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)
        cv2.imwrite(str(folder / f"{i:03d}.png"), img)
        pts = rng.uniform(10, size - 10, size=(5, 2)).astype(np.float32)
        samples.append(Sample(folder / f"{i:03d}.png", pts, None, None, {"group": i // 2}))
    return samples


@pytest.fixture
def samples(tmp_path):
    return make_samples(tmp_path, 20)


def config(**kw):
    base = DataConfig(schema="five", crop_size=32, heatmap_size=8, batch_size=4, seed=3, augment=AugmentConfig())
    return replace(base, **kw)


def first_batch(dm):
    return next(iter(dm.train_dataloader()))


def test_same_seed_same_first_batch_with_0_and_2_workers(samples):
    given = {"train": samples, "test": samples[:4]}
    dm0 = LandmarkDataModule(config(num_workers=0), samples=given)
    dm2 = LandmarkDataModule(config(num_workers=2), samples=given)
    dm0.setup("fit")
    dm2.setup("fit")
    a, b = first_batch(dm0), first_batch(dm2)
    assert set(a) == set(b) and a["image"].shape == (4, 3, 32, 32) and a["heatmaps"].shape == (4, 5, 8, 8)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    other = LandmarkDataModule(config(seed=4), samples=given)
    other.setup("fit")
    assert not torch.equal(first_batch(other)["image"], a["image"])


def test_epochs_change_order_and_augmentation_reproducibly(samples):
    dm = LandmarkDataModule(config(), samples={"train": samples})
    dm.setup("fit")
    loader = dm.train_dataloader()
    e0 = next(iter(loader))  # each pass counts as the next epoch when nobody calls set_epoch
    e1 = next(iter(loader))
    assert not torch.equal(e0["index"], e1["index"]) or not torch.equal(e0["image"], e1["image"])
    _set_sampler_epoch(loader, 0)  # what Lightning's fit loop calls at an epoch start
    assert all(torch.equal(e0[k], v) for k, v in next(iter(loader)).items())
    dm.set_epoch(1)
    assert all(torch.equal(e1[k], v) for k, v in next(iter(loader)).items())


def test_resumed_fit_starts_at_the_trainers_epoch(samples):
    # Lightning builds the loader (and workers prefetch) before it calls set_epoch on a resumed fit
    plain = LandmarkDataModule(config(), samples={"train": samples})
    plain.setup("fit")
    plain_loader = plain.train_dataloader()
    plain.set_epoch(2)
    expected = next(iter(plain_loader))
    resumed = LandmarkDataModule(config(num_workers=2), samples={"train": samples})
    resumed.trainer = SimpleNamespace(current_epoch=2)
    resumed.setup("fit")
    got = next(iter(resumed.train_dataloader()))
    assert all(torch.equal(expected[k], v) for k, v in got.items())


def test_val_held_out_by_group_and_val_test_not_augmented(samples):
    dm = LandmarkDataModule(config(val_fraction=0.2), samples={"train": samples, "test": samples[:3]})
    dm.setup()
    train, val = dm.train_dataset.samples, dm.val_dataset.samples
    assert len(train) + len(val) == 20 and len(val) == 4
    assert not {s.attributes["group"] for s in train} & {s.attributes["group"] for s in val}
    assert dm.val_dataset.augment == AugmentConfig.none() and dm.test_dataset.augment == AugmentConfig.none()
    assert len(dm.test_dataloader().dataset) == 3
    # the held-out split does not move with the training seed
    dm2 = LandmarkDataModule(config(val_fraction=0.2, seed=99), samples={"train": samples})
    dm2.setup("fit")
    assert [s.image_path for s in dm2.val_dataset.samples] == [s.image_path for s in val]
    assert hold_out(samples, 0.0) == (samples, [])


def test_train_sampler_factory_and_max_samples(samples):
    class FirstThree(Sampler):
        def __init__(self, n):
            self.epochs = []

        def set_epoch(self, epoch):
            self.epochs.append(epoch)

        def __len__(self):
            return 3

        def __iter__(self):
            return iter([2, 0, 1])

    made = []
    dm = LandmarkDataModule(config(batch_size=3, max_samples=10, val_fraction=0.0), samples={"train": samples},
                            train_sampler_factory=lambda s: made.append(FirstThree(len(s))) or made[-1])
    dm.setup("fit")
    assert len(dm.train_dataset) == 10
    batch = first_batch(dm)
    assert batch["index"].tolist() == [2, 0, 1] and made[0].epochs == [0]


def test_loads_through_formats_load_samples(monkeypatch, samples):
    calls = []

    def fake_load_samples(fmt, path, schema=None, split=None, strict=False, images_root=None):
        calls.append((fmt, path, schema, split))
        return (samples[:8] if split == "train" else samples[8:11]), None

    monkeypatch.setattr("distill.data.datamodule.load_samples", fake_load_samples)
    dm = LandmarkDataModule(config(format="300w", root="/data/300w", schema=None, val_fraction=0.25))
    dm.setup()
    assert calls == [("300w", "/data/300w", None, "train"), ("300w", "/data/300w", None, "test")]
    assert dm.schema.name == "five"  # inferred from the point count
    assert len(dm.train_dataset) == 6 and len(dm.val_dataset) == 2 and len(dm.test_dataset) == 3


def test_unlabelled_root_adds_images_without_labels(tmp_path, samples):
    extra = tmp_path / "extra"
    extra.mkdir()
    for i in range(30):
        cv2.imwrite(str(extra / f"u{i}.jpg"), np.full((40, 50, 3), i, np.uint8))
    dm = LandmarkDataModule(config(val_fraction=0.0, unlabelled_root=str(extra), unlabelled_fraction=0.5),
                            samples={"train": samples})
    dm.setup("fit")
    ds = dm.train_dataset
    assert len(ds) == 40  # 20 labelled + as many unlabelled
    labelled = [ds[i]["labelled"].item() for i in range(len(ds))]
    assert sum(labelled) == 20 and not any(labelled[20:])
    with pytest.raises(DataError, match="not a folder"):
        LandmarkDataModule(config(unlabelled_root=str(tmp_path / "nope")), samples={"train": samples}).setup("fit")


def test_config_and_schema_errors(samples):
    with pytest.raises(ConfigError, match="val_fraction"):
        DataConfig(val_fraction=1.5)
    assert DataConfig(augment={"flip_prob": 0.0}).augment.flip_prob == 0.0
    with pytest.raises(DataError, match="schema"):
        infer_schema([Sample("x.png", np.zeros((7, 2), np.float32))])


def test_lightning_fit_sees_the_same_batches_with_0_and_2_workers(samples):
    import hashlib

    import lightning.pytorch as pl

    class Record(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(1, 1)
            self.seen = []

        def training_step(self, batch, _):
            digest = hashlib.md5(batch["image"].numpy().tobytes() + batch["points"].numpy().tobytes()).hexdigest()
            self.seen.append((self.current_epoch, batch["index"].tolist(), digest))
            return self.layer(torch.ones(1, 1)).sum()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), 0.1)

    runs = []
    for workers in (0, 2):
        model = Record()
        dm = LandmarkDataModule(config(num_workers=workers, val_fraction=0.0), samples={"train": samples})
        pl.Trainer(max_epochs=2, limit_train_batches=1, limit_val_batches=0, logger=False, enable_checkpointing=False,
                   enable_progress_bar=False, enable_model_summary=False).fit(model, dm)
        runs.append(model.seen)
    assert runs[0] == runs[1] and len(runs[0]) == 2
    assert runs[0][0][1:] != runs[0][1][1:]  # epoch 1 is not a replay of epoch 0


def test_reads_a_generated_synthface_set(tmp_path):
    from distill.data.synthface import generate

    generate(tmp_path / "sf", num=6, seed=0, size=64, workers=1, num_test=2, progress=False)
    cfg = DataConfig(root=str(tmp_path / "sf"), crop_size=32, heatmap_size=8, batch_size=2, val_fraction=0.2)
    dm = LandmarkDataModule(cfg)
    dm.setup()
    assert dm.schema.name == "ibug68" and len(dm.test_dataset) == 2
    assert len(dm.train_dataset) + len(dm.val_dataset) == 6 and len(dm.val_dataset) >= 1
    batch = next(iter(dm.train_dataloader()))
    assert batch["points"].shape == (2, 68, 2) and batch["heatmaps"].shape == (2, 68, 8, 8)
    assert batch["labelled"].all() and torch.isfinite(batch["norm"]).all() and (batch["norm"] > 0).all()
