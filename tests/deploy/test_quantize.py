"""int8 quantisation: 16-bit activations, zero-point pruning, the size it buys."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from distill import DataError
from distill.data import SCHEMAS
from distill.deploy.export import export
from distill.deploy.quantize import drop_zero_zero_points, quantize_onnx
from distill.deploy.runtime import ort_session, random_crops, read_metadata, run_ort
from tests.deploy.helpers import make_checkpoint


@pytest.fixture(scope="module")
def hourglass_onnx(tmp_path_factory):
    folder = tmp_path_factory.mktemp("q")
    ckpt, _ = make_checkpoint(folder / "hg.ckpt", "hourglass_tiny")
    return export(ckpt, "onnx", folder / "hg.onnx", log=lambda *a: None).path


def _quantize(src, out, activations="uint8"):
    return quantize_onnx(src, out, random_crops(16, 64, seed=5), SCHEMAS["ibug68"], margin=0.25,
                         activations=activations, log=lambda *a: None)


def test_uint16_activations_stay_closer_to_float(hourglass_onnx, tmp_path):
    crops = random_crops(8, 64, seed=6)
    ref = run_ort(ort_session(hourglass_onnx), crops)[0]
    errors = {}
    for act in ("uint8", "uint16"):
        out = tmp_path / f"{act}.onnx"
        result = _quantize(hourglass_onnx, out, act)
        assert result["bytes_int8"] < result["bytes_float"]
        assert f"{act} activations" in read_metadata(out)["quantization"]
        errors[act] = np.abs(run_ort(ort_session(out), crops)[0] - ref).mean()
    assert errors["uint16"] < errors["uint8"] / 2, errors


def test_unknown_activation_type_is_one_clear_error(hourglass_onnx, tmp_path):
    with pytest.raises(DataError, match="activations"):
        _quantize(hourglass_onnx, tmp_path / "x.onnx", "int4")


@pytest.mark.parametrize("activations", ["uint8", "uint16"])
def test_zero_zero_points_are_dropped_without_changing_outputs(hourglass_onnx, tmp_path, activations):
    """uint8 (QOperator): QLinearConv's per-channel zero weight zero points become one scalar; uint16
    (QDQ): the zero points of weight / bias DequantizeLinear nodes feeding a Conv are removed."""
    from onnx import numpy_helper

    out = tmp_path / "q.onnx"
    _quantize(hourglass_onnx, out, activations)  # quantize_onnx already prunes: prune a padded copy
    model = onnx.load(str(out))
    assert drop_zero_zero_points(model) == 0  # nothing left to prune in the shipped file

    # put explicit per-tensor zero points back
    inits = {t.name: t for t in model.graph.initializer}
    conv_inputs = {i for node in model.graph.node if node.op_type == "Conv" for i in node.input}
    added = 0
    for node in model.graph.node:
        if (node.op_type == "DequantizeLinear" and len(node.input) == 2 and node.input[0] in inits
                and node.output[0] in conv_inputs):
            dtype = numpy_helper.to_array(inits[node.input[0]]).dtype
            shape = numpy_helper.to_array(inits[node.input[1]]).shape
        elif node.op_type == "QLinearConv":
            dtype, shape = np.int8, numpy_helper.to_array(inits[node.input[4]]).shape  # like w_scale
        else:
            continue
        zp = numpy_helper.from_array(np.zeros(shape, dtype), f"zp{added}")
        model.graph.initializer.append(zp)
        if node.op_type == "QLinearConv":
            node.input[5] = zp.name
        else:
            node.input.append(zp.name)
        added += 1
    assert added > 0
    padded = tmp_path / "padded.onnx"
    onnx.save(model, str(padded))
    crops = random_crops(4, 64, seed=7)
    want = run_ort(ort_session(padded), crops)[0]

    assert drop_zero_zero_points(model) == added
    pruned = tmp_path / "pruned.onnx"
    onnx.save(model, str(pruned))
    np.testing.assert_array_equal(run_ort(ort_session(pruned), crops)[0], want)
    assert pruned.stat().st_size < padded.stat().st_size


def test_decoding_stays_float(hourglass_onnx, tmp_path):
    """Only Conv / Gemm get Q/DQ: DARK's window blur and finite differences are MatMuls with constant
    matrices, which the quantiser would otherwise take for weights (+1.7 NME points on a student)."""
    assert any(n.op_type == "MatMul" for n in onnx.load(str(hourglass_onnx)).graph.node)
    out = tmp_path / "q.onnx"
    _quantize(hourglass_onnx, out)
    graph = onnx.load(str(out)).graph
    assert {n.op_type for n in graph.node} & {"QLinearConv"}
    assert not {n.op_type for n in graph.node} & {"QLinearMatMul", "MatMulInteger"}
    dequantised = {n.output[0] for n in graph.node if n.op_type == "DequantizeLinear"}
    matmuls = [n for n in graph.node if n.op_type == "MatMul"]
    assert matmuls and not any(dequantised & set(n.input) for n in matmuls)


@pytest.mark.parametrize("activations", ["uint8", "uint16"])
def test_shared_weights_quantise_into_a_loadable_graph(tmp_path, activations):
    """A fresh model (default BatchNorm statistics) has equal folded biases, which ONNX Runtime's
    pre-pass shares between convolutions; the quantiser then makes per-layer names by appending
    digits, which once collided with the compacted names ("_7" -> "_70") and gave a file ONNX Runtime
    refused to load."""
    import torch

    from distill.checkpoint import model_info, save_model_checkpoint
    from distill.models import build_model

    torch.manual_seed(0)
    model = build_model("hourglass_tiny").eval()
    ckpt = tmp_path / "fresh.ckpt"
    save_model_checkpoint(ckpt, model, model_info(model, SCHEMAS["ibug68"], recipe={"seed": 0}, recipe_name="t"))
    src = export(ckpt, "onnx", tmp_path / "fresh.onnx", log=lambda *a: None).path
    out = tmp_path / "q.onnx"
    _quantize(src, out, activations)  # runs the int8 graph before it returns
    points, _ = run_ort(ort_session(out), random_crops(2, 64, seed=3))
    assert points.shape == (2, 68, 2) and np.isfinite(points).all()


def test_a_folder_without_splits_calibrates_and_measures_on_different_images(tmp_path):
    from distill.deploy.quantize import calibration_and_test
    from tests.deploy.helpers import write_face_folder

    folder = write_face_folder(tmp_path / "faces", num=10)
    lines = []
    calib, test, note = calibration_and_test(folder, SCHEMAS["ibug68"], num_calib=64, log=lines.append)
    assert len(calib) == 5 and len(test) == 5  # at most half calibrates
    assert not {s.image_path for s in calib} & {s.image_path for s in test}
    assert "5 images calibrate, 5 others measure the NME" in lines[-1] and "no splits" in note
