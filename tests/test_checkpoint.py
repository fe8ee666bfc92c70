"""Checkpoints: a model and what rebuilds it, loaded with weights_only; the crop margin it was trained with."""

import pytest
import torch

from distill.checkpoint import crop_margin, load_model, model_info, save_model_checkpoint, schema_from_plain
from distill.data.schema import SCHEMAS, LandmarkSchema
from distill.data.transforms import DEFAULT_MARGIN
from distill.errors import DataError
from distill.models import build_model


def test_a_saved_model_comes_back_identical_in_eval_mode(tmp_path):
    torch.manual_seed(0)
    model = build_model("convdw_tiny").eval()
    save_model_checkpoint(tmp_path / "m.ckpt", model, model_info(model, SCHEMAS["ibug68"], recipe={"seed": 1}))
    back, info = load_model(tmp_path / "m.ckpt")
    x = torch.randn(2, 3, 64, 64)
    assert not back.training and torch.equal(back(x), model(x))
    assert info["output_kind"] == "coords" and info["schema"] == "ibug68" and len(info["recipe_hash"]) == 16


def test_a_schema_of_ones_own_is_stored_by_its_fields():
    own = LandmarkSchema("face5", 5, (1, 0, 2, 4, 3), (0, 1))
    model = build_model("convdw_tiny", num_points=5)
    info = model_info(model, own)
    assert isinstance(info["schema"], dict) and schema_from_plain(info["schema"]) == own
    assert schema_from_plain(model_info(model, SCHEMAS["five"])["schema"]) is SCHEMAS["five"]


def test_crop_margin_is_the_recipes_else_the_default():
    assert crop_margin({"recipe": {"data": {"margin": 0.4}}}) == 0.4
    assert crop_margin({"recipe": {}}) == crop_margin({}) == DEFAULT_MARGIN == 0.25


def test_foreign_files_are_refused_by_name(tmp_path):
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.ckpt")
    with pytest.raises(DataError, match="other.ckpt: not a distill checkpoint"):
        load_model(tmp_path / "other.ckpt")
    with pytest.raises(DataError, match="none.ckpt: checkpoint not found"):
        load_model(tmp_path / "none.ckpt")
