"""How far each heatmap decoder lands from the true centre of a known Gaussian.

Gaussians (peak 1) are rendered at random sub-pixel centres at least 2 px inside the map, optionally
with additive white noise (a crude stand-in for a network's imperfect output), and decoded by every
method of distill.decode. Prints the mean Euclidean error in heatmap pixels; nothing is asserted.

    python benchmarks/decoding.py [--points 2000] [--noise 0.05] [--seed 0]
"""

from __future__ import annotations

import argparse

import torch
from rich.console import Console
from rich.table import Table

from distill.decode import DECODERS, decode_heatmaps


def render(centres: torch.Tensor, size: int, sigma: float) -> torch.Tensor:
    """(B, K, 2) centres -> (B, K, size, size) unit-peak Gaussians sampled at pixel centres."""
    r = torch.arange(size, dtype=torch.float32)
    dx = r[None, None, None, :] - centres[..., 0, None, None]  # (B, K, 1, W)
    dy = r[None, None, :, None] - centres[..., 1, None, None]  # (B, K, H, 1)
    return torch.exp(-(dx**2 + dy**2) / (2 * sigma**2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=2000, help="Gaussians per setting")
    parser.add_argument("--noise", type=float, default=0.05, help="std of the additive noise in the noisy rows")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    table = Table(title=f"Decoding error, mean px in the heatmap ({args.points} random sub-pixel centres each)")
    for col in ("map", "sigma", "noise", *DECODERS):
        table.add_column(col, justify="right")
    g = torch.Generator().manual_seed(args.seed)
    for size in (16, 64):
        for sigma in (1.0, 1.5):
            for noise in (0.0, args.noise):
                centres = 2.0 + torch.rand(1, args.points, 2, generator=g) * (size - 5.0)  # (1, N, 2)
                heatmaps = render(centres, size, sigma)
                heatmaps = heatmaps + noise * torch.randn(heatmaps.shape, generator=g)
                errors = [float((decode_heatmaps(heatmaps, m) - centres).norm(dim=-1).mean()) for m in DECODERS]
                table.add_row(f"{size}x{size}", f"{sigma:g}", f"{noise:g}", *(f"{e:.3f}" for e in errors))
    Console().print(table)


if __name__ == "__main__":
    main()
