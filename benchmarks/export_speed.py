"""Teacher vs student vs regressor, end to end and model only, torch and ONNX Runtime. Prints a table.

    python benchmarks/export_speed.py [--repeats 50] [--batch 32] [--photo-size 640]

Untrained models (speed does not depend on the weights) at the SynthFace study's sizes, 64x64 input:
the 2x128 Hourglass teacher, the 1x32 Hourglass student and the default ConvDW regressor. Each is
saved as a checkpoint, exported to ONNX by `distill.bench` (parity-checked) and measured with
`bench_models`; the last lines print the student's and the regressor's speed-up over the teacher.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

MODELS = {
    "teacher_hg2x128": ("hourglass", dict(num_stacks=2, channels=128, depth=3, input_size=64)),
    "student_hg1x32": ("hourglass", dict(num_stacks=1, channels=32, depth=3, input_size=64)),
    "convdw": ("convdw", {}),
}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--photo-size", type=int, default=640)
    args = parser.parse_args(argv)

    from distill.bench import bench_models, print_table
    from distill.checkpoint import model_info, save_model_checkpoint
    from distill.data import SCHEMAS
    from distill.models import build_model

    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for name, (preset, overrides) in MODELS.items():
            model = build_model(preset, **overrides).eval()
            paths.append(Path(tmp) / f"{name}.ckpt")
            save_model_checkpoint(paths[-1], model, model_info(model, SCHEMAS["ibug68"], recipe_name="bench"))
        rows = bench_models(paths, photo_size=args.photo_size, repeats=args.repeats, batch=args.batch)
    print_table(rows)
    teacher = rows[0]
    for row in rows[1:]:
        for key, what in (("ort_img_s", f"model-only ORT throughput (batch {args.batch}, all threads)"),
                          ("e2e_ort_faces_s", "end-to-end ORT faces/s (1 thread)"),
                          ("torch_img_s", f"model-only torch throughput (batch {args.batch}, all threads)")):
            print(f"{row['model']} vs {teacher['model']}: {row[key] / teacher[key]:.1f}x {what}")


if __name__ == "__main__":
    main()
