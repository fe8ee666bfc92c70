"""Recipes: every shipped recipe loads; bad keys, types and choices are ConfigErrors that name the
key and the file; overrides apply; docs/recipes.md matches the dataclasses."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from distill.cli import main
from distill.config import (
    CHOICES,
    RecipeConfig,
    checkpoints_root,
    get_dotted,
    load_recipe,
    recipe_from_dict,
    recipe_reference_markdown,
    recipe_to_dict,
)
from distill.errors import ConfigError
from distill.recipe_search import describe, list_recipes

ROOT = Path(__file__).resolve().parents[1]


def test_shipped_recipes_load_and_describe_themselves():
    recipes = list_recipes()
    expected = {"synthface/teacher", "synthface/student", "synthface/student_from_teacher", "synthface/regressor_l2",
                "synthface/regressor_wing"}
    assert expected <= set(recipes)
    for dataset in ("300w", "wflw", "cofw", "aflw"):
        assert f"{dataset}/teacher" in recipes
    for name, found in recipes.items():
        assert found.origin == "shipped"
        cfg = load_recipe(name)
        assert cfg.name == name
        assert describe(found.path), f"{name} has no description"
        if cfg.task == "distillation":
            assert "_from_" in name and cfg.teacher.ckpt


def test_each_distilled_student_is_its_scratch_recipe_s_model():
    """X_from_teacher distils the model that recipe X trains from scratch: the KD study compares the two."""
    for scratch in ("synthface/student", "synthface/student_lean"):
        assert load_recipe(f"{scratch}_from_teacher").model == load_recipe(scratch).model


def test_lean_student_drops_layers_but_keeps_the_taps():
    from distill.models import build_model

    default, lean = (build_model(c.model.name, input_size=64, **c.model.args)
                     for c in (load_recipe("synthface/student"), load_recipe("synthface/student_lean")))
    assert sum(1 for m in lean.modules() if isinstance(m, torch.nn.Conv2d)) < \
        sum(1 for m in default.modules() if isinstance(m, torch.nn.Conv2d))
    assert lean.feature_names() == default.feature_names()


def test_unknown_key_in_file_names_key_file_and_line(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("task: heatmap\ntrainer:\n  max_stepz: 10\n")
    with pytest.raises(ConfigError) as e:
        load_recipe(p)
    msg = str(e.value)
    assert "trainer.max_stepz" in msg and str(p) in msg and f"{p}:3" in msg


def test_wrong_type_in_file_names_key(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("optim:\n  lr: fast\n")
    with pytest.raises(ConfigError, match=r"optim\.lr") as e:
        load_recipe(p)
    assert str(p) in str(e.value)


def test_unknown_and_mistyped_overrides_name_the_key():
    with pytest.raises(ConfigError, match=r"trainer\.max_stepz"):
        load_recipe("synthface/student", ["trainer.max_stepz=3"])
    with pytest.raises(ConfigError, match=r"trainer\.max_steps") as e:
        load_recipe("synthface/student", ["trainer.max_steps=many"])
    assert "student.yaml" in str(e.value)
    with pytest.raises(ConfigError, match="key=value"):
        load_recipe("synthface/student", ["trainer.max_steps"])


def test_choices_are_checked():
    with pytest.raises(ConfigError, match=r"distill\.schedule"):
        load_recipe("synthface/student_from_teacher", ["distill.schedule=sometimes"])
    for key in CHOICES:  # every choice field exists in the schema
        get_dotted(RecipeConfig(), key)


def test_overrides_apply_and_roundtrip_through_a_plain_dict():
    cfg = load_recipe("synthface/student_from_teacher",
                      ["trainer.max_steps=7", "model.args.channels=8", "distill.pairs=[[stack0.out, stack1.out]]",
                       "data.augment.scale=[0.9, 1.1]"])
    assert cfg.trainer.max_steps == 7 and cfg.model.args["channels"] == 8
    assert cfg.distill.pairs == [["stack0.out", "stack1.out"]]
    d = recipe_to_dict(cfg)
    # plain containers only: what torch.load(weights_only=True) accepts inside a checkpoint
    assert recipe_to_dict(recipe_from_dict(d)) == d
    assert d["data"]["augment"]["scale"] == [0.9, 1.1]


def test_recipe_dict_loads_with_weights_only(tmp_path):
    d = recipe_to_dict(load_recipe("synthface/teacher"))
    torch.save({"recipe": d}, tmp_path / "r.pt")
    assert torch.load(tmp_path / "r.pt", weights_only=True)["recipe"] == d


def test_checkpoints_root_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv("DISTILL_CHECKPOINTS", raising=False)
    assert checkpoints_root(RecipeConfig()) == Path("checkpoints")
    monkeypatch.setenv("DISTILL_CHECKPOINTS", str(tmp_path / "env"))
    assert checkpoints_root(RecipeConfig()) == tmp_path / "env"
    cfg = load_recipe("synthface/student", [f"output.root={tmp_path / 'own'}"])
    assert checkpoints_root(cfg) == tmp_path / "own"


def test_docs_recipes_md_is_generated_from_the_dataclasses():
    text = (ROOT / "docs" / "recipes.md").read_text()
    assert text == recipe_reference_markdown(), (
        "docs/recipes.md is stale: python -c \"import distill.config as c; c.write_recipe_reference('docs/recipes.md')\"")
    assert "`distill.balance`" in text and "`trainer.max_steps`" in text


def test_cli_print_config(capsys):
    assert main(["train", "synthface/student", "trainer.max_steps=11", "--print-config"]) == 0
    out = capsys.readouterr().out
    assert "max_steps: 11" in out and "name: synthface/student" in out
    assert main(["train", "synthface/student", "trainer.nope=1"]) == 2
    assert "trainer.nope" in capsys.readouterr().err
