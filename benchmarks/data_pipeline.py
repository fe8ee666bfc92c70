"""Data pipeline speed: samples/s of read + crop + augment + heatmap targets, per crop size and workers.

    python benchmarks/data_pipeline.py [--num 256] [--image-size 256] [--crops 128 256] [--workers 0 2]
                                       [--heatmap 64] [--batch 32] [--teacher]

Images are SynthFace faces generated into a temporary folder (JPEG, as `distill data synth` writes
them). Loader rows time full epochs through LandmarkDataModule's train loader after one warm-up
batch (worker start-up excluded); the stage table is one process, per sample. --teacher also times
a training step (forward + backward + Adam) of a 2 x 128 Hourglass at the first crop size, to
compare what the model consumes with what the loader supplies. Prints tables; asserts nothing.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from distill.data.augment import AugmentConfig, occlude, photometric
from distill.data.datamodule import DataConfig, LandmarkDataModule
from distill.io import image_problem, read_image
from distill.data.formats import load_samples
from distill.data.synthface import generate
from distill.data.transforms import box_from_points, crop_matrix, heatmap_targets, to_tensor, transform_points, warp


def loader_rate(samples, crop: int, heatmap: int, workers: int, batch: int, epochs: int) -> float:
    cfg = DataConfig(schema="ibug68", crop_size=crop, heatmap_size=heatmap, sigma=1.5, batch_size=batch,
                     num_workers=workers, val_fraction=0.0, augment=AugmentConfig())
    dm = LandmarkDataModule(cfg, samples={"train": samples})
    dm.setup("fit")
    loader = dm.train_dataloader()
    count, elapsed = 0, 0.0
    for _ in range(epochs):
        it = iter(loader)
        next(it)  # warm-up: worker start-up and the first batch are not counted
        t0 = time.perf_counter()
        for b in it:
            count += len(b["index"])
        elapsed += time.perf_counter() - t0
    return count / elapsed


def stage_times(samples, crop: int, heatmap: int, reps: int = 64) -> dict[str, float]:
    """Milliseconds per sample of each stage, one process, full augmentation. "read" includes "check",
    the image rule's look at the file's header and tail (io.image_problem), also timed on its own."""
    aug, rng = AugmentConfig(), np.random.default_rng(0)
    t = dict.fromkeys(["check", "read", "warp", "photometric", "occlude", "targets", "to_tensor"], 0.0)
    for i in range(reps):
        s = samples[i % len(samples)]
        tc = time.perf_counter()
        image_problem(s.image_path)
        t0 = time.perf_counter()
        img = read_image(s.image_path)
        t1 = time.perf_counter()
        m = crop_matrix(box_from_points(s.points), crop, 0.25, 1.1, 20.0, (0.02, 0.0), True)
        c = warp(img, m, crop)
        pts = transform_points(s.points, m)
        t2 = time.perf_counter()
        c = photometric(c, aug, rng)
        t3 = time.perf_counter()
        c, vis = occlude(c, pts, None, aug, rng)
        t4 = time.perf_counter()
        heatmap_targets(pts, vis, crop, heatmap, 1.5)
        t5 = time.perf_counter()
        to_tensor(c)
        t6 = time.perf_counter()
        for key, dt in zip(t, (t0 - tc, t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5)):
            t[key] += dt
    return {k: 1000 * v / reps for k, v in t.items()}


def teacher_rate(crop: int, batch: int = 8, steps: int = 3) -> float:
    from distill.models import build_model

    model = build_model("hourglass", num_stacks=2, channels=128, depth=4, input_size=crop)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    x = torch.randn(batch, 3, crop, crop)

    def step():
        outputs, _ = model.forward_intermediates(x)
        loss = sum(o.pow(2).mean() for o in outputs)
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return batch * steps / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--num", type=int, default=256, help="SynthFace training faces to generate")
    ap.add_argument("--image-size", type=int, default=256, help="SynthFace image side")
    ap.add_argument("--crops", type=int, nargs="+", default=[128, 256])
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    ap.add_argument("--heatmap", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--teacher", action="store_true", help="also time a 2x128 Hourglass training step")
    args = ap.parse_args()
    console = Console()

    with tempfile.TemporaryDirectory() as tmp:
        generate(tmp, num=args.num, seed=0, size=args.image_size, workers=2, num_test=0, progress=False)
        samples, _ = load_samples("synthface", tmp, schema="ibug68", split="train")

        table = Table(title=f"Data loader: SynthFace {args.image_size}px JPEG, full augmentation, "
                            f"{args.heatmap}x{args.heatmap} heatmaps (68 points), batch {args.batch}")
        for col in ("crop", "workers", "samples/s", "ms/sample"):
            table.add_column(col, justify="right")
        for crop in args.crops:
            for workers in args.workers:
                rate = loader_rate(samples, crop, args.heatmap, workers, args.batch, args.epochs)
                table.add_row(str(crop), str(workers), f"{rate:,.0f}", f"{1000 / rate:.2f}")
        console.print(table)

        stages = Table(title="Per-sample stage cost, one process (ms)")
        stages.add_column("crop", justify="right")
        cost = {crop: stage_times(samples, crop, args.heatmap) for crop in args.crops}
        for key in next(iter(cost.values())):
            stages.add_column(key, justify="right")
        stages.add_column("total", justify="right")
        for crop, c in cost.items():
            total = sum(v for k, v in c.items() if k != "check")  # the check is part of the read
            stages.add_row(str(crop), *(f"{v:.2f}" for v in c.values()), f"{total:.2f}")
        console.print(stages)

    if args.teacher:
        crop = args.crops[0]
        rate = teacher_rate(crop)
        console.print(f"Teacher (Hourglass 2 stacks x 128 ch, depth 4) training step at {crop}px: "
                      f"{rate:.1f} img/s (batch 8, all threads)")


if __name__ == "__main__":
    main()
