"""Export: ONNX / TorchScript round trips for every model family, metadata, int8, failures."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from distill import DataError
from distill.checkpoint import model_info, save_model_checkpoint
from distill.cli import main
from distill.data import SCHEMAS, write_pts
from distill.export import (PARITY_TOL_PX, DeployModule, ExportError, _load_torchscript, export, ort_session,
                            random_crops, read_metadata, run_ort, run_torch)
from distill.models import build_model

FAMILIES = ["hourglass_tiny", "convdw_tiny", "mobilenetv2_tiny", "shufflenetv2_tiny"]


def make_checkpoint(path, name: str, seed: int = 0):
    """A tiny model with non-trivial BatchNorm statistics (so eval vs train mode would show), saved."""
    torch.manual_seed(seed)
    model = build_model(name)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_(0.0, 0.2)
            m.running_var.uniform_(0.5, 2.0)
    model.eval()
    save_model_checkpoint(path, model, model_info(model, SCHEMAS["ibug68"], recipe={"seed": seed},
                                                  recipe_name="tests/tiny"))
    return path, model


def write_face_folder(folder, num: int = 4, size: int = 96, seed: int = 0):
    """A 300W-style folder: noise images with a 68-point .pts each (points inside a face box)."""
    import cv2

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(num):
        cv2.imwrite(str(folder / f"face{i}.png"), rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
        write_pts(folder / f"face{i}.pts", rng.uniform(20, size - 20, size=(68, 2)).astype(np.float32))
    return folder


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ckpts")
    return {name: make_checkpoint(folder / f"{name}.ckpt", name) for name in FAMILIES}


@pytest.fixture(scope="module")
def exported(ckpts, tmp_path_factory):
    """exported(name, fmt) -> (path, ExportResult), each export done once per module."""
    folder, cache = tmp_path_factory.mktemp("exports"), {}

    def get(name: str, fmt: str):
        if (name, fmt) not in cache:
            out = folder / f"{name}{'.onnx' if fmt == 'onnx' else '.pt'}"
            cache[name, fmt] = out, export(ckpts[name][0], fmt, out, log=lambda *a: None)
        return cache[name, fmt]

    return get


def _deploy(model):
    return DeployModule(model, "dark")


@pytest.mark.parametrize("name", FAMILIES)
def test_onnx_round_trip_matches_torch_at_any_batch(ckpts, exported, name):
    _, model = ckpts[name]
    out, result = exported(name, "onnx")
    assert out.is_file() and result.parity_px["onnxruntime"] <= PARITY_TOL_PX
    session = ort_session(out)
    (inp,), outs = session.get_inputs(), session.get_outputs()
    assert inp.name == "image" and inp.type == "tensor(uint8)" and inp.shape[1:] == [3, 64, 64]
    assert [o.name for o in outs] == ["points", "confidence"]
    deploy = _deploy(model)
    for batch in (1, 3):
        crops = random_crops(batch, 64, seed=batch + 10)
        ref_p, ref_c = run_torch(deploy, crops)
        got_p, got_c = run_ort(session, crops)
        assert got_p.shape == (batch, 68, 2) and got_c.shape == (batch, 68) and got_p.dtype == np.float32
        np.testing.assert_allclose(got_p, ref_p, atol=PARITY_TOL_PX, rtol=0)
        np.testing.assert_allclose(got_c, ref_c, atol=1e-4, rtol=0)


def test_deploy_module_stays_in_eval_mode(ckpts):
    # the tracing exporter restores the wrapper's mode on every submodule; BatchNorm must never train
    deploy = _deploy(ckpts["hourglass_tiny"][1])
    deploy.train()
    assert not any(m.training for m in deploy.modules())


@pytest.mark.parametrize("name", FAMILIES)
def test_torchscript_round_trip_matches_torch_at_any_batch(ckpts, exported, name):
    _, model = ckpts[name]
    out, result = exported(name, "torchscript")
    assert result.parity_px["torchscript"] <= PARITY_TOL_PX
    traced, _ = _load_torchscript(out)
    deploy = _deploy(model)
    for batch in (1, 3):
        crops = random_crops(batch, 64, seed=batch)
        ref_p, ref_c = run_torch(deploy, crops)
        got_p, got_c = run_torch(traced, crops)
        assert got_p.shape == (batch, 68, 2)
        np.testing.assert_allclose(got_p, ref_p, atol=PARITY_TOL_PX, rtol=0)
        np.testing.assert_allclose(got_c, ref_c, atol=1e-4, rtol=0)


def test_points_are_crop_pixels_and_confidence_follows_the_output_kind(ckpts):
    # a regressor's u = 0.5 is the crop centre (S - 1) / 2; it has no confidence, so 1.0
    _, model = ckpts["convdw_tiny"]
    torch.nn.init.zeros_(model.head.fc.weight)
    torch.nn.init.constant_(model.head.fc.bias, 0.5)
    points, conf = run_torch(_deploy(model), random_crops(2, 64))
    np.testing.assert_allclose(points, 31.5, atol=1e-5)
    np.testing.assert_array_equal(conf, 1.0)
    # a heatmap model's confidence is the raw heatmap peak of each point
    _, hg = ckpts["hourglass_tiny"]
    crops = random_crops(2, 64)
    _, conf = run_torch(_deploy(hg), crops)
    with torch.no_grad():
        heatmaps = hg((torch.from_numpy(crops).float() / 255 - 0.5) / 0.25)
    np.testing.assert_allclose(conf, heatmaps.flatten(2).amax(-1).numpy(), atol=1e-6)


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_metadata_read_back(exported, fmt):
    out, result = exported("hourglass_tiny", fmt)
    meta = read_metadata(out)
    assert meta == result.metadata
    assert meta["schema"] == "ibug68" and meta["num_points"] == 68 and meta["input_size"] == 64
    assert meta["flip_perm"] == list(SCHEMAS["ibug68"].flip_perm)
    assert meta["normalisation"]["mean"] == 0.5 and meta["normalisation"]["std"] == 0.25
    assert meta["normalisation"]["channels"] == "BGR"
    assert meta["decode"] == "dark" and meta["output_kind"] == "heatmap"
    assert meta["recipe_name"] == "tests/tiny" and len(meta["recipe_hash"]) == 16
    assert meta["library_version"] and meta["crop_margin"] == 0.25 and meta["quantization"] == "none"


def test_int8_is_smaller_and_runs(ckpts, exported, tmp_path):
    ckpt, _ = ckpts["mobilenetv2_tiny"]
    float_path, int8_path = exported("mobilenetv2_tiny", "onnx")[0], tmp_path / "q.onnx"
    result = export(ckpt, "onnx", int8_path, int8=True, calib_data=random_crops(8, 64, seed=3), num_calib=8,
                    log=lambda *a: None)
    assert result.int8 and int8_path.stat().st_size < float_path.stat().st_size
    assert result.float_bytes == float_path.stat().st_size
    assert result.nme_int8 is None  # crops without labels: no NME
    meta = read_metadata(int8_path)
    assert "int8" in meta["quantization"] and meta["num_points"] == 68
    points, conf = run_ort(ort_session(int8_path), random_crops(3, 64))
    assert points.shape == (3, 68, 2) and np.isfinite(points).all()
    assert not list(tmp_path.glob(".*"))  # no temp files left


def test_int8_with_a_data_folder_measures_nme(ckpts, tmp_path):
    ckpt, _ = ckpts["convdw_tiny"]
    data = write_face_folder(tmp_path / "data")
    lines = []
    result = export(ckpt, "onnx", tmp_path / "q.onnx", int8=True, calib_data=data, num_calib=4, log=lines.append)
    assert result.nme_float is not None and result.nme_int8 is not None and result.nme_float > 0
    assert "crops of" in result.parity_inputs  # parity ran on real crops, not noise
    assert any("NME" in line for line in lines)


def test_failed_parity_leaves_no_file(ckpts, tmp_path, monkeypatch, capsys):
    import distill.export as ex

    monkeypatch.setattr(ex, "PARITY_TOL_PX", -1.0)  # nothing can pass
    ckpt, _ = ckpts["convdw_tiny"]
    out = tmp_path / "x.onnx"
    with pytest.raises(ExportError, match="crop px"):
        export(ckpt, "onnx", out, log=lambda *a: None)
    assert not out.exists() and not list(tmp_path.iterdir())
    assert main(["export", str(ckpt), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "differs from torch" in err and not out.exists()


def test_export_cli_writes_the_file(ckpts, tmp_path, capsys):
    ckpt, _ = ckpts["shufflenetv2_tiny"]
    out = tmp_path / "s.pt"
    assert main(["export", str(ckpt), "--format", "torchscript", "--out", str(out)]) == 0
    assert out.is_file() and "parity torchscript" in capsys.readouterr().out


@pytest.mark.parametrize("case", ["missing", "wrong_kind", "int8_torchscript"])
def test_export_cli_bad_input_is_one_line(ckpts, tmp_path, capsys, case):
    if case == "missing":
        args = [str(tmp_path / "nope.ckpt"), "--out", str(tmp_path / "x.onnx")]
    elif case == "wrong_kind":
        torch.save({"weights": torch.zeros(3)}, tmp_path / "random.ckpt")
        args = [str(tmp_path / "random.ckpt"), "--out", str(tmp_path / "x.onnx")]
    else:
        args = [str(ckpts["convdw_tiny"][0]), "--format", "torchscript", "--int8", "--out", str(tmp_path / "x.pt")]
    assert main(["export", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("distill export: error:") and "\n" not in err
    assert not (tmp_path / "x.onnx").exists()


def test_read_metadata_rejects_corrupt_and_foreign_files(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(np.random.default_rng(0).bytes(500))
    with pytest.raises(DataError, match="bad.onnx"):
        read_metadata(bad)
    with pytest.raises(DataError, match="not found"):
        read_metadata(tmp_path / "none.onnx")
