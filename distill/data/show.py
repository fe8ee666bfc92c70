"""Look at data: a grid of crops with their points drawn (``distill data show``).

With augment=True each cell is the augmented training crop with its transformed points, drawn from
the same crop() the training items come from, so a point that sits on its feature here sits on it
in training too. Each point has its own colour (a hue by index; hidden points as rings) and flipped
tiles are marked, so wrong flip pairs show: after a correct flip the image-left eye keeps the colours it
has in unflipped tiles, after a wrong one the colours change sides (``distill data check`` measures it).
``draw_grid`` is the reusable part (e.g. predictions vs truth).
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from distill.data.augment import AugmentConfig
from distill.data.datamodule import infer_schema
from distill.data.dataset import LandmarkDataset
from distill.data.formats import Sample, load_samples
from distill.data.schema import get_schema
from distill.errors import DataError
from distill.io import write_image

VISIBLE = (0, 220, 0)  # BGR green
HIDDEN = (0, 0, 255)  # BGR red
SECOND = (255, 160, 0)  # BGR light blue: the optional second point set (e.g. predictions)
BACKGROUND = 32


def _dot(img: np.ndarray, x: float, y: float, radius: float, colour, filled: bool = True) -> None:
    # cv2 draws at sub-pixel positions through fixed point (shift=4 -> 1/16 px), so nothing rounds
    cv2.circle(img, (int(round(x * 16)), int(round(y * 16))), int(round(radius * 16)), colour, -1 if filled else 1,
               cv2.LINE_AA, 4)


def point_colours(num_points: int) -> list[tuple[int, int, int]]:
    """One BGR colour per point index: hues around the colour wheel in index order."""
    hsv = np.stack([np.arange(num_points) * 170 // max(num_points, 1), np.full(num_points, 255),
                    np.full(num_points, 235)], -1).astype(np.uint8)[None]        # (1, K, 3)
    return [tuple(int(c) for c in bgr) for bgr in cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0]]


def draw_grid(images: list[np.ndarray], points_list: list[np.ndarray | None],
              visibility_list: list[np.ndarray | None] | None = None, cols: int | None = None,
              points2_list: list[np.ndarray | None] | None = None, numbers: bool = False,
              cell: int | None = None, gap: int = 2, index_colours: bool = False,
              marks: list[str] | None = None) -> np.ndarray:
    """uint8 BGR grid of ``images`` with points drawn: visible green, hidden red, second set blue; with
    ``index_colours`` each point in its own colour (:func:`point_colours`), hidden ones as rings.
    ``marks``: a short label written in each tile's corner (e.g. "flipped"), "" for none.

    images: uint8 BGR (H, W, 3) or grayscale (H, W); each is resized to ``cell`` x ``cell`` px
    (default: the largest side present) and its points scaled with it. points_list[i]: (K, 2) in
    image i's pixels, None or NaN rows are skipped. cols: default ceil(sqrt(n)). The grid is
    rows * cell + (rows - 1) * gap px high and cols * cell + (cols - 1) * gap wide.
    """
    n = len(images)
    if n == 0:
        raise DataError("draw_grid: no images to draw")
    cols = cols or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    cell = cell or max(max(im.shape[:2]) for im in images)
    grid = np.full((rows * cell + (rows - 1) * gap, cols * cell + (cols - 1) * gap, 3), BACKGROUND, np.uint8)
    radius = max(1.0, cell / 100.0)
    for i, image in enumerate(images):
        img = image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        sx, sy = cell / img.shape[1], cell / img.shape[0]
        tile = np.ascontiguousarray(cv2.resize(img, (cell, cell), interpolation=cv2.INTER_AREA))

        def scaled(p):  # image px -> tile px, same pixel-centre convention as the crop
            p = np.asarray(p, np.float64).reshape(-1, 2)
            return np.stack([(p[:, 0] + 0.5) * sx - 0.5, (p[:, 1] + 0.5) * sy - 0.5], axis=1)

        if points2_list is not None and points2_list[i] is not None:
            for x, y in scaled(points2_list[i]):
                if np.isfinite(x) and np.isfinite(y):
                    _dot(tile, x, y, radius, SECOND)
        if points_list[i] is not None:
            pts = scaled(points_list[i])
            vis = visibility_list[i] if visibility_list is not None and visibility_list[i] is not None else None
            colours = point_colours(len(pts)) if index_colours else None
            for k, (x, y) in enumerate(pts):
                if not (np.isfinite(x) and np.isfinite(y)):
                    continue
                hidden = vis is not None and vis[k] <= 0
                if colours is None:
                    _dot(tile, x, y, radius, HIDDEN if hidden else VISIBLE)
                else:
                    _dot(tile, x, y, radius * (1.4 if hidden else 1.0), colours[k], filled=not hidden)
                if numbers:
                    cv2.putText(tile, str(k), (int(x) + 2, int(y) - 2), cv2.FONT_HERSHEY_PLAIN, 0.6, (255, 255, 255))
        if marks is not None and marks[i]:
            cv2.rectangle(tile, (0, 0), (8 * len(marks[i]) + 4, 14), (0, 0, 0), -1)
            cv2.putText(tile, marks[i], (2, 11), cv2.FONT_HERSHEY_PLAIN, 0.8, (255, 255, 255))
        r, c = divmod(i, cols)
        y0, x0 = r * (cell + gap), c * (cell + gap)
        grid[y0:y0 + cell, x0:x0 + cell] = tile
    return grid


TRUTH = (60, 220, 60)        # BGR green
PREDICTION = (255, 60, 255)  # BGR magenta: far from green, from skin tones and from SynthFace's backgrounds
ERROR = (0, 230, 255)        # BGR yellow: the line from a point's truth to its prediction


def prediction_grid(images: list[np.ndarray], truth: list[np.ndarray], pred: list[np.ndarray],
                    visibility: list[np.ndarray | None] | None = None, cols: int | None = None,
                    cell: int = 192, labels: list[str] | None = None) -> np.ndarray:
    """uint8 BGR grid of predictions against the truth, legible at 68 or 98 points: each crop scaled to
    ``cell`` px, truth as green dots (hidden points as rings), predictions as magenta crosses, a yellow line
    from each truth to its prediction, every mark outlined in black so it shows on any background, and a
    legend strip above. images: (H, W, 3) BGR crops; truth / pred: (K, 2) in crop pixels; labels: a text per
    tile, written in its top-left corner ("" for none), e.g. the model of each row."""
    radius = max(2.0, cell / 80.0)
    tiles = []
    for i, image in enumerate(images):
        s = cell / image.shape[1]
        tile = np.ascontiguousarray(cv2.resize(image, (cell, cell), interpolation=cv2.INTER_LINEAR))
        t = (np.asarray(truth[i], np.float64) + 0.5) * s - 0.5                       # (K, 2) tile px
        p = (np.asarray(pred[i], np.float64) + 0.5) * s - 0.5
        vis = visibility[i] if visibility is not None and visibility[i] is not None else np.ones(len(t))
        for (tx, ty), (px, py) in zip(t, p):
            if np.isfinite([tx, ty, px, py]).all():
                cv2.line(tile, (int(round(tx * 16)), int(round(ty * 16))), (int(round(px * 16)), int(round(py * 16))),
                         ERROR, 1, cv2.LINE_AA, 4)
        for (x, y), v in zip(t, vis):
            if np.isfinite([x, y]).all():
                _dot(tile, x, y, radius + 1, (0, 0, 0), filled=v > 0)
                _dot(tile, x, y, radius, TRUTH, filled=v > 0)
        arm = int(round(radius * 1.3 * 16))
        for x, y in p:
            if np.isfinite([x, y]).all():
                cx, cy = int(round(x * 16)), int(round(y * 16))
                for colour, width in (((0, 0, 0), 3), (PREDICTION, 1)):
                    cv2.line(tile, (cx - arm, cy - arm), (cx + arm, cy + arm), colour, width, cv2.LINE_AA, 4)
                    cv2.line(tile, (cx - arm, cy + arm), (cx + arm, cy - arm), colour, width, cv2.LINE_AA, 4)
        tiles.append(tile)
    body = draw_grid(tiles, [None] * len(tiles), cols=cols, cell=cell, marks=labels)
    legend = np.full((26, body.shape[1], 3), BACKGROUND, np.uint8)
    x = 8
    for label, colour in (("truth", TRUTH), ("prediction", PREDICTION), ("error", ERROR)):
        if label == "truth":
            cv2.circle(legend, (x + 6, 13), 5, colour, -1, cv2.LINE_AA)
        elif label == "prediction":
            cv2.line(legend, (x + 1, 8), (x + 11, 18), colour, 2, cv2.LINE_AA)
            cv2.line(legend, (x + 1, 18), (x + 11, 8), colour, 2, cv2.LINE_AA)
        else:
            cv2.line(legend, (x, 13), (x + 12, 13), colour, 2, cv2.LINE_AA)
        cv2.putText(legend, label, (x + 18, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (235, 235, 235), 1, cv2.LINE_AA)
        x += 30 + 10 * len(label)
    return np.vstack([legend, body])


def _in_subset(sample: Sample, subset: str | None) -> bool:
    if subset is None:
        return True
    attrs = sample.attributes or {}
    # WFLW-style flags ("pose": 1) or a named subset ("subset": "challenging" in 300W)
    return bool(attrs.get(subset, False)) or attrs.get("subset") == subset


def show_dataset(dataset: str | Path | list[Sample] | LandmarkDataset, out: str | Path, fmt: str = "auto",
                 schema: str | None = None, num: int = 16, augment: bool = False, subset: str | None = None,
                 seed: int = 0, size: int = 160, numbers: bool = False, strict: bool = False,
                 split: str | None = None, images_root: str | Path | None = None, log=print) -> Path:
    """Write a PNG grid of ``num`` samples (chosen with ``seed``) with their points.

    dataset: a data set path (read with formats.load_samples(fmt, path, schema=, split=, images_root=)), a list of
    Samples, or a LandmarkDataset (then its own crop size and augmentation are used). augment:
    show augmented training crops (AugmentConfig defaults) instead of plain box crops. subset:
    only samples with that attribute flag. strict: a skipped sample is an error (else one line through
    ``log`` says what was skipped and why). Returns the written path.
    """
    if isinstance(dataset, LandmarkDataset):
        ds = dataset
    else:
        if isinstance(dataset, (str, Path)):
            samples, report = load_samples(fmt, dataset, schema=schema, split=split, strict=strict,
                                           images_root=images_root)
            if not samples:
                raise DataError(f"{dataset}: no samples to show ({report.summary()})")
            if report.skipped:
                log(f"{dataset}: {report.summary()}")
        else:
            samples = list(dataset)
        if not samples:
            raise DataError("samples: no samples to show")
        sch = get_schema(schema) if schema else infer_schema(samples)
        ds = LandmarkDataset(samples, sch, size, augment=AugmentConfig() if augment else None, seed=seed)
    candidates = [i for i, s in enumerate(ds.samples) if _in_subset(s, subset)]
    if not candidates:
        raise DataError(f"no samples in subset {subset!r}")
    pick = np.random.default_rng(seed).choice(len(candidates), size=min(num, len(candidates)), replace=False)
    crops = [ds.crop(candidates[j]) for j in sorted(pick)]
    grid = draw_grid([c["image"] for c in crops], [c["points"] for c in crops], [c["visibility"] for c in crops],
                     numbers=numbers, index_colours=True, marks=["flipped" if c["flipped"] else "" for c in crops])
    return write_image(out, grid)
