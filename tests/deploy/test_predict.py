"""`distill predict`: an image, a folder or a video in; overlays and JSON out; bad input is one line."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from distill.cli import main
from distill.data import write_pts
from distill.data.transforms import box_from_points
from distill.deploy.predictor import LandmarkPredictor

BOX = [40.0, 30.0, 120.0, 110.0]


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
    # a folder's .json annotation works too: its own box when it has one, else its points' extent
    (tmp_path / "face.json").write_text(json.dumps({"points": pts.tolist(), "box": [30, 35, 110, 115]}))
    assert main(["predict", str(models["ckpt"]), str(path), "--pts", str(tmp_path / "face.json"),
                 "--json", str(out_json)]) == 0
    assert json.loads(out_json.read_text())["faces"][0]["box"] == [30, 35, 110, 115]
    (tmp_path / "face.json").write_text(json.dumps({"points": pts.tolist()}))
    assert main(["predict", str(models["ckpt"]), str(path), "--pts", str(tmp_path / "face.json"),
                 "--json", str(out_json)]) == 0
    np.testing.assert_allclose(json.loads(out_json.read_text())["faces"][0]["box"], box_from_points(pts), atol=1e-4)


def test_no_face_found_says_how_to_give_one(models, photo, monkeypatch, capsys):
    from distill.deploy import detectors

    path, _ = photo
    monkeypatch.setitem(detectors.DETECTORS, "haar", lambda: (lambda image: []))
    assert main(["predict", str(models["onnx"]), str(path), "--detector", "haar", "--json", str(path) + ".json"]) == 0
    out = capsys.readouterr().out
    assert "face boxes: haar detector" in out
    assert "0 face(s)" in out and "--box x1,y1,x2,y2" in out and "--pts" in out
    assert json.loads(Path(str(path) + ".json").read_text()) == {"image": str(path), "model": str(models["onnx"]),
                                                                  "detector": "haar", "faces": []}


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
    assert sorted(p.name for p in (tmp_path / "over").iterdir()) == ["a.png", "b.jpg"]  # the image's own name

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
