"""A user's whole journey with their own data, through the CLI only: a folder of images with .json points in
a 5-point schema of their own -> data show, data check -> a tiny teacher -> a student distilled from it ->
eval of the checkpoint, the ONNX and the int8 file (no schema file: it travels with the model) -> predict on
an image, a folder and a video -> bench. Each step's outputs are checked, not just its exit code."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from distill.cli import main
from distill.data.formats import load_samples

# face5 from iBUG-68: the centres of the two eyes, the nose tip, the two mouth corners
FIVE_FROM_68 = [list(range(36, 42)), list(range(42, 48)), [30], [48], [54]]
SCHEMA = """name: face5
num_points: 5
flip_pairs: [[0, 1], [3, 4]]
normaliser: {pair: [0, 1]}
"""
TINY = "{num_stacks: %d, channels: 16, depth: 2, stem_channels: 8}"
RECIPE = """task: {task}
model:
  name: hourglass
  args: {args}
data:
  format: folder
  root: {root}
  schema: {schema}
  train_split: null
  test_split: null
  val_fraction: 0.25
  crop_size: 32
  heatmap_size: 8
  batch_size: 4
logging: {{logger: none, progress: false, grid_images: 2}}
trainer: {{max_steps: 3, val_every_n_steps: 3}}
output: {{root: {out}}}
"""


def write_folder(synth_root: Path, out: Path) -> None:
    """SynthFace's faces as a plain folder: <name>.jpg + <name>.json with the 5 points and the face box."""
    for split in ("train", "test"):
        samples, _ = load_samples("synthface", synth_root, split=split)
        (out / split).mkdir(parents=True)
        for s in samples:
            points = np.stack([s.points[i].mean(0) for i in FIVE_FROM_68])                     # (5, 2)
            box = [*s.points.min(0).tolist(), *s.points.max(0).tolist()]
            (out / split / f"{s.image_path.stem}.jpg").write_bytes(Path(s.image_path).read_bytes())
            (out / split / f"{s.image_path.stem}.json").write_text(json.dumps({"points": points.tolist(), "box": box}))


def run(*argv) -> int:
    return main([str(a) for a in argv])


@pytest.mark.slow
def test_own_five_point_data_from_folder_to_bench(synth_root, tmp_path, capsys):
    faces, out = tmp_path / "my_faces", tmp_path / "runs"
    write_folder(synth_root, faces)
    schema = tmp_path / "face5.yaml"
    schema.write_text(SCHEMA)

    # look at the data: a grid with numbered points, and the flip pairs checked on every face
    assert run("data", "show", faces / "train", "--format", "folder", "--schema", schema, "--out",
               tmp_path / "show.png", "--num", "4", "--numbers") == 0
    assert cv2.imread(str(tmp_path / "show.png")) is not None
    assert run("data", "check", faces / "train", "--format", "folder", "--schema", schema) == 0
    assert "face5: every flip pair agrees" in capsys.readouterr().out

    # a tiny teacher, then a student distilled from it (recipes written as a user would)
    recipes = tmp_path / "recipes" / "face5"
    recipes.mkdir(parents=True)
    common = dict(root=faces / "train", schema=schema, out=out)
    (recipes / "teacher.yaml").write_text(RECIPE.format(task="heatmap", args=TINY % 2, **common))
    assert run("train", recipes / "teacher.yaml") == 0
    teacher = (out / "face5" / "teacher" / "latest" / "best.ckpt").resolve()
    (recipes / "student.yaml").write_text(
        RECIPE.format(task="distillation", args=TINY % 1, **common)
        + f"teacher: {{ckpt: {teacher}}}\ndistill: {{pairs: [[stack0.out, stack1.out]]}}\n")
    assert run("train", recipes / "student.yaml") == 0
    run_dir = (out / "face5" / "student" / "latest").resolve()
    student = run_dir / "best.ckpt"
    assert json.loads((run_dir / "metrics.json").read_text())["global_step"] == 3
    capsys.readouterr()

    # eval the checkpoint, its ONNX and its int8 export: the schema comes with each model
    onnx, int8 = tmp_path / "student.onnx", tmp_path / "student_int8.onnx"
    assert run("export", student, "--out", onnx) == 0
    assert run("export", student, "--out", int8, "--int8", "--data", faces) == 0
    said = capsys.readouterr().out
    # a folder without splits: some images calibrate, the others measure the NME change, both counted
    assert "has no training and test splits: 16 images calibrate, 16 others measure the NME" in said
    scores = {}
    for model in (student, onnx, int8):
        target = tmp_path / f"{model.stem}_{model.suffix[1:]}.json"
        assert run("eval", model, "--data", faces / "test", "--format", "folder", "--json", target) == 0
        scores[model] = result = json.loads(target.read_text())
        assert result["count"] == 8 and np.isfinite(result["nme"])
    assert scores[onnx]["label"] == "student.onnx"
    assert scores[student]["label"] == f"face5/student/{run_dir.name}"  # <recipe>/<run>, not best.ckpt
    assert scores[student]["nme"] == pytest.approx(scores[onnx]["nme"], abs=1e-3)

    # predict: one image with its own box, a folder, a video
    image = sorted((faces / "test").glob("*.jpg"))[0]
    assert run("predict", onnx, image, "--pts", image.with_suffix(".json"), "--json", tmp_path / "one.json",
               "--out", tmp_path / "one.png") == 0
    one = json.loads((tmp_path / "one.json").read_text())
    assert len(one["faces"]) == 1 and np.asarray(one["faces"][0]["points"]).shape == (5, 2)
    assert run("predict", int8, faces / "test", "--pts", faces / "test", "--json", tmp_path / "folder.json",
               "--out", tmp_path / "overlays") == 0
    listed = json.loads((tmp_path / "folder.json").read_text())
    assert len(listed) == 8 and all(len(e["faces"]) == 1 for e in listed)
    assert len(list((tmp_path / "overlays").glob("*.jpg"))) == 8

    video = tmp_path / "clip.mp4"
    frame = cv2.imread(str(image))
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10, frame.shape[1::-1])
    for _ in range(5):
        writer.write(frame)
    writer.release()
    box = ",".join(str(v) for v in json.loads(image.with_suffix(".json").read_text())["box"])
    assert run("predict", onnx, video, "--box", box, "--json", tmp_path / "video.json", "--out",
               tmp_path / "overlay.mp4", "--smooth-min-cutoff", "1.0") == 0
    frames = json.loads((tmp_path / "video.json").read_text())
    assert [f["frame"] for f in frames] == [0, 1, 2, 3, 4] and all(len(f["faces"]) == 1 for f in frames)
    assert (tmp_path / "overlay.mp4").stat().st_size > 0

    # bench: the float and the int8 file side by side
    assert run("bench", onnx, int8, "--fast", "--json", tmp_path / "bench.json") == 0
    rows = json.loads((tmp_path / "bench.json").read_text())
    assert [Path(r["model"]).name for r in rows] == ["student.onnx", "student_int8.onnx"]
