"""Training a heatmap model alone (a teacher, or a student from scratch), with intermediate
supervision: every stack's heatmaps are compared with the ground truth and the losses summed
(Newell et al., ECCV 2016), so the early stacks learn usable heatmaps and the gradient reaches them.

Predictions for the metrics: the last stack, through ``decode.output_to_crop`` (DARK, then crop pixels).
"""

from __future__ import annotations

import torch

from distill.decode import output_to_crop
from distill.errors import ConfigError
from distill.losses import HEATMAP_LOSSES
from distill.training.common import LandmarkModule


class HeatmapModule(LandmarkModule):
    def stack_weights(self, num_stacks: int) -> list[float]:
        w = list(self.recipe["loss"]["stack_weights"]) or [1.0] * num_stacks
        if len(w) != num_stacks:
            raise ConfigError(f"key 'loss.stack_weights': {len(w)} entries, the model has {num_stacks} stacks")
        return w

    def gt_loss(self, outputs: list[torch.Tensor], batch: dict) -> torch.Tensor:
        """Sum over stacks of w_s * loss(stack heatmaps, target); unlabelled samples weigh 0."""
        loss_fn = HEATMAP_LOSSES[self.recipe["loss"]["heatmap"]]
        target = batch["heatmaps"]  # (B, K, h, w)
        weight = batch["hm_weight"].float()  # (B, K)
        if "labelled" in batch:
            weight = weight * batch["labelled"].float()[:, None]
        total = target.new_zeros(())
        for w, out in zip(self.stack_weights(len(outputs)), outputs):
            total = total + w * loss_fn(out, target, weight)
        return total

    def losses(self, batch: dict) -> dict[str, torch.Tensor]:
        outputs, _ = self.model.forward_intermediates(batch["image"])  # list of (B, K, h, w)
        loss_gt = self.gt_loss(outputs, batch)
        return {"loss": self.recipe["loss"]["w_gt"] * loss_gt, "loss_gt": loss_gt}

    def val_outputs(self, batch: dict) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        outputs, _ = self.model.forward_intermediates(batch["image"])
        pred = output_to_crop(outputs[-1], "heatmap", batch["image"].shape[-1])[0]  # (B, K, 2) crop px
        return {"loss_gt": self.gt_loss(outputs, batch)}, pred

    def predict_crop(self, images: torch.Tensor) -> torch.Tensor:
        return output_to_crop(self.model(images), "heatmap", images.shape[-1])[0]  # (B, K, 2) crop px
