"""Experiment tracking: which loggers a run writes to, and what it tells them.

    make_loggers(cfg, run_dir) -> [Lightning loggers]    ``logging.logger``: names of LOGGERS, comma-separated
    Tracking(cfg, run_dir)                               the callback that fills them (below)

Where each logger writes: one folder under ``output.root`` holds every run, so runs compare side by side.

    csv           <run>/csv/<session>/metrics.csv
    wandb         <root>/wandb/offline-run-*  (offline: no login; ``wandb sync --sync-all`` inside <root>
                  uploads them later);  wandb_online: straight to the W&B server
    mlflow        <root>/mlruns  (a local file store, no server; ``logging.mlflow_uri`` for a server or a
                  database)
    tensorboard   <root>/tensorboard/<recipe>/<run>  (``tensorboard --logdir <root>/tensorboard``)

What every logger receives (the training modules log the loss terms, the learning rate and the validation
numbers themselves; this callback adds the rest):

    the recipe, flattened (``data.crop_size``, ``optim.lr``, ...) and the model's size and cost
    (``model/params``, ``model/kb``, ``model/gflops``) at the start;
    ``val/grid`` (crops with truth and prediction) and ``val/ced`` (the CED of that validation) as images;
    the run's best.ckpt and last.ckpt as model artifacts (W&B: artifact ``<recipe>-<run>``, aliases best / last;
    MLflow: files under ``checkpoints/``) at the end.

A distillation run names its teacher: ``teacher/path``, ``teacher/sha256`` and ``teacher/artifact`` (the W&B
artifact the teacher's own run logged, ``<recipe>-<run>:best``) in its config; W&B runs of one recipe folder
share a group (``synthface``) and carry tags (recipe, task, model). An online W&B run declares the teacher's
artifact as its input (the lineage graph); W&B does not allow that offline, so ``distill sync`` declares it
after uploading.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import lightning as L
import numpy as np

from distill.config import RecipeConfig, checkpoints_root, recipe_to_dict
from distill.errors import ConfigError
from distill.io import atomic_write_json
from distill.metrics import plot_ced
from distill.models.facts import model_facts


# ----------------------------------------------------------------------------- names
def artifact_name(recipe_name: str, run_name: str) -> str:
    """The W&B artifact of a run's checkpoints: ``<recipe>-<run>`` with '/' and other odd characters as '-'."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", f"{recipe_name}-{run_name}")


def teacher_artifact(teacher: dict) -> str | None:
    """``<recipe>-<run>:best``, the artifact the teacher's own run logged its best.ckpt as, when the teacher
    (FrozenTeacher.info(): path, recipe_name) is a run folder's best.ckpt; else None."""
    path = Path(teacher["path"])
    if not teacher.get("recipe_name") or path.name != "best.ckpt":
        return None
    return f"{artifact_name(teacher['recipe_name'], path.parent.name)}:best"


def flatten(tree: dict, prefix: str = "") -> dict:
    """{"data": {"crop_size": 64}} -> {"data.crop_size": 64}; lists become strings (filterable in every UI)."""
    out = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = str(value) if isinstance(value, (list, tuple)) else value
    return out


def wandb_run_id(run_dir: Path) -> str:
    """A run folder's W&B id, stable across resumes of that folder."""
    return hashlib.sha1(str(Path(run_dir).resolve()).encode()).hexdigest()[:12]


# ----------------------------------------------------------------------------- loggers
def _csv(cfg: RecipeConfig, run_dir: Path, root: Path):
    from lightning.pytorch.loggers import CSVLogger

    # one CSV per session (csv/0, csv/1 after a resume...): Lightning would overwrite an existing metrics.csv
    session = len(list((run_dir / "csv").glob("*"))) if (run_dir / "csv").is_dir() else 0
    return CSVLogger(save_dir=str(run_dir), name="csv", version=str(session))


def _wandb(cfg: RecipeConfig, run_dir: Path, root: Path, online: bool = False):
    import wandb
    from lightning.pytorch.loggers import WandbLogger

    if not online:
        os.environ["WANDB_MODE"] = "offline"  # never ask for a login; `wandb sync` uploads later
    # W&B's own chatter (including a deprecation notice about a setting Lightning passes) off the console
    wandb.setup(settings=wandb.Settings(silent=True))
    (root / "wandb").mkdir(parents=True, exist_ok=True)
    folder = cfg.name.split("/")[0]
    return WandbLogger(save_dir=str(root), project=cfg.logging.project, name=f"{cfg.name}/{run_dir.name}",
                       id=wandb_run_id(run_dir), offline=not online, resume="allow", group=folder,
                       job_type=cfg.task, tags=[cfg.name, cfg.task, cfg.model.name])


def _mlflow(cfg: RecipeConfig, run_dir: Path, root: Path):
    try:
        import mlflow  # noqa: F401
        from lightning.pytorch.loggers import MLFlowLogger
    except ImportError:
        raise ConfigError("key 'logging.logger': mlflow needs its package: pip install distill[mlflow]") from None
    uri = mlflow_uri(cfg.logging.mlflow_uri, root)

    class MLflow(MLFlowLogger):
        """Metric names past their first '/' joined with '.' ('val/nme/pose' -> 'val/nme.pose'): the file store
        keeps a metric as a file, and 'val/nme' cannot be both a file and the folder of 'val/nme/pose'."""

        def log_metrics(self, metrics, step=None):
            super().log_metrics({mlflow_key(k): v for k, v in metrics.items()}, step)

    return MLflow(experiment_name=cfg.logging.project, run_name=f"{cfg.name}/{run_dir.name}", tracking_uri=uri,
                        tags={"recipe": cfg.name, "task": cfg.task, "model": cfg.model.name, "run_dir": str(run_dir)})


def mlflow_uri(given: str, root: Path) -> str:
    """``given`` (logging.mlflow_uri), else the local file store ``<root>/mlruns``."""
    uri = given or (Path(root) / "mlruns").resolve().as_uri()
    if uri.startswith("file:"):
        # MLflow 3 keeps its plain-file store in maintenance mode behind this switch; it needs no server or database
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    return uri


def mlflow_key(key: str) -> str:
    """'val/fr@0.10/pose' -> 'val/fr_at_0.10.pose' (MLflow takes no '@'; see the MLflow logger for the '.')."""
    head, _, rest = key.replace("@", "_at_").partition("/")
    return f"{head}/{rest.replace('/', '.')}" if rest else head


def _tensorboard(cfg: RecipeConfig, run_dir: Path, root: Path):
    from lightning.pytorch.loggers import TensorBoardLogger

    # Lightning writes events with tensorboard's writer when it is installed, else with tensorboardX's
    if importlib.util.find_spec("tensorboard") is None and importlib.util.find_spec("tensorboardX") is None:
        raise ConfigError("key 'logging.logger': tensorboard needs its package: pip install distill[tensorboard]")
    return TensorBoardLogger(save_dir=str(root / "tensorboard"), name=cfg.name, version=run_dir.name,
                             default_hp_metric=False)


LOGGERS = {"csv": _csv, "wandb": _wandb, "wandb_online": lambda c, r, root: _wandb(c, r, root, online=True),
           "mlflow": _mlflow, "tensorboard": _tensorboard}


def logger_names(value: str) -> list[str]:
    """'wandb, mlflow' -> ['wandb', 'mlflow']; 'none' -> []. CSV is always written unless 'none'."""
    names = [n.strip() for n in value.split(",") if n.strip()]
    if "none" in names:
        return []
    return (["csv"] if "csv" not in names else []) + names


def make_loggers(cfg: RecipeConfig, run_dir: Path) -> list:
    root = checkpoints_root(cfg)
    return [LOGGERS[name](cfg, run_dir, root) for name in logger_names(cfg.logging.logger)]


# ----------------------------------------------------------------------------- images, one function per logger
def _image_wandb(logger, key: str, rgb: np.ndarray, step: int) -> None:
    logger.log_image(key=key, images=[rgb], step=step)


def _image_tensorboard(logger, key: str, rgb: np.ndarray, step: int) -> None:
    logger.experiment.add_image(key, rgb, global_step=step, dataformats="HWC")


def _image_mlflow(logger, key: str, rgb: np.ndarray, step: int) -> None:
    logger.experiment.log_image(logger.run_id, rgb, key=key.replace("/", "_"), step=step)


IMAGE_LOGGERS = {"WandbLogger": _image_wandb, "TensorBoardLogger": _image_tensorboard, "MLFlowLogger": _image_mlflow}


def logger_kind(logger) -> str:
    """The Lightning logger class a logger is (or derives from): 'WandbLogger', 'MLFlowLogger', ..."""
    return next((c.__name__ for c in type(logger).__mro__ if c.__name__ in IMAGE_LOGGERS), type(logger).__name__)


def log_image(loggers, key: str, bgr: np.ndarray, step: int) -> None:
    """An OpenCV (H, W, 3) BGR image to every logger that takes images (CSV does not)."""
    rgb = np.ascontiguousarray(bgr[:, :, ::-1])
    for logger in loggers:
        send = IMAGE_LOGGERS.get(logger_kind(logger))
        if send is not None:
            send(logger, key, rgb, step)


def log_files(loggers, files: dict[str, Path], recipe_name: str, run_name: str) -> None:
    """Checkpoints as model artifacts: ``files`` is alias -> path (W&B: versions of one artifact, by alias;
    MLflow: files under checkpoints/)."""
    for logger in loggers:
        kind = logger_kind(logger)
        if kind == "WandbLogger":
            import wandb

            for alias, path in files.items():
                artifact = wandb.Artifact(artifact_name(recipe_name, run_name), type="model",
                                          metadata={"file": path.name, "run_dir": str(path.parent)})
                artifact.add_file(str(path), name=path.name)
                logger.experiment.log_artifact(artifact, aliases=[alias])
        elif kind == "MLFlowLogger":
            for path in files.values():
                logger.experiment.log_artifact(logger.run_id, str(path), "checkpoints")


def finish(loggers) -> None:
    """End the W&B runs of a finished fit: Lightning leaves them open, and the next run in the same process
    (a second ``train()``, the quickstart's five models) would otherwise log into this one."""
    if any(logger_kind(logger) == "WandbLogger" for logger in loggers):
        import wandb

        if wandb.run is not None:  # the run this process has open (None when the fit never started one)
            wandb.run.finish()


# ----------------------------------------------------------------------------- the callback
class Tracking(L.Callback):
    """Fills every logger of the trainer (module docstring); rank 0 only."""

    def __init__(self, cfg: RecipeConfig, run_dir: Path, facts: dict | None = None):
        self.cfg, self.run_dir, self.facts = cfg, Path(run_dir), facts  # facts: model_facts of the trained model

    def on_fit_start(self, trainer, pl_module) -> None:
        if trainer.global_rank != 0 or not trainer.loggers:
            return
        facts = self.facts or model_facts(pl_module.model)
        config = flatten(recipe_to_dict(self.cfg))
        teacher = pl_module.teacher_info()
        if teacher:
            config.update({"teacher/path": teacher["path"], "teacher/sha256": teacher["sha256"],
                           "teacher/artifact": teacher_artifact(teacher) or ""})
        summary = {"model/params": facts["params"], "model/kb": facts["bytes"] / 1024, "model/gflops": facts["gflops"]}
        for logger in trainer.loggers:
            logger.log_hyperparams(config)
            logger.log_metrics(summary, step=trainer.global_step)
            if logger_kind(logger) == "MLFlowLogger":  # where `distill export` finds the run again
                record = self.run_dir / "run.json"
                if record.is_file():
                    run = json.loads(record.read_text())
                    run["mlflow"] = {"uri": mlflow_uri(self.cfg.logging.mlflow_uri, checkpoints_root(self.cfg)),
                                     "run_id": logger.run_id}
                    atomic_write_json(record, run)
            if logger_kind(logger) == "WandbLogger":
                logger.experiment.summary.update(summary)
                used = config.get("teacher/artifact")
                if used and "wandb_online" in logger_names(self.cfg.logging.logger):  # offline: `distill sync`
                    logger.experiment.use_artifact(used)

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.global_rank != 0 or trainer.sanity_checking or not trainer.loggers:
            return
        step = trainer.global_step
        grid = getattr(pl_module, "last_grid", None)
        if grid is not None:
            log_image(trainer.loggers, "val/grid", grid, step)
        nme = getattr(pl_module, "last_val_nme", None)
        if nme is not None and len(nme):
            import cv2

            png = plot_ced({f"step {step}": nme}, self.run_dir / "val_ced" / f"step{step:06d}.png")
            log_image(trainer.loggers, "val/ced", cv2.imread(str(png)), step)

    def on_fit_end(self, trainer, pl_module) -> None:
        if trainer.global_rank != 0 or not trainer.loggers:
            return
        files = {alias: self.run_dir / f"{alias}.ckpt" for alias in ("best", "last")}
        log_files(trainer.loggers, {a: p for a, p in files.items() if p.is_file()}, self.cfg.name, self.run_dir.name)


# ----------------------------------------------------------------------------- exports of a run
def log_export(checkpoint: str | Path, files: list[Path], log=print) -> list[str]:
    """Files exported from a run's checkpoint, as artifacts of that run in the trackers it used (from its
    run.json and recipe.yaml): W&B (the run is reopened by its id: offline, a new segment that ``wandb sync``
    merges; artifact ``<recipe>-<run>-export``) and MLflow (under ``exports/``). -> the trackers written to;
    none for a checkpoint outside a run folder."""
    from distill.config import load_recipe

    run_dir = Path(checkpoint).resolve().parent
    if not (run_dir / "run.json").is_file() or not (run_dir / "recipe.yaml").is_file():
        return []
    run = json.loads((run_dir / "run.json").read_text())
    cfg = load_recipe(run_dir / "recipe.yaml")
    names, done = logger_names(cfg.logging.logger), []
    if {"wandb", "wandb_online"} & set(names) and run.get("wandb_id"):
        import wandb

        online = "wandb_online" in names
        root = run_dir.parents[len(cfg.name.split("/"))]   # <root>/<recipe folder(s)>/<run>
        wandb.setup(settings=wandb.Settings(silent=True))
        with wandb.init(project=cfg.logging.project, id=run["wandb_id"], resume="allow", dir=str(root),
                        mode="online" if online else "offline") as wb:
            artifact = wandb.Artifact(f"{artifact_name(cfg.name, run_dir.name)}-export", type="model",
                                      metadata={"checkpoint": str(checkpoint)})
            for path in files:
                artifact.add_file(str(path), name=Path(path).name)
            wb.log_artifact(artifact)
        done.append("wandb")
    if "mlflow" in names and run.get("mlflow"):
        from mlflow.tracking import MlflowClient

        client = MlflowClient(mlflow_uri(run["mlflow"]["uri"], run_dir))
        for path in files:
            client.log_artifact(run["mlflow"]["run_id"], str(path), "exports")
        done.append("mlflow")
    if done:
        log(f"logged {', '.join(Path(p).name for p in files)} to the run's {' and '.join(done)}")
    return done


# ----------------------------------------------------------------------------- distill sync
def sync_wandb(root: str | Path, project: str = "distill", dry_run: bool = False, log=print) -> dict:
    """Upload the offline W&B runs under ``root`` (``<root>/wandb/offline-run-*``, with ``wandb sync``), then
    declare each distillation run's teacher artifact as that run's input (W&B allows it only online), from the
    ``teacher`` and ``wandb_id`` entries of the runs' run.json. -> {"upload": [folders], "link": [(run id,
    artifact)]}; ``dry_run`` only says what it would do. Needs a W&B login (``wandb login``) unless dry."""
    root = Path(root)
    folders = sorted((root / "wandb").glob("offline-run-*"))
    links = []
    for record in sorted({p.resolve() for p in root.glob("*/*/*/run.json")}):  # `latest` links name a run twice
        run = json.loads(record.read_text())
        artifact = (run.get("teacher") or {}).get("artifact")
        if artifact and run.get("wandb_id"):
            links.append((run["wandb_id"], artifact))
    for folder in folders:
        log(f"{'would upload' if dry_run else 'uploading'} {folder}")
        if not dry_run:
            subprocess.run([sys.executable, "-m", "wandb", "sync", str(folder)], check=True)
    if links and not dry_run:
        import wandb

        api = wandb.Api()
        prefix = f"{api.default_entity}/{project}"
        for run_id, artifact in links:
            api.run(f"{prefix}/{run_id}").use_artifact(api.artifact(f"{prefix}/{artifact}"))
    for run_id, artifact in links:
        log(f"{'would link' if dry_run else 'linked'} run {run_id} <- input {artifact}")
    return {"upload": folders, "link": links}
