"""`distill train`: a recipe in, a run folder with checkpoints out.

    train("synthface/student", ["trainer.max_steps=500"])  ->  checkpoints/synthface/student/<run>/

Order of work: resolve the recipe (+ overrides) -> make the data (SynthFace is generated when its
root is missing) -> build the model (and, for distillation, load the frozen teacher) -> write
recipe.yaml and run.json, point ``latest`` at the run -> fit with Lightning -> write metrics.json.
``resume=true`` reopens the run (``output.run_name`` or ``latest``) and continues from its last.ckpt.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Checkpoint, ModelCheckpoint

from distill import models
from distill.checkpoint import load_checkpoint_dict, load_model
from distill.config import RecipeConfig, checkpoints_root, get_dotted, load_recipe, recipe_to_dict, recipe_to_yaml
from distill.data.datamodule import LandmarkDataModule
from distill.data.synthface import generate
from distill.errors import ConfigError, first_line
from distill.io import atomic_write_json, atomic_write_text, remove_stale_temps
from distill.models.facts import model_facts
from distill.training import runs
from distill.training.alignment import stage1_aligner
from distill.training.common import LandmarkModule
from distill.training.console import StepProgress, banner, quiet_libraries
from distill.training.distillation import DistillationModule, load_teacher
from distill.training.heatmap import HeatmapModule
from distill.training.regression import RegressionModule
from distill.training.regression_distillation import RegressionDistillationModule
from distill.training.tracking import Tracking, finish, make_loggers, teacher_artifact, wandb_run_id

MODULES = {"heatmap": HeatmapModule, "regression": RegressionModule}
# the student's kind -> its distillation module
DISTILLATION_MODULES = {"heatmap": DistillationModule, "regression": RegressionDistillationModule}


# ----------------------------------------------------------------------------- building blocks
def prepare_data(cfg: RecipeConfig) -> None:
    """Generate the SynthFace set into data.root when it is missing, so recipes run on a fresh machine."""
    d = cfg.data
    if d.format != "synthface" or not d.root or Path(d.root).exists():
        return
    print(f"distill: data.root {d.root} does not exist; generating {d.synth_num} SynthFace faces there")
    generate(d.root, num=d.synth_num, seed=d.synth_seed, size=d.synth_size, workers=max(1, min(2, os.cpu_count() or 1)),
             num_test=d.synth_num_test or None)


def build_datamodule(cfg: RecipeConfig) -> LandmarkDataModule:
    """The DataModule, set up for fitting (so its schema is known). Heatmap targets only for heatmap tasks."""
    d = cfg.data
    d.seed = cfg.seed
    if cfg.task == "regression" or models.output_kind(cfg.model.name) == "coords":  # no heatmap targets to make
        d.heatmap_size = None
    elif d.heatmap_size is None:
        d.heatmap_size = d.crop_size // 4  # the Hourglass stem's stride
    if cfg.distill.cache_teacher and cfg.task == "distillation" and not augmentation_off(d.augment):
        raise ConfigError("key 'distill.cache_teacher': the teacher's outputs can only be cached for a fixed "
                          "data set; turn augmentation off (data.augment.*) or set cache_teacher=false")
    dm = LandmarkDataModule(d, align=stage1_aligner(d.align_with) if d.align_with else None)
    dm.setup("fit")
    return dm


def augmentation_off(a) -> bool:
    """True when every crop is the same on every epoch (what caching teacher outputs needs)."""
    return a.is_off()


def build_model(cfg: RecipeConfig, schema) -> torch.nn.Module:
    """The trained model: model.name + model.args, sized to the data; optionally initialised from a checkpoint."""
    args = dict(cfg.model.args)
    args.setdefault("num_points", schema.num_points)
    args.setdefault("input_size", cfg.data.crop_size)
    model = models.build_model(cfg.model.name, **args)
    if model.num_points != schema.num_points or model.input_size != cfg.data.crop_size:
        raise ConfigError(f"key 'model.args': the model has {model.num_points} points at {model.input_size} px but the "
                          f"data has {schema.num_points} points ({schema.name}) at data.crop_size {cfg.data.crop_size}")
    if cfg.distill.student_init:
        path = runs.resolve_checkpoint(cfg.distill.student_init, checkpoints_root(cfg), "distill.student_init")
        init, _ = load_model(path)
        try:
            model.load_state_dict(init.state_dict())
        except RuntimeError as e:
            raise ConfigError(f"key 'distill.student_init': {path} does not fit model {cfg.model.name} "
                              f"{cfg.model.args} ({first_line(e)})") from None
    return model


def build_module(cfg: RecipeConfig, schema) -> LandmarkModule:
    model = build_model(cfg, schema)
    recipe = recipe_to_dict(cfg)
    kind = "regression" if model.output_kind == "coords" else "heatmap"
    if cfg.task != "distillation" and cfg.task != kind:
        raise ConfigError(f"key 'task': {cfg.task} does not fit model {cfg.model.name} (outputs {model.output_kind})")
    if cfg.task == "distillation":
        path = runs.resolve_checkpoint(cfg.teacher.ckpt, checkpoints_root(cfg), "teacher.ckpt")
        teacher = load_teacher(path)
        if teacher.model.num_points != model.num_points:
            raise ConfigError(f"key 'teacher.ckpt': teacher {path} has {teacher.model.num_points} points, "
                              f"the student {model.num_points}")
        if teacher.model.output_kind != "heatmap":
            raise ConfigError(f"key 'teacher.ckpt': teacher {path} is a coordinate model; distillation needs a "
                              "heatmap teacher (its heatmaps, points and taps are what a student learns from)")
        # a heatmap student learns the teacher's heatmaps; a regressor its decoded points (regression_distillation)
        module = DISTILLATION_MODULES[kind](model, schema, recipe, teacher)
    else:
        module = MODULES[cfg.task](model, schema, recipe)
    if cfg.trainer.channels_last:
        # Weights in NHWC make oneDNN pick its fast convolution paths (measured 1.4x per training step
        # for the SynthFace Hourglasses and the ConvDW on one CPU thread); NCHW inputs are converted by
        # the first convolution. Parameters keep their identity, so optimiser and state_dict are unchanged.
        module.to(memory_format=torch.channels_last)
        if cfg.task == "distillation":
            module.teacher.model.to(memory_format=torch.channels_last)
    return module


def data_hash(dm: LandmarkDataModule) -> str:
    """sha256 (16 hex) over the training and validation samples' file names and points."""
    h = hashlib.sha256()
    for ds in (dm.train_dataset, dm.val_dataset):
        for s in ds.samples:
            h.update(Path(s.image_path).name.encode())
            if s.points is not None:
                h.update(torch.as_tensor(s.points).float().numpy().tobytes())
    return h.hexdigest()[:16]


class SaveLast(Checkpoint):
    """last.ckpt after every validation, every ``every_n_steps`` steps (0: never) and at the end
    (with metrics.json).

    A ``Checkpoint`` subclass so Lightning runs it after ModelCheckpoint: the saved callback state
    then already knows this validation's best score."""

    def __init__(self, path: Path, every_n_steps: int = 0):
        self.path, self.every = Path(path), int(every_n_steps)

    def save(self, trainer) -> None:
        trainer.save_checkpoint(self.path, weights_only=False)
        if trainer.global_rank == 0:  # `latest` names only runs that saved a checkpoint
            runs.set_latest(self.path.parent)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.every and trainer.global_step % self.every == 0:
            self.save(trainer)

    def on_validation_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking and trainer.state.fn == "fit":
            self.save(trainer)

    def on_train_end(self, trainer, pl_module) -> None:
        self.save(trainer)
        if trainer.global_rank == 0:  # inside the training process, so also right under ddp_spawn
            write_metrics(trainer, self.path.parent)


def make_trainer(cfg: RecipeConfig, run_dir: Path, callbacks=(), facts: dict | None = None,
                 quiet: bool = False) -> L.Trainer:
    """The Lightning Trainer of a run: checkpoints, tracking (facts: the model's model_facts), progress unless
    ``quiet`` or logging.progress is off."""
    t = cfg.trainer
    cbs = [ModelCheckpoint(dirpath=str(run_dir), filename="best", monitor="val/nme", mode="min", save_top_k=1,
                           auto_insert_metric_name=False, enable_version_counter=False),
           SaveLast(run_dir / "last.ckpt", t.checkpoint_every_n_steps), Tracking(cfg, run_dir, facts)]
    progress = cfg.logging.progress and not quiet
    if progress:
        cbs.append(StepProgress(cfg.logging.print_every_n_steps))
    return L.Trainer(
        default_root_dir=str(run_dir), max_steps=t.max_steps, max_epochs=t.max_epochs,
        # at least one validation (and so a best.ckpt) even when the run is shorter than val_every_n_steps
        val_check_interval=min(t.val_every_n_steps, t.max_steps) if t.max_steps > 0 else t.val_every_n_steps,
        check_val_every_n_epoch=None,
        limit_val_batches=t.val_batches or None, accelerator=t.accelerator, devices=t.devices, strategy=t.strategy,
        num_nodes=t.num_nodes, precision=t.precision, gradient_clip_val=t.gradient_clip_val or None,
        accumulate_grad_batches=t.accumulate_grad_batches, logger=make_loggers(cfg, run_dir) or False,
        log_every_n_steps=cfg.logging.log_every_n_steps, callbacks=cbs + list(callbacks),
        enable_progress_bar=progress, enable_model_summary=False,  # the banner gives the model's size and cost
        num_sanity_val_steps=0, plugins=[runs.AtomicCheckpointIO()],
    )


# ----------------------------------------------------------------------------- the entry points
# What a resumed run may not change without resume_force: the data it learns from and the model it is.
RESUME_GUARDED = ("task", "data.format", "data.root", "data.schema", "data.target_schema", "data.crop_size",
                  "data.heatmap_size", "data.train_split", "data.val_split", "model.name", "model.args",
                  "teacher.ckpt")


def resolve(recipe: str | Path | RecipeConfig, overrides=()) -> tuple[RecipeConfig, Path | None, dict]:
    """The recipe to run and, with resume=true, the run folder to continue (its recipe.yaml + overrides)
    and what the overrides change of the run's record ({key: [recorded, now]}, only with resume_force)."""
    cfg = load_recipe(recipe, overrides)
    if not cfg.resume:
        return cfg, None, {}
    root = checkpoints_root(cfg)
    run_dir = (runs.recipe_dir(root, cfg.name) / cfg.output.run_name) if cfg.output.run_name else runs.latest_run(root, cfg.name)
    if run_dir is None or not (run_dir / "last.ckpt").is_file():
        raise ConfigError(f"key 'resume': no run of {cfg.name} with a last.ckpt under {runs.recipe_dir(root, cfg.name)}")
    recorded = load_recipe(run_dir / "recipe.yaml")
    stored = load_recipe(run_dir / "recipe.yaml", list(overrides))
    changes = {k: [get_dotted(recorded, k), get_dotted(stored, k)] for k in RESUME_GUARDED
               if get_dotted(recorded, k) != get_dotted(stored, k)}
    if changes and not stored.resume_force:
        key, (was, now) = next(iter(changes.items()))
        raise ConfigError(f"key '{key}': run {run_dir} was trained with {was!r}, this start asks for {now!r}; "
                          "resuming would mix the two (start a new run, or pass resume_force=true to continue "
                          "anyway: the change is recorded in run.json)")
    return stored, run_dir, changes


def train(recipe: str | Path | RecipeConfig, overrides=(), *, dry_run: bool = False, callbacks=(),
          quiet: bool = False) -> Path:
    """Train a recipe -> the run folder. ``dry_run`` builds data, model and teacher, runs one batch
    through the losses and returns the (empty) run folder path it would have used, without training.
    ``quiet``: no banner and no progress (errors and skipped-sample lines still print)."""
    cfg, run_dir, changes = resolve(recipe, overrides)
    quiet_libraries()  # also: recipe.yaml and run.json are in the run folder before Lightning's checkpoint sees it
    if cfg.trainer.num_threads > 0:
        torch.set_num_threads(cfg.trainer.num_threads)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    prepare_data(cfg)
    dm = build_datamodule(cfg)
    for split, report in dm.reports.items():
        if report.skipped:
            print(f"distill: {split} data ({cfg.data.root or cfg.data.unlabelled_root}): {report.summary()}")
    module = build_module(cfg, dm.schema)
    root = checkpoints_root(cfg)
    digest = data_hash(dm)
    if run_dir is not None:
        load_checkpoint_dict(run_dir / "last.ckpt")  # a damaged last.ckpt: one clear error, before anything runs
        record = json.loads((run_dir / "run.json").read_text()) if (run_dir / "run.json").is_file() else {}
        if record.get("data_hash") not in (None, digest):
            changes["data_hash"] = [record["data_hash"], digest]
            if not cfg.resume_force:
                raise ConfigError(f"key 'resume': the data under {cfg.data.root} is not what run {run_dir} was "
                                  f"trained on (content hash {record['data_hash']}, now {digest}); start a new run, "
                                  "or pass resume_force=true to continue anyway (recorded in run.json)")
    if dry_run:
        batch = next(iter(dm.train_dataloader()))
        terms = module.losses(batch)
        print("dry run: " + ", ".join(f"{k}={float(v.detach()):.4g}" for k, v in terms.items()))
        return runs.recipe_dir(root, cfg.name)

    reports = {split: r.to_dict() for split, r in dm.reports.items()}
    remove_stale_temps(runs.recipe_dir(root, cfg.name))  # e.g. a `latest` link half-swapped by a killed run
    resuming = run_dir is not None
    if resuming:
        remove_stale_temps(run_dir)  # what a killed run of it left half-written
        if changes:
            runs.record_resume(run_dir, changes, reports)
    else:
        run_dir = runs.new_run_dir(root, cfg.name, cfg.output.run_name)
        atomic_write_text(run_dir / "recipe.yaml", recipe_to_yaml(cfg))
        extra = {"data_report": reports, "wandb_id": wandb_run_id(run_dir)}
        teacher = module.teacher_info()
        if teacher:
            extra["teacher"] = {**teacher, "artifact": teacher_artifact(teacher)}
        atomic_write_json(run_dir / "run.json", runs.run_record(recipe_to_dict(cfg), cfg.seed, digest, extra))
    trainer = None
    try:
        facts = model_facts(module.model)
        trainer = make_trainer(cfg, run_dir, callbacks, facts, quiet)
        if not quiet and trainer.is_global_zero:
            print(banner(cfg, dm, facts, module.teacher_info(), trainer, run_dir), flush=True)
        trainer.fit(module, datamodule=dm, ckpt_path=str(run_dir / "last.ckpt") if resuming else None,
                    weights_only=True if resuming else None)
    except BaseException:
        # a run that could not start (nothing trained, nothing saved) leaves no folder behind
        if not resuming and (trainer is None or trainer.global_step == 0) and not any(run_dir.glob("*.ckpt")):
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    finally:
        if trainer is not None:
            finish(trainer.loggers)
    return run_dir


def write_metrics(trainer: L.Trainer, run_dir: Path) -> None:
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith(("val/", "train/"))}
    ckpt = next((c for c in trainer.callbacks if isinstance(c, ModelCheckpoint)), None)
    if ckpt is not None and ckpt.best_model_score is not None:
        metrics["best/val_nme"] = float(ckpt.best_model_score)
    metrics["global_step"] = int(trainer.global_step)
    atomic_write_json(run_dir / "metrics.json", metrics)
