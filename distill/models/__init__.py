"""The model zoo: every family's config and module, the named configs, and the builders.

Plain dicts, no registry decorators: `FAMILIES` maps a family name to its (config dataclass, module
class), and `MODEL_CONFIGS` maps a name to a config instance (a default and a tiny one per family).
A model rebuilds from `model_config_dict(model)` alone, which is what checkpoints store.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from torch import nn

from distill.errors import ConfigError
from distill.models.facts import model_facts
from distill.models.hourglass import Hourglass, HourglassConfig
from distill.models.mobile import MobileNetV2Config, MobileNetV2Regressor, ShuffleNetV2Config, ShuffleNetV2Regressor
from distill.models.regressor import ConvDW, ConvDWConfig

FAMILIES: dict[str, tuple[type, type[nn.Module]]] = {
    "hourglass": (HourglassConfig, Hourglass),
    "convdw": (ConvDWConfig, ConvDW),
    "mobilenetv2": (MobileNetV2Config, MobileNetV2Regressor),
    "shufflenetv2": (ShuffleNetV2Config, ShuffleNetV2Regressor),
}

MODEL_CONFIGS: dict[str, Any] = {
    # Newell et al. 2016: 4 stacks x 256 channels, 256x256 input, 64x64 heatmaps, stem 7x7/64 + residuals at 128
    "hourglass": HourglassConfig(),
    # two stacks so the intermediate-supervision merge is exercised; for tests and smoke runs
    "hourglass_tiny": HourglassConfig(input_size=64, num_stacks=2, depth=2, channels=16),
    # the student options under the same contract: the lean shape of the synthface students (3x3 stem
    # conv, no residual before the head) and depthwise-separable blocks
    "hourglass_lean_tiny": HourglassConfig(input_size=64, num_stacks=2, depth=2, channels=16, stem_kernel=3,
                                           head_blocks=0),
    "hourglass_depthwise_tiny": HourglassConfig(input_size=64, num_stacks=2, depth=2, channels=16, block="depthwise"),
    "convdw": ConvDWConfig(),
    "convdw_tiny": ConvDWConfig(width_mult=0.5, stage_blocks=(1, 1, 1)),
    "mobilenetv2": MobileNetV2Config(),
    "mobilenetv2_tiny": MobileNetV2Config(width_mult=0.5),
    "shufflenetv2": ShuffleNetV2Config(),
    "shufflenetv2_tiny": ShuffleNetV2Config(width_mult=0.5, stage_blocks=(1, 1, 2)),
}


def _coerce(cls, key: str, value):
    """JSON and YAML give lists where the dataclass holds tuples (frozen configs must stay hashable)."""
    default = {f.name: f.default for f in dataclasses.fields(cls)}[key]
    if isinstance(default, tuple) and isinstance(value, list):
        return tuple(value)
    return value


def build_model(name_or_config, **overrides) -> nn.Module:
    """A fresh model from a MODEL_CONFIGS name or a config instance, with field overrides.

    build_model("hourglass", num_stacks=2, channels=128, depth=3, input_size=64)."""
    if isinstance(name_or_config, str):
        if name_or_config not in MODEL_CONFIGS:
            raise ConfigError(f"model: unknown model '{name_or_config}', expected one of {sorted(MODEL_CONFIGS)}")
        config = MODEL_CONFIGS[name_or_config]
    elif dataclasses.is_dataclass(name_or_config) and getattr(name_or_config, "family", None) in FAMILIES:
        config = name_or_config
    else:
        raise ConfigError(f"model: expected a model name or a model config, got {name_or_config!r}")
    cls, module = FAMILIES[config.family]
    names = [f.name for f in dataclasses.fields(cls)]
    for key in overrides:
        if key not in names:
            # "{num_stacks:1}" (no space after the colon) is a one-key YAML mapping {"num_stacks:1": None}
            hint = " (YAML needs a space after each colon: {num_stacks: 1})" if ":" in str(key) else ""
            raise ConfigError(f"model.{key}: unknown field for family '{config.family}', expected one of {names}"
                              f"{hint}")
        if key == "family" and overrides[key] != config.family:
            raise ConfigError(f"model.family: cannot change family '{config.family}' by override; "
                              f"name a '{overrides[key]}' model instead")
    config = dataclasses.replace(config, **{k: _coerce(cls, k, v) for k, v in overrides.items()})
    return module(config)


def output_kind(name: str) -> str:
    """What a MODEL_CONFIGS name outputs, without building it: "heatmap" or "coords"."""
    if name not in MODEL_CONFIGS:
        raise ConfigError(f"model: unknown model '{name}', expected one of {sorted(MODEL_CONFIGS)}")
    return FAMILIES[MODEL_CONFIGS[name].family][1].output_kind


def model_config_dict(model: nn.Module) -> dict:
    """{"family": ..., **fields} with plain JSON values (tuples become lists): the checkpoint's model_config.

    A model whose config is already a plain dict (the cascade wraps two models) is passed through."""
    config = model.config
    fields = dict(config) if isinstance(config, dict) else dataclasses.asdict(config)
    plain = {k: list(v) if isinstance(v, tuple) else v for k, v in fields.items()}
    return {"family": plain.pop("family"), **plain}


def build_model_from_dict(d: dict) -> nn.Module:
    """Inverse of model_config_dict: the family's default config with the dict's fields."""
    if not isinstance(d, dict) or "family" not in d:
        raise ConfigError(f"model config: expected a dict with a 'family' key, got {d!r}")
    family = d["family"]
    if family not in FAMILIES:
        raise ConfigError(f"model.family: unknown family '{family}', expected one of {sorted(FAMILIES)}")
    cls, _ = FAMILIES[family]
    return build_model(cls(), **{k: v for k, v in d.items() if k != "family"})


__all__ = [
    "FAMILIES", "MODEL_CONFIGS", "build_model", "model_config_dict", "build_model_from_dict", "model_facts",
    "Hourglass", "HourglassConfig", "ConvDW", "ConvDWConfig", "MobileNetV2Regressor", "MobileNetV2Config",
    "ShuffleNetV2Regressor", "ShuffleNetV2Config",
]
