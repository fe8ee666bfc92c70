"""Tiny checkpoints and data folders for the deploy tests."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from distill.checkpoint import model_info, save_model_checkpoint
from distill.data import SCHEMAS, write_pts
from distill.models import build_model

# every family through the export contract, the lean student shape included
FAMILIES = ["hourglass_tiny", "hourglass_lean_tiny", "convdw_tiny", "mobilenetv2_tiny", "shufflenetv2_tiny"]


def make_checkpoint(path, name: str, seed: int = 0):
    """A tiny model with non-trivial BatchNorm statistics (so eval vs train mode would show), saved."""
    torch.manual_seed(seed)
    model = build_model(name)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_(0.0, 0.2)
            m.running_var.uniform_(0.5, 2.0)
    model.eval()
    save_model_checkpoint(path, model, model_info(model, SCHEMAS["ibug68"], recipe={"seed": seed},
                                                  recipe_name="tests/tiny"))
    return path, model


def write_face_folder(folder, num: int = 4, size: int = 96, seed: int = 0):
    """A 300W-style folder: noise images with a 68-point .pts each (points inside a face box)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(num):
        cv2.imwrite(str(folder / f"face{i}.png"), rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
        write_pts(folder / f"face{i}.pts", rng.uniform(20, size - 20, size=(68, 2)).astype(np.float32))
    return folder


def model_forms(folder, name: str = "hourglass_tiny", seed: int = 1) -> dict:
    """One tiny model as .ckpt, .onnx and TorchScript .pt -> {"ckpt": path, "onnx": path, "pt": path}."""
    from distill.deploy.export import export

    ckpt, _ = make_checkpoint(folder / f"{name}.ckpt", name, seed=seed)
    export(ckpt, "onnx", folder / f"{name}.onnx", log=lambda *a: None)
    export(ckpt, "torchscript", folder / f"{name}.pt", log=lambda *a: None)
    return {s: folder / f"{name}.{s}" for s in ("ckpt", "onnx", "pt")}
