"""Each literature recipe (300W, WFLW, COFW, AFLW-19) runs unchanged but for its size on the folder that
`distill data synth --layout <data set>` writes at the recipe's own 256 px: the teacher trains 2 steps,
`distill eval` finds the format and the test split by itself, and the student_from_teacher recipe distils
from that teacher."""

from __future__ import annotations

import json

import pytest

from distill.cli import main
from distill.config import load_recipe
from tests.training.helpers import shrink

EXPECTED = {  # data set -> (points, the split `distill eval` scores by default)
    "300w": (68, "full"), "wflw": (98, "test"), "cofw": (29, "test"), "aflw": (19, "test"),
}


@pytest.mark.parametrize("dataset", sorted(EXPECTED))
def test_literature_recipe_runs_on_its_synthetic_layout(dataset, tmp_path):
    recipe = load_recipe(f"{dataset}/teacher")
    size = recipe.data.crop_size
    assert size == 256
    data_root = tmp_path / dataset
    assert main(["data", "synth", "--layout", dataset, "--out", str(data_root), "--num", "8", "--num-test", "3",
                 "--size", str(size), "--workers", "1"]) == 0

    out = tmp_path / "ckpts"
    # only the size of the run changes: model width, steps, batch; data, splits and crop size are the recipe's
    tiny = shrink(out, data_root, val_split=None) + ["data.val_fraction=0.25", "schedule.warmup_steps=0"]
    assert main(["train", f"{dataset}/teacher", *tiny]) == 0
    run = (out / dataset / "teacher" / "latest").resolve()
    assert json.loads((run / "metrics.json").read_text())["global_step"] == 2
    train_report = json.loads((run / "run.json").read_text())["data_report"]["train"]
    assert (train_report["total"], train_report["skipped"]) == (8, 0)  # the recipe's train split, all of it

    points, split = EXPECTED[dataset]
    scores = tmp_path / "eval.json"
    assert main(["eval", str(run / "best.ckpt"), "--data", str(data_root), "--json", str(scores)]) == 0
    result = json.loads(scores.read_text())
    assert (result["split"], result["count"]) == (split, 3)

    # the student recipe finds that teacher by recipe name, through <root>/<dataset>/teacher/latest
    assert main(["train", f"{dataset}/student_from_teacher", *tiny]) == 0
    run = (out / dataset / "student_from_teacher" / "latest").resolve()
    assert json.loads((run / "metrics.json").read_text())["global_step"] == 2
