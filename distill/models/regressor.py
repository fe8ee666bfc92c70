"""The ConvDW coordinate regressor: a shallow, narrow stack of depthwise-separable blocks (Howard et
al., "MobileNets", 2017), global average pooling and one linear layer to K x 2 coordinates.

    image (B,3,64,64) -> 3x3 conv s2 -> [dw 3x3 + BN + ReLU, pw 1x1 + BN + ReLU] x n -> GAP -> linear -> (B,K,2)

It is built for speed on one CPU thread: every stage starts with a stride-2 block so most of the
work happens at 16x16 and below, and at the default width it holds < 51,200 parameters and buffers
(< 200 KB fp32) for 68 points.

Outputs are normalised crop coordinates u = (x_crop + 0.5) / S, so [0, 1] spans the crop. The head is
a plain linear layer (no sigmoid: a sigmoid saturates on points just outside the crop and flattens
the gradient near the borders); its bias starts at 0.5 and its weights near zero, so an untrained
model predicts every point at the crop centre and the first steps are not spent undoing a random
offset. `CoordinateHead` and `RegressorBase` (stem -> stages -> head, feature taps "stage{i}") are
shared with the MobileNetV2 / ShuffleNetV2 regressors in mobile.py.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import nn

from distill.errors import ConfigError


def scale_width(channels: int, width_mult: float, divisor: int = 8) -> int:
    """channels * width_mult rounded to a multiple of `divisor` (vector-friendly), never below it."""
    return max(divisor, int(round(channels * width_mult / divisor)) * divisor)


def check_regressor_config(cfg, family: str) -> None:
    """Checks shared by the ConvDW, MobileNetV2 and ShuffleNetV2 regressor configs."""
    for name in ("num_points", "input_size"):
        value = getattr(cfg, name)
        if not isinstance(value, int) or value < 1:
            raise ConfigError(f"{family} config: '{name}' must be a positive int, got {value!r}")
    if not isinstance(cfg.width_mult, (int, float)) or cfg.width_mult <= 0:
        raise ConfigError(f"{family} config: 'width_mult' must be a positive number, got {cfg.width_mult!r}")
    if len(cfg.stage_channels) != len(cfg.stage_blocks) or not cfg.stage_channels:
        raise ConfigError(f"{family} config: 'stage_channels' {cfg.stage_channels} and 'stage_blocks' "
                          f"{cfg.stage_blocks} must be non-empty and of the same length")
    if any(not isinstance(b, int) or b < 1 for b in cfg.stage_blocks):
        raise ConfigError(f"{family} config: 'stage_blocks' must be positive ints, got {cfg.stage_blocks}")
    stride = 2 ** (len(cfg.stage_channels) + 1)  # the stem and every stage halve the resolution
    if cfg.input_size % stride:
        raise ConfigError(f"{family} config: 'input_size' {cfg.input_size} must be divisible by {stride} "
                          f"(stem + {len(cfg.stage_channels)} stride-2 stages)")


def conv_bn_relu(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> nn.Sequential:
    # bias=False: the BN that follows has its own shift, and export folds BN into the conv anyway
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class DepthwiseSeparable(nn.Sequential):
    """3x3 depthwise (+BN+ReLU), then 1x1 pointwise (+BN+ReLU)."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__(conv_bn_relu(cin, cin, 3, stride, groups=cin), conv_bn_relu(cin, cout, 1))


class CoordinateHead(nn.Module):
    """Global average pooling, then linear C -> K*2: (B, C, h, w) -> (B, K, 2) normalised coordinates."""

    def __init__(self, channels: int, num_points: int):
        super().__init__()
        self.num_points = num_points
        self.fc = nn.Linear(channels, num_points * 2)
        # start at the crop centre (u = 0.5) with a small spread so gradients reach the body at once
        nn.init.normal_(self.fc.weight, std=1e-3)
        nn.init.constant_(self.fc.bias, 0.5)

    def forward(self, x):
        x = x.mean(dim=(2, 3))                               # (B, C)
        # reshape to a constant (-1, K, 2), not unflatten: unflatten traces to seven shape-arithmetic
        # nodes (Shape, Slice, Concat, ...), a measurable share of a 2.4 MFLOP model's ONNX call
        return self.fc(x).reshape(-1, self.num_points, 2)   # (B, K, 2)


class RegressorBase(nn.Module):
    """Shared plumbing of the coordinate regressors: stem -> stages -> head, with a feature tap after the
    stem ("stage0", stride 2) and after every stage ("stage{i}", stride 2**(i+1)).

    Subclasses build `self.stem`, `self.stages` (nn.ModuleList), `self.head` and list each tap's width
    in `self._channels`."""

    output_kind = "coords"

    def _setup(self, config) -> None:
        config.validate()
        self.config = config
        self.input_size = config.input_size
        self.num_points = config.num_points
        self._channels: list[int] = []

    def feature_names(self) -> list[str]:
        return [f"stage{i}" for i in range(len(self._channels))]

    def feature_channels(self) -> dict[str, int]:
        return dict(zip(self.feature_names(), self._channels))

    def feature_strides(self) -> dict[str, int]:
        return {name: 2 ** (i + 1) for i, name in enumerate(self.feature_names())}

    def _run(self, x, taps: OrderedDict | None) -> torch.Tensor:
        x = self.stem(x)  # (B, C0, S/2, S/2)
        if taps is not None:
            taps["stage0"] = x
        for i, stage in enumerate(self.stages, start=1):
            x = stage(x)  # (B, Ci, S/2**(i+1), S/2**(i+1))
            if taps is not None:
                taps[f"stage{i}"] = x
        return self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) -> (B, K, 2) normalised coordinates u = (x_crop + 0.5) / S."""
        return self._run(x, None)

    def forward_intermediates(self, x: torch.Tensor) -> tuple[list[torch.Tensor], OrderedDict]:
        """-> ([coords (B, K, 2)], OrderedDict "stage{i}" -> (B, C, H, W))."""
        taps: OrderedDict[str, torch.Tensor] = OrderedDict()
        coords = self._run(x, taps)
        return [coords], taps


@dataclass(frozen=True)
class ConvDWConfig:
    family: str = "convdw"
    num_points: int = 68
    input_size: int = 64
    width_mult: float = 1.0
    stem_channels: int = 16
    stage_channels: tuple[int, ...] = (32, 64, 128)  # each stage starts with a stride-2 block
    stage_blocks: tuple[int, ...] = (1, 1, 2)        # blocks per stage (the first one strides)

    def validate(self) -> None:
        check_regressor_config(self, "convdw")


class ConvDW(RegressorBase):
    def __init__(self, config: ConvDWConfig | None = None):
        super().__init__()
        config = config or ConvDWConfig()
        self._setup(config)
        m = config.width_mult
        cin = scale_width(config.stem_channels, m)
        self.stem = conv_bn_relu(3, cin, 3, stride=2)  # (B, C0, S/2, S/2)
        self._channels.append(cin)
        self.stages = nn.ModuleList()
        for c, n in zip(config.stage_channels, config.stage_blocks):
            cout = scale_width(c, m)
            self.stages.append(nn.Sequential(*[DepthwiseSeparable(cin if i == 0 else cout, cout, 2 if i == 0 else 1)
                                               for i in range(n)]))
            self._channels.append(cout)
            cin = cout
        self.head = CoordinateHead(cin, config.num_points)
