"""What `distill train` prints: a banner before it starts, its progress, and each validation.

    banner(cfg, dm, facts, teacher, trainer, run_dir) -> str   recipe, data (samples used, skipped), model size and
                                                              cost, teacher (path, sha256), device, precision, folder
    StepProgress(max_steps, every)                            progress by optimiser step (what max_steps counts):
                                                              a live bar on a terminal, one plain line every
                                                              ``every`` steps in a log (CI, SLURM, a pipe)
    quiet_libraries()                                         Lightning's and torch's chatter off the console

Lines look like::

    step 40/200 (20%)  loss 0.0213  6.1 it/s  eta 0:00:26
    validation at step 200: nme 0.0734 (best 0.0734)
"""

from __future__ import annotations

import logging
import sys
import time
import warnings
from datetime import timedelta
from pathlib import Path

from lightning.pytorch.callbacks import ProgressBar

from distill.config import RecipeConfig


def banner(cfg: RecipeConfig, dm, facts: dict, teacher: dict | None, trainer, run_dir: Path) -> str:
    """The lines printed before training starts."""
    def used(split: str) -> str:
        report = dm.reports.get(split)
        skipped = f", {report.skipped} skipped" if report is not None and report.skipped else ""
        dataset = getattr(dm, f"{split}_dataset", None)
        return f"{split} {len(dataset) if dataset is not None else 0}{skipped}"

    lines = [
        f"recipe   {cfg.name} ({cfg.task}), seed {cfg.seed}, {cfg.trainer.max_steps} steps",
        f"data     {cfg.data.format} {cfg.data.root or '(given samples)'}: {used('train')}, {used('val')} samples; "
        f"{dm.schema.name} ({dm.schema.num_points} points), {cfg.data.crop_size} px crops",
        f"model    {cfg.model.name} {dict(cfg.model.args)}: {facts['params'] / 1e6:.3f} M params, "
        f"{facts['bytes'] / 1024:.0f} KiB, {facts['gflops']:.3f} GFLOPs/face",
    ]
    if teacher:
        lines.append(f"teacher  {teacher['path']} (sha256 {teacher['sha256'][:16]})")
    device = trainer.strategy.root_device
    lines.append(f"device   {device.type}{'' if device.index is None else f':{device.index}'} x "
                 f"{trainer.num_devices}, precision {trainer.precision}")
    lines.append(f"run      {run_dir}")
    return "\n".join(lines)


def quiet_libraries() -> None:
    """Lightning's device lines and advertising tip, and warnings that say nothing about the user's run, off
    the console (the banner says the device; short runs are fine with fewer batches than the log interval)."""
    logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)
    logging.getLogger("lightning.fabric.utilities.rank_zero").setLevel(logging.WARNING)
    logging.getLogger("lightning.pytorch.loggers.mlflow").setLevel(logging.ERROR)  # "Experiment ... Creating it"
    for message in (r".*isinstance\(treespec, LeafSpec\).*", r"The number of training batches .* is smaller than the "
                    r"logging interval", r".*exists and is not empty"):
        warnings.filterwarnings("ignore", message=message)


def _eta(seconds: float) -> str:
    return str(timedelta(seconds=int(max(seconds, 0))))


class StepProgress(ProgressBar):
    """Progress by global step against max_steps, with it/s, ETA and the current loss; validations as lines.

    On a terminal a rich bar (transient) with the validation lines above it; otherwise one line every
    ``every`` steps (and at the last), so a log shows the run moving."""

    def __init__(self, every: int = 0, live: bool | None = None):
        super().__init__()
        self.every = every
        self.live = sys.stdout.isatty() if live is None else live
        self._enabled = True
        self._bar = self._task = None
        self._start = self._start_step = 0
        self.best = None

    # ProgressBar's switches (Lightning turns bars off in sub-processes and while it sanity-checks)
    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def _print(self, line: str) -> None:
        if self._bar is not None:
            self._bar.console.print(line, highlight=False)
        else:
            print(line, flush=True)

    def on_train_start(self, trainer, pl_module) -> None:
        self._start, self._start_step = time.monotonic(), trainer.global_step
        total = trainer.max_steps if trainer.max_steps > 0 else None
        self.every = self.every or max(1, (total or 1000) // 20)
        if self._enabled and self.live and trainer.is_global_zero:
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(TextColumn("step {task.completed}/{task.total}"), BarColumn(),
                                 TextColumn("{task.fields[rate]} it/s"), TimeRemainingColumn(),
                                 TextColumn("loss {task.fields[loss]}"), transient=True)
            self._bar.start()
            self._task = self._bar.add_task("train", total=total, completed=trainer.global_step, rate="-", loss="-")

    def _state(self, trainer) -> tuple[str, float, str]:
        done = trainer.global_step - self._start_step
        rate = done / max(time.monotonic() - self._start, 1e-9)
        loss = trainer.progress_bar_metrics.get("loss")
        left = (trainer.max_steps - trainer.global_step) / rate if trainer.max_steps > 0 and rate > 0 else 0
        return ("-" if loss is None else f"{float(loss):.4g}"), rate, _eta(left)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if not self._enabled or not trainer.is_global_zero:
            return
        loss, rate, eta = self._state(trainer)
        step = trainer.global_step
        if self._bar is not None:
            self._bar.update(self._task, completed=step, rate=f"{rate:.2f}", loss=loss)
        elif step % self.every == 0 or step == trainer.max_steps:
            total = trainer.max_steps
            share = f" ({100 * step / total:.0f}%)" if total > 0 else ""
            self._print(f"step {step}/{total if total > 0 else '?'}{share}  loss {loss}  {rate:.2f} it/s  eta {eta}")

    def on_validation_end(self, trainer, pl_module) -> None:
        if not self._enabled or not trainer.is_global_zero or trainer.sanity_checking:
            return
        nme = trainer.callback_metrics.get("val/nme")
        if nme is None:
            return
        nme = float(nme)
        self.best = nme if self.best is None else min(self.best, nme)
        self._print(f"validation at step {trainer.global_step}: nme {nme:.4f} (best {self.best:.4f})")

    def on_train_end(self, trainer, pl_module) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
