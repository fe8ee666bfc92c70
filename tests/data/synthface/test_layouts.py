"""SynthFace in the public data sets' own layouts: each loads through its own reader with one folder as the
root, carries the same faces as the SynthFace set of the same seed, and its derived point sets agree with
their schemas' flip pairs."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from distill.cli import build_parser
from distill.data.flip_check import check_flip
from distill.data.formats import guess_format, load_samples, read_pts
from distill.data.schema import get_schema
from distill.data.synthface import generate
from distill.data.synthface.layouts import AFLW19_FROM_WFLW98, COFW29_FROM_WFLW98, LAYOUTS, READ_AS, take
from distill.errors import DataError

SIZE = dict(num=24, num_test=4, seed=5, size=64, workers=1, progress=False)


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    return generate(tmp_path_factory.mktemp("own") / "set", **SIZE)


@pytest.fixture(scope="module")
def layouts(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("layouts")
    return {name: generate(root / name, layout=name, **SIZE) for name in LAYOUTS}


def faces98(synth: Path, split: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """<split>_<index> -> (98 points, 98 visibility) of the plain SynthFace set."""
    samples, _ = load_samples("wflw", synth, split=split)
    return {f"{split}_{Path(s.image_path).stem}": (s.points, s.visibility) for s in samples}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_each_layout_loads_from_its_folder_with_the_same_faces(layout, layouts, synth):
    root = layouts[layout]
    fmt, train_split, test_split = READ_AS[layout]
    assert guess_format(root) == fmt
    assert not (root / "annotations.jsonl").exists() and not (root / "masks").exists()
    mapping = {"300w": None, "wflw": tuple(range(98)), "cofw": COFW29_FROM_WFLW98, "aflw": AFLW19_FROM_WFLW98}[layout]
    for split, read_split, count in (("train", train_split, SIZE["num"]), ("test", test_split, SIZE["num_test"])):
        samples, report = load_samples("auto", root, split=read_split)
        assert (len(samples), report.skipped) == (count, 0)
        truth = faces98(synth, split)
        for s in samples:
            name = Path(s.image_path).stem
            if layout == "cofw":  # images live inside the .mat: the cache names them <split>_<row>
                name = f"{split}_{int(name.split('_')[1]):06d}"
            if mapping is None:
                expected = read_pts(synth / split / f"{name.split('_')[1]}.pts")
                np.testing.assert_array_equal(s.points, expected)
                continue
            points, visible = take(truth[name][0], truth[name][1] > 0, mapping)
            np.testing.assert_allclose(s.points, points, atol=1e-4)
            if layout in ("cofw", "aflw"):  # their releases carry occlusion / visibility
                np.testing.assert_array_equal(s.visibility > 0, visible)


@pytest.mark.parametrize("layout, schema", [("cofw", "cofw29"), ("aflw", "aflw19"), ("wflw", "wflw98")])
def test_derived_point_sets_agree_with_their_flip_pairs(layout, schema, layouts):
    samples, _ = load_samples("auto", layouts[layout], split="train")
    assert check_flip(samples, get_schema(schema)).suspicious == []


def test_300w_layout_keeps_the_release_s_folders_and_puts_the_hardest_faces_in_ibug(layouts, synth):
    root = layouts["300w"]
    train = {p.parent.relative_to(root).as_posix() for p in root.rglob("train_*.pts")}
    assert train == {"afw", "helen/trainset", "lfpw/trainset"}
    challenging, _ = load_samples("300w", root, split="challenging")
    common, _ = load_samples("300w", root, split="common")
    assert len(challenging) >= 1 and len(challenging) + len(common) == 4
    tests, _ = load_samples("synthface", synth, split="test")
    hardness = {Path(s.image_path).stem: sum(s.attributes[k] for k in ("pose", "expression", "illumination",
                                                                       "makeup", "occlusion", "blur"))
                for s in tests}
    hard = min(hardness[Path(s.image_path).stem.split("_")[1]] for s in challenging)
    assert all(hardness[Path(s.image_path).stem.split("_")[1]] <= hard for s in common)


def test_synthface_s_own_wflw_lists_load_with_the_folder_as_root(synth, tmp_path):
    """SynthFace writes wflw/list_98pt_<split>.txt with image paths relative to its folder: the folder is root."""
    samples, _ = load_samples("wflw", synth, split="test")
    assert len(samples) == 4 and all(Path(s.image_path).is_file() for s in samples)
    # a list file moved away from its images needs images_root, and says where it looked without it
    moved = tmp_path / "lists" / "list_98pt_test.txt"
    moved.parent.mkdir()
    shutil.copy(synth / "wflw" / "list_98pt_test.txt", moved)
    _, report = load_samples("wflw", moved)
    assert report.kept == 0 and report.reasons == {"missing image": 4}
    samples, _ = load_samples("wflw", moved, images_root=synth)
    assert len(samples) == 4
    with pytest.raises(DataError, match="images_root applies to"):
        load_samples("300w", synth / "train", images_root=synth)


def test_layout_choices_and_refusals(tmp_path):
    synth_parser = build_parser()._subparsers._group_actions[0].choices["data"]._subparsers._group_actions[0]
    layout = next(a for a in synth_parser.choices["synth"]._actions if a.dest == "layout")
    assert set(layout.choices) == {"synthface", *LAYOUTS}
    with pytest.raises(DataError, match="no stability set"):
        generate(tmp_path / "a", num=2, num_test=1, size=64, stability=2, layout="wflw", progress=False)
    with pytest.raises(DataError, match="unknown layout"):
        generate(tmp_path / "b", num=2, num_test=1, size=64, layout="helen", progress=False)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
