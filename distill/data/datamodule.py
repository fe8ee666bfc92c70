"""LandmarkDataModule: a DataConfig -> train / val / test DataLoaders of LandmarkDataset items.

Determinism: the training order is a torch.Generator permutation seeded by (seed, epoch), and the
sampler hands the dataset (epoch, index) pairs, whose augmentation is seeded by (seed, epoch,
index). So a batch depends on the seed and the epoch only -- not on num_workers, not on which
worker built which item. Lightning calls ``set_epoch`` on the sampler at each epoch start; a plain
loop may call ``LandmarkDataModule.set_epoch`` (or let each pass over the loader count as one epoch).
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from distill.data.augment import AugmentConfig
from distill.data.background import BackgroundConfig
from distill.data.dataset import LandmarkDataset
from distill.data.formats import Sample, ScanReport, check_image, load_samples
from distill.data.formats.check import scan
from distill.data.sampling import make_pose_balanced_sampler
from distill.data.schema import SCHEMAS, LandmarkSchema, get_schema
from distill.data.transforms import DEFAULT_MARGIN
from distill.errors import ConfigError, DataError
from distill.io import IMAGE_SUFFIXES

# The held-out validation split must not move when the training seed changes, or runs with
# different seeds would be scored on different images.
VAL_SPLIT_SEED = 1234


@dataclass
class DataConfig:
    """Where the data is and how training crops are made.

    format / root / schema: passed to ``formats.load_samples(format, root, schema=, split=)``;
        schema None means: the one built-in schema with the data's point count.
    images_root: the folder a WFLW / AFLW annotation file's image paths are relative to, when the images
        do not lie where the official layout keeps them (None: the reader finds them).
    train_split / val_split / test_split: split names for the reader ("train"/"test" for SynthFace,
        None = not used); with val_split None, val_fraction of the training samples (whole SynthFace
        stability groups at a time) is held out for validation.
    The crop fields are LandmarkDataset's (see its docstring); augment is the training augmentation
    (validation and test crops are never augmented).
    max_samples: keep only the first N samples of each loaded split (tests, smoke runs).
    strict: a sample the reader skips (bad points, a missing, unreadable or truncated image) stops the
        run with its file and line; by default it is skipped, counted in ``LandmarkDataModule.reports``
        and named in the run's run.json.
    cache: keep finished items in memory when augmentation is off, so later epochs skip decoding, warping
        and targets; each DataLoader worker keeps its own copy, so use it with num_workers 0.
    unlabelled_root: a folder of extra images without labels (distillation); unlabelled_fraction is
        the share of the training set they make up (0.5 = as many as labelled images), at most all.
    target_schema: train on points derived from the data's: "five" = eye centres, nose tip, mouth
        corners from 68/98 points (the cascade's stage 1); None = the data's own points.
    pose_balance: draw training samples so every yaw bin (data.sampling.DEFAULT_EDGES) is equally
        frequent; the data's own yaw when it has one (SynthFace), else estimated from 68/98 points.
    background: background replacement of training images (prob 0 = off); see data.background.
    align_with: path to a 5-point stage-1 checkpoint: every split is cut by aligned_crop_matrix of
        stage 1's own predictions (the cascade's stage 2); augmentation applies on top. None = box crops.
        Reading a checkpoint is the training layer's job: it hands the DataModule an ``align`` function.
    """

    format: str = "synthface"
    root: str = ""
    images_root: str | None = None
    schema: str | None = None
    train_split: str | None = "train"
    val_split: str | None = None
    test_split: str | None = "test"
    val_fraction: float = 0.1  # with val_split None: the share of the training samples held out for validation
    crop_size: int = 64  # side of the square network input, pixels
    heatmap_size: int | None = None  # side of the heatmap targets (None: coordinate regression; recipes: crop_size / 4)
    sigma: float = 1.0  # Gaussian std of the heatmap targets, heatmap pixels
    margin: float = DEFAULT_MARGIN  # context around the face box: the crop side is max(w, h) * (1 + margin)
    hidden_weight: float = 1.0  # loss weight of hidden (occluded) points; 1.0 trains them like visible ones
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    batch_size: int = 32  # samples per training step
    num_workers: int = 0  # DataLoader worker processes (0: load in the training process)
    cache: bool = False
    seed: int = 0  # set from the recipe's top-level seed when training starts
    max_samples: int | None = None
    strict: bool = False
    unlabelled_root: str | None = None
    unlabelled_fraction: float = 0.5
    target_schema: str | None = None
    pose_balance: bool = False
    background: BackgroundConfig = field(default_factory=BackgroundConfig)
    align_with: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.augment, dict):
            self.augment = AugmentConfig(**self.augment)
        if isinstance(self.background, dict):
            self.background = BackgroundConfig(**self.background)
        if self.target_schema is not None:
            try:
                get_schema(self.target_schema)
            except DataError as e:
                raise ConfigError(f"data.target_schema: {e}") from None
        if not 0.0 <= self.val_fraction < 1.0:
            raise ConfigError(f"data.val_fraction: expected a fraction in [0, 1), got {self.val_fraction!r}")
        if not 0.0 <= self.unlabelled_fraction < 1.0:
            raise ConfigError(f"data.unlabelled_fraction: expected [0, 1), got {self.unlabelled_fraction!r}")
        for key in ("crop_size", "batch_size"):
            if getattr(self, key) < 1:
                raise ConfigError(f"data.{key}: must be >= 1, got {getattr(self, key)!r}")
        for key in ("heatmap_size", "max_samples"):
            if getattr(self, key) is not None and getattr(self, key) < 1:
                raise ConfigError(f"data.{key}: must be >= 1 (or null), got {getattr(self, key)!r}")
        if not (math.isfinite(self.sigma) and self.sigma > 0):
            raise ConfigError(f"data.sigma: must be > 0, got {self.sigma!r}")
        for key in ("margin", "hidden_weight"):
            if not (math.isfinite(getattr(self, key)) and getattr(self, key) >= 0):
                raise ConfigError(f"data.{key}: must be >= 0, got {getattr(self, key)!r}")
        if self.num_workers < 0:
            raise ConfigError(f"data.num_workers: must be >= 0, got {self.num_workers!r}")


def infer_schema(samples: list[Sample]) -> LandmarkSchema:
    """The built-in schema whose point count all labelled samples share."""
    counts = {int(np.asarray(s.points).shape[0]) for s in samples if s.points is not None}
    matches = [s for s in SCHEMAS.values() if counts == {s.num_points}]
    if len(matches) != 1:
        raise DataError(f"cannot tell the schema from point counts {sorted(counts)}; "
                        f"name one ({', '.join(SCHEMAS)} or a .yaml path)")
    return matches[0]


def unlabelled_samples(root: str | Path, strict: bool = False,
                       report: ScanReport | None = None) -> list[Sample]:
    """Every usable image under ``root`` (sorted, recursive) as a Sample with no points and no box; an
    unreadable or truncated one is skipped into ``report`` (or raised with ``strict``), as readers do."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: unlabelled_root is not a folder")
    paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise DataError(f"{root}: no images ({', '.join(IMAGE_SUFFIXES)}) in unlabelled_root")

    def build(path: Path) -> Sample:
        check_image(path)
        return Sample(image_path=path, points=None)

    return scan(paths, build, strict, report)


def hold_out(samples: list[Sample], fraction: float) -> tuple[list[Sample], list[Sample]]:
    """(train, val) with about ``fraction`` of the samples in val, whole groups at a time.

    Renders of one SynthFace face share attributes["group"]; splitting inside a group would put
    near-copies of a validation face into training.
    """
    if fraction <= 0 or len(samples) < 2:
        return list(samples), []
    # no group (or group None: SynthFace's non-stability faces) = a group of its own
    keys = [s.attributes.get("group") if s.attributes and s.attributes.get("group") is not None else f"#{i}"
            for i, s in enumerate(samples)]
    unique = sorted(set(map(str, keys)))
    order = np.random.default_rng(VAL_SPLIT_SEED).permutation(len(unique))
    want = max(1, round(fraction * len(samples)))
    sizes = Counter(map(str, keys))
    val_keys, count = set(), 0
    for j in order:
        if count >= want:
            break
        val_keys.add(unique[j])
        count += sizes[unique[j]]
    train = [s for s, k in zip(samples, keys) if str(k) not in val_keys]
    val = [s for s, k in zip(samples, keys) if str(k) in val_keys]
    return train, val


class EpochSampler(Sampler):
    """Yields (epoch, index) pairs in a per-epoch order; see the module docstring.

    base: an optional sampler of indices (e.g. pose-balanced) used instead of the seeded shuffle;
    it is told the epoch through its own set_epoch when it has one.
    """

    def __init__(self, num_samples: int, seed: int, base: Sampler | None = None, epoch: int = 0):
        self.num_samples, self.seed, self.base = num_samples, int(seed), base
        self.epoch = int(epoch)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.base) if self.base is not None else self.num_samples

    def __iter__(self):
        epoch = self.epoch
        self.epoch += 1  # a pass without set_epoch (plain loop) still moves to the next epoch
        if self.base is not None:
            if callable(getattr(self.base, "set_epoch", None)):
                self.base.set_epoch(epoch)
            order = list(self.base)
        else:
            state = int(np.random.SeedSequence([self.seed, epoch]).generate_state(1)[0])
            order = torch.randperm(self.num_samples, generator=torch.Generator().manual_seed(state)).tolist()
        for index in order:
            yield epoch, int(index)


def seed_worker(worker_id: int) -> None:
    """Seed every library RNG in a worker (items use their own generator; this is for anything else).

    OpenCV's thread count is left alone: calling cv2.setNumThreads in a forked worker after the
    parent had used OpenCV got the worker killed in Lightning runs here.
    """
    seed = torch.initial_seed() % 2**32  # the DataLoader derived it from its generator and worker_id
    np.random.seed(seed)
    random.seed(seed)
    cv2.setRNGSeed(seed % 2**31)


class LandmarkDataModule(pl.LightningDataModule):
    """Train / val / test loaders for one DataConfig.

    samples: pre-loaded Samples per split ("train", "val", "test", "unlabelled"), used instead of
        reading cfg.root (tests, or callers that already hold samples).
    train_sampler_factory: ``f(train_samples) -> Sampler`` of indices for the training set; default:
        pose-balanced when ``cfg.pose_balance``, else a seeded shuffle.
    align: ``f(samples, schema, crop_size) -> (N, 2, 3)`` image -> crop matrices, needed when
        ``cfg.align_with`` is set (``distill.training.alignment.stage1_aligner`` reads that checkpoint).

    ``schema`` is the schema of the items (``cfg.target_schema`` when set), ``source_schema`` the data's.
    """

    def __init__(self, cfg: DataConfig, samples: dict[str, list[Sample]] | None = None,
                 train_sampler_factory: Callable[[list[Sample]], Sampler] | None = None,
                 align: Callable[[list[Sample], LandmarkSchema, int], np.ndarray] | None = None):
        super().__init__()
        if cfg.align_with and align is None:
            raise ConfigError(f"data.align_with {cfg.align_with!r}: the DataModule needs an align function "
                              "(distill.training.alignment.stage1_aligner) to cut aligned crops")
        self.cfg = cfg
        self.train_sampler_factory = train_sampler_factory
        self.align = align
        self._given = dict(samples) if samples is not None else None
        self.source_schema: LandmarkSchema | None = get_schema(cfg.schema) if cfg.schema else None
        self.schema: LandmarkSchema | None = None
        self._set_schema()
        self.train_dataset: LandmarkDataset | None = None
        self.val_dataset: LandmarkDataset | None = None
        self.test_dataset: LandmarkDataset | None = None
        # split -> what its reader kept and skipped (splits read from cfg.root or cfg.unlabelled_root)
        self.reports: dict[str, ScanReport] = {}
        self._train_sampler: EpochSampler | None = None

    # ------------------------------------------------------------------ loading
    def _load(self, split: str | None, key: str) -> list[Sample]:
        if self._given is not None:
            samples = list(self._given.get(key) or [])
        elif split is None and key != "train":
            samples = []  # a train_split of None means the whole root (one-file formats: WFLW, AFLW CSV)
        else:
            samples, self.reports[key] = load_samples(self.cfg.format, self.cfg.root, schema=self.cfg.schema,
                                                      split=split, strict=self.cfg.strict,
                                                      images_root=self.cfg.images_root)
        if self.cfg.max_samples is not None:
            samples = samples[: self.cfg.max_samples]
        return samples

    def _set_schema(self, samples: list[Sample] | None = None) -> None:
        if self.source_schema is None and samples is not None:
            self.source_schema = infer_schema(samples)
        if self.source_schema is not None:
            self.schema = get_schema(self.cfg.target_schema) if self.cfg.target_schema else self.source_schema

    def _dataset(self, samples: list[Sample], augment: AugmentConfig | None,
                 background: BackgroundConfig | None = None) -> LandmarkDataset:
        c = self.cfg
        align = self.align(samples, self.source_schema, c.crop_size) if c.align_with else None
        return LandmarkDataset(samples, self.source_schema, c.crop_size, heatmap_size=c.heatmap_size, sigma=c.sigma,
                               augment=augment, seed=c.seed, margin=c.margin, hidden_weight=c.hidden_weight,
                               target_schema=self.schema, background=background, align=align, cache=c.cache)

    def setup(self, stage: str | None = None) -> None:
        c = self.cfg
        if stage in (None, "fit", "validate") and self.train_dataset is None:
            train = self._load(c.train_split, "train")
            if c.val_split is not None or (self._given is not None and "val" in self._given):
                val = self._load(c.val_split, "val")
            else:
                train, val = hold_out(train, c.val_fraction)
            if not train and stage in (None, "fit"):
                why = f"; {self.reports['train'].summary()}" if "train" in self.reports else ""
                raise DataError(f"{c.root or 'given samples'}: no training samples (split {c.train_split!r}{why})")
            self._set_schema(train + val)
            extra = self._unlabelled(len(train))
            self.train_dataset = self._dataset(train + extra, c.augment, c.background)
            self.val_dataset = self._dataset(val, None)
        if stage in (None, "test", "predict") and self.test_dataset is None:
            test = self._load(c.test_split, "test")
            self._set_schema(test)
            self.test_dataset = self._dataset(test, None)

    def _unlabelled(self, num_labelled: int) -> list[Sample]:
        c = self.cfg
        if self._given is not None and self._given.get("unlabelled"):
            pool = list(self._given["unlabelled"])
        elif c.unlabelled_root:
            self.reports["unlabelled"] = ScanReport()
            pool = unlabelled_samples(c.unlabelled_root, c.strict, self.reports["unlabelled"])
        else:
            return []
        f = c.unlabelled_fraction
        want = min(len(pool), round(f / (1.0 - f) * num_labelled))
        pick = np.sort(np.random.default_rng(c.seed).permutation(len(pool))[:want])
        return [pool[i] for i in pick]

    # ------------------------------------------------------------------ loaders
    def set_epoch(self, epoch: int) -> None:
        """For loops outside Lightning: make the next pass over train_dataloader() epoch ``epoch``."""
        if self._train_sampler is not None:
            self._train_sampler.set_epoch(epoch)

    def _loader(self, dataset: LandmarkDataset, sampler: Sampler | None, drop_last: bool) -> DataLoader:
        c = self.cfg
        return DataLoader(dataset, batch_size=c.batch_size, sampler=sampler, shuffle=False, drop_last=drop_last,
                          num_workers=c.num_workers, worker_init_fn=seed_worker,
                          generator=torch.Generator().manual_seed(c.seed), persistent_workers=False)

    def train_dataloader(self) -> DataLoader:
        if self.train_dataset is None:
            self.setup("fit")
        ds = self.train_dataset
        factory = self.train_sampler_factory
        if factory is None and self.cfg.pose_balance:
            factory = lambda samples: make_pose_balanced_sampler(samples, seed=self.cfg.seed)  # noqa: E731
        base = factory(ds.samples) if factory is not None else None
        # a resumed fit asks for the loader (and its workers prefetch) before Lightning calls set_epoch,
        # so start at the trainer's epoch, not at 0
        epoch = self.trainer.current_epoch if self.trainer is not None else 0
        self._train_sampler = EpochSampler(len(ds), self.cfg.seed, base, epoch=epoch)
        # a last batch of 1 would break BatchNorm in train mode; keep it only when it is the only one
        return self._loader(ds, self._train_sampler, drop_last=len(self._train_sampler) > self.cfg.batch_size)

    def val_dataloader(self) -> DataLoader:
        if self.val_dataset is None:
            self.setup("validate")
        return self._loader(self.val_dataset, None, drop_last=False)

    def test_dataloader(self) -> DataLoader:
        if self.test_dataset is None:
            self.setup("test")
        return self._loader(self.test_dataset, None, drop_last=False)
