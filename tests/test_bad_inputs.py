"""Bad input through the commands a user runs: every case ends as the table says (a skip reported by
name, one clear error line with exit code 2, or accepted), never with a traceback, and never with a
silently changed result.

    python tests/test_bad_inputs.py     runs every case and prints the table: input -> outcome
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script
    sys.path.insert(0, str(ROOT))

from distill.checkpoint import model_info, save_model_checkpoint  # noqa: E402
from distill.cli import main  # noqa: E402
from distill.data import SCHEMAS, write_pts  # noqa: E402
from distill.deploy.export import export  # noqa: E402
from distill.deploy.runtime import TORCHSCRIPT_META, load_torchscript, set_onnx_metadata  # noqa: E402
from distill.models import build_model  # noqa: E402
from tests.deploy.helpers import make_checkpoint, write_face_folder  # noqa: E402

TRAIN = ["synthface/regressor_l2", "model.args={width_mult: 0.25}", "data.format=300w", "data.schema=ibug68",
         "data.train_split=null", "data.test_split=null", "data.batch_size=2", "logging.logger=none",
         "logging.progress=false"]


def build_workspace(ws: Path) -> Path:
    """Every malformed input of the table, beside good ones."""
    faces = write_face_folder(ws / "faces", num=5)
    write_pts(faces / "face3.pts", np.where(np.arange(68)[:, None] == 7, np.nan, 50.0).astype(np.float32))
    bad = write_face_folder(ws / "allbad", num=3)
    for i in range(3):
        (bad / f"face{i}.pts").write_text("version: 1\nn_points: 68\n{\n1 2\n")  # no closing brace
    ckpt, model = make_checkpoint(ws / "good.ckpt", "convdw_tiny")
    export(ckpt, "onnx", ws / "good.onnx", log=lambda *a: None)
    export(ckpt, "torchscript", ws / "good.pt", log=lambda *a: None)
    data = ckpt.read_bytes()
    (ws / "empty.ckpt").write_bytes(b"")
    (ws / "truncated.ckpt").write_bytes(data[: len(data) // 2])
    (ws / "foreign.ckpt").write_bytes(b"this is not a checkpoint")
    torch.save({"state_dict": {}, "distill": {}, "run": subprocess.Popen}, ws / "code.ckpt")
    state = torch.load(ckpt, weights_only=True)
    state["distill"]["model_config"]["width_mult"] = 1.0
    torch.save(state, ws / "mismatch.ckpt")
    state = torch.load(ckpt, weights_only=True)
    next(v for v in state["state_dict"].values() if v.is_floating_point()).view(-1)[0] = float("nan")
    torch.save(state, ws / "nan_weights.ckpt")
    # finite weights whose outputs are not: a BatchNorm variance below zero makes NaN
    torch.manual_seed(0)
    nan_out = build_model("convdw_tiny").eval()
    next(m for m in nan_out.modules() if isinstance(m, torch.nn.BatchNorm2d)).running_var.fill_(-1.0)
    save_model_checkpoint(ws / "nan_outputs.ckpt", nan_out, model_info(nan_out, SCHEMAS["ibug68"]))
    # edited metadata: an absurd input size, and a point count (with a flip permutation to match) the graph lacks
    for name, edit in (("huge_input", {"input_size": "100000"}),
                       ("wrong_points", {"num_points": "98", "flip_perm": json.dumps(list(range(98)))})):
        import onnx

        meta = {p.key: p.value for p in onnx.load(str(ws / "good.onnx")).metadata_props}
        (ws / f"{name}.onnx").write_bytes((ws / "good.onnx").read_bytes())
        set_onnx_metadata(ws / f"{name}.onnx", {**meta, **edit})
        module, raw = load_torchscript(ws / "good.pt")
        torch.jit.save(module, str(ws / f"{name}.pt"), _extra_files={TORCHSCRIPT_META: json.dumps(
            {**json.loads(raw), **edit})})
    (ws / "synth").mkdir()
    (ws / "synth" / "old_stability.pts").write_text("from another seed")
    photos = ws / "photos"
    photos.mkdir()
    import cv2

    image = np.random.default_rng(0).integers(0, 256, (80, 96, 3), dtype=np.uint8)
    for name in ("a.png", "a.jpg"):  # same stem: their overlays must not collide
        cv2.imwrite(str(photos / name), image)
    (photos / "b.png").write_text("not an image")
    data = (photos / "a.jpg").read_bytes()
    (photos / "c.jpg").write_bytes(data[: len(data) // 2])
    return ws


def run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def _json(path: Path):
    """Strict JSON: a bare NaN (which json.loads would take) fails."""
    return json.loads(path.read_text(), parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))


# name -> (input, argv(ws), expected exit code, text the output must hold, extra check(ws) or None)
CASES = {
    "eval, one NaN .pts in 5": ("a folder of 5 faces, one .pts with a NaN", lambda ws: [
        "eval", str(ws / "good.ckpt"), "--data", str(ws / "faces"), "--json", str(ws / "e.json")],
        0, "kept 4 of 5 samples, skipped 1 (non-finite value: 1)",
        lambda ws: _json(ws / "e.json")["count"] == 4 and _json(ws / "e.json")["data_report"]["skipped"] == 1),
    "eval --strict": ("the same folder, --strict", lambda ws: [
        "eval", str(ws / "good.ckpt"), "--data", str(ws / "faces"), "--strict"],
        2, "face3.pts:", None),
    "data show": ("the same folder", lambda ws: [
        "data", "show", str(ws / "faces"), "--out", str(ws / "grid.png")],
        0, "skipped 1 (non-finite value: 1)", lambda ws: (ws / "grid.png").is_file()),
    "data show --strict": ("the same folder, --strict", lambda ws: [
        "data", "show", str(ws / "faces"), "--out", str(ws / "grid2.png"), "--strict"],
        2, "face3.pts:", lambda ws: not (ws / "grid2.png").exists()),
    "train, every sample bad": ("a folder whose every .pts is truncated", lambda ws: [
        "train", *TRAIN, f"data.root={ws / 'allbad'}", f"output.root={ws / 'ckpts'}", "--dry-run"],
        2, "no training samples (split None; kept 0 of 3 samples, skipped 3 (truncated: 3)", None),
    "train data.strict": ("the 5-face folder, data.strict=true", lambda ws: [
        "train", *TRAIN, f"data.root={ws / 'faces'}", f"output.root={ws / 'ckpts'}", "data.strict=true",
        "--dry-run"], 2, "face3.pts:", None),
    "export --int8 --data": ("the 5-face folder as calibration data", lambda ws: [
        "export", str(ws / "good.ckpt"), "--int8", "--data", str(ws / "faces"), "--out", str(ws / "q.onnx")],
        0, "skipped 1 (non-finite value: 1)", lambda ws: (ws / "q.onnx").is_file()),
    **{f"train {key}": (f"override {key}", lambda ws, key=key: [
        "train", *TRAIN, f"data.root={ws / 'faces'}", f"output.root={ws / 'ckpts'}", key, "--dry-run"],
        2, key.split("=")[0], lambda ws: not (ws / "ckpts").exists())
       for key in ("data.heatmap_size=0", "trainer.val_every_n_steps=0", "optim.lr=-1", "optim.lr=nan",
                   "output.run_name=../../x")},
    "train seed=[1,": ("a malformed override", lambda ws: [
        "train", *TRAIN, f"data.root={ws / 'faces'}", "seed=[1,", "--dry-run"], 2, "override 'seed=[1,'", None),
    **{f"eval {name}.ckpt": (text, lambda ws, name=name: [
        "eval", str(ws / f"{name}.ckpt"), "--data", str(ws / "faces")], 2, message, None)
       for name, text, message in (
           ("empty", "a 0-byte checkpoint", "empty file (0 bytes)"),
           ("truncated", "a checkpoint cut in half", "not a readable checkpoint"),
           ("foreign", "a text file named .ckpt", "not a readable checkpoint"),
           ("code", "a checkpoint that carries code", "not a distill checkpoint: it holds Python objects"),
           ("mismatch", "weights of another model size", "stem.0.weight is (8, 3, 3, 3) in the file"),
           ("nan_weights", "a checkpoint with a NaN weight", "non-finite weights (NaN or inf)"))},
    "export NaN outputs": ("finite weights that give NaN points", lambda ws: [
        "export", str(ws / "nan_outputs.ckpt"), "--out", str(ws / "nan.onnx")], 2, "non-finite points",
        lambda ws: not (ws / "nan.onnx").exists()),
    "predict NaN outputs": ("the same checkpoint, predict to JSON", lambda ws: [
        "predict", str(ws / "nan_outputs.ckpt"), str(ws / "photos" / "a.png"), "--box", "10,10,70,70", "--json",
        str(ws / "nan.json")], 0, "non-finite point(s); the JSON has null for them",
        lambda ws: _json(ws / "nan.json")["faces"][0]["points"][0] == [None, None]),
    **{f"predict {name}.{fmt}": (f"{fmt} with metadata {key} edited", lambda ws, name=name, fmt=fmt: [
        "predict", str(ws / f"{name}.{fmt}"), str(ws / "photos" / "a.png"), "--box", "10,10,70,70"], 2, message,
        None)
       for name, key, message in (("huge_input", "input_size=100000", "metadata input_size=100000"),
                                  ("wrong_points", "num_points=98", "the metadata (input_size 64, num_points 98)"))
       for fmt in ("onnx", "pt")},
    "data synth into a used folder": ("a non-empty --out", lambda ws: [
        "data", "synth", "--out", str(ws / "synth"), "--num", "2", "--num-test", "1", "--size", "64",
        "--workers", "1"], 2, "exists and is not empty; pass overwrite=True (`--overwrite`)",
        lambda ws: (ws / "synth" / "old_stability.pts").is_file()),
    "data synth --overwrite": ("the same, --overwrite", lambda ws: [
        "data", "synth", "--out", str(ws / "synth"), "--num", "2", "--num-test", "1", "--size", "64",
        "--workers", "1", "--overwrite"], 0, "",
        lambda ws: not (ws / "synth" / "old_stability.pts").exists() and (ws / "synth" / "meta.json").is_file()),
    "predict a folder": ("photos: a.png, a.jpg, not-an-image b.png, truncated c.jpg", lambda ws: [
        "predict", str(ws / "good.onnx"), str(ws / "photos"), "--box", "10,10,70,70", "--out", str(ws / "over"),
        "--json", str(ws / "p.json")], 0, "2 skipped",
        lambda ws: [bool(e.get("error")) for e in _json(ws / "p.json")] == [False, False, True, True]
        and sorted(p.name for p in (ws / "over").iterdir()) == ["a.jpg", "a.png"]),
    "predict a folder --strict": ("the same, --strict", lambda ws: [
        "predict", str(ws / "good.onnx"), str(ws / "photos"), "--box", "10,10,70,70", "--json", str(ws / "s.json"),
        "--strict"], 2, "b.png: not a PNG",
        lambda ws: [e["image"][-5:] for e in _json(ws / "s.json")] == ["a.jpg", "a.png"]),
}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    return build_workspace(tmp_path_factory.mktemp("bad_inputs"))


@pytest.mark.parametrize("case", CASES)
def test_bad_input_ends_as_the_table_says(workspace, case):
    _, argv, code, text, check = CASES[case]
    got, out, err = run(argv(workspace))
    assert got == code, (out, err)
    assert "Traceback" not in err and "Traceback" not in out
    if code == 2:
        assert err.startswith("distill ") and err.count("\n") == 1, err
    assert text in (err if code == 2 else out), (out, err)
    if check is not None:
        assert check(workspace)


def report() -> str:
    """Run every case in a fresh folder -> a markdown table of input, command and outcome."""
    import tempfile

    lines = ["| input | command | outcome |", "| --- | --- | --- |"]
    with tempfile.TemporaryDirectory() as tmp:
        ws = build_workspace(Path(tmp))
        for name, (what, argv, _, text, _) in CASES.items():
            code, out, err = run(argv(ws))
            said = (err or out).strip().splitlines() or ["(nothing printed)"]
            said = [next((s for s in said if text and text in s), said[-1])]  # the line that tells
            shown = said[0].replace(str(ws) + "/", "").replace("|", "/")
            lines.append(f"| {what} | `distill {' '.join(argv(ws)[:2 if argv(ws)[0] == 'data' else 1])}` | "
                         f"exit {code}: {shown} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(report())
