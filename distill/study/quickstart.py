"""`distill quickstart`: the whole study on SynthFace, on a CPU, in one command.

generate SynthFace (train / test / stability) -> for each of the teacher, the student from scratch, the
student distilled from the teacher, the ConvDW regressor with L2, with Wing and distilled from the teacher:
train, export to ONNX
(parity checked), evaluate the ONNX file (the artefact a user ships) and its stability -> benchmark ->
report. On 2+ cores the models go through two processes at once (see LANES).

Every step records itself in ``DIR/quickstart_state.json`` when it finishes; run the same command
again with the same ``--out`` and finished steps are skipped, an interrupted training resumes from
its ``last.ckpt``. The seed is the recipes' (fixed), so a rerun reproduces the study.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from rich.console import Console

from distill.checkpoint import load_model
from distill.data.formats import SUBSET_NAMES, load_samples
from distill.data.show import prediction_grid
from distill.data.synthface import generate
from distill.data.transforms import box_from_points
from distill.deploy.bench import bench_models
from distill.deploy.export import export
from distill.deploy.predictor import LandmarkPredictor
from distill.deploy.runtime import load_backend
from distill.errors import ConfigError
from distill.evaluate import predict_samples
from distill.io import atomic_write_text, read_image, remove_stale_temps, write_image
from distill.metrics import LandmarkNME, frame_jitter, plot_ced, stability_std
from distill.models.facts import model_facts
from distill.study.lanes import default_jobs, run_lanes
from distill.study.report import (
    MODEL_NAMES,
    check_claims,
    machine_description,
    plot_training_curves,
    write_report,
    write_results_json,
)
from distill.training import train

# name -> recipe, in the order they train one after another: the distilled student needs the teacher.
STUDY: dict[str, str] = {
    "teacher": "synthface/teacher",
    "student_scratch": "synthface/student",
    "student_from_teacher": "synthface/student_from_teacher",
    "regressor_l2": "synthface/regressor_l2",
    "regressor_wing": "synthface/regressor_wing",
    "regressor_from_teacher": "synthface/regressor_from_teacher",
}
# model -> the model it is distilled from (trained first; in another lane, the lane waits for it)
NEEDS: dict[str, str] = {"student_from_teacher": "teacher", "regressor_from_teacher": "teacher"}


# With two or more cores the trainings run in two processes ("lanes") of one torch thread each: the
# teacher and then the student it teaches on one core, the three models that need no teacher on the
# other, which then waits for the teacher to distil the regressor beside the student. Small models use one
# thread far better than two (measured 1.4x per step on the 2-core box), and the teacher's lane is the
# critical path either way.
LANES: tuple[tuple[str, ...], ...] = (("teacher", "student_from_teacher"),
                                       ("student_scratch", "regressor_l2", "regressor_wing", "regressor_from_teacher"))


@dataclass(frozen=True)
class Budget:
    """How big the study is. ``steps`` are optimiser steps per model; ``model_args`` shrink models (tests)."""

    num_train: int
    num_test: int
    stability: int  # renders per stability group
    steps: dict[str, int]
    val_every: int
    bench_repeats: int
    model_args: dict[str, dict] = field(default_factory=dict)
    # ONNX vs torch parity bound (crop px). Models trained only a few steps have ragged heatmaps whose
    # DARK Newton step amplifies float noise past 1e-3 px; trained models stay far below it.
    parity_tol: float = 1e-3
    bench_fast: bool = False  # bench with one round, few repeats and a small batch (smoke runs)
    # further recipe overrides applied to every model. The recipes train without augmentation, so every
    # epoch sees the same crops and caching them removes the data loading from all epochs but the first.
    # One torch thread: on a 2-core box that anything else is using, 2 threads ran 8-50x slower.
    extra: tuple[str, ...] = ("data.cache=true", "trainer.num_threads=1")


BUDGETS: dict[str, Budget] = {
    # Sized to finish within ~15 minutes on 2 CPU cores, where the teacher's lane (teacher, then the
    # distilled student) is the critical path: the teacher is the recipe's Hourglass at 96 channels
    # instead of 128 (~0.4 s a step here against ~0.6 s), and the students are 1x32 instead of the
    # recipes' 1x48, which keeps them at ~1/12 of that teacher's FLOPs (the recipes' pairing is 1x48 vs
    # 2x128, also ~1/12); 1000 steps, because a teacher trained 600 steps (0.20 NME) taught the student
    # nothing that its own ground truth did not. Measured: benchmarks/RESULTS.md.
    "small": Budget(num_train=3000, num_test=500, stability=8,
                    steps={"teacher": 1000, "student_scratch": 1500, "student_from_teacher": 1500,
                           "regressor_l2": 2500, "regressor_wing": 2500, "regressor_from_teacher": 2500},
                    val_every=500, bench_repeats=30,
                    model_args={"teacher": {"channels": 96}, "student_scratch": {"channels": 32},
                                "student_from_teacher": {"channels": 32}}),
    "full": Budget(num_train=10000, num_test=1000, stability=16,
                   steps={"teacher": 8000, "student_scratch": 12000, "student_from_teacher": 12000,
                          "regressor_l2": 12000, "regressor_wing": 12000, "regressor_from_teacher": 12000},
                   val_every=1000, bench_repeats=100),
}


class State:
    """The steps already done, kept in a JSON file that is rewritten atomically after each step."""

    def __init__(self, path: Path):
        self.path = path
        self.data = json.loads(path.read_text()) if path.is_file() else {"done": {}}

    def done(self, step: str) -> bool:
        return step in self.data["done"]

    def get(self, step: str):
        return self.data["done"].get(step)

    def mark(self, step: str, value=True) -> None:
        self.data["done"][step] = value
        atomic_write_text(self.path, json.dumps(self.data, indent=2, default=str))


def _json_model(name: str, args: dict) -> list[str]:
    return [f"model.args.{k}={v}" for k, v in args.items()]


def quickstart(out: str | Path = "quickstart_out", budget: str | Budget = "small", seed: int | None = None,
               logger: str = "csv", progress: bool = True, jobs: int | None = None) -> Path:
    """Run the study into ``out`` and return the path of ``report.md``.

    budget: a name in :data:`BUDGETS` or a :class:`Budget` (e.g. a shrunk copy for a smoke run).
    seed: None keeps each recipe's own seed (the study's fixed seed); an int overrides all of them.
    logger: csv (default here: the study writes its curves from it), wandb (offline) or none.
    jobs: trainings run at once, each in its own process on one thread (default: 2 when the machine has
    2 or more cores, else 1; 1 trains in this process, one model after another). Results do not depend on it.
    """
    if isinstance(budget, Budget):
        b, budget = budget, "custom"
    elif budget in BUDGETS:
        b = BUDGETS[budget]
    else:
        raise ConfigError(f"--budget {budget!r}: use one of {', '.join(BUDGETS)}")
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(out)  # a killed study's half-written state file
    console = Console()
    state = State(out / "quickstart_state.json")
    started = time.time() - float(state.data.get("elapsed_s", 0.0))
    data_root = out / "data"

    steps = ["data"] + [f"{k}:{n}" for n in STUDY for k in ("train", "model")] + ["bench", "report"]
    console.rule(f"distill quickstart ({budget}) -> {out}")
    console.print("Steps: " + ", ".join(f"[green]{s}[/green]" if state.done(s) else s for s in steps))

    # ------------------------------------------------------------------ data
    if not state.done("data"):
        console.print(f"[bold]data[/bold]: SynthFace {b.num_train} train / {b.num_test} test / stability x{b.stability}")
        generate(data_root, num=b.num_train, seed=0, size=128, workers=2, num_test=b.num_test,
                 stability=b.stability, progress=progress, overwrite=True)  # the study owns its data folder
        state.mark("data")

    # ------------------------------------------------------------------ train -> export -> evaluate
    # One model at a time per lane: each is exported (parity checked) and scored on its ONNX file as soon
    # as it is trained, so the other lane's exports overlap the teacher's training.
    ckpts: dict[str, Path] = {n: Path(state.get(f"train:{n}")) for n in STUDY if state.done(f"train:{n}")}
    results: dict[str, dict] = {n: state.get(f"model:{n}") for n in STUDY if state.done(f"model:{n}")}

    def trained(name: str, ckpt: Path) -> None:
        ckpts[name] = ckpt
        state.data["elapsed_s"] = time.time() - started
        state.mark(f"train:{name}", str(ckpt))

    def finished(name: str, result: dict) -> None:
        results[name] = result
        state.data["elapsed_s"] = time.time() - started
        state.mark(f"model:{name}", result)

    jobs = default_jobs() if jobs is None else int(jobs)
    if jobs < 1:
        raise ConfigError(f"--jobs {jobs}: must be at least 1")
    job = TrainJob(b, out, data_root, seed, logger)
    if jobs == 1:
        for name in STUDY:
            if name in results:
                continue
            if name not in ckpts:
                console.print(f"[bold]train:{name}[/bold] ({STUDY[name]}, {b.steps[name]} steps)")
                trained(name, job.run(name, ckpts, progress=progress))
            console.print(f"[bold]export + evaluate[/bold] {name} -> models/{name}.onnx")
            finished(name, job.finish(name, ckpts[name]))
    else:
        lanes = [[n for n in lane if n not in results] for lane in LANES]
        run_lanes(job, [lane for lane in lanes if lane], ckpts, trained, finished, console, progress)
    onnx_paths = {n: job.onnx_path(n) for n in STUDY}
    parity = {n: results[n]["parity"] for n in STUDY}
    evals = {n: results[n]["eval"] for n in STUDY}

    # ------------------------------------------------------------------ bench
    if not state.done("bench"):
        console.print("[bold]bench[/bold]: end-to-end latency, one thread, ONNX Runtime")
        rows = bench_models([onnx_paths[n] for n in STUDY], repeats=b.bench_repeats, fast=b.bench_fast)
        facts = {}
        for name in STUDY:
            model, _ = load_model(ckpts[name])
            facts[name] = model_facts(model)
        state.mark("bench", {n: {"row": r, "facts": facts[n]} for n, r in zip(STUDY, rows)})
    bench = state.get("bench")

    # ------------------------------------------------------------------ report
    state.data["elapsed_s"] = time.time() - started
    report = _write_outputs(out, b, budget, ckpts, onnx_paths, parity, evals, bench,
                            seed, total_minutes=(time.time() - started) / 60)
    state.mark("report", str(report))
    console.print(f"[bold green]done[/bold green]: {report}")
    return report


@dataclass(frozen=True)
class TrainJob:
    """How the study trains one of its models (picklable: lanes run it in other processes)."""

    budget: Budget
    out: Path
    data_root: Path
    seed: int | None
    logger: str

    def run(self, name: str, ckpts: dict[str, Path], progress: bool = True, callbacks=()) -> Path:
        """Train ``name`` (resuming its run when a last.ckpt exists) -> its best checkpoint."""
        b, recipe = self.budget, STUDY[name]
        overrides = [f"data.root={self.data_root}", f"output.root={self.out / 'checkpoints'}",
                     "output.run_name=quickstart", f"trainer.max_steps={b.steps[name]}",
                     f"trainer.val_every_n_steps={min(b.val_every, b.steps[name])}", f"logging.logger={self.logger}",
                     f"logging.progress={str(progress).lower()}", *b.extra, *_json_model(name, b.model_args.get(name, {}))]
        if self.seed is not None:
            overrides.append(f"seed={self.seed}")
        if name in NEEDS:
            overrides.append(f"teacher.ckpt={ckpts[NEEDS[name]]}")
        run_dir = self.out / "checkpoints" / recipe / "quickstart"
        if (run_dir / "last.ckpt").is_file():
            overrides.append("resume=true")
        run_dir = train(recipe, overrides, callbacks=callbacks)
        best = run_dir / "best.ckpt"
        return best if best.is_file() else run_dir / "last.ckpt"

    def steps(self, name: str) -> int:
        return self.budget.steps[name]

    def needs(self, name: str) -> list[str]:
        """The models ``name`` is trained from (lanes wait for those another lane trains)."""
        return [NEEDS[name]] if name in NEEDS else []

    def wait_for(self, name: str, poll_s: float = 2.0) -> Path:
        """The checkpoint of ``name`` once the study has recorded its training (another lane trains it; if
        that lane fails, the parent stops this one)."""
        state = self.out / "quickstart_state.json"
        while True:
            done = json.loads(state.read_text())["done"] if state.is_file() else {}
            if f"train:{name}" in done:
                return Path(done[f"train:{name}"])
            time.sleep(poll_s)

    def describe(self, name: str) -> str:
        return f"{STUDY[name]}, {self.budget.steps[name]} steps"

    def onnx_path(self, name: str) -> Path:
        return self.out / "models" / f"{name}.onnx"

    def finish(self, name: str, ckpt: Path, threads: int | None = None) -> dict:
        """Export ``name`` to ONNX (parity checked against ``ckpt``) and score the ONNX file, the artefact
        a user ships -> {"parity": max difference in crop px, "eval": evaluate_study_model(...)}."""
        res = export(ckpt, "onnx", self.onnx_path(name), calib_data=str(self.data_root), check=True,
                     log=lambda *a, **k: None, tol_px=self.budget.parity_tol, threads=threads)
        parity = max(res.parity_px.values()) if res.parity_px else float("nan")
        return {"parity": parity, "eval": evaluate_study_model(self.onnx_path(name), self.data_root, threads=threads)}


def evaluate_study_model(model_path: Path, data_root: Path, threads: int | None = None) -> dict:
    """NME / FR / AUC overall and per subset on the test split, per-image NMEs (for CED), stability."""
    backend = load_backend(model_path, threads)
    test, _ = load_samples("synthface", data_root, split="test")
    pred = predict_samples(backend, test)
    metric = LandmarkNME(backend.schema)
    metric.update(pred["pred"], pred["points"], subsets=pred["subsets"], norm=pred["norm"])
    results = {k: float(v) for k, v in metric.compute().items() if not isinstance(v, torch.Tensor)}
    results["per_image_nme"] = [float(v) for v in metric.per_image_nme()]

    stab, _ = load_samples("synthface", data_root, split="stability")
    if stab:
        sp = predict_samples(backend, stab)
        resid = (sp["pred"] - sp["points"]).numpy()  # (N, K, 2) crop px; the true shift cancels out
        groups: dict[tuple, list[int]] = {}
        for i, s in enumerate(stab):
            groups.setdefault((s.attributes.get("stability_kind", "static"), s.attributes.get("group")), []).append(i)
        static = [sorted(ix, key=lambda i: stab[i].attributes.get("frame") or 0)
                  for (kind, _), ix in groups.items() if kind == "static"]
        if static:
            f = min(len(ix) for ix in static)
            res = np.stack([resid[ix[:f]] for ix in static])  # (G, F, K, 2)
            norms = np.array([float(sp["norm"][ix].mean()) for ix in static])
            results["stability"] = float(stability_std(torch.from_numpy(res), torch.from_numpy(norms)))
        videos = [sorted(ix, key=lambda i: stab[i].attributes.get("frame") or 0)
                  for (kind, _), ix in groups.items() if kind == "video"]
        if videos:
            jit = [float(frame_jitter(sp["pred"][ix], sp["points"][ix], sp["norm"][ix])) for ix in videos]
            results["jitter"] = float(np.mean(jit))
    results.setdefault("stability", float("nan"))
    return results


def _write_outputs(out: Path, b: Budget, budget: str, ckpts, onnx_paths, parity, evals, bench, seed,
                   total_minutes: float) -> Path:
    subset_names = list(SUBSET_NAMES)
    models = []
    for name in MODEL_NAMES:
        e, row, facts = evals[name], bench[name]["row"], bench[name]["facts"]
        models.append({
            "name": name, "params": int(facts["params"]), "bytes": int(facts["bytes"]), "gflops": float(facts["gflops"]),
            "faces_per_s": float(row.get("e2e_ort_faces_s") or float("nan")),
            "latency_ms": float(row.get("e2e_ort_ms_p50") or float("nan")),
            "nme": e["nme"], "fr@0.10": e["fr@0.10"], "auc@0.10": e["auc@0.10"],
            "fr@0.08": e.get("fr@0.08"), "auc@0.08": e.get("auc@0.08"),
            "stability": e.get("stability", float("nan")), "jitter": e.get("jitter"),
            "subsets": {s: e[f"nme/{s}"] for s in subset_names if f"nme/{s}" in e},
            "onnx_max_diff_px": parity.get(name, float("nan")),
            "onnx_bytes": onnx_paths[name].stat().st_size,
            "ckpt": str(Path(ckpts[name]).relative_to(out)), "onnx": str(onnx_paths[name].relative_to(out)),
        })
    by_name = {m["name"]: m for m in models}
    claims = check_claims(by_name)
    info = {"budget": budget, "seed": "recipe" if seed is None else seed, "num_train": b.num_train,
            "num_test": b.num_test, "image_size": 128, "machine": machine_description(),
            "total_minutes": total_minutes}

    images = {}
    plot_ced({n: torch.tensor(evals[n]["per_image_nme"]) for n in MODEL_NAMES}, out / "ced.png")
    images["CED curves (test set)"] = "ced.png"
    plot_training_curves({n: _metrics_csv(ckpts[n]) for n in MODEL_NAMES}, out / "training_curves.png")
    images["Training curves"] = "training_curves.png"
    _hard_faces_grid(out / "hard_faces.png", out / "data", {n: out / "models" / f"{n}.onnx" for n in
                                                           ("teacher", "student_from_teacher", "regressor_wing",
                                                            "regressor_from_teacher")})
    images["Predictions (magenta crosses) vs truth (green dots) on hard test faces, a row per model"] = \
        "hard_faces.png"
    write_results_json(out, models, {"claims": claims, "info": info})
    return write_report(out, models, claims, subset_names, info, images)


def _metrics_csv(ckpt: Path) -> Path | None:
    hits = sorted(Path(ckpt).parent.rglob("metrics.csv"))
    return hits[-1] if hits else None


def _hard_faces_grid(png: Path, data_root: Path, models: dict[str, Path], per_model: int = 6) -> None:
    """Rows: models; columns: the first test faces that carry pose or occlusion flags."""
    test, _ = load_samples("synthface", data_root, split="test")
    hard = [s for s in test if s.attributes.get("pose") or s.attributes.get("occlusion")][:per_model] or test[:per_model]
    images, truth, preds = [], [], []
    for name, path in models.items():
        predictor = LandmarkPredictor(path)
        for s in hard:
            img = read_image(s.image_path)
            box = s.box if s.box is not None else box_from_points(s.points)
            face = predictor.predict(img, [box])[0]
            images.append(img)
            truth.append(s.points)
            preds.append(face.points)
    labels = [name if i % len(hard) == 0 else "" for i, name in enumerate(n for n in models for _ in hard)]
    write_image(png, prediction_grid(images, truth, preds, cols=len(hard), cell=160, labels=labels))

