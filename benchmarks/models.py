"""Size, cost and CPU speed of the model zoo, side by side. Prints a table; asserts nothing.

    python benchmarks/models.py [--reps 20] [--no-onnx]

Columns: parameters, fp32 size (parameters + BN statistics), GFLOPs per image (FlopCounterMode,
2 x multiply-adds), PyTorch latency at batch 1 on one thread (median), PyTorch throughput at batch 32
on all threads, and ONNX Runtime throughput at batch 64 on one thread (the model graph alone, float
input, TorchScript-based exporter; the exported product adds uint8 normalisation and decoding).
The Newell teacher at 256x256 gets batch-1 latency only: its batch runs would take minutes here.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import time
import warnings

import torch
from rich.console import Console
from rich.table import Table

from distill.models import build_model, model_facts

# name -> (MODEL_CONFIGS entry, overrides, run the batch benchmarks?)
ROWS = {
    "Newell teacher 4x256 @256": ("hourglass", {}, False),
    "synth teacher 2x128 d3 @64": ("hourglass", dict(num_stacks=2, channels=128, depth=3, input_size=64), True),
    "synth teacher 2x128 stem128": ("hourglass", dict(num_stacks=2, channels=128, depth=3, input_size=64,
                                                      stem_channels=128), True),
    "student 1x32 stem16 d3 @64": ("hourglass", dict(num_stacks=1, channels=32, stem_channels=16, depth=3,
                                                     input_size=64), True),
    "student 1x48 d3 @64": ("hourglass", dict(num_stacks=1, channels=48, depth=3, input_size=64), True),
    "ConvDW (default)": ("convdw", {}, True),
    "MobileNetV2 regressor": ("mobilenetv2", {}, True),
    "ShuffleNetV2 regressor": ("shufflenetv2", {}, True),
}


def timed(fn, reps: int, warmup: int = 3) -> list[float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times


@torch.no_grad()
def torch_speed(model, batch: int, threads: int, reps: int) -> list[float]:
    torch.set_num_threads(threads)
    x = torch.randn(batch, 3, model.input_size, model.input_size)
    return timed(lambda: model(x), reps)


def onnx_throughput(model, batch: int, reps: int) -> float:
    import onnxruntime as ort

    x = torch.randn(batch, 3, model.input_size, model.input_size)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(model, (x,), buf, dynamo=False, opset_version=17, input_names=["image"],
                          dynamic_axes={"image": {0: "batch"}})
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(buf.getvalue(), options, providers=["CPUExecutionProvider"])
    feed = {"image": x.numpy()}
    return batch / statistics.median(timed(lambda: session.run(None, feed), reps))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=20, help="timed repetitions per measurement")
    parser.add_argument("--no-onnx", action="store_true", help="skip the ONNX Runtime column")
    args = parser.parse_args()
    all_threads = os.cpu_count() or 1

    table = Table(title=f"distill models on CPU ({all_threads} threads available)")
    for col in ["model", "params", "KB fp32", "GFLOPs", "b1 1-thr p50 ms", f"b32 {all_threads}-thr img/s",
                "ORT b64 1-thr img/s"]:
        table.add_column(col, justify="left" if col == "model" else "right")

    for label, (name, overrides, batched) in ROWS.items():
        model = build_model(name, **overrides).eval()
        facts = model_facts(model)
        b1 = statistics.median(torch_speed(model, 1, 1, args.reps if batched else 3)) * 1e3
        b32 = ort_rate = "-"
        if batched:
            b32 = f"{32 / statistics.median(torch_speed(model, 32, all_threads, args.reps)):,.0f}"
            if not args.no_onnx:
                ort_rate = f"{onnx_throughput(model, 64, args.reps):,.0f}"
        table.add_row(label, f"{facts['params']:,}", f"{facts['bytes'] / 1024:,.1f}", f"{facts['gflops']:.4f}",
                      f"{b1:.2f}", b32, ort_rate)
    Console(width=150).print(table)


if __name__ == "__main__":
    main()
