"""Running a model file: one backend table for every form, the metadata each file carries, parity.

Every form of a model answers the same call, uint8 BGR crops (B, 3, S, S) -> (points (B, K, 2) crop px,
confidence (B, K)) (the export contract, :mod:`distill.deploy.module`), chosen by the file's suffix in
the plain dict :data:`BACKENDS`:

    .ckpt   torch eager: checkpoint.load_model + DeployModule (decoding in torch)
    .onnx   ONNX Runtime on the CPU (intra-op threads configurable); the graph decodes itself
    .pt     TorchScript written by `distill export --format torchscript`

:func:`load_backend` is what `distill predict`, `distill eval`, `distill bench` and the quickstart use,
so a checkpoint and its exports are scored on the same uint8 crops by the same code.

Metadata: an exported file carries string key -> string value pairs (ONNX ``metadata_props``; a JSON
file inside a TorchScript archive): the schema, input size, crop margin, normalisation, provenance.
:func:`read_metadata` gives them typed. Parity: :func:`parity` compares two runners on the same
crops at two batch sizes (export checks every file it writes this way).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from distill import __version__
from distill.checkpoint import load_model, schema_from_plain
from distill.data.dataset import LandmarkDataset
from distill.data.formats import BadSample, load_samples
from distill.data.schema import SCHEMAS, LandmarkSchema
from distill.data.transforms import DEFAULT_MARGIN
from distill.deploy.module import INPUT_NAME, OUTPUT_NAMES, DeployModule, build_metadata
from distill.errors import DataError, ExportError, first_line

TORCHSCRIPT_META = "distill_metadata.json"   # the metadata file inside a TorchScript archive


# ----------------------------------------------------------------------------- sessions and runners
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
        raise DataError(f"{path}: ONNX Runtime cannot load it ({type(e).__name__}: {first_line(e, 160)})") from None


def load_torchscript(path: str | Path) -> tuple[torch.jit.ScriptModule, str]:
    """A TorchScript file written by `distill export` -> (module in eval mode, its metadata JSON text)."""
    extra = {TORCHSCRIPT_META: ""}
    try:
        module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    except Exception as e:  # a foreign or corrupt archive
        raise DataError(f"{path}: not a TorchScript file ({type(e).__name__}: {first_line(e, 120)})") from None
    if not extra[TORCHSCRIPT_META]:
        raise DataError(f"{path}: TorchScript file without distill metadata (was it written by `distill export`?)")
    return module.eval(), extra[TORCHSCRIPT_META]


def run_torch(module, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (B, 3, S, S) through an eager or TorchScript DeployModule -> numpy (points, confidence)."""
    with torch.inference_mode():
        points, conf = module(torch.from_numpy(np.ascontiguousarray(crops)))
    return points.numpy(), conf.numpy()


def run_ort(session, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (B, 3, S, S) through an ONNX Runtime session -> (points, confidence)."""
    points, conf = session.run(list(OUTPUT_NAMES), {INPUT_NAME: np.ascontiguousarray(crops)})
    return points, conf


# ----------------------------------------------------------------------------- metadata
_JSON_KEYS = ("flip_perm", "norm_pair", "normalisation", "schema_fields")
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
        raw = json.loads(load_torchscript(path)[1])
    if "num_points" not in raw:
        raise DataError(f"{path}: no distill metadata (was it written by `distill export`?)")
    return raw


def read_metadata(path: str | Path) -> dict:
    """The metadata of an exported ``.onnx`` or TorchScript ``.pt`` file, typed (see parse_metadata)."""
    return parse_metadata(raw_metadata(path))


def set_onnx_metadata(path: str | Path, meta: dict) -> None:
    """Replace the metadata_props of an ONNX file in place."""
    import onnx

    model = onnx.load(str(path))
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, {k: str(v) for k, v in meta.items()})
    model.producer_name, model.producer_version = "distill", __version__
    onnx.save(model, str(path))


def schema_from_metadata(meta: dict, path: str | Path = "<metadata>") -> LandmarkSchema:
    """The point schema an exported file was trained on: the whole schema stored with it (``schema_fields``),
    else (files written before it was stored) the built-in of that name when the stored point count and
    flip permutation agree with it, else rebuilt from them and the normaliser pair."""
    if meta.get("schema_fields"):
        try:
            schema = schema_from_plain(meta["schema_fields"])
        except (TypeError, KeyError, ValueError) as e:
            raise DataError(f"{path}: metadata schema_fields is not a point schema ({first_line(e)})") from None
        if schema.num_points != meta["num_points"]:
            raise DataError(f"{path}: metadata schema_fields has {schema.num_points} points, num_points says "
                            f"{meta['num_points']}")
        return schema
    flip = tuple(int(i) for i in meta["flip_perm"])
    builtin = SCHEMAS.get(meta["schema"])
    if builtin is not None and builtin.num_points == int(meta["num_points"]) and builtin.flip_perm == flip:
        return builtin
    pair = meta.get("norm_pair")
    return LandmarkSchema(name=str(meta["schema"]), num_points=int(meta["num_points"]), flip_perm=flip,
                          norm_pair=None if pair is None else (int(pair[0]), int(pair[1])), norm_box=pair is None)


# ----------------------------------------------------------------------------- the backend table
@dataclass
class Backend:
    """A model file ready to run: ``run(uint8 crops (B, 3, S, S)) -> (points (B, K, 2) crop px,
    confidence (B, K))``, with what is known about the model (typed metadata, its schema)."""

    path: Path
    run: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
    metadata: dict
    schema: LandmarkSchema

    @property
    def input_size(self) -> int:
        return int(self.metadata["input_size"])

    @property
    def num_points(self) -> int:
        return int(self.metadata["num_points"])

    @property
    def margin(self) -> float:
        """The crop margin the model was trained with (files written before it was stored: the default)."""
        return float(self.metadata.get("crop_margin", DEFAULT_MARGIN))


def _ckpt_backend(path: Path, threads: int | None) -> Backend:
    if threads:
        torch.set_num_threads(threads)
    model, info = load_model(path)
    deploy = DeployModule(model, info.get("decode", "dark"))
    meta = parse_metadata(build_metadata(info, deploy, facts=False))
    return Backend(path, lambda crops: run_torch(deploy, crops), meta, schema_from_plain(info["schema"]))


def check_metadata(path: Path, meta: dict) -> dict:
    """The metadata's numbers within what a landmark model can be (an edited file must not make a
    predictor allocate gigabytes); DataError naming the key otherwise."""
    limits = {"input_size": (8, 4096), "num_points": (1, 10000)}
    for key, (low, high) in limits.items():
        value = meta.get(key)
        if not isinstance(value, int) or not low <= value <= high:
            raise DataError(f"{path}: metadata {key}={value!r} is not a model's (expected {low}..{high})")
    margin = meta.get("crop_margin", DEFAULT_MARGIN)
    if not (isinstance(margin, float) and math.isfinite(margin) and 0 <= margin <= 10):
        raise DataError(f"{path}: metadata crop_margin={margin!r} is not a crop margin (expected 0..10)")
    if len(meta.get("flip_perm", [])) != meta["num_points"]:
        raise DataError(f"{path}: metadata flip_perm has {len(meta.get('flip_perm', []))} entries for "
                        f"{meta['num_points']} points")
    return meta


def _check_shapes(path: Path, meta: dict, image: list, points: list, confidence: list) -> None:
    """The graph's (or a probe's) shapes against the metadata: image (B, 3, S, S), points (B, K, 2),
    confidence (B, K); symbolic sizes (a name instead of a number) are not compared."""
    s, k = meta["input_size"], meta["num_points"]
    for what, got, want in (("input image", image, [None, 3, s, s]), ("output points", points, [None, k, 2]),
                            ("output confidence", confidence, [None, k])):
        if len(got) != len(want) or any(isinstance(g, int) and w is not None and g != w for g, w in zip(got, want)):
            raise DataError(f"{path}: {what} has shape {list(got)}, the metadata (input_size {s}, num_points {k}) "
                            f"says {['B' if w is None else w for w in want]}")


def _onnx_backend(path: Path, threads: int | None) -> Backend:
    meta = check_metadata(path, read_metadata(path))  # first: a corrupt file fails here with a clear message
    session = ort_session(path, threads)
    inputs, outputs = session.get_inputs(), {o.name: o for o in session.get_outputs()}
    if [i.name for i in inputs] != [INPUT_NAME] or not set(OUTPUT_NAMES) <= set(outputs):
        raise DataError(f"{path}: the graph takes {[i.name for i in inputs]} and gives {list(outputs)}, not "
                        f"{INPUT_NAME!r} -> {', '.join(OUTPUT_NAMES)} (was it written by `distill export`?)")
    _check_shapes(path, meta, inputs[0].shape, outputs["points"].shape, outputs["confidence"].shape)
    return Backend(path, lambda crops: run_ort(session, crops), meta, schema_from_metadata(meta, path))


def _torchscript_backend(path: Path, threads: int | None) -> Backend:
    if threads:
        torch.set_num_threads(threads)
    module, raw = load_torchscript(path)
    meta = check_metadata(path, parse_metadata(json.loads(raw)))
    s = meta["input_size"]
    points, confidence = run_torch(module, np.zeros((1, 3, s, s), np.uint8))  # no shapes in the file: a probe
    _check_shapes(path, meta, [1, 3, s, s], list(points.shape), list(confidence.shape))
    return Backend(path, lambda crops: run_torch(module, crops), meta, schema_from_metadata(meta, path))


# file suffix -> loader; the extension point for another model format
BACKENDS: dict[str, Callable[[Path, int | None], Backend]] = {
    ".ckpt": _ckpt_backend,
    ".onnx": _onnx_backend,
    ".pt": _torchscript_backend,
}


def model_label(path: str | Path) -> str:
    """How tables and plots name a model file: ``<recipe>/<run>`` for a run's best.ckpt (and
    ``<recipe>/<run>/<file>`` for its other files), so two runs' best.ckpt stay apart; else the file's
    name, suffix kept (a checkpoint and its export compared side by side must not share a label)."""
    path = Path(path).resolve()
    record = path.parent / "run.json"
    try:
        recipe = json.loads(record.read_text()).get("recipe_name") if record.is_file() else None
    except (OSError, ValueError, AttributeError):
        recipe = None
    if not recipe:
        return path.name
    return f"{recipe}/{path.parent.name}" + ("" if path.name == "best.ckpt" else f"/{path.name}")


def load_backend(path: str | Path, threads: int | None = None) -> Backend:
    """Load a .ckpt, .onnx or TorchScript .pt file -> :class:`Backend`. threads: intra-op threads
    (ONNX Runtime: per session; torch: process-wide, set only when given)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: model file not found")
    loader = BACKENDS.get(path.suffix.lower())
    if loader is None:
        raise DataError(f"{path}: unknown model type {path.suffix!r} (expected one of {', '.join(BACKENDS)})")
    return loader(path, threads)


# ----------------------------------------------------------------------------- crops and parity
def random_crops(num: int, size: int, seed: int = 0) -> np.ndarray:
    """(num, 3, S, S) uint8 noise: the parity fallback when no data folder is given."""
    return np.random.default_rng(seed).integers(0, 256, size=(num, 3, size, size), dtype=np.uint8)


def data_samples(data: str | Path, schema: LandmarkSchema, splits: tuple[str, ...] = (), strict: bool = False,
                 log=print) -> tuple[list, str | None]:
    """The labelled samples of a data folder -> (samples, the split they are): the first of ``splits`` the
    folder has, else all of it (split None). Skipped samples are one line through ``log``, an error with
    ``strict``."""
    data = Path(data)
    if not data.exists():
        raise DataError(f"{data}: data folder not found")
    for split in (*splits, None):
        try:
            samples, report = load_samples("auto", data, schema=schema, split=split, strict=strict)
        except BadSample:
            raise
        except DataError:  # the folder has no such split
            if split is None:
                raise
            continue
        samples = [s for s in samples if s.points is not None]
        if samples or split is None:
            break
    if not samples:
        raise DataError(f"{data}: no annotated images found ({report.summary()})")
    if report.skipped:
        log(f"{data}{'' if split is None else f' ({split})'}: {report.summary()}")
    return samples, split


def crops_of(samples: list, size: int, margin: float, schema: LandmarkSchema,
             num: int = 64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``num`` samples drawn evenly -> (crops (N, 3, S, S) uint8, points (N, K, 2) crop px, norm (N,)), cut by
    training's own LandmarkDataset without augmentation (same box rule, margin, normaliser)."""
    pick = np.linspace(0, len(samples) - 1, num=min(num, len(samples))).round().astype(int)
    dataset = LandmarkDataset([samples[i] for i in pick], schema, size, margin=margin)
    items = [dataset.crop(i) for i in range(len(dataset))]
    crops = np.stack([it["image"].transpose(2, 0, 1) for it in items])  # (N, 3, S, S)
    points = np.stack([it["points"] for it in items]).astype(np.float32)  # (N, K, 2)
    return crops, points, np.asarray([it["norm"] for it in items], dtype=np.float32)


def load_crops(data: str | Path, size: int, margin: float, schema: LandmarkSchema, num: int = 64,
               split: str | None = "test", strict: bool = False,
               log=print) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Evaluation crops of ``split`` of a data folder (all of it when it has no such split): see crops_of."""
    samples, _ = data_samples(data, schema, (split,) if split else (), strict, log)
    return crops_of(samples, size, margin, schema, num)


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
