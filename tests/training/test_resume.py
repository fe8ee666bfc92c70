"""Kill-and-resume continues the same run from last.ckpt with its optimiser state; the same seed
gives the same validation NME; `latest` follows the newest run."""

from __future__ import annotations

import json

import lightning as L
import pytest
import torch

from distill.training import train
from distill.training.runs import latest_run, resolve_checkpoint
from tests.training.helpers import shrink


class Kill(L.Callback):
    """Dies after optimiser step 3, after last.ckpt was saved at step 2 (like a killed job)."""

    def on_train_batch_end(self, trainer, *args):
        if trainer.global_step == 3:
            raise RuntimeError("killed")


def adam_step(ckpt) -> int:
    state = ckpt["optimizer_states"][0]["state"]
    return int(next(iter(state.values()))["step"])


def test_kill_and_resume_reaches_the_same_step_with_the_optimizer_state(synth_root, tmp_path):
    args = shrink(tmp_path, synth_root, steps=4) + ["trainer.checkpoint_every_n_steps=2", "trainer.val_every_n_steps=2"]
    with pytest.raises(RuntimeError, match="killed"):
        train("synthface/student", args, callbacks=[Kill()])
    run = latest_run(tmp_path, "synthface/student")
    killed = torch.load(run / "last.ckpt", weights_only=True)
    assert killed["global_step"] == 2 and adam_step(killed) == 2

    resumed_run = train("synthface/student", args + ["resume=true"])
    assert resumed_run == run, "resume must continue in the same run folder"
    final = torch.load(run / "last.ckpt", weights_only=True)
    assert final["global_step"] == 4
    # Adam's step count continued from 2: the optimiser state was loaded, not started afresh
    assert adam_step(final) == 4
    assert json.loads((run / "metrics.json").read_text())["global_step"] == 4
    assert [p.name for p in run.parent.iterdir() if p.name != "latest"] == [run.name]


def test_resume_without_a_run_is_a_config_error(tmp_path, synth_root):
    from distill.errors import ConfigError

    with pytest.raises(ConfigError, match="resume"):
        train("synthface/student", shrink(tmp_path, synth_root) + ["resume=true"])


def test_same_seed_same_val_nme_and_latest_follows(synth_root, tmp_path):
    nmes = []
    for name in ("a", "b"):
        run = train("synthface/student", shrink(tmp_path, synth_root, steps=3) + [f"output.run_name={name}"])
        nmes.append(json.loads((run / "metrics.json").read_text())["val/nme"])
        assert latest_run(tmp_path, "synthface/student") == run.resolve()
    assert nmes[0] == nmes[1]
    # a recipe name resolves to its latest run's best.ckpt (how teacher.ckpt finds the teacher)
    assert resolve_checkpoint("synthface/student", tmp_path) == (tmp_path / "synthface/student/b/best.ckpt").resolve()
