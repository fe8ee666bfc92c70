"""The stacked Hourglass (Newell, Yang, Deng, "Stacked Hourglass Networks for Human Pose Estimation",
ECCV 2016): one module and ONE config for both the full teacher and any pruned student.

    image (B,3,S,S) -> stem (/4) -> [hourglass -> residual -> 1x1 lin -> heatmap head] x num_stacks
                                     \\_ merge: x + 1x1(features) + 1x1(heatmaps) feeds the next stack

The defaults reproduce the paper's 4 stacks x 256 channels at 256x256 input with 64x64 heatmaps and
pre-activation bottleneck residuals, stem included: its residuals are half as wide as the hourglass
(stem_channels=None means channels // 2, 128 for 256) and its 7x7 conv half that again (64), so
pruning `channels` shrinks the stem with it. (The project's prototype teacher 2x128 and student 1x32
used stem_channels = channels: 1.44M params / 0.39 GFLOPs and 55k / 0.022 GFLOPs at 64x64.)

A student is the same class with fewer stacks, fewer channels, a narrower stem (at small widths the
stem's full-resolution convolutions dominate the cost), a 3x3 instead of a 7x7 first convolution, no
residual between the hourglass and its head, or other blocks (basic: two 3x3; depthwise: 3x3
depthwise + 1x1): so a recipe can prune any of them and the feature taps keep the same names. On a
CPU a small student's time follows its number of layers more than its FLOPs (benchmarks/RESULTS.md),
which is why the synthface students drop whole layers rather than only narrowing them.

`forward(x)` returns the last stack's heatmaps only (export-clean). `forward_intermediates(x)` returns
every stack's heatmaps (for intermediate supervision) and named features for distillation:
``stack{i}.level{d}`` = the hourglass's output at level d (d=0 heatmap resolution, d=depth-1 the
coarsest) and ``stack{i}.out`` = the features the heatmap head reads.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from distill.errors import ConfigError

BLOCK_TYPES = ("bottleneck", "basic", "depthwise")


@dataclass(frozen=True)
class HourglassConfig:
    family: str = "hourglass"
    num_points: int = 68
    input_size: int = 256
    num_stacks: int = 4
    depth: int = 4                    # levels of each hourglass (downsamplings inside it)
    channels: int = 256
    blocks_per_level: int = 1         # residual blocks per branch per level
    stem_channels: int | None = None  # stem residual width; None = channels // 2 (Newell's 128 for 256)
    stem_kernel: int = 7              # the stem's first (stride 2) convolution: 7 in Newell's, 3 for lean students
    head_blocks: int | None = None    # residuals between each hourglass and its 1x1 layers; None = blocks_per_level
    block: str = "bottleneck"         # "bottleneck" (Newell) | "basic" (two 3x3, He et al.) | "depthwise"

    def stem_width(self) -> int:
        return self.stem_channels if self.stem_channels is not None else max(self.channels // 2, 2)

    def heatmap_size(self) -> int:
        return self.input_size // 4

    def validate(self) -> None:
        positive = ("num_points", "input_size", "num_stacks", "depth", "channels", "blocks_per_level")
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"hourglass config: '{name}' must be a positive int, got {value!r}")
        if not isinstance(self.stem_kernel, int) or self.stem_kernel < 1 or self.stem_kernel % 2 == 0:
            raise ConfigError(f"hourglass config: 'stem_kernel' must be an odd positive int, got {self.stem_kernel!r}")
        if self.head_blocks is not None and (not isinstance(self.head_blocks, int) or self.head_blocks < 0):
            raise ConfigError(f"hourglass config: 'head_blocks' must be an int >= 0 or None, got {self.head_blocks!r}")
        if self.stem_channels is not None and (not isinstance(self.stem_channels, int) or self.stem_channels < 2):
            raise ConfigError(f"hourglass config: 'stem_channels' must be an int >= 2 or None, "
                              f"got {self.stem_channels!r}")
        if self.block not in BLOCK_TYPES:
            raise ConfigError(f"hourglass config: 'block' must be one of {BLOCK_TYPES}, got {self.block!r}")
        if self.block == "bottleneck" and self.channels < 2:
            raise ConfigError("hourglass config: 'channels' must be >= 2 for bottleneck blocks")
        # every hourglass level halves the heatmap and the way back doubles it: it must divide exactly
        hm = self.heatmap_size()
        if self.input_size % 4 or hm % (2 ** self.depth):
            raise ConfigError(f"hourglass config: 'input_size' {self.input_size} must be divisible by "
                              f"4 * 2**depth = {4 * 2 ** self.depth} (heatmaps are input/4, depth {self.depth} "
                              f"halves them {self.depth} times)")


class Bottleneck(nn.Module):
    """Newell's pre-activation residual: BN-ReLU-1x1(out/2), BN-ReLU-3x3(out/2), BN-ReLU-1x1(out)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        mid = max(cout // 2, 1)
        # convs that feed a BN carry no bias: the BN's shift makes it redundant (and its gradient zero)
        self.bn1, self.conv1 = nn.BatchNorm2d(cin), nn.Conv2d(cin, mid, 1, bias=False)
        self.bn2, self.conv2 = nn.BatchNorm2d(mid), nn.Conv2d(mid, mid, 3, padding=1, bias=False)
        self.bn3, self.conv3 = nn.BatchNorm2d(mid), nn.Conv2d(mid, cout, 1)
        self.skip = nn.Identity() if cin == cout else nn.Conv2d(cin, cout, 1)

    def forward(self, x):  # (B, cin, H, W) -> (B, cout, H, W)
        y = self.conv1(F.relu(self.bn1(x)))
        y = self.conv2(F.relu(self.bn2(y)))
        y = self.conv3(F.relu(self.bn3(y)))
        return y + self.skip(x)


class Basic(nn.Module):
    """Pre-activation basic residual: BN-ReLU-3x3, BN-ReLU-3x3 (He et al. 2016, identity mappings)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(cin), nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.bn2, self.conv2 = nn.BatchNorm2d(cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Identity() if cin == cout else nn.Conv2d(cin, cout, 1)

    def forward(self, x):  # (B, cin, H, W) -> (B, cout, H, W)
        y = self.conv1(F.relu(self.bn1(x)))
        y = self.conv2(F.relu(self.bn2(y)))
        return y + self.skip(x)


class Depthwise(nn.Module):
    """Pre-activation depthwise-separable residual: BN-ReLU-3x3 depthwise, BN-ReLU-1x1 (the separable
    convolution of MobileNet, Howard et al. 2017, in the pre-activation residual form of the other blocks).

    About a third of a bottleneck's FLOPs at the same width, and 2 convolutions per block instead of 3,
    which is what matters at a student's size on a CPU: below ~0.02 GFLOPs per face the time follows
    the number of layers more than their FLOPs. Less accurate than bottlenecks in the KD study
    (benchmarks/RESULTS.md), so no shipped recipe uses it."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(cin), nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False)
        self.bn2, self.conv2 = nn.BatchNorm2d(cin), nn.Conv2d(cin, cout, 1)
        self.skip = nn.Identity() if cin == cout else nn.Conv2d(cin, cout, 1)

    def forward(self, x):  # (B, cin, H, W) -> (B, cout, H, W)
        y = self.conv1(F.relu(self.bn1(x)))
        y = self.conv2(F.relu(self.bn2(y)))
        return y + self.skip(x)


BLOCKS = {"bottleneck": Bottleneck, "basic": Basic, "depthwise": Depthwise}


def residuals(block: str, cin: int, cout: int, n: int) -> nn.Sequential:
    """n residual blocks; the first changes the width, the rest keep it."""
    make = BLOCKS[block]
    return nn.Sequential(*[make(cin if i == 0 else cout, cout) for i in range(n)])


class Stem(nn.Module):
    """Newell's stem, /4: 7x7 conv stride 2 (+BN+ReLU), residual, max-pool, residual, residual.

    Widths: conv -> stem/2, residuals -> stem, stem, channels (paper: 64, 128, 128, 256). The first
    conv's kernel is `stem_kernel`: with 3 input channels a 7x7 is a poor fit for a CPU (ONNX Runtime
    spent a fifth of a 1x48 student's time on it, 83 of ~400 us); a 3x3 is ~5x cheaper."""

    def __init__(self, cfg: HourglassConfig):
        super().__init__()
        s = cfg.stem_width()
        half = max(s // 2, 1)
        k = cfg.stem_kernel
        self.conv = nn.Conv2d(3, half, k, stride=2, padding=k // 2, bias=False)
        self.bn = nn.BatchNorm2d(half)
        self.res1 = BLOCKS[cfg.block](half, s)
        self.res2 = BLOCKS[cfg.block](s, s)
        self.res3 = BLOCKS[cfg.block](s, cfg.channels)

    def forward(self, x):  # (B, 3, S, S) -> (B, C, S/4, S/4)
        x = self.res1(F.relu(self.bn(self.conv(x))))  # (B, s, S/2, S/2)
        x = F.max_pool2d(x, 2)
        return self.res3(self.res2(x))


class HourglassModule(nn.Module):
    """One hourglass, unrolled: down through `depth` levels keeping a skip branch at each, a
    bottleneck at the coarsest, then back up adding the upsampled path to each skip.

    Level d works at 1/2**d of the heatmap resolution; its output is skip[d] + up(low[d])."""

    def __init__(self, cfg: HourglassConfig):
        super().__init__()
        c, n, b = cfg.channels, cfg.blocks_per_level, cfg.block
        self.depth = cfg.depth
        self.skip = nn.ModuleList([residuals(b, c, c, n) for _ in range(cfg.depth)])  # up1 in the paper
        self.down = nn.ModuleList([residuals(b, c, c, n) for _ in range(cfg.depth)])  # low1, after the pool
        self.bottom = residuals(b, c, c, n)                                              # low2 at the coarsest
        self.up = nn.ModuleList([residuals(b, c, c, n) for _ in range(cfg.depth)])    # low3, before upsampling

    def forward(self, x) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(B, C, H, W) -> (out (B, C, H, W), levels: level d is (B, C, H/2**d, W/2**d))."""
        skips = []
        for d in range(self.depth):
            skips.append(self.skip[d](x))            # (B, C, H/2**d, W/2**d)
            x = self.down[d](F.max_pool2d(x, 2))     # (B, C, H/2**(d+1), W/2**(d+1))
        x = self.bottom(x)
        levels: list[torch.Tensor] = [x] * self.depth  # placeholders, all overwritten below
        for d in reversed(range(self.depth)):
            # nearest-neighbour x2 as in the paper; scale_factor (not size) keeps the export shape-free
            x = skips[d] + F.interpolate(self.up[d](x), scale_factor=2.0, mode="nearest")
            levels[d] = x
        return x, levels


class Stack(nn.Module):
    """Hourglass, `head_blocks` residuals (Newell: 1, as many as blocks_per_level; 0 for a lean student),
    1x1 conv+BN+ReLU, 1x1 heatmap head; plus the merge into the next stack (Newell: x_next = x +
    1x1(features) + 1x1(heatmaps)) when it is not the last stack.

    A container without forward: Hourglass._run drives the parts, because the merge needs the stack's
    input as well as its outputs."""

    def __init__(self, cfg: HourglassConfig, last: bool):
        super().__init__()
        c, k = cfg.channels, cfg.num_points
        self.hourglass = HourglassModule(cfg)
        n_head = cfg.blocks_per_level if cfg.head_blocks is None else cfg.head_blocks
        self.res = residuals(cfg.block, c, c, n_head)  # 0 blocks: an empty Sequential, the identity
        self.lin = nn.Sequential(nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True))
        self.head = nn.Conv2d(c, k, 1)
        self.merge_features = None if last else nn.Conv2d(c, c, 1)
        self.merge_heatmaps = None if last else nn.Conv2d(k, c, 1)


class Hourglass(nn.Module):
    output_kind = "heatmap"

    def __init__(self, config: HourglassConfig | None = None):
        super().__init__()
        config = config or HourglassConfig()
        config.validate()
        self.config = config
        self.input_size = config.input_size
        self.num_points = config.num_points
        self.stem = Stem(config)
        self.stacks = nn.ModuleList([Stack(config, last=i == config.num_stacks - 1) for i in range(config.num_stacks)])

    # --- the taps a distillation recipe addresses by name -------------------------------------------

    def feature_names(self) -> list[str]:
        """Per stack: level0 (finest) .. level{depth-1} (coarsest), then out. Same order as the dict."""
        names = []
        for i in range(self.config.num_stacks):
            names += [f"stack{i}.level{d}" for d in range(self.config.depth)] + [f"stack{i}.out"]
        return names

    def feature_channels(self) -> dict[str, int]:
        return {name: self.config.channels for name in self.feature_names()}

    def feature_strides(self) -> dict[str, int]:
        """Stride of each tap relative to the input image (heatmaps are stride 4)."""
        strides = {}
        for name in self.feature_names():
            part = name.split(".")[1]
            strides[name] = 4 if part == "out" else 4 * 2 ** int(part[len("level"):])
        return strides

    # --- forward ------------------------------------------------------------------------------------

    def _run(self, x, taps: OrderedDict | None) -> list[torch.Tensor]:
        x = self.stem(x)  # (B, C, S/4, S/4)
        outputs = []
        for i, stack in enumerate(self.stacks):
            y, levels = stack.hourglass(x)
            y = stack.lin(stack.res(y))   # (B, C, h, w): what the head reads
            heatmaps = stack.head(y)      # (B, K, h, w)
            outputs.append(heatmaps)
            if taps is not None:
                for d, level in enumerate(levels):
                    taps[f"stack{i}.level{d}"] = level
                taps[f"stack{i}.out"] = y
            if stack.merge_features is not None:
                x = x + stack.merge_features(y) + stack.merge_heatmaps(heatmaps)
        return outputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) -> last stack's heatmaps (B, K, S/4, S/4)."""
        return self._run(x, None)[-1]

    def forward_intermediates(self, x: torch.Tensor) -> tuple[list[torch.Tensor], OrderedDict]:
        """-> (every stack's heatmaps, OrderedDict name -> (B, C, H, W) in feature_names() order)."""
        taps: OrderedDict[str, torch.Tensor] = OrderedDict()
        outputs = self._run(x, taps)
        return outputs, taps
