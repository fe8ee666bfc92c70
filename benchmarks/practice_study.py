"""The seed's practice, measured: Wing vs L2, the cascade, pose balancing, background replacement,
the One-Euro filter, head pose from predicted points. Each claim against what SynthFace shows.

    python benchmarks/practice_study.py --budget tiny                    # smoke test: 26 s on 2 CPU cores
    python benchmarks/practice_study.py --budget small --device cuda     # 5.5 min on an H200 + 16 CPU cores
    python benchmarks/practice_study.py --budget small                   # ~45 min on 2 CPU cores (estimated)

On cuda, trainings run 4 at a time (--parallel), 2 torch threads each, in subprocesses whose data
loader workers share the CPU cores (the data pipeline, not the GPU, bounds these small models).
Finished runs are reused when the command is repeated with the same --out (--fresh retrains).

Every model is a shipped recipe plus overrides (RUNS), trained on one SynthFace set and scored on its
test split in IMAGE pixels (inter-ocular NME), on CPU:

    l2, wing        synthface/regressor_l2 / regressor_wing as shipped (no augmentation)      -> (a)
    base            regressor_wing + moderate augmentation: the baseline of (c), (d), (e), (f)
    pose_balanced   base + data.pose_balance                                                    -> (c)
    background      base + data.background.prob=0.5 (compositing; the seed used a GAN)          -> (d)
    single_heavy    regressor_wing + stage 1's heavy augmentation: the single-stage rival      -> (b)
    stage1, stage2  synthface/cascade_stage1; regressor_wing on crops aligned by stage 1       -> (b)
    teacher, student_kd   synthface/teacher, synthface/student_from_teacher (or --student CKPT) -> (b)

(b) perturbs the face box of every test image: its centre moves by jitter x box size in a random
direction, or the crop turns by +-rotation; all models see the same perturbed crops. faces/s is
distill.deploy.bench's end-to-end ONNX Runtime figure (photo + box -> points, one thread); the cascade is
one ONNX graph (export_cascade). (e) filters the base model's predictions on SynthFace's video
sequences (assumed 30 fps). Results: rich tables and DIR/practice_study.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from practice_measure import (  # noqa: E402
    FPS,
    CascadeRunner,
    Single,
    filter_study,
    head_pose,
    load_faces,
    nme,
    onnx_cascade_nme,
    speed,
    stability,
    yaw_bin_nme,
)

from distill.data.schema import get_schema  # noqa: E402


@dataclass(frozen=True)
class Budget:
    num_train: int
    num_test: int
    stability: int                 # renders per static stability group
    steps: dict                    # "regressor" / "teacher" / "student" -> optimiser steps
    val_every: int
    batch: int
    bench_repeats: int
    model_args: dict               # "regressor" / "teacher" / "student" -> model.args override ({} = recipe's)


BUDGETS = {
    "tiny": Budget(96, 60, 3, {"regressor": 15, "teacher": 6, "student": 6}, 15, 16, 3,
                   {"regressor": "{width_mult: 0.25}", "teacher": "{num_stacks: 2, channels: 16, depth: 2}",
                    "student": "{num_stacks: 1, channels: 8, depth: 2, stem_channels: 8}"}),
    "small": Budget(3000, 500, 8, {"regressor": 2000, "teacher": 1500, "student": 3000}, 500, 32, 30, {}),
}

JITTERS = (0.0, 0.05, 0.1, 0.2)      # box centre shift, fraction of the box size
ROTATIONS = (0.0, 15.0, 30.0, 45.0)  # in-plane rotation of the crop, degrees


def aug(**kw) -> str:
    """A data.augment override: every field written, so nothing of the recipe's own block leaks in."""
    from distill.data.augment import AugmentConfig

    return "data.augment=" + yaml.safe_dump(json.loads(json.dumps(dataclasses.asdict(AugmentConfig(**kw)))),
                                            default_flow_style=True, width=10_000).strip()


def stage1_augment() -> dict:
    from distill.config import load_recipe

    return dataclasses.asdict(load_recipe("synthface/cascade_stage1").data.augment)


BASE_AUG = aug(flip_prob=0.5, scale=(0.85, 1.15), rotation_deg=20.0, shift=0.05)
# name -> (recipe, overrides, model kind, the run it needs first)
RUNS = {
    "l2": ("synthface/regressor_l2", [], "regressor", None),
    "wing": ("synthface/regressor_wing", [], "regressor", None),
    "base": ("synthface/regressor_wing", [BASE_AUG], "regressor", None),
    "pose_balanced": ("synthface/regressor_wing", [BASE_AUG, "data.pose_balance=true"], "regressor", None),
    "background": ("synthface/regressor_wing", [BASE_AUG, "data.background.prob=0.5"], "regressor", None),
    "single_heavy": ("synthface/regressor_wing", [aug(**stage1_augment())], "regressor", None),
    "stage1": ("synthface/cascade_stage1", [], "regressor", None),
    # stage 2 sees stage 1's residual misalignment already; mild augmentation covers its test-time spread
    "stage2": ("synthface/regressor_wing", [aug(flip_prob=0.5, scale=(0.95, 1.05), rotation_deg=8.0, shift=0.03),
                                            "data.align_with={stage1}"], "regressor", "stage1"),
    "teacher": ("synthface/teacher", [], "teacher", None),
    "student_kd": ("synthface/student_from_teacher", ["teacher.ckpt={teacher}"], "student", "teacher"),
}


# ----------------------------------------------------------------------------- training
def model_file(run: Path) -> Path:
    """best.ckpt, or last.ckpt when no validation ran (tiny step counts)."""
    return run / "best.ckpt" if (run / "best.ckpt").is_file() else run / "last.ckpt"


def train_all(b: Budget, args, data: Path, work: Path, log) -> dict[str, Path]:
    """Train every run (``--parallel`` at a time, in subprocesses; in this process when 1) -> checkpoint paths.
    A finished run (its metrics.json exists) is reused unless --fresh."""
    from distill.training import train

    root = work / "checkpoints"
    wanted = {n: r for n, r in RUNS.items() if not (args.student and n in ("teacher", "student_kd"))}
    done = {"student_kd": Path(args.student)} if args.student else {}
    running: dict[str, tuple[subprocess.Popen, Path]] = {}
    while len(done) < len(RUNS) - (1 if args.student else 0) or running:
        for name, (recipe, extra, kind, after) in wanted.items():
            if name in done or name in running or (after and after not in done) or len(running) >= args.parallel:
                continue
            run = root / recipe / name
            if (run / "metrics.json").is_file() and not args.fresh:   # written when a run finishes
                done[name] = model_file(run)
                continue
            ov = [f"data.root={data}", f"output.root={root}", f"output.run_name={name}",
                  f"trainer.max_steps={b.steps[kind]}", f"trainer.val_every_n_steps={min(b.val_every, b.steps[kind])}",
                  f"data.batch_size={b.batch}", "logging.logger=none", "logging.progress=false",
                  "logging.grid_images=0", f"trainer.accelerator={'gpu' if args.device == 'cuda' else 'cpu'}",
                  "trainer.devices=1", f"data.num_workers={args.workers}", f"trainer.num_threads={args.threads}"]
            if b.model_args.get(kind):
                ov.append(f"model.args={b.model_args[kind]}")
            extra = [e.replace(f"{{{after}}}", str(done[after])) if after else e for e in extra]
            ov += extra
            log(f"train {name}: {recipe} ({b.steps[kind]} steps) " + " ".join(e if len(e) < 70 else e[:60] + "..."
                                                                            for e in extra))
            if args.parallel == 1:
                train(recipe, ov)
                done[name] = model_file(run)
            else:
                (work / "logs").mkdir(parents=True, exist_ok=True)
                out = open(work / "logs" / f"{name}.log", "w")
                path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
                env = dict(os.environ, PYTHONPATH=path, OMP_NUM_THREADS=str(max(args.threads, 1)))
                running[name] = (subprocess.Popen([sys.executable, "-m", "distill.cli", "train", recipe, *ov],
                                                  stdout=out, stderr=subprocess.STDOUT, env=env), run)
        for name, (proc, run) in list(running.items()):
            if proc.poll() is None:
                continue
            del running[name]
            if proc.returncode != 0:
                raise SystemExit(f"train {name} failed (rc {proc.returncode}); see {work / 'logs' / name}.log")
            done[name] = model_file(run)
            log(f"trained {name}")
        if running:
            time.sleep(1.0)
    return done


# ----------------------------------------------------------------------------- tables
def table(console, title: str, columns: list[str], rows: list[list]) -> None:
    t = Table(title=title, title_justify="left")
    for i, c in enumerate(columns):
        t.add_column(c, justify="left" if i == 0 else "right")
    for r in rows:
        t.add_row(*[v if isinstance(v, str) else "-" if v is None else str(v) if isinstance(v, int) else
                    f"{v:.2f}" if abs(v) >= 10 else f"{v:.4g}" for v in r])
    console.print(t)


def pct(v):
    return None if v is None else 100.0 * v


def verdict(holds: bool) -> str:
    return "reproduced" if holds else "NOT reproduced"


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", choices=sorted(BUDGETS), default="tiny")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where training runs (scoring: CPU)")
    ap.add_argument("--out", default="runs/practice_study", help="data, checkpoints, ONNX and JSON go here")
    ap.add_argument("--json", nargs="?", const="-", default=None,
                    help="also write the results JSON to this path ('-' or no value: print it)")
    ap.add_argument("--parallel", type=int, default=None, help="trainings at a time (default: 1 on cpu, 4 on cuda)")
    ap.add_argument("--workers", type=int, default=None, help="data loader workers per training")
    ap.add_argument("--threads", type=int, default=None, help="torch threads per training (default: 2 on cuda, "
                                                              "torch's own on cpu)")
    ap.add_argument("--student", default=None, help="a distilled student checkpoint to compare against "
                                                    "(default: train synthface/teacher + student_from_teacher)")
    ap.add_argument("--fresh", action="store_true", help="retrain runs whose checkpoints exist")
    args = ap.parse_args(argv)
    cuda = args.device == "cuda"
    args.parallel = args.parallel or (4 if cuda else 1)
    args.threads = args.threads if args.threads is not None else (2 if cuda else 0)
    args.workers = args.workers if args.workers is not None else (
        max(1, ((os.cpu_count() or 4) - 2) // args.parallel) if cuda else 0)
    b, work = BUDGETS[args.budget], Path(args.out).resolve()
    work.mkdir(parents=True, exist_ok=True)
    console = Console(width=max(Console().width, 140))
    started, timings = time.time(), {}

    def log(msg: str) -> None:
        console.print(f"[dim]{time.time() - started:7.1f}s[/dim] {msg}")

    # ---------------------------------------------------------------- data and training
    data = work / "data"
    if not (data / "meta.json").is_file():
        from distill.data.synthface import generate

        log(f"SynthFace: {b.num_train} train / {b.num_test} test / stability x{b.stability}")
        generate(data, num=b.num_train, seed=0, size=128, workers=max(1, min(8, (os.cpu_count() or 2) - 1)),
                 num_test=b.num_test, stability=b.stability, progress=False)
    timings["data_s"] = time.time() - started
    ckpts = train_all(b, args, data, work, log)
    timings["train_s"] = time.time() - started - timings["data_s"]

    # ---------------------------------------------------------------- scoring (CPU)
    t0 = time.time()
    test, stab = load_faces(data, "test"), load_faces(data, "stability")
    m = {n: Single(p) for n, p in ckpts.items() if n not in ("teacher", "stage1", "stage2")}
    cascade = CascadeRunner(ckpts["stage1"], ckpts["stage2"])
    clean = {n: nme(model.predict(test), test) for n, model in m.items()}
    five_gt = get_schema("ibug68").to_five(test.points)
    res: dict = {"budget": args.budget, "device": args.device, "num_train": b.num_train, "num_test": len(test.images)}

    # (a) Wing vs L2
    res["wing_vs_l2"] = {n: {k: clean[n][k] for k in ("nme", "fr@0.10", "auc@0.10")} for n in ("l2", "wing", "base")}

    # (b) cascade under box jitter and rotation
    robust_models = {"single (wing, no aug)": m["wing"], "single_heavy (stage-1 aug)": m["single_heavy"],
                     "cascade (stage1 + stage2)": cascade, "student_kd (Hourglass)": m["student_kd"]}
    curves: dict = {name: {} for name in [*robust_models, "stage1 (5-pt NME)"]}
    for kind, values in (("jitter", JITTERS), ("rotation", ROTATIONS)):
        for v in values:
            jr = (v, 0.0) if kind == "jitter" else (0.0, v)
            for name, model in robust_models.items():
                fives: list = []
                pred = model.predict(test, *jr, five_out=fives) if model is cascade else model.predict(test, *jr)
                curves[name][f"{kind}={v:g}"] = nme(pred, test)["nme"]
                if fives:
                    curves["stage1 (5-pt NME)"][f"{kind}={v:g}"] = nme(fives[0], test, "five", five_gt)["nme"]
    res["cascade_curves"] = curves
    log("speed: exporting and benchmarking ONNX (wing, one-graph cascade, student_kd)")
    res["speed"] = speed(ckpts, work, b, args.budget)
    res["onnx_cascade_nme"] = onnx_cascade_nme(res["speed"]["_onnx"]["cascade"], test)

    # (c) pose balancing
    res["pose_balance"] = {n: {"nme": clean[n]["nme"], "nme/pose": clean[n].get("nme/pose"),
                               "yaw_bins": yaw_bin_nme(clean[n]["per_image"], test)} for n in ("base", "pose_balanced")}
    # (d) background replacement, (e) the filter
    stab_res = {n: stability(m[n], stab) for n in ("base", "background")}
    res["background"] = {n: {"nme": clean[n]["nme"], "stability": stab_res[n]["stability"],
                             "jitter": stab_res[n]["jitter"]} for n in ("base", "background")}
    res["filter"] = filter_study(stab_res["base"]["videos"])
    res["filter_videos"] = len(stab_res["base"]["videos"])
    # (f) head pose from ground-truth and predicted points
    res["head_pose"] = head_pose(m["base"].predict(test), test)
    timings["score_s"] = time.time() - t0
    res["timings"] = timings | {"total_s": time.time() - started}

    report(console, res)
    from distill.io import atomic_write_json

    atomic_write_json(work / "practice_study.json", res)
    if args.json == "-":
        print(json.dumps(res, indent=2))
    elif args.json:
        atomic_write_json(Path(args.json), res)
    log(f"wrote {work / 'practice_study.json'}")
    return res


def report(console, res: dict) -> None:
    w = res["wing_vs_l2"]
    table(console, "(a) Wing vs L2, ConvDW regressor, test NME % (inter-ocular, image px)",
          ["model", "NME %", "FR@0.10 %", "AUC@0.10"],
          [[n, pct(v["nme"]), pct(v["fr@0.10"]), v["auc@0.10"]] for n, v in w.items()])
    c = res["cascade_curves"]
    cols = list(next(iter(c.values())).keys())
    table(console, "(b) NME % under box jitter (fraction of the box size) and in-plane rotation (degrees)",
          ["model", *cols], [[n, *[pct(v.get(k)) for k in cols]] for n, v in c.items()])
    s = res["speed"]
    table(console, f"(b) vs the distilled Hourglass: clean-box NME and end-to-end faces/s (ONNX Runtime, 1 thread, "
                   f"{os.cpu_count()} cores); exported one-graph cascade NME {pct(res['onnx_cascade_nme']):.2f}%",
          ["model", "NME %", "faces/s", "ms p50", "params", "GFLOPs"],
          [[n, pct(c[k]["jitter=0"]), s[sn]["faces_s"], s[sn]["ms_p50"], s[sn]["params"],
            s[sn]["gflops"]] for n, k, sn in (("single (wing)", "single (wing, no aug)", "wing"),
                                               ("cascade", "cascade (stage1 + stage2)", "cascade"),
                                               ("student_kd", "student_kd (Hourglass)", "student_kd"))])
    p = res["pose_balance"]
    bins = list(p["base"]["yaw_bins"])
    table(console, "(c) pose balancing: NME % overall, on the 'pose' subset and per |yaw| bin",
          ["model", "NME %", "NME pose %", *[f"|yaw| {k}" for k in bins]],
          [[n, pct(v["nme"]), pct(v["nme/pose"]), *[pct(v["yaw_bins"][k]) for k in bins]] for n, v in p.items()])
    bg = res["background"]
    table(console, "(d) background replacement (compositing stands in for the seed's GAN): NME %, stability "
                   "(static groups, % of inter-ocular), video frame jitter (%)",
          ["model", "NME %", "stability %", "jitter %"],
          [[n, pct(v["nme"]), pct(v["stability"]), pct(v["jitter"])] for n, v in bg.items()])
    table(console, f"(e) One-Euro filter on {res['filter_videos']} SynthFace video sequences at {FPS:g} fps (base "
                   "model): jitter %, NME %, NME the filter adds on a noiseless track (lag), frames to 90% of a "
                   "5 px step",
          ["min_cutoff / beta", "jitter %", "NME %", "lag NME %", "step 90% frames"],
          [["raw" if r["min_cutoff"] is None else f"{r['min_cutoff']:g} Hz / {r['beta']:g}", pct(r["jitter"]),
            pct(r["nme"]), pct(r["lag_nme"]), r["step90_frames"]] for r in res["filter"]])
    hp = res["head_pose"]
    table(console, "(f) head pose from landmarks (solvePnP, mean face): mean absolute error yaw / pitch / roll (deg)",
          ["|yaw| bin", "faces", "from GT points", "from base predictions"],
          [[k, v["count"], *["-" if v[s] is None else " / ".join(f"{e:.1f}" for e in v[s]) for s in ("gt", "pred")]]
           for k, v in hp.items()])

    single, casc = c["single_heavy (stage-1 aug)"], c["cascade (stage1 + stage2)"]
    stud = c["student_kd (Hourglass)"]
    worst_j, worst_r = f"jitter={JITTERS[-1]:g}", f"rotation={ROTATIONS[-1]:g}"
    pb, b0 = res["pose_balance"]["pose_balanced"], res["pose_balance"]["base"]
    claims = [
        ["Wing beats L2", f"Wing {pct(w['wing']['nme']):.2f}% vs L2 {pct(w['l2']['nme']):.2f}%",
         verdict(w["wing"]["nme"] < w["l2"]["nme"])],
        ["the cascade is more robust to bad boxes",
         f"worst jitter {pct(casc[worst_j]):.2f}% vs single {pct(single[worst_j]):.2f}%; worst rotation "
         f"{pct(casc[worst_r]):.2f}% vs {pct(single[worst_r]):.2f}%",
         verdict(casc[worst_j] < single[worst_j] and casc[worst_r] < single[worst_r])],
        ["a cascade of small regressors rivals heatmap models (NME within 10%)",
         f"clean {pct(casc['jitter=0']):.2f}% vs student {pct(stud['jitter=0']):.2f}%; "
         f"{s['cascade']['faces_s']:.0f} vs {s['student_kd']['faces_s']:.0f} faces/s",
         verdict(casc["jitter=0"] <= 1.1 * stud["jitter=0"])],
        ["pose balancing helps large poses",
         f"pose subset {pct(pb['nme/pose']):.2f}% vs {pct(b0['nme/pose']):.2f}%; overall {pct(pb['nme']):.2f}% vs "
         f"{pct(b0['nme']):.2f}%", verdict(pb["nme/pose"] is not None and pb["nme/pose"] < b0["nme/pose"])],
        ["background replacement improves stability",
         f"stability {pct(bg['background']['stability']):.3f}% vs {pct(bg['base']['stability']):.3f}%; NME "
         f"{pct(bg['background']['nme']):.2f}% vs {pct(bg['base']['nme']):.2f}%",
         verdict(bg["background"]["stability"] < bg["base"]["stability"])],
    ]
    table(console, f"claims vs measured (budget {res['budget']}; tiny is a smoke test, its numbers mean nothing)",
          ["claim (the seed)", "measured", "verdict"], claims)
    res["claims"] = [{"claim": c0, "measured": c1, "verdict": c2} for c0, c1, c2 in claims]


if __name__ == "__main__":
    main()
