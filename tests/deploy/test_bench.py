"""bench_models: the rows it returns (no timing assertions) and the `distill bench` command."""

from __future__ import annotations

import json

import numpy as np
import pytest

from distill.cli import main
from distill.deploy.bench import ROW_KEYS, bench_models, interleaved_timings_ms
from distill.deploy.export import export
from tests.deploy.helpers import make_checkpoint


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


class FakeClock:
    """Stands in for the bench module's clock: time moves only when a timed function says so."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now

    def method(self, durations_ms):
        """fn() that takes durations_ms[i] on its i-th call (the last value from then on)."""
        calls = []

        def fn():
            self.now += durations_ms[min(len(calls), len(durations_ms) - 1)] / 1e3
            calls.append(1)

        return fn


def test_interleaved_timings_give_every_method_its_quickest_round(monkeypatch):
    import distill.deploy.bench as bench

    clock = FakeClock()
    monkeypatch.setattr(bench, "time", clock)
    # round 1 is a slow spell for both (2 ms a call), round 2 is not (0.1 ms): each keeps its quick round
    best = interleaved_timings_ms({"a": clock.method([2.0] * 4 + [0.1]), "b": clock.method([2.0] * 4 + [0.1])},
                                  repeats=4, rounds=2, warmup=0)
    assert set(best) == {"a", "b"}
    for t in best.values():
        np.testing.assert_allclose(t, [0.1] * 4)
    once = interleaved_timings_ms({"a": clock.method([2.0] * 4 + [0.1])}, repeats=4, rounds=1, warmup=0)
    np.testing.assert_allclose(once["a"], [2.0] * 4)
    # warm-up calls are not timed
    warm = interleaved_timings_ms({"a": clock.method([5.0, 5.0, 1.0])}, repeats=3, rounds=1, warmup=2)
    np.testing.assert_allclose(warm["a"], [1.0] * 3)
