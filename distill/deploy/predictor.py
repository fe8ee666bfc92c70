"""Landmarks on whole images: face box -> crop -> model -> image-coordinate points.

One :class:`LandmarkPredictor` runs any form of a model (.ckpt, .onnx, TorchScript .pt) through the
backend table of :mod:`distill.deploy.runtime`: uint8 crops (B, 3, S, S) in, crop-pixel points
(B, K, 2) and confidence (B, K) out. The crop is cut with the training code's own affine
(``transforms.crop_matrix`` + ``warp``, with the margin the model was trained with) and the points go
back through ``invert_affine``, so a prediction on a training image lands where training's crops
would have put it. Nothing rounds coordinates.

Face boxes come from the caller (x1, y1, x2, y2 image px), from the extent of a ``.pts`` file
(:func:`box_from_pts`: the same tight box training uses when a sample has none), or from a face detector
(:mod:`distill.deploy.detectors`, whose boxes are mapped to that tight-box convention); with no detector
the whole image is one face (training's rule for images without a box).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from distill.data.dataset import image_box
from distill.data.formats import read_json_annotation, read_pts
from distill.data.transforms import box_from_points, crop_matrix, invert_affine, warp
from distill.deploy.detectors import face_detector, largest_first
from distill.deploy.runtime import load_backend
from distill.errors import DataError


@dataclass
class Face:
    box: np.ndarray         # (4,) x1, y1, x2, y2 image px
    points: np.ndarray      # (K, 2) image px, 0-based
    confidence: np.ndarray  # (K,)

    def to_json(self) -> dict:
        """Plain JSON values; a non-finite number (a model's NaN) becomes null, never a bare NaN."""
        def plain(a: np.ndarray):
            return np.where(np.isfinite(a), a.astype(float), None).tolist()

        return {"box": plain(np.asarray(self.box)), "points": plain(self.points), "confidence": plain(self.confidence)}


# ----------------------------------------------------------------------------- face boxes
def parse_box(text: str) -> np.ndarray:
    """'x1,y1,x2,y2' -> (4,) float32; DataError on anything else."""
    try:
        box = np.array([float(v) for v in text.split(",")], dtype=np.float32)
    except ValueError:
        box = np.zeros(0)
    if box.shape != (4,) or not np.isfinite(box).all():
        raise DataError(f"--box {text!r}: expected four numbers x1,y1,x2,y2")
    return box


def box_from_pts(path: str | Path) -> np.ndarray:
    """The face box of an annotation file: a ``.json``'s own "box" when it has one, else the tight box around
    its points (``.pts`` or ``.json``: training's box for samples without one)."""
    path = Path(path)
    if path.suffix.lower() != ".json":
        return box_from_points(read_pts(path))
    annotation = read_json_annotation(path)
    if annotation.get("box") is not None:
        return check_box(annotation["box"], (np.inf, np.inf), f"{path}: box")
    return box_from_points(np.asarray(annotation["points"], dtype=np.float64))


def check_box(box, image_shape, where: str = "box") -> np.ndarray:
    """(4,) float32 box that has an area and overlaps the image; a box partly outside is fine (the
    crop is padded with black, as in training), one wholly outside is a DataError."""
    b = np.asarray(box, dtype=np.float32).reshape(-1)
    h, w = image_shape[:2]
    if b.shape != (4,) or not np.isfinite(b).all() or b[2] <= b[0] or b[3] <= b[1]:
        raise DataError(f"{where} {b.tolist()}: expected x1 < x2 and y1 < y2")
    if b[2] <= 0 or b[3] <= 0 or b[0] >= w or b[1] >= h:
        raise DataError(f"{where} {b.tolist()} lies outside the {w}x{h} image")
    return b


# ----------------------------------------------------------------------------- the predictor
class LandmarkPredictor:
    """Image + face boxes -> :class:`Face` list, from a .ckpt, .onnx or TorchScript .pt file.

    threads: intra-op threads (None: the runtime's default, all cores). margin: crop margin; default
    the one stored with the model (training's). smoothing: an object with ``__call__(points, t) ->
    points`` and ``reset()`` (e.g. distill.deploy.filters.OneEuroFilter), applied to the largest face of each
    frame by :meth:`predict_video`. detector: how faces are found when no box is given: a name of
    ``detectors.DETECTORS``, "auto" (the first this install has), "none" (the whole image is the face) or a
    function image_bgr -> boxes.
    """

    def __init__(self, model_path: str | Path, threads: int | None = None, margin: float | None = None,
                 smoothing=None, detector="auto"):
        self.path = Path(model_path)
        self.backend = load_backend(self.path, threads)
        self._run, self.metadata = self.backend.run, self.backend.metadata
        self.input_size, self.num_points = self.backend.input_size, self.backend.num_points
        self.margin = self.backend.margin if margin is None else float(margin)
        self.smoothing = smoothing
        self.detector, self._detect = face_detector(detector)

    def predict_crops(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """uint8 (B, 3, S, S) BGR crops -> (points (B, K, 2) crop px, confidence (B, K))."""
        return self._run(crops)

    def predict(self, image_bgr: np.ndarray, boxes=None) -> list[Face]:
        """Landmarks of every face in a BGR uint8 image. boxes: list of (4,) x1, y1, x2, y2, or None to
        detect faces (largest first, with this predictor's detector; an image where none is found gives an
        empty list; without a detector the whole image is taken as one face)."""
        image = np.asarray(image_bgr)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise DataError(f"predict expects a BGR uint8 (H, W, 3) image, got {image.dtype} {image.shape}")
        if boxes is None:
            if self._detect is None:  # no detector: the image is the face, as training treats unlabelled images
                boxes = [image_box(image.shape[0], image.shape[1], self.margin)]
            else:
                boxes = largest_first(self._detect(image))
        boxes = [check_box(b, image.shape) for b in boxes]
        if not boxes:
            return []
        size = self.input_size
        mats = [crop_matrix(b, size, margin=self.margin) for b in boxes]  # (2, 3) image -> crop each
        # (B, 3, S, S); one face skips np.stack, a tenth of the ConvDW's end-to-end time
        crops = (warp(image, mats[0], size)[None] if len(mats) == 1 else
                 np.stack([warp(image, m, size) for m in mats])).transpose(0, 3, 1, 2).copy()  # (B, 3, S, S)
        points, conf = self.predict_crops(crops)
        # cv2.transform maps float32 (K, 2) points through the (2, 3) inverse in ~1 us (transform_points:
        # ~6 us of float64 round trips); float32 keeps 1e-4 px at image sizes up to ~10k px
        return [Face(box=b, points=cv2.transform(p[None].astype(np.float32, copy=False), invert_affine(m))[0],
                     confidence=c.astype(np.float32, copy=False)) for b, m, p, c in zip(boxes, mats, points, conf)]

    def predict_video(self, path: str | Path, boxes=None):
        """Yield (frame index, frame, faces) for each frame of a video. Without ``boxes`` faces are
        detected per frame (the last box is kept through frames where detection misses); the largest
        face's points go through ``smoothing`` when it is set, reset whenever the face is lost."""
        cap = cv2.VideoCapture(str(path))
        if not cap.isOpened():
            raise DataError(f"{path}: not a video OpenCV can read")
        fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
        if self.smoothing is not None:
            self.smoothing.reset()
        last, n = None, 0
        try:
            while True:
                ok, frame = cap.read()
                if not ok:
                    break
                frame_boxes = boxes
                if frame_boxes is None and self._detect is not None:
                    frame_boxes = largest_first(self._detect(frame)) or ([last] if last is not None else [])
                faces = self.predict(frame, frame_boxes) if frame_boxes is None or len(frame_boxes) else []
                if faces:
                    last = faces[0].box
                    if self.smoothing is not None:
                        faces[0].points = np.asarray(self.smoothing(faces[0].points, n / fps), dtype=np.float32)
                elif self.smoothing is not None:
                    self.smoothing.reset()
                yield n, frame, faces
                n += 1
        finally:
            cap.release()
        if n == 0:
            raise DataError(f"{path}: no frames could be read")
