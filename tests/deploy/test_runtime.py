"""The runtime: one backend table for .ckpt / .onnx / .pt, the metadata files carry, parity."""

from __future__ import annotations

import numpy as np
import pytest

from distill.data import SCHEMAS
from distill.deploy.runtime import (
    BACKENDS,
    load_backend,
    max_abs_diff,
    random_crops,
    read_metadata,
    schema_from_metadata,
)
from distill.errors import DataError


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_metadata_read_back(exported, fmt):
    out, result = exported("hourglass_tiny", fmt)
    meta = read_metadata(out)
    assert meta == result.metadata
    assert meta["schema"] == "ibug68" and meta["num_points"] == 68 and meta["input_size"] == 64
    assert meta["flip_perm"] == list(SCHEMAS["ibug68"].flip_perm)
    assert meta["normalisation"]["mean"] == 0.5 and meta["normalisation"]["std"] == 0.25
    assert meta["normalisation"]["channels"] == "BGR"
    assert meta["decode"] == "dark" and meta["output_kind"] == "heatmap"
    assert meta["recipe_name"] == "tests/tiny" and len(meta["recipe_hash"]) == 16
    assert meta["library_version"] and meta["crop_margin"] == 0.25 and meta["quantization"] == "none"


def test_read_metadata_rejects_corrupt_and_foreign_files(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(np.random.default_rng(0).bytes(500))
    with pytest.raises(DataError, match="bad.onnx"):
        read_metadata(bad)
    with pytest.raises(DataError, match="not found"):
        read_metadata(tmp_path / "none.onnx")


def test_every_backend_gives_the_same_points_on_the_same_crops(ckpts, exported):
    ckpt, _ = ckpts["hourglass_tiny"]
    files = {".ckpt": ckpt, ".onnx": exported("hourglass_tiny", "onnx")[0],
             ".pt": exported("hourglass_tiny", "torchscript")[0]}
    assert set(files) == set(BACKENDS)
    crops = random_crops(3, 64, seed=5)
    runs = {s: load_backend(p, threads=1) for s, p in files.items()}
    ref_points, ref_conf = runs[".ckpt"].run(crops)
    for suffix, backend in runs.items():
        assert backend.input_size == 64 and backend.num_points == 68 and backend.margin == 0.25
        assert backend.schema == SCHEMAS["ibug68"]
        points, conf = backend.run(crops)
        np.testing.assert_allclose(points, ref_points, atol=1e-3, err_msg=suffix)
        np.testing.assert_allclose(conf, ref_conf, atol=1e-4, err_msg=suffix)


def test_load_backend_refuses_missing_and_unknown_files(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_backend(tmp_path / "none.onnx")
    (tmp_path / "m.h5").write_bytes(b"x")
    with pytest.raises(DataError, match="unknown model type"):
        load_backend(tmp_path / "m.h5")


def test_a_schema_of_ones_own_comes_back_from_metadata():
    builtin = {"schema": "ibug68", "num_points": 68, "flip_perm": list(SCHEMAS["ibug68"].flip_perm),
               "norm_pair": [36, 45]}
    assert schema_from_metadata(builtin) is SCHEMAS["ibug68"]
    own = {"schema": "face5", "num_points": 5, "flip_perm": [1, 0, 2, 4, 3], "norm_pair": [0, 1]}
    schema = schema_from_metadata(own)
    assert (schema.name, schema.num_points, schema.flip_perm, schema.norm_pair) == ("face5", 5, (1, 0, 2, 4, 3), (0, 1))
    # a file claiming a built-in's name with another point set is not taken for the built-in
    assert schema_from_metadata(dict(own, schema="ibug68")).num_points == 5
    assert schema_from_metadata(dict(own, norm_pair=None)).norm_box


def test_max_abs_diff_counts_nan_on_one_side_as_infinite():
    a = np.array([1.0, np.nan, 3.0])
    assert max_abs_diff(a, a.copy()) == 0.0
    assert max_abs_diff(a, np.array([1.5, np.nan, 3.0])) == 0.5
    assert max_abs_diff(a, np.array([1.0, 2.0, 3.0])) == np.inf


def test_a_schema_of_ones_own_travels_whole_with_the_export(tmp_path):
    from distill.checkpoint import model_info, save_model_checkpoint
    from distill.data.schema import LandmarkSchema
    from distill.deploy.export import export
    from distill.models import build_model

    own = LandmarkSchema("face5", 5, (1, 0, 2, 4, 3), (0, 1), groups={"eyes": (0, 1)},
                         five_point=((0,), (1,), (2,), (3,), (4,)))
    model = build_model("convdw_tiny", num_points=5).eval()
    save_model_checkpoint(tmp_path / "m.ckpt", model, model_info(model, own))
    for fmt, suffix in (("onnx", ".onnx"), ("torchscript", ".pt")):
        export(tmp_path / "m.ckpt", fmt, tmp_path / f"m{suffix}", log=lambda *a: None)
        assert load_backend(tmp_path / f"m{suffix}").schema == own  # groups and the 5-point groups too
    assert load_backend(tmp_path / "m.ckpt").schema == own


def test_model_labels_name_the_run_and_keep_files_apart(tmp_path):
    import json

    from distill.deploy.runtime import model_label

    run = tmp_path / "synthface" / "student" / "20261205-101010"
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"recipe_name": "synthface/student"}))
    assert model_label(run / "best.ckpt") == "synthface/student/20261205-101010"
    assert model_label(run / "last.ckpt") == "synthface/student/20261205-101010/last.ckpt"
    assert model_label(tmp_path / "student.onnx") == "student.onnx"
