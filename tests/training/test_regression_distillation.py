"""A coordinate regressor distilled from a heatmap teacher: it learns the teacher's decoded points (weighted by
the teacher's confidence) and hints at its taps, the teacher stays frozen and outside the checkpoint, and
unlabelled images teach through the KD terms only."""

from __future__ import annotations

import torch

from distill.checkpoint import load_model
from distill.cli import main
from distill.config import load_recipe, recipe_to_dict
from distill.data.schema import SCHEMAS
from distill.decode import output_to_crop
from distill.models import build_model
from distill.training.distillation import FrozenTeacher
from distill.training.regression_distillation import RegressionDistillationModule
from tests.training.helpers import shrink

PAIRS = [["stage1", "stack1.out"], ["stage2", "stack1.level1"]]


def tiny_teacher():
    torch.manual_seed(1)
    return build_model("hourglass", num_points=68, input_size=64, num_stacks=2, channels=16, depth=2, stem_channels=8)


def make_module(*overrides: str) -> RegressionDistillationModule:
    cfg = load_recipe("synthface/regressor_from_teacher",
                      ["distill.pairs=" + str(PAIRS).replace("'", ""), "logging.grid_images=0",
                       "distill.balance=false", *overrides])
    torch.manual_seed(2)
    student = build_model("convdw", num_points=68, input_size=64, width_mult=0.5)
    return RegressionDistillationModule(student, SCHEMAS["ibug68"], recipe_to_dict(cfg),
                                        FrozenTeacher(tiny_teacher(), "teacher.ckpt", "0" * 64))


def batch(n: int = 4) -> dict:
    g = torch.Generator().manual_seed(0)
    return {"image": torch.randn(n, 3, 64, 64, generator=g), "points": torch.rand(n, 68, 2, generator=g) * 63,
            "pt_weight": torch.ones(n, 68), "index": torch.arange(n)}


def test_output_kd_is_the_distance_to_the_teacher_s_decoded_points():
    module = make_module("loss.w_feat=0")
    b = batch()
    heatmaps, _ = module.teacher_targets(b)
    points, confidence = output_to_crop(heatmaps, "heatmap", 64)
    terms = module.losses(b)
    assert set(terms) == {"loss", "loss_gt", "loss_out", "loss_feat", "loss_feat/stage1", "loss_feat/stage2"}
    # the recipe's coordinate loss (Wing) between the student's points and the teacher's, by its confidence
    expected = module.coord_loss(module.predict_crop(b["image"]), {"points": points, "pt_weight": confidence.clamp(0, 1)})
    assert torch.allclose(terms["loss_out"], expected, rtol=1e-5) and float(expected) > 0
    assert not torch.allclose(terms["loss_out"], terms["loss_gt"])


def test_points_the_teacher_is_unsure_of_teach_nothing():
    module = make_module()
    b = batch()
    heatmaps, _ = module.teacher_targets(b)
    sure, unsure = heatmaps.clone(), heatmaps.clone()
    unsure[:, :34] = 0.0  # flat maps: confidence 0 for the first 34 points
    pred = torch.full((4, 68, 2), 31.5)
    points_u, conf_u = module.teacher_points(unsure, 64)
    assert torch.all(conf_u[:, :34] == 0)
    weighted = module.coord_loss(pred, {"points": points_u, "pt_weight": conf_u})
    only_sure = module.coord_loss(pred[:, 34:], {"points": points_u[:, 34:], "pt_weight": conf_u[:, 34:]})
    assert torch.allclose(weighted, only_sure, rtol=1e-5)  # the 34 unsure points add nothing


def test_unlabelled_images_train_through_the_kd_terms_only():
    module = make_module()
    b = {**batch(), "labelled": torch.zeros(4, dtype=torch.bool)}
    terms = module.losses(b)
    assert float(terms["loss_gt"]) == 0.0 and float(terms["loss_out"]) > 0.0 and float(terms["loss_feat"]) > 0.0
    terms["loss"].backward()
    assert module.model.head.fc.weight.grad.abs().sum() > 0       # the student learns from the teacher alone
    assert all(p.grad is None for p in module.teacher.model.parameters())  # the teacher never does


def test_the_recipe_trains_exports_and_keeps_the_teacher_out(synth_root, tmp_path):
    out = tmp_path / "runs"
    teacher = [*shrink(out, synth_root), "model.args={num_stacks: 2, channels: 8, depth: 3, stem_channels: 8}"]
    assert main(["train", "synthface/teacher", *teacher]) == 0
    assert main(["train", "synthface/regressor_from_teacher", *shrink(out, synth_root, "convdw")]) == 0
    run = (out / "synthface" / "regressor_from_teacher" / "latest").resolve()
    ckpt = torch.load(run / "best.ckpt", map_location="cpu", weights_only=True)
    assert not any(k.startswith("teacher") for k in ckpt["state_dict"])
    assert ckpt["distill"]["teacher"]["path"].endswith("best.ckpt")
    model, _ = load_model(run / "best.ckpt")
    assert type(model).__name__ == "ConvDW" and model.output_kind == "coords"  # the regressor_wing network
    assert main(["export", str(run / "best.ckpt"), "--out", str(tmp_path / "r.onnx")]) == 0
