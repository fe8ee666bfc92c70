"""What a deployed model computes, and what is written beside it: a uint8 face crop in, crop-pixel
landmarks out. The whole per-face computation is one module, so a phone or a server needs nothing of
this library, only a crop and a runtime::

    image (B, 3, S, S) uint8 BGR  ->  x = (image / 255 - 0.5) / 0.25  ->  model(x)
        -> decode.output_to_crop:  heatmaps: DARK decode -> crop px, confidence = heatmap peak
                                   coordinates: u in [0, 1] -> crop px, confidence = 1.0 (none learned)
    -> points (B, K, 2) float32 crop px, confidence (B, K) float32

Only the model is wrapped: distillation adapters and the teacher live in the training module, never in
the checkpoint's ``model.`` weights, so they cannot reach the export. The same :class:`DeployModule`
runs eagerly for ``.ckpt`` files (:mod:`distill.deploy.runtime`), so eager, ONNX and TorchScript
predictions come from one definition.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from distill import __version__
from distill.checkpoint import crop_margin, file_sha256, schema_fields, schema_from_plain
from distill.data.transforms import PIXEL_MEAN, PIXEL_STD
from distill.decode import output_to_crop
from distill.models.facts import model_facts

# The graph's public names (the export contract: docs/export.md).
INPUT_NAME = "image"
OUTPUT_NAMES = ("points", "confidence")


class DeployModule(nn.Module):
    """uint8 BGR crops (B, 3, S, S) -> (points (B, K, 2) crop px, confidence (B, K))."""

    def __init__(self, model: nn.Module, decode: str = "dark"):
        super().__init__()
        self.model = model.eval()
        self.decode = decode
        self.output_kind = str(model.output_kind)
        self.input_size = int(model.input_size)
        self.heatmap_size = None
        self._scale, self._shift = 1.0 / (255.0 * PIXEL_STD), PIXEL_MEAN / PIXEL_STD
        if self.output_kind == "heatmap":
            # python ints, so the traced graph holds constants instead of a shape computation
            with torch.no_grad():
                probe = model(torch.zeros(1, 3, self.input_size, self.input_size))
            self.heatmap_size = (int(probe.shape[-1]), int(probe.shape[-2]))  # (w, h)
        self.eval()

    def train(self, mode: bool = True):
        # Always eval: the tracing exporter restores the wrapper's mode on every submodule after export,
        # and a wrapper in train mode would switch the model's BatchNorm layers to batch statistics.
        return super().train(False)

    def forward(self, image: torch.Tensor):
        # transforms.to_tensor's (x / 255 - mean) / std as one multiply and one subtract: two graph nodes
        # instead of three, within a few ulp of training's inputs
        x = image.float() * self._scale - self._shift  # (B, 3, S, S)
        points, confidence = output_to_crop(self.model(x), self.output_kind, self.input_size, self.decode,
                                            heatmap_size=self.heatmap_size)  # (B, K, 2), (B, K) or None
        if confidence is None:
            # not ones_like: the tracing exporter folds that into a constant of the example's batch
            confidence = points[..., 0] * 0.0 + 1.0  # (B, K)
        # a cast only where needed: an identity Cast is still a node that ONNX Runtime runs
        return tuple(t if t.dtype == torch.float32 else t.float() for t in (points, confidence))


def build_metadata(info: dict, deploy: DeployModule, source: Path | None = None, quantization: str = "none",
                   facts: bool = True) -> dict:
    """A checkpoint's ``"distill"`` info + its DeployModule -> string key -> string value, as ONNX
    metadata_props stores them (JSON for lists and dicts). ``source``: the checkpoint, hashed into the
    record. ``facts``: also count params and GFLOPs (so `distill bench` can show them for a bare .onnx)."""
    schema = schema_from_plain(info["schema"])
    meta = {
        "schema": schema.name,
        "num_points": str(schema.num_points),
        "flip_perm": json.dumps(list(schema.flip_perm)),
        "norm_pair": json.dumps(list(schema.norm_pair) if schema.norm_pair else None),
        # the whole point schema (groups, 5-point derivation, other normalisers), so a file trained on a
        # schema of one's own is scored and flipped right with no schema file beside it
        "schema_fields": json.dumps(schema_fields(schema)),
        "input_size": str(deploy.input_size),
        "normalisation": json.dumps({"input": "uint8", "channels": "BGR", "mean": PIXEL_MEAN, "std": PIXEL_STD,
                                     "formula": "(image / 255 - mean) / std"}),
        "crop_margin": str(crop_margin(info)),
        "output_kind": deploy.output_kind,
        "decode": deploy.decode if deploy.output_kind == "heatmap" else "none",
        "points_units": "crop pixels, 0-based, pixel centres at integers",
        "confidence": "heatmap peak value" if deploy.output_kind == "heatmap" else "1.0 (regressor has no confidence)",
        "library": "distill",
        "library_version": __version__,
        "recipe_name": str(info.get("recipe_name", "")),
        "recipe_hash": str(info.get("recipe_hash", "")),
        "exporter": f"torch.onnx.export(dynamo=False) / torch.jit.trace, torch {torch.__version__}",
        "quantization": quantization,
    }
    if source is not None:
        meta["checkpoint_sha256"] = file_sha256(source)
    if not facts:
        return meta
    try:
        counted = model_facts(deploy.model, deploy.input_size)
        meta["params"], meta["gflops"] = str(int(counted["params"])), f"{float(counted['gflops']):.6g}"
    except Exception:  # facts are a nicety for `distill bench` on a bare .onnx; export must not depend on them
        pass
    return meta
