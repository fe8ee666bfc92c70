"""NME / FR / AUC / CED and stability against values written out from their definitions."""

import numpy as np
import pytest
import torch

from distill.errors import ConfigError, DataError
from distill.metrics import LandmarkNME, ced_curve, fr_auc, frame_jitter, plot_ced, simpson, stability_std


def face68(d: float, seed: int = 0) -> torch.Tensor:
    """(68, 2) points with the outer eye corners 36 and 45 exactly d apart (inter-ocular = d)."""
    pts = torch.rand(68, 2, generator=torch.Generator().manual_seed(seed)) * d
    pts[36] = torch.tensor([10.0, 20.0])
    pts[45] = torch.tensor([10.0 + d, 20.0])
    return pts


def shifted(target: torch.Tensor, dx: float, dy: float = 0.0) -> torch.Tensor:
    return target + torch.tensor([dx, dy])


# Per-image NMEs 0.02005, 0.05005, 0.12005: every point off by 2.005 / 5.005 / 12.005 px at d = 100.
# Half-way between CED samples, so no NME sits exactly on a grid point.
NMES = (0.02005, 0.05005, 0.12005)


def three_images():
    target = torch.stack([face68(100.0, seed=i) for i in range(3)])  # (3, 68, 2)
    pred = torch.stack([shifted(target[i], e * 100 * 0.6, e * 100 * 0.8) for i, e in enumerate(NMES)])
    return pred, target


def exact_auc(nmes, t):
    """(1/t) * integral_0^t CED: each image contributes max(t - e, 0) / (N t)."""
    return sum(max(t - e, 0.0) for e in nmes) / (len(nmes) * t)


def test_hand_computed_nme_fr_auc():
    pred, target = three_images()
    metric = LandmarkNME("ibug68")
    metric.update(pred, target)
    out = metric.compute()
    assert out["count"] == 3
    assert out["nme"] == pytest.approx(sum(NMES) / 3, rel=1e-5)
    assert out["fr@0.08"] == pytest.approx(1 / 3)
    assert out["fr@0.10"] == pytest.approx(1 / 3)
    # Simpson on a sampled step function is within a couple of steps of the exact integral.
    assert out["auc@0.08"] == pytest.approx(exact_auc(NMES, 0.08), abs=5e-4)
    assert out["auc@0.10"] == pytest.approx(exact_auc(NMES, 0.10), abs=5e-4)
    assert out["per_point_nme"].shape == (68,)
    assert torch.allclose(out["per_point_nme"], torch.full((68,), sum(NMES) / 3), rtol=1e-5)
    assert torch.allclose(metric.per_image_nme(), torch.tensor(NMES), rtol=1e-5)


def test_auc_matches_scipy_simpson_on_the_reference_grid():
    scipy_integrate = pytest.importorskip("scipy.integrate")
    nmes = np.array([0.011, 0.0333, 0.047, 0.09, 0.15])
    for t in (0.08, 0.10):
        xs = np.arange(0, t + 1e-4 / 2, 1e-4)
        ys = np.array([np.count_nonzero(nmes <= x) for x in xs]) / len(nmes)
        fr, auc = fr_auc(nmes, t)
        assert auc == pytest.approx(scipy_integrate.simpson(ys, x=xs) / t, rel=1e-9)
        assert fr == pytest.approx(1 - ys[-1])


def test_simpson_is_exact_for_cubics_with_even_and_odd_interval_counts():
    for n in (2, 10, 7):
        x = np.linspace(0, 1, n + 1)
        assert simpson(x**2, 1 / n) == pytest.approx(1 / 3, rel=1e-12)
    assert simpson(np.linspace(0, 1, 11) ** 3, 0.1) == pytest.approx(0.25, rel=1e-12)


def test_dataset_nme_is_the_mean_of_per_image_nmes_not_pooled():
    big, small = face68(100.0), face68(10.0, seed=1)
    target = torch.stack([big, small])
    pred = torch.stack([shifted(big, 1.0), shifted(small, 1.0)])  # 1 px everywhere: 0.01 and 0.1
    metric = LandmarkNME("ibug68")
    metric.update(pred, target)
    assert metric.compute()["nme"] == pytest.approx((0.01 + 0.1) / 2, rel=1e-5)  # pooled would be 2/110


def test_per_subset_values_and_absent_subsets():
    pred, target = three_images()
    flags = torch.zeros(3, 6, dtype=torch.bool)
    flags[0, 0] = True  # pose: image 0
    flags[1:, 5] = True  # blur: images 1 and 2
    metric = LandmarkNME("ibug68")
    metric.update(pred, target, subsets=flags)
    out = metric.compute()
    assert out["nme/pose"] == pytest.approx(NMES[0], rel=1e-5)
    assert out["nme/blur"] == pytest.approx((NMES[1] + NMES[2]) / 2, rel=1e-5)
    assert out["fr@0.10/pose"] == 0.0 and out["fr@0.10/blur"] == pytest.approx(0.5)
    assert out["auc@0.10/blur"] == pytest.approx(exact_auc(NMES[1:], 0.10), abs=5e-4)
    assert "nme/expression" not in out and "fr@0.10/occlusion" not in out
    with pytest.raises(DataError, match="subsets"):
        metric.update(pred, target, subsets=torch.zeros(3, 2, dtype=torch.bool))


def test_box_normaliser_for_aflw19():
    target = torch.zeros(1, 19, 2)
    target[0, :, 0] = torch.linspace(0, 40, 19)  # box 40 wide ...
    target[0, :, 1] = torch.linspace(0, 10, 19)  # ... and 10 high: sqrt(400) = 20
    pred = shifted(target, 0.6, 0.8)  # 1 px error
    for metric in (LandmarkNME("aflw19"), LandmarkNME("box"), LandmarkNME("aflw19", norm="box")):
        metric.update(pred, target)
        assert metric.compute()["nme"] == pytest.approx(1 / 20, rel=1e-5)


def test_inter_pupil_and_explicit_normaliser():
    target = face68(100.0).unsqueeze(0)
    target[0, 36:42] = torch.tensor([5.0, 0.0])  # right eye centroid (5, 0)
    target[0, 42:48] = torch.tensor([45.0, 30.0])  # left eye centroid (45, 30): 50 apart
    pred = shifted(target, 2.0)
    metric = LandmarkNME("ibug68", norm="inter_pupil")
    metric.update(pred, target)
    assert metric.compute()["nme"] == pytest.approx(2 / 50, rel=1e-5)
    given = LandmarkNME("ibug68")
    given.update(pred, target, norm=torch.tensor([8.0]))
    assert given.compute()["nme"] == pytest.approx(2 / 8, rel=1e-5)


def test_visible_only_measures_visible_points():
    target = face68(100.0).unsqueeze(0)
    pred = target.clone()
    pred[0, 0] += torch.tensor([68.0, 0.0])  # one point badly off, and occluded
    vis = torch.ones(1, 68)
    vis[0, 0] = 0
    all_points, visible = LandmarkNME("ibug68"), LandmarkNME("ibug68", visible_only=True)
    all_points.update(pred, target, visibility=vis)
    visible.update(pred, target, visibility=vis)
    assert all_points.compute()["nme"] == pytest.approx(0.68 / 68, rel=1e-5)  # default ignores visibility
    assert visible.compute()["nme"] == 0.0


def test_merging_states_equals_one_metric():
    pred, target = three_images()
    flags = torch.rand(3, 6, generator=torch.Generator().manual_seed(0)) > 0.5
    whole = LandmarkNME("ibug68")
    whole.update(pred, target, subsets=flags)
    a, b = LandmarkNME("ibug68"), LandmarkNME("ibug68")
    a.update(pred[:1], target[:1], subsets=flags[:1])
    b.update(pred[1:], target[1:], subsets=flags[1:])
    a.merge_state(b)
    expected, merged = whole.compute(), a.compute()
    assert set(merged) == set(expected)
    for key, value in expected.items():
        if isinstance(value, torch.Tensor):
            assert torch.allclose(merged[key], value)
        else:
            assert merged[key] == pytest.approx(value)
    # What a DDP sync does: each list state becomes one tensor, the processes' parts concatenated.
    synced = LandmarkNME("ibug68")
    for name in ("image_nme", "point_err", "subset_flags"):
        setattr(synced, name, torch.cat(getattr(b, name) + getattr(whole, name)))
    assert synced.compute()["count"] == 5
    assert synced.compute()["nme"] == pytest.approx((sum(NMES[1:]) + sum(NMES)) / 5, rel=1e-5)


def test_empty_metric_and_bad_input():
    out = LandmarkNME("ibug68").compute()
    assert out["count"] == 0 and np.isnan(out["nme"]) and np.isnan(out["auc@0.10"])
    metric = LandmarkNME("ibug68")
    with pytest.raises(DataError, match="68"):
        metric.update(torch.zeros(1, 5, 2), torch.zeros(1, 5, 2))
    with pytest.raises(DataError, match="normaliser"):
        metric.update(torch.zeros(1, 68, 2), torch.zeros(1, 68, 2))  # coincident eye corners
    with pytest.raises(ConfigError, match="inter_pupil"):
        LandmarkNME("aflw19", norm="inter_pupil")
    with pytest.raises(ConfigError, match="needs a schema"):
        LandmarkNME("inter_ocular")
    with pytest.raises(ConfigError, match="unknown schema"):
        LandmarkNME("ibug67")


def test_ced_curve_and_plot(tmp_path):
    x, y = ced_curve([0.02005, 0.05005], max_x=0.10)
    assert len(x) == 1001 and x[-1] == pytest.approx(0.10)
    assert y[200] == 0.0 and y[201] == 0.5 and y[500] == 0.5 and y[501] == 1.0
    out = plot_ced({"teacher": [0.02, 0.03], "student": torch.tensor([0.04, 0.09])}, tmp_path / "ced" / "c.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in out.parent.iterdir()] == ["c.png"]  # no temporary file left


def test_stability_std():
    same = torch.rand(1, 1, 5, 2).expand(3, 4, 5, 2)
    assert stability_std(same, torch.ones(3)) == 0.0
    preds = torch.zeros(2, 2, 1, 2)
    preds[0, 1, 0] = torch.tensor([2.0, 0.0])  # renders at x=0 and x=2: std 1 px ...
    # ... over a normaliser of 10 -> 0.1; the second group is steady -> 0; mean 0.05
    assert stability_std(preds, torch.tensor([10.0, 4.0])) == pytest.approx(0.05)
    with pytest.raises(DataError):
        stability_std(torch.zeros(2, 1, 5, 2), torch.ones(2))


def test_frame_jitter():
    g = torch.Generator().manual_seed(0)
    gts = torch.cumsum(torch.rand(6, 5, 2, generator=g), dim=0)  # a moving face
    assert frame_jitter(gts + torch.tensor([3.0, -1.0]), gts, 10.0) == pytest.approx(0.0, abs=1e-6)
    static = torch.zeros(3, 1, 2)
    preds = torch.tensor([[[0.0, 0.0]], [[3.0, 4.0]], [[3.0, 4.0]]])  # one 5 px jump, then still
    assert frame_jitter(preds, static, 5.0) == pytest.approx((1.0 + 0.0) / 2)
    assert frame_jitter(preds, static, torch.tensor([1.0, 5.0, 1.0])) == pytest.approx((1.0 + 0.0) / 2)
