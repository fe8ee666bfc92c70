"""Does distillation earn its place? Teacher vs student from scratch vs distilled student on SynthFace.

    python benchmarks/kd_study.py                                   # ~47 min on 2 CPU cores
    python benchmarks/kd_study.py --budget full --device cuda
    python benchmarks/kd_study.py --teacher T.ckpt --data DIR --only scratch kd_feat   # reuse a teacher
    python benchmarks/kd_study.py ... --student student_lean                         # the lean student
    python benchmarks/kd_study.py ... --student regressor --main auto                # ConvDW from the teacher
    python benchmarks/kd_study.py ... --set model.args.block=depthwise model.args.channels=64  # any other

Runs are independent once the teacher exists, so they go to ``--jobs`` processes (default 2) of one
torch thread each: while the teacher trains, the other process trains the runs that need no teacher
(scratch, semi_scratch, FPD's scratch half). On the 2-core box one thread per process beats two
threads in one process by ~1.4x for these small models.

Every student trains for the SAME number of optimiser steps (a KD fine-tune of a scratch student
counts the scratch steps too) and is scored on two SynthFace sets: a validation set generated with another
seed (``--val-data``, default: seed 1, as many faces as the test split), on which variants are CHOSEN, and
the test split of ``--data``, which the table REPORTS (NME, inter-ocular). The main comparison (scratch vs
``--main``) runs ``--seeds`` seeds; the ablation and the semi-supervised rows run ``--ablation-seeds``
(default 1), which is what fits 2,500 steps per student into an hour on 2 cores. ``--main auto`` first runs
seed 0 of every KD variant, takes the one with the lowest validation NME, and only then runs the other
seeds of it and of scratch.

Students (``--student``): the recipes' heatmap students (``student``, ``student_lean``: synthface/STUDENT and
synthface/STUDENT_from_teacher) or the ConvDW coordinate regressor (``regressor``: synthface/regressor_wing
and synthface/regressor_from_teacher, where output KD means the teacher's decoded points).

    teacher           synthface/teacher (2x128; trained once, seed 0: the seeds vary the students; the
                      students are the recipes' (synthface/student or --student), reshaped by --set)
    scratch           synthface/student (--student): ground truth only        (ablation: GT only)
    kd_out            + output KD (FPD: MSE to the teacher's last-stack heatmaps)
    kd_feat           + feature KD (hints on the recipe's tap pairs) = the shipped student_from_teacher
    kd_both           + both
    fpd_finetune      scratch for half the steps, then the shipped KD recipe for the other half
    semi_scratch      only the small labelled subset, ground truth
    semi_kd           the labelled subset + the rest of the training images WITHOUT labels: the shipped KD
                      recipe plus output KD (on an unlabelled image only the teacher's heatmaps can teach
                      the student's heatmap head; feature hints alone do not reach it)

Results: a rich table (NME mean +- std over seeds, ratio to the teacher, FLOPs ratio) and a JSON file.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from distill.evaluate import evaluate  # noqa: E402
from distill.training import train  # noqa: E402

BUDGETS = {
    # faces: training images; steps: optimiser steps of the teacher and of EVERY student; labelled: the
    # small labelled subset of the semi-supervised setting (the other training images lose their labels)
    "small": dict(faces=3000, test=500, teacher_steps=1200, student_steps=2500, labelled=300, val_every=500),
    "full": dict(faces=10000, test=1000, teacher_steps=8000, student_steps=8000, labelled=1000, val_every=1000),
}
# --student -> (the recipe trained from scratch, the recipe that distils it)
STUDENTS = {"student": ("synthface/student", "synthface/student_from_teacher"),
            "student_lean": ("synthface/student_lean", "synthface/student_lean_from_teacher"),
            "regressor": ("synthface/regressor_wing", "synthface/regressor_from_teacher")}
# ablation rows: the KD recipe with the KD terms switched on / off (GT only = scratch)
VARIANTS = {
    "kd_out": ["loss.w_out=1", "loss.w_feat=0"],
    "kd_feat": ["loss.w_out=0", "loss.w_feat=1"],
    "kd_both": ["loss.w_out=1", "loss.w_feat=1"],
}


def common(args, b: dict, data: Path, out: Path) -> list[str]:
    return [f"data.root={data}", f"output.root={out}", "logging.logger=none", "logging.progress=false",
            f"trainer.val_every_n_steps={b['val_every']}", f"trainer.accelerator={args.device}", "trainer.devices=1",
            "data.val_fraction=0.1", f"data.num_workers={args.workers}", f"trainer.num_threads={args.threads}",
            "data.cache=true"]


def run_and_score(recipe: str, overrides: list[str], data: Path, val_data: Path,
                  then: tuple | None = None) -> tuple[float, float, Path, float]:
    """Train, then score -> (test NME, validation NME, run folder, seconds). ``then``: (recipe, overrides) of
    a second run that starts from this one's best checkpoint (FPD's fine-tune), scored instead."""
    t = time.time()
    run = train(recipe, overrides, quiet=True)
    if then is not None:
        run = train(then[0], list(then[1]) + [f"distill.student_init={run / 'best.ckpt'}"], quiet=True)
    seconds = time.time() - t
    test = evaluate(run / "best.ckpt", data, fmt="synthface", split="test", log=lambda *a: None)["nme"]
    val = evaluate(run / "best.ckpt", val_data, fmt="synthface", split="test", log=lambda *a: None)["nme"]
    return test, val, run, seconds


def unlabelled_folder(data: Path, labelled: int, work: Path, size: int = 128) -> Path:
    """The 'large unlabelled set': every training face after the first ``labelled`` ones (the reader
    sorts files, so data.max_samples keeps exactly the first ones), saved WITHOUT its points as the
    crop a face detector would give (the face box plus the usual margin), so an unlabelled image is
    framed like a labelled crop. The labels are only used here to stand in for that detector."""
    from distill.data.formats import load_samples
    from distill.data.transforms import box_from_points, crop_matrix, warp

    folder = work / f"{data.name}_unlabelled_{labelled}"
    if not folder.is_dir():
        import cv2

        tmp = folder.with_name(folder.name + ".tmp")
        tmp.mkdir(parents=True, exist_ok=True)
        samples, _ = load_samples("synthface", data, split="train")
        for s in samples[labelled:]:
            box = s.box if s.box is not None else box_from_points(s.points)
            crop = warp(cv2.imread(str(s.image_path)), crop_matrix(box, size, 0.25), size)
            cv2.imwrite(str(tmp / Path(s.image_path).name), crop)
        tmp.rename(folder)
    return folder


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", choices=sorted(BUDGETS), default="small")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--seeds", type=int, default=3, help="seeds of the main comparison (scratch, kd_feat)")
    ap.add_argument("--ablation-seeds", type=int, default=1, help="seeds of the other rows (at most --seeds)")
    ap.add_argument("--work", default="runs/kd_study", help="data and checkpoints go here (git-ignored)")
    ap.add_argument("--out", default="runs/kd_study/kd_study.json", help="the results as JSON")
    ap.add_argument("--workers", type=int, default=0, help="data loader workers")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads per process (1 is fastest on 2 cores)")
    ap.add_argument("--jobs", type=int, default=2, help="trainings at once, each in its own process")
    ap.add_argument("--only", nargs="*", default=None, help="run only these student rows (e.g. scratch kd_feat)")
    ap.add_argument("--data", default=None, help="an existing SynthFace folder (default: generate one in --work)")
    ap.add_argument("--teacher", default=None, help="reuse this teacher checkpoint instead of training one")
    ap.add_argument("--student", default="student", choices=sorted(STUDENTS),
                    help="which student: its scratch and distilling recipes (STUDENTS)")
    ap.add_argument("--main", default="kd_feat", choices=["auto", *VARIANTS],
                    help="the KD row run with --seeds seeds beside scratch; auto: the lowest validation NME of seed 0")
    ap.add_argument("--val-data", default=None, help="the SynthFace set variants are chosen on (default: generate "
                                                     "one with seed 1 in --work); its test split is scored")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                    help="recipe overrides for every student run, e.g. model.args.channels=64 (another shape)")
    for key in ("teacher_steps", "student_steps", "labelled"):
        ap.add_argument(f"--{key.replace('_', '-')}", type=int, default=None, help=f"override the budget's {key}")
    args = ap.parse_args(argv)
    args.started = time.time()
    b = dict(BUDGETS[args.budget])
    for key in ("teacher_steps", "student_steps", "labelled"):
        if getattr(args, key):
            b[key] = getattr(args, key)
    b["val_every"] = min(b["val_every"], b["student_steps"], b["teacher_steps"])
    work = Path(args.work).resolve()
    data = Path(args.data).resolve() if args.data else work / f"synthface_{b['faces']}"
    if args.data:
        b["faces"] = sum(1 for p in (data / "train").iterdir() if p.suffix == ".pts")
    from distill.data.synthface import generate

    if not data.is_dir():
        generate(data, num=b["faces"], seed=0, size=128, workers=2, num_test=b["test"], progress=False)
    val_data = Path(args.val_data).resolve() if args.val_data else work / f"synthface_val_seed1_{b['test']}"
    if not val_data.is_dir():
        generate(val_data, num=0, seed=1, size=128, workers=2, num_test=b["test"], progress=False)
    device = "gpu" if args.device == "cuda" else "cpu"
    args.device = device
    ckpts = work / f"ckpts_{args.budget}"
    base = common(args, b, data, ckpts)
    student = base + list(args.set)
    scratch_recipe, kd_recipe = STUDENTS[args.student]
    steps = lambda n: [f"trainer.max_steps={n}"]  # noqa: E731
    main_rows = ["scratch"] + ([] if args.main == "auto" else [args.main])

    def wanted(name: str, seed: int) -> bool:
        seeds = args.seeds if name in main_rows else min(args.seeds, args.ablation_seeds)
        if args.main == "auto" and seed > 0 and name != "scratch" and len(main_rows) == 1:
            return False  # the other seeds wait for the choice
        return (args.only is None or name in args.only) and seed < seeds
    unlabelled = unlabelled_folder(data, b["labelled"], work)
    semi = [f"data.max_samples={b['labelled']}"]  # max_samples keeps the first files, which unlabelled_folder leaves out
    frac = 1.0 - b["labelled"] / b["faces"]
    half = b["student_steps"] // 2

    def named(name: str, seed: int) -> list[str]:
        return [f"seed={seed}", f"output.run_name={name}_seed{seed}"]

    def needs_no_teacher(seed: int) -> dict[str, tuple]:
        return {"scratch": (scratch_recipe, student + steps(b["student_steps"]) + named("scratch", seed)),
                "semi_scratch": (scratch_recipe,
                                 student + steps(b["student_steps"]) + named("semi_scratch", seed) + semi)}

    def needs_teacher(seed: int, teacher: list[str]) -> dict[str, tuple]:
        rows = {name: (kd_recipe, student + steps(b["student_steps"]) + named(name, seed) + extra + teacher)
                for name, extra in VARIANTS.items()}
        # FPD: scratch first, then KD; the scratch steps count
        rows["fpd_finetune"] = (scratch_recipe, student + steps(half) + named("fpd_scratch_half", seed),
                                (kd_recipe,
                                 student + steps(b["student_steps"] - half) + named("fpd_finetune", seed) + teacher))
        rows["semi_kd"] = (kd_recipe, student + steps(b["student_steps"]) + named("semi_kd", seed) +
                           semi + teacher +
                           [f"data.unlabelled_root={unlabelled}", f"data.unlabelled_fraction={frac:.4f}", "loss.w_out=1"])
        return rows

    results: dict[str, list[float]] = {}
    validation: dict[str, list[float]] = {}
    seconds: dict[str, float] = {}
    pool = ProcessPoolExecutor(max_workers=args.jobs, mp_context=mp.get_context("spawn"))
    pending = {}  # future -> row name
    if args.teacher:
        t_ckpt, seconds["teacher"] = Path(args.teacher).resolve(), 0.0
    else:
        t_ckpt = None
        pending[pool.submit(run_and_score, "synthface/teacher", base + steps(b["teacher_steps"]) + named("teacher", 0),
                            data, val_data)] = "teacher"
    for seed in range(args.seeds):
        for name, (recipe, overrides) in needs_no_teacher(seed).items():
            if wanted(name, seed):
                pending[pool.submit(run_and_score, recipe, overrides, data, val_data)] = name

    def submit_kd(ckpt: Path, names=("kd_feat", "kd_both", "kd_out", "semi_kd", "fpd_finetune"),
                  seeds=None) -> None:  # the main row first: its seeds are the longest queue
        for name in names:
            for seed in seeds or range(args.seeds):
                job = needs_teacher(seed, [f"teacher.ckpt={ckpt}"])[name]
                if wanted(name, seed):
                    pending[pool.submit(run_and_score, job[0], job[1], data, val_data, *job[2:])] = name

    def choose_when_ready() -> None:
        """--main auto: once seed 0 of every KD variant is in, the lowest validation NME joins the main rows."""
        if args.main != "auto" or len(main_rows) > 1 or any(n not in validation for n in VARIANTS):
            return
        chosen = min(VARIANTS, key=lambda n: validation[n][0])
        main_rows.append(chosen)
        print(f"kd_study: chose {chosen} on validation ({', '.join(f'{n} {validation[n][0]:.4f}' for n in VARIANTS)})",
              flush=True)
        submit_kd(t_ckpt, names=(chosen,), seeds=range(1, args.seeds))  # scratch's seeds were queued at the start

    if t_ckpt is not None:
        results["teacher"] = [evaluate(t_ckpt, data, fmt="synthface", split="test", log=lambda *a: None)["nme"]]
        validation["teacher"] = [evaluate(t_ckpt, val_data, fmt="synthface", split="test", log=lambda *a: None)["nme"]]
        submit_kd(t_ckpt)
    try:
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                name = pending.pop(fut)
                nme, val, run, sec = fut.result()
                seconds[name] = seconds.get(name, 0.0) + sec
                results.setdefault(name, []).append(nme)
                validation.setdefault(name, []).append(val)
                print(f"kd_study: {name} NME {100 * nme:.2f} % (validation {100 * val:.2f} %; {sec:.0f} s, {run})",
                      flush=True)
                if name == "teacher":
                    t_ckpt = run / "best.ckpt"
                    submit_kd(t_ckpt)
                choose_when_ready()
    finally:
        pool.shutdown(cancel_futures=True)

    report = summarise(results, validation, seconds, b, args, t_ckpt, main_rows)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print_table(report)
    return report


def flops_ratio(teacher_ckpt: Path, recipe: str, overrides: list[str]) -> float:
    from distill.checkpoint import load_model
    from distill.config import load_recipe
    from distill.models import build_model, model_facts

    teacher, _ = load_model(teacher_ckpt)
    cfg = load_recipe(recipe, [o for o in overrides if o.startswith("model.")])
    student = build_model(cfg.model.name, num_points=teacher.num_points, input_size=teacher.input_size, **cfg.model.args)
    return model_facts(student, student.input_size)["flops"] / model_facts(teacher, teacher.input_size)["flops"]


def summarise(results: dict, validation: dict, seconds: dict, b: dict, args, teacher_ckpt: Path,
              main_rows: list[str]) -> dict:
    teacher = results["teacher"][0]
    rows = {}
    order = ["teacher", "scratch", "kd_out", "kd_feat", "kd_both", "fpd_finetune", "semi_scratch", "semi_kd"]
    for name, values in sorted(results.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order)):
        mean = statistics.fmean(values)
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        val = validation.get(name, [])
        rows[name] = {"nme": values, "mean": mean, "std": std, "vs_teacher": mean / teacher,
                      "seconds": seconds.get(name, 0.0), "val_nme": val,
                      "val_mean": statistics.fmean(val) if val else None,
                      "val_std": statistics.stdev(val) if len(val) > 1 else 0.0}
    return {"budget": args.budget, "device": args.device, "seeds": args.seeds, "ablation_seeds": args.ablation_seeds,
            "jobs": args.jobs, "settings": b,
            "wall_minutes": (time.time() - args.started) / 60,
            "flops_ratio": flops_ratio(teacher_ckpt, STUDENTS[args.student][0], args.set),
            "student": args.student, "student_overrides": list(args.set), "main_rows": main_rows,
            "teacher": str(teacher_ckpt), "rows": rows}


def print_table(report: dict) -> None:
    rows = report["rows"]
    scratch = rows.get("scratch")
    table = Table(title=f"KD study, SynthFace test NME (budget {report['budget']}, {report['seeds']} seeds main, "
                        f"{report.get('ablation_seeds', report['seeds'])} others, "
                        f"student FLOPs = {report['flops_ratio']:.3f} x teacher, {report['wall_minutes']:.1f} min)")
    for col in ("variant", "seeds", "validation NME %", "test NME % (mean +- std)", "x teacher", "vs scratch",
                "train s"):
        table.add_column(col, justify="left" if col == "variant" else "right")
    for name, r in rows.items():
        ref = rows.get("semi_scratch") if name.startswith("semi") else scratch
        delta = ""
        if ref is not None and name not in ("teacher", "scratch", "semi_scratch"):
            d = r["mean"] - ref["mean"]
            delta = f"{100 * d:+.2f} ({'wins' if d < -ref['std'] else 'no win'} at 1 std)"
        val = "" if r.get("val_mean") is None else f"{100 * r['val_mean']:.2f} +- {100 * r['val_std']:.2f}"
        table.add_row(name + (" (main)" if name in report.get("main_rows", []) else ""), str(len(r["nme"])), val,
                      f"{100 * r['mean']:.2f} +- {100 * r['std']:.2f}",
                      f"{r['vs_teacher']:.2f}", delta,
                      f"{r['seconds']:.0f}")
    Console().print(table)


if __name__ == "__main__":
    main()
