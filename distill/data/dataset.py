"""LandmarkDataset: Sample records -> training items (crop tensor, crop-space points, targets).

One item = read the image, draw the augmentation from a generator seeded by (seed, epoch, index),
build the single crop affine, warp, move the points by the same matrix, re-index on a flip,
photometric + occlusion on the crop, then heatmap targets. Because the randomness depends only on
(seed, epoch, index), an item is the same whichever worker builds it and in whichever order.

Unlabelled images (distillation extras) are Samples whose points are None or all NaN: they give
points of 0, weights of 0 and ``labelled`` False; their box is the Sample's box or, when that is
None too, the whole image.

Three practice switches (all off by default; benchmarks/practice_study.py measures what each buys):
  target_schema: train on points derived from the data's own, e.g. "five" from 68 (eye centres,
      nose tip, mouth corners via ``LandmarkSchema.to_five``) for the cascade's stage 1.
  background: a BackgroundConfig; with probability ``prob`` the face is pasted onto a new background
      on the FULL image, before the crop warp, so the crop's border context is new too.
  align: (N, 2, 3) image -> crop matrices that replace the box crop (the cascade's stage 2 is
      trained on crops aligned by stage 1's own predictions); augmentation is applied on top, about
      the crop centre, exactly as it would be about the box centre.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from distill.data.augment import AugmentConfig, occlude, photometric
from distill.data.background import BackgroundConfig, apply_background
from distill.data.formats.sample import SUBSET_NAMES, Sample
from distill.data.schema import LandmarkSchema, get_schema
from distill.data.transforms import (
    DEFAULT_MARGIN,
    box_from_points,
    crop_matrix,
    heatmap_targets,
    to_tensor,
    transform_points,
    warp,
)
from distill.errors import DataError
from distill.io import read_image


def derive_points(points: np.ndarray, vis: np.ndarray, source: LandmarkSchema,
                  target: LandmarkSchema) -> tuple[np.ndarray, np.ndarray]:
    """(K, 2) points + (K,) visibility of ``source`` -> those of ``target`` (identity when equal).

    The only derivation is to a 5-point schema through ``source.five_point`` groups: a derived point
    is the mean of its group (NaN when any member is unknown) and visible when at least half of its
    group is. Averaging commutes with affine maps, so deriving before the crop warp is exact.
    """
    if target is source or target.name == source.name:
        return points, vis
    if target.num_points != 5 or source.five_point is None:
        raise DataError(f"cannot derive {target.name!r} points from {source.name!r} "
                        f"(only 5-point targets from schemas with five_point groups)")
    derived = source.to_five(points)  # (5, 2); a NaN member makes its mean NaN
    five_vis = np.array([float(vis[list(g)].mean() >= 0.5) for g in source.five_point], np.float32)
    return derived, five_vis


def image_box(height: int, width: int, margin: float) -> np.ndarray:
    """The box whose crop (side * (1 + margin)) is exactly the image's longer side, centred."""
    side = max(height, width) / (1.0 + margin)
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    return np.array([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], dtype=np.float32)


class LandmarkDataset(Dataset):
    """Crops of ``samples`` for a model with a ``crop_size`` input.

    heatmap_size: also return Gaussian targets of that size (None for coordinate regression).
    sigma: Gaussian std in heatmap px. augment: AugmentConfig or None (plain box crop).
    seed: base of the per-item generator. margin: context around the box (0.25 = 25% of its side).
    hidden_weight: weight of hidden points in hm_weight / pt_weight (1.0: trained like visible ones).
    target_schema: the schema of the items' points when it differs from the samples' (``schema``):
        "five" derives 5 points (see :func:`derive_points`). ``self.schema`` is the items' schema.
    background: BackgroundConfig (or None): background replacement before the crop warp; the mask is
        ``attributes["mask"]`` when the sample has one, else the landmark hull.
    align: (N, 2, 3) image -> crop matrices used instead of the box crop (or None).

    dataset[i] uses the epoch set by set_epoch; dataset[(epoch, i)] names the epoch explicitly, which
    is what the DataModule's sampler does so worker processes never hold a stale epoch.
    """

    def __init__(self, samples: list[Sample], schema: LandmarkSchema | str, crop_size: int,
                 heatmap_size: int | None = None, sigma: float = 1.0, augment: AugmentConfig | None = None,
                 seed: int = 0, margin: float = DEFAULT_MARGIN, hidden_weight: float = 1.0,
                 target_schema: LandmarkSchema | str | None = None, background: BackgroundConfig | None = None,
                 align: np.ndarray | None = None, cache: bool = False):
        self.samples = list(samples)
        self.source_schema = get_schema(schema)
        self.schema = get_schema(target_schema) if target_schema is not None else self.source_schema
        self.background = background if background is not None and background.prob > 0 else None
        self.align = None if align is None else np.asarray(align, dtype=np.float64)
        if self.align is not None and self.align.shape != (len(self.samples), 2, 3):
            raise DataError(f"align: expected ({len(self.samples)}, 2, 3) crop matrices, got {self.align.shape}")
        self.crop_size = int(crop_size)
        self.heatmap_size = None if heatmap_size is None else int(heatmap_size)
        self.sigma = float(sigma)
        self.augment = augment if augment is not None else AugmentConfig.none()
        self.seed = int(seed)
        self.margin = float(margin)
        self.hidden_weight = float(hidden_weight)
        self.epoch = 0
        # Without augmentation an item is the same every epoch: keep it (index -> item) instead of decoding,
        # warping and rendering targets again. In a DataLoader worker the cache is that worker's own.
        self._cache = {} if cache and self.augment.is_off() and self.background is None else None
        k = self.source_schema.num_points
        for s in self.samples:
            if s.points is not None and np.asarray(s.points).shape != (k, 2):
                raise DataError(f"{s.image_path}: {np.asarray(s.points).shape[0]} points, "
                                f"schema {self.source_schema.name!r} expects {k}")
        derive_points(np.zeros((k, 2)), np.ones(k, np.float32), self.source_schema, self.schema)  # fail early

    def __len__(self) -> int:
        return len(self.samples)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def rng(self, index: int, epoch: int | None = None) -> np.random.Generator:
        """The generator of one item: a pure function of (seed, epoch, index)."""
        return np.random.default_rng([self.seed, self.epoch if epoch is None else int(epoch), int(index)])

    def crop(self, index: int, epoch: int | None = None) -> dict:
        """The augmented crop as numpy, before tensors and targets (show.py draws these).

        Returns image (S, S, 3) uint8 BGR, points (K, 2) float32 crop px (NaN where unknown),
        visibility (K,) float32, known (K,) bool (the point has a label), matrix (2, 3) float64
        image -> crop, norm float (crop px; 1.0 when unlabelled), labelled bool, flipped bool.
        """
        sample = self.samples[index]
        k, size, aug = self.source_schema.num_points, self.crop_size, self.augment
        rng = self.rng(index, epoch)
        image = read_image(sample.image_path)

        source = np.full((k, 2), np.nan) if sample.points is None else np.asarray(sample.points, np.float64)
        labelled = bool(np.isfinite(source).all(axis=1).any())
        vis = np.ones(k, np.float32) if sample.visibility is None else np.asarray(sample.visibility, np.float32)
        vis = np.where(np.isfinite(source).all(axis=1), vis, 0.0).astype(np.float32)
        if sample.box is not None:
            box = np.asarray(sample.box, np.float64)
        elif labelled:
            box = box_from_points(source).astype(np.float64)
        else:
            box = image_box(image.shape[0], image.shape[1], self.margin)
        points, vis = derive_points(source, vis, self.source_schema, self.schema)  # (K', 2), (K',)
        known = np.isfinite(points).all(axis=1)  # (K',)
        vis = np.where(known, vis, 0.0).astype(np.float32)

        if self.background is not None:
            image = self._replace_background(image, source, sample, index, epoch)

        # geometry: always draw in this order so every option keeps its own random stream position
        flip = bool(rng.random() < aug.flip_prob)
        scale = float(rng.uniform(*aug.scale))
        rotation = float(rng.uniform(-aug.rotation_deg, aug.rotation_deg))
        shift = tuple(rng.uniform(-aug.shift, aug.shift, size=2))
        try:
            if self.align is None:
                matrix = crop_matrix(box, size, self.margin, scale, rotation, shift, flip)
            else:
                # the same augmentation about the aligned crop's centre: crop_matrix of the crop's own
                # square with no margin is the identity, so this is "augment the aligned crop"
                square = (-0.5, -0.5, size - 0.5, size - 0.5)
                aug_m = crop_matrix(square, size, 0.0, scale, rotation, shift, flip)  # (2, 3) crop -> crop
                matrix = (np.vstack([aug_m, [0, 0, 1]]) @ np.vstack([self.align[index], [0, 0, 1]]))[:2]
        except DataError as e:
            raise DataError(f"{sample.image_path}: {e}") from None

        crop = warp(image, matrix, size)
        pts = transform_points(points, matrix)  # (K, 2), float64 in -> float64
        if flip:
            perm = list(self.schema.flip_perm)
            pts, vis, known = pts[perm], vis[perm], known[perm]

        crop = photometric(crop, aug, rng)
        crop, vis = occlude(crop, pts, vis, aug, rng)

        # NME normaliser: the crop is a similarity with scale sqrt|det|, so the image normaliser
        # times that scale equals the normaliser of the transformed points, and a rotation cannot
        # inflate a box-based one.
        norm = 1.0
        if labelled:
            gain = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
            norm = gain * self.schema.normaliser(points, box)
            if not (np.isfinite(norm) and norm > 0):
                norm = gain * float(np.sqrt(max(box[2] - box[0], 1e-6) * max(box[3] - box[1], 1e-6)))
        return {"image": crop, "points": pts.astype(np.float32), "visibility": vis, "matrix": matrix,
                "norm": float(norm), "labelled": labelled, "flipped": flip, "known": known}

    def _replace_background(self, image: np.ndarray, points: np.ndarray, sample: Sample, index: int,
                            epoch: int | None) -> np.ndarray:
        """Background replacement on the full image; the data set's mask when it has one, else the hull
        of the (source schema's) landmarks; images with neither are left alone."""
        mask = (sample.attributes or {}).get("mask")
        if mask is None and np.isfinite(points).all(axis=1).sum() < 3:
            return image
        # its own stream, so switching the background on leaves every other draw of the item unchanged
        rng = np.random.default_rng([self.seed, self.epoch if epoch is None else int(epoch), int(index), 1])
        try:
            return apply_background(image, points, mask, self.background, rng)
        except DataError as e:
            raise DataError(f"{sample.image_path}: {e}") from None

    def subset_flags(self, index: int) -> np.ndarray:
        """(len(SUBSET_NAMES),) bool: which attribute subsets the sample belongs to (WFLW's flags)."""
        attrs = self.samples[index].attributes or {}
        return np.array([bool(attrs.get(name, False)) for name in SUBSET_NAMES])

    def __getitem__(self, key) -> dict[str, torch.Tensor]:
        epoch, index = key if isinstance(key, tuple) else (None, key)
        if self._cache is not None and int(index) in self._cache:
            return self._cache[int(index)]
        c = self.crop(int(index), epoch)
        known, vis = c["known"], c["visibility"]
        # per-point weight for coordinate losses: unknown points 0, hidden ones hidden_weight
        pt_weight = np.where(vis > 0, 1.0, self.hidden_weight) * known
        points = np.where(known[:, None], c["points"], 0.0).astype(np.float32)  # no NaN leaves here
        item = {
            "image": to_tensor(c["image"]),  # (3, S, S)
            "points": torch.from_numpy(points),  # (K, 2) crop px
            "visibility": torch.from_numpy(vis.astype(np.float32)),  # (K,)
            "pt_weight": torch.from_numpy(pt_weight.astype(np.float32)),  # (K,)
            "matrix": torch.from_numpy(c["matrix"].astype(np.float32)),  # (2, 3) image -> crop
            "norm": torch.tensor(c["norm"], dtype=torch.float32),  # ()
            "subsets": torch.from_numpy(self.subset_flags(int(index))),  # (6,) bool
            "index": torch.tensor(int(index), dtype=torch.int64),  # ()
            "labelled": torch.tensor(c["labelled"]),  # () bool
        }
        if self.heatmap_size is not None:
            heatmaps, hm_weight = heatmap_targets(c["points"], vis, self.crop_size, self.heatmap_size, self.sigma,
                                                  self.hidden_weight)
            item["heatmaps"] = torch.from_numpy(heatmaps)  # (K, h, h)
            item["hm_weight"] = torch.from_numpy(hm_weight)  # (K,)
        if self._cache is not None:
            self._cache[int(index)] = item
        return item
