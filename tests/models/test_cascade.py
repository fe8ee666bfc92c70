import cv2
import numpy as np
import pytest
import torch
from torch import nn

from distill import DataError
from distill.data.pose import mean_face
from distill.models.cascade import (
    CANONICAL_FIVE,
    Cascade,
    aligned_crop_matrix,
    apply_affine,
    cascade_predict,
    invert_similarity,
    similarity_transform,
    template,
)


def similarity(scale, angle_deg, tx, ty):
    c, s = scale * np.cos(np.deg2rad(angle_deg)), scale * np.sin(np.deg2rad(angle_deg))
    return np.array([[c, -s, tx], [s, c, ty]])


def test_similarity_maps_five_points_onto_the_template_exactly():
    size = 64
    m_true = similarity(0.7, 25.0, 12.0, -8.0)                        # image -> crop
    five_image = apply_affine(invert_similarity(m_true), template(size).astype(np.float64))
    m = aligned_crop_matrix(five_image, size)
    np.testing.assert_allclose(m, m_true, atol=1e-9)
    np.testing.assert_allclose(apply_affine(m, five_image), template(size), atol=1e-5)
    # batched numpy and torch agree
    batch = np.stack([five_image, five_image + 3.0])
    mt = similarity_transform(torch.tensor(batch), torch.tensor(template(size), dtype=torch.float64))
    np.testing.assert_allclose(mt.numpy(), similarity_transform(batch, template(size).astype(np.float64)), atol=1e-9)


def test_similarity_never_reflects_and_rejects_degenerate_input():
    src = template(64).astype(np.float64)
    mirrored = src * [-1, 1]
    m = similarity_transform(src, mirrored)
    assert np.linalg.det(m[:, :2]) >= 0
    with pytest.raises(DataError, match="coincide"):
        similarity_transform(np.ones((5, 2)), src)


def test_template_is_the_symmetric_frontal_mean_face():
    assert np.allclose(CANONICAL_FIVE[[1, 0, 2, 4, 3], 0], 1 - CANONICAL_FIVE[:, 0], atol=1e-6)
    p = mean_face()
    five = np.stack([p[36:42].mean(0), p[42:48].mean(0), p[30], p[48], p[54]])[:, :2]
    m = similarity_transform(five, CANONICAL_FIVE.astype(np.float64))
    assert np.abs(apply_affine(m, five) - CANONICAL_FIVE).max() < 0.01
    # the whole 68-point face fits inside the unit crop with a margin
    face = apply_affine(m, p[:, :2])
    assert face.min() > 0.1 and face.max() < 0.9


def blobs(size, centres, sigma=2.0):
    """(len(centres), size, size) float Gaussian blobs, one per channel."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    return np.stack([np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2)) for x, y in centres])


def centroids(planes):
    """(C, H, W) non-negative planes -> (C, 2) intensity-weighted centroids."""
    w = planes.clamp_min(0) if isinstance(planes, torch.Tensor) else np.clip(planes, 0, None)
    h, wd = w.shape[-2:]
    xs = torch.arange(wd, dtype=w.dtype) if isinstance(w, torch.Tensor) else np.arange(wd)
    ys = torch.arange(h, dtype=w.dtype) if isinstance(w, torch.Tensor) else np.arange(h)
    total = w.sum((-2, -1))
    cx = (w.sum(-2) * xs).sum(-1) / total
    cy = (w.sum(-1) * ys).sum(-1) / total
    return torch.stack([cx, cy], -1) if isinstance(w, torch.Tensor) else np.stack([cx, cy], -1)


class FixedFive(nn.Module):
    """Stage-1 oracle: always predicts the given five points (normalised coordinates)."""
    output_kind, num_points = "coords", 5

    def __init__(self, five_px, size):
        super().__init__()
        self.input_size = size
        self.register_buffer("u", torch.tensor((five_px + 0.5) / size, dtype=torch.float32))

    def forward(self, x):
        return self.u.expand(x.shape[0], -1, -1)


class BlobFinder(nn.Module):
    """Stage-2 stand-in: point c = centroid of channel c above black (-2), as normalised coordinates."""
    output_kind, num_points, input_size = "coords", 3, 48

    def forward(self, x):
        return (centroids(x + 2.0) + 0.5) / x.shape[-1]                    # (B, 3, 2)


@pytest.mark.parametrize("input_size", [64, 128])
def test_cascade_module_aligns_and_maps_points_back(input_size):
    s2 = 48
    m_true = similarity(0.9 * s2 / input_size, -20.0, 0.0, 0.0)          # input px -> aligned px
    m_true[:, 2] = template(s2).mean(0) - m_true[:, :2] @ np.full(2, (input_size - 1) / 2)
    five_input = apply_affine(invert_similarity(m_true), template(s2).astype(np.float64))
    five_s1 = (five_input + 0.5) * (64 / input_size) - 0.5
    truth = np.array([[0.3, 0.35], [0.62, 0.4], [0.5, 0.7]]) * input_size  # three points in the crop
    x = torch.tensor(blobs(input_size, truth, sigma=2.5 * input_size / 64) * 3 - 2, dtype=torch.float32)[None]
    model = Cascade(FixedFive(five_s1, 64), BlobFinder()).eval()
    assert model.input_size == s2 and model.num_points == 3
    with pytest.raises(DataError, match="expected"):
        model(torch.zeros(1, 3, s2 + 1, s2 + 1))
    model = Cascade(FixedFive(five_s1, 64), BlobFinder(), input_size=input_size).eval()
    with torch.no_grad():
        st = model.forward_stages(x)
        u = model(x)
    np.testing.assert_allclose(st["five"][0].numpy(), five_input, atol=1e-3)
    np.testing.assert_allclose(st["matrix"][0].numpy(), m_true, atol=1e-4)
    assert st["aligned"].shape == (1, 3, s2, s2)
    np.testing.assert_allclose(st["points"][0].numpy(), truth, atol=0.15)
    np.testing.assert_allclose(u[0].numpy(), (truth + 0.5) / input_size, atol=0.15 / input_size)


def test_cascade_predict_on_a_full_image():
    size = 64
    m_true = similarity(1.1, 15.0, 0.0, 0.0)                             # image -> aligned crop
    m_true[:, 2] = template(size).mean(0) - m_true[:, :2] @ np.array([100.0, 90.0])
    inv = invert_similarity(m_true)
    five_img = apply_affine(inv, template(size).astype(np.float64))
    pts_img = apply_affine(inv, np.array([[20.0, 44.0], [46.0, 16.0]]))
    image = np.zeros((200, 220, 3), np.float64)
    image[..., 0] = blobs(220, five_img, 1.8).sum(0)[:200]
    image[..., 1:] = np.moveaxis(blobs(220, pts_img, 1.8)[:, :200], 0, -1)
    image = np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)

    def stage1_fn(crop):
        n, labels = cv2.connectedComponents((crop[..., 0] > 20).astype(np.uint8))
        c = np.stack([centroids(np.where(labels == i, crop[..., 0], 0).astype(np.float64)[None])[0]
                      for i in range(1, n)])
        c = c[np.argsort(c[:, 1])]                                        # eyes, nose, mouth by height
        return np.concatenate([c[:2][np.argsort(c[:2, 0])], c[2:3], c[3:][np.argsort(c[3:, 0])]])

    def stage2_fn(crop):
        return centroids(np.moveaxis(crop[..., 1:], -1, 0).astype(np.float64))

    box = (five_img[:, 0].min() - 10, five_img[:, 1].min() - 12, five_img[:, 0].max() + 10, five_img[:, 1].max() + 8)
    out = cascade_predict(image, box, stage1_fn, stage2_fn, stage1_size=64, stage2_size=size)
    np.testing.assert_allclose(out["five"], five_img, atol=0.2)
    np.testing.assert_allclose(out["points"], pts_img, atol=0.2)
    np.testing.assert_allclose(out["matrix"][:, :2], m_true[:, :2], atol=0.01)
    np.testing.assert_allclose(apply_affine(out["matrix"], five_img), template(size), atol=0.2)
    with pytest.raises(DataError, match="box"):
        cascade_predict(image, (10, 10, 5, 40), stage1_fn, stage2_fn)


def test_module_and_numpy_paths_agree():
    """Cascade on the stage-1 crop and cascade_predict on the full image give the same points."""
    from distill.data.transforms import crop_matrix, to_tensor, warp
    from distill.models.cascade import stage_fn

    truth = np.array([[70.0, 60.0], [95.0, 66.0], [84.0, 92.0]])
    image = np.round(np.moveaxis(blobs(160, truth, 2.5), 0, -1) * 255).astype(np.uint8)   # (160, 160, 3)
    box = (55.0, 50.0, 110.0, 105.0)
    m1 = crop_matrix(box, 64, 0.25)
    five_crop = apply_affine(m1, truth[[0, 1, 2, 2, 2]] + [[0, 0], [0, 0], [0, -5], [-8, 12], [8, 12]])
    stage1, stage2 = FixedFive(five_crop, 64), BlobFinder()
    with torch.no_grad():
        crop_points = Cascade(stage1, stage2, input_size=64).forward_stages(to_tensor(warp(image, m1, 64))[None])
    from_module = apply_affine(invert_similarity(m1), crop_points["points"][0].double().numpy())
    from_numpy = cascade_predict(image, box, stage_fn(stage1), stage_fn(stage2), stage1_size=64, stage2_size=48)
    np.testing.assert_allclose(from_numpy["points"], from_module, atol=0.1)
    np.testing.assert_allclose(from_numpy["points"], truth, atol=0.25)


def test_cascade_exports_to_onnx_as_one_graph(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    five = apply_affine(invert_similarity(similarity(0.8, 10.0, 3.0, -2.0)), template(64).astype(np.float64))
    model = Cascade(FixedFive(five, 64), BlobFinder(), input_size=64).eval()
    x = torch.tensor(blobs(64, [[20, 30], [40, 25], [33, 45]]) * 3 - 2, dtype=torch.float32)[None]
    x = torch.cat([x, x.flip(-1)])                                                    # (2, 3, 64, 64)
    path = tmp_path / "cascade.onnx"
    torch.onnx.export(model, (x,), str(path), dynamo=False, opset_version=17, input_names=["image"],
                      output_names=["points"], dynamic_axes={"image": {0: "batch"}, "points": {0: "batch"}})
    got = ort.InferenceSession(str(path)).run(None, {"image": x.numpy()})[0]
    with torch.no_grad():
        np.testing.assert_allclose(got, model(x).numpy(), atol=1e-5)
