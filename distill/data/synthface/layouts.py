"""The public data sets' own layouts, made from a SynthFace set, so that every literature recipe
(``300w/*``, ``wflw/*``, ``cofw/*``, ``aflw/*``) runs unchanged on synthetic faces.

    arrange(src, dst, layout)   src: a SynthFace folder (writer.py's layout); dst: a new folder

What each layout holds (the train and test faces of ``src``; no stability set):

    300w   afw/, helen/trainset/, lfpw/trainset/ (train, in 300W's proportions 337 : 2000 : 811),
           helen/testset/, lfpw/testset/ (common, 330 : 224) and ibug/ (challenging: the test faces with
           the most hard-case flags, then the largest yaw, 135 of 689); <name>.jpg + <name>.pts (68 points)
    wflw   WFLW_images/0--SynthFace/<split>_<index>.jpg and
           WFLW_annotations/list_98pt_rect_attr_train_test/list_98pt_rect_attr_{train,test}.txt
    cofw   COFW_train_color.mat (IsTr, phisTr, bboxesTr) and COFW_test_color.mat (IsT, phisT, bboxesT):
           RGB images inside, 29 x then 29 y (1-based) then 29 occlusion flags, boxes x y w h (1-based)
    aflw   AFLWinfo_release.mat (data, nameList, bbox x1 x2 y1 y2, ra, mask_new, num_train) with the images
           in data/flickr/0/, and HRNet's face_landmarks_aflw_{train,test}.csv beside it

plus a README.txt that says what generated the folder. Nothing else of SynthFace comes along (no
annotations.jsonl, no masks): data read from a layout carries what the real release carries, no more.

COFW's 29 and AFLW's 19 points are taken from the 98 WFLW points (an entry that is a tuple is the mean of
those points: AFLW's mouth centre); their pairs match the cofw29 / aflw19 flip permutations, which
``distill data check`` confirms on such a folder.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from distill.data.formats.mat import COFW_KEYS, write_mat
from distill.data.formats.sample import SIDECAR, SUBSET_NAMES
from distill.data.formats.text import AFLW_CSV_LEAD, HRNET_SCALE_PIXELS
from distill.errors import DataError

# WFLW-98 index per point; brows (outer, inner, upper middle, lower middle), eye corners (outer, inner),
# lids (upper, lower), pupils, nose wings, tip, base, mouth corners, lips (outer top, inner top, inner
# bottom, outer bottom), chin -- in cofw29's order (distill.data.schema).
COFW29_FROM_WFLW98 = (33, 46, 37, 42, 35, 40, 44, 48, 60, 72, 64, 68, 62, 66, 70, 74, 96, 97,
                      55, 59, 54, 57, 76, 82, 79, 90, 94, 85, 16)
# brows (outer, middle, inner; then the other brow inner to outer), eyes (corner, pupil, corner), nose
# (wing, tip, wing), mouth (corner, centre, corner), chin -- in aflw19's order.
AFLW19_FROM_WFLW98 = (33, 35, 37, 42, 44, 46, 60, 96, 64, 68, 97, 72, 55, 54, 59, 76, (90, 94), 82, 16)

# 300W's folders and their sizes in the real release (the proportions a synthetic set keeps)
TRAIN_300W = (("afw", 337), ("helen/trainset", 2000), ("lfpw/trainset", 811))
COMMON_300W = (("helen/testset", 330), ("lfpw/testset", 224))
CHALLENGING_300W = ("ibug", 135, 689)  # folder, its size, the whole test set
WFLW_FOLDER = "0--SynthFace"


@dataclass(frozen=True)
class Face:
    split: str
    name: str                 # <split>_<index>, unique across splits
    image: Path
    pts: Path                 # the 68-point .pts beside the image
    wflw: str                 # the WFLW line's 206 leading tokens (points, box, flags), as written
    points98: np.ndarray      # (98, 2) 0-based pixels
    box: np.ndarray           # (4,) x_min y_min x_max y_max around the 98 points
    visible98: np.ndarray     # (98,) bool
    flags: dict
    yaw: float


def read_faces(src: Path) -> list[Face]:
    """The train and test faces of a SynthFace folder, in file order."""
    records = {}
    for line in (src / SIDECAR).read_text().splitlines():
        if line.strip():
            record = json.loads(line)
            records[record["image"]] = record
    faces = []
    for split in ("train", "test"):
        for line in (src / "wflw" / f"list_98pt_{split}.txt").read_text().splitlines():
            if not line.strip():
                continue
            head, image = line.rsplit(" ", 1)        # SynthFace's image paths have no spaces
            numbers = np.asarray(head.split()[:200], dtype=np.float64)
            record = records[image]
            image_path = src / image
            faces.append(Face(split=split, name=f"{split}_{Path(image).stem}", image=image_path,
                              pts=image_path.with_suffix(".pts"), wflw=head,
                              points98=numbers[:196].reshape(98, 2), box=numbers[196:200],
                              visible98=np.asarray(record["visibility98"], dtype=bool),
                              flags=record["attributes"], yaw=float(record["yaw"])))
    return faces


def take(points98: np.ndarray, visible98: np.ndarray, mapping) -> tuple[np.ndarray, np.ndarray]:
    """(K, 2) points and (K,) visibility picked from 98 by ``mapping`` (a tuple entry: the mean, visible
    when all of its points are)."""
    idx = [m if isinstance(m, tuple) else (m,) for m in mapping]
    points = np.stack([points98[list(i)].mean(axis=0) for i in idx])
    visible = np.array([visible98[list(i)].all() for i in idx])
    return points, visible


def _split_by_shares(n: int, parts) -> list[str]:
    """``n`` folder names in the proportions of ``parts`` ((name, size), ...), in order."""
    total = sum(size for _, size in parts)
    ends = np.round(n * np.cumsum([size for _, size in parts]) / total).astype(int)
    starts = np.concatenate([[0], ends[:-1]])
    return [name for (name, _), s, e in zip(parts, starts, ends) for _ in range(e - s)]


def _difficulty(face: Face) -> tuple:
    return (sum(face.flags[k] for k in SUBSET_NAMES), abs(face.yaw))


def _to_300w(faces: list[Face], dst: Path) -> None:
    train = [f for f in faces if f.split == "train"]
    test = [f for f in faces if f.split == "test"]
    folders = dict(zip((f.name for f in train), _split_by_shares(len(train), TRAIN_300W)))
    name, size, whole = CHALLENGING_300W
    hard = round(len(test) * size / whole)
    if len(test) >= 2:  # both test subsets exist whenever they can
        hard = min(max(hard, 1), len(test) - 1)
    ranked = sorted(test, key=_difficulty, reverse=True)
    folders.update({f.name: name for f in ranked[:hard]})
    common = [f for f in test if f.name not in folders]
    folders.update(zip((f.name for f in common), _split_by_shares(len(common), COMMON_300W)))
    for face in faces:
        folder = dst / folders[face.name]
        folder.mkdir(parents=True, exist_ok=True)
        os.replace(face.image, folder / f"{face.name}{face.image.suffix}")
        os.replace(face.pts, folder / f"{face.name}.pts")


def _to_wflw(faces: list[Face], dst: Path) -> None:
    images = dst / "WFLW_images" / WFLW_FOLDER
    lists = dst / "WFLW_annotations" / "list_98pt_rect_attr_train_test"
    images.mkdir(parents=True)
    lists.mkdir(parents=True)
    for split in ("train", "test"):
        lines = []
        for face in (f for f in faces if f.split == split):
            relative = f"{WFLW_FOLDER}/{face.name}{face.image.suffix}"
            os.replace(face.image, images.parent / relative)
            lines.append(f"{face.wflw} {relative}\n")
        (lists / f"list_98pt_rect_attr_{split}.txt").write_text("".join(lines))


def _to_cofw(faces: list[Face], dst: Path) -> None:
    dst.mkdir(parents=True)
    for split, (is_key, phis_key, box_key) in COFW_KEYS.items():
        chosen = [f for f in faces if f.split == split]
        images, phis, boxes = [], [], []
        for face in chosen:
            image = cv2.imread(str(face.image), cv2.IMREAD_COLOR)
            images.append(np.ascontiguousarray(image[..., ::-1]))           # COFW keeps RGB
            points, visible = take(face.points98, face.visible98, COFW29_FROM_WFLW98)
            phis.append(np.concatenate([points[:, 0] + 1, points[:, 1] + 1, (~visible).astype(np.float64)]))
            x1, y1, x2, y2 = face.box
            boxes.append([x1 + 1, y1 + 1, x2 - x1, y2 - y1])
        write_mat(dst / f"COFW_{split}_color.mat", {is_key: images, phis_key: np.asarray(phis).reshape(-1, 87),
                                                    box_key: np.asarray(boxes).reshape(-1, 4)})


def _to_aflw(faces: list[Face], dst: Path, seed: int) -> None:
    flickr = dst / "data" / "flickr" / "0"
    flickr.mkdir(parents=True)
    faces = [f for f in faces if f.split == "train"] + [f for f in faces if f.split == "test"]
    names, data, boxes, masks = [], [], [], []
    rows = {"train": io.StringIO(), "test": io.StringIO()}
    writers = {split: csv.writer(out, lineterminator="\n") for split, out in rows.items()}
    for w in writers.values():
        w.writerow([*AFLW_CSV_LEAD, *(f"{c}{i}" for i in range(19) for c in "xy")])
    for face in faces:
        names.append(f"0/{face.name}{face.image.suffix}")
        os.replace(face.image, flickr.parent / names[-1])
        points, visible = take(face.points98, face.visible98, AFLW19_FROM_WFLW98)
        data.append(np.concatenate([points[:, 0], points[:, 1]]))
        x1, y1, x2, y2 = face.box
        boxes.append([x1, x2, y1, y2])
        masks.append(visible.astype(np.float64))
        side = max(x2 - x1, y2 - y1)
        writers[face.split].writerow([f"data/flickr/{names[-1]}", side / HRNET_SCALE_PIXELS,
                                      np.sqrt((x2 - x1) * (y2 - y1)), (x1 + x2) / 2, (y1 + y2) / 2,
                                      *points.reshape(-1).tolist()])
    num_train = sum(f.split == "train" for f in faces)
    rng = np.random.default_rng(seed)
    ra = np.concatenate([rng.permutation(num_train), num_train + rng.permutation(len(faces) - num_train)]) + 1
    write_mat(dst / "AFLWinfo_release.mat", {
        "data": np.asarray(data).reshape(-1, 38), "nameList": names, "bbox": np.asarray(boxes).reshape(-1, 4),
        "ra": ra.reshape(1, -1).astype(np.float64), "mask_new": np.asarray(masks).reshape(-1, 19),
        "num_train": np.array([[num_train]], dtype=np.float64)})
    for split, out in rows.items():
        (dst / f"face_landmarks_aflw_{split}.csv").write_text(out.getvalue())


LAYOUTS = {"300w": _to_300w, "wflw": _to_wflw, "cofw": _to_cofw, "aflw": _to_aflw}
# How a layout's folder is read: format, training split, test split (what the literature recipes say).
READ_AS = {"300w": ("300w", "train", "full"), "wflw": ("wflw", "train", "test"),
           "cofw": ("cofw", "train", "test"), "aflw": ("aflw", "train", "test")}


def arrange(src: Path, dst: Path, layout: str, meta: dict) -> None:
    """Write ``layout`` (a key of LAYOUTS) into the new folder ``dst`` from the SynthFace folder ``src``,
    moving its images out of ``src`` (which is a staging folder, deleted next). ``meta``: the set's
    meta.json, summarised in dst/README.txt."""
    if layout not in LAYOUTS:
        raise DataError(f"unknown layout {layout!r}; use synthface or one of {', '.join(LAYOUTS)}")
    faces = read_faces(src)
    if layout == "aflw":
        _to_aflw(faces, dst, int(meta["seed"]))
    else:
        LAYOUTS[layout](faces, dst)
    fmt, train, test = READ_AS[layout]
    counts = {s: sum(f.split == s for f in faces) for s in ("train", "test")}
    (dst / "README.txt").write_text(
        f"SynthFace {meta['version']} (seed {meta['seed']}, {meta['size']} px images) in {layout}'s layout: "
        f"{counts['train']} train and {counts['test']} test faces, written by `distill data synth --layout {layout}`.\n"
        f"Read it as format {fmt}, data.root=<this folder>, splits {train} / {test}; "
        f"the {layout}/* recipes run on it unchanged.\n")
