"""Static int8 quantisation of an exported ONNX graph, and the real crops it is calibrated on.

``onnxruntime.quantization.quantize_static`` with per-channel int8 weights and, by default, uint8
activations (ranges: the 99.99th percentile of each activation over the calibration crops; against
MinMax it halved the NME cost of int8 for the quickstart's Hourglasses, +1.4 vs +2.7 points for the student
and +7.1 vs +14.4 for the teacher, and kept the ConvDW's at +0.14).

Format. uint8 activations are written in the QOperator format: one ``QLinearConv`` (``QGemm``) per
convolution, with a ``QuantizeLinear`` before and a ``DequantizeLinear`` after where a float op follows.
The QDQ format (a float Conv between ``DequantizeLinear`` nodes for input, weight and bias) computes the
same thing - ONNX Runtime fuses it into the same QLinearConv kernels: same speed, NME within 0.1 points
on the quickstart's students and ConvDW (0.4 on the teacher, which uint8 costs 7 points either way) - but
spends four extra nodes and an fp32 bias-scale vector per convolution: 8 % more file for the 1x48
student and the ConvDW. Runtimes that only take QDQ (TensorRT, QNN) can quantise the float export
themselves. ``activations="uint16"`` keeps the int8 weights (so about the same file size) but 16-bit
activations, which only the QDQ format can express (ONNX opset 21 Q/DQ; QLinearConv is 8-bit): the
Hourglasses' NME cost drops to within +-0.2 points of float, so their loss comes from uint8
activations, not from the int8 weights; ONNX Runtime has no 16-bit convolution kernels on CPU, so such
a graph runs about 2x slower than float - it is a smaller file, not a faster model.

Only Conv and Gemm are quantised: they hold every trained weight of these model families and nearly
all the time, while the decoding tail (argmax, gather, DARK's window blur, log, the Newton step) must stay
float, since a quantised log or offset would cost more accuracy than it saves time. MatMul is left out on
purpose: the MatMuls in these graphs are DARK's constant index, blur and finite-difference matrices and the
cascade's affine point maps, which the quantiser would take for weights (+1.7 NME points on the 1x48
student when it did). Calibration crops are cut from the training split of a data folder exactly
like evaluation crops (same box, same ``crop_matrix`` and ``warp``), so the activation ranges are those
the model sees when deployed; the NME change is measured on the test split with ONNX Runtime, float
graph vs int8 graph.

File size: the graph is compacted (:mod:`distill.deploy.onnx_compact`: short tensor names, no node names,
default attributes dropped, equal constants stored once) and the all-zero zero points of the symmetric int8 weights and int32
biases are dropped (QDQ) or shared as one scalar (QLinearConv), which otherwise cost more than the
int8 weights save on a small model.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import torch

from distill.data.schema import LandmarkSchema
from distill.deploy.module import INPUT_NAME
from distill.deploy.onnx_compact import compact
from distill.deploy.runtime import (
    crops_of,
    data_samples,
    ort_session,
    random_crops,
    raw_metadata,
    run_ort,
    set_onnx_metadata,
)
from distill.errors import DataError
from distill.io import temp_path
from distill.metrics import LandmarkNME

QUANTISED_OPS = ["Conv", "Gemm"]
CALIB_PERCENTILE = 99.99
ACTIVATIONS = ("uint8", "uint16")


# ----------------------------------------------------------------------------- quantisation
def _reader(crops: np.ndarray, input_name: str):
    from onnxruntime.quantization import CalibrationDataReader

    class CropReader(CalibrationDataReader):
        """One crop per call, as quantize_static's calibrator asks for them."""

        def __init__(self):
            self.items = iter(range(len(crops)))

        def get_next(self):
            i = next(self.items, None)
            return None if i is None else {input_name: crops[i:i + 1]}

        def rewind(self):
            self.items = iter(range(len(crops)))

    return CropReader()


def drop_zero_zero_points(model) -> int:
    """Shrink the all-zero zero points of symmetric int8 weights and int32 biases -> how many went.

    QDQ: the zero-point input of a ``DequantizeLinear`` that feeds only Conv nodes is removed (a missing
    zero point means 0; ONNX Runtime still fuses such groups into QLinearConv, checked; not so for Gemm
    -> QGemm, hence Conv only). QOperator: a ``QLinearConv``'s per-channel all-zero ``w_zero_point``
    becomes one shared scalar 0 (the spec allows a scalar beside per-channel scales). Activations'
    uint8/uint16 zero points are kept (a missing one would make the type int8). Same values either way.
    """
    import onnx
    from onnx import numpy_helper

    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    consumers: dict[str, set] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, set()).add(node.op_type)

    def all_zero(name: str, types) -> bool:
        return name in inits and inits[name].data_type in types and not numpy_helper.to_array(inits[name]).any()

    shared, dropped = "_zero_i8", set()
    for node in graph.node:
        if (node.op_type == "DequantizeLinear" and len(node.input) == 3 and consumers.get(node.output[0]) == {"Conv"}
                and all_zero(node.input[2], (onnx.TensorProto.INT8, onnx.TensorProto.INT32))):
            dropped.add(node.input[2])
            del node.input[2]
        elif (node.op_type == "QLinearConv" and node.input[5] != shared
              and all_zero(node.input[5], (onnx.TensorProto.INT8,))):
            dropped.add(node.input[5])
            node.input[5] = shared
    still_used = {i for node in graph.node for i in node.input}
    keep = [t for t in graph.initializer if t.name not in dropped or t.name in still_used]
    if shared in still_used and shared not in inits:
        keep.append(numpy_helper.from_array(np.zeros((), np.int8), shared))
    del graph.initializer[:]
    graph.initializer.extend(keep)
    return len(dropped)


def quantize_onnx(float_path: Path, out_path: Path, calib_data, schema: LandmarkSchema, margin: float,
                  num_calib: int = 64, num_val: int = 200, activations: str = "uint8", strict: bool = False,
                  log=print) -> dict:
    """Quantise ``float_path`` into ``out_path`` -> {"path", "bytes_float", "bytes_int8", "nme_float",
    "nme_int8"}; NMEs are None unless ``calib_data`` is a data folder. activations: "uint8" or "uint16"
    (see the module docstring)."""
    import logging

    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if activations not in ACTIVATIONS:
        raise DataError(f"int8 activations must be one of {', '.join(ACTIVATIONS)}, got {activations!r}")
    # QLinearConv is 8-bit only: 16-bit activations need the QDQ format (module docstring)
    fmt = QuantFormat.QOperator if activations == "uint8" else QuantFormat.QDQ
    raw = raw_metadata(float_path)
    size = int(raw["input_size"])
    test = None  # (crops, points, norm) the NME change is measured on
    if isinstance(calib_data, np.ndarray):
        calib, source = calib_data[:num_calib], f"{min(num_calib, len(calib_data))} given crops"
    elif calib_data is not None:
        calib_samples, test_samples, split_note = calibration_and_test(calib_data, schema, num_calib, strict, log)
        calib = crops_of(calib_samples, size, margin, schema, num=num_calib)[0]
        test = crops_of(test_samples, size, margin, schema, num=num_val)
        source = f"{len(calib)} {split_note}"
    else:
        calib, source = random_crops(num_calib, size, seed=1), f"{num_calib} random crops (no --data: ranges are rough)"
    # ORT's recommended pre-pass (graph optimisation + ONNX shape inference) so Conv/BN/ReLU patterns are
    # fused before ranges are taken; its symbolic shape inference cannot follow the decoder's reshapes,
    # and the ONNX shape inference it falls back to is enough here.
    pre = temp_path(out_path.with_name(f"{out_path.stem}.pre{out_path.suffix}"))
    try:
        # names with a suffix first: the quantiser makes names unique by appending digits, which can
        # produce another compacted name ("_7" -> "_70") and a graph ONNX Runtime refuses to load
        onnx.save(compact(onnx.load(str(float_path)), suffix="q"), str(pre))
        quant_pre_process(str(pre), str(pre), skip_symbolic_shape=True)
        # the histogram calibrator prints its settings; 16-bit activations log that the graph moves to
        # opset 21 (the first with 16-bit QuantizeLinear), which is intended
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                quantize_static(str(pre), str(out_path), _reader(calib, INPUT_NAME), quant_format=fmt,
                                per_channel=True, weight_type=QuantType.QInt8,
                                activation_type=QuantType.QUInt16 if activations == "uint16" else QuantType.QUInt8,
                                op_types_to_quantize=QUANTISED_OPS, calibrate_method=CalibrationMethod.Percentile,
                                extra_options={"CalibPercentile": CALIB_PERCENTILE})
        finally:
            root.setLevel(level)
    finally:
        pre.unlink(missing_ok=True)
    # the quantiser's long names outweigh small int8 weights; its many equal scales / zero points merge
    model = compact(onnx.load(str(out_path)), merge_constants=True)
    drop_zero_zero_points(model)
    onnx.save(model, str(out_path))
    raw["quantization"] = (f"int8 static, {'QOperator' if fmt == QuantFormat.QOperator else 'QDQ'}, "
                           f"per-channel int8 weights, {activations} activations, "
                           f"{CALIB_PERCENTILE} percentile ranges on {source}")
    set_onnx_metadata(out_path, raw)

    session_q = ort_session(out_path)
    run_ort(session_q, calib[:2])  # it must run, whatever the data
    result = {"path": out_path, "bytes_float": float_path.stat().st_size, "bytes_int8": out_path.stat().st_size,
              "nme_float": None, "nme_int8": None}
    log(f"int8: {result['bytes_float'] / 1024:.1f} KiB -> {result['bytes_int8'] / 1024:.1f} KiB "
        f"({result['bytes_int8'] / result['bytes_float']:.2f}x), calibrated on {source}")
    if test is not None:
        crops, target, norm = test
        result["nme_float"] = _nme(run_ort(ort_session(float_path), crops)[0], target, norm, schema)
        result["nme_int8"] = _nme(run_ort(session_q, crops)[0], target, norm, schema)
        log(f"int8: NME {result['nme_float']:.5f} (fp32) -> {result['nme_int8']:.5f} (int8), "
            f"change {result['nme_int8'] - result['nme_float']:+.5f} on {len(crops)} other crops (fractions)")
        if activations == "uint8" and result["nme_int8"] - result["nme_float"] > 0.005:
            log("int8: more than 0.5 NME points lost to uint8 activations; --activations uint16 keeps this file "
                "size at about float accuracy (not faster)")
    else:
        log("int8: NME change not measured (give --data DIR with a test split to measure it)")
    return result


def calibration_and_test(data, schema: LandmarkSchema, num_calib: int, strict: bool = False,
                         log=print) -> tuple[list, list, str]:
    """Disjoint samples of a data folder -> (calibration samples, NME samples, what they are): its training
    and test splits when it has both; else, for a folder without splits, ``num_calib`` samples drawn from
    it (at most half of them) for calibration and the rest for the NME, so no image serves both."""
    calib, calib_split = data_samples(data, schema, ("train",), strict, log)
    test, test_split = data_samples(data, schema, ("test", "full"), strict, log)
    if calib_split is not None and test_split is not None:
        return calib, test, f"training crops of {data} (split {calib_split}); NME on split {test_split}"
    order = np.random.default_rng(0).permutation(len(calib))
    take = min(num_calib, len(calib) // 2)
    if take == 0:
        raise DataError(f"{data}: {len(calib)} labelled image(s): too few to calibrate on some and measure on others")
    calib, test = [calib[i] for i in sorted(order[:take])], [calib[i] for i in sorted(order[take:])]
    log(f"int8: {data} has no training and test splits: {len(calib)} images calibrate, {len(test)} others "
        "measure the NME")
    return calib, test, f"crops of {data} (no splits: {len(test)} other images for the NME)"


def _nme(pred: np.ndarray, target: np.ndarray, norm: np.ndarray, schema: LandmarkSchema) -> float:
    """The data set NME of (N, K, 2) crop-pixel predictions against the crops' truth and normalisers (N,)."""
    metric = LandmarkNME(schema)
    metric.update(torch.from_numpy(pred), torch.from_numpy(target), norm=torch.from_numpy(norm))
    return float(metric.compute()["nme"])
