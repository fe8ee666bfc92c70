"""What every training module shares: the optimiser and its schedule, validation metrics, logging of
named loss terms, the predicted-vs-true grid, and the ``"distill"`` entry of every checkpoint.

A subclass supplies two things:

    losses(batch) -> {"loss": total, "loss_gt": ..., ...}   every term is logged as train/<name>
    predict_crop(images (B,3,S,S)) -> (B, K, 2)              crop pixels, what the metric scores

The model being trained is ``self.model`` so :func:`distill.checkpoint.load_model` finds its weights
under ``model.`` in any Lightning checkpoint; nothing else the module holds (adapters, metric state)
is needed to use the model.
"""

from __future__ import annotations

import math
from pathlib import Path

import lightning as L
import numpy as np
import torch

from distill.checkpoint import model_info
from distill.data.schema import LandmarkSchema
from distill.data.show import prediction_grid
from distill.data.transforms import PIXEL_MEAN, PIXEL_STD
from distill.io import write_image
from distill.metrics import LandmarkNME

# The validation numbers logged (and used for best.ckpt): fractions, not percent.
VAL_KEYS = ("nme", "fr@0.08", "fr@0.10", "auc@0.08", "auc@0.10")


class LandmarkModule(L.LightningModule):
    def __init__(self, model: torch.nn.Module, schema: LandmarkSchema, recipe: dict):
        super().__init__()
        self.model = model
        self.schema = schema
        # A plain dict (never a dataclass / OmegaConf node) so checkpoints load with weights_only=True.
        self.recipe = recipe
        # logger=False: the loggers get the recipe flattened (training.tracking), not as one nested key
        self.save_hyperparameters({"recipe": recipe}, logger=False)
        self.val_metric = LandmarkNME(schema)
        self._grid: list | None = None  # (images, pred, true, visibility) of the first val batch
        # what the last validation drew and measured, for the loggers (training.tracking.Tracking)
        self.last_grid: np.ndarray | None = None      # (H, W, 3) BGR: crops with truth and prediction
        self.last_val_nme: torch.Tensor | None = None  # (N,) per-image NME (this rank's images)

    # ---- to be supplied by subclasses ------------------------------------------------------------
    def losses(self, batch: dict) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def predict_crop(self, images: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def val_outputs(self, batch: dict) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """-> (validation loss terms, predictions (B, K, 2) crop px), from one forward pass."""
        return {}, self.predict_crop(batch["image"])

    def teacher_info(self) -> dict | None:
        return None

    # ---- steps -----------------------------------------------------------------------------------
    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        terms = self.losses(batch)
        bs = batch["image"].shape[0]
        self.log_dict({f"train/{k}": v.detach() for k, v in terms.items()}, batch_size=bs,
                      prog_bar=False, on_step=True, on_epoch=False)
        groups = self.trainer.optimizers[0].param_groups if self.trainer.optimizers else []
        self.log_dict({"train/lr" if len(groups) == 1 else f"train/lr/group{i}": float(g["lr"])
                       for i, g in enumerate(groups)}, batch_size=bs, on_step=True, on_epoch=False)
        self.log("loss", terms["loss"].detach(), prog_bar=True, logger=False, batch_size=bs)
        return terms["loss"]

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        bs = batch["image"].shape[0]
        terms, pred = self.val_outputs(batch)  # pred (B, K, 2) crop px
        if terms:
            self.log_dict({f"val/{k}": v for k, v in terms.items()}, batch_size=bs, on_epoch=True, sync_dist=True)
        self.val_metric.update(pred, batch["points"], subsets=batch.get("subsets"), norm=batch.get("norm"))
        if batch_idx == 0 and self.global_rank == 0:
            n = int(self.recipe["logging"]["grid_images"])
            self._grid = [t[:n].detach().cpu() for t in (batch["image"], pred, batch["points"], batch["visibility"])]

    def on_validation_epoch_end(self) -> None:
        results = self.val_metric.compute()  # reduced over every rank (torchmetrics sync)
        self.last_val_nme = self.val_metric.per_image_nme().detach().cpu()
        self.val_metric.reset()
        scalars = {f"val/{k}": float(v) for k, v in results.items() if _is_scalar(v)}
        # Already identical on every rank; sync_dist only silences Lightning's distributed warning.
        sync = self.trainer.world_size > 1
        self.log_dict(scalars, sync_dist=sync)
        self.log("val_nme", scalars.get("val/nme", math.nan), prog_bar=True, logger=False, sync_dist=sync)
        if self._grid is not None and self.global_rank == 0 and not self.trainer.sanity_checking:
            self._save_grid(*self._grid)
        self._grid = None

    # ---- optimiser -------------------------------------------------------------------------------
    def configure_optimizers(self):
        o, s = self.recipe["optim"], self.recipe["schedule"]
        params = [p for p in self.parameters() if p.requires_grad]
        if o["name"] == "adam":
            opt = torch.optim.Adam(params, lr=o["lr"], weight_decay=o["weight_decay"])
        elif o["name"] == "adamw":
            opt = torch.optim.AdamW(params, lr=o["lr"], weight_decay=o["weight_decay"])
        elif o["name"] == "sgd":
            opt = torch.optim.SGD(params, lr=o["lr"], momentum=o["momentum"], weight_decay=o["weight_decay"])
        else:
            opt = torch.optim.RMSprop(params, lr=o["lr"], momentum=o["momentum"], weight_decay=o["weight_decay"])
        total = max(int(self.trainer.max_steps if self.trainer.max_steps > 0 else self.trainer.estimated_stepping_batches), 1)
        factor = lr_factor_fn(s, total)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    # ---- checkpoint ------------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["distill"] = model_info(
            self.model, self.schema, decode="dark", recipe=self.recipe,
            recipe_name=self.recipe.get("name", ""), teacher=self.teacher_info())

    # ---- the predicted-vs-true grid --------------------------------------------------------------
    def _save_grid(self, images, pred, true, vis) -> None:
        if len(images) == 0:
            return
        crops = [tensor_to_bgr(im) for im in images]
        grid = prediction_grid(crops, [p.numpy() for p in true], [p.numpy() for p in pred], [v.numpy() for v in vis],
                               cols=min(4, len(crops)))
        write_image(Path(self.trainer.default_root_dir) / "val_grid" / f"step{self.global_step:06d}.png", grid)
        self.last_grid = grid


def _is_scalar(v) -> bool:
    return isinstance(v, (int, float)) or (isinstance(v, torch.Tensor) and v.numel() == 1)


def lr_factor_fn(s: dict, total: int):
    """Schedule section -> step -> lr factor: linear warm-up, then cosine / step / constant."""
    warm = int(s["warmup_steps"])

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        t = min((step - warm) / max(total - warm, 1), 1.0)
        if s["name"] == "cosine":
            lo = s["min_lr_ratio"]
            return lo + (1.0 - lo) * 0.5 * (1.0 + math.cos(math.pi * t))
        if s["name"] == "step":
            return s["gamma"] ** sum(t >= m for m in s["milestones"])
        return 1.0

    return factor


def tensor_to_bgr(image: torch.Tensor) -> np.ndarray:
    """Network input (3, S, S) normalised BGR -> (S, S, 3) uint8 BGR (undoes to_tensor)."""
    x = (image.float() * PIXEL_STD + PIXEL_MEAN) * 255.0
    return x.clamp(0, 255).round().to(torch.uint8).permute(1, 2, 0).numpy().copy()

