"""Export a trained model for deployment: ONNX or TorchScript of its :class:`DeployModule`, checked.

Exporter: ``torch.onnx.export(..., dynamo=False)``, the TorchScript-based (tracing) exporter. torch
2.13 defaults to the ``torch.export``/onnxscript exporter, whose graphs are fine for these models but
whose failure modes (data-dependent shapes in the decoder, onnxscript version skew) are harder to read;
tracing handles the decoder's gather/argmax arithmetic, keeps the batch dimension dynamic through
``dynamic_axes`` and produces a plain opset-``opset`` graph that every ONNX Runtime build (mobile
included) runs. Internal tensor and node names are then shortened (:mod:`distill.deploy.onnx_compact`):
only ``image``, ``points`` and ``confidence`` keep theirs. TorchScript export uses ``torch.jit.trace``
of the same module.

Every file is checked before it is kept (:func:`write_checked`): it is written to a temporary name,
run by ONNX Runtime (or loaded back as TorchScript) on real crops when a data folder is given (random
uint8 crops otherwise) at two batch sizes, compared with eager torch, and only renamed into place when
the largest difference is below :data:`PARITY_TOL_PX` crop pixels. ``int8=True`` quantises the checked
float graph before the rename (:mod:`distill.deploy.quantize`). :func:`export_cascade` writes a
two-stage cascade as one graph through the same check.
"""

from __future__ import annotations

import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from distill.checkpoint import crop_margin, file_sha256, load_model, schema_from_plain
from distill.deploy.module import INPUT_NAME, OUTPUT_NAMES, DeployModule, build_metadata
from distill.deploy.onnx_compact import compact_file
from distill.deploy.quantize import quantize_onnx
from distill.deploy.runtime import (
    TORCHSCRIPT_META,
    load_crops,
    load_torchscript,
    ort_session,
    parity,
    parse_metadata,
    random_crops,
    read_metadata,
    run_ort,
    run_torch,
    set_onnx_metadata,
)
from distill.errors import DataError, ExportError
from distill.io import remove_stale_temps, temp_path
from distill.models.cascade import Cascade
from distill.training.tracking import log_export

PARITY_TOL_PX = 1e-3
FORMATS = ("onnx", "torchscript")
SUFFIXES = {".onnx": "onnx", ".pt": "torchscript", ".pth": "torchscript", ".torchscript": "torchscript"}


def export_format(fmt: str | None, out: str | Path | None) -> str:
    """The format to write: ``fmt``, else the one ``out``'s suffix names; a contradiction between the two
    (``--format onnx --out m.pt``) or a suffix that names none is a DataError."""
    if out is None:
        fmt = fmt or "onnx"
    implied = SUFFIXES.get(Path(out).suffix.lower()) if out is not None else None
    if fmt is None:
        if implied is None:
            raise DataError(f"--out {out}: the suffix names no format ({', '.join(SUFFIXES)}); pass --format "
                            f"{' or '.join(FORMATS)}")
        return implied
    if fmt not in FORMATS:
        raise DataError(f"unknown export format {fmt!r}: use one of {', '.join(FORMATS)}")
    if out is not None and implied not in (None, fmt):
        raise DataError(f"--out {out}: a {Path(out).suffix} file is {implied}, but --format says {fmt}")
    return fmt


@dataclass
class ExportResult:
    path: Path
    format: str
    bytes: int
    metadata: dict
    parity_px: dict = field(default_factory=dict)   # runtime -> largest difference to eager torch
    parity_inputs: str = ""                          # where the parity crops came from
    int8: bool = False
    float_bytes: int | None = None                   # size before quantisation
    nme_float: float | None = None                   # ORT fp32 NME on the validation crops
    nme_int8: float | None = None


# ----------------------------------------------------------------------------- writers
def _write_onnx(deploy: DeployModule, example: torch.Tensor, path: Path, opset: int, meta: dict) -> None:
    import onnx

    batch = {0: "batch"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracing exporter's deprecation and tracer warnings
        torch.onnx.export(deploy, (example,), str(path), dynamo=False, opset_version=opset,
                          input_names=[INPUT_NAME], output_names=list(OUTPUT_NAMES),
                          dynamic_axes={INPUT_NAME: batch, OUTPUT_NAMES[0]: batch, OUTPUT_NAMES[1]: batch},
                          do_constant_folding=True)
    compact_file(path)
    set_onnx_metadata(path, meta)
    onnx.checker.check_model(str(path))


def _write_torchscript(deploy: DeployModule, example: torch.Tensor, path: Path, meta: dict) -> None:
    import json

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(deploy, (example,), check_trace=False)
    torch.jit.save(traced, str(path), _extra_files={TORCHSCRIPT_META: json.dumps(meta)})


def write_checked(deploy: DeployModule, out: Path, fmt: str, crops: np.ndarray, meta: dict, *, opset: int = 18,
                  check: bool = True, tol_px: float | None = None, threads: int | None = None, where: str = "",
                  then: Callable[[Path, ExportResult], None] | None = None, log=print) -> ExportResult:
    """Write ``deploy`` as ``fmt`` to a temporary file beside ``out``, compare it with eager torch on
    ``crops`` (uint8 (N, 3, S, S); the first two are the tracing example), let ``then(tmp, result)``
    rework the checked file (int8), and rename it to ``out``. Raises ExportError past ``tol_px`` crop px
    (default :data:`PARITY_TOL_PX`); whatever fails, no partial file is left behind."""
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(out.parent)  # what killed exports left here
    reference = run_torch(deploy, crops)
    if not all(np.isfinite(r).all() for r in reference):
        raise ExportError(f"{out.name}: the model gives non-finite points or confidence (NaN or inf) on {where}; "
                          "nothing written")
    example = torch.from_numpy(crops[: min(2, len(crops))].copy())
    tmp = temp_path(out)
    result = ExportResult(path=out, format=fmt, bytes=0, metadata=parse_metadata(meta), parity_inputs=where)
    try:
        if fmt == "onnx":
            _write_onnx(deploy, example, tmp, opset, meta)
            if check:
                session = ort_session(tmp, threads)
                result.parity_px["onnxruntime"] = parity(lambda c: run_torch(deploy, c),
                                                         lambda c: run_ort(session, c), crops)
        else:
            _write_torchscript(deploy, example, tmp, meta)
            if check:
                traced, _ = load_torchscript(tmp)
                result.parity_px["torchscript"] = parity(lambda c: run_torch(deploy, c),
                                                         lambda c: run_torch(traced, c), crops)
        tol_px = PARITY_TOL_PX if tol_px is None else tol_px
        for runtime, diff in result.parity_px.items():
            log(f"parity {runtime} vs torch: max difference {diff:.2e} crop px on {where}")
            if not diff <= tol_px:
                raise ExportError(f"{out.name}: {runtime} output differs from torch by {diff:.3g} crop px "
                                  f"(> {tol_px}) on {where}; nothing written")
        if then is not None:
            then(tmp, result)
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    result.bytes = out.stat().st_size
    return result


# ----------------------------------------------------------------------------- export
def export(ckpt: str | Path, fmt: str | None = "onnx", out: str | Path | None = None, int8: bool = False, opset: int = 18,
           calib_data=None, check: bool = True, num_check: int = 8, num_calib: int = 64, log=print,
           tol_px: float | None = None, threads: int | None = None,
           int8_activations: str = "uint8", strict: bool = False, track: bool = True) -> ExportResult:
    """Export a checkpoint to ONNX or TorchScript (see module docstring) -> :class:`ExportResult`.

    calib_data: a data folder (SynthFace / 300W layout: parity and calibration crops come from it, and
    the int8 NME change is measured on its test split), or a uint8 array (N, 3, S, S) of crops, or None
    (random crops; the NME change is then not measured). ``check=False`` skips the parity check.
    threads: ONNX Runtime intra-op threads of the parity check (None: all cores).
    int8_activations: "uint8" or "uint16" (see :mod:`distill.deploy.quantize`). strict: a sample of the
    data folder that its reader skips is an error (else one line through ``log``). track: when ``ckpt`` is a
    training run's checkpoint, the written file also goes to that run's W&B / MLflow as an artifact
    (training.tracking.log_export).
    """
    ckpt = Path(ckpt)
    fmt = export_format(fmt, out)
    if int8 and fmt != "onnx":
        raise DataError("--int8 needs --format onnx (quantisation is done by onnxruntime.quantization)")
    model, info = load_model(ckpt)
    deploy = DeployModule(model, info.get("decode", "dark"))
    size = deploy.input_size
    out = Path(out) if out is not None else ckpt.with_suffix(".onnx" if fmt == "onnx" else ".pt")

    schema, margin = schema_from_plain(info["schema"]), crop_margin(info)
    if isinstance(calib_data, np.ndarray):
        crops, where = calib_data, f"{len(calib_data)} given crops"
    elif calib_data is not None:
        # data folders: crops cut like training's evaluation crops
        crops = load_crops(calib_data, size, margin, schema, num=num_check, split="test", strict=strict, log=log)[0]
        where = f"{len(crops)} crops of {calib_data}"
    else:
        crops, where = random_crops(num_check, size), f"{num_check} random uint8 crops (no --data given)"
    crops = crops[:num_check]
    if crops.shape[1:] != (3, size, size) or crops.dtype != np.uint8:
        raise DataError(f"parity crops must be uint8 (N, 3, {size}, {size}), got {crops.dtype} {crops.shape}")

    def quantise(tmp: Path, result: ExportResult) -> None:
        work = temp_path(out.with_name(f"{out.stem}.int8"))  # a folder for the quantiser's files
        work.mkdir()
        try:
            q = quantize_onnx(tmp, work / out.name, calib_data, schema, margin=margin, num_calib=num_calib,
                              activations=int8_activations, strict=strict, log=log)
            result.int8, result.float_bytes = True, tmp.stat().st_size
            result.nme_float, result.nme_int8 = q["nme_float"], q["nme_int8"]
            (work / out.name).replace(tmp)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        result.metadata = read_metadata(tmp)

    result = write_checked(deploy, out, fmt, crops, build_metadata(info, deploy, source=ckpt), opset=opset,
                           check=check, tol_px=tol_px, threads=threads, where=where,
                           then=quantise if int8 else None, log=log)
    log(f"wrote {out} ({fmt}{', int8' if int8 else ''}, {result.bytes / 1024:.1f} KiB)")
    if track:
        log_export(ckpt, [out], log=log)
    return result


def export_cascade(stage1_path, stage2_path, out, input_size: int | None = None, opset: int = 18,
                   check: bool = True, log=print) -> ExportResult:
    """Write stage 1 + similarity + grid_sample warp + stage 2 as ONE ONNX graph -> ExportResult.

    The file follows the export contract (uint8 BGR crop ``image`` (B, 3, S, S) in; ``points`` (B, K, 2)
    crop px and ``confidence`` (B, K) out; metadata), so LandmarkPredictor, `distill eval` and
    `distill bench` run it like any model. The crop is the one stage 1 was trained on (its margin,
    stored as crop_margin); input_size (default twice stage 1's) is resampled to stage 1's size by
    average pooling, and the aligned stage-2 crop is sampled from it bilinearly, so a larger input
    keeps more detail for stage 2 than re-warping a small crop would. Checked by :func:`write_checked`.
    """
    (stage1, info1), (stage2, info2) = load_model(stage1_path), load_model(stage2_path)
    size = int(input_size or 2 * stage1.input_size)
    cascade = Cascade(stage1, stage2, input_size=size, decode=info2.get("decode", "dark")).eval()
    deploy = DeployModule(cascade, "dark")
    # the metadata of stage 2 (schema, points), with stage 1's crop margin and both sources named
    info = dict(info2, recipe={"data": {"margin": crop_margin(info1)}},
                recipe_name=f"cascade({info1.get('recipe_name', '')} -> {info2.get('recipe_name', '')})")
    meta = build_metadata(info, deploy)
    meta.update(cascade_stage1=str(stage1_path), cascade_stage1_sha256=file_sha256(stage1_path),
                cascade_stage2=str(stage2_path), cascade_stage2_sha256=file_sha256(stage2_path))
    out = Path(out)
    result = write_checked(deploy, out, "onnx", random_crops(4, size), meta, opset=opset, check=check,
                           where="4 random uint8 crops", log=log)
    log(f"wrote {out} (cascade, {size} px input, {result.bytes / 1024:.1f} KiB)")
    return result
