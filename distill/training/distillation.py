"""Knowledge distillation of a heatmap student from a frozen heatmap teacher.

    loss = w_gt   * f_gt   * s_gt   * sum_stacks GT heatmap loss               (labelled samples only)
         + w_out  * f_out  * s_out  * sum_stacks MSE(student stack, teacher's last stack)   (FPD)
         + w_feat * f_feat * sum_pairs s_i * feature_mse(adapter_i(student tap), teacher tap)  (FitNets)

f_* come from the KD schedule (:func:`kd_factors`), s_* from term balancing (:class:`TermBalancer`,
1 when ``distill.balance`` is off). Fast Pose Distillation: Zhang, Zhu, Ye, CVPR 2019. FitNets
hints: Romero et al., ICLR 2015. Why the knobs exist (docs/teacher_student.md): a naive feature MSE
swamped the ground truth and made a small student worse than scratch.

The teacher is a :class:`FrozenTeacher`, a plain object rather than a submodule, so it is never in
``state_dict`` (the student's checkpoint), never in ``parameters()`` (the optimiser, DDP), and
Lightning's ``.train()`` cannot reach it; ``train()`` below re-asserts eval mode anyway.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from distill.checkpoint import file_sha256, load_model
from distill.errors import ConfigError
from distill.losses import feature_mse, heatmap_mse
from distill.training.heatmap import HeatmapModule


# ----------------------------------------------------------------------------- the frozen teacher
class FrozenTeacher:
    """A teacher model in eval mode with no gradients, run under no_grad; records where it came from."""

    def __init__(self, model: nn.Module, path: str | Path = "", sha256: str = "", recipe_name: str = ""):
        self.model = model.eval().requires_grad_(False)
        self.path, self.sha256, self.recipe_name = str(path), sha256, recipe_name

    def info(self) -> dict:
        return {"path": self.path, "sha256": self.sha256, "recipe_name": self.recipe_name}

    def to(self, device) -> FrozenTeacher:
        self.model.to(device)
        return self

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> tuple[list[torch.Tensor], OrderedDict]:
        if next(self.model.parameters()).device != images.device:
            self.model.to(images.device)
        return self.model.forward_intermediates(images)


def load_teacher(path: Path) -> FrozenTeacher:
    """Rebuild a teacher from a checkpoint (weights_only=True inside load_model)."""
    model, info = load_model(path)
    return FrozenTeacher(model, path.resolve(), file_sha256(path), info.get("recipe_name", ""))


# ----------------------------------------------------------------------------- adapters
def adapter_key(student_tap: str) -> str:
    return student_tap.replace(".", "_")  # ModuleDict keys cannot contain dots


def build_adapters(pairs: list[list[str]], student_channels: dict[str, int], teacher_channels: dict[str, int],
                   bn: bool = False) -> nn.ModuleDict:
    """A 1x1 conv (+BN) per pair whose widths differ (FitNets' regressor); identity where they match."""
    for i, (s, t) in enumerate(pairs):
        if s not in student_channels:
            raise ConfigError(f"key 'distill.pairs[{i}]': student has no tap {s!r} (taps: {', '.join(student_channels)})")
        if t not in teacher_channels:
            raise ConfigError(f"key 'distill.pairs[{i}]': teacher has no tap {t!r} (taps: {', '.join(teacher_channels)})")
    adapters = nn.ModuleDict()
    for s, t in pairs:
        cs, ct = student_channels[s], teacher_channels[t]
        if cs == ct:
            adapters[adapter_key(s)] = nn.Identity()
        else:
            layers = [nn.Conv2d(cs, ct, 1, bias=not bn)] + ([nn.BatchNorm2d(ct)] if bn else [])
            adapters[adapter_key(s)] = nn.Sequential(*layers)
    return adapters


# ----------------------------------------------------------------------------- KD losses
def feature_kd_loss(student: torch.Tensor, teacher: torch.Tensor, normalize: str) -> torch.Tensor:
    """Adapted student (B, C, h, w) vs teacher (B, C, H, W): bilinear resize to the teacher's grid, then
    feature_mse (mean squared error after the chosen normalisation)."""
    if student.shape[-2:] != teacher.shape[-2:]:
        student = F.interpolate(student, size=teacher.shape[-2:], mode="bilinear", align_corners=False)
    return feature_mse(student, teacher, normalize)


def output_kd_loss(student_outputs: list[torch.Tensor], teacher_last: torch.Tensor) -> torch.Tensor:
    """Fast Pose Distillation's output term: sum over student stacks of MSE(stack, teacher's last stack)
    (B, K, h, w); the teacher is resized to the student's heatmap size when they differ."""
    total = teacher_last.new_zeros(())
    for out in student_outputs:
        target = teacher_last
        if target.shape[-2:] != out.shape[-2:]:
            target = F.interpolate(target, size=out.shape[-2:], mode="bilinear", align_corners=False)
        total = total + heatmap_mse(out, target)
    return total


# ----------------------------------------------------------------------------- schedules, balance
def kd_factors(schedule: str, step: int, max_steps: int, warmup_steps: int = 0, after_warmup: float = 0.0,
               decay_shape: str = "linear") -> dict[str, float]:
    """Multipliers of the gt / out / feat weights at ``step``.

    constant     1, 1, 1.
    hint_warmup  FitNets' two stages: feature hints only for warmup_steps, then ground truth and output
                 KD with the feature weight times ``after_warmup`` (0: off).
    decay        KD terms fade from 1 to 0 over max_steps (linear, or cosine 0.5 * (1 + cos(pi t))); the
                 student ends on the ground truth alone.
    """
    if schedule == "hint_warmup":
        if step < warmup_steps:
            return {"gt": 0.0, "out": 0.0, "feat": 1.0}
        return {"gt": 1.0, "out": 1.0, "feat": after_warmup}
    if schedule == "decay":
        t = min(step / max(max_steps, 1), 1.0)
        d = 1.0 - t if decay_shape == "linear" else 0.5 * (1.0 + math.cos(math.pi * t))
        return {"gt": 1.0, "out": d, "feat": d}
    return {"gt": 1.0, "out": 1.0, "feat": 1.0}


class TermBalancer(nn.Module):
    """Scale s_i = 1 / mean |term_i| over the first ``steps`` training steps, then frozen, so every
    term starts near 1 x its weight whatever its natural scale (feature MSE ~1 vs heatmap MSE ~1e-3).
    The running means are buffers: they are checkpointed and a resumed run keeps its scales."""

    def __init__(self, num_terms: int, steps: int):
        super().__init__()
        self.steps = steps
        self.register_buffer("mean", torch.zeros(num_terms))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))

    def forward(self, raw: torch.Tensor, reduce=None) -> torch.Tensor:
        """raw (T,) detached term values of this step -> scales (T,)."""
        if self.training and int(self.count) < self.steps:
            value = raw.detach().abs()
            if reduce is not None:  # DDP: every rank measures the same mean
                value = reduce(value)
            self.count += 1
            self.mean += (value - self.mean) / self.count.float()
        return 1.0 / self.mean.clamp_min(1e-12)


# ----------------------------------------------------------------------------- shared by every KD module
class TeacherTargets:
    """The teacher's outputs for a batch: its last-stack heatmaps and the taps the KD pairs read, run on the
    batch or, when ``cache`` is on, kept by sample index after the first epoch (only valid when every epoch
    sees the same pixels, i.e. augmentation off)."""

    def __init__(self, teacher: FrozenTeacher, taps: list[str], cache: bool):
        self.teacher, self.taps = teacher, list(dict.fromkeys(taps))
        self._cache: dict[int, tuple] | None = {} if cache else None

    def __len__(self) -> int:
        """The images whose targets are cached (0 without a cache)."""
        return len(self._cache) if self._cache is not None else 0

    def __call__(self, batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """-> (teacher's last-stack heatmaps (B, K, h, w), {teacher tap: (B, C, H, W)})."""
        if self._cache is None:
            outs, feats = self.teacher(batch["image"])
            return outs[-1], {t: feats[t] for t in self.taps}
        keys = [int(i) for i in batch["index"]]
        missing = [j for j, k in enumerate(keys) if k not in self._cache]
        if missing:
            outs, feats = self.teacher(batch["image"][missing])
            # float16 on the CPU halves the cache (a 128-channel 16x16 tap is 64 KB per image); the
            # rounding (~1e-3 relative) is far below what the KD losses can resolve
            for row, j in enumerate(missing):
                self._cache[keys[j]] = (outs[-1][row].to("cpu", torch.float16),
                                        {t: feats[t][row].to("cpu", torch.float16) for t in self.taps})
        dev, dtype = batch["image"].device, batch["image"].dtype
        last = torch.stack([self._cache[k][0] for k in keys]).to(dev, dtype)  # (B, K, h, w)
        return last, {t: torch.stack([self._cache[k][1][t] for k in keys]).to(dev, dtype) for t in self.taps}


def weigh_terms(raw: dict[str, torch.Tensor], names: list[str], weights: list[float],
                balancer: TermBalancer | None, reduce=None) -> torch.Tensor:
    """sum_i weights[i] * s_i * raw[names[i]]: s_i from ``balancer`` (1 without one; ``reduce`` averages its
    measurement over DDP ranks). Every term stays in the graph (times 0 when switched off), so DDP never sees
    unused parameters."""
    values = torch.stack([raw[n] for n in names])  # (T,)
    scales = balancer(values, reduce) if balancer is not None else torch.ones_like(values)
    return (values * scales * values.new_tensor(weights)).sum()


class KDMixin:
    """What a KD module adds to its student's module: the frozen teacher (eval mode whatever Lightning
    does), its targets, the run length the schedules span and the teacher's record."""

    teacher: FrozenTeacher

    def teacher_info(self) -> dict:
        return self.teacher.info()

    def train(self, mode: bool = True):
        """Lightning calls .train() on the module every epoch; the teacher's BatchNorm must stay frozen."""
        super().train(mode)
        self.teacher.model.eval()
        return self

    def on_fit_start(self) -> None:
        self.teacher.to(self.device)

    def total_steps(self) -> int:
        """The run's length in optimiser steps (what the decay schedule spans); 1 outside a Trainer."""
        if self._trainer is None:
            return 1
        t = self.trainer
        return int(t.max_steps if t.max_steps > 0 else t.estimated_stepping_batches)

    def ddp_reduce(self):
        """The mean over DDP ranks (what the balancer measures with), None outside a Trainer."""
        return (lambda v: self.trainer.strategy.reduce(v, reduce_op="mean")) if self._trainer is not None else None


# ----------------------------------------------------------------------------- the module
class DistillationModule(KDMixin, HeatmapModule):
    def __init__(self, model: nn.Module, schema, recipe: dict, teacher: FrozenTeacher):
        super().__init__(model, schema, recipe)
        d = recipe["distill"]
        self.pairs = [list(p) for p in d["pairs"]]
        self.teacher = teacher  # a plain object: not registered as a submodule (see module docstring)
        self.adapters = build_adapters(self.pairs, model.feature_channels(), teacher.model.feature_channels(),
                                       bn=d["adapter_bn"])
        self.term_names = ["gt", "out"] + [f"feat/{s}" for s, _ in self.pairs]
        self.balancer = TermBalancer(len(self.term_names), d["balance_steps"]) if d["balance"] else None
        self.teacher_targets = TeacherTargets(teacher, [t for _, t in self.pairs], d["cache_teacher"])

    def losses(self, batch: dict) -> dict[str, torch.Tensor]:
        d, w = self.recipe["distill"], self.recipe["loss"]
        outputs, feats = self.model.forward_intermediates(batch["image"])  # list of (B,K,h,w); taps
        t_last, t_feats = self.teacher_targets(batch)
        raw = {"gt": self.gt_loss(outputs, batch), "out": output_kd_loss(outputs, t_last)}
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
