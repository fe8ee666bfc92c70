"""`distill predict`: an image, a folder of images or a video in; overlays and JSON out.

JSON, in 0-based image pixels (docs/export.md)::

    {"image": path, "model": path, "faces": [{"box": [x1, y1, x2, y2], "points": [[x, y], ...],
                                              "confidence": [...]}]}

one such entry per image (a list for a folder), with ``"detector": name`` when a face detector gave the
boxes; for a video a list with ``"frame": n`` in each entry and an mp4v overlay video. Every file is written to a temporary name and renamed when complete.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from distill.deploy.detectors import AUTO_ORDER, INSTALL_HINTS
from distill.deploy.predictor import Face, LandmarkPredictor, box_from_pts
from distill.errors import DataError
from distill.io import IMAGE_SUFFIXES, atomic_write_text, read_image, remove_stale_temps, temp_path, write_image


def draw_faces(image_bgr: np.ndarray, faces: list[Face]) -> np.ndarray:
    """A copy of the image with each face's box (blue) and points (green, red where confidence is low)."""
    out = image_bgr.copy()
    radius = max(1, round(max(out.shape[:2]) / 300))
    for face in faces:
        x1, y1, x2, y2 = (int(round(v)) for v in face.box)
        cv2.rectangle(out, (x1, y1), (x2, y2), (255, 128, 0), radius)
        for (x, y), c in zip(face.points, face.confidence):
            color = (0, 255, 0) if c >= 0.3 else (0, 0, 255)
            # sub-pixel drawing (shift=4) so a point is not shown rounded to the pixel grid
            cv2.circle(out, (int(round(x * 16)), int(round(y * 16))), radius * 16, color, -1, cv2.LINE_AA, shift=4)
    return out


VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")
NO_FACE_HINT = ("the face detector found none; give the face yourself with --box x1,y1,x2,y2 (image pixels) or "
                "--pts an annotation file (.pts or .json)")


def _boxes_for(image_path: Path, box, pts) -> list | None:
    """The explicit box, else the box of an annotation file (.pts or .json; or a folder holding
    <stem>.pts / <stem>.json), else None (the detector's)."""
    if box is not None:
        return [box]
    if pts is None:
        return None
    pts = Path(pts)
    if pts.is_dir():
        found = [pts / f"{image_path.stem}{s}" for s in (".pts", ".json") if (pts / f"{image_path.stem}{s}").is_file()]
        if not found:
            raise DataError(f"{pts}: no {image_path.stem}.pts or {image_path.stem}.json for {image_path.name}")
        pts = found[0]
    return [box_from_pts(pts)]


def predict_path(model: str | Path, source: str | Path, box: np.ndarray | None = None, pts=None,
                 out: str | Path | None = None, json_out: str | Path | None = None, threads: int | None = None,
                 smoothing=None, strict: bool = False, detector="auto", log=print):
    """Run ``distill predict``: an image, a folder of images or a video -> overlay(s) and JSON.

    JSON (0-based image px): {"image", "model", "faces": [{"box", "points", "confidence"}]} for an
    image ("detector": which one found the boxes, when neither ``box`` nor ``pts`` gave them); a list of
    those for a folder; for a video, a list with "frame": n in each entry. Returns it.
    A folder's unreadable image (or one whose box is bad) is reported, kept in the JSON with an "error"
    and no faces, and skipped; ``strict`` stops at it instead. The JSON of what was done is written
    either way. Overlays keep their image's file name. detector: how faces are found without ``box`` / ``pts``
    (LandmarkPredictor's ``detector``).
    """
    source = Path(source)
    if not source.exists():
        raise DataError(f"{source}: not found")
    for target in (out, json_out):
        if target is not None:  # temp files a killed predict left beside its outputs
            remove_stale_temps(Path(target) if Path(target).is_dir() else Path(target).parent)
    predictor = LandmarkPredictor(model, threads=threads, smoothing=smoothing, detector=detector)
    if box is None and pts is None:
        name = predictor.detector
        hints = "; ".join(f"{n}: {INSTALL_HINTS[n]}" for n in AUTO_ORDER)
        log(f"face boxes: {name} detector" if name != "none" else
            "face boxes: no face detector" + (f" in this install ({hints})" if detector == "auto" else "")
            + ": the whole image is taken as one face; pass --box or --pts for other images")

    found_by = {"detector": predictor.detector} if box is None and pts is None else {}

    def entry(image, faces, **extra) -> dict:
        bad = sum(int((~np.isfinite(f.points).all(axis=-1)).sum()) for f in faces)
        if bad:
            log(f"{image}: the model gave {bad} non-finite point(s); the JSON has null for them")
        return {"image": str(image), "model": str(model), **found_by, **extra, "faces": [f.to_json() for f in faces]}

    if source.is_dir():
        images = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            raise DataError(f"{source}: no images ({', '.join(IMAGE_SUFFIXES)}) in the folder")
        result, skipped = [], 0
        try:
            for path in images:
                try:
                    image = read_image(path)
                    faces = predictor.predict(image, _boxes_for(path, box, pts))
                except DataError as e:
                    if strict:
                        raise
                    skipped += 1
                    log(f"skipped {e}")
                    result.append({**entry(path, []), "error": str(e)})
                    continue
                result.append(entry(path, faces))
                if out is not None:
                    write_image(Path(out) / path.name, draw_faces(image, faces))
        finally:
            if json_out is not None:  # what was done, even when a strict run stops part-way
                _write_json(json_out, result)
        log(f"{len(images)} images, {sum(len(r['faces']) for r in result)} faces"
            + (f", {skipped} skipped (unreadable image or bad box)" if skipped else ""))
        missed = sum(1 for r in result if not r["faces"] and "error" not in r)
        if missed and box is None and pts is None:
            log(f"no face found in {missed} image(s): {NO_FACE_HINT}")
        return result
    elif source.suffix.lower() in VIDEO_SUFFIXES:
        result = _predict_video(predictor, source, box, out, entry, log)
    else:
        image = read_image(source)
        faces = predictor.predict(image, _boxes_for(source, box, pts))
        result = entry(source, faces)
        if out is not None:
            write_image(out, draw_faces(image, faces))
        log(f"{source}: {len(faces)} face(s)" + (f"; {NO_FACE_HINT}" if not faces and box is None and pts is None
                                                  else ""))
    if json_out is not None:
        _write_json(json_out, result)
    return result


def _write_json(path, value) -> None:
    """The predict JSON, atomically; strict JSON (Face.to_json already turned NaN into null)."""
    atomic_write_text(path, json.dumps(value, indent=1, allow_nan=False))


def _predict_video(predictor: LandmarkPredictor, source: Path, box, out, entry, log) -> list[dict]:
    """Frames through the predictor; the overlay video goes to a temp file renamed when complete."""
    result, writer, tmp, done = [], None, None, False
    try:
        for n, frame, faces in predictor.predict_video(source, None if box is None else [box]):
            result.append(entry(source, faces, frame=n))
            if out is not None:
                if writer is None:
                    tmp = temp_path(Path(out))  # the suffix stays last: OpenCV picks the container by it
                    fps = cv2.VideoCapture(str(source)).get(cv2.CAP_PROP_FPS) or 30.0
                    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps,
                                             (frame.shape[1], frame.shape[0]))
                    if not writer.isOpened():
                        raise DataError(f"{out}: OpenCV cannot write this video (use .mp4)")
                writer.write(draw_faces(frame, faces))
        done = True
    finally:
        if writer is not None:
            writer.release()
        if tmp is not None:
            if done:
                tmp.replace(out)
            else:
                tmp.unlink(missing_ok=True)
    log(f"{source}: {len(result)} frames, {sum(bool(r['faces']) for r in result)} with a face")
    return result
