"""The shipped students vs their teacher (and the regressor), end to end and model only, torch and ONNX
Runtime. Prints `distill bench`'s table, each model's speed-up over the teacher, and an ONNX Runtime table.

    python benchmarks/export_speed.py [--repeats 50] [--rounds 5] [--batch 32] [--photo-size 640]
    python benchmarks/export_speed.py --shapes      # other student shapes, ONNX Runtime table only

Untrained models (speed does not depend on the weights), 64x64 input, shapes read from the SynthFace
recipes, so this measures what `distill train` ships: the `synthface/teacher` Hourglass, the
`synthface/student` and `synthface/student_lean` Hourglasses and the default ConvDW regressor. Each
is saved as a checkpoint, exported to ONNX by `distill.deploy.bench` (parity-checked) and measured with
`bench_models`, every measurement interleaved across the models in `--rounds` rounds (each model keeps
its quickest round: this VM has slow spells). A second table times the exported graphs alone in ONNX
Runtime with more calls and rounds, for steadier ratios.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

# the ratios printed under the table: row key -> what it measures
RATIOS = {
    "ort_ms_p50": "model only, batch 1, 1 thread (p50 latency)",
    "ort_img_s": "model only, batch {batch}, all threads (throughput)",
    "e2e_ort_faces_s": "end to end, 1 thread (photo + box -> image points)",
    "e2e_ort_batch_faces_s": "end to end, {batch} faces of one photo per call, all threads",
    "torch_img_s": "torch eager, model only, batch {batch}, all threads",
}


def models() -> dict[str, tuple[str, dict]]:
    from distill.config import load_recipe

    def recipe_model(name: str) -> tuple[str, dict]:
        model = load_recipe(name).model
        return model.name, dict(model.args, input_size=64)

    return {"teacher (synthface/teacher)": recipe_model("synthface/teacher"),
            "student (synthface/student)": recipe_model("synthface/student"),
            "lean student (synthface/student_lean)": recipe_model("synthface/student_lean"),
            "convdw": ("convdw", {})}


# --shapes: other students against the same teacher (1 stack, depth 3, stem 16 unless said), to see what
# moves a small student's CPU time: its number of layers more than its FLOPs
SHAPES = {
    "1x48 (synthface/student)": dict(channels=48),
    "1x48, 3x3 stem conv": dict(channels=48, stem_kernel=3),
    "1x48, no head residual": dict(channels=48, head_blocks=0),
    "1x48, both (synthface/student_lean)": dict(channels=48, stem_kernel=3, head_blocks=0),
    "1x48, both, depth 2": dict(channels=48, stem_kernel=3, head_blocks=0, depth=2),
    "1x32 (fewer channels only)": dict(channels=32),
    "1x64 depthwise blocks": dict(channels=64, block="depthwise"),
    "1x80 depthwise blocks": dict(channels=80, block="depthwise"),
}


def shape_models() -> dict[str, tuple[str, dict]]:
    teacher = models()["teacher (synthface/teacher)"]
    base = dict(num_stacks=1, depth=3, stem_channels=16, input_size=64)
    return {"teacher (synthface/teacher)": teacher,
            **{name: ("hourglass", {**base, **kw}) for name, kw in SHAPES.items()}}


def _per_core_worker(path: str, batch: int, calls: int, barrier) -> tuple[float, float]:
    """One process, one single-threaded session: warm up, wait for the others, time ``calls`` calls."""
    import time

    import numpy as np

    from distill.deploy.runtime import ort_session

    session = ort_session(path, 1)
    crops = np.random.default_rng(0).integers(0, 256, (batch, 3, 64, 64), dtype=np.uint8)
    for _ in range(3):
        session.run(None, {"image": crops})
    barrier.wait()
    t0 = time.perf_counter()
    for _ in range(calls):
        session.run(None, {"image": crops})
    return t0, time.perf_counter()


def per_core_ms(path: Path, batch: int, calls: int, workers: int) -> float:
    """ms per batch with one single-threaded session per core, all running at once (a server's worker
    processes): wall time from the first start to the last end, over the batches all workers ran."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager, ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        barrier = manager.Barrier(workers)
        spans = list(pool.map(_per_core_worker, [str(path)] * workers, [batch] * workers, [calls] * workers,
                              [barrier] * workers))
    return 1e3 * (max(t1 for _, t1 in spans) - min(t0 for t0, _ in spans)) / (calls * workers)


def ort_ratios(ckpts: list[Path], names: list[str], batch: int, rounds: int) -> None:
    """The student-vs-teacher ratios with less noise than the bench table: ONNX Runtime only, the exported
    graphs (decoding included), each setting timed in `rounds` interleaved rounds of many calls, the
    25th percentile of each model's quickest round. The last column is throughput the way a server with
    one worker process per core gets it: every core runs its own single-threaded session at once, and
    the time is wall time over all the batches they ran (best of 3)."""
    import numpy as np
    from rich.console import Console
    from rich.table import Table

    from distill.checkpoint import load_model
    from distill.deploy.bench import interleaved_timings_ms
    from distill.deploy.export import export
    from distill.deploy.runtime import ort_session
    from distill.models.facts import model_facts

    onnx = [export(c, "onnx", c.with_suffix(".onnx"), log=lambda *a: None).path for c in ckpts]
    gflops = [model_facts(load_model(c)[0], 64)["gflops"] for c in ckpts]
    settings = {"batch 1, 1 thread": (1, 1, 300), f"batch {batch}, 1 thread": (batch, 1, 10),
                f"batch {batch}, all threads": (batch, 0, 10)}
    table = Table(title=f"ONNX Runtime, decoding included: ms per call (x teacher), "
                        f"best of {rounds} interleaved rounds")
    table.add_column("model", no_wrap=True)
    table.add_column("GFLOPs (1/x teacher)", justify="right")
    for setting in settings:
        table.add_column(setting, justify="right")
    ms = {}
    for setting, (b, threads, repeats) in settings.items():
        crops = np.random.default_rng(0).integers(0, 256, (b, 3, 64, 64), dtype=np.uint8)
        fns = {name: (lambda s: lambda: s.run(None, {"image": crops}))(ort_session(p, threads))
               for name, p in zip(names, onnx)}
        ms[setting] = {name: float(np.percentile(t, 25))
                       for name, t in interleaved_timings_ms(fns, repeats, rounds, warmup=3).items()}
    # every core busy with its own single-threaded session; best of 3 runs per model, models in turn
    cores = os.cpu_count() or 1
    setting = f"batch {batch}, one 1-thread session per core ({cores})"
    table.add_column(setting, justify="right")
    ms[setting] = {name: float("inf") for name in names}
    for _ in range(3):
        for name, p in zip(names, onnx):
            calls = max(3, round(1500 / ms[f"batch {batch}, 1 thread"][name]))  # ~1.5 s per worker
            ms[setting][name] = min(ms[setting][name], per_core_ms(p, batch, calls, cores))
    settings[setting] = None
    for name, g in zip(names, gflops):
        table.add_row(name, f"{g:.4f} (1/{gflops[0] / g:.1f})",
                      *(f"{ms[s][name]:.3f} ({ms[s][names[0]] / ms[s][name]:.1f}x)" for s in settings))
    Console(width=200).print(table)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--photo-size", type=int, default=640)
    parser.add_argument("--shapes", action="store_true",
                        help="instead: only the ONNX Runtime table, for the student shapes in SHAPES")
    args = parser.parse_args(argv)

    from distill.checkpoint import model_info, save_model_checkpoint
    from distill.data import SCHEMAS
    from distill.deploy.bench import bench_models, print_table
    from distill.models import build_model

    chosen = shape_models() if args.shapes else models()
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, (name, (preset, overrides)) in enumerate(chosen.items()):
            model = build_model(preset, **overrides).eval()
            paths.append(Path(tmp) / f"{i}.ckpt")
            save_model_checkpoint(paths[-1], model, model_info(model, SCHEMAS["ibug68"], recipe_name=name))
        if args.shapes:
            ort_ratios(paths, list(chosen), args.batch, rounds=7)
            return
        rows = bench_models(paths, photo_size=args.photo_size, repeats=args.repeats, batch=args.batch,
                            rounds=args.rounds)
        ort_ratios(paths, list(models()), args.batch, rounds=7)
    for row, name in zip(rows, models()):
        row["model"] = name
    print_table(rows)
    teacher = rows[0]
    for row in rows[1:]:
        for key, what in RATIOS.items():
            # latency: smaller is faster; throughput: larger is faster
            ratio = teacher[key] / row[key] if key.endswith("_p50") else row[key] / teacher[key]
            print(f"{row['model']} vs teacher: {ratio:.1f}x  {what.format(batch=args.batch)}")


if __name__ == "__main__":
    main()
