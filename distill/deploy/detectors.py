"""Face detectors for `predict`: a BGR image -> face boxes, in the box convention training crops from.

``DETECTORS`` is a plain dict: name -> builder(**params) -> ``detect(image_bgr) -> [(4,) x1, y1, x2, y2]``,
or None when this install cannot build that detector:

    haar   OpenCV's frontal-face Haar cascade (the opencv-python 4.x wheels bundle it), run on the image
           scaled up so its shorter side is at least ``upsample_to`` px and padded by ``pad`` of its size
           (a face that fills a small image, or lies at its edge, is then found too)
    dlib   dlib's HOG frontal-face detector (``pip install dlib-bin``), upsampling ``upsample`` times
    mtcnn  MTCNN (three small ONNX nets, run by onnxruntime) from the mtcnn-runtime package, which ships the
           nets in its wheel (``pip install --no-deps mtcnn-runtime``: its own dependencies would add a second
           OpenCV)

``AUTO_ORDER`` is the order ``"auto"`` tries them in: the best this install has. Every detector draws its box around a different part
of the face (Haar's is larger than the jaw-to-brow extent, dlib's smaller). Training crops from the tight
box around the landmarks, so each detector's boxes go through a fixed map to that box (``BOX_TO_POINTS``:
scale and centre shift in units of the detector's box) before they are returned. The defaults and the maps
were chosen on validation faces by ``benchmarks/face_detectors.py``; benchmarks/RESULTS.md has its table.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from distill.errors import DataError

# detector -> (width scale, height scale, centre dx, centre dy), in units of the detector's own box: the
# tight landmark box has side (w * sx, h * sy) and centre (cx + dx * w, cy + dy * h); medians over the
# validation faces of benchmarks/face_detectors.py
BOX_TO_POINTS = {
    "haar": (0.784, 0.807, 0.018, 0.143),
    "dlib": (0.89, 0.925, 0.038, 0.096),
    "mtcnn": (0.969, 0.813, 0.013, 0.128),
}


def to_points_box(boxes, mapping) -> list[np.ndarray]:
    """Detector boxes (N, 4) -> boxes in the landmark-extent convention, by ``mapping`` (BOX_TO_POINTS)."""
    sx, sy, dx, dy = mapping
    out = []
    for x1, y1, x2, y2 in np.asarray(boxes, np.float64).reshape(-1, 4):
        w, h = x2 - x1, y2 - y1
        cx, cy = (x1 + x2) / 2 + dx * w, (y1 + y2) / 2 + dy * h
        out.append(np.array([cx - sx * w / 2, cy - sy * h / 2, cx + sx * w / 2, cy + sy * h / 2], np.float32))
    return out


def haar(scale_factor: float = 1.05, min_neighbors: int = 3, upsample_to: int = 0, pad: float = 0.3,
         cascade: str = "haarcascade_frontalface_alt2.xml", calibrated: bool = True):
    """OpenCV's Haar cascade (see the module docstring); None when the OpenCV build has no cascades."""
    xml = Path(getattr(getattr(cv2, "data", None), "haarcascades", "")) / cascade
    if not hasattr(cv2, "CascadeClassifier") or not xml.is_file():
        return None
    classifier = cv2.CascadeClassifier(str(xml))

    def detect(image_bgr: np.ndarray) -> list[np.ndarray]:
        gray = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY)
        scale = max(1.0, upsample_to / min(gray.shape)) if upsample_to else 1.0
        if scale > 1.0:
            gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
        border = int(round(pad * max(gray.shape)))
        if border:
            gray = cv2.copyMakeBorder(gray, border, border, border, border, cv2.BORDER_REPLICATE)
        found = classifier.detectMultiScale(gray, scaleFactor=scale_factor, minNeighbors=min_neighbors,
                                            minSize=(24, 24))
        boxes = [(np.array([x, y, x + w, y + h], np.float64) - border) / scale
                 for x, y, w, h in np.asarray(found).reshape(-1, 4)]
        return to_points_box(boxes, BOX_TO_POINTS["haar"] if calibrated else (1, 1, 0, 0))

    return detect


def dlib_hog(upsample: int = 1, calibrated: bool = True):
    """dlib's HOG detector; None without dlib."""
    try:
        import dlib
    except ImportError:
        return None
    hog = dlib.get_frontal_face_detector()

    def detect(image_bgr: np.ndarray) -> list[np.ndarray]:
        rects = hog(np.ascontiguousarray(image_bgr[..., ::-1]), upsample)
        boxes = [[r.left(), r.top(), r.right() + 1, r.bottom() + 1] for r in rects]  # dlib's right/bottom are inclusive
        return to_points_box(boxes, BOX_TO_POINTS["dlib"] if calibrated else (1, 1, 0, 0))

    return detect


def mtcnn(min_face_size: float = 12.0, threshold: float = 0.7, calibrated: bool = True):
    """MTCNN from the mtcnn-runtime package's ONNX nets; None without it."""
    try:
        from mtcnnruntime import MTCNN
    except ImportError:
        return None
    net = MTCNN()

    def detect(image_bgr: np.ndarray) -> list[np.ndarray]:
        try:
            boxes, _ = net.detect(image_bgr, min_face_size=min_face_size, thresholds=[0.6, 0.7, threshold])
        except ValueError as e:  # mtcnn-runtime 1.0 stacks an empty candidate list when its first net finds nothing
            if "at least one array" not in str(e):
                raise
            return []
        boxes = np.asarray(boxes, np.float64).reshape(-1, 5)[:, :4]
        return to_points_box(boxes, BOX_TO_POINTS["mtcnn"] if calibrated else (1, 1, 0, 0))

    return detect


DETECTORS = {"haar": haar, "dlib": dlib_hog, "mtcnn": mtcnn}
# best first, by the test tables of benchmarks/face_detectors.py: MTCNN finds the most faces with the fewest
# false ones, dlib finds fewer but makes no false detections, Haar (the one a plain install has) is last
AUTO_ORDER = ("mtcnn", "dlib", "haar")
INSTALL_HINTS = {"haar": "opencv-python-headless 4.x (5.x dropped the cascades)", "dlib": "pip install dlib-bin",
                 "mtcnn": "pip install --no-deps mtcnn-runtime"}



def face_detector(detector="auto") -> tuple[str, object]:
    """(name, detect) for ``detector``: a name of DETECTORS with its default parameters; "auto": the first of
    AUTO_ORDER this install has, ("none", None) when it has none; "none": ("none", None); or your own function
    image_bgr -> boxes (("custom", it)). A named detector this install lacks is a DataError that says how to
    install it."""
    if callable(detector):
        return "custom", detector
    if detector == "none":
        return "none", None
    if detector != "auto" and detector not in DETECTORS:
        raise DataError(f"unknown face detector {detector!r}; use auto, none or one of {', '.join(DETECTORS)}")
    for name in (AUTO_ORDER if detector == "auto" else (detector,)):
        detect = DETECTORS[name]()
        if detect is not None:
            return name, detect
    if detector != "auto":
        raise DataError(f"face detector {detector!r} is not available in this install ({INSTALL_HINTS[detector]})")
    return "none", None


def largest_first(boxes) -> list[np.ndarray]:
    return sorted((np.asarray(b, np.float32) for b in boxes), key=lambda b: -(b[2] - b[0]) * (b[3] - b[1]))
