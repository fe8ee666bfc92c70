"""`train`: what the data's readers skipped is printed and recorded in run.json; data.strict refuses it."""

from __future__ import annotations

import json
import shutil

import pytest

from distill.errors import DataError
from distill.training import train
from tests.training.helpers import shrink


@pytest.fixture
def data_with_a_bad_sample(tmp_path, synth_root):
    data = shutil.copytree(synth_root, tmp_path / "data")
    (data / "train" / "000003.pts").write_text("version: 1\nn_points: 68\n{\n1 2\n")  # cut short
    return data


def test_skipped_samples_are_printed_and_recorded_in_run_json(tmp_path, data_with_a_bad_sample, capsys):
    run = train("synthface/regressor_l2", shrink(tmp_path / "ckpts", data_with_a_bad_sample, "convdw"))
    assert "train data" in capsys.readouterr().out
    report = json.loads((run / "run.json").read_text())["data_report"]
    assert report["train"]["skipped"] == 1 and report["train"]["reasons"] == {"truncated": 1}
    assert report["train"]["skips"][0]["message"].endswith("000003.pts: no closing brace '}' after 1 point lines "
                                                           "(truncated file?)")
    assert report["val"]["skipped"] == 0  # the test split, read whole


def test_data_strict_refuses_before_any_run_folder(tmp_path, data_with_a_bad_sample):
    args = shrink(tmp_path / "ckpts", data_with_a_bad_sample, "convdw") + ["data.strict=true"]
    with pytest.raises(DataError, match="000003.pts: no closing brace"):
        train("synthface/regressor_l2", args)
    assert not (tmp_path / "ckpts").exists()
