"""Run folders: where a training run writes, how the newest run is found, and what is recorded.

    <root>/<recipe name>/<run>/    last.ckpt  best.ckpt  recipe.yaml  metrics.json  run.json  val_grid/
    <root>/<recipe name>/latest    -> <run>   (a symlink; a text file holding the run name where links fail)

Every file here is written atomically (a temporary file in the same folder, then a rename), so a
killed run never leaves a half-written record or checkpoint that a later run would trust.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import time
from importlib import metadata
from pathlib import Path

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from distill.errors import ConfigError
from distill.io import atomic_write_json, atomic_write_text, temp_path

LATEST = "latest"


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's torch.save, but to a temporary file renamed into place: a crash mid-write keeps
    the previous last.ckpt intact."""

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = temp_path(path)
        torch.save(checkpoint, tmp)
        tmp.replace(path)


# ----------------------------------------------------------------------------- run folders
def recipe_dir(root: Path, recipe_name: str) -> Path:
    return Path(root) / recipe_name


def new_run_dir(root: Path, recipe_name: str, run_name: str = "") -> Path:
    """A fresh run folder (a timestamp name unless given; -1, -2... if it already exists). A named folder
    that already holds a checkpoint is refused (resume=true continues it); one that holds none, a start
    that never saved, is emptied and reused."""
    base = recipe_dir(root, recipe_name)
    if run_name:
        run = base / run_name
        if any(run.glob("*.ckpt")):
            raise ConfigError(f"key 'output.run_name': run {run} exists and has checkpoints; pass resume=true to "
                              "continue it, or name another run")
        if run.is_dir():
            shutil.rmtree(run)
        run.mkdir(parents=True)
        return run
    name, i = time.strftime("%Y%m%d-%H%M%S"), 0
    base.mkdir(parents=True, exist_ok=True)
    while True:  # mkdir claims the name atomically: runs started in the same second by other processes differ
        run = base / (name if i == 0 else f"{name}-{i}")
        try:
            run.mkdir()
            return run
        except FileExistsError:
            i += 1


def set_latest(run_dir: Path) -> None:
    """Point <recipe>/latest at run_dir: a relative symlink swapped in atomically, else a text file."""
    link = run_dir.parent / LATEST
    tmp = run_dir.parent / f".{LATEST}.{os.getpid()}.tmp"
    try:
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        os.symlink(run_dir.name, tmp)
        os.replace(tmp, link)
    except OSError:
        if link.is_symlink():
            link.unlink()
        atomic_write_text(link, run_dir.name + "\n")


def latest_run(root: Path, recipe_name: str) -> Path | None:
    """The run folder <recipe>/latest points at, or None when there is none."""
    link = recipe_dir(root, recipe_name) / LATEST
    if link.is_symlink() or link.is_dir():
        return link.resolve() if link.resolve().is_dir() else None
    if link.is_file():
        run = link.parent / link.read_text().strip()
        return run if run.is_dir() else None
    return None


def resolve_checkpoint(name_or_path: str, root: Path, what: str = "checkpoint") -> Path:
    """A checkpoint path, or a recipe name -> <root>/<recipe>/latest/best.ckpt (last.ckpt if no best)."""
    p = Path(name_or_path)
    if p.is_file():
        return p
    if p.suffix in (".ckpt", ".pt"):
        raise ConfigError(f"{what} {name_or_path!r}: file not found")
    run = latest_run(root, name_or_path)
    if run is None:
        raise ConfigError(f"{what} {name_or_path!r}: no such file and no run of recipe {name_or_path!r} under "
                          f"{root} (train it first: distill train {name_or_path})")
    for name in ("best.ckpt", "last.ckpt"):
        if (run / name).is_file():
            return run / name
    raise ConfigError(f"{what} {name_or_path!r}: run {run} has no best.ckpt or last.ckpt")


# ----------------------------------------------------------------------------- the run record
def git_sha(cwd: Path | None = None) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd or Path(__file__).parent, capture_output=True,
                             text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("distill", "torch", "lightning", "torchmetrics", "numpy", "opencv-python-headless", "omegaconf",
                "wandb", "onnx", "onnxruntime"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def record_resume(run_dir: Path, changes: dict, data_report: dict) -> None:
    """Append a resume that changed the run's data or model (``resume_force``) to run.json's "resumes"."""
    path = run_dir / "run.json"
    record = json.loads(path.read_text()) if path.is_file() else {}
    record.setdefault("resumes", []).append({"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "changes": changes,
                                             "data_report": data_report})
    atomic_write_json(path, record)


def run_record(recipe: dict, seed: int, data_hash: str, extra: dict | None = None) -> dict:
    return {
        "recipe_name": recipe.get("name", ""),
        "seed": seed,
        "data_hash": data_hash,
        "git_sha": git_sha(),
        "versions": versions(),
        "platform": platform.platform(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
        **(extra or {}),
    }
