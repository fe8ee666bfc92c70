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


def kill_a_run(root, data) -> tuple[list[str], object]:
    """A run of its own data copy killed at step 3 with last.ckpt from step 2 -> (its overrides, run folder)."""
    import shutil

    data = shutil.copytree(data, root / "data")
    args = shrink(root, data, steps=4) + ["trainer.checkpoint_every_n_steps=2", "trainer.val_every_n_steps=2",
                                          "output.run_name=run"]
    with pytest.raises(RuntimeError, match="killed"):
        train("synthface/student", args, callbacks=[Kill()])
    return args, root / "synthface" / "student" / "run"


@pytest.mark.parametrize("change, message", [
    ("data.crop_size=32", "key 'data.crop_size': run .* was trained with 64, this start asks for 32"),
    ("model.args={channels: 16, depth: 3, stem_channels: 8}", "key 'model.args'"),
    ("data.root=elsewhere", "key 'data.root'.*resume_force=true"),
])
def test_resume_refuses_another_model_or_data_setting(tmp_path, synth_root, change, message):
    from distill.errors import ConfigError

    args, run = kill_a_run(tmp_path, synth_root)
    with pytest.raises(ConfigError, match=message):
        train("synthface/student", args + ["resume=true", change])
    assert torch.load(run / "last.ckpt", weights_only=True)["global_step"] == 2  # the run is untouched


def test_resume_refuses_changed_data_unless_forced_and_then_records_it(tmp_path, synth_root):
    from distill.errors import ConfigError

    args, run = kill_a_run(tmp_path, synth_root)
    train_split = tmp_path / "data" / "train"
    (train_split / "000000.pts").write_text((train_split / "000001.pts").read_text())  # same root, other content
    with pytest.raises(ConfigError, match="content hash"):
        train("synthface/student", args + ["resume=true"])
    train("synthface/student", args + ["resume=true", "resume_force=true"])
    record = json.loads((run / "run.json").read_text())
    (resume,) = record["resumes"]
    assert resume["changes"]["data_hash"][0] == record["data_hash"] != resume["changes"]["data_hash"][1]
    assert torch.load(run / "last.ckpt", weights_only=True)["global_step"] == 4


class FailAtStart(L.Callback):
    def on_train_start(self, trainer, pl_module):
        raise RuntimeError("cannot start")


def test_a_start_that_fails_leaves_no_folder_and_latest_where_it_was(synth_root, tmp_path):
    args = shrink(tmp_path, synth_root)
    first = train("synthface/student", args + ["output.run_name=first"])
    with pytest.raises(RuntimeError, match="cannot start"):
        train("synthface/student", args, callbacks=[FailAtStart()])
    assert latest_run(tmp_path, "synthface/student") == first.resolve()
    assert sorted(p.name for p in first.parent.iterdir()) == ["first", "latest"]
    # a named run that holds checkpoints is not started over; resume=true is the way to continue it
    from distill.errors import ConfigError

    with pytest.raises(ConfigError, match="has checkpoints; pass resume=true"):
        train("synthface/student", args + ["output.run_name=first"])


def test_resume_clears_the_temp_files_a_killed_run_left(tmp_path, synth_root):
    import subprocess

    args, run = kill_a_run(tmp_path, synth_root)
    dead = subprocess.Popen(["true"])
    dead.wait()  # its pid is free now: a temp file named after it belongs to a dead process
    stale = run / f".last.{dead.pid}.tmp.ckpt"
    stale.write_bytes(b"half a checkpoint")
    train("synthface/student", args + ["resume=true"])
    assert not stale.exists() and torch.load(run / "last.ckpt", weights_only=True)["global_step"] == 4
