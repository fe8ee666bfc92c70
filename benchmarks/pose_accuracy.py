"""Head pose from landmarks against SynthFace's true pose, per yaw bin.

SynthFace faces are generated, their ground-truth points read back, and yaw/pitch/roll estimated
with distill.data.pose.estimate_pose (solvePnP against the 3D mean face, the stable 14-point subset).
Prints the mean absolute error per angle and yaw bin for both principal-point choices ("face": the
centre of the landmark box, the default; "image": the image centre). Target: <= 5 degrees for
|yaw| <= 45 from ground truth. Nothing is asserted.

The faces come from distill.data.synthface's writer (``generate``, then read back like any data
set) when it exists; otherwise straight from its geometry (sample_params + pose_face: the same
points and angles, no pixels rendered).

    python benchmarks/pose_accuracy.py [--num 300] [--size 128] [--seed 0]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from distill.data.pose import estimate_pose
from distill.data.sampling import DEFAULT_EDGES, pose_bins


def faces_from_writer(num: int, size: int, seed: int, out: Path):
    """(points (N, 68, 2), true (N, 3), image_size) via the SynthFace writer, or None if absent."""
    try:
        from distill.data.synthface import generate
    except ImportError:
        return None
    from distill.data.formats.load import load_samples

    generate(out, num=num, seed=seed, size=size, workers=1, num_test=0)
    samples, _ = load_samples("synthface", out, split="train")
    points = np.stack([s.points for s in samples])
    true = np.array([[s.attributes["yaw"], s.attributes["pitch"], s.attributes["roll"]] for s in samples])
    return points, true, (size, size)


def faces_from_geometry(num: int, size: int, seed: int):
    """The same faces' points and angles without rendering: SynthFace's sampler and projector."""
    from distill.data.synthface.face_model import pose_face
    from distill.data.synthface.params import sample_params

    rng = np.random.default_rng(seed)
    points, true = [], []
    for _ in range(num):
        p = sample_params(rng)
        points.append(pose_face(p, size).p68)
        true.append((p.yaw, p.pitch, p.roll))
    return np.stack(points), np.array(true), (size, size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num", type=int, default=300)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        got = faces_from_writer(args.num, args.size, args.seed, Path(tmp))
        source = "SynthFace writer (read back from disk)"
        if got is None:
            got = faces_from_geometry(args.num, args.size, args.seed)
            source = "SynthFace geometry (writer not available)"
    points, true, image_size = got

    errors = {}
    for principal in ("face", "image"):
        t0 = time.perf_counter()
        est = np.stack(estimate_pose(points, image_size, principal=principal), axis=1)   # (N, 3)
        ms = (time.perf_counter() - t0) / len(points) * 1e3
        errors[principal] = (np.abs(est - true), ms)

    bins = pose_bins(true[:, 0])
    edges = DEFAULT_EDGES
    table = Table(title=f"Pose from ground-truth points: mean absolute error, degrees ({len(points)} faces, "
                        f"{source}, {image_size[0]}px); principal point at the face centre, then (img-pp) "
                        f"at the image centre")
    for col in ("true yaw", "faces", "yaw", "pitch", "roll", "yaw img-pp", "pitch img-pp", "roll img-pp"):
        table.add_column(col, justify="right")

    def row(name: str, mask: np.ndarray) -> None:
        if not mask.any():
            table.add_row(name, "0", *["-"] * 6)
            return
        f, i = errors["face"][0][mask].mean(0), errors["image"][0][mask].mean(0)
        table.add_row(name, str(int(mask.sum())), *(f"{v:.2f}" for v in f), *(f"{v:.2f}" for v in i))

    for b in range(len(edges) - 1):
        row(f"[{edges[b]:g}, {edges[b + 1]:g})", bins == b)
    table.add_section()
    row("|yaw| <= 45", np.abs(true[:, 0]) <= 45)
    row("|yaw| > 45", np.abs(true[:, 0]) > 45)
    row("all", np.ones(len(true), bool))
    console = Console(width=120)
    console.print(table)
    console.print(f"solvePnP time per face: {errors['face'][1]:.2f} ms (face pp), "
                  f"{errors['image'][1]:.2f} ms (image pp)")


if __name__ == "__main__":
    main()
