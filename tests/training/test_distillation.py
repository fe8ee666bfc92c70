"""The distillation module: a frozen teacher that stays frozen, adapters that learn, KD terms that
are logged by name, schedules, balancing, caching and unlabelled images."""

from __future__ import annotations

import lightning as L
import pytest
import torch

from distill.config import load_recipe, recipe_to_dict
from distill.data.augment import AugmentConfig
from distill.data.datamodule import DataConfig, LandmarkDataModule
from distill.data.schema import SCHEMAS
from distill.errors import ConfigError
from distill.models import build_model
from distill.training.distillation import DistillationModule, FrozenTeacher, TermBalancer, kd_factors

PAIRS = [["stack0.level1", "stack1.level1"], ["stack0.out", "stack1.out"]]


def tiny_teacher():
    torch.manual_seed(1)
    return build_model("hourglass", num_points=68, input_size=64, num_stacks=2, channels=16, depth=2, stem_channels=8)


def tiny_student():
    torch.manual_seed(2)
    return build_model("hourglass", num_points=68, input_size=64, num_stacks=1, channels=8, depth=2, stem_channels=8)


def make_module(*overrides: str, teacher=None) -> DistillationModule:
    cfg = load_recipe("synthface/student_from_teacher",
                      ["distill.pairs=" + str(PAIRS).replace("'", ""), "logging.grid_images=0", *overrides])
    return DistillationModule(tiny_student(), SCHEMAS["ibug68"], recipe_to_dict(cfg),
                              FrozenTeacher(teacher or tiny_teacher(), "teacher.ckpt", "0" * 64))


def datamodule(root, augment=None) -> LandmarkDataModule:
    dm = LandmarkDataModule(DataConfig(root=str(root), heatmap_size=16, batch_size=4, max_samples=8, val_split="test",
                                       augment=augment or AugmentConfig.none()))
    dm.setup("fit")
    return dm


def fit(module, dm, steps=3, callbacks=()) -> L.Trainer:
    trainer = L.Trainer(max_steps=steps, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0,
                        log_every_n_steps=1, callbacks=list(callbacks), accelerator="cpu", devices=1)
    trainer.fit(module, datamodule=dm)
    return trainer


class Probe(L.Callback):
    """Records, at every training step, the teacher's train/eval flags and which adapters got a gradient."""

    def __init__(self):
        self.teacher_training, self.adapter_grads = [], []

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self.teacher_training.append(any(m.training for m in module.teacher.model.modules()))

    def on_after_backward(self, trainer, module):
        self.adapter_grads.append({name: all(p.grad is not None and p.grad.abs().sum() > 0 for p in a.parameters())
                                   for name, a in module.adapters.items()})


def test_teacher_is_frozen_and_never_saved(synth_root, tmp_path):
    module = make_module()
    teacher = module.teacher.model
    before = {k: v.clone() for k, v in teacher.state_dict().items()}  # weights AND BatchNorm statistics
    probe = Probe()
    trainer = fit(module, datamodule(synth_root, AugmentConfig()), steps=3, callbacks=[probe])  # 2 batches/epoch

    after = teacher.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "teacher weights or BN statistics changed"
    assert all(not p.requires_grad for p in teacher.parameters())
    assert probe.teacher_training == [False] * 3, "teacher BatchNorm left eval mode during a training step"
    teacher_ids = {id(p) for p in teacher.parameters()}
    optimised = {id(p) for g in trainer.optimizers[0].param_groups for p in g["params"]}
    assert not teacher_ids & optimised
    assert not teacher_ids & {id(p) for p in module.parameters()}

    trainer.save_checkpoint(tmp_path / "s.ckpt", weights_only=False)
    ckpt = torch.load(tmp_path / "s.ckpt", weights_only=True)
    keys = set(ckpt["state_dict"])
    assert keys == set(module.state_dict()) and all(k.startswith(("model.", "adapters.", "balancer.")) for k in keys)
    n_student = sum(1 for k in keys if k.startswith("model."))
    assert n_student == len(module.model.state_dict())
    assert ckpt["distill"]["teacher"] == {"path": "teacher.ckpt", "sha256": "0" * 64, "recipe_name": ""}


def test_module_train_keeps_the_teacher_in_eval_mode():
    module = make_module()
    module.teacher.model.train()  # as if something switched it
    module.train()
    assert not any(m.training for m in module.teacher.model.modules())
    assert module.model.training


def test_one_feature_term_per_pair_and_every_adapter_learns(synth_root):
    module = make_module("distill.balance=false", "distill.schedule=constant", "loss.w_feat=1.0")
    probe = Probe()
    trainer = fit(module, datamodule(synth_root), steps=2, callbacks=[probe])
    logged = set(trainer.logged_metrics)
    for s, _ in PAIRS:
        assert f"train/loss_feat/{s}" in logged
    assert {"train/loss", "train/loss_gt", "train/loss_out"} <= logged
    assert len(module.adapters) == len(PAIRS)  # widths differ (8 vs 16): one 1x1 conv adapter each
    assert probe.adapter_grads and all(all(g.values()) for g in probe.adapter_grads)


def fixed_batch(root):
    return next(iter(datamodule(root).train_dataloader()))


def test_feature_loss_decreases_when_trained_alone(synth_root):
    module = make_module("loss.w_gt=0", "loss.w_out=0", "loss.w_feat=1", "distill.balance=false",
                         "distill.schedule=constant", "distill.normalize=none")
    batch = fixed_batch(synth_root)
    opt = torch.optim.Adam([p for p in module.parameters() if p.requires_grad], lr=1e-2)
    history = []
    for _ in range(12):
        terms = module.losses(batch)
        opt.zero_grad()
        terms["loss"].backward()
        opt.step()
        history.append(float(terms["loss_feat"]))
    assert history[-1] < 0.7 * history[0], history


def test_unlabelled_samples_only_get_teacher_terms(synth_root):
    module = make_module("distill.balance=false")
    batch = fixed_batch(synth_root)
    batch["labelled"] = torch.zeros_like(batch["labelled"])
    terms = module.losses(batch)
    assert float(terms["loss_gt"]) == 0.0
    assert float(terms["loss_out"]) > 0 and float(terms["loss_feat"]) > 0
    terms["loss"].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.model.parameters())


def test_kd_schedules():
    assert kd_factors("constant", 50, 100) == {"gt": 1.0, "out": 1.0, "feat": 1.0}
    assert kd_factors("hint_warmup", 9, 100, warmup_steps=10) == {"gt": 0.0, "out": 0.0, "feat": 1.0}
    assert kd_factors("hint_warmup", 10, 100, warmup_steps=10, after_warmup=0.1) == {"gt": 1.0, "out": 1.0, "feat": 0.1}
    assert kd_factors("decay", 25, 100)["feat"] == pytest.approx(0.75)
    assert kd_factors("decay", 50, 100, decay_shape="cosine")["out"] == pytest.approx(0.5)
    assert kd_factors("decay", 100, 100)["gt"] == 1.0 and kd_factors("decay", 100, 100)["feat"] == 0.0


def test_balance_brings_terms_to_one_then_freezes():
    bal = TermBalancer(3, steps=2)
    raw = torch.tensor([1e-3, 2.0, 50.0])
    assert torch.allclose(bal(raw) * raw, torch.ones(3))
    bal(raw * 3)  # second measured step: mean of 1x and 3x
    frozen = bal(raw * 100).clone()  # past `steps`: no longer measured
    assert torch.allclose(frozen * raw * 2, torch.ones(3))


def test_teacher_cache_matches_live_teacher_and_needs_fixed_data(synth_root, tmp_path):
    teacher = tiny_teacher()
    live = make_module("distill.cache_teacher=false", teacher=teacher)
    cached = make_module("distill.cache_teacher=true", teacher=teacher)
    batch = fixed_batch(synth_root)
    a, b = live.teacher_targets(batch), cached.teacher_targets(batch)
    assert len(cached.teacher_targets) == batch["image"].shape[0] and len(live.teacher_targets) == 0
    c = cached.teacher_targets(batch)  # second call: served from the cache
    assert torch.allclose(a[0], b[0], atol=1e-3, rtol=1e-3) and torch.equal(b[0], c[0])
    assert all(torch.allclose(a[1][t], c[1][t], atol=1e-3, rtol=1e-3) for t in a[1])

    from distill.training.run import build_datamodule

    cfg = load_recipe("synthface/student_from_teacher", ["distill.cache_teacher=true", f"data.root={synth_root}",
                                                         "data.augment.flip_prob=0.5"])
    with pytest.raises(ConfigError, match="cache_teacher"):
        build_datamodule(cfg)  # augmented crops change every epoch: a cache would hand back stale targets


def test_unknown_tap_is_a_config_error_listing_the_taps():
    with pytest.raises(ConfigError, match=r"stack0\.level0"):
        make_module("distill.pairs=[[stack0.nope, stack1.out]]")
