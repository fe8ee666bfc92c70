"""Lanes: a failing lane stops the study with one clear error (the happy path runs in test_quickstart)."""

import pytest


def test_a_failing_training_lane_stops_the_study_with_one_clear_error(tmp_path):
    from rich.console import Console

    from distill.errors import TrainingError
    from distill.study.lanes import run_lanes
    from distill.study.quickstart import TrainJob
    from tests.study.helpers import shrunk_budget

    (tmp_path / "empty").mkdir()  # a data root with no faces in it: the lane's DataModule refuses it
    job = TrainJob(shrunk_budget(), tmp_path, tmp_path / "empty", None, "none")
    done = []
    with pytest.raises(TrainingError, match="training regressor_l2 failed: DataError") as err:
        run_lanes(job, [["regressor_l2"]], {}, lambda name, ckpt: done.append(name),
                  lambda name, result: done.append(name), Console(quiet=True), False)
    assert "\n" not in str(err.value)
    assert "Traceback" in (tmp_path / "regressor_l2.error.log").read_text()
    assert done == []
