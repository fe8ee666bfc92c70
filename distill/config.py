"""Recipes: typed dataclasses, loaded from YAML and ``key=value`` overrides with OmegaConf.

A recipe is data only (no import strings, no code). Loading it merges, in order::

    RecipeConfig() defaults  <-  the YAML file  <-  overrides ["trainer.max_steps=10", ...]

into an OmegaConf structured config, so an unknown key or a value of the wrong type fails at load
time; :func:`load_recipe` turns that failure into one :class:`~distill.errors.ConfigError` naming the
file (and the line, when the key is in the file) and the dotted key. Choice-valued fields (``task``,
``loss.heatmap``, ...) are checked against :data:`CHOICES`.

``docs/recipes.md`` is generated from these dataclasses by :func:`recipe_reference_markdown`: each
field's help text lives in its ``metadata``, next to its default.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from distill.config_docs import reference_markdown
from distill.data.datamodule import DataConfig
from distill.errors import ConfigError
from distill.io import atomic_write_text
from distill.recipe_search import find_recipe


def F(default, help: str):  # noqa: N802 - reads like a declaration: x: int = F(1, "...")
    """A dataclass field with help text (shown in docs/recipes.md); mutable defaults are copied."""
    if isinstance(default, (list, dict)) or dataclasses.is_dataclass(default):
        return field(default_factory=lambda: copy.deepcopy(default), metadata={"help": help})
    return field(default=default, metadata={"help": help})


# ----------------------------------------------------------------------------- sections
@dataclass
class ModelConfig:
    """The network trained (the student, in distillation)."""

    name: str = F("hourglass", "preset in distill.models.MODEL_CONFIGS (e.g. hourglass, regressor)")
    args: dict[str, Any] = F({}, "fields of the preset's config to override, e.g. {num_stacks: 1, channels: 32}; "
                                 "num_points and input_size default to the data's schema and crop size")


@dataclass
class RecipeDataConfig(DataConfig):
    """The data set (distill.data.datamodule.DataConfig) plus how `distill train` makes a missing SynthFace set.

    The top-level ``seed`` is copied into ``data.seed`` when training starts.
    """

    synth_num: int = F(2000, "format synthface: faces generated into data.root when it does not exist")
    synth_seed: int = F(0, "format synthface: generator seed (the same seed gives the same images)")
    synth_size: int = F(128, "format synthface: image side in pixels")
    synth_num_test: int = F(0, "format synthface: test faces (0 = synth_num / 5)")


@dataclass
class OptimConfig:
    """Optimiser."""

    name: str = F("adam", "adam | adamw | sgd | rmsprop")
    lr: float = F(1e-3, "peak learning rate")
    weight_decay: float = F(0.0, "L2 weight decay (decoupled for adamw)")
    momentum: float = F(0.9, "momentum (sgd, rmsprop)")


@dataclass
class ScheduleConfig:
    """Learning-rate schedule, stepped every optimiser step over trainer.max_steps."""

    name: str = F("cosine", "cosine | step | constant")
    warmup_steps: int = F(0, "linear warm-up from 0 over this many steps")
    min_lr_ratio: float = F(0.0, "cosine: final lr as a fraction of optim.lr")
    milestones: list[float] = F([0.75], "step: fractions of max_steps where lr is multiplied by gamma")
    gamma: float = F(0.1, "step: lr factor at each milestone")


@dataclass
class LossConfig:
    """Loss terms and their weights."""

    heatmap: str = F("mse", "ground-truth heatmap loss: mse | awing")
    coords: str = F("l2", "coordinate regression loss: l2 | l1 | wing (in crop pixels)")
    wing_w: float = F(10.0, "Wing loss w, in crop pixels")
    wing_eps: float = F(2.0, "Wing loss epsilon, in crop pixels")
    stack_weights: list[float] = F([], "per-stack weight of the intermediate supervision ([] = 1 for every stack)")
    w_gt: float = F(1.0, "weight of the ground-truth term")
    w_out: float = F(0.0, "distillation: weight of MSE to the teacher's last-stack heatmaps, on every student "
                          "stack (Fast Pose Distillation)")
    w_feat: float = F(0.0, "distillation: weight of the summed per-block feature MSE (FitNets hints)")


@dataclass
class DistillConfig:
    """Knowledge distillation (task: distillation)."""

    pairs: list[list[str]] = F([], "[[student_tap, teacher_tap], ...] names from forward_intermediates, "
                                   "e.g. [[stack0.level1, stack1.level1]]")
    normalize: str = F("channel", "feature normalisation before the MSE: none | channel | l2")
    adapter_bn: bool = F(False, "add BatchNorm after each 1x1 adapter conv")
    schedule: str = F("constant", "KD weight schedule: constant | hint_warmup | decay")
    warmup_steps: int = F(0, "hint_warmup: feature-only steps before the ground truth (and output KD) switch on")
    after_warmup: float = F(0.0, "hint_warmup: factor on w_feat after the warm-up (0 = features off)")
    decay_shape: str = F("linear", "decay: linear | cosine decay of w_out and w_feat to 0 over max_steps")
    balance: bool = F(False, "scale each term by 1 / its mean magnitude over the first balance_steps steps")
    balance_steps: int = F(10, "steps over which term magnitudes are measured when balance is true")
    cache_teacher: bool = F(False, "cache the teacher's outputs by sample index (needs augmentation off)")
    student_init: str = F("", "start the student from this checkpoint path or recipe name ('' = random)")


@dataclass
class TeacherConfig:
    """The frozen teacher of a distillation recipe."""

    ckpt: str = F("", "teacher checkpoint: a path, or a recipe name resolved to "
                      "<checkpoints>/<recipe>/latest/best.ckpt")


@dataclass
class LoggingConfig:
    """Experiment tracking."""

    logger: str = F("wandb", "wandb (offline, no login) | wandb_online | csv | none; CSV is written unless none")
    project: str = F("distill", "W&B project")
    progress: bool = F(True, "rich progress bar")
    grid_images: int = F(8, "validation images drawn in the predicted-vs-true grid (0 = none)")
    log_every_n_steps: int = F(10, "how often train losses are logged")


@dataclass
class TrainerConfig:
    """Lightning Trainer."""

    max_steps: int = F(1000, "optimiser steps (the training length a budget scales)")
    max_epochs: int = F(-1, "epoch cap (-1 = none; max_steps decides)")
    val_every_n_steps: int = F(200, "validate (and save best.ckpt / last.ckpt) every this many steps")
    val_batches: int = F(0, "validation batches per validation (0 = all)")
    checkpoint_every_n_steps: int = F(0, "also save last.ckpt every this many steps (0 = at validation only)")
    accelerator: str = F("auto", "cpu | gpu | auto")
    devices: Any = F("auto", "devices per node: an int, a list or auto")
    strategy: str = F("auto", "auto | ddp | ddp_spawn | ...")
    num_nodes: int = F(1, "nodes for multi-node DDP (see docs/ddp.md)")
    precision: str = F("32-true", "32-true | bf16-mixed | 16-mixed")
    gradient_clip_val: float = F(0.0, "clip gradient norm (0 = off)")
    accumulate_grad_batches: int = F(1, "batches per optimiser step")
    num_threads: int = F(0, "torch CPU threads (0 = torch's default); 1 is fastest on a busy or shared CPU")
    channels_last: bool = F(True, "train in the channels_last memory format (1.3-1.5x faster on CPU with "
                                  "oneDNN, and what GPU tensor cores want); checkpoints are the same")


@dataclass
class OutputConfig:
    """Where runs are written."""

    root: str = F("", "checkpoints root ('' = $DISTILL_CHECKPOINTS or ./checkpoints)")
    run_name: str = F("", "run folder name ('' = a timestamp); with resume, the run to continue ('' = latest)")


@dataclass
class RecipeConfig:
    """A whole recipe."""

    description: str = F("", "one line shown by `distill recipes`")
    name: str = F("", "recipe name, <dataset>/<name> (default: from the file path)")
    task: str = F("heatmap", "heatmap | regression | distillation")
    seed: int = F(0, "seed for weights, data order and augmentation")
    resume: bool = F(False, "continue the run's last.ckpt (output.run_name, or the latest run)")
    model: ModelConfig = F(ModelConfig(), "")
    data: RecipeDataConfig = F(RecipeDataConfig(), "")
    optim: OptimConfig = F(OptimConfig(), "")
    schedule: ScheduleConfig = F(ScheduleConfig(), "")
    loss: LossConfig = F(LossConfig(), "")
    distill: DistillConfig = F(DistillConfig(), "")
    teacher: TeacherConfig = F(TeacherConfig(), "")
    logging: LoggingConfig = F(LoggingConfig(), "")
    trainer: TrainerConfig = F(TrainerConfig(), "")
    output: OutputConfig = F(OutputConfig(), "")


# Fields whose value must be one of a few words (OmegaConf has no Literal type).
CHOICES: dict[str, tuple[str, ...]] = {
    "task": ("heatmap", "regression", "distillation"),
    "optim.name": ("adam", "adamw", "sgd", "rmsprop"),
    "schedule.name": ("cosine", "step", "constant"),
    "loss.heatmap": ("mse", "awing"),
    "loss.coords": ("l2", "l1", "wing"),
    "distill.normalize": ("none", "channel", "l2"),
    "distill.schedule": ("constant", "hint_warmup", "decay"),
    "distill.decay_shape": ("linear", "cosine"),
    "logging.logger": ("wandb", "wandb_online", "csv", "none"),
}


# ----------------------------------------------------------------------------- loading
def _yaml_line(path: Path, dotted: str) -> int | None:
    """1-based line of ``dotted`` (a.b.c) in the YAML file, or None when it is not written there."""
    try:
        node = yaml.compose(path.read_text())
    except (OSError, yaml.YAMLError):
        return None
    line = None
    for part in dotted.split("."):
        if not isinstance(node, yaml.MappingNode):
            return line
        for k, v in node.value:
            if k.value == part:
                node, line = v, k.start_mark.line + 1
                break
        else:
            return line
    return line


def _config_error(e: OmegaConfBaseException, source: str, path: Path | None) -> ConfigError:
    key = getattr(e, "full_key", None) or "?"
    msg = str(e).splitlines()[0]
    line = _yaml_line(path, key) if path is not None else None
    where = f"{source}:{line}" if line else source
    return ConfigError(f"{where}: key '{key}': {msg}")


def recipe_path(recipe: str | Path) -> Path:
    """A recipe file path, or a recipe name (``synthface/teacher``, see :mod:`distill.recipe_search`) -> the
    YAML path; a ConfigError that lists the known names and the folders searched when it is neither."""
    p = Path(recipe)
    return p if p.is_file() else find_recipe(str(recipe))


def _name_from_path(path: Path) -> str:
    """<dataset>/<name> from recipes/<dataset>/<name>.yaml; any other file: <parent>/<stem>."""
    return f"{path.parent.name}/{path.stem}" if path.parent.name else path.stem


def load_recipe(recipe: str | Path | RecipeConfig, overrides: typing.Sequence[str] = ()) -> RecipeConfig:
    """Load a recipe (path, shipped name or object) and apply ``key=value`` overrides -> RecipeConfig.

    Raises ConfigError naming the file (or "override") and the key on an unknown key, a wrong type,
    a value outside its choices, or a malformed override.
    """
    base = OmegaConf.structured(RecipeConfig)
    path = None
    if isinstance(recipe, RecipeConfig):
        cfg, source = OmegaConf.merge(base, OmegaConf.structured(recipe)), "<recipe object>"
    else:
        path = recipe_path(recipe)
        source = str(path)
        try:
            raw = yaml.safe_load(path.read_text())
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: a recipe is a mapping of sections (model, data, ...), got {type(raw).__name__}")
        try:
            cfg = OmegaConf.merge(base, OmegaConf.create(raw))
        except OmegaConfBaseException as e:
            raise _config_error(e, source, path) from None
        if not cfg.name:
            cfg.name = _name_from_path(path)
    cfg = apply_overrides(cfg, overrides, source)
    obj = OmegaConf.to_object(cfg)
    validate(obj, source)
    return obj


def apply_overrides(cfg, overrides: typing.Sequence[str], source: str = "override"):
    """Merge ``key=value`` strings (values parsed as YAML) into an OmegaConf config."""
    bad = [o for o in overrides if "=" not in o or not o.split("=", 1)[0].strip()]
    if bad:
        raise ConfigError(f"override {bad[0]!r}: expected key=value (e.g. trainer.max_steps=100)")
    try:
        return OmegaConf.merge(cfg, OmegaConf.from_dotlist(list(overrides)))
    except OmegaConfBaseException as e:
        err = _config_error(e, "override", None)
        raise ConfigError(f"{err} (recipe {source})") from None


def validate(cfg: RecipeConfig, source: str = "<recipe>") -> None:
    """Checks OmegaConf cannot express: choices, and fields that depend on each other."""
    for dotted, allowed in CHOICES.items():
        value = get_dotted(cfg, dotted)
        if value not in allowed:
            raise ConfigError(f"{source}: key '{dotted}': {value!r} is not one of {', '.join(allowed)}")
    for i, pair in enumerate(cfg.distill.pairs):
        if len(pair) != 2:
            raise ConfigError(f"{source}: key 'distill.pairs[{i}]': expected [student_tap, teacher_tap], got {pair}")
    if cfg.task == "distillation" and not cfg.teacher.ckpt:
        raise ConfigError(f"{source}: key 'teacher.ckpt': task distillation needs a teacher checkpoint")
    if cfg.trainer.max_steps < 1 and cfg.trainer.max_epochs < 1:
        raise ConfigError(f"{source}: key 'trainer.max_steps': set max_steps or max_epochs to a positive number")


def get_dotted(obj, dotted: str):
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def recipe_to_dict(cfg: RecipeConfig) -> dict:
    """Plain nested dict/list/str/number (safe for torch.load(weights_only=True) and JSON)."""
    return _plain(OmegaConf.to_container(OmegaConf.structured(cfg), resolve=True))


def _plain(value):
    """Tuples (OmegaConf's TupleConfig) become lists, so YAML / JSON dumps and reloads compare equal."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def recipe_to_yaml(cfg: RecipeConfig) -> str:
    return yaml.safe_dump(recipe_to_dict(cfg), sort_keys=False)


def recipe_from_dict(d: dict, source: str = "<dict>") -> RecipeConfig:
    """Inverse of :func:`recipe_to_dict` (e.g. the recipe stored in a checkpoint), validated."""
    try:
        cfg = OmegaConf.merge(OmegaConf.structured(RecipeConfig), OmegaConf.create(d))
    except OmegaConfBaseException as e:
        raise _config_error(e, source, None) from None
    obj = OmegaConf.to_object(cfg)
    validate(obj, source)
    return obj


def checkpoints_root(cfg: RecipeConfig | None = None) -> Path:
    """output.root, else $DISTILL_CHECKPOINTS, else ./checkpoints."""
    if cfg is not None and cfg.output.root:
        return Path(cfg.output.root)
    return Path(os.environ.get("DISTILL_CHECKPOINTS") or "checkpoints")


# ----------------------------------------------------------------------------- reference docs
def recipe_reference_markdown() -> str:
    """The recipe field reference (docs/recipes.md), generated from the dataclasses above."""
    return reference_markdown(RecipeConfig, CHOICES)


def write_recipe_reference(path: str | Path) -> Path:
    """Regenerate the reference, from a clone: ``python -c "import distill.config as c;
    c.write_recipe_reference('docs/recipes.md')"``."""
    return atomic_write_text(path, recipe_reference_markdown())
