"""Training a coordinate regressor (ConvDW and friends): the model outputs normalised crop
coordinates u = (x + 0.5) / S; the loss is computed in CROP PIXELS so Wing's w and eps (from the
recipe, in pixels) mean what the paper meant (Feng et al., CVPR 2018).
"""

from __future__ import annotations

import torch

from distill.decode import output_to_crop
from distill.losses import COORD_LOSSES
from distill.training.common import LandmarkModule


class RegressionModule(LandmarkModule):
    def coord_loss(self, pred_crop: torch.Tensor, batch: dict) -> torch.Tensor:
        """pred_crop, batch["points"] (B, K, 2) crop px; points without a label and unlabelled samples
        weigh 0 (the dataset's pt_weight also carries data.hidden_weight for occluded points)."""
        cfg = self.recipe["loss"]
        weight = batch.get("pt_weight")
        if weight is None:
            weight = torch.ones(pred_crop.shape[:2], device=pred_crop.device)  # (B, K)
        weight = weight.float()
        if "labelled" in batch:
            weight = weight * batch["labelled"].float()[:, None]
        if cfg["coords"] == "wing":
            return COORD_LOSSES["wing"](pred_crop, batch["points"], w=cfg["wing_w"], eps=cfg["wing_eps"], weight=weight)
        return COORD_LOSSES[cfg["coords"]](pred_crop, batch["points"], weight=weight)

    def losses(self, batch: dict) -> dict[str, torch.Tensor]:
        pred = self.predict_crop(batch["image"])
        loss_gt = self.coord_loss(pred, batch)
        return {"loss": self.recipe["loss"]["w_gt"] * loss_gt, "loss_gt": loss_gt}

    def val_outputs(self, batch: dict) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        pred = self.predict_crop(batch["image"])
        return {"loss_gt": self.coord_loss(pred, batch)}, pred

    def predict_crop(self, images: torch.Tensor) -> torch.Tensor:
        return output_to_crop(self.model(images), "coords", images.shape[-1])[0]  # (B, K, 2) crop px
