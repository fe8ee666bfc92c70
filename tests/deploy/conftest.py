"""Fixtures shared by the deploy tests: checkpoints of every tiny family, their exports, one photo."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from distill.deploy.export import export
from tests.deploy.helpers import FAMILIES, make_checkpoint, model_forms


@pytest.fixture(scope="session")
def ckpts(tmp_path_factory):
    """name -> (checkpoint path, model) for every family in FAMILIES."""
    folder = tmp_path_factory.mktemp("ckpts")
    return {name: make_checkpoint(folder / f"{name}.ckpt", name) for name in FAMILIES}


@pytest.fixture(scope="session")
def exported(ckpts, tmp_path_factory):
    """exported(name, fmt) -> (path, ExportResult), each export done once per session."""
    folder, cache = tmp_path_factory.mktemp("exports"), {}

    def get(name: str, fmt: str):
        if (name, fmt) not in cache:
            out = folder / f"{name}{'.onnx' if fmt == 'onnx' else '.pt'}"
            cache[name, fmt] = out, export(ckpts[name][0], fmt, out, log=lambda *a: None)
        return cache[name, fmt]

    return get


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """The same tiny heatmap model as .ckpt, .onnx and TorchScript .pt."""
    return model_forms(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    """A 120x160 generated image: smooth shapes plus noise, written as PNG."""
    rng = np.random.default_rng(0)
    image = np.full((120, 160, 3), 90, np.uint8)
    cv2.circle(image, (80, 70), 35, (60, 140, 200), -1)
    cv2.circle(image, (68, 60), 5, (20, 20, 20), -1)
    cv2.circle(image, (92, 60), 5, (20, 20, 20), -1)
    image = np.clip(image + rng.normal(0, 8, image.shape), 0, 255).astype(np.uint8)
    path = tmp_path_factory.mktemp("img") / "face.png"
    cv2.imwrite(str(path), image)
    return path, image
