"""Evaluate a trained model on a labelled data set: NME / FR / AUC overall and per subset.

Any model file works if there is a predictor for its suffix in :data:`PREDICTORS`: a function
``path -> Predictor`` whose ``predict(images)`` takes the network input batch (B, 3, S, S) (normalised
BGR floats, as the data pipeline makes it) and returns (B, K, 2) points in CROP pixels. The crops, the
metric and the report are shared, so a Lightning ``.ckpt``, an exported ``.onnx`` and a TorchScript
``.pt`` of the same model are scored on identical pixels. To support another format, add an entry.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from distill.data.schema import LandmarkSchema
from distill.errors import DataError


@dataclass
class Predictor:
    predict: Callable[[torch.Tensor], torch.Tensor]  # (B, 3, S, S) normalised -> (B, K, 2) crop px
    input_size: int
    schema: LandmarkSchema
    margin: float = 0.25  # crop context the model was trained with (data.margin)


# ----------------------------------------------------------------------------- predictors
def ckpt_predictor(path: Path, threads: int | None = None) -> Predictor:
    from distill.checkpoint import load_model, schema_from_plain
    from distill.training.heatmap import heatmaps_to_crop
    from distill.decode import normalised_to_crop

    model, info = load_model(path)
    size = int(info["input_size"])

    @torch.no_grad()
    def predict(images: torch.Tensor) -> torch.Tensor:
        out = model(images)
        if info["output_kind"] == "coords":
            return normalised_to_crop(out, size)  # (B, K, 2)
        return heatmaps_to_crop(out, size)

    margin = float(((info.get("recipe") or {}).get("data") or {}).get("margin", 0.25))
    return Predictor(predict, size, schema_from_plain(info["schema"]), margin)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """Network input -> the uint8 BGR crops an exported graph takes (exact: the input came from uint8)."""
    from distill.data.transforms import PIXEL_MEAN, PIXEL_STD

    x = (images.float() * PIXEL_STD + PIXEL_MEAN) * 255.0
    return x.clamp(0, 255).round().to(torch.uint8).numpy()


def exported_predictor(path: Path, threads: int | None = None) -> Predictor:
    """An ``.onnx`` (ONNX Runtime) or TorchScript ``.pt`` written by ``distill export``: uint8 crops in,
    crop-pixel points out (output 0), per the public contract."""
    from distill.data.schema import get_schema
    from distill.export import _load_torchscript, ort_session, read_metadata, run_ort, run_torch

    meta = read_metadata(path)
    if path.suffix.lower() == ".onnx":
        session = ort_session(path, threads)
        run = lambda crops: run_ort(session, crops)  # noqa: E731
    else:
        module = _load_torchscript(path)[0]
        run = lambda crops: run_torch(module, crops)  # noqa: E731

    def predict(images: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(np.asarray(run(to_uint8(images))[0], dtype=np.float32))

    return Predictor(predict, int(meta["input_size"]), get_schema(meta["schema"]), float(meta.get("crop_margin", 0.25)))


# file suffix -> predictor factory; the extension point for new model formats
PREDICTORS: dict[str, Callable[..., Predictor]] = {
    ".ckpt": ckpt_predictor,
    ".onnx": exported_predictor,
    ".pt": exported_predictor,
}


def load_predictor(path: str | Path, threads: int | None = None) -> Predictor:
    """threads: ONNX Runtime intra-op threads for .onnx files (None: all cores); torch's are global."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: model file not found")
    factory = PREDICTORS.get(path.suffix.lower())
    if factory is None:
        raise DataError(f"{path}: unknown model format {path.suffix!r} (known: {', '.join(PREDICTORS)})")
    return factory(path, threads)


# ----------------------------------------------------------------------------- evaluation
# The split scored when none is named: each format's test set (one-file formats are their own split).
DEFAULT_TEST_SPLIT = {"synthface": "test", "300w": "full", "cofw": "test", "aflw": "test"}

def predict_samples(predictor: Predictor, samples: list, batch_size: int = 32, workers: int = 0) -> dict:
    """Run ``predictor`` on the plain box crops of ``samples`` (no augmentation).

    Returns tensors in crop pixels: pred (N, K, 2), points (N, K, 2) ground truth, norm (N,) the NME
    normaliser, subsets (N, A) bool attribute flags, matrix (N, 2, 3) image -> crop.
    """
    from torch.utils.data import DataLoader

    from distill.data.dataset import LandmarkDataset

    dataset = LandmarkDataset(samples, predictor.schema, predictor.input_size, None, augment=None,
                              margin=predictor.margin)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers)
    out: dict[str, list] = {"pred": [], "points": [], "norm": [], "subsets": [], "matrix": []}
    for batch in loader:
        out["pred"].append(predictor.predict(batch["image"]).float())  # (B, K, 2) crop px
        for key in ("points", "norm", "subsets", "matrix"):
            out[key].append(batch[key])
    return {k: torch.cat(v) for k, v in out.items()}


def evaluate(model_path: str | Path, data, fmt: str = "auto", split: str | None = "auto", batch_size: int = 32,
             json_out: str | Path | None = None, ced: str | Path | None = None, max_samples: int = 0,
             workers: int = 0) -> dict:
    """Score ``model_path`` on a data set -> {"nme", "fr@0.10", "auc@0.10", ..., "nme/<subset>", "count"}.

    data: a data set path (read with ``fmt`` / ``split``) or a DataConfig (its root, format and test_split).
    split: a split name, "auto" (:data:`DEFAULT_TEST_SPLIT`) or None / "none" (the whole file or folder).
    Crops are the plain box crops (no augmentation) at the model's input size.
    """
    from distill.data.formats import guess_format, load_samples
    from distill.metrics import LandmarkNME

    predictor = load_predictor(model_path)
    if not isinstance(data, (str, Path)):  # a DataConfig
        fmt, split, data = data.format, data.test_split, data.root
    if fmt == "auto":
        fmt = guess_format(data)
    if split == "auto":
        split = DEFAULT_TEST_SPLIT.get(fmt)
    elif split in ("none", ""):
        split = None
    samples, _ = load_samples(fmt, data, schema=predictor.schema, split=split)
    samples = [s for s in samples if s.points is not None]
    if max_samples:
        samples = samples[:max_samples]
    if not samples:
        raise DataError(f"{data}: no labelled samples to evaluate (format {fmt}, split {split})")
    pred = predict_samples(predictor, samples, batch_size=batch_size, workers=workers)
    metric = LandmarkNME(predictor.schema)
    metric.update(pred["pred"], pred["points"], subsets=pred["subsets"], norm=pred["norm"])
    results = metric.compute()
    out = {k: (float(v) if not isinstance(v, int) else v) for k, v in results.items() if not isinstance(v, torch.Tensor)}
    out["model"], out["data"], out["split"] = str(model_path), str(data), split
    if ced is not None:
        from distill.metrics import plot_ced

        plot_ced({Path(model_path).name: metric.per_image_nme()}, ced)
    if json_out is not None:
        from distill.training.runs import atomic_write_json

        atomic_write_json(Path(json_out), out)
    return out


def print_results(results: dict) -> None:
    """A rich table: overall, then one row per subset present."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{results.get('model', '')} on {results.get('data', '')} ({results.get('split')}, "
                        f"{results.get('count', '?')} images)")
    for col in ("subset", "NME %", "FR@0.08 %", "FR@0.10 %", "AUC@0.08", "AUC@0.10"):
        table.add_column(col, justify="right" if col != "subset" else "left")
    subsets = [""] + sorted({k.split("/", 1)[1] for k in results if k.startswith("nme/")})
    for s in subsets:
        suffix = f"/{s}" if s else ""
        get = lambda k: results.get(k + suffix, float("nan"))  # noqa: E731
        table.add_row(s or "all", f"{100 * get('nme'):.2f}", f"{100 * get('fr@0.08'):.2f}",
                      f"{100 * get('fr@0.10'):.2f}", f"{get('auc@0.08'):.4f}", f"{get('auc@0.10'):.4f}")
    Console().print(table)


def dumps(results: dict) -> str:
    return json.dumps(results, indent=2, sort_keys=True)
