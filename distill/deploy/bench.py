"""Size, FLOPs, latency and throughput of models, side by side.

For each model file (.ckpt, .onnx or TorchScript .pt) and each runtime that can run it (torch: eager
for .ckpt, TorchScript for .pt; ONNX Runtime: .onnx, and .ckpt exported to a temp .onnx):

    model-only   uint8 crop -> points + confidence (normalisation and decoding included, as exported)
                 latency at batch 1 on ONE thread (p50 / p90 ms), throughput at batch ``batch`` on all threads
    end-to-end   a full-resolution photo (photo_size x 3/4 photo_size) and a face box -> warpAffine to
                 the crop -> model -> points mapped back to image px (LandmarkPredictor.predict), one
                 thread, reported as faces/s: what a deployment that already has a face box pays

Timings are wall-clock medians over ``repeats`` runs after warm-up. Each measurement runs in ``rounds``
rounds that take every model in turn, and each model keeps its quickest round (see
:func:`interleaved_timings_ms`): on a shared machine a slow spell then cannot land on one model only.
They are printed, never asserted.
"""

from __future__ import annotations

import os
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch

from distill.checkpoint import load_model
from distill.deploy.export import export
from distill.deploy.predictor import LandmarkPredictor
from distill.deploy.runtime import BACKENDS, load_backend, model_label, ort_session, run_ort
from distill.errors import DataError
from distill.models.facts import model_facts

RUNTIMES = ("torch", "ort")
# per runtime r: r_ms_p50 / r_ms_p90 (model only, batch 1, 1 thread), r_img_s (model only, batch, all threads),
# e2e_r_ms_p50 / e2e_r_ms_p90 / e2e_r_faces_s (photo + box, 1 thread), e2e_r_batch_faces_s (a photo with
# `batch` boxes, all threads)
ROW_KEYS = ("model", "format", "input_size", "num_points", "params", "file_bytes", "gflops", "batch") + tuple(
    f"{prefix}{r}{suffix}" for r in RUNTIMES for prefix, suffix in
    (("", "_ms_p50"), ("", "_ms_p90"), ("", "_img_s"), ("e2e_", "_ms_p50"), ("e2e_", "_ms_p90"),
     ("e2e_", "_faces_s"), ("e2e_", "_batch_faces_s")))


def timings_ms(fn, repeats: int, warmup: int = 3) -> np.ndarray:
    """Wall-clock milliseconds of ``repeats`` calls of fn() after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    out = np.empty(repeats)
    for i in range(repeats):
        t = time.perf_counter()
        fn()
        out[i] = (time.perf_counter() - t) * 1e3
    return out


def interleaved_timings_ms(fns: dict, repeats: int, rounds: int = 5, warmup: int = 10) -> dict:
    """{name: fn} -> {name: the timings (``repeats`` calls) of its quickest round}.

    Every round times each fn in turn, and each keeps the round with its lowest median: on a shared or
    virtual machine a slow spell inflates whole rounds (the same ONNX Runtime session measured 0.55 and
    0.90 ms per call a second apart here), so the quickest round is the one that reproduces, and
    interleaving lets slow spells hit all methods alike (side-by-side ratios are the point).
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    best: dict = {}
    for _ in range(max(1, rounds)):
        for name, fn in fns.items():
            t = timings_ms(fn, repeats, warmup=0)
            if name not in best or np.median(t) < np.median(best[name]):
                best[name] = t
    return best


def bench_photo(photo_size: int = 640, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A (3/4 * size, size, 3) uint8 BGR photo with smooth content and noise, and a face box in it."""
    rng = np.random.default_rng(seed)
    w, h = photo_size, photo_size * 3 // 4
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([xx / w, yy / h, (xx + yy) / (w + h)], axis=-1) * 200  # (H, W, 3)
    photo = np.clip(base + rng.normal(0, 12, size=base.shape), 0, 255).astype(np.uint8)
    side = h / 3
    box = np.array([w / 2 - side / 2, h / 2 - side / 2, w / 2 + side / 2, h / 2 + side / 2], dtype=np.float32)
    return photo, box


def _onnx_params(path: Path) -> int:
    import onnx

    model = onnx.load(str(path))
    return int(sum(np.prod(t.dims) for t in model.graph.initializer))


def _prepare(path, folder: Path, batch: int) -> tuple[dict, dict]:
    """-> (row with the model's facts, {runtime: (file a LandmarkPredictor loads, run(crops), one crop,
    a batch of crops)}); ``folder`` is this model's own scratch folder (two files may share a name).

    A .ckpt runs in torch and, exported to a temporary .onnx, in ONNX Runtime; a TorchScript .pt in torch;
    an .onnx in ONNX Runtime."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in BACKENDS:
        raise DataError(f"{path}: cannot benchmark a {suffix!r} file (expected {', '.join(BACKENDS)})")
    backend = load_backend(path)
    meta = backend.metadata
    row = dict.fromkeys(ROW_KEYS)
    row.update(model=model_label(path), file_bytes=path.stat().st_size, batch=batch, format=suffix.lstrip("."),
               input_size=backend.input_size, num_points=backend.num_points, params=meta.get("params"),
               gflops=meta.get("gflops"))
    folder.mkdir()
    onnx_path = None
    if suffix == ".ckpt":
        model, _ = load_model(path)
        counted = model_facts(model, backend.input_size)
        row.update(params=int(counted["params"]), gflops=float(counted["gflops"]))
        onnx_path = folder / f"{path.stem}.onnx"
        export(path, "onnx", onnx_path, log=lambda *a: None)
    elif suffix == ".onnx":
        onnx_path = path
        if row["params"] is None:
            row["params"] = _onnx_params(path)
    s = row["input_size"]
    rng = np.random.default_rng(0)
    one = rng.integers(0, 256, size=(1, 3, s, s), dtype=np.uint8)
    many = rng.integers(0, 256, size=(batch, 3, s, s), dtype=np.uint8)
    runners = {}
    if suffix != ".onnx":
        runners["torch"] = (path, backend.run, one, many)
    if onnx_path is not None:
        single, full = ort_session(onnx_path, threads=1), ort_session(onnx_path, threads=0)
        runners["ort"] = (onnx_path, lambda crops: run_ort(single if len(crops) == 1 else full, crops), one, many)
    return row, runners


def _measure(r: str, jobs: dict, rows: list, photo, box, repeats: int, warmup: int, rounds: int,
             threads_all: int) -> None:
    """Fill the timing columns of runtime ``r`` (see ROW_KEYS) into ``rows`` for the models in ``jobs``
    {row index: runner from _prepare}; every measurement is interleaved across the models, so a slow
    spell of the machine does not land on one of them (side-by-side ratios are what bench is for)."""
    few = max(3, repeats // 10)
    torch.set_num_threads(1)
    model_1 = {i: partial(run, one) for i, (_, run, one, _) in jobs.items()}
    for i, t in interleaved_timings_ms(model_1, repeats, rounds, warmup).items():
        rows[i].update({f"{r}_ms_p50": float(np.median(t)), f"{r}_ms_p90": float(np.percentile(t, 90))})
    singles = {i: LandmarkPredictor(file, threads=1) for i, (file, *_) in jobs.items()}
    torch.set_num_threads(1)  # a checkpoint's loader sets torch's threads
    e2e_1 = {i: partial(p.predict, photo, [box]) for i, p in singles.items()}
    for i, t in interleaved_timings_ms(e2e_1, repeats, rounds, warmup).items():
        rows[i].update({f"e2e_{r}_ms_p50": float(np.median(t)), f"e2e_{r}_ms_p90": float(np.percentile(t, 90)),
                        f"e2e_{r}_faces_s": 1e3 / float(t.mean())})
    del singles, e2e_1
    torch.set_num_threads(threads_all)
    model_b = {i: partial(run, many) for i, (_, run, _, many) in jobs.items()}
    for i, t in interleaved_timings_ms(model_b, few, rounds, warmup).items():
        rows[i][f"{r}_img_s"] = rows[i]["batch"] * 1e3 / float(np.median(t))
    fulls = {i: LandmarkPredictor(file, threads=threads_all) for i, (file, *_) in jobs.items()}
    e2e_b = {i: partial(p.predict, photo, [box] * rows[i]["batch"]) for i, p in fulls.items()}
    for i, t in interleaved_timings_ms(e2e_b, few, rounds, warmup).items():
        rows[i][f"e2e_{r}_batch_faces_s"] = rows[i]["batch"] * 1e3 / float(np.median(t))


def bench_models(paths, photo_size: int = 640, repeats: int = 50, batch: int = 32, fast: bool = False,
                 rounds: int = 3) -> list[dict]:
    """Benchmark model files side by side -> one dict per model (keys: ROW_KEYS; None where a runtime
    does not apply). ``fast``: few repeats, one round and a small batch, for smoke runs and the
    quickstart report."""
    if fast:
        repeats, batch, rounds = min(repeats, 10), min(batch, 8), 1
    # TorchScript re-optimises for each new input shape during its first two calls: warm up past them
    warmup = 2 if fast else 3
    threads_before, threads_all = torch.get_num_threads(), os.cpu_count() or 1
    photo, box = bench_photo(photo_size)
    with tempfile.TemporaryDirectory() as tmp:
        prepared = [_prepare(p, Path(tmp) / str(i), batch) for i, p in enumerate(paths)]
        rows = [row for row, _ in prepared]
        try:
            for r in RUNTIMES:
                jobs = {i: runners[r] for i, (_, runners) in enumerate(prepared) if r in runners}
                if jobs:
                    _measure(r, jobs, rows, photo, box, repeats, warmup, rounds, threads_all)
        finally:
            torch.set_num_threads(threads_before)
    return rows


# ----------------------------------------------------------------------------- printing
def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def print_table(rows: list[dict], console=None) -> None:
    """A rich table, one line per model and runtime; "vs first" is end-to-end one-thread faces/s
    relative to the first model on the same runtime."""
    from rich.console import Console
    from rich.table import Table

    batch = rows[0]["batch"] if rows else 32
    table = Table(title=f"distill bench ({os.cpu_count()} CPU cores): model = crop -> points, e2e = photo + box "
                        f"-> image points; 1 thr = batch 1 on one thread, b{batch} = batch {batch} on all threads")
    for name in ("model", "runtime", "params", "KiB", "GFLOPs", "model p50/p90 ms 1 thr", f"model img/s b{batch}",
                 "e2e p50/p90 ms 1 thr", "e2e faces/s 1 thr", f"e2e faces/s b{batch}", "vs first"):
        table.add_column(name, justify="left" if name in ("model", "runtime") else "right", no_wrap=name == "model")
    for r in RUNTIMES:
        first = next((row[f"e2e_{r}_faces_s"] for row in rows if row[f"e2e_{r}_faces_s"]), None)
        for row in rows:
            if row[f"{r}_ms_p50"] is None:
                continue
            table.add_row(
                row["model"], {"torch": "torch", "ort": "ONNX Runtime"}[r], _fmt(row["params"], ",d"),
                f"{row['file_bytes'] / 1024:.1f}", _fmt(row["gflops"], ".4f"),
                f"{row[f'{r}_ms_p50']:.3f} / {row[f'{r}_ms_p90']:.3f}", f"{row[f'{r}_img_s']:,.0f}",
                f"{row[f'e2e_{r}_ms_p50']:.3f} / {row[f'e2e_{r}_ms_p90']:.3f}", f"{row[f'e2e_{r}_faces_s']:,.0f}",
                f"{row[f'e2e_{r}_batch_faces_s']:,.0f}", f"{row[f'e2e_{r}_faces_s'] / first:.2f}x")
    if console is None:
        console = Console(width=max(Console().width, 170))  # a pipe reports 80 columns: too narrow
    console.print(table)
