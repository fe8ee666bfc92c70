"""The report's claims: each states whether it held, from the numbers, whichever way they fall."""

import copy

import pytest

from distill.study.report import MODEL_NAMES, check_claims, markdown_to_html, results_table_markdown

GOOD = {
    "teacher": {"nme": 0.09, "gflops": 0.16, "faces_per_s": 100.0, "onnx_max_diff_px": 1e-4},
    "student_scratch": {"nme": 0.12, "gflops": 0.013, "faces_per_s": 1500.0, "onnx_max_diff_px": 1e-4},
    "student_from_teacher": {"nme": 0.10, "gflops": 0.013, "faces_per_s": 1500.0, "onnx_max_diff_px": 1e-4},
    "regressor_l2": {"nme": 0.12, "gflops": 0.002, "faces_per_s": 5000.0, "onnx_max_diff_px": 1e-4},
    "regressor_wing": {"nme": 0.11, "gflops": 0.002, "faces_per_s": 5000.0, "onnx_max_diff_px": 1e-4},
    "regressor_from_teacher": {"nme": 0.10, "gflops": 0.002, "faces_per_s": 5000.0, "onnx_max_diff_px": 1e-4},
}


def test_every_claim_holds_on_good_numbers():
    claims = check_claims(GOOD)
    assert len(claims) == 6 and all(c["holds"] is True for c in claims)
    assert "0.0900" in claims[0]["numbers"] and "15.0x" in claims[5]["numbers"]


@pytest.mark.parametrize("index, model, key, value", [
    (0, "student_from_teacher", "nme", 0.13),        # distilled worse than scratch
    (0, "student_from_teacher", "nme", 0.08),        # distilled better than its teacher: not the claim's order
    (1, "student_from_teacher", "gflops", 0.05),     # more than 1/10 of the teacher's FLOPs
    (2, "regressor_from_teacher", "nme", 0.115),     # the distilled regressor worse than the one trained alone
    (3, "regressor_wing", "nme", 0.13),              # Wing no better than L2
    (4, "regressor_l2", "onnx_max_diff_px", 2e-3),   # an ONNX file off its checkpoint
    (5, "student_from_teacher", "faces_per_s", 900.0),  # under 10x the teacher
])
def test_each_claim_fails_when_its_numbers_do(index, model, key, value):
    models = copy.deepcopy(GOOD)
    models[model][key] = value
    holds = [c["holds"] for c in check_claims(models)]
    assert holds[index] is False and sum(holds) == 5


def test_the_results_table_has_a_row_per_model_and_renders_to_html():
    rows = [dict(name=n, params=1000, bytes=4096, latency_ms=0.5, **{"fr@0.10": 0.1, "auc@0.10": 0.5},
                 stability=0.04, **{k: v for k, v in GOOD[n].items() if k in ("nme", "gflops", "faces_per_s")})
            for n in MODEL_NAMES]
    table = results_table_markdown(rows, [])
    assert [line.split("|")[1].strip() for line in table.splitlines()[2:]] == list(MODEL_NAMES)
    assert markdown_to_html(table).count("<tr>") == len(MODEL_NAMES) + 1
