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
import math
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
from distill.errors import ConfigError, first_line
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

    logger: str = F("wandb", "wandb (offline, no login) | wandb_online | mlflow | tensorboard | csv | none, or several "
                             "comma-separated (wandb,mlflow); CSV is written unless none (docs/tracking.md)")
    project: str = F("distill", "W&B project and MLflow experiment")
    mlflow_uri: str = F("", "MLflow tracking URI ('' = a local file store at <output.root>/mlruns)")
    progress: bool = F(True, "show progress: a live bar on a terminal, else a line every print_every_n_steps")
    print_every_n_steps: int = F(0, "without a terminal (CI, SLURM, a pipe): one progress line every this many "
                                    "steps (0 = max_steps / 20)")
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
    resume_force: bool = F(False, "with resume: continue even when the data (root or content), schema, task or "
                                  "model differ from the run's record; the change is recorded in run.json")
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
    "logging.logger": ("wandb", "wandb_online", "mlflow", "tensorboard", "csv", "none"),
    "trainer.precision": ("32-true", "32", "bf16-mixed", "16-mixed", "bf16-true", "16-true", "64-true"),
}

# CHOICES fields that take several of their words, comma-separated.
SEVERAL = ("logging.logger",)

# Fields whose value must lie in a range, checked when the recipe loads (a list: each element); NaN
# and infinities never pass. Written as in the docs: "> 0", ">= 1", "[0, 1)" (interval brackets).
RANGES: dict[str, str] = {
    "data.crop_size": ">= 8", "data.heatmap_size": ">= 1", "data.sigma": "> 0", "data.margin": ">= 0",
    "data.hidden_weight": ">= 0", "data.batch_size": ">= 1", "data.num_workers": ">= 0", "data.max_samples": ">= 1",
    "data.val_fraction": "[0, 1)", "data.unlabelled_fraction": "[0, 1)",
    "data.synth_num": ">= 1", "data.synth_size": ">= 32", "data.synth_num_test": ">= 0",
    "optim.lr": "> 0", "optim.weight_decay": ">= 0", "optim.momentum": "[0, 1)",
    "schedule.warmup_steps": ">= 0", "schedule.min_lr_ratio": "[0, 1]", "schedule.milestones": "(0, 1]",
    "schedule.gamma": "> 0",
    "loss.wing_w": "> 0", "loss.wing_eps": "> 0", "loss.stack_weights": ">= 0", "loss.w_gt": ">= 0",
    "loss.w_out": ">= 0", "loss.w_feat": ">= 0",
    "distill.warmup_steps": ">= 0", "distill.after_warmup": ">= 0", "distill.balance_steps": ">= 1",
    "logging.grid_images": ">= 0", "logging.log_every_n_steps": ">= 1", "logging.print_every_n_steps": ">= 0",
    "trainer.max_steps": ">= -1", "trainer.max_epochs": ">= -1", "trainer.val_every_n_steps": ">= 1",
    "trainer.val_batches": ">= 0", "trainer.checkpoint_every_n_steps": ">= 0", "trainer.num_nodes": ">= 1",
    "trainer.gradient_clip_val": ">= 0", "trainer.accumulate_grad_batches": ">= 1", "trainer.num_threads": ">= 0",
}


def in_range(value, spec: str) -> bool:
    """Whether a number satisfies a RANGES spec; NaN and infinities never do."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return False
    spec = spec.replace(" ", "")
    if spec[0] in "[(":
        low, high = (float(v) for v in spec[1:-1].split(","))
        above = value >= low if spec[0] == "[" else value > low
        return above and (value <= high if spec[-1] == "]" else value < high)
    op, bound = (spec[:2], spec[2:]) if spec[1] == "=" else (spec[:1], spec[1:])
    bound = float(bound)
    return {">=": value >= bound, ">": value > bound, "<=": value <= bound, "<": value < bound}[op]


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
    msg = first_line(e)
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
            raise ConfigError(f"{path}: not valid YAML ({first_line(e)})") from None
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
    overridden = {o.split("=", 1)[0].strip() for o in overrides}
    try:
        obj = OmegaConf.to_object(cfg)
    except ConfigError as e:  # a section's own check ("data.sigma: ..."): say where the value came from
        key = str(e).split(":", 1)[0]
        where = f"override {key} (recipe {source})" if key in overridden else _where_in_file(source, path, key)
        raise ConfigError(f"{where}: {e}") from None
    validate(obj, source, path, overridden)
    return obj


def apply_overrides(cfg, overrides: typing.Sequence[str], source: str = "override"):
    """Merge ``key=value`` strings (values parsed as YAML) into an OmegaConf config."""
    bad = [o for o in overrides if "=" not in o or not o.split("=", 1)[0].strip()]
    if bad:
        raise ConfigError(f"override {bad[0]!r}: expected key=value (e.g. trainer.max_steps=100)")
    for override in overrides:
        try:
            cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist([override]))
        except OmegaConfBaseException as e:
            err = _config_error(e, "override", None)
            raise ConfigError(f"{err} (recipe {source})") from None
        except yaml.YAMLError as e:  # the value is parsed as YAML: 'seed=[1,' never closes its list
            raise ConfigError(f"override {override!r}: the value is not valid YAML ({first_line(e)})") from None
    return cfg


def _where_in_file(source: str, path: Path | None, dotted: str) -> str:
    line = _yaml_line(path, dotted) if path is not None else None
    return f"{source}:{line}" if line else source


def validate(cfg: RecipeConfig, source: str = "<recipe>", path: Path | None = None,
             overridden: typing.Collection[str] = ()) -> None:
    """Checks OmegaConf cannot express: choices, ranges, names used as paths, and fields that depend on
    each other. ``path``: the recipe file, so an error can name the line of the key; ``overridden``: the
    keys set by overrides, whose errors name the override instead."""

    def _where(source: str, path: Path | None, dotted: str) -> str:
        if dotted in overridden:
            return f"override {dotted}={get_dotted(cfg, dotted)!r} (recipe {source})"
        return _where_in_file(source, path, dotted)

    for dotted, allowed in CHOICES.items():
        value = get_dotted(cfg, dotted)
        for v in ([p.strip() for p in value.split(",")] if dotted in SEVERAL and isinstance(value, str) else [value]):
            if v not in allowed:
                raise ConfigError(f"{_where(source, path, dotted)}: key '{dotted}': {v!r} is not one of "
                                  f"{', '.join(allowed)}" + (" (several: comma-separated)" if dotted in SEVERAL else ""))
    for dotted, spec in RANGES.items():
        value = get_dotted(cfg, dotted)
        for v in (value if isinstance(value, (list, tuple)) else [value]):
            if v is not None and not in_range(v, spec):
                raise ConfigError(f"{_where(source, path, dotted)}: key '{dotted}': {v!r} is not {spec}")
    if cfg.data.heatmap_size is not None and cfg.data.heatmap_size > cfg.data.crop_size:
        raise ConfigError(f"{_where(source, path, 'data.heatmap_size')}: key 'data.heatmap_size': "
                          f"{cfg.data.heatmap_size} is larger than data.crop_size {cfg.data.crop_size}")
    parts = cfg.name.split("/")
    if not cfg.name or any(p in ("", ".", "..") or "\\" in p for p in parts) or cfg.name.startswith("/"):
        raise ConfigError(f"{source}: key 'name': {cfg.name!r} is not a recipe name like <folder>/<name> "
                          "(it becomes a folder under the checkpoints root)")
    run = cfg.output.run_name
    if run and (run in (".", "..") or any(c in run for c in "/\\") or run.startswith(".")):
        raise ConfigError(f"{_where(source, path, 'output.run_name')}: key 'output.run_name': {run!r} must be one "
                          "folder name (no '/', '\\', nor a leading '.')")
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
    try:
        obj = OmegaConf.to_object(cfg)
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None
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
    return reference_markdown(RecipeConfig, CHOICES, RANGES)


def write_recipe_reference(path: str | Path) -> Path:
    """Regenerate the reference, from a clone: ``python -c "import distill.config as c;
    c.write_recipe_reference('docs/recipes.md')"``."""
    return atomic_write_text(path, recipe_reference_markdown())
