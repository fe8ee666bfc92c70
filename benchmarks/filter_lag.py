"""One-Euro landmark filter: how much jitter it removes and how much lag it adds.

Synthetic 30 fps tracks of 68 points with Gaussian noise (--noise px, a landmark model's typical
frame-to-frame jitter) on:
  still  a constant position: jitter = mean |frame-to-frame change|, raw vs filtered;
  step   a 10 px jump: frames until the output covers 90% of it (lag_frames() is the beta = 0 bound);
  ramp   constant motion at --speed px/s: steady-state lag = mean (truth - output) / speed, in frames;
  sine   a 1 Hz, 10 px sway: RMSE to the truth (jitter and lag together).
Prints one row per (min_cutoff, beta); nothing is asserted.

    python benchmarks/filter_lag.py [--noise 1.0] [--speed 60] [--seed 0]
"""

from __future__ import annotations

import argparse

import numpy as np
from rich.console import Console
from rich.table import Table

from distill.deploy.filters import OneEuroFilter

FPS = 30.0
K = 68


def run(f: OneEuroFilter, frames: np.ndarray) -> np.ndarray:
    f.reset()
    return np.stack([f(x) for x in frames])        # (T, K, 2)


def jitter(track: np.ndarray) -> float:
    return float(np.abs(np.diff(track, axis=0)).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--noise", type=float, default=1.0, help="std of the per-frame noise, px")
    parser.add_argument("--speed", type=float, default=60.0, help="ramp speed, px/s")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)

    t = np.arange(300) / FPS                                                   # 10 s
    base = rng.uniform(0, 128, size=(K, 2))
    noise = rng.normal(0, args.noise, size=(len(t), K, 2))
    still = base + noise
    step_truth = base + np.where(np.arange(60) >= 10, 10.0, 0.0)[:, None, None]       # (60, K, 2)
    step = step_truth + noise[:60]
    ramp_truth = base + (args.speed * t)[:, None, None]
    ramp = ramp_truth + noise
    sine_truth = base + (10 * np.sin(2 * np.pi * t))[:, None, None]
    sine = sine_truth + noise

    table = Table(title=f"One-Euro filter on noisy tracks ({K} points, noise {args.noise:g} px, {FPS:g} fps)")
    for col in ("min_cutoff Hz", "beta", "jitter px (raw -> out)", "step 90% frames", "bound (beta=0)",
                f"ramp lag frames @{args.speed:g}px/s", "sine RMSE px"):
        table.add_column(col, justify="right")
    raw = jitter(still[30:])
    table.add_row("(raw)", "-", f"{raw:.3f}", "0", "-", "0.00",
                  f"{np.sqrt(((sine - sine_truth) ** 2).mean()):.3f}")
    for min_cutoff in (0.5, 1.0, 3.0):
        for beta in (0.0, 0.01, 0.05, 0.2):
            f = OneEuroFilter(min_cutoff=min_cutoff, beta=beta, freq=FPS)
            out_still = run(f, still)
            out_step = run(f, step)[10:]                                       # frames from the jump on
            covered = np.median((out_step - base).reshape(len(out_step), -1), axis=1)  # robust across points
            reach = int(np.argmax(covered >= 9.0)) + 1 if np.any(covered >= 9.0) else -1
            out_ramp = run(f, ramp)
            lag = float((ramp_truth[150:] - out_ramp[150:]).mean() / args.speed * FPS)
            rmse = float(np.sqrt(((run(f, sine)[30:] - sine_truth[30:]) ** 2).mean()))
            table.add_row(f"{min_cutoff:g}", f"{beta:g}", f"{raw:.3f} -> {jitter(out_still[30:]):.3f}",
                          str(reach), str(f.lag_frames(0.9)), f"{lag:.2f}", f"{rmse:.3f}")
    Console(width=140).print(table)


if __name__ == "__main__":
    main()
