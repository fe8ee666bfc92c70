"""Scale out: the distillation module (frozen teacher and adapters included) trains on 2 CPU
processes (gloo) without DDP's unused-parameter error, and validation NME is reduced over ranks."""

from __future__ import annotations

import json

import pytest
import torch

from distill.checkpoint import model_info, save_model_checkpoint
from distill.data.schema import SCHEMAS
from distill.models import build_model
from distill.training import train
from tests.training.helpers import shrink


@pytest.mark.slow
def test_distillation_on_two_processes(synth_root, tmp_path):
    torch.manual_seed(0)
    teacher = build_model("hourglass", num_points=68, input_size=64, num_stacks=2, channels=16, depth=2, stem_channels=8)
    save_model_checkpoint(tmp_path / "teacher.ckpt", teacher, model_info(teacher, SCHEMAS["ibug68"]))

    args = shrink(tmp_path, synth_root, steps=3) + [
        f"teacher.ckpt={tmp_path / 'teacher.ckpt'}", "distill.pairs=[[stack0.level1, stack1.level1], [stack0.out, stack1.out]]",
        "distill.balance=true", "distill.balance_steps=2", "trainer.strategy=ddp_spawn", "trainer.devices=2",
        "trainer.accelerator=cpu"]
    run = train("synthface/student_from_teacher", args)

    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["global_step"] == 3
    # each rank scored 4 of the 8 validation (test split) faces; the metric gathered all 8
    assert metrics["val/count"] == 8
    ckpt = torch.load(run / "last.ckpt", weights_only=True)
    assert all(k.startswith(("model.", "adapters.", "balancer.")) for k in ckpt["state_dict"])
    assert ckpt["distill"]["teacher"]["sha256"]
