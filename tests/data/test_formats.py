import json
import re

import cv2
import numpy as np
import pytest

from distill.data import (
    ScanReport,
    guess_format,
    load_samples,
    read_300w,
    read_aflw,
    read_aflw_csv,
    read_cofw,
    read_folder,
    read_pts,
    read_wflw,
    write_pts,
)
from distill.data.formats import read_cofw as read_cofw_reexported
from distill.data.formats.mat import write_mat
from distill.errors import DataError
from tests.data.helpers import (
    TREE_300W,
    aflw_truth,
    aflw_variables,
    cofw_truth,
    cofw_variables,
    make_300w_tree,
    random_points,
    wflw_line,
    write_aflw_csv,
    write_image,
    write_mat_v73,
    write_pts_text,
    write_sidecar,
    write_wflw,
)

# ----------------------------------------------------------------------------- .pts


def test_pts_round_trip_is_bit_exact(tmp_path):
    rng = np.random.default_rng(0)
    pts = (rng.random((68, 2)) * 5000 - 50).astype(np.float32)
    pts[0] = [0.0, 1e-6]
    pts[1] = [-0.9999999, 4095.9998]
    pts[2] = np.nextafter(np.float32(123.5), np.float32(200))
    write_pts(tmp_path / "a.pts", pts)
    back = read_pts(tmp_path / "a.pts")
    assert back.dtype == np.float32 and back.shape == (68, 2)
    assert np.array_equal(back.view(np.uint32), pts.view(np.uint32))
    assert not list(tmp_path.glob("*.tmp"))  # atomic write leaves no temp file


def test_pts_is_one_based_on_disk(tmp_path):
    write_pts(tmp_path / "a.pts", np.array([[0.0, 0.0], [9.5, 2.25]], np.float32))
    rows = (tmp_path / "a.pts").read_text().splitlines()[3:5]
    assert [list(map(float, r.split())) for r in rows] == [[1.0, 1.0], [10.5, 3.25]]


def test_pts_with_crlf_tabs_and_odd_spacing(tmp_path):
    truth = random_points(68, 640, 480)
    path = tmp_path / "face.pts"
    write_pts_text(path, truth, newline="\r\n", sep=" \t  ")
    path.write_bytes(path.read_bytes().replace(b"version: 1", b"version:   1  ") + b"\r\n\r\n")
    pts = read_pts(path, num_points=68)
    np.testing.assert_allclose(pts, truth, atol=1e-3)


def test_pts_19_points_as_ibug68_is_rejected(tmp_path):
    write_pts(tmp_path / "a.pts", random_points(19, 8, 8))
    with pytest.raises(DataError, match="has 19 points, the schema ibug68 expects 68"):
        read_pts(tmp_path / "a.pts", num_points=68)
    write_image(tmp_path / "a.png")
    with pytest.raises(DataError, match=re.escape(str(tmp_path / "a.pts")) + ".*has 19 points, the schema ibug68"):
        read_300w(tmp_path, strict=True)


GOOD_PTS = "version: 1\nn_points: 2\n{\n1 2\n3 4\n}\n"


@pytest.mark.parametrize("text, where", [
    ("version: 1\nn_points: 2\n{\n1 2\n3 x\n}\n", ":5:"),  # non-numeric
    ("version: 1\nn_points: 2\n{\n1 2\nnan 4\n}\n", ":5:"),  # NaN
    ("version: 1\nn_points: 2\n{\n1 2\n3 inf\n}\n", ":5:"),  # infinite
    ("version: 1\nn_points: 2\n{\n1 2\n3 4\n", "closing brace"),  # truncated
    ("version: 1\nn_points: 2\n1 2\n3 4\n}\n", ":3:"),  # no opening brace
    ("version: 1\nn_points: 3\n{\n1 2\n3 4\n}\n", "n_points says 3"),  # count mismatch
    ("version: 1\n{\n1 2\n3 4\n}\n", "n_points"),  # no count
    ("version: 1\nn_points: 2\n{\n1 2 3\n3 4\n}\n", ":4:"),  # three numbers
])
def test_malformed_pts_names_file_and_line(tmp_path, text, where):
    path = tmp_path / "bad.pts"
    path.write_text(text)
    with pytest.raises(DataError) as e:
        read_pts(path)
    assert str(path) in str(e.value) and where in str(e.value)


# ----------------------------------------------------------------------------- 300W and folders


def test_300w_split_discovery(tmp_path):
    truth = make_300w_tree(tmp_path)
    counts = {}
    for split in ("train", "common", "challenging", "full"):
        samples = read_300w(tmp_path, split=split, strict=True)
        counts[split] = len(samples)
        for s in samples:
            np.testing.assert_allclose(s.points, truth[s.image_path], atol=1e-3)
            expected = {"train": None, "common": "common", "challenging": "challenging"}
            folder = next(f for f in TREE_300W if str(tmp_path / f) in str(s.image_path))
            assert s.attributes.get("subset") == expected[TREE_300W[folder][1]]
    assert counts == {"train": 4, "common": 3, "challenging": 2, "full": 5}
    everything = read_300w(tmp_path, strict=True)
    assert len(everything) == 9 and everything[0].image_path.suffix in (".png", ".jpg")
    assert sorted(map(str, (s.image_path for s in everything))) == sorted(map(str, truth))


def test_300w_folders_found_below_the_root(tmp_path):
    make_300w_tree(tmp_path / "ibug_300W_large_face_landmark_dataset")
    assert len(read_300w(tmp_path, split="full", strict=True)) == 5
    assert len(read_300w(tmp_path, split="train", strict=True)) == 4


def test_300w_split_needs_300w_folders(tmp_path):
    write_image(tmp_path / "x" / "a.png")
    write_pts(tmp_path / "x" / "a.pts", random_points(68, 8, 8))
    assert len(read_300w(tmp_path)) == 1
    with pytest.raises(DataError, match="afw"):
        read_300w(tmp_path, split="train")
    with pytest.raises(DataError, match="unknown 300W split"):
        read_300w(tmp_path, split="val")


def _bad_folder(root):
    """One good sample and one of each kind of bad one."""
    good = random_points(68, 8, 8)
    write_image(root / "good.png")
    write_pts(root / "good.pts", good)
    write_pts(root / "no_image.pts", good)
    write_image(root / "count.png")
    write_pts(root / "count.pts", good[:19])
    write_image(root / "nan.png")
    write_pts(root / "nan.pts", np.where(np.arange(68)[:, None] == 3, np.nan, good))
    write_image(root / "text.png")
    (root / "text.pts").write_text(GOOD_PTS.replace("3 4", "3 four"))
    (root / "empty.png").write_bytes(b"")
    write_pts(root / "empty.pts", good)
    (root / "garbage.png").write_bytes(b"this is not an image")
    write_pts(root / "garbage.pts", good)
    write_image(root / "far.png")
    write_pts(root / "far.pts", np.where(np.arange(68)[:, None] == 5, 1e4, good))  # 8x8 image
    write_image(root / "trunc.png")
    (root / "trunc.pts").write_text(GOOD_PTS[:-3])
    write_image(root / "masks" / "good.png")  # an image with no annotation is not a sample


def test_scan_report_counts_skips(tmp_path):
    _bad_folder(tmp_path)
    samples, report = load_samples("300w", tmp_path)
    assert [s.image_path.name for s in samples] == ["good.png"]
    assert isinstance(report, ScanReport)
    assert (report.total, report.skipped, report.kept) == (9, 8, 1)
    assert report.reasons == {"missing image": 1, "wrong point count": 1, "non-finite value": 1,
                              "non-numeric value": 1, "unreadable image": 2, "absurd coordinates": 1,
                              "truncated": 1}
    assert len(report.examples) == 8 and "skipped 8" in report.summary()
    with pytest.raises(DataError, match="count.pts"):  # strict stops at the first bad one (sorted order)
        load_samples("300w", tmp_path, strict=True)


@pytest.mark.parametrize("stem, message", [
    ("no_image", "no image beside it"), ("count", "has 19 points, the schema ibug68 expects 68"),
    ("nan", "NaN"), ("text", "non-numeric"), ("empty", "empty"), ("garbage", "not a PNG"),
    ("far", "point 5"), ("trunc", "closing brace"),
])
def test_each_bad_sample_raises_with_its_file(tmp_path, stem, message):
    _bad_folder(tmp_path)
    for other in tmp_path.glob("*.pts"):
        if other.stem != stem:
            other.unlink()
    with pytest.raises(DataError) as e:
        read_300w(tmp_path, strict=True)
    assert stem in str(e.value) and message in str(e.value)


def test_truncated_images_are_skipped_by_the_scan_and_damaged_ones_by_validation(tmp_path):
    for name in ("a", "cut", "damaged"):
        write_image(tmp_path / f"{name}.png", width=32, height=32)
        write_pts(tmp_path / f"{name}.pts", random_points(68, 8, 8))
    data = (tmp_path / "cut.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[:len(data) // 2])  # valid header, cut short: the scan sees it
    data = bytearray((tmp_path / "damaged.png").read_bytes())
    at = data.index(b"IDAT") + 10
    data[at:at + 20] = bytes(20)  # compressed pixels wrecked, the file whole: only a decode can tell
    (tmp_path / "damaged.png").write_bytes(bytes(data))
    samples, report = load_samples("300w", tmp_path)
    assert len(samples) == 2 and report.reasons == {"truncated image": 1} and "cut.png" in report.summary()
    samples, report = load_samples("300w", tmp_path, validate_images=True)
    assert [s.image_path.name for s in samples] == ["a.png"] and report.total == 3
    assert report.reasons == {"truncated image": 1, "unreadable image": 1}


def test_read_folder_pts_and_json(tmp_path):
    pts19 = random_points(19, 8, 8, seed=1)
    write_image(tmp_path / "a" / "one.jpg")
    write_pts(tmp_path / "a" / "one.pts", pts19)
    write_image(tmp_path / "b" / "two.ppm")
    pts2 = random_points(19, 8, 8, seed=2)
    vis = [1.0] * 18 + [0.0]
    (tmp_path / "b" / "two.json").write_text(json.dumps({"points": pts2.tolist(), "visibility": vis,
                                                         "box": [0, 0, 7, 7]}))
    samples = read_folder(tmp_path, "aflw19", strict=True)
    assert [s.image_path.name for s in samples] == ["one.jpg", "two.ppm"]
    np.testing.assert_allclose(samples[0].points, pts19, atol=1e-6)
    assert np.array_equal(samples[1].points, pts2)  # JSON is 0-based, no shift
    assert samples[1].visibility.tolist() == vis and samples[1].box.tolist() == [0, 0, 7, 7]
    with pytest.raises(DataError, match="needs a schema"):
        load_samples("folder", tmp_path)
    assert len(load_samples("auto", tmp_path, schema="aflw19")[0]) == 2


@pytest.mark.parametrize("content, message", [
    ('{"points": [[1, 2]', "two.json:1: not valid JSON"),
    ('{"pts": []}', "'points' list"),
    ('{"points": [[1, "a"]]}', "must be numbers"),
    ('{"points": [], "extra": 1}', "unknown key 'extra'"),
])
def test_bad_json_annotation(tmp_path, content, message):
    write_image(tmp_path / "two.png")
    (tmp_path / "two.json").write_text(content)
    with pytest.raises(DataError, match=re.escape(message)):
        read_folder(tmp_path, "aflw19", strict=True)


# ----------------------------------------------------------------------------- SynthFace sidecar


def _synth_dir(root, n=2):
    entries = []
    for i in range(n):
        write_image(root / "train" / f"{i:06d}.png", seed=i)
        write_pts(root / "train" / f"{i:06d}.pts", random_points(68, 8, 8, seed=i))
        entries.append({"image": f"train/{i:06d}.png", "visibility": [1.0] * 67 + [0.0],
                        "visibility98": [0.0] * 98,
                        "attributes": {"pose": 1, "expression": 0, "illumination": 0, "makeup": 0,
                                       "occlusion": i, "blur": 0},
                        "yaw": 10.0 * i, "pitch": -3.0, "roll": 1.5, "mask": f"masks/train/{i:06d}.png" if i else None,
                        "group": 7, "frame": i, "split": "train"})
    write_sidecar(root, entries)
    return entries


def test_synthface_sidecar_is_merged(tmp_path):
    _synth_dir(tmp_path)
    for fmt in ("synthface", "auto"):
        samples, report = load_samples(fmt, tmp_path, split="train", strict=True)
        assert report.total == 2 and len(samples) == 2
        a, b = samples
        assert a.visibility.tolist() == [1.0] * 67 + [0.0]
        assert b.attributes["occlusion"] == 1 and b.attributes["pose"] == 1 and b.attributes["yaw"] == 10.0
        assert a.attributes["mask"] is None and b.attributes["mask"] == str(tmp_path / "masks/train/000001.png")
        assert (b.attributes["group"], b.attributes["frame"], b.attributes["split"]) == (7, 1, "train")
    assert read_300w(tmp_path / "train")[1].attributes["yaw"] == 10.0  # the parent's sidecar counts too
    with pytest.raises(DataError, match="no split folder 'test'"):
        load_samples("synthface", tmp_path, split="test")


def test_sidecar_errors_name_file_and_line(tmp_path):
    entries = _synth_dir(tmp_path)
    entries[1]["visibility"] = [1.0] * 3
    write_sidecar(tmp_path, entries)
    with pytest.raises(DataError, match=re.escape("annotations.jsonl:2: 'visibility'")):
        load_samples("synthface", tmp_path, split="train", strict=True)
    (tmp_path / "annotations.jsonl").write_text(json.dumps(entries[0]) + "\n{oops\n")
    with pytest.raises(DataError, match="annotations.jsonl:2: not valid JSON"):
        load_samples("synthface", tmp_path, split="train")


# ----------------------------------------------------------------------------- WFLW


def _wflw_set(root, n=3, newline="\n"):
    truth = []
    for i in range(n):
        rel = f"{i}--Folder name/img_{i}.jpg"
        write_image(root / "WFLW_images" / rel, width=12, height=10, seed=i)
        pts = random_points(98, 12, 10, seed=i)
        flags = [i % 2, 0, 1, 0, 1 - i % 2, 0]
        truth.append((rel, pts, [0.5, 1.0, 11.0, 9.5], flags))
    ann = root / "WFLW_annotations" / "list_98pt_rect_attr_train.txt"
    write_wflw(ann, [wflw_line(p, b, f, r) for r, p, b, f in truth], newline=newline)
    return ann, truth


def test_read_wflw(tmp_path):
    ann, truth = _wflw_set(tmp_path, newline="\r\n")
    samples = read_wflw(ann, strict=True)  # images root found: WFLW_images beside WFLW_annotations
    assert len(samples) == 3
    for s, (rel, pts, box, flags) in zip(samples, truth):
        assert s.image_path == tmp_path / "WFLW_images" / rel
        assert np.array_equal(s.points, pts) and s.box.tolist() == box
        assert [s.attributes[k] for k in ("pose", "expression", "illumination", "makeup", "occlusion", "blur")] == flags
    samples2, report = load_samples("auto", ann)
    assert len(samples2) == 3 and report.skipped == 0
    by_split, _ = load_samples("wflw", tmp_path, split="train", strict=True)  # the WFLW folder + a split
    assert [s.image_path for s in by_split] == [s.image_path for s in samples]
    with pytest.raises(DataError, match="list_98pt_rect_attr_test.txt"):
        load_samples("wflw", tmp_path, split="test")


def test_wflw_sidecar_uses_visibility98(tmp_path):
    ann, truth = _wflw_set(tmp_path, n=1)
    write_sidecar(tmp_path, [{"image": f"WFLW_images/{truth[0][0]}", "visibility98": [1.0] * 97 + [0.0],
                              "visibility": [0.0] * 68, "yaw": 5.0}])
    (s,) = read_wflw(ann, tmp_path / "WFLW_images", strict=True)
    assert s.visibility.tolist() == [1.0] * 97 + [0.0] and s.attributes["yaw"] == 5.0


@pytest.mark.parametrize("mutate, message", [
    (lambda t: t[:150], "has 150 fields, expected 207"),  # truncated
    (lambda t: t[:7] + ["x1"] + t[8:], "field 8 'x1' is not a number"),
    (lambda t: t[:7] + ["nan"] + t[8:], "NaN"),
    (lambda t: t[:200] + ["2"] + t[201:], "pose flag must be 0 or 1"),
    (lambda t: t[:206] + ["missing.jpg"], "missing.jpg: image not found"),
    (lambda t: t[:196] + ["5", "5", "1", "1"] + t[200:], "no area"),
    (lambda t: t[:206] + ["1.0"] + t[206:], "has 209 fields"),  # the path has a space
])
def test_bad_wflw_line_names_file_and_line(tmp_path, mutate, message):
    ann, truth = _wflw_set(tmp_path)
    lines = ann.read_text().splitlines()
    lines[1] = " ".join(mutate(lines[1].split(" ", 206)[:206] + [lines[1].split(" ", 206)[206]]))
    write_wflw(ann, lines)
    with pytest.raises(DataError) as e:
        read_wflw(ann, strict=True)
    assert f"{ann}:2:" in str(e.value) and message in str(e.value)
    samples, report = load_samples("wflw", ann)
    assert len(samples) == 2 and report.skipped == 1


def test_wflw_with_a_68_point_schema_is_rejected(tmp_path):
    ann, _ = _wflw_set(tmp_path, n=1)
    with pytest.raises(DataError, match="wflw data has 98 points, the schema ibug68 expects 68"):
        load_samples("wflw", ann, schema="ibug68")
    with pytest.raises(DataError, match="does not apply"):
        load_samples("wflw", ann, split="train")


# ----------------------------------------------------------------------------- COFW


@pytest.mark.parametrize("writer", [write_mat, write_mat_v73], ids=["matlab5", "v7.3-hdf5"])
def test_read_cofw(tmp_path, writer):
    truth = cofw_truth()
    mat = tmp_path / "COFW_train_color.mat"
    writer(mat, cofw_variables(truth, "train"))
    samples = read_cofw(mat, "train", strict=True)
    assert len(samples) == 3
    for i, s in enumerate(samples):
        np.testing.assert_allclose(s.points, truth["points"][i], atol=1e-5)
        assert s.visibility.tolist() == (1.0 - truth["flags"][i]).tolist()
        x, y, w, h = truth["boxes"][i]
        assert s.box.tolist() == [x, y, x + w, y + h]
        assert s.image_path == tmp_path / "COFW_train_color_images" / f"train_{i:05d}.png"
        img = cv2.imread(str(s.image_path), cv2.IMREAD_UNCHANGED)
        rgb = truth["images"][i]
        assert np.array_equal(img, rgb if rgb.ndim == 2 else rgb[..., ::-1])  # stored BGR
    # the cache is written once: a .mat without the images still reads, from the cache
    stamps = [s.image_path.stat().st_mtime_ns for s in samples]
    variables = cofw_variables(truth, "train")
    del variables["IsTr"]
    mat.unlink()
    writer(mat, variables)
    again, report = load_samples("auto", mat)
    assert len(again) == 3 and report.skipped == 0
    assert [s.image_path.stat().st_mtime_ns for s in again] == stamps


def test_cofw_test_split_and_errors(tmp_path):
    truth = cofw_truth(n=2)
    mat = tmp_path / "COFW_test_color.mat"
    write_mat_v73(mat, cofw_variables(truth, "test"))
    assert [s.attributes["split"] for s in read_cofw(mat, None, cache_dir=tmp_path / "c")] == ["test", "test"]
    with pytest.raises(DataError, match=re.escape(str(mat)) + ".*no key 'phisTr'"):
        read_cofw(mat, "train")
    bad = cofw_variables(truth, "test")
    bad["phisT"] = bad["phisT"][:, :80]
    write_mat(tmp_path / "bad.mat", bad)
    with pytest.raises(DataError, match="bad.mat.*expected \\(N, 87\\)"):
        read_cofw(tmp_path / "bad.mat", "test")
    (tmp_path / "junk.mat").write_bytes(b"not a mat file at all" * 10)
    with pytest.raises(DataError, match="junk.mat"):
        read_cofw(tmp_path / "junk.mat")


# ----------------------------------------------------------------------------- AFLW-19


@pytest.mark.parametrize("writer", [write_mat, write_mat_v73], ids=["matlab5", "v7.3-hdf5"])
def test_read_aflw_mat(tmp_path, writer):
    truth = aflw_truth(n=5)
    for name in truth["names"]:
        write_image(tmp_path / "data" / "flickr" / name)
    mat = tmp_path / "AFLWinfo_release.mat"
    writer(mat, aflw_variables(truth))
    train = read_aflw(mat, "train", strict=True, train_size=3)  # images root: data/flickr beside the .mat
    test = read_aflw(mat, "test", tmp_path / "data" / "flickr", strict=True, train_size=3)
    assert len(train) == 3 and len(test) == 2
    for s, row in zip(train + test, truth["perm"]):
        assert s.image_path == tmp_path / "data" / "flickr" / truth["names"][row]
        assert np.array_equal(s.points, truth["points"][row])
        assert s.visibility.tolist() == truth["mask"][row].tolist()
        assert s.box.tolist() == truth["boxes"][row].tolist()
    assert len(read_aflw(mat, "all")) == 5
    assert guess_format(mat) == "aflw"
    samples, _ = load_samples("aflw", mat, split="train")
    assert len(samples) == 5  # the standard 20000 train rows cover the whole tiny file


def test_aflw_mat_errors(tmp_path):
    truth = aflw_truth(n=3)
    variables = aflw_variables(truth)
    variables["ra"] = np.array([[1.0, 1.0, 2.0]])
    write_mat(tmp_path / "a.mat", variables)
    with pytest.raises(DataError, match="a.mat: 'ra' is not a permutation"):
        read_aflw(tmp_path / "a.mat", "train", tmp_path)
    del variables["bbox"]
    write_mat(tmp_path / "b.mat", variables)
    with pytest.raises(DataError, match="b.mat: no key 'bbox'"):
        read_aflw(tmp_path / "b.mat", "all", tmp_path)
    with pytest.raises(DataError, match="missing.png|image0"):  # images not there
        read_aflw(tmp_path / "a.mat", "all", tmp_path / "nowhere", strict=True)


def test_read_aflw_csv(tmp_path):
    truth = aflw_truth(n=2)
    rows = []
    for i, name in enumerate(truth["names"]):
        write_image(tmp_path / "images" / name)
        rows.append((name, 0.03 + i * 0.01, 5.5, 4.0, 4.5, truth["points"][i]))
    csv_path = tmp_path / "face_landmarks_aflw_test.csv"
    write_aflw_csv(csv_path, rows)
    samples = read_aflw_csv(csv_path, strict=True)  # images root: images/ beside the csv
    for s, (name, scale, box_size, cx, cy, pts) in zip(samples, rows):
        assert s.image_path == tmp_path / "images" / name
        assert np.array_equal(s.points, pts)
        np.testing.assert_allclose(s.box, [cx - scale * 100, cy - scale * 100, cx + scale * 100, cy + scale * 100],
                                   rtol=1e-6)
        assert s.attributes["box_size"] == box_size
    assert len(load_samples("auto", csv_path)[0]) == 2
    text = csv_path.read_text().splitlines()
    csv_path.write_text("\n".join(text[:2] + [text[2][:40]]) + "\n")
    with pytest.raises(DataError, match=re.escape(f"{csv_path}:3: has") + ".*expected 43"):
        read_aflw_csv(csv_path, strict=True)
    csv_path.write_text("image_name,scale\n")
    with pytest.raises(DataError, match=re.escape(f"{csv_path}:1: header")):
        read_aflw_csv(csv_path)


# ----------------------------------------------------------------------------- dispatch


def test_guess_format_and_unknown_format(tmp_path):
    make_300w_tree(tmp_path / "300w")
    assert guess_format(tmp_path / "300w") == "300w"
    _synth_dir(tmp_path / "synth")
    assert guess_format(tmp_path / "synth") == "synthface"
    write_mat(tmp_path / "cofw.mat", cofw_variables(cofw_truth(n=1), "test"))
    assert guess_format(tmp_path / "cofw.mat") == "cofw"
    assert guess_format(tmp_path / "x.txt") == "wflw" and guess_format(tmp_path / "x.csv") == "aflw_csv"
    with pytest.raises(DataError, match="unknown data format 'lfw'"):
        load_samples("lfw", tmp_path / "300w")
    with pytest.raises(DataError, match="not found"):
        load_samples("300w", tmp_path / "nothing")
    samples, report = load_samples("300w", tmp_path / "300w", split="full")
    assert len(samples) == 5 and report.total == 5


def test_readers_are_reexported_from_formats():
    assert read_cofw_reexported is read_cofw
