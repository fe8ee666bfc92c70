"""Lanes: a study's trainings in parallel processes of one torch thread each.

A lane is a list of model names trained, exported and scored in order by one process (spawned, so no
torch thread pools are copied); a model that needs one another lane trains (``job.needs``) waits until the
parent has recorded that training (``job.wait_for``). Small models use
one thread far better than two (1.4x per step measured on the 2-core box), so two lanes on two cores beat
one process on both. The parent shows a progress bar per model and hears of every finished step through a
queue; a failure in any lane stops all of them with one :class:`~distill.errors.TrainingError`.

``job`` is any picklable object with ``out`` (a folder), ``steps(name)``, ``describe(name)``, ``needs(name)``,
``wait_for(name) -> ckpt``, ``run(name, ckpts, progress, callbacks) -> ckpt`` and
``finish(name, ckpt, threads) -> result``
(see :class:`distill.study.quickstart.TrainJob`).
"""

from __future__ import annotations

import os
import time
import traceback
from pathlib import Path

import lightning as L

from distill.errors import TrainingError, first_line
from distill.io import atomic_write_text


def default_jobs() -> int:
    """2 when this process may use 2 or more cores, else 1."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cores = os.cpu_count() or 1
    return 2 if cores >= 2 else 1


class _ReportSteps(L.Callback):
    """Sends ("step", name, global step) to the parent about twice a second."""

    def __init__(self, queue, name: str):
        self.queue, self.name, self.last = queue, name, 0.0

    def on_train_batch_end(self, trainer, *args) -> None:
        now = time.monotonic()
        if now - self.last > 0.5:
            self.last = now
            self.queue.put(("step", self.name, trainer.global_step))


def _lane(job, names: list[str], ckpts: dict[str, Path], queue) -> None:
    """One lane, in its own process: train, export and score ``names`` in order (skipping trainings
    already done), reporting to the parent through ``queue``."""
    name, stage = names[0], "training"
    try:
        for name in names:
            if name not in ckpts:
                stage = "training"
                for need in job.needs(name):
                    if need not in ckpts:
                        ckpts[need] = job.wait_for(need)
                queue.put(("start", name, 0))
                ckpts[name] = job.run(name, ckpts, progress=False, callbacks=[_ReportSteps(queue, name)])
                queue.put(("trained", name, str(ckpts[name])))
            stage = "export or evaluation of"
            queue.put(("finishing", name, 0))
            queue.put(("done", name, job.finish(name, ckpts[name], threads=1)))
    except BaseException as e:  # noqa: BLE001 -- whatever it was, the parent must hear of it
        queue.put(("error", name, (stage, f"{type(e).__name__}: {first_line(e)}",
                                   traceback.format_exc())))
    queue.put(("lane_end", name, 0))


def run_lanes(job, lanes: list[list[str]], ckpts: dict[str, Path], trained, finished, console,
              progress: bool = True) -> None:
    """Run each lane in its own process, all at once. Here, in this process, ``trained(name, ckpt)`` is
    called as each training ends and ``finished(name, result)`` when its export and scores are done. A
    failure in one lane stops them all and raises TrainingError."""
    import multiprocessing as mp
    import queue as queue_mod

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    if not lanes:
        return
    ctx = mp.get_context("spawn")  # fork would copy this process's torch thread pools and locks
    events = ctx.Queue()
    procs = [ctx.Process(target=_lane, args=(job, lane, dict(ckpts), events), name=f"lane-{lane[0]}")
             for lane in lanes]
    bars = Progress(TextColumn("{task.description:<22}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, disable=not progress)
    tasks = {n: bars.add_task(n, total=job.steps(n), start=False, completed=job.steps(n) if n in ckpts
                              else 0) for lane in lanes for n in lane}
    console.print("[bold]train, export, evaluate[/bold]: " + " | ".join(" -> ".join(lane) for lane in lanes) +
                  f" ({len(lanes)} processes, one thread each)")
    failure, ended = None, False
    try:
        with bars:
            for p in procs:
                p.start()
            running = len(procs)
            while running and failure is None:
                try:
                    kind, name, value = events.get(timeout=2.0)
                except queue_mod.Empty:
                    dead = [p for p in procs if p.exitcode not in (None, 0)]
                    if dead:
                        failure = f"{dead[0].name} died with exit code {dead[0].exitcode}"
                    continue
                if kind == "start":
                    bars.start_task(tasks[name])
                    if not progress:
                        console.print(f"[bold]train:{name}[/bold] ({job.describe(name)})")
                elif kind == "step":
                    bars.update(tasks[name], completed=value)
                elif kind == "trained":
                    bars.update(tasks[name], completed=job.steps(name))
                    trained(name, Path(value))
                elif kind == "finishing":
                    bars.start_task(tasks[name])
                    bars.update(tasks[name], description=f"{name} (export, evaluate)")
                    if not progress:
                        console.print(f"[bold]export + evaluate[/bold] {name} -> models/{name}.onnx")
                elif kind == "done":
                    bars.update(tasks[name], description=name)
                    finished(name, value)
                elif kind == "error":
                    log = job.out / f"{name}.error.log"
                    atomic_write_text(log, value[2])
                    failure = f"{value[0]} {name} failed: {value[1]} (traceback: {log})"
                elif kind == "lane_end":
                    running -= 1
        ended = failure is None
    finally:  # on a failure or an interrupt (Ctrl-C) the other lane stops too; a rerun resumes both
        for p in procs:
            if not ended and p.is_alive():
                p.terminate()
            p.join()
    if failure is not None:
        raise TrainingError(failure)
