"""Who should vote in `distill data check`: every face, or the more symmetric half. Prints a table; asserts nothing.

    python benchmarks/flip_check_vote.py [--num 200] [--size 128]

On SynthFace training faces (seed 3) in the 68-point, WFLW-98 and AFLW-19 schemas (AFLW's through
`data synth --layout aflw`), each point's agreement (the share of voting faces on which its reflection lands on
its schema partner, distill.data.flip_check.doubted at the default tolerance) is computed with every face voting
and with the more symmetric half voting. A correct schema should agree everywhere (its lowest point well above
the 0.5 threshold); a schema with one swapped pair (eye corners) should not (its swapped points near 0).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from distill.data.flip_check import doubted
from distill.data.formats import load_samples
from distill.data.schema import LandmarkSchema, get_schema
from distill.data.synthface import generate

SWAP = {"ibug68": (36, 39), "wflw98": (60, 64), "aflw19": (6, 8)}   # outer and inner corner of one eye


def swapped(schema: LandmarkSchema, a: int, b: int) -> LandmarkSchema:
    perm = list(schema.flip_perm)
    pa, pb = perm[a], perm[b]
    perm[a], perm[b], perm[pa], perm[pb] = pb, pa, b, a
    return LandmarkSchema(f"{schema.name} (swapped)", schema.num_points, tuple(perm), schema.norm_pair)


def agreement(faces: list[np.ndarray], schema: LandmarkSchema) -> tuple[np.ndarray, np.ndarray]:
    """(K,) agreement with every face voting, and with the more symmetric half voting."""
    found = [doubted(p, schema.flip_perm, 0.1) for p in faces]
    doubts = np.stack([d for d, _, _ in found])
    half = np.argsort([a for _, _, a in found], kind="stable")[: (len(found) + 1) // 2]
    return 1 - doubts.mean(0), 1 - doubts[half].mean(0)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--num", type=int, default=200)
    p.add_argument("--size", type=int, default=128)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        kw = dict(num=args.num, num_test=0, seed=3, size=args.size, workers=2, progress=False)
        own, aflw = generate(Path(tmp) / "own", **kw), generate(Path(tmp) / "aflw", layout="aflw", **kw)
        data = {"ibug68": load_samples("synthface", own, split="train")[0],
                "wflw98": load_samples("wflw", own, split="train")[0],
                "aflw19": load_samples("aflw", aflw, split="train")[0]}
    table = Table(title=f"Flip-pair agreement, {args.num} SynthFace faces at {args.size} px: lowest point (which)")
    for col in ("schema", "every face votes", "the symmetric half votes"):
        table.add_column(col)
    for name, samples in data.items():
        faces = [np.asarray(s.points, np.float64) for s in samples]
        for schema in (get_schema(name), swapped(get_schema(name), *SWAP[name])):
            every, half = agreement(faces, schema)
            table.add_row(schema.name, f"{every.min():.2f} (point {every.argmin()})", f"{half.min():.2f} (point {half.argmin()})")
    Console().print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
