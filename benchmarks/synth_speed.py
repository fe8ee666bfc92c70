"""SynthFace speed, size and difficulty: faces/s for workers=1 and 2, bytes per face, and the mean-shape yardstick.

    python benchmarks/synth_speed.py [--num 1000] [--size 128] [--format jpg|png]

Prints tables; asserts nothing. Faces/s counts everything generate() does (render, encode, write
image + .pts + mask, annotations); "render only" is render_face() in memory on one core.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from distill.data.synthface import HardCases, generate, render_face, sample_params
from distill.data.synthface.backgrounds import BACKGROUNDS
from distill.data.synthface.params import FLAGS
from distill.data.synthface.yardstick import mean_shape_nme


def folder_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--num", type=int, default=1000, help="training faces per run (test = num/5)")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--format", default="jpg", choices=["jpg", "png"])
    args = ap.parse_args()
    console = Console()

    params = [sample_params(np.random.default_rng([0, i]), HardCases(), tuple(BACKGROUNDS)) for i in range(200)]
    render_face(params[0], args.size)
    render_rate = 0.0
    for _ in range(3):           # the machine is shared: best of three
        t = time.perf_counter()
        for p in params:
            render_face(p, args.size)
        render_rate = max(render_rate, len(params) / (time.perf_counter() - t))

    speed = Table(title=f"SynthFace generation, {args.size}x{args.size}, {args.format}")
    for col in ("workers", "faces", "seconds", "faces/s", "bytes/face", "10k faces (MB)"):
        speed.add_column(col, justify="right")
    speed.add_row("render only", str(len(params)), "", f"{render_rate:.0f}", "", "")
    with tempfile.TemporaryDirectory() as tmp:
        out = None
        for workers in (1, 2):
            out = Path(tmp) / f"w{workers}"
            t = time.perf_counter()
            generate(out, num=args.num, seed=0, size=args.size, workers=workers, image_format=args.format,
                     progress=False)
            dt = time.perf_counter() - t
            faces = args.num + args.num // 5
            per_face = folder_bytes(out) / faces
            speed.add_row(str(workers), str(faces), f"{dt:.1f}", f"{faces / dt:.0f}", f"{per_face:.0f}",
                          f"{per_face * 10000 / 1e6:.0f}")
        console.print(speed)

        yard = Table(title=f"Mean-shape yardstick (NME, inter-ocular 36-45), {args.num} train / {args.num // 5} test")
        for col in ("subset", "images", "NME %"):
            yard.add_column(col, justify="right")
        res = mean_shape_nme(out)
        for name in ("all", "easy", *FLAGS):
            yard.add_row(name, str(res[name]["count"]), f"{100 * res[name]['nme']:.2f}")
        console.print(yard)


if __name__ == "__main__":
    main()
