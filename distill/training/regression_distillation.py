"""Knowledge distillation of a coordinate regressor (ConvDW, MobileNetV2-, ShuffleNetV2-style) from a frozen
heatmap teacher: the seed's fast model taught by its accurate one.

    loss = w_gt   * f_gt   * s_gt   * coord_loss(student points, ground truth)          (labelled samples only)
         + w_out  * f_out  * s_out  * coord_loss(student points, teacher points; weight = teacher confidence)
         + w_feat * f_feat * sum_pairs s_i * feature_mse(adapter_i(student tap), teacher tap)     (FitNets)

coord_loss is the recipe's (``loss.coords``: Wing, L1 or L2, in crop pixels). The teacher's points are its
last stack decoded exactly as the exported model decodes them (DARK sub-pixel, ``decode.output_to_crop``), so
the student learns the teacher's actual answers, not its heatmaps; each point weighs by the teacher's
confidence (its heatmap peak), so points the teacher is unsure of teach less. This is the regression side of
DistilPose (Ye et al., CVPR 2023: a heatmap teacher, a regression student). The feature pairs name a student
tap (``stage{i}``, stride 2**(i+1)) and a teacher tap (``stack{j}.level{d}`` stride 4 * 2**d, ``stack{j}.out``
stride 4); a 1x1 adapter maps the widths and the student map is resized to the teacher's grid when the strides
differ. Unlabelled images train through the two KD terms (their ground-truth term weighs 0).

f_* (schedule), s_* (balancing) and the frozen teacher are those of heatmap distillation (distillation.py).
"""

from __future__ import annotations

import torch
from torch import nn

from distill.decode import output_to_crop
from distill.training.distillation import (
    FrozenTeacher,
    KDMixin,
    TeacherTargets,
    TermBalancer,
    adapter_key,
    build_adapters,
    feature_kd_loss,
    kd_factors,
    weigh_terms,
)
from distill.training.regression import RegressionModule


class RegressionDistillationModule(KDMixin, RegressionModule):
    def __init__(self, model: nn.Module, schema, recipe: dict, teacher: FrozenTeacher):
        super().__init__(model, schema, recipe)
        d = recipe["distill"]
        self.pairs = [list(p) for p in d["pairs"]]
        self.teacher = teacher  # a plain object: never in the state_dict, the optimiser or the export
        self.adapters = build_adapters(self.pairs, model.feature_channels(), teacher.model.feature_channels(),
                                       bn=d["adapter_bn"])
        self.term_names = ["gt", "out"] + [f"feat/{s}" for s, _ in self.pairs]
        self.balancer = TermBalancer(len(self.term_names), d["balance_steps"]) if d["balance"] else None
        self.teacher_targets = TeacherTargets(teacher, [t for _, t in self.pairs], d["cache_teacher"])

    def teacher_points(self, heatmaps: torch.Tensor, crop_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher heatmaps (B, K, h, w) -> (points (B, K, 2) crop px, confidence (B, K) in [0, 1])."""
        points, confidence = output_to_crop(heatmaps, "heatmap", crop_size)
        return points, confidence.clamp(0.0, 1.0)

    def losses(self, batch: dict) -> dict[str, torch.Tensor]:
        d, w = self.recipe["distill"], self.recipe["loss"]
        size = batch["image"].shape[-1]
        outputs, feats = self.model.forward_intermediates(batch["image"])        # [(B, K, 2) normalised], taps
        pred = output_to_crop(outputs[-1], "coords", size)[0]                    # (B, K, 2) crop px
        t_last, t_feats = self.teacher_targets(batch)
        t_points, t_conf = self.teacher_points(t_last, size)
        raw = {"gt": self.coord_loss(pred, batch),
               "out": self.coord_loss(pred, {"points": t_points, "pt_weight": t_conf})}
        for s, t in self.pairs:
            raw[f"feat/{s}"] = feature_kd_loss(self.adapters[adapter_key(s)](feats[s]), t_feats[t], d["normalize"])

        f = kd_factors(d["schedule"], self.global_step, self.total_steps(), d["warmup_steps"], d["after_warmup"],
                       d["decay_shape"])
        weights = [w["w_gt"] * f["gt"], w["w_out"] * f["out"]] + [w["w_feat"] * f["feat"]] * len(self.pairs)
        total = weigh_terms(raw, self.term_names, weights, self.balancer, self.ddp_reduce())

        terms = {"loss": total, "loss_gt": raw["gt"], "loss_out": raw["out"]}
        if self.pairs:
            terms["loss_feat"] = sum(raw[f"feat/{s}"] for s, _ in self.pairs)
            terms.update({f"loss_feat/{s}": raw[f"feat/{s}"] for s, _ in self.pairs})
        return terms
