"""The quickstart end to end at the tiny budget, through the CLI: every artefact exists and parses."""

import json

import cv2
import pytest

from distill.cli import main
from distill.report import MODEL_NAMES, RESULT_KEYS


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    out = tmp_path_factory.mktemp("quickstart")
    assert main(["quickstart", "--budget", "tiny", "--out", str(out), "--no-progress", "--logger", "csv"]) == 0
    return out


def test_results_json_has_every_model_and_key(study):
    results = json.loads((study / "results.json").read_text())
    assert [m["name"] for m in results["models"]] == list(MODEL_NAMES)
    for m in results["models"]:
        assert set(RESULT_KEYS) <= set(m), set(RESULT_KEYS) - set(m)
        assert (study / m["ckpt"]).is_file() and (study / m["onnx"]).is_file()
        assert m["params"] > 0 and m["gflops"] > 0 and m["faces_per_s"] > 0
        assert 0 <= m["fr@0.10"] <= 1 and 0 <= m["auc@0.10"] <= 1
        assert m["onnx_max_diff_px"] <= 1e-2  # the tiny budget's bound; trained models use 1e-3
    assert len(results["claims"]) >= 4


def test_report_has_a_table_row_per_model_and_valid_pictures(study):
    report = (study / "report.md").read_text()
    rows = [line for line in report.splitlines() if line.startswith("| ")]
    for name in MODEL_NAMES:
        assert any(row.startswith(f"| {name} |") for row in rows), name
    for png in ("ced.png", "training_curves.png", "hard_faces.png"):
        assert f"]({png})" in report
        image = cv2.imread(str(study / png))
        assert image is not None and image.shape[0] > 50 and image.shape[1] > 50, png
    assert (study / "report.html").read_text().count("<tr>") >= len(MODEL_NAMES) + 1


def test_a_second_run_resumes_without_retraining(study):
    results = json.loads((study / "results.json").read_text())
    ckpts = [study / m["ckpt"] for m in results["models"]]
    before = [p.stat().st_mtime_ns for p in ckpts]
    assert main(["quickstart", "--budget", "tiny", "--out", str(study), "--no-progress"]) == 0
    assert [p.stat().st_mtime_ns for p in ckpts] == before  # finished trainings are not redone
    assert json.loads((study / "results.json").read_text())["models"][0]["name"] == "teacher"

