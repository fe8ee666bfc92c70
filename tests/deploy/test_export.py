"""Export: ONNX / TorchScript round trips for every model family, int8, failures, the CLI."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from distill.checkpoint import load_model, model_info, save_model_checkpoint
from distill.cli import main
from distill.data.schema import SCHEMAS
from distill.data.transforms import crop_matrix, invert_affine, to_tensor, warp
from distill.deploy.export import PARITY_TOL_PX, export, export_cascade
from distill.deploy.module import DeployModule
from distill.deploy.predictor import LandmarkPredictor
from distill.deploy.runtime import load_torchscript, ort_session, random_crops, read_metadata, run_ort, run_torch
from distill.errors import ExportError
from distill.models import build_model
from distill.models.cascade import Cascade, apply_affine
from tests.deploy.helpers import FAMILIES, write_face_folder
from tests.models.helpers import stage1_checkpoint


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


@pytest.mark.parametrize("name", FAMILIES)
def test_torchscript_round_trip_matches_torch_at_any_batch(ckpts, exported, name):
    _, model = ckpts[name]
    out, result = exported(name, "torchscript")
    assert result.parity_px["torchscript"] <= PARITY_TOL_PX
    traced, _ = load_torchscript(out)
    deploy = _deploy(model)
    for batch in (1, 3):
        crops = random_crops(batch, 64, seed=batch)
        ref_p, ref_c = run_torch(deploy, crops)
        got_p, got_c = run_torch(traced, crops)
        assert got_p.shape == (batch, 68, 2)
        np.testing.assert_allclose(got_p, ref_p, atol=PARITY_TOL_PX, rtol=0)
        np.testing.assert_allclose(got_c, ref_c, atol=1e-4, rtol=0)


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
    import distill.deploy.export as ex

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


def test_export_cascade_is_one_contract_onnx_graph(tmp_path):
    s1 = stage1_checkpoint(tmp_path / "s1.ckpt")
    stage2 = build_model("convdw_tiny", num_points=68, input_size=32).eval()
    s2 = tmp_path / "s2.ckpt"
    save_model_checkpoint(s2, stage2, model_info(stage2, SCHEMAS["ibug68"], recipe={"data": {"margin": 0.1}}))
    res = export_cascade(s1, s2, tmp_path / "cascade.onnx", log=lambda *a: None)
    assert res.parity_px["onnxruntime"] <= 1e-3
    meta = res.metadata
    assert meta["input_size"] == 64 and meta["num_points"] == 68 and meta["schema"] == "ibug68"
    assert meta["crop_margin"] == 0.25   # stage 1's crop, not stage 2's
    image = np.random.default_rng(0).integers(0, 256, (96, 96, 3), dtype=np.uint8)
    face = LandmarkPredictor(tmp_path / "cascade.onnx").predict(image, [(20.0, 20.0, 70.0, 70.0)])[0]
    assert face.points.shape == (68, 2) and np.isfinite(face.points).all()
    # the same numbers as the Cascade module on the same crop
    m = crop_matrix((20.0, 20.0, 70.0, 70.0), 64, 0.25)
    model = Cascade(load_model(s1)[0], load_model(s2)[0], input_size=64).eval()
    with torch.no_grad():
        crop_pts = model.forward_stages(to_tensor(warp(image, m, 64))[None])["points"][0].double().numpy()
    np.testing.assert_allclose(face.points, apply_affine(invert_affine(m), crop_pts), atol=1e-3)


def test_export_clears_what_killed_exports_left_beside_its_output(ckpts, tmp_path):
    import subprocess

    done = subprocess.Popen(["true"])
    done.wait()  # a pid no process has now
    stale = [tmp_path / f".m.{done.pid}.tmp.onnx", tmp_path / f".m.int8.{done.pid}.tmp"]
    stale[0].write_bytes(b"half a graph")
    stale[1].mkdir()
    export(ckpts["convdw_tiny"][0], "onnx", tmp_path / "m.onnx", log=lambda *a: None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


@pytest.mark.parametrize("fmt, out, outcome", [
    (None, "m.pt", "torchscript"), (None, "m.onnx", "onnx"), ("torchscript", "m.pth", "torchscript"),
    ("onnx", "m.pt", "a .pt file is torchscript, but --format says onnx"), (None, "m.bin", "the suffix names no format"),
])
def test_the_format_comes_from_the_output_suffix_and_a_contradiction_is_refused(ckpts, tmp_path, capsys, fmt, out,
                                                                               outcome):
    args = ["export", str(ckpts["convdw_tiny"][0]), "--out", str(tmp_path / out)] + (["--format", fmt] if fmt else [])
    code = main(args)
    if outcome in ("onnx", "torchscript"):
        assert code == 0 and read_metadata(tmp_path / out)["num_points"] == 68
        assert f"({outcome}" in capsys.readouterr().out
    else:
        assert code == 2 and outcome in capsys.readouterr().err and not (tmp_path / out).exists()
