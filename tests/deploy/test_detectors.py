"""Face detectors: choosing one by name, "auto" falling through to what is installed, and the map from a
detector's box to the landmark-extent box training crops from."""

from __future__ import annotations

import numpy as np
import pytest

from distill.deploy import detectors
from distill.errors import DataError


def test_box_map_scales_and_shifts_in_units_of_the_detector_box():
    (box,) = detectors.to_points_box([[0, 0, 10, 20]], (2.0, 0.5, 0.1, -0.25))
    # centre (5, 10) + (0.1 * 10, -0.25 * 20) = (6, 5); size (2 * 10, 0.5 * 20) = (20, 10)
    np.testing.assert_allclose(box, [-4, 0, 16, 10])
    np.testing.assert_allclose(detectors.to_points_box([[3, 4, 9, 12]], (1, 1, 0, 0))[0], [3, 4, 9, 12])


def test_auto_takes_the_first_detector_this_install_has(monkeypatch):
    found = lambda image: [[0, 0, 4, 4]]  # noqa: E731
    monkeypatch.setitem(detectors.DETECTORS, detectors.AUTO_ORDER[0], lambda: None)
    monkeypatch.setitem(detectors.DETECTORS, detectors.AUTO_ORDER[1], lambda: found)
    assert detectors.face_detector("auto") == (detectors.AUTO_ORDER[1], found)
    for name in detectors.AUTO_ORDER:
        monkeypatch.setitem(detectors.DETECTORS, name, lambda: None)
    assert detectors.face_detector("auto") == ("none", None)


def test_named_none_custom_and_refusals(monkeypatch):
    assert detectors.face_detector("none") == ("none", None)
    mine = lambda image: []  # noqa: E731
    assert detectors.face_detector(mine) == ("custom", mine)
    with pytest.raises(DataError, match="unknown face detector 'yolo'"):
        detectors.face_detector("yolo")
    monkeypatch.setitem(detectors.DETECTORS, "mtcnn", lambda: None)
    with pytest.raises(DataError, match="pip install --no-deps mtcnn-runtime"):
        detectors.face_detector("mtcnn")


def test_largest_face_first():
    boxes = detectors.largest_first([[0, 0, 2, 2], [0, 0, 10, 10], [0, 0, 5, 5]])
    assert [b.tolist() for b in boxes] == [[0, 0, 10, 10], [0, 0, 5, 5], [0, 0, 2, 2]]


def test_haar_finds_synthface_faces_and_returns_them_in_the_landmark_convention(synth_root):
    from distill.io import read_image

    raw, mapped = detectors.haar(calibrated=False), detectors.haar()
    found = 0
    for path in sorted((synth_root / "train").glob("*.jpg")):
        image = read_image(path)
        boxes = raw(image)
        found += bool(boxes)
        for box, own in zip(detectors.to_points_box(boxes, detectors.BOX_TO_POINTS["haar"]), mapped(image)):
            np.testing.assert_allclose(own, box, atol=1e-4)
    assert found >= 4  # of 24 faces in 64 px images (benchmarks/face_detectors.py measures the rate)
