"""DeployModule: uint8 crops in, crop-pixel points and confidence out, always in eval mode."""

from __future__ import annotations

import numpy as np
import torch

from distill.deploy.module import DeployModule
from distill.deploy.runtime import random_crops, run_torch


def test_deploy_module_stays_in_eval_mode(ckpts):
    # the tracing exporter restores the wrapper's mode on every submodule; BatchNorm must never train
    deploy = DeployModule(ckpts["hourglass_tiny"][1], "dark")
    deploy.train()
    assert not any(m.training for m in deploy.modules())


def test_points_are_crop_pixels_and_confidence_follows_the_output_kind(ckpts):
    # a regressor's u = 0.5 is the crop centre (S - 1) / 2; it has no confidence, so 1.0
    _, model = ckpts["convdw_tiny"]
    torch.nn.init.zeros_(model.head.fc.weight)
    torch.nn.init.constant_(model.head.fc.bias, 0.5)
    points, conf = run_torch(DeployModule(model, "dark"), random_crops(2, 64))
    np.testing.assert_allclose(points, 31.5, atol=1e-5)
    np.testing.assert_array_equal(conf, 1.0)
    # a heatmap model's confidence is the raw heatmap peak of each point
    _, hg = ckpts["hourglass_tiny"]
    crops = random_crops(2, 64)
    _, conf = run_torch(DeployModule(hg, "dark"), crops)
    with torch.no_grad():
        heatmaps = hg((torch.from_numpy(crops).float() / 255 - 0.5) / 0.25)
    np.testing.assert_allclose(conf, heatmaps.flatten(2).amax(-1).numpy(), atol=1e-6)
