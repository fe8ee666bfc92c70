"""SynthFace speed, size and difficulty: faces/s for workers=1 and 2, bytes per face, and the mean-shape yardstick.

    python benchmarks/synth_speed.py [--num 1000] [--size 128] [--format jpg|png] [--dir DIR]

Prints tables; asserts nothing. Faces/s counts everything generate() does (render, encode, write
image + .pts + mask, annotations); "render only" is render_faces() in memory, in generate()'s
batches of CHUNK faces.

Two rates per row: "CPU faces/s per core" = faces / CPU seconds (user + system) of this process
and, for workers > 1, of its reaped worker processes: the per-core throughput, insensitive to other
jobs sharing the machine; "wall faces/s" = faces / elapsed seconds. The speed target (500 faces/s
per core at 128 px) is on the CPU rate of the workers=1 row. File creation is system time and
depends on the file system: the "file create" line times creating and writing empty files in the
output folder (--dir; default the system temp folder) so that share is visible. For a steady number,
pin to one core: OMP_NUM_THREADS=1 taskset -c 1 python benchmarks/synth_speed.py
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from distill.data.formats import SUBSET_NAMES
from distill.data.synthface import HardCases, generate, sample_params
from distill.data.synthface.backgrounds import BACKGROUNDS
from distill.data.synthface.render import render_faces
from distill.data.synthface.writer import CHUNK
from distill.data.synthface.yardstick import mean_shape_nme


def folder_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and of its reaped children."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def file_create_ms(folder: Path, n: int = 300) -> float:
    """CPU milliseconds to create and write one small file in ``folder`` (best of three rounds)."""
    best = float("inf")
    for r in range(3):
        c = cpu_seconds()
        for i in range(n):
            fd = os.open(folder / f"probe{r}_{i}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.write(fd, b"x" * 2000)
            os.close(fd)
        best = min(best, (cpu_seconds() - c) / n * 1e3)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--num", type=int, default=1000, help="training faces per run (test = num/5)")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--format", default="jpg", choices=["jpg", "png"])
    ap.add_argument("--dir", default=None, help="where the sets are written (default: the system temp folder)")
    args = ap.parse_args()
    console = Console(width=max(Console().width, 110))

    params = [sample_params(np.random.default_rng([0, i]), HardCases(), tuple(BACKGROUNDS)) for i in range(200)]
    render_faces(params[:CHUNK], args.size)
    render_cpu = render_wall = 0.0
    for _ in range(3):           # the machine may be shared: best of three
        t, c = time.perf_counter(), time.process_time()
        for i in range(0, len(params), CHUNK):    # in generate()'s batches
            render_faces(params[i:i + CHUNK], args.size)
        render_cpu = max(render_cpu, len(params) / (time.process_time() - c))
        render_wall = max(render_wall, len(params) / (time.perf_counter() - t))

    speed = Table(title=f"SynthFace generation, {args.size}x{args.size}, {args.format}")
    for col in ("workers", "faces", "wall s", "CPU s", "CPU faces/s per core", "wall faces/s", "bytes/face",
                "10k faces (MB)"):
        speed.add_column(col, justify="right")
    speed.add_row("render only", str(len(params)), "", "", f"{render_cpu:.0f}", f"{render_wall:.0f}", "", "")
    if args.dir is not None:
        Path(args.dir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        probe = Path(tmp) / "probe"
        probe.mkdir()
        create_ms = file_create_ms(probe)
        out = None
        for workers in (1, 2):
            out = Path(tmp) / f"w{workers}"
            t, c = time.perf_counter(), cpu_seconds()
            generate(out, num=args.num, seed=0, size=args.size, workers=workers, image_format=args.format,
                     progress=False)
            dt, dc = time.perf_counter() - t, cpu_seconds() - c
            faces = args.num + args.num // 5
            per_face = folder_bytes(out) / faces
            speed.add_row(str(workers), str(faces), f"{dt:.1f}", f"{dc:.1f}", f"{faces / dc:.0f}", f"{faces / dt:.0f}",
                          f"{per_face:.0f}", f"{per_face * 10000 / 1e6:.0f}")
        console.print(speed)
        console.print(f"file create + write in {tmp}: {create_ms:.3f} ms CPU per file "
                      f"(x3 files per face = {3 * create_ms:.2f} ms of each face's CPU time)")

        yard = Table(title=f"Mean-shape yardstick (NME, inter-ocular 36-45), {args.num} train / {args.num // 5} test")
        for col in ("subset", "images", "NME %"):
            yard.add_column(col, justify="right")
        res = mean_shape_nme(out)
        for name in ("all", "easy", *SUBSET_NAMES):
            yard.add_row(name, str(res[name]["count"]), f"{100 * res[name]['nme']:.2f}")
        console.print(yard)


if __name__ == "__main__":
    main()
