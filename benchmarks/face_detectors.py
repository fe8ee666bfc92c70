"""Which face detector finds the faces users have. Prints tables; asserts nothing.

    python benchmarks/face_detectors.py [--real DIR] [--num 60] [--work DIR]

Every detector of distill.deploy.detectors (Haar, dlib's HOG, MTCNN's ONNX nets; the ones this install
lacks are listed as such) on:
    synth128 / synth256   SynthFace test faces (one per image) at 128 and 256 px
    real                  a folder of photos in dlib's imglab XML format with 68 points per face (--real;
                          e.g. the faces of dlib's examples): training_with_face_landmarks.xml is its
                          validation half, testing_with_face_landmarks.xml its test half
Variants (each detector's parameters) are chosen on validation data (SynthFace of another seed + the real
validation half) by F1 over faces; the tables report the test data. Per detector and set:
    found      the share of faces with a detection: one whose centre lies inside the face's landmark box and
               whose side is 0.4-2.5 times that box's (a test that does not depend on the box convention)
    false/img  detections matching no face, per image
    IoU raw    median IoU of a found face's detection with the tight box around its 68 points
    IoU map    the same after the detector's map to that box (BOX_TO_POINTS, fitted on validation: the
               boxes `predict` crops from)
    ms/img     median wall time per image (OpenCV and onnxruntime use their default threads; dlib one)
"""

from __future__ import annotations

import argparse
import inspect
import itertools
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from distill.data.formats import load_samples
from distill.data.synthface import generate
from distill.deploy import detectors
from distill.io import read_image

GRIDS = {  # detector -> parameter grid searched on validation
    "haar": {"scale_factor": [1.05, 1.1], "min_neighbors": [3, 5], "upsample_to": [0, 640], "pad": [0.0, 0.3],
             "cascade": ["haarcascade_frontalface_default.xml", "haarcascade_frontalface_alt2.xml"]},
    "dlib": {"upsample": [0, 1, 2]},
    "mtcnn": {"min_face_size": [12.0, 20.0, 40.0], "threshold": [0.7, 0.8]},
}
# what predict used before this study: OpenCV's usual settings, no padding, the default cascade
OPENCV_DEFAULTS = {"scale_factor": 1.1, "min_neighbors": 5, "pad": 0.0, "cascade": "haarcascade_frontalface_default.xml"}


@dataclass
class Image:
    path: Path
    faces: list[np.ndarray]   # (68, 2) points per face


def synth_images(work: Path, seed: int, size: int, num: int) -> list[Image]:
    root = work / f"synth_s{seed}_{size}"
    if not (root / "meta.json").is_file():
        generate(root, num=0, num_test=num, seed=seed, size=size, workers=2, progress=False, overwrite=True)
    samples, _ = load_samples("synthface", root, split="test")
    return [Image(Path(s.image_path), [np.asarray(s.points, np.float64)]) for s in samples]


def imglab_images(xml: Path) -> list[Image]:
    """dlib's imglab XML: <image file=...><box ...><part name x y/>...</box></image>."""
    images = []
    for node in ET.parse(xml).getroot().iter("image"):
        faces = []
        for box in node.iter("box"):
            parts = sorted(box.iter("part"), key=lambda p: int(p.get("name")))
            faces.append(np.array([[float(p.get("x")), float(p.get("y"))] for p in parts]))
        images.append(Image(xml.parent / node.get("file"), faces))
    return images


def tight_box(points: np.ndarray) -> np.ndarray:
    return np.concatenate([points.min(0), points.max(0)])


def iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def match(boxes: list[np.ndarray], faces: list[np.ndarray]) -> list[tuple[int, int]]:
    """(detection, face) pairs: greedy by centre distance, a detection's centre inside the face's tight box
    and its side 0.4-2.5 times the box's."""
    pairs = []
    for i, b in enumerate(boxes):
        centre, side = (b[:2] + b[2:]) / 2, np.sqrt((b[2] - b[0]) * (b[3] - b[1]))
        for j, p in enumerate(faces):
            t = tight_box(p)
            t_side = np.sqrt((t[2] - t[0]) * (t[3] - t[1]))
            if (t[:2] <= centre).all() and (centre <= t[2:]).all() and 0.4 <= side / t_side <= 2.5:
                pairs.append((float(np.linalg.norm(centre - (t[:2] + t[2:]) / 2)), i, j))
    used_i, used_j, out = set(), set(), []
    for _, i, j in sorted(pairs):
        if i not in used_i and j not in used_j:
            used_i.add(i)
            used_j.add(j)
            out.append((i, j))
    return out


def run(detect, images: list[Image]) -> dict:
    """Detections (raw boxes) and times of one detector over images."""
    found, false, faces, times, matched = 0, 0, 0, [], []
    for im in images:
        img = read_image(im.path)
        t0 = time.perf_counter()
        boxes = detect(img)
        times.append(time.perf_counter() - t0)
        pairs = match(boxes, im.faces)
        found += len(pairs)
        false += len(boxes) - len(pairs)
        faces += len(im.faces)
        matched += [(boxes[i], tight_box(im.faces[j])) for i, j in pairs]
    precision = found / max(found + false, 1)
    recall = found / max(faces, 1)
    return {"found": recall, "false": false / len(images), "f1": 2 * precision * recall / max(precision + recall, 1e-9),
            "ms": 1000 * float(np.median(times)), "matched": matched}


def fit_map(matched: list[tuple[np.ndarray, np.ndarray]]) -> tuple[float, float, float, float]:
    """BOX_TO_POINTS of a detector: medians of the tight box's size and centre shift in detector-box units."""
    if not matched:
        return (1.0, 1.0, 0.0, 0.0)
    d, t = np.stack([m[0] for m in matched]), np.stack([m[1] for m in matched])
    dw, dh = d[:, 2] - d[:, 0], d[:, 3] - d[:, 1]
    values = [(t[:, 2] - t[:, 0]) / dw, (t[:, 3] - t[:, 1]) / dh,
              ((t[:, 0] + t[:, 2]) - (d[:, 0] + d[:, 2])) / 2 / dw, ((t[:, 1] + t[:, 3]) - (d[:, 1] + d[:, 3])) / 2 / dh]
    return tuple(round(float(np.median(v)), 3) for v in values)


def iou_median(matched, mapping) -> float:
    if not matched:
        return float("nan")
    return float(np.median([iou(detectors.to_points_box([d], mapping)[0], t) for d, t in matched]))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--real", type=Path, default=None, help="folder with dlib imglab XML files (training_/testing_"
                                                            "with_face_landmarks.xml) and their photos")
    p.add_argument("--num", type=int, default=60, help="SynthFace images per set")
    p.add_argument("--work", type=Path, default=None, help="where the SynthFace sets are kept (default: a temp folder)")
    args = p.parse_args(argv)
    console = Console()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        sets = {"val": {f"synth{s}": synth_images(work, 1, s, args.num) for s in (128, 256)},
                "test": {f"synth{s}": synth_images(work, 2, s, args.num) for s in (128, 256)}}
        if args.real is not None:
            sets["val"]["real"] = imglab_images(args.real / "training_with_face_landmarks.xml")
            sets["test"]["real"] = imglab_images(args.real / "testing_with_face_landmarks.xml")

        chosen, maps = {}, {}
        table = Table(title="Validation: the best variant of each detector (mean F1 over the validation sets)")
        for col in ("detector", "variants", "chosen", "F1", "BOX_TO_POINTS"):
            table.add_column(col, overflow="fold")
        for name, grid in GRIDS.items():
            if detectors.DETECTORS[name]() is None:
                table.add_row(name, "-", f"not installed ({detectors.INSTALL_HINTS[name]})", "", "")
                continue
            best = None
            for values in itertools.product(*grid.values()):
                params = dict(zip(grid, values))
                detect = detectors.DETECTORS[name](calibrated=False, **params)
                results = [run(detect, images) for images in sets["val"].values()]
                f1 = float(np.mean([r["f1"] for r in results]))
                if best is None or f1 > best[0] + 1e-9:
                    best = (f1, params, [m for r in results for m in r["matched"]])
            chosen[name], maps[name] = best[1], fit_map(best[2])
            table.add_row(name, str(int(np.prod([len(v) for v in grid.values()]))),
                          ", ".join(f"{k}={v}" for k, v in best[1].items()), f"{best[0]:.3f}", str(maps[name]))
        console.print(table)

        rows = [("haar (OpenCV defaults)", "haar", OPENCV_DEFAULTS)] + [(n, n, chosen[n]) for n in chosen]
        for set_name, images in sets["test"].items():
            faces = sum(len(im.faces) for im in images)
            table = Table(title=f"Test: {set_name} ({len(images)} images, {faces} faces)")
            for col in ("detector", "found", "false/img", "IoU raw", "IoU map", "ms/img"):
                table.add_column(col, justify="left" if col == "detector" else "right")
            for label, name, params in rows:
                r = run(detectors.DETECTORS[name](calibrated=False, **params), images)
                mapping = maps.get(name, (1.0, 1.0, 0.0, 0.0))
                table.add_row(label, f"{r['found']:.3f}", f"{r['false']:.2f}", f"{iou_median(r['matched'], (1, 1, 0, 0)):.3f}",
                              f"{iou_median(r['matched'], mapping):.3f}", f"{r['ms']:.1f}")
            console.print(table)
        shipped = {n: detectors.BOX_TO_POINTS[n] for n in maps}
        console.print(f"fitted maps {maps}; shipped BOX_TO_POINTS {shipped}"
                      + (" (the same)" if shipped == maps else " (differ: update distill/deploy/detectors.py)"))
        defaults = {n: {k: inspect.signature(detectors.DETECTORS[n]).parameters[k].default for k in chosen[n]}
                    for n in chosen}
        console.print(f"chosen variants {chosen}; the library's defaults "
                      + ("are the same" if defaults == chosen else f"differ: {defaults}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
