"""The quickstart end to end on a shrunk budget, through the CLI: every artefact exists and parses."""

import json

import cv2
import pytest

import distill.study.quickstart as qs
from distill.cli import main
from distill.study.report import MODEL_NAMES, RESULT_KEYS
from tests.study.helpers import shrunk_budget


def _quickstart(out) -> int:
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(qs.BUDGETS, "small", shrunk_budget())
        return main(["quickstart", "--out", str(out), "--no-progress", "--logger", "csv"])


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    out = tmp_path_factory.mktemp("quickstart")
    assert _quickstart(out) == 0
    return out


def test_results_json_has_every_model_and_key(study):
    results = json.loads((study / "results.json").read_text())
    assert [m["name"] for m in results["models"]] == list(MODEL_NAMES)
    for m in results["models"]:
        assert set(RESULT_KEYS) <= set(m), set(RESULT_KEYS) - set(m)
        assert (study / m["ckpt"]).is_file() and (study / m["onnx"]).is_file()
        assert m["params"] > 0 and m["gflops"] > 0 and m["faces_per_s"] > 0
        assert 0 <= m["fr@0.10"] <= 1 and 0 <= m["auc@0.10"] <= 1
        assert m["onnx_max_diff_px"] <= 1e-2  # the shrunk budget's bound; trained models use 1e-3
    # each claim says whether it held, and the distillation claim agrees with the table's NMEs
    assert [set(c) for c in results["claims"]] == [{"claim", "holds", "numbers"}] * 6
    nme = {m["name"]: m["nme"] for m in results["models"]}
    assert results["claims"][0]["holds"] == (nme["teacher"] < nme["student_from_teacher"] < nme["student_scratch"])
    assert results["info"]["budget"] == "small" and results["info"]["num_train"] == 24


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
    assert _quickstart(study) == 0
    assert [p.stat().st_mtime_ns for p in ckpts] == before  # finished trainings are not redone
    assert json.loads((study / "results.json").read_text())["models"][0]["name"] == "teacher"
