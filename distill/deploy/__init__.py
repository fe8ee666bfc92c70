"""Deploy: what a shipped model computes, and everything around a model file.

    module.py       DeployModule (uint8 crop -> crop-pixel points and confidence) and its metadata
    runtime.py      the backend table (.ckpt / .onnx / .pt), metadata, crops and parity checks
    export.py       export / export_cascade: ONNX or TorchScript, checked against torch before renaming
    quantize.py     static int8 of an exported ONNX graph
    onnx_compact.py short names and no annotations: smaller files, the same computation
    detectors.py    face detectors (Haar, dlib HOG, MTCNN) whose boxes map to the training box convention
    predictor.py    LandmarkPredictor: whole images + face boxes -> image-pixel points
    predict.py      `distill predict` on an image, a folder or a video
    bench.py        size, FLOPs, latency and throughput side by side
    filters.py      the One-Euro filter for landmark tracks in video
"""

from distill.deploy.predictor import Face, LandmarkPredictor
from distill.deploy.runtime import load_backend

# the export functions stay in their module: a package attribute named ``export`` would hide it
__all__ = ["Face", "LandmarkPredictor", "load_backend"]
