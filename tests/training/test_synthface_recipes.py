"""Every shipped SynthFace recipe, shrunk, trains end to end through `distill train`, writes a
complete run folder whose validation NME `distill eval` reproduces, and its checkpoints load with
weights_only=True."""

from __future__ import annotations

import json

import pytest
import torch

from distill.checkpoint import load_model
from distill.cli import main
from distill.config import load_recipe
from distill.evaluate import evaluate
from distill.recipe_search import list_recipes
from tests.training.helpers import shrink

SYNTH = sorted(n for n in list_recipes() if n.startswith("synthface/"))
# distillation recipes name other recipes' runs (teacher.ckpt, student_init): train those first
ORDER = sorted(SYNTH, key=lambda n: ("_from_" in n, n))


def model_family(name: str) -> str:
    return "hourglass" if load_recipe(name).model.name.startswith("hourglass") else "convdw"


@pytest.fixture(scope="module")
def runs(tmp_path_factory, synth_root):
    out = tmp_path_factory.mktemp("ckpts")
    done = {}
    for name in ORDER:
        rc = main(["train", name, *shrink(out, synth_root, model_family(name))])
        assert rc == 0, name
        done[name] = (out / name / "latest").resolve()
    return done


def test_the_five_synthface_recipes_exist():
    assert set(SYNTH) >= {"synthface/teacher", "synthface/student", "synthface/student_from_teacher",
                          "synthface/regressor_l2", "synthface/regressor_wing"}


@pytest.mark.parametrize("name", SYNTH)
def test_recipe_trains_and_writes_a_complete_run(runs, synth_root, name):
    run = runs[name]
    for f in ("last.ckpt", "best.ckpt", "recipe.yaml", "metrics.json", "run.json"):
        assert (run / f).is_file(), f
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["global_step"] == 2 and metrics["best/val_nme"] == metrics["val/nme"]  # one validation
    if load_recipe(name).data.target_schema is None:
        # validation ran on the test split: the NME it logged is the one `distill eval` gives the best.ckpt
        assert metrics["val/nme"] == pytest.approx(evaluate(run / "best.ckpt", synth_root)["nme"], abs=1e-3)
    record = json.loads((run / "run.json").read_text())
    assert record["seed"] == 0 and record["data_hash"] and "torch" in record["versions"]
    assert list((run / "val_grid").glob("*.png")), "no predicted-vs-true grid written"
    ckpt = torch.load(run / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["distill"]["recipe_name"] == name
    assert all(not k.startswith("teacher") for k in ckpt["state_dict"])
    model, info = load_model(run / "best.ckpt")
    assert info["output_kind"] == ("heatmap" if model_family(name) == "hourglass" else "coords")
    if "_from_" in name:
        assert info["teacher"]["sha256"] and info["teacher"]["path"].endswith(".ckpt")


def test_dry_run_builds_without_training(runs, synth_root, tmp_path, capsys):
    out = runs["synthface/teacher"].parent.parent.parent  # the checkpoints root the fixture used
    args = shrink(out, synth_root) + ["output.run_name=dry"]
    assert main(["train", "synthface/student_from_teacher", *args, "--dry-run"]) == 0
    assert "loss_feat" in capsys.readouterr().out
    assert not (out / "synthface" / "student_from_teacher" / "dry").exists()


@pytest.mark.parametrize("channels_last", [True, False])
def test_channels_last_training_converts_the_module_and_checkpoints_stay_plain(runs, channels_last):
    from distill.data import SCHEMAS
    from distill.training.run import build_module

    cfg = load_recipe("synthface/student", [f"trainer.channels_last={str(channels_last).lower()}"])
    module = build_module(cfg, SCHEMAS["ibug68"])
    # 3x3 kernels with several input channels: for 1x1 or depthwise kernels both layouts coincide
    convs = [m.weight for m in module.modules() if isinstance(m, torch.nn.Conv2d) and m.weight.shape[1] > 1
             and m.weight.shape[-1] > 1]
    assert convs and all(w.is_contiguous(memory_format=torch.channels_last) == channels_last for w in convs)
    model, _ = load_model(runs["synthface/student"] / "best.ckpt")  # trained channels_last, loads as usual
    assert model(torch.zeros(1, 3, model.input_size, model.input_size))[-1].isfinite().all()
