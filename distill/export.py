"""Export a trained model for deployment: a uint8 face crop in, crop-pixel landmarks out.

The exported graph is the whole per-face computation, so a phone or a server needs nothing of this
library, only a crop and a runtime::

    image (B, 3, S, S) uint8 BGR  ->  x = (image / 255 - 0.5) / 0.25  ->  model(x)
        heatmap models:    (B, K, h, w) -> DARK decode -> heatmap px -> crop px; confidence = heatmap peak
        coordinate models: (B, K, 2) u in [0, 1] -> crop px;  confidence = 1.0 (no learned confidence)
    -> points (B, K, 2) float32 crop px, confidence (B, K) float32

Only the model is wrapped (:class:`DeployModule`): distillation adapters and the teacher live in the
training module, never in the checkpoint's ``model.`` weights, so they cannot reach the export.

Exporter: ``torch.onnx.export(..., dynamo=False)``, the TorchScript-based (tracing) exporter. torch
2.13 defaults to the ``torch.export``/onnxscript exporter, whose graphs are fine for these models but
whose failure modes (data-dependent shapes in the decoder, onnxscript version skew) are harder to read;
tracing handles the decoder's gather/argmax arithmetic, keeps the batch dimension dynamic through
``dynamic_axes`` and produces a plain opset-``opset`` graph that every ONNX Runtime build (mobile
included) runs. Internal tensor and node names are then shortened (:mod:`distill.onnx_compact`): only
``image``, ``points`` and ``confidence`` keep theirs. TorchScript export uses ``torch.jit.trace`` of the same module.

Every export is checked before it is kept: the file is written to a temporary name, run by ONNX
Runtime (or loaded back as TorchScript) on real crops when a data folder is given (random uint8
crops otherwise) at two batch sizes, compared with eager torch, and only renamed into place when the
largest difference is below :data:`PARITY_TOL_PX` crop pixels. ``int8=True`` then quantises the checked
float graph (see :mod:`distill.quantize`).
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from distill import __version__
from distill.errors import ExportError  # re-exported: distill.export.ExportError
from distill.checkpoint import file_sha256, load_model, schema_from_plain
from distill.data.transforms import PIXEL_MEAN, PIXEL_STD
from distill.decode import decode_heatmaps, heatmap_to_crop, normalised_to_crop
from distill.errors import DataError
from distill.onnx_compact import compact_file

INPUT_NAME = "image"
OUTPUT_NAMES = ("points", "confidence")
PARITY_TOL_PX = 1e-3
DEFAULT_MARGIN = 0.25       # crop_matrix's default: the crop side is max(w, h) * (1 + margin)
TORCHSCRIPT_META = "distill_metadata.json"   # extra file inside a TorchScript archive
FORMATS = ("onnx", "torchscript")


# ----------------------------------------------------------------------------- the exported module
class DeployModule(nn.Module):
    """uint8 BGR crops (B, 3, S, S) -> (points (B, K, 2) crop px, confidence (B, K)).

    The same module runs eagerly in :class:`distill.inference.LandmarkPredictor` for ``.ckpt`` files,
    so eager, ONNX and TorchScript predictions come from one definition.
    """

    def __init__(self, model: nn.Module, decode: str = "dark"):
        super().__init__()
        self.model = model.eval()
        self.decode = decode
        self.output_kind = str(model.output_kind)
        self.input_size = int(model.input_size)
        self.heatmap_size = None
        self._scale, self._shift = 1.0 / (255.0 * PIXEL_STD), PIXEL_MEAN / PIXEL_STD
        if self.output_kind == "heatmap":
            # a python int, so the traced graph holds a constant instead of a shape computation
            with torch.no_grad():
                probe = model(torch.zeros(1, 3, self.input_size, self.input_size))
            self.heatmap_size = (int(probe.shape[-1]), int(probe.shape[-2]))  # (w, h)
        self.eval()

    def train(self, mode: bool = True):
        # Always eval: the tracing exporter restores the wrapper's mode on every submodule after export,
        # and a wrapper in train mode would switch the model's BatchNorm layers to batch statistics.
        return super().train(False)

    def forward(self, image: torch.Tensor):
        # transforms.to_tensor's (x / 255 - mean) / std as one multiply and one subtract: two graph nodes
        # instead of three, within a few ulp of training's inputs
        x = image.float() * self._scale - self._shift  # (B, 3, S, S)
        out = self.model(x)
        if self.output_kind == "heatmap":
            points_hm, confidence = decode_heatmaps(out, method=self.decode, return_confidence=True)
            points = heatmap_to_crop(points_hm, self.heatmap_size, self.input_size)  # (B, K, 2)
        else:
            # a regressor may return (coords, confidence); a plain one has no notion of confidence
            coords, confidence = out if isinstance(out, tuple) else (out, None)
            points = normalised_to_crop(coords, self.input_size)  # (B, K, 2)
            if confidence is None:
                # not ones_like: the tracing exporter folds that into a constant of the example's batch
                confidence = points[..., 0] * 0.0 + 1.0  # (B, K)
        # a cast only where needed: an identity Cast is still a node that ONNX Runtime runs
        return tuple(t if t.dtype == torch.float32 else t.float() for t in (points, confidence))


# ----------------------------------------------------------------------------- metadata
def crop_margin(info: dict) -> float:
    """The crop margin the model was trained with (recipe data.margin), else crop_matrix's default."""
    data = (info.get("recipe") or {}).get("data") or {}
    return float(data.get("margin", DEFAULT_MARGIN))


def build_metadata(info: dict, deploy: DeployModule, source: Path | None = None, quantization: str = "none",
                   facts: bool = True) -> dict:
    """String key -> string value, as ONNX metadata_props stores them (JSON for lists and dicts).
    ``facts``: also count params and GFLOPs (so `distill bench` can show them for a bare .onnx)."""
    schema = schema_from_plain(info["schema"])
    meta = {
        "schema": schema.name,
        "num_points": str(schema.num_points),
        "flip_perm": json.dumps(list(schema.flip_perm)),
        "norm_pair": json.dumps(list(schema.norm_pair) if schema.norm_pair else None),
        "input_size": str(deploy.input_size),
        "normalisation": json.dumps({"input": "uint8", "channels": "BGR", "mean": PIXEL_MEAN, "std": PIXEL_STD,
                                     "formula": "(image / 255 - mean) / std"}),
        "crop_margin": str(crop_margin(info)),
        "output_kind": deploy.output_kind,
        "decode": deploy.decode if deploy.output_kind == "heatmap" else "none",
        "points_units": "crop pixels, 0-based, pixel centres at integers",
        "confidence": "heatmap peak value" if deploy.output_kind == "heatmap" else "1.0 (regressor has no confidence)",
        "library": "distill",
        "library_version": __version__,
        "recipe_name": str(info.get("recipe_name", "")),
        "recipe_hash": str(info.get("recipe_hash", "")),
        "exporter": f"torch.onnx.export(dynamo=False) / torch.jit.trace, torch {torch.__version__}",
        "quantization": quantization,
    }
    if source is not None:
        meta["checkpoint_sha256"] = file_sha256(source)
    if not facts:
        return meta
    try:
        from distill.models.facts import model_facts

        facts = model_facts(deploy.model, deploy.input_size)
        meta["params"], meta["gflops"] = str(int(facts["params"])), f"{float(facts['gflops']):.6g}"
    except Exception:  # facts are a nicety for `distill bench` on a bare .onnx; export must not depend on them
        pass
    return meta


_JSON_KEYS = ("flip_perm", "norm_pair", "normalisation")
_INT_KEYS = ("num_points", "input_size", "params")
_FLOAT_KEYS = ("crop_margin", "gflops")


def parse_metadata(raw: dict) -> dict:
    """Typed view of the stored strings: ints, floats, and JSON values decoded."""
    meta = dict(raw)
    for key in _JSON_KEYS:
        if key in meta:
            meta[key] = json.loads(meta[key])
    for key in _INT_KEYS:
        if key in meta:
            meta[key] = int(meta[key])
    for key in _FLOAT_KEYS:
        if key in meta:
            meta[key] = float(meta[key])
    return meta


def raw_metadata(path: str | Path) -> dict:
    """The metadata strings of an exported ``.onnx`` or TorchScript ``.pt`` file, as stored."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    if path.suffix.lower() == ".onnx":
        import onnx

        try:
            model = onnx.load(str(path), load_external_data=False)
        except Exception as e:  # protobuf raises DecodeError and friends for a corrupt file
            raise DataError(f"{path}: not a readable ONNX file ({type(e).__name__})") from None
        raw = {p.key: p.value for p in model.metadata_props}
    else:
        raw = json.loads(_load_torchscript(path)[1])
    if "num_points" not in raw:
        raise DataError(f"{path}: no distill metadata (was it written by `distill export`?)")
    return raw


def read_metadata(path: str | Path) -> dict:
    """The metadata of an exported ``.onnx`` or TorchScript ``.pt`` file, typed (see parse_metadata)."""
    return parse_metadata(raw_metadata(path))


def _load_torchscript(path: Path, threads: int | None = None):
    extra = {TORCHSCRIPT_META: ""}
    try:
        module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    except Exception as e:  # a foreign or corrupt archive
        raise DataError(f"{path}: not a TorchScript file ({type(e).__name__}: {str(e).splitlines()[0][:120]})") from None
    if not extra[TORCHSCRIPT_META]:
        raise DataError(f"{path}: TorchScript file without distill metadata (was it written by `distill export`?)")
    return module.eval(), extra[TORCHSCRIPT_META]


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


def set_onnx_metadata(path: Path, meta: dict) -> None:
    """Replace the metadata_props of an ONNX file in place."""
    import onnx

    model = onnx.load(str(path))
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, {k: str(v) for k, v in meta.items()})
    model.producer_name, model.producer_version = "distill", __version__
    onnx.save(model, str(path))


def _write_torchscript(deploy: DeployModule, example: torch.Tensor, path: Path, meta: dict) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(deploy, (example,), check_trace=False)
    torch.jit.save(traced, str(path), _extra_files={TORCHSCRIPT_META: json.dumps(meta)})


# ----------------------------------------------------------------------------- runners + parity
def ort_session(path: str | Path, threads: int | None = None):
    """An ONNX Runtime CPU session; ``threads`` = intra-op threads (None or 0: all cores)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(threads or 0)
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # InvalidProtobuf, Fail, NoSuchFile: all mean "not a model we can run"
        raise DataError(f"{path}: ONNX Runtime cannot load it ({type(e).__name__}: {str(e).splitlines()[0][:160]})") from None


def run_torch(module, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (B, 3, S, S) through an eager or TorchScript DeployModule -> numpy (points, confidence)."""
    with torch.inference_mode():
        points, conf = module(torch.from_numpy(np.ascontiguousarray(crops)))
    return points.numpy(), conf.numpy()


def run_ort(session, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    points, conf = session.run(list(OUTPUT_NAMES), {INPUT_NAME: np.ascontiguousarray(crops)})
    return points, conf


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    """Largest |a - b|; NaN at the same place in both counts as equal, NaN on one side as infinite."""
    both_nan = np.isnan(a) & np.isnan(b)
    d = np.where(both_nan, 0.0, np.abs(a.astype(np.float64) - b.astype(np.float64)))
    return float(np.nan_to_num(d, nan=np.inf).max()) if d.size else 0.0


def parity(reference, runner, crops: np.ndarray) -> float:
    """Largest difference (points in crop px, confidence in its units) between two runners, checked at
    the full batch and at batch 1 so a batch dimension baked into the graph shows up."""
    worst = 0.0
    for batch in (crops, crops[:1]):
        ref_p, ref_c = reference(batch)
        out_p, out_c = runner(batch)
        if out_p.shape != ref_p.shape or out_c.shape != ref_c.shape:
            raise ExportError(f"exported graph returns shapes {out_p.shape}, {out_c.shape} for a batch of "
                              f"{len(batch)}, torch gives {ref_p.shape}, {ref_c.shape}")
        worst = max(worst, max_abs_diff(ref_p, out_p), max_abs_diff(ref_c, out_c))
    return worst


def random_crops(num: int, size: int, seed: int = 0) -> np.ndarray:
    """(num, 3, S, S) uint8 noise: the parity fallback when no data folder is given."""
    return np.random.default_rng(seed).integers(0, 256, size=(num, 3, size, size), dtype=np.uint8)


# ----------------------------------------------------------------------------- export
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


def _tmp_name(out: Path, suffix: str = "") -> Path:
    return out.with_name(f".{out.stem}.{os.getpid()}{suffix}.tmp{out.suffix}")


def export(ckpt: str | Path, fmt: str = "onnx", out: str | Path | None = None, int8: bool = False, opset: int = 18,
           calib_data=None, check: bool = True, num_check: int = 8, num_calib: int = 64, log=print,
           tol_px: float | None = None, threads: int | None = None,
           int8_activations: str = "uint8") -> ExportResult:
    """Export a checkpoint to ONNX or TorchScript (see module docstring) -> :class:`ExportResult`.

    calib_data: a data folder (SynthFace / 300W layout: parity and calibration crops come from it, and
    the int8 NME change is measured on its test split), or a uint8 array (N, 3, S, S) of crops, or None
    (random crops; the NME change is then not measured). ``check=False`` skips the parity check.
    threads: ONNX Runtime intra-op threads of the parity check (None: all cores).
    int8_activations: "uint8" or "uint16" (see :mod:`distill.quantize`).
    """
    ckpt = Path(ckpt)
    if fmt not in FORMATS:
        raise DataError(f"unknown export format {fmt!r}: use one of {', '.join(FORMATS)}")
    if int8 and fmt != "onnx":
        raise DataError("--int8 needs --format onnx (quantisation is done by onnxruntime.quantization)")
    model, info = load_model(ckpt)
    deploy = DeployModule(model, info.get("decode", "dark"))
    size = deploy.input_size
    out = Path(out) if out is not None else ckpt.with_suffix(".onnx" if fmt == "onnx" else ".pt")
    out.parent.mkdir(parents=True, exist_ok=True)

    from distill.quantize import load_crops  # data folders: crops cut like training's evaluation crops

    schema = schema_from_plain(info["schema"])
    if isinstance(calib_data, np.ndarray):
        crops, where = calib_data, f"{len(calib_data)} given crops"
    elif calib_data is not None:
        crops = load_crops(calib_data, size, crop_margin(info), schema, num=num_check, split="test")[0]
        where = f"{len(crops)} crops of {calib_data}"
    else:
        crops, where = random_crops(num_check, size), f"{num_check} random uint8 crops (no --data given)"
    crops = crops[:num_check]
    if crops.shape[1:] != (3, size, size) or crops.dtype != np.uint8:
        raise DataError(f"parity crops must be uint8 (N, 3, {size}, {size}), got {crops.dtype} {crops.shape}")
    example = torch.from_numpy(crops[: min(2, len(crops))].copy())
    meta = build_metadata(info, deploy, source=ckpt)

    tmp = _tmp_name(out)
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
                traced, _ = _load_torchscript(tmp)
                result.parity_px["torchscript"] = parity(lambda c: run_torch(deploy, c),
                                                         lambda c: run_torch(traced, c), crops)
        tol_px = PARITY_TOL_PX if tol_px is None else tol_px
        for runtime, diff in result.parity_px.items():
            log(f"parity {runtime} vs torch: max difference {diff:.2e} crop px on {where}")
            if not diff <= tol_px:
                raise ExportError(f"{ckpt}: {runtime} output differs from torch by {diff:.3g} crop px "
                                  f"(> {tol_px}) on {where}; nothing written")
        if int8:
            from distill.quantize import quantize_onnx

            q = quantize_onnx(tmp, _tmp_name(out, ".int8"), calib_data, schema, margin=crop_margin(info),
                              num_calib=num_calib, activations=int8_activations, log=log)
            result.int8, result.float_bytes = True, tmp.stat().st_size
            result.nme_float, result.nme_int8 = q["nme_float"], q["nme_int8"]
            q["path"].replace(tmp)
            result.metadata = read_metadata(tmp)
        tmp.replace(out)
    finally:
        for leftover in (tmp, _tmp_name(out, ".int8")):
            leftover.unlink(missing_ok=True)
    result.bytes = out.stat().st_size
    log(f"wrote {out} ({fmt}{', int8' if int8 else ''}, {result.bytes / 1024:.1f} KiB)")
    return result
