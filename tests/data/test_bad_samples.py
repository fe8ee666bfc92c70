"""Every reader against the same malformed inputs: each case is skipped with its reason (named in the
report with its file), raised as one error, or accepted, exactly as the table says."""

from __future__ import annotations

import numpy as np
import pytest

from distill.data import load_samples
from distill.errors import DataError
from tests.data.helpers import (
    pts_text,
    random_points,
    wflw_line,
    write_aflw_csv,
    write_image,
    write_pts_text,
    write_wflw,
)

GOOD = 2  # good samples written beside the one under test


def _jpeg(path, damage: str | None = None) -> None:
    """A real JPEG; ``damage``: "cut" (the second half gone) or "header" (nothing after the scan header)."""
    write_image(path.with_suffix(".jpg"), width=32, height=32)
    data = path.with_suffix(".jpg").read_bytes()
    if damage == "cut":
        data = data[: len(data) // 2]
    elif damage == "header":
        data = data[: data.index(b"\xff\xda") + 14]
    path.with_suffix(".jpg").write_bytes(data)


# What is done to the sample under test (beside GOOD good ones), and the outcome:
# ("skip", reason) / ("ok",) / ("error", message part)
PTS_CASES = {
    "truncated .pts": (lambda d, p: (d / "x.pts").write_text(pts_text(p)[:-8]), ("skip", "truncated")),
    "wrong point count": (lambda d, p: (d / "x.pts").write_text(pts_text(p[:19])), ("skip", "wrong point count")),
    "NaN coordinate": (lambda d, p: (d / "x.pts").write_text(pts_text(np.where(np.arange(68)[:, None] == 4,
                                                                                     np.nan, p))),
                       ("skip", "non-finite value")),
    "inf coordinate": (lambda d, p: (d / "x.pts").write_text(pts_text(np.where(np.arange(68)[:, None] == 4,
                                                                                     np.inf, p))),
                       ("skip", "non-finite value")),
    "huge coordinate": (lambda d, p: (d / "x.pts").write_text(pts_text(np.where(np.arange(68)[:, None] == 4,
                                                                                      1e9, p))),
                        ("skip", "absurd coordinates")),
    "non-UTF-8 byte": (lambda d, p: (d / "x.pts").write_bytes(pts_text(p).encode().replace(b"\n{", b"\n\xff{")),
                       ("skip", "malformed")),
    "UTF-8 BOM": (lambda d, p: (d / "x.pts").write_bytes(b"\xef\xbb\xbf" + pts_text(p).encode()), ("ok",)),
    "CRLF line ends": (lambda d, p: write_pts_text(d / "x.pts", p, newline="\r\n"), ("ok",)),
    "empty .pts": (lambda d, p: (d / "x.pts").write_bytes(b""), ("skip", "truncated")),
    "missing image": (lambda d, p: (d / "x.jpg").unlink(), ("skip", "missing image")),
    "not an image": (lambda d, p: (d / "x.jpg").write_text("not an image"), ("skip", "unreadable image")),
    "empty image": (lambda d, p: (d / "x.jpg").write_bytes(b""), ("skip", "unreadable image")),
    "truncated JPEG": (lambda d, p: _jpeg(d / "x", "cut"), ("skip", "truncated image")),
    "header-only JPEG": (lambda d, p: _jpeg(d / "x", "header"), ("skip", "truncated image")),
}


def _folder(tmp_path, case: str) -> tuple:
    folder = tmp_path / "faces"
    folder.mkdir()
    for i in range(GOOD):
        _jpeg(folder / f"good{i}")
        write_pts_text(folder / f"good{i}.pts", random_points(68, 32, 32, seed=i))
    _jpeg(folder / "x")
    points = random_points(68, 32, 32, seed=9)
    write_pts_text(folder / "x.pts", points)
    PTS_CASES[case][0](folder, points)
    return folder, PTS_CASES[case][1]


def _check(load, outcome, where: str):
    if outcome[0] == "error":
        with pytest.raises(DataError, match=outcome[1]):
            load(False)
        return
    samples, report = load(False)
    if outcome[0] == "ok":
        assert len(samples) == GOOD + 1 and report.skipped == 0, report.summary()
        return
    assert len(samples) == GOOD and report.reasons == {outcome[1]: 1}, report.summary()
    assert where in report.summary() and report.to_dict()["skips"][0]["reason"] == outcome[1]
    with pytest.raises(DataError, match=where):  # strict: the same sample stops the scan
        load(True)


@pytest.mark.parametrize("case", PTS_CASES)
@pytest.mark.parametrize("fmt", ["300w", "folder"])
def test_pts_folders(tmp_path, fmt, case):
    folder, outcome = _folder(tmp_path, case)
    _check(lambda strict: load_samples(fmt, folder, schema="ibug68", strict=strict), outcome, "x.")


JSON_CASES = {
    "malformed JSON": ('{"points": [[1, 2]', ("skip", "malformed")),
    "NaN in JSON": (None, ("skip", "non-finite value")),
    "UTF-8 BOM": ("\ufeff", ("ok",)),
    "unknown key": ('{"points": [[1, 2]], "pts": 1}', ("skip", "malformed")),
}


@pytest.mark.parametrize("case", JSON_CASES)
def test_json_annotations(tmp_path, case):
    import json

    folder, _ = _folder(tmp_path, "CRLF line ends")
    (folder / "x.pts").unlink()
    points = random_points(68, 32, 32, seed=9).tolist()
    text, outcome = JSON_CASES[case]
    if case == "NaN in JSON":
        points[3][0] = float("nan")  # Python's json writes the NaN literal other tools produce too
        text = json.dumps({"points": points})
    elif case == "UTF-8 BOM":
        text = text + json.dumps({"points": points})
    (folder / "x.json").write_text(text, encoding="utf-8")
    _check(lambda strict: load_samples("folder", folder, schema="ibug68", strict=strict), outcome, "x.json")


def _wflw_lines(tmp_path, n: int = GOOD + 1) -> tuple:
    images = tmp_path / "WFLW_images"
    lines = []
    for i in range(n):
        _jpeg(images / f"img{i}")
        lines.append(wflw_line(random_points(98, 32, 32, seed=i), [1.0, 1.0, 30.0, 30.0], [0] * 6, f"img{i}.jpg"))
    return images, lines


WFLW_CASES = {
    "too few fields": (lambda lines, img: lines.__setitem__(-1, lines[-1][:200]), ("skip", "truncated")),
    "NaN coordinate": (lambda lines, img: lines.__setitem__(-1, "nan " + lines[-1].split(" ", 1)[1]),
                       ("skip", "non-finite value")),
    "inf coordinate": (lambda lines, img: lines.__setitem__(-1, "inf " + lines[-1].split(" ", 1)[1]),
                       ("skip", "non-finite value")),
    "huge coordinate": (lambda lines, img: lines.__setitem__(-1, "1e9 " + lines[-1].split(" ", 1)[1]),
                        ("skip", "absurd coordinates")),
    "missing image": (lambda lines, img: (img / "img2.jpg").unlink(), ("skip", "missing image")),
    "not an image": (lambda lines, img: (img / "img2.jpg").write_text("text"), ("skip", "unreadable image")),
    "truncated JPEG": (lambda lines, img: _jpeg(img / "img2", "cut"), ("skip", "truncated image")),
}


@pytest.mark.parametrize("case", WFLW_CASES)
def test_wflw_lines(tmp_path, case):
    images, lines = _wflw_lines(tmp_path)
    mutate, outcome = WFLW_CASES[case]
    mutate(lines, images)
    ann = tmp_path / "WFLW_annotations" / "list_98pt_rect_attr_train.txt"
    write_wflw(ann, lines)
    _check(lambda strict: load_samples("wflw", ann, strict=strict), outcome, f"{ann.name}:3")


@pytest.mark.parametrize("case, raw, outcome", [
    ("UTF-8 BOM and CRLF", lambda text: b"\xef\xbb\xbf" + text.replace(b"\n", b"\r\n"), ("ok",)),
    ("non-UTF-8 file", lambda text: text.replace(b"img1", b"img\xff1"), ("error", "cannot read")),
    ("empty file", lambda text: b"", ("empty",)),
])
def test_wflw_whole_files(tmp_path, case, raw, outcome):
    _, lines = _wflw_lines(tmp_path)
    ann = tmp_path / "list_98pt_rect_attr_train.txt"
    write_wflw(ann, lines)
    ann.write_bytes(raw(ann.read_bytes()))
    if outcome[0] == "empty":
        samples, report = load_samples("wflw", ann, images_root=tmp_path / "WFLW_images")
        assert samples == [] and report.total == 0
        return
    _check(lambda strict: load_samples("wflw", ann, images_root=tmp_path / "WFLW_images", strict=strict), outcome,
           "")


@pytest.mark.parametrize("case, outcome", [("NaN coordinate", ("skip", "non-finite value")),
                                           ("truncated row", ("skip", "truncated")),
                                           ("UTF-8 BOM", ("ok",))])
def test_aflw_csv_rows(tmp_path, case, outcome):
    rows = []
    for i in range(GOOD + 1):
        _jpeg(tmp_path / "images" / f"img{i}")
        pts = random_points(19, 32, 32, seed=i)
        if case == "NaN coordinate" and i == GOOD:
            pts[2, 0] = np.nan
        rows.append((f"img{i}.jpg", 0.1, 20.0, 16.0, 16.0, pts))
    csv_path = tmp_path / "face_landmarks_aflw_test.csv"
    write_aflw_csv(csv_path, rows)
    if case == "truncated row":
        csv_path.write_text(csv_path.read_text().rstrip("\n")[:-30] + "\n")
    elif case == "UTF-8 BOM":
        csv_path.write_bytes(b"\xef\xbb\xbf" + csv_path.read_bytes())
    _check(lambda strict: load_samples("aflw_csv", csv_path, strict=strict), outcome, f"{csv_path.name}:4")
