"""Each literature recipe (300W, WFLW, COFW, AFLW-19), shrunk, trains 2 steps on a few files
written in its own format; its student_from_teacher recipe then distils from that teacher."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from distill.cli import main
from distill.data.formats import write_pts
from tests.data.helpers import aflw_variables, cofw_variables, wflw_line, write_mat_v5, write_wflw
from tests.training.helpers import shrink

N = 6  # faces per data set: 5 train + 1 held out for validation


def face(rng, k: int) -> tuple[np.ndarray, np.ndarray]:
    """A 64 px BGR image and k points inside the face box [12, 52]^2."""
    img = rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    pts = rng.uniform(16, 48, size=(k, 2)).astype(np.float32)
    return img, pts


def write_300w(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for i in range(N):
        folder = root / ("afw" if i < 3 else "helen/trainset")
        folder.mkdir(parents=True, exist_ok=True)
        img, pts = face(rng, 68)
        cv2.imwrite(str(folder / f"{i}.png"), img)
        write_pts(folder / f"{i}.pts", pts)
    return root


def write_wflw_set(root: Path) -> Path:
    rng = np.random.default_rng(1)
    lines = []
    for i in range(N):
        img, pts = face(rng, 98)
        (root / "WFLW_images" / "0--x").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / "WFLW_images" / "0--x" / f"{i}.jpg"), img)
        lines.append(wflw_line(pts, [12, 12, 52, 52], [i % 2, 0, 0, 0, 0, 0], f"0--x/{i}.jpg"))
    ann = root / "WFLW_annotations" / "list_98pt_rect_attr_train_test" / "list_98pt_rect_attr_train.txt"
    write_wflw(ann, lines)
    return ann


def write_cofw(root: Path) -> Path:
    rng = np.random.default_rng(2)
    truth = {"images": [], "points": [], "flags": [], "boxes": []}
    for _ in range(N):
        img, pts = face(rng, 29)
        truth["images"].append(img[:, :, ::-1].copy())  # COFW stores RGB
        truth["points"].append(pts)
        truth["flags"].append((rng.random(29) < 0.2).astype(np.float64))
        truth["boxes"].append(np.array([12.0, 12.0, 40.0, 40.0]))
    root.mkdir(parents=True, exist_ok=True)
    write_mat_v5(root / "COFW_train_color.mat", cofw_variables(truth, "train"))
    return root / "COFW_train_color.mat"


def write_aflw(root: Path) -> Path:
    rng = np.random.default_rng(3)
    names, points = [], []
    for i in range(N):
        img, pts = face(rng, 19)
        names.append(f"0/image{i:05d}.png")
        (root / "data" / "flickr" / "0").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / "data" / "flickr" / names[-1]), img)
        points.append(pts)
    truth = {"names": names, "points": np.stack(points), "boxes": np.array([[12.0, 12.0, 52.0, 52.0]] * N),
             "mask": np.ones((N, 19)), "perm": np.arange(N)}
    write_mat_v5(root / "AFLWinfo_release.mat", aflw_variables(truth))
    return root / "AFLWinfo_release.mat"


WRITERS = {"300w": write_300w, "wflw": write_wflw_set, "cofw": write_cofw, "aflw": write_aflw}


@pytest.mark.parametrize("dataset", sorted(WRITERS))
def test_literature_recipe_trains_two_steps_in_its_own_format(dataset, tmp_path):
    data_root = WRITERS[dataset](tmp_path / "data")
    out = tmp_path / "ckpts"
    tiny = shrink(out, data_root, val_split=None) + ["data.crop_size=64", "data.heatmap_size=16", "data.val_fraction=0.2",
                                                     "data.test_split=null", "schedule.warmup_steps=0"]
    assert main(["train", f"{dataset}/teacher", *tiny]) == 0
    run = (out / dataset / "teacher" / "latest").resolve()
    assert json.loads((run / "metrics.json").read_text())["global_step"] == 2

    # the student recipe finds that teacher by recipe name, through <root>/<dataset>/teacher/latest
    assert main(["train", f"{dataset}/student_from_teacher", *tiny]) == 0
    run = (out / dataset / "student_from_teacher" / "latest").resolve()
    assert json.loads((run / "metrics.json").read_text())["global_step"] == 2
