"""Heatmap decoding: sub-pixel accuracy on known Gaussians, borders, confidence, frames, ONNX export."""

import numpy as np
import pytest
import torch

from distill.decode import (
    crop_to_heatmap,
    crop_to_normalised,
    decode_heatmaps,
    heatmap_to_crop,
    normalised_to_crop,
    output_to_crop,
)


def render(centres: torch.Tensor, size: int, sigma: float) -> torch.Tensor:
    """(B, K, 2) float centres -> (B, K, size, size) unit-peak Gaussians sampled at pixel centres."""
    r = torch.arange(size, dtype=torch.float32)
    dx = r[None, None, None, :] - centres[..., 0, None, None]  # (B, K, 1, W)
    dy = r[None, None, :, None] - centres[..., 1, None, None]  # (B, K, H, 1)
    return torch.exp(-(dx**2 + dy**2) / (2 * sigma**2))


def random_centres(b: int, k: int, size: int, margin: float, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return margin + torch.rand(b, k, 2, generator=g) * (size - 1 - 2 * margin)


def mean_error(points: torch.Tensor, centres: torch.Tensor) -> float:
    return float((points - centres).norm(dim=-1).mean())


@pytest.mark.parametrize("size,sigma", [(16, 1.0), (64, 1.5)])
def test_dark_is_subpixel_and_argmax_is_not(size, sigma):
    centres = random_centres(4, 16, size, margin=3.0)
    heatmaps = render(centres, size, sigma)
    dark = mean_error(decode_heatmaps(heatmaps, "dark"), centres)
    quarter = mean_error(decode_heatmaps(heatmaps, "quarter"), centres)
    argmax = mean_error(decode_heatmaps(heatmaps, "argmax"), centres)
    assert dark <= 0.05
    assert argmax >= 0.2
    assert dark < quarter < argmax


def test_argmax_is_the_integer_peak():
    heatmaps = torch.zeros(1, 2, 5, 7)
    heatmaps[0, 0, 3, 5] = 1.0  # row 3, column 5 -> (x=5, y=3)
    heatmaps[0, 1, 0, 6] = 0.5
    points = decode_heatmaps(heatmaps, "argmax")
    assert points.tolist() == [[[5.0, 3.0], [6.0, 0.0]]]


def test_quarter_moves_toward_the_higher_neighbour():
    heatmaps = torch.zeros(1, 1, 5, 5)
    heatmaps[0, 0, 2, 2] = 1.0
    heatmaps[0, 0, 2, 3] = 0.5  # right neighbour higher than left
    heatmaps[0, 0, 1, 2] = 0.5  # upper neighbour higher than lower
    assert decode_heatmaps(heatmaps, "quarter").tolist() == [[[2.25, 1.75]]]


def test_softargmax_close_on_clean_gaussian_away_from_border():
    centres = torch.tensor([[[7.3, 8.6], [6.8, 7.1]]])
    heatmaps = render(centres, 16, 2.0)
    points = decode_heatmaps(heatmaps, "softargmax", softargmax_beta=10.0)
    assert mean_error(points, centres) < 0.05


def test_softargmax_is_differentiable():
    heatmaps = render(torch.tensor([[[7.3, 8.6]]]), 16, 1.5).requires_grad_(True)
    decode_heatmaps(heatmaps, "softargmax").sum().backward()
    assert heatmaps.grad is not None and heatmaps.grad.abs().sum() > 0


@pytest.mark.parametrize("method", ["dark", "argmax", "quarter", "softargmax"])
def test_border_peaks_stay_finite_and_inside(method):
    size = 16
    centres = torch.tensor([[[0.0, 0.0], [15.0, 15.0], [-0.4, 7.3], [15.4, 3.2], [7.6, -0.3], [0.2, 15.0]]])
    heatmaps = render(centres, size, 1.0)
    flat = torch.zeros(1, 1, size, size)  # no peak at all: Hessian is zero everywhere
    negative = -torch.rand(1, 1, size, size)  # all below the log's floor
    for maps in (heatmaps, flat, negative):
        points = decode_heatmaps(maps, method)
        assert torch.isfinite(points).all()
        assert (points >= 0).all() and (points <= size - 1).all()


def test_dark_keeps_the_inner_axis_of_a_border_peak():
    # The peak sits on the left column; x has no outer neighbour, but y is inside and is refined.
    centres = torch.tensor([[[0.0, 7.3]]])
    points = decode_heatmaps(render(centres, 16, 1.0), "dark")
    assert points[0, 0, 0] == 0.0
    assert abs(float(points[0, 0, 1]) - 7.3) < 0.02


def _dark_on_whole_maps(heatmaps: torch.Tensor, sigma: float = 1.0) -> torch.Tensor:
    """DARK the textbook way: smooth every whole map (replicate border), log, finite differences at
    the argmax, the 2x2 Newton step. Only for inner peaks with a negative definite Hessian."""
    import torch.nn.functional as F

    from distill.decode import gaussian_kernel

    b, k, h, w = heatmaps.shape
    kernel = gaussian_kernel(sigma).repeat(k, 1, 1, 1)  # (K, 1, ks, ks)
    pad = kernel.shape[-1] // 2
    smooth = F.conv2d(F.pad(heatmaps, (pad,) * 4, mode="replicate"), kernel, groups=k)  # (B, K, H, W)
    log = smooth.clamp_min(1e-10).log()
    idx = heatmaps.flatten(2).argmax(-1)
    x, y = idx % w, idx // w
    bi, ki = torch.meshgrid(torch.arange(b), torch.arange(k), indexing="ij")
    at = lambda dx, dy: log[bi, ki, y + dy, x + dx]  # noqa: E731
    gx, gy = (at(1, 0) - at(-1, 0)) / 2, (at(0, 1) - at(0, -1)) / 2
    hxx, hyy = at(1, 0) - 2 * at(0, 0) + at(-1, 0), at(0, 1) - 2 * at(0, 0) + at(0, -1)
    hxy = (at(1, 1) - at(-1, 1) - at(1, -1) + at(-1, -1)) / 4
    det = hxx * hyy - hxy ** 2
    step = torch.stack([-(hyy * gx - hxy * gy) / det, -(hxx * gy - hxy * gx) / det], dim=-1)
    return torch.stack([x, y], dim=-1).float() + step.clamp(-1, 1)


@pytest.mark.parametrize("height, width", [(16, 16), (12, 20)])
def test_dark_matches_smoothing_the_whole_map(height, width):
    """The decoder smooths only the window around each peak; it must agree with smoothing whole maps,
    also for peaks one pixel from the border (where the replicated edge enters the window), for
    tilted, elongated blobs (the mixed derivative and the window's row/column order matter) and on
    maps that are not square (x and y clamped to their own borders)."""
    g = torch.Generator().manual_seed(3)
    b, k = 4, 24
    span = torch.tensor([width - 3.0, height - 3.0])
    centres = 1.0 + torch.rand(b, k, 2, generator=g) * span  # peaks from 1 to size - 2 on each axis
    centres[0, :4] = torch.tensor([[1.2, 7.0], [width - 1.7, 3.1], [6.4, 1.1], [9.0, height - 1.6]])
    dx = torch.arange(width, dtype=torch.float32)[None, None, None, :] - centres[..., 0, None, None]
    dy = torch.arange(height, dtype=torch.float32)[None, None, :, None] - centres[..., 1, None, None]
    maps = torch.exp(-(dx ** 2 / 3.0 + dy ** 2 / 1.2 - 0.6 * dx * dy) / 2)  # tilted, elongated
    maps = maps + 0.02 * torch.rand(maps.shape, generator=g)
    assert torch.allclose(decode_heatmaps(maps, "dark"), _dark_on_whole_maps(maps), atol=1e-4)


@pytest.mark.parametrize("method", ["dark", "argmax", "quarter", "softargmax"])
def test_confidence_is_the_raw_peak(method):
    centres = random_centres(2, 3, 16, margin=2.0, seed=1)
    heatmaps = render(centres, 16, 1.0) * torch.tensor([0.3, 0.7, 1.2])[None, :, None, None]
    points, confidence = decode_heatmaps(heatmaps, method, return_confidence=True)
    assert points.shape == (2, 3, 2) and confidence.shape == (2, 3)
    assert torch.equal(confidence, heatmaps.flatten(2).amax(dim=-1))


def test_bad_method_and_shape_raise():
    with pytest.raises(ValueError, match="unknown decode method"):
        decode_heatmaps(torch.zeros(1, 1, 4, 4), "median")
    with pytest.raises(ValueError, match="B, K, H, W"):
        decode_heatmaps(torch.zeros(1, 4, 4))


def test_frames_round_trip_and_match_the_convention():
    p = torch.tensor([[3.25, 10.5]])
    crop = heatmap_to_crop(p, 16, 64)
    assert torch.allclose(crop, (p + 0.5) * 4 - 0.5)
    assert torch.allclose(crop_to_heatmap(crop, 64, 16), p)
    # Pixel 0 of a 2x smaller heatmap covers crop pixels 0 and 1: its centre is at 0.5.
    assert heatmap_to_crop(torch.tensor([0.0, 0.0]), 32, 64).tolist() == [0.5, 0.5]
    u = crop_to_normalised(crop, 64)
    assert torch.allclose(u, (crop + 0.5) / 64)
    assert torch.allclose(normalised_to_crop(u, 64), crop)
    # numpy and per-axis (width, height) sizes
    a = np.array([[1.0, 2.0]], dtype=np.float32)
    b = heatmap_to_crop(a, (16, 8), (64, 64))
    np.testing.assert_allclose(b, [[(1.5 * 4) - 0.5, (2.5 * 8) - 0.5]])
    np.testing.assert_allclose(crop_to_heatmap(b, (64, 64), (16, 8)), a)


class _Decoder(torch.nn.Module):
    def forward(self, heatmaps):
        return decode_heatmaps(heatmaps, method="dark", return_confidence=True)


def test_dark_decoding_exports_to_onnx_and_matches(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    centres = random_centres(2, 5, 16, margin=0.0, seed=3)
    noise = 0.02 * torch.randn(2, 5, 16, 16, generator=torch.Generator().manual_seed(0))
    heatmaps = render(centres, 16, 1.5) + noise
    path = tmp_path / "decode.onnx"
    torch.onnx.export(_Decoder(), (heatmaps,), str(path), dynamo=False, opset_version=17,
                      input_names=["heatmaps"], output_names=["points", "confidence"],
                      dynamic_axes={"heatmaps": {0: "batch"}})
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    batch = torch.cat([heatmaps, heatmaps.flip(0)])  # a different batch size than traced
    points, confidence = session.run(None, {"heatmaps": batch.numpy()})
    ref_points, ref_conf = decode_heatmaps(batch, "dark", return_confidence=True)
    np.testing.assert_allclose(points, ref_points.numpy(), atol=1e-4)
    np.testing.assert_allclose(confidence, ref_conf.numpy(), atol=1e-4)


def test_dark_decoding_scripts_with_torchscript():
    traced = torch.jit.trace(_Decoder(), (render(random_centres(1, 2, 16, 2.0), 16, 1.0),))
    heatmaps = render(random_centres(3, 2, 16, 2.0, seed=5), 16, 1.0)
    points, confidence = traced(heatmaps)
    ref_points, ref_conf = decode_heatmaps(heatmaps, "dark", return_confidence=True)
    assert torch.allclose(points, ref_points, atol=1e-5) and torch.allclose(confidence, ref_conf)


@pytest.mark.parametrize("floor", [None, 0.0])
def test_dark_on_a_nearly_flat_peak_does_not_amplify_noise(monkeypatch, floor):
    """A ridge almost flat along x (a weak, low-confidence point): float noise of the size ONNX Runtime
    and torch disagree by must not move the decoded point by more than ~1e-3 crop px (DARK's det floor)."""
    import distill.decode as decode

    if floor is not None:
        monkeypatch.setattr(decode, "DARK_DET_FLOOR", floor)  # no floor: the noise is amplified
    ys, xs = torch.meshgrid(torch.arange(16.0), torch.arange(16.0), indexing="ij")
    ridge = 0.09 * torch.exp(-((xs - 7.3) ** 2) / (2 * 40.0 ** 2) - (ys - 5.2) ** 2 / 2)  # sigma_x 40, sigma_y 1
    maps = ridge.expand(64, 1, 16, 16).clone()
    noisy = maps * (1 + 1e-6 * torch.randn(maps.shape, generator=torch.Generator().manual_seed(0)))
    moved = (decode_heatmaps(noisy, "dark") - decode_heatmaps(maps, "dark")).abs().max()
    if floor is None:
        assert moved < 2.5e-4  # heatmap px: 1e-3 crop px at stride 4
    else:
        assert moved > 2.5e-4


def test_output_to_crop_is_the_one_model_output_to_crop_pixels_rule():
    # heatmaps: a Gaussian at heatmap (3.25, 5.5) of a 16-wide map is crop ((3.25 + 0.5) * 4 - 0.5, ...)
    centres = torch.tensor([[[3.25, 5.5], [10.0, 2.75]]])
    maps = render(centres, 16, 1.0)
    points, conf = output_to_crop(maps, "heatmap", 64)
    torch.testing.assert_close(points, (centres + 0.5) * 4 - 0.5, atol=2e-3, rtol=0)
    torch.testing.assert_close(conf, maps.flatten(2).amax(-1))
    # the same points whether the sizes are read off the maps or given, (w, h) for a non-square map
    wide = render(centres, 16, 1.0)[..., :12, :]  # (1, 2, 12, 16)
    got = output_to_crop(wide, "heatmap", 64, heatmap_size=(16, 12))[0]
    torch.testing.assert_close(got, output_to_crop(wide, "heatmap", 64)[0])
    torch.testing.assert_close(got[..., 1], (centres[..., 1] + 0.5) * 64 / 12 - 0.5, atol=2e-3, rtol=0)
    # coordinates: u = 0.5 is the crop centre; a model's own confidence passes through, none stays None
    u = torch.full((2, 5, 2), 0.5)
    points, conf = output_to_crop(u, "coords", 64)
    assert conf is None and torch.allclose(points, torch.full_like(u, 31.5))
    own = torch.rand(2, 5)
    assert output_to_crop((u, own), "coords", 64)[1] is own
    with pytest.raises(ValueError, match="output kind"):
        output_to_crop(u, "segmentation", 64)
