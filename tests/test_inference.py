"""LandmarkPredictor (inference.py) and `distill predict` (predict.py): backends agree, geometry maps back,
files in and out, errors."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

import distill.inference as inf
from distill.cli import main
from distill.data import write_pts
from distill.data.transforms import box_from_points, crop_matrix, invert_affine, transform_points, warp
from distill.export import export
from distill.inference import LandmarkPredictor, parse_box
from tests.test_export import make_checkpoint

BOX = [40.0, 30.0, 120.0, 110.0]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """The same tiny heatmap model as .ckpt, .onnx and TorchScript .pt."""
    folder = tmp_path_factory.mktemp("models")
    ckpt, _ = make_checkpoint(folder / "hg.ckpt", "hourglass_tiny", seed=1)
    export(ckpt, "onnx", folder / "hg.onnx", log=lambda *a: None)
    export(ckpt, "torchscript", folder / "hg.pt", log=lambda *a: None)
    return {s: folder / f"hg.{s}" for s in ("ckpt", "onnx", "pt")}


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    """A 120x160 generated image: smooth shapes plus noise, written as PNG."""
    rng = np.random.default_rng(0)
    image = np.full((120, 160, 3), 90, np.uint8)
    cv2.circle(image, (80, 70), 35, (60, 140, 200), -1)
    cv2.circle(image, (68, 60), 5, (20, 20, 20), -1)
    cv2.circle(image, (92, 60), 5, (20, 20, 20), -1)
    image = np.clip(image + rng.normal(0, 8, image.shape), 0, 255).astype(np.uint8)
    path = tmp_path_factory.mktemp("img") / "face.png"
    cv2.imwrite(str(path), image)
    return path, image


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


def test_no_detector_takes_the_whole_image(models, photo, monkeypatch):
    from distill.data.dataset import image_box

    _, image = photo
    monkeypatch.setattr(inf, "_DETECTOR", ("none", None))
    predictor = LandmarkPredictor(models["onnx"])
    (face,) = predictor.predict(image)
    np.testing.assert_allclose(face.box, image_box(120, 160, predictor.margin))
    # a detector, when present, decides the boxes
    monkeypatch.setattr(inf, "_DETECTOR", ("fake", lambda img: [np.array([10, 10, 50, 60], np.float32),
                                                                 np.array([60, 20, 150, 110], np.float32)]))
    faces = predictor.predict(image)
    assert [f.box.tolist() for f in faces] == [[60, 20, 150, 110], [10, 10, 50, 60]]  # largest first


def test_predict_cli_json_matches_the_api(models, photo, tmp_path):
    path, image = photo
    out_json, overlay = tmp_path / "o.json", tmp_path / "overlay.png"
    assert main(["predict", str(models["onnx"]), str(path), "--box", ",".join(map(str, BOX)),
                 "--json", str(out_json), "--out", str(overlay)]) == 0
    data = json.loads(out_json.read_text())
    assert set(data) == {"image", "model", "faces"} and data["image"] == str(path)
    (face,) = data["faces"]
    assert set(face) == {"box", "points", "confidence"} and face["box"] == BOX
    api = LandmarkPredictor(models["onnx"]).predict(image, [BOX])[0]
    np.testing.assert_allclose(np.array(face["points"]), api.points, atol=1e-5)
    np.testing.assert_allclose(face["confidence"], api.confidence, atol=1e-6)
    drawn = cv2.imread(str(overlay))
    assert drawn.shape == image.shape and not np.array_equal(drawn, image)


def test_predict_box_from_pts(models, photo, tmp_path):
    path, image = photo
    pts = np.random.default_rng(0).uniform(40, 100, size=(68, 2)).astype(np.float32)
    write_pts(tmp_path / "face.pts", pts)
    out_json = tmp_path / "o.json"
    assert main(["predict", str(models["ckpt"]), str(path), "--pts", str(tmp_path / "face.pts"),
                 "--json", str(out_json)]) == 0
    box = json.loads(out_json.read_text())["faces"][0]["box"]
    np.testing.assert_allclose(box, box_from_points(pts), atol=1e-4)


def test_predict_folder_and_video(models, photo, tmp_path):
    _, image = photo
    folder = tmp_path / "imgs"
    folder.mkdir()
    for name in ("a.png", "b.jpg"):
        cv2.imwrite(str(folder / name), image)
    (folder / "notes.txt").write_text("not an image")
    assert main(["predict", str(models["pt"]), str(folder), "--box", "40,30,120,110", "--out",
                 str(tmp_path / "over"), "--json", str(tmp_path / "d.json")]) == 0
    entries = json.loads((tmp_path / "d.json").read_text())
    assert [e["image"] for e in entries] == [str(folder / "a.png"), str(folder / "b.jpg")]
    assert sorted(p.name for p in (tmp_path / "over").iterdir()) == ["a.png", "b.png"]

    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10, (160, 120))
    for _ in range(3):
        writer.write(image)
    writer.release()
    out_video = tmp_path / "out.mp4"
    assert main(["predict", str(models["onnx"]), str(video), "--box", "40,30,120,110", "--out", str(out_video),
                 "--json", str(tmp_path / "v.json"), "--smooth-min-cutoff", "1.0"]) == 0
    frames = json.loads((tmp_path / "v.json").read_text())
    assert [f["frame"] for f in frames] == [0, 1, 2] and all(len(f["faces"]) == 1 for f in frames)
    cap = cv2.VideoCapture(str(out_video))
    assert cap.isOpened() and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 3
    cap.release()


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


@pytest.mark.parametrize("case", ["missing_model", "missing_image", "non_image", "box_outside", "wrong_ckpt",
                                  "corrupt_onnx", "bad_box", "unknown_suffix"])
def test_predict_bad_input_is_one_line_exit_2(models, photo, tmp_path, capsys, case):
    path, _ = photo
    model, image, extra = str(models["onnx"]), str(path), ["--box", "40,30,120,110"]
    if case == "missing_model":
        model = str(tmp_path / "none.onnx")
    elif case == "missing_image":
        image = str(tmp_path / "none.png")
    elif case == "non_image":
        (tmp_path / "x.png").write_text("this is text")
        image = str(tmp_path / "x.png")
    elif case == "box_outside":
        extra = ["--box", "500,500,600,600"]
    elif case == "wrong_ckpt":
        torch.save({"state": {"w": torch.zeros(2)}, "note": "random"}, tmp_path / "r.ckpt")
        model = str(tmp_path / "r.ckpt")
    elif case == "corrupt_onnx":
        (tmp_path / "c.onnx").write_bytes(np.random.default_rng(0).bytes(2000))
        model = str(tmp_path / "c.onnx")
    elif case == "bad_box":
        extra = ["--box", "1,2,three,4"]
    else:
        (tmp_path / "m.h5").write_bytes(b"x")
        model = str(tmp_path / "m.h5")
    assert main(["predict", model, image, *extra, "--json", str(tmp_path / "o.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("distill predict: error:") and "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "o.json").exists()


def test_parse_box():
    np.testing.assert_array_equal(parse_box("1,2.5,30,40"), [1, 2.5, 30, 40])
    with pytest.raises(ValueError, match="four numbers"):
        parse_box("1,2,3")
