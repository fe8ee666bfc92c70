"""evaluate: every model form is scored on the same uint8 crops; `distill eval` prints and writes the results."""

from __future__ import annotations

import json

import numpy as np
import pytest

from distill.cli import main
from distill.data.formats import load_samples
from distill.deploy.runtime import load_backend
from distill.evaluate import evaluate, predict_samples
from tests.deploy.helpers import model_forms


@pytest.fixture(scope="module")
def forms(tmp_path_factory):
    """One tiny heatmap model as .ckpt, .onnx and TorchScript .pt."""
    return model_forms(tmp_path_factory.mktemp("forms"), seed=3)


def test_every_form_scores_the_same(forms, synth_root):
    results = {s: evaluate(p, synth_root, fmt="synthface", threads=1) for s, p in forms.items()}
    for s, r in results.items():
        assert r["count"] == 8 and r["split"] == "test", s
        assert r["nme"] == pytest.approx(results["ckpt"]["nme"], abs=1e-4), s
        assert r["model"] == str(forms[s])


def test_predictions_are_the_backend_on_the_plain_box_crops(forms, synth_root):
    backend = load_backend(forms["onnx"], threads=1)
    samples, _ = load_samples("synthface", synth_root, split="test")
    pred = predict_samples(backend, samples[:5], batch_size=2)
    assert pred["pred"].shape == pred["points"].shape == (5, 68, 2) and pred["subsets"].shape == (5, 6)
    # the crops are training's unaugmented ones: the truth is the sample's points through each crop matrix
    for i, s in enumerate(samples[:5]):
        m = pred["matrix"][i].double().numpy()
        truth = np.asarray(s.points, np.float64) @ m[:, :2].T + m[:, 2]
        np.testing.assert_allclose(pred["points"][i].numpy(), truth, atol=1e-3)
    one_batch = predict_samples(backend, samples[:5], batch_size=5)
    np.testing.assert_allclose(one_batch["pred"].numpy(), pred["pred"].numpy(), atol=1e-5)


def test_another_schema_with_the_same_point_count_replaces_the_model_s_own(forms, synth_root, tmp_path):
    from distill.errors import DataError

    pupils = tmp_path / "pupils.yaml"  # iBUG's 68 points, NME normalised by the pupils' distance
    pupils.write_text("name: ibug68_pupils\nnum_points: 68\nnormaliser: {pair: [37, 44]}\n")
    own = evaluate(forms["onnx"], synth_root, fmt="synthface", schema=str(pupils))
    default = evaluate(forms["onnx"], synth_root, fmt="synthface")
    assert own["count"] == default["count"] and own["nme"] != pytest.approx(default["nme"], rel=1e-3)
    with pytest.raises(DataError, match="98 points, the model .* predicts 68"):
        evaluate(forms["onnx"], synth_root, fmt="synthface", schema="wflw98")


def test_eval_cli_prints_and_writes_json_and_ced(forms, synth_root, tmp_path, capsys):
    out, ced = tmp_path / "r.json", tmp_path / "ced.png"
    assert main(["eval", str(forms["ckpt"]), "--data", str(synth_root), "--format", "synthface", "--json", str(out),
                 "--ced", str(ced)]) == 0
    results = json.loads(out.read_text())
    assert results["count"] == 8 and results["split"] == "test"  # the whole test split
    assert {"nme", "fr@0.08", "fr@0.10", "auc@0.08", "auc@0.10"} <= set(results)
    assert 0 <= results["fr@0.10"] <= 1 and ced.stat().st_size > 0
    assert "NME" in capsys.readouterr().out
