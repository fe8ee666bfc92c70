"""LandmarkPredictor: every model form agrees, the geometry maps back to the image, face boxes, video."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from distill.data.dataset import image_box
from distill.data.transforms import crop_matrix, invert_affine, transform_points, warp
from distill.deploy.predictor import LandmarkPredictor, parse_box

BOX = [40.0, 30.0, 120.0, 110.0]


def test_ckpt_onnx_and_torchscript_predictors_agree(models, photo):
    _, image = photo
    faces = {s: LandmarkPredictor(p, threads=1).predict(image, [BOX]) for s, p in models.items()}
    ref = faces["ckpt"][0]
    assert ref.points.shape == (68, 2) and ref.confidence.shape == (68,)
    # crop px -> image px scales by side / S = 80 * 1.25 / 64
    for s in ("onnx", "pt"):
        np.testing.assert_allclose(faces[s][0].points, ref.points, atol=2e-3, rtol=0)
        np.testing.assert_allclose(faces[s][0].confidence, ref.confidence, atol=1e-4, rtol=0)


def test_points_go_back_through_the_training_affine(models, photo):
    _, image = photo
    predictor = LandmarkPredictor(models["onnx"])
    m = crop_matrix(np.array(BOX), 64, margin=predictor.margin)
    crop = warp(image, m, 64).transpose(2, 0, 1)[None]  # (1, 3, S, S)
    crop_points, conf = predictor.predict_crops(np.ascontiguousarray(crop))
    face = predictor.predict(image, [BOX])[0]
    np.testing.assert_allclose(face.points, transform_points(crop_points[0], invert_affine(m)), atol=1e-4)
    np.testing.assert_array_equal(face.confidence, conf[0])


def test_crop_centre_lands_on_the_box_centre(models, photo, monkeypatch):
    _, image = photo
    predictor = LandmarkPredictor(models["onnx"])
    centre = (64 - 1) / 2.0  # crop pixel centres at integers
    predictor._run = lambda crops: (np.full((len(crops), 68, 2), centre, np.float32), np.ones((len(crops), 68)))
    boxes = [BOX, [0.0, 0.0, 50.0, 40.0]]
    faces = predictor.predict(image, boxes)
    for face, box in zip(faces, boxes):
        np.testing.assert_allclose(face.points, [[(box[0] + box[2]) / 2, (box[1] + box[3]) / 2]] * 68, atol=1e-4)


def test_no_detector_takes_the_whole_image(models, photo):
    _, image = photo
    predictor = LandmarkPredictor(models["onnx"], detector="none")
    (face,) = predictor.predict(image)
    np.testing.assert_allclose(face.box, image_box(120, 160, predictor.margin))
    # a detector, when there is one, decides the boxes: your own function, largest face first
    predictor = LandmarkPredictor(models["onnx"], detector=lambda img: [[10, 10, 50, 60], [60, 20, 150, 110]])
    assert predictor.detector == "custom"
    faces = predictor.predict(image)
    assert [f.box.tolist() for f in faces] == [[60, 20, 150, 110], [10, 10, 50, 60]]


def test_video_smoothing_hook(models, photo, tmp_path):
    _, image = photo
    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10, (160, 120))
    for _ in range(4):
        writer.write(image)
    writer.release()

    class Recorder:
        def __init__(self):
            self.calls, self.resets = [], 0

        def __call__(self, points, t):
            self.calls.append(t)
            return points + 1.0

        def reset(self):
            self.resets += 1

    rec = Recorder()
    predictor = LandmarkPredictor(models["onnx"], smoothing=rec)
    frames = list(predictor.predict_video(video, [BOX]))
    assert rec.resets == 1 and rec.calls == pytest.approx([0.0, 0.1, 0.2, 0.3])
    n, frame, faces = frames[2]
    predictor.smoothing = None
    np.testing.assert_allclose(faces[0].points, predictor.predict(frame, [BOX])[0].points + 1.0, atol=1e-4)


def test_parse_box():
    np.testing.assert_array_equal(parse_box("1,2.5,30,40"), [1, 2.5, 30, 40])
    with pytest.raises(ValueError, match="four numbers"):
        parse_box("1,2,3")
