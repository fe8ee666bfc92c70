"""Two more coordinate regressors of about the ConvDW's size, written here (no torchvision), with the
same API and the same head (`regressor.CoordinateHead`: GAP + linear, starting at u = 0.5):

- MobileNetV2-style (Sandler et al., CVPR 2018): inverted residuals, 1x1 expand (+BN+ReLU6), 3x3
  depthwise (+BN+ReLU6), 1x1 linear projection (+BN), identity shortcut when shape allows; a final 1x1
  conv (+BN+ReLU6) widens the narrow linear bottleneck before pooling.
- ShuffleNetV2-style (Ma et al., ECCV 2018): stride-1 units split the channels in two, transform one
  half (1x1, 3x3 depthwise, 1x1) and concatenate; stride-2 units transform both copies; a channel
  shuffle after each unit mixes the halves. A final 1x1 conv (+BN+ReLU) before pooling.

Stage layout as in the ConvDW: a 3x3 stride-2 stem, then stages that each start with stride 2.
Feature taps: "stage0" (the stem) .. "stage{n}" (the last stage, after the final 1x1 conv).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from distill.models.regressor import CoordinateHead, RegressorBase, check_regressor_config, conv_bn_relu, scale_width


def conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> nn.Sequential:
    """conv + BN without activation (linear bottlenecks, depthwise convs in ShuffleNetV2)."""
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout))


def conv_bn_relu6(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(*conv_bn(cin, cout, kernel, stride, groups), nn.ReLU6(inplace=True))


def build_body(model: RegressorBase, config, conv_act, make_block) -> None:
    """The layout both regressors share: a 3x3 stride-2 stem (`conv_act`), stages whose first block strides
    2, a final 1x1 `conv_act` widening the last stage to `last_channels` before pooling, and the head.
    `make_block(cin, cout, stride, stage, index)` builds one block of a stage."""
    model._setup(config)
    m = config.width_mult
    cin = scale_width(config.stem_channels, m)
    model.stem = conv_act(3, cin, 3, stride=2)
    model._channels.append(cin)
    model.stages = nn.ModuleList()
    last = len(config.stage_channels) - 1
    for s, (c, n) in enumerate(zip(config.stage_channels, config.stage_blocks)):
        cout = scale_width(c, m)  # a multiple of 8, so ShuffleNetV2's halves are whole
        blocks = [make_block(cin if i == 0 else cout, cout, 2 if i == 0 else 1, s, i) for i in range(n)]
        if s == last:
            blocks.append(conv_act(cout, scale_width(config.last_channels, m), 1))
            cout = scale_width(config.last_channels, m)
        model.stages.append(nn.Sequential(*blocks))
        model._channels.append(cout)
        cin = cout
    model.head = CoordinateHead(cin, config.num_points)


# --- MobileNetV2 -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MobileNetV2Config:
    family: str = "mobilenetv2"
    num_points: int = 68
    input_size: int = 64
    width_mult: float = 1.0
    stem_channels: int = 16
    stage_channels: tuple[int, ...] = (24, 32, 64)
    stage_blocks: tuple[int, ...] = (1, 2, 1)
    expansion: int = 3     # the paper uses 6; 3 keeps the model at the ConvDW's size (~50k parameters)
    last_channels: int = 128

    def validate(self) -> None:
        check_regressor_config(self, "mobilenetv2")


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expansion: int):
        super().__init__()
        mid = cin * expansion
        expand = [conv_bn_relu6(cin, mid, 1)] if expansion != 1 else []
        self.body = nn.Sequential(*expand,
                                  conv_bn_relu6(mid, mid, 3, stride, groups=mid),
                                  conv_bn(mid, cout, 1))
        self.shortcut = stride == 1 and cin == cout

    def forward(self, x):  # (B, cin, H, W) -> (B, cout, H/stride, W/stride)
        y = self.body(x)
        return x + y if self.shortcut else y


class MobileNetV2Regressor(RegressorBase):
    def __init__(self, config: MobileNetV2Config | None = None):
        super().__init__()
        config = config or MobileNetV2Config()
        # the paper's first bottleneck does not expand (t=1): here it runs at the highest resolution
        build_body(self, config, conv_bn_relu6, lambda cin, cout, stride, s, i: InvertedResidual(
            cin, cout, stride, 1 if s == 0 and i == 0 else config.expansion))


# --- ShuffleNetV2 ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ShuffleNetV2Config:
    family: str = "shufflenetv2"
    num_points: int = 68
    input_size: int = 64
    width_mult: float = 1.0
    stem_channels: int = 16
    stage_channels: tuple[int, ...] = (32, 48, 96)  # ~50k parameters, the ConvDW's size
    stage_blocks: tuple[int, ...] = (1, 2, 2)
    last_channels: int = 128

    def validate(self) -> None:
        check_regressor_config(self, "shufflenetv2")


def channel_shuffle(x: torch.Tensor) -> torch.Tensor:
    """Interleave the two halves: channel order (a0, b0, a1, b1, ...). (B, C, H, W) -> (B, C, H, W).

    unflatten/flatten on the channel axis only, so the batch and spatial sizes stay symbolic in export."""
    return x.unflatten(1, (2, -1)).transpose(1, 2).flatten(1, 2)  # (B, 2, C/2, H, W) -> (B, C, H, W)


class ShuffleUnit(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        half = cout // 2
        self.stride = stride
        # stride 1: the first half passes through, so only the second half (cin/2 = cout/2) is transformed
        branch_in = cin if stride == 2 else cin // 2
        self.branch = nn.Sequential(conv_bn_relu(branch_in, half, 1),
                                    conv_bn(half, half, 3, stride, groups=half),
                                    conv_bn_relu(half, half, 1))
        self.proj = (nn.Sequential(conv_bn(cin, cin, 3, stride, groups=cin), conv_bn_relu(cin, half, 1))
                     if stride == 2 else None)

    def forward(self, x):  # (B, cin, H, W) -> (B, cout, H/stride, W/stride)
        if self.proj is None:
            keep, x = x.chunk(2, dim=1)           # (B, C/2, H, W) each
            out = torch.cat((keep, self.branch(x)), dim=1)
        else:
            out = torch.cat((self.proj(x), self.branch(x)), dim=1)
        return channel_shuffle(out)


class ShuffleNetV2Regressor(RegressorBase):
    def __init__(self, config: ShuffleNetV2Config | None = None):
        super().__init__()
        config = config or ShuffleNetV2Config()
        build_body(self, config, conv_bn_relu, lambda cin, cout, stride, s, i: ShuffleUnit(cin, cout, stride))
