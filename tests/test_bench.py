"""bench_models: the rows it returns (no timing assertions) and the `distill bench` command."""

from __future__ import annotations

import json

import pytest

from distill.bench import ROW_KEYS, bench_models, interleaved_timings_ms
from distill.cli import main
from distill.export import export
from tests.test_export import make_checkpoint


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bench")
    ckpt, model = make_checkpoint(folder / "convdw.ckpt", "convdw_tiny")
    export(ckpt, "onnx", folder / "convdw.onnx", log=lambda *a: None)
    return ckpt, folder / "convdw.onnx", sum(p.numel() for p in model.parameters())


def _positive(row, keys):
    return all(isinstance(row[k], float) and row[k] > 0 for k in keys)


def test_bench_models_rows_for_ckpt_and_onnx(files):
    ckpt, onnx_path, params = files
    rows = bench_models([ckpt, onnx_path], photo_size=160, repeats=2, batch=4, fast=True)
    assert [r["model"] for r in rows] == ["convdw.ckpt", "convdw.onnx"]
    for row in rows:
        assert set(row) == set(ROW_KEYS)
        assert row["params"] == params and row["input_size"] == 64 and row["num_points"] == 68
        assert row["gflops"] > 0 and row["file_bytes"] > 0 and row["batch"] == 4
        assert _positive(row, [k for k in ROW_KEYS if k.endswith(("ort_ms_p50", "ort_ms_p90", "ort_img_s"))
                               or k.startswith("e2e_ort")])
    # a checkpoint runs in torch too (and is exported to a temp ONNX for the ORT columns)
    assert _positive(rows[0], [k for k in ROW_KEYS if "torch" in k])
    # a bare .onnx has no torch runtime
    assert all(rows[1][k] is None for k in ROW_KEYS if "torch" in k)


def test_bench_cli_writes_json(files, tmp_path, capsys):
    _, onnx_path, _ = files
    out = tmp_path / "bench.json"
    assert main(["bench", str(onnx_path), "--fast", "--repeats", "2", "--batch", "2", "--photo-size", "160",
                 "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert len(rows) == 1 and rows[0]["e2e_ort_faces_s"] > 0
    assert "convdw.onnx" in capsys.readouterr().out


def test_bench_cli_bad_model_is_one_line(tmp_path, capsys):
    (tmp_path / "m.txt").write_text("x")
    for path in (tmp_path / "missing.onnx", tmp_path / "m.txt"):
        assert main(["bench", str(path), "--fast"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("distill bench: error:") and "\n" not in err


def _slow_then_fast(slow_calls: int):
    """fn() that sleeps 2 ms for its first `slow_calls` calls and not at all afterwards."""
    import time

    calls = []

    def fn():
        calls.append(1)
        if len(calls) <= slow_calls:
            time.sleep(0.002)

    return fn


def test_interleaved_timings_give_every_method_its_quickest_round():
    # round 1 is slow throughout for both (a busy spell), round 2 is not: the quick round comes back
    best = interleaved_timings_ms({"a": _slow_then_fast(4), "b": _slow_then_fast(4)}, repeats=4, rounds=2, warmup=0)
    assert set(best) == {"a", "b"} and all(len(t) == 4 and t.max() < 1.0 for t in best.values())
    once = interleaved_timings_ms({"a": _slow_then_fast(4)}, repeats=4, rounds=1, warmup=0)
    assert once["a"].min() >= 2.0
