"""End-to-end landmark speed against dlib's 68-point shape predictor. Prints a table; asserts nothing.

    python benchmarks/vs_dlib.py [MODEL.onnx|.ckpt|.pt ...] [--photo-size 640] [--repeats 300] [--rounds 5]

Both sides start from the same full-resolution photo and the same face box and end with (68, 2)
numpy points in image pixels, on ONE thread:
    distill  LandmarkPredictor.predict: warpAffine to the crop, model + decoding, inverse affine
    dlib     shape_predictor(image, rectangle) (an ensemble of regression trees, Kazemi & Sullivan
             2014, face_recognition_models' shape_predictor_68_face_landmarks.dat), parts -> numpy
The methods are timed in interleaved rounds (each round times every method in turn) and each keeps
its quickest round, so a slow spell of the machine does not favour one side.
Speed does not depend on the weights, so without model arguments an untrained ConvDW regressor and
a 1x32 Hourglass student at 64x64 are exported to ONNX in a temp folder and measured.
Needs the optional extra: `pip install -e .[dlib]` (dlib + face_recognition_models); without them
it prints why and exits 0. The `dlib` sdist compiles for ~25 minutes on two cores (-O3, AVX); the
`dlib-bin` wheel installs the same module in seconds and measured the same speed here.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
from pathlib import Path

import numpy as np

# dlib's 68-point predictor as first measured for this project: 0.38 ms per face on one thread of a 2-core
# AMD box, source build (about 2,600 faces/s); docs/landmarks.md, "Speed references"
REFERENCE_DLIB_MS = 0.38


def dlib_model_path() -> Path | None:
    """The 68-point model inside face_recognition_models, found without importing the package (its
    __init__ needs pkg_resources, which recent setuptools no longer ship)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / "shape_predictor_68_face_landmarks.dat"
    return path if path.is_file() else None


def default_models(folder: Path) -> list[Path]:
    """Untrained ConvDW (default width) and a 1x32 Hourglass student, exported to ONNX."""
    from distill.checkpoint import model_info, save_model_checkpoint
    from distill.data import SCHEMAS
    from distill.deploy.export import export
    from distill.models import build_model

    out = []
    for name, model in (("convdw", build_model("convdw")),
                        ("hourglass_1x32", build_model("hourglass", num_stacks=1, channels=32, depth=3, input_size=64))):
        ckpt = folder / f"{name}.ckpt"
        save_model_checkpoint(ckpt, model.eval(), model_info(model, SCHEMAS["ibug68"], recipe_name="bench"))
        out.append(export(ckpt, "onnx", folder / f"{name}.onnx", log=lambda *a: None).path)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help="model files (default: untrained ConvDW + Hourglass student)")
    parser.add_argument("--photo-size", type=int, default=640)
    parser.add_argument("--repeats", type=int, default=300, help="timed calls per method and round")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds; each method keeps its quickest")
    args = parser.parse_args(argv)

    try:
        import dlib
    except ImportError:
        print("vs_dlib: skipped: dlib is not installed (pip install -e '.[dlib]'; the `dlib` sdist compiles "
              "for a long time, the `dlib-bin` wheel installs the same module)")
        return 0
    weights = dlib_model_path()
    if weights is None:
        print("vs_dlib: skipped: face_recognition_models (dlib's 68-point model) is not installed")
        return 0

    import cv2
    import torch
    from rich.console import Console
    from rich.table import Table

    from distill.deploy.bench import bench_photo, interleaved_timings_ms
    from distill.deploy.predictor import LandmarkPredictor

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    photo, box = bench_photo(args.photo_size)
    rgb = cv2.cvtColor(photo, cv2.COLOR_BGR2RGB)  # dlib wants RGB; decoding the photo is outside both timings
    shape_predictor = dlib.shape_predictor(str(weights))
    rect = dlib.rectangle(*(int(round(v)) for v in box))

    def run_dlib():
        shape = shape_predictor(rgb, rect)
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)  # (68, 2)

    fns = {"dlib ERT 68 (shape_predictor)": run_dlib}
    with tempfile.TemporaryDirectory() as tmp:
        paths = [Path(p) for p in args.models] or default_models(Path(tmp))
        for path in paths:
            predictor = LandmarkPredictor(path, threads=1)
            name = f"distill {path.name} ({path.suffix.lstrip('.')}, {'ORT' if path.suffix == '.onnx' else 'torch'})"
            if name in fns:  # two files of the same name from different folders: both get a row
                name = f"{name} #{len(fns)}"
            fns[name] = (lambda p: lambda: p.predict(photo, [box]))(predictor)
        rows = list(interleaved_timings_ms(fns, args.repeats, args.rounds).items())

    dlib_rate = 1e3 / rows[0][1].mean()
    # the ratio is also given against that reference measurement (0.38 ms per face);
    # on this project's 2-core VM dlib itself takes 1-3 ms, 3x apart between runs (source build with
    # -O3 -mavx and the dlib-bin wheel alike), so that column is the stricter one
    reference = 1e3 / REFERENCE_DLIB_MS
    table = Table(title=f"end to end, one thread, {photo.shape[1]}x{photo.shape[0]} photo + face box -> 68 points")
    for col in ("method", "p50 ms", "p90 ms", "faces/s", "vs dlib (measured)", f"vs dlib {reference:,.0f}/s (ref)"):
        table.add_column(col, justify="left" if col == "method" else "right")
    for name, t in rows:
        rate = 1e3 / t.mean()
        table.add_row(name, f"{np.median(t):.3f}", f"{np.percentile(t, 90):.3f}", f"{rate:,.0f}",
                      f"{rate / dlib_rate:.2f}x", f"{rate / reference:.2f}x")
    Console(width=120).print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
