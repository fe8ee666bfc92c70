"""What a run actually stored in W&B (offline), MLflow and TensorBoard, the teacher -> student link, and what
the console shows: read back from the files each tracker wrote."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from distill.cli import main
from distill.training import tracking
from tests.training.helpers import shrink, wandb_contents

LOGGERS = "logging.logger=wandb,mlflow,tensorboard"
SMALL = ["trainer.max_steps=4", "trainer.val_every_n_steps=2", "logging.log_every_n_steps=1"]


@pytest.fixture(scope="module")
def runs(synth_root, tmp_path_factory):
    """A tiny teacher, then a student distilled from it, both logged to every tracker."""
    out = tmp_path_factory.mktemp("tracked")
    common = [*shrink(out, synth_root), LOGGERS, *SMALL]
    assert main(["train", "synthface/teacher", *common, "--quiet"]) == 0
    student = [*common, "model.args={num_stacks: 1, channels: 8, depth: 3, stem_channels: 8}",
               "distill.pairs=[[stack0.out, stack1.out]]"]
    assert main(["train", "synthface/student_from_teacher", *student, "--quiet"]) == 0
    run = {name: (out / "synthface" / name / "latest").resolve() for name in ("teacher", "student_from_teacher")}
    return out, run


def _offline(out: Path, run_dir: Path) -> Path:
    wandb_id = json.loads((run_dir / "run.json").read_text())["wandb_id"]
    (folder,) = (out / "wandb").glob(f"offline-run-*-{wandb_id}")
    return folder


def test_wandb_offline_run_holds_config_losses_lr_subsets_images_facts_and_checkpoints(runs):
    out, run = runs
    teacher = wandb_contents(_offline(out, run["teacher"]))
    config, history = teacher["config"], teacher["history"]
    assert config["data.crop_size"] == 64 and config["optim.lr"] == pytest.approx(3e-3)  # flattened, filterable
    assert "recipe" not in config                                                       # not one nested blob
    assert {"train/loss", "train/loss_gt", "train/lr", "val/nme", "val/fr@0.10", "val/auc@0.10"} <= history
    assert any(k.startswith("val/nme/") for k in history)                                # per subset
    assert {"val/grid/_type", "val/ced/_type"} <= history                                 # the two images
    assert {"model/params", "model/kb", "model/gflops"} <= teacher["summary"]
    name = tracking.artifact_name("synthface/teacher", run["teacher"].name)
    versions = {tuple(a[2]): set(a[3]) for a in teacher["artifacts"] if a[0] == name and a[1] == "model"}
    assert set(versions) == {("best.ckpt",), ("last.ckpt",)}
    assert "best" in versions[("best.ckpt",)] and "last" in versions[("last.ckpt",)]
    assert (teacher["run"].run_group, teacher["run"].job_type) == ("synthface", "heatmap")
    assert "synthface/teacher" in list(teacher["run"].tags)

    # the student names its teacher: path, hash, and the artifact its run logged
    student = wandb_contents(_offline(out, run["student_from_teacher"]))["config"]
    assert student["teacher/artifact"] == f"{name}:best"
    assert student["teacher/path"] == str(run["teacher"] / "best.ckpt")
    assert len(student["teacher/sha256"]) == 64


def test_sync_plans_the_uploads_and_the_teacher_link(runs, capsys):
    out, run = runs
    capsys.readouterr()
    assert main(["sync", "--root", str(out), "--dry-run"]) == 0
    said = capsys.readouterr().out
    assert said.count("would upload") == len(list((out / "wandb").glob("offline-run-*"))) >= 2
    wandb_id = json.loads((run["student_from_teacher"] / "run.json").read_text())["wandb_id"]
    name = tracking.artifact_name("synthface/teacher", run["teacher"].name)
    assert f"would link run {wandb_id} <- input {name}:best" in said


def test_mlflow_file_store_holds_params_metrics_images_and_checkpoints(runs):
    out, run = runs
    (meta,) = [m for m in (out / "mlruns").glob("*/*/meta.yaml")
               if f"run_name: synthface/teacher/{run['teacher'].name}" in m.read_text()]
    folder = meta.parent
    assert (folder / "params" / "data.crop_size").read_text() == "64"
    metrics = {p.relative_to(folder / "metrics").as_posix() for p in (folder / "metrics").rglob("*") if p.is_file()}
    assert {"train/loss", "train/lr", "val/nme", "val/fr_at_0.10", "model/params"} <= metrics
    assert any(m.startswith("val/nme.") for m in metrics)                             # per subset
    artifacts = {p.name for p in (folder / "artifacts").rglob("*")}
    assert {"best.ckpt", "last.ckpt"} <= artifacts
    assert any(a.startswith("val_grid") for a in artifacts) and any(a.startswith("val_ced") for a in artifacts)


def test_an_export_of_a_run_s_checkpoint_becomes_an_artifact_of_that_run(runs, tmp_path):
    out, run = runs
    assert main(["export", str(run["teacher"] / "best.ckpt"), "--out", str(tmp_path / "teacher.onnx")]) == 0
    segments = sorted((out / "wandb").glob(f"offline-run-*-{json.loads((run['teacher'] / 'run.json').read_text())['wandb_id']}"))
    assert len(segments) == 2  # the run, and the export reopening it (wandb sync merges them by id)
    artifacts = wandb_contents(segments[-1])["artifacts"]
    name = tracking.artifact_name("synthface/teacher", run["teacher"].name)
    assert [(a[0], a[2]) for a in artifacts] == [(f"{name}-export", ["teacher.onnx"])]
    mlflow_run = json.loads((run["teacher"] / "run.json").read_text())["mlflow"]["run_id"]
    assert list(out.glob(f"mlruns/*/{mlflow_run}/artifacts/exports/teacher.onnx"))


def test_tensorboard_events_hold_scalars_and_images(runs):
    out, run = runs
    (events,) = (out / "tensorboard" / "synthface" / "teacher" / run["teacher"].name).glob("events.out.tfevents.*")
    data = events.read_bytes()
    for tag in (b"train/loss", b"train/lr", b"val/nme", b"val/grid", b"val/ced", b"model/params"):
        assert tag in data, tag


def test_console_in_a_log_banner_step_lines_validations_and_no_library_noise(synth_root, tmp_path, capsys):
    assert main(["train", "synthface/teacher", *shrink(tmp_path, synth_root), "logging.progress=true",
                 "logging.print_every_n_steps=2", *SMALL]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].startswith("recipe   synthface/teacher (heatmap), seed 0, 4 steps")
    assert any(line.startswith("model    hourglass") and "GFLOPs/face" in line for line in lines)
    assert any(line.startswith("data     synthface") and "train 16, val 8 samples" in line for line in lines)
    steps = [line for line in lines if line.startswith("step ")]
    assert [s.split()[1] for s in steps] == ["2/4", "4/4"] and all("it/s" in s and "eta" in s for s in steps)
    assert sum(line.startswith("validation at step") for line in lines) == 2
    for noise in ("Tip:", "GPU available", "LeafSpec", "anonymous", "Total FLOPs", "Epoch"):
        assert noise not in out + err, noise


def test_quiet_prints_only_the_run_folder(synth_root, tmp_path, capsys):
    assert main(["train", "synthface/teacher", *shrink(tmp_path, synth_root), "trainer.max_steps=2",
                 "logging.progress=true", "--quiet"]) == 0
    assert capsys.readouterr().out.splitlines() == [f"run folder: {next((tmp_path / 'synthface' / 'teacher').glob('2*'))}"]


def test_missing_tracker_package_and_unknown_tracker_are_one_line_each(synth_root, tmp_path, monkeypatch, capsys):
    import importlib.util
    import sys

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in ("tensorboard", "tensorboardX") else real(name, *a))
    assert main(["train", "synthface/teacher", *shrink(tmp_path, synth_root), "logging.logger=tensorboard"]) == 2
    assert "pip install distill[tensorboard]" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "mlflow", None)
    assert main(["train", "synthface/teacher", *shrink(tmp_path, synth_root), "logging.logger=mlflow"]) == 2
    assert "pip install distill[mlflow]" in capsys.readouterr().err
    assert main(["train", "synthface/teacher", *shrink(tmp_path, synth_root), "logging.logger=wandb,neptune",
                 "--dry-run"]) == 2
    assert "'neptune' is not one of wandb, wandb_online, mlflow, tensorboard, csv, none" in capsys.readouterr().err
    assert not (tmp_path / "synthface").exists() or not any((tmp_path / "synthface" / "teacher").glob("2*"))


def test_names_flattening_and_mlflow_keys():
    assert tracking.flatten({"data": {"crop_size": 64, "augment": {"scale": [0.9, 1.1]}}, "task": "heatmap"}) == \
        {"data.crop_size": 64, "data.augment.scale": "[0.9, 1.1]", "task": "heatmap"}
    assert tracking.mlflow_key("val/fr@0.10/pose") == "val/fr_at_0.10.pose"
    assert tracking.mlflow_key("train/loss") == "train/loss"
    assert tracking.artifact_name("synthface/student", "20261205-0300") == "synthface-student-20261205-0300"
    assert tracking.logger_names("wandb, mlflow") == ["csv", "wandb", "mlflow"]
    assert tracking.logger_names("none") == []


def test_on_a_terminal_progress_is_a_live_bar_and_validations_still_print(synth_root, tmp_path, capsys, monkeypatch):
    import sys

    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert main(["train", "synthface/teacher", *shrink(tmp_path, synth_root), "logging.progress=true", *SMALL]) == 0
    out = capsys.readouterr().out
    assert "validation at step 4" in out
    assert not any(line.startswith("step 2/4 (") for line in out.splitlines())  # no plain step lines
