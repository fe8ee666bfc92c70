"""Evaluate a model on a labelled data set: NME / FR / AUC overall and per subset.

Every form of a model (.ckpt, .onnx, TorchScript .pt) runs through the one backend table of
:mod:`distill.deploy.runtime`, so they are scored alike: each sample's plain box crop (no augmentation,
at the model's input size and with the crop margin it was trained with) is cut once as uint8 BGR, the
backend maps the batch to crop-pixel points, and :class:`~distill.metrics.LandmarkNME` compares them
with the crop's truth. A checkpoint and its exports therefore see the same pixels.

It sits above the deploy layer for that reason: evaluation uses the deployed computation
(:class:`~distill.deploy.module.DeployModule`) and nothing of training.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from distill.data.dataset import LandmarkDataset
from distill.data.formats import guess_format, has_300w_splits, load_samples
from distill.data.schema import get_schema
from distill.deploy.runtime import Backend, load_backend, model_label
from distill.errors import DataError
from distill.io import atomic_write_json
from distill.metrics import LandmarkNME, plot_ced

# The split scored when none is named: each format's test set (one-file formats and plain folders of .pts
# files are their own split).
# The split scored by default; a WFLW / AFLW CSV file is its own split, their folders hold one file per split.
DEFAULT_TEST_SPLIT = {"synthface": "test", "300w": "full", "cofw": "test", "aflw": "test", "wflw": "test",
                      "aflw_csv": "test"}


def predict_samples(backend: Backend, samples: list, batch_size: int = 32) -> dict:
    """Run ``backend`` on the plain box crops of ``samples`` (no augmentation).

    Returns tensors in crop pixels: pred (N, K, 2), points (N, K, 2) ground truth (NaN where a point has
    no label), norm (N,) the NME normaliser, subsets (N, A) bool attribute flags, matrix (N, 2, 3)
    image -> crop.
    """
    dataset = LandmarkDataset(samples, backend.schema, backend.input_size, None, augment=None,
                              margin=backend.margin)
    out: dict[str, list] = {"pred": [], "points": [], "norm": [], "subsets": [], "matrix": []}
    for start in range(0, len(dataset), batch_size):
        index = range(start, min(start + batch_size, len(dataset)))
        items = [dataset.crop(i) for i in index]
        crops = np.stack([it["image"].transpose(2, 0, 1) for it in items])  # (B, 3, S, S) uint8 BGR
        out["pred"].append(np.asarray(backend.run(crops)[0], dtype=np.float32))  # (B, K, 2) crop px
        out["points"].append(np.stack([it["points"] for it in items]))
        out["norm"].append(np.array([it["norm"] for it in items], dtype=np.float32))
        out["subsets"].append(np.stack([dataset.subset_flags(i) for i in index]))
        out["matrix"].append(np.stack([it["matrix"] for it in items]).astype(np.float32))
    return {k: torch.from_numpy(np.concatenate(v)) for k, v in out.items()}


def evaluate(model_path: str | Path, data, fmt: str = "auto", split: str | None = "auto", batch_size: int = 32,
             json_out: str | Path | None = None, ced: str | Path | None = None, max_samples: int = 0,
             threads: int | None = None, strict: bool = False, schema=None, images_root=None, log=print) -> dict:
    """Score ``model_path`` on a data set -> {"nme", "fr@0.10", "auc@0.10", ..., "nme/<subset>", "count"}.

    data: a data set path (read with ``fmt`` / ``split``) or a DataConfig (its root, format and test_split).
    split: a split name, "auto" (:data:`DEFAULT_TEST_SPLIT`) or None / "none" (the whole file or folder).
    threads: intra-op threads of the model's runtime (None: its default). strict: a sample the reader
    skips is an error; else one line through ``log`` says what was skipped, and the results carry the
    whole report under "data_report" (what `distill eval --json` writes). schema: a name or YAML file that
    replaces the schema stored with the model (same point count), e.g. for another normaliser pair.
    images_root: the folder a WFLW / AFLW file's image paths are relative to (None: the reader's default).
    With a DataConfig, its own images_root is used.
    """
    backend = load_backend(model_path, threads)
    if schema is not None:
        own = get_schema(schema)
        if own.num_points != backend.num_points:
            raise DataError(f"--schema {schema}: {own.num_points} points, the model {model_path} predicts "
                            f"{backend.num_points}")
        backend.schema = own
    if not isinstance(data, (str, Path)):  # a DataConfig
        fmt, split, images_root, data = data.format, data.test_split, data.images_root, data.root
    if fmt == "auto":
        fmt = guess_format(data)
    if split == "auto":
        split = DEFAULT_TEST_SPLIT.get(fmt)
        if fmt == "300w" and not has_300w_splits(data):  # a plain folder of .pts files: all of it
            split = None
        if fmt in ("wflw", "aflw_csv") and not Path(data).is_dir():
            split = None
    elif split in ("none", ""):
        split = None
    samples, report = load_samples(fmt, data, schema=backend.schema, split=split, strict=strict,
                                   images_root=images_root)
    if report.skipped:
        log(f"{data}: {report.summary()}")
    samples = [s for s in samples if s.points is not None]
    if max_samples:
        samples = samples[:max_samples]
    if not samples:
        raise DataError(f"{data}: no labelled samples to evaluate (format {fmt}, split {split}; {report.summary()})")
    pred = predict_samples(backend, samples, batch_size=batch_size)
    metric = LandmarkNME(backend.schema)
    metric.update(pred["pred"], pred["points"], subsets=pred["subsets"], norm=pred["norm"])
    results = metric.compute()
    out = {k: (float(v) if not isinstance(v, int) else v) for k, v in results.items() if not isinstance(v, torch.Tensor)}
    out["model"], out["label"], out["data"], out["split"] = str(model_path), model_label(model_path), str(data), split
    out["data_report"] = report.to_dict()
    if ced is not None:
        plot_ced({out["label"]: metric.per_image_nme()}, ced)
    if json_out is not None:
        atomic_write_json(Path(json_out), out)
    return out


def print_results(results: dict) -> None:
    """A rich table: overall, then one row per subset present."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{results.get('label', results.get('model', ''))} on {results.get('data', '')} "
                        f"({results.get('split') or 'all of it'}, {results.get('count', '?')} images)",
                  caption="fractions, as in results.json and the JSON (NME 0.05 = 5 % of the normaliser)")
    for col in ("subset", "images", "NME", "FR@0.08", "FR@0.10", "AUC@0.08", "AUC@0.10"):
        table.add_column(col, justify="right" if col != "subset" else "left")
    subsets = [""] + sorted({k.split("/", 1)[1] for k in results if k.startswith("nme/")})
    for s in subsets:
        suffix = f"/{s}" if s else ""
        get = lambda k: results.get(k + suffix, float("nan"))  # noqa: E731
        table.add_row(s or "all", str(results.get(f"count{suffix}", "")),
                      *(f"{get(k):.4f}" for k in ("nme", "fr@0.08", "fr@0.10", "auc@0.08", "auc@0.10")))
    Console().print(table)
