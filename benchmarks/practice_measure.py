"""What benchmarks/practice_study.py measures, model-agnostic: faces in memory, perturbed-box
predictors (one stage, or the two-stage cascade), NME in image pixels, stability, the One-Euro filter
study, head pose per yaw bin, and exported-ONNX speed. All scoring runs on CPU.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from distill.checkpoint import crop_margin, load_model  # noqa: E402
from distill.data.formats import SUBSET_NAMES, load_samples  # noqa: E402
from distill.data.schema import get_schema  # noqa: E402
from distill.data.transforms import box_from_points, crop_matrix, invert_affine, to_tensor, warp  # noqa: E402
from distill.decode import output_to_crop  # noqa: E402
from distill.deploy.filters import OneEuroFilter  # noqa: E402
from distill.metrics import LandmarkNME, frame_jitter, stability_std  # noqa: E402
from distill.models.cascade import aligned_crop_matrix, apply_affine  # noqa: E402

YAW_BINS = (0.0, 15.0, 30.0, 45.0, 60.0, 90.0)
FPS = 30.0  # SynthFace's video sequences have no frame rate; a webcam's is assumed for the filter


# ----------------------------------------------------------------------------- faces and predictors
@dataclass
class Faces:
    """One split in memory: images, 68 points, boxes, WFLW-style flags and the SynthFace attributes."""

    images: list
    points: np.ndarray      # (N, 68, 2) image px
    boxes: np.ndarray       # (N, 4)
    subsets: np.ndarray     # (N, 6) bool
    attrs: list


def load_faces(data: Path, split: str) -> Faces:
    samples, _ = load_samples("synthface", data, split=split)
    boxes = [s.box if s.box is not None else box_from_points(s.points) for s in samples]
    return Faces([cv2.imread(str(s.image_path)) for s in samples], np.stack([s.points for s in samples]),
                 np.stack(boxes).astype(np.float64),
                 np.array([[bool(s.attributes.get(n)) for n in SUBSET_NAMES] for s in samples]),
                 [s.attributes for s in samples])


def perturbed_matrices(faces: Faces, size: int, margin: float, jitter: float, rotation: float,
                       seed: int = 0) -> np.ndarray:
    """(N, 2, 3) image -> crop matrices: box centre moved by jitter * box side in a random direction,
    crop turned by +-rotation degrees (random sign). The same draws for every model."""
    rng = np.random.default_rng(seed)
    angle = rng.uniform(0, 2 * np.pi, len(faces.boxes))
    sign = rng.choice([-1.0, 1.0], len(faces.boxes))
    # crop_matrix's shift is a fraction of the window (box side * (1 + margin)); jitter is of the box
    d = np.stack([np.cos(angle), np.sin(angle)], 1) * jitter / (1 + margin)  # (N, 2)
    return np.stack([crop_matrix(box, size, margin, 1.0, s * rotation, tuple(v))
                     for box, s, v in zip(faces.boxes, sign, d)])


class Single:
    """A one-stage checkpoint (regressor or heatmap model) as a perturbed-box predictor."""

    def __init__(self, path: Path):
        self.model, info = load_model(path)
        self.size = int(self.model.input_size)
        self.margin = crop_margin(info)
        self.decode = info.get("decode", "dark")

    def points_in(self, images: list, matrices: np.ndarray, size: int) -> np.ndarray:
        """Crops cut by ``matrices`` -> (N, K, 2) image px."""
        out = []
        for i in range(0, len(images), 256):
            crops = np.stack([warp(im, m, size) for im, m in zip(images[i:i + 256], matrices[i:i + 256])])
            with torch.no_grad():
                pts = output_to_crop(self.model(to_tensor(crops)), self.model.output_kind, size, self.decode)[0]
                pts = pts.double().numpy()
            out += [apply_affine(invert_affine(m), p) for m, p in zip(matrices[i:i + 256], pts)]
        return np.stack(out)

    def predict(self, faces: Faces, jitter: float = 0.0, rotation: float = 0.0) -> np.ndarray:
        return self.points_in(faces.images, perturbed_matrices(faces, self.size, self.margin, jitter, rotation),
                              self.size)


class CascadeRunner:
    """Stage 1 on the perturbed crop -> aligned crop from the FULL image (as stage 2 was trained) -> stage 2."""

    def __init__(self, stage1: Path, stage2: Path):
        self.s1, self.s2 = Single(stage1), Single(stage2)

    def predict(self, faces: Faces, jitter: float = 0.0, rotation: float = 0.0, five_out: list | None = None):
        five = self.s1.predict(faces, jitter, rotation)                       # (N, 5, 2) image px
        if five_out is not None:
            five_out.append(five)
        m2 = aligned_crop_matrix(five, self.s2.size)                          # (N, 2, 3)
        return self.s2.points_in(faces.images, m2, self.s2.size)


def nme(pred: np.ndarray, faces: Faces, schema: str = "ibug68", points: np.ndarray | None = None) -> dict:
    metric = LandmarkNME(get_schema(schema))
    metric.update(torch.from_numpy(pred).float(), torch.from_numpy(faces.points if points is None else points).float(),
                  subsets=torch.from_numpy(faces.subsets))
    return {k: float(v) for k, v in metric.compute().items() if not isinstance(v, torch.Tensor)} | {
        "per_image": metric.per_image_nme().numpy()}


def yaw_bin_nme(per_image: np.ndarray, faces: Faces) -> dict:
    yaw = np.abs([a["yaw"] for a in faces.attrs])
    return {f"{lo:g}-{hi:g}": float(per_image[(yaw >= lo) & (yaw < hi)].mean()) if ((yaw >= lo) & (yaw < hi)).any()
            else None for lo, hi in zip(YAW_BINS[:-1], YAW_BINS[1:])}


# ----------------------------------------------------------------------------- the measurements
def stability(model: Single, stab: Faces) -> dict:
    """Static groups: stability_std of the residuals (the true sub-pixel shift cancels); videos: frame_jitter."""
    pred = model.predict(stab)
    resid = pred - stab.points
    norms = np.array([get_schema("ibug68").normaliser(p) for p in stab.points])
    groups: dict[tuple, list[int]] = {}
    for i, a in enumerate(stab.attrs):
        groups.setdefault((a.get("stability_kind", "static"), a.get("group")), []).append(i)
    order = {k: sorted(ix, key=lambda i: stab.attrs[i].get("frame") or 0) for k, ix in groups.items()}
    static = [ix for (kind, _), ix in order.items() if kind == "static"]
    f = min(len(ix) for ix in static)
    res = {"stability": stability_std(np.stack([resid[ix[:f]] for ix in static]),
                                      np.array([norms[ix].mean() for ix in static]))}
    videos = [ix for (kind, _), ix in order.items() if kind == "video"]
    res["jitter"] = float(np.mean([frame_jitter(pred[ix], stab.points[ix], norms[ix]) for ix in videos]))
    return res | {"videos": [(pred[ix], stab.points[ix], norms[ix]) for ix in videos]}


def filter_study(videos: list) -> list[dict]:
    """One-Euro settings on the base model's video predictions: jitter, NME, and what the lag costs."""
    rows = []
    for min_cutoff, beta in ((None, None), (1.0, 0.0), (3.0, 0.0), (1.0, 0.05), (0.5, 0.05)):
        jit, err, lag_err = [], [], []
        for pred, gt, norm in videos:
            if min_cutoff is None:
                out, gt_f = pred, gt
            else:
                f, g = OneEuroFilter(min_cutoff, beta, freq=FPS), OneEuroFilter(min_cutoff, beta, freq=FPS)
                out = np.stack([f(p) for p in pred])
                gt_f = np.stack([g(p) for p in gt])              # the filter on a noiseless track: pure lag
            jit.append(frame_jitter(out, gt, norm))
            err.append(float((np.linalg.norm(out - gt, axis=-1).mean(-1) / norm).mean()))
            lag_err.append(float((np.linalg.norm(gt_f - gt, axis=-1).mean(-1) / norm).mean()))
        step = None
        if min_cutoff is not None:   # frames until 90% of a 5 px step (beta > 0 opens the cutoff on it)
            f = OneEuroFilter(min_cutoff, beta, freq=FPS)
            f(np.zeros(1))
            step = next(n for n in range(1, 300) if f(np.full(1, 5.0))[0] >= 4.5)
        rows.append({"min_cutoff": min_cutoff, "beta": beta, "jitter": float(np.mean(jit)), "nme": float(np.mean(err)),
                     "lag_nme": float(np.mean(lag_err)), "step90_frames": step})
    return rows


def head_pose(pred: np.ndarray, faces: Faces) -> dict:
    """Mean absolute yaw / pitch / roll error per |yaw| bin, from ground-truth and from predicted points."""
    from distill.data.pose import estimate_pose

    true = np.array([[a["yaw"], a["pitch"], a["roll"]] for a in faces.attrs])
    size = (faces.images[0].shape[1], faces.images[0].shape[0])
    out = {}
    for source, pts in (("gt", faces.points), ("pred", pred)):
        est = np.stack(estimate_pose(pts, size), 1)                                   # (N, 3)
        err = np.abs(est - true)
        for lo, hi in zip(YAW_BINS[:-1], YAW_BINS[1:]):
            sel = (np.abs(true[:, 0]) >= lo) & (np.abs(true[:, 0]) < hi)
            out.setdefault(f"{lo:g}-{hi:g}", {"count": int(sel.sum())})[source] = (
                [float(v) for v in np.nanmean(err[sel], 0)] if sel.any() else None)
    return out


def speed(ckpts: dict, work: Path, b, budget: str) -> dict:
    """b: the practice study's budget (benchmarks/practice_study.py)."""
    from distill.deploy.bench import bench_models
    from distill.deploy.export import export, export_cascade

    onnx = {n: work / "onnx" / f"{n}.onnx" for n in ("wing", "cascade", "student_kd")}
    for n in ("wing", "student_kd"):
        export(ckpts[n], "onnx", onnx[n], check=True, log=lambda *a: None)
    export_cascade(ckpts["stage1"], ckpts["stage2"], onnx["cascade"], log=lambda *a: None)
    rows = bench_models(list(onnx.values()), repeats=b.bench_repeats, fast=budget == "tiny")
    return {n: {"faces_s": r["e2e_ort_faces_s"], "ms_p50": r["e2e_ort_ms_p50"], "params": r["params"],
                "gflops": r["gflops"]} for n, r in zip(onnx, rows)} | {"_onnx": {n: str(p) for n, p in onnx.items()}}


def onnx_cascade_nme(path: str, faces: Faces) -> float:
    """The exported one-graph cascade through LandmarkPredictor on the clean boxes (deployment parity)."""
    from distill.deploy.predictor import LandmarkPredictor

    p = LandmarkPredictor(path, threads=1)
    pred = np.stack([p.predict(im, [box])[0].points for im, box in zip(faces.images, faces.boxes)])
    return nme(pred.astype(np.float64), faces)["nme"]
