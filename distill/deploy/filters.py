"""One-Euro filter for landmark tracks in video: smooth when still, follow when moving.

Casiez, Roussel, Vogel, "1 Euro Filter: A Simple Speed-based Low-pass Filter for Noisy Input in
Interactive Systems", CHI 2012. Each coordinate is an exponential smoother whose cutoff frequency
rises with the (smoothed) speed of the signal:

    Te      = t_i - t_{i-1}                                  sampling period (s)
    a(fc)   = 1 / (1 + tau / Te),  tau = 1 / (2 pi fc)        smoothing factor of cutoff fc (Hz)
    dx_i    = (x_i - x^_{i-1}) / Te                           raw speed
    dx^_i   = a(d_cutoff) dx_i + (1 - a(d_cutoff)) dx^_{i-1}  smoothed speed
    fc_i    = min_cutoff + beta |dx^_i|                       speed-adaptive cutoff
    x^_i    = a(fc_i) x_i + (1 - a(fc_i)) x^_{i-1}

min_cutoff (Hz) sets the jitter at rest (lower = smoother, more lag); beta (s/px) how quickly the
cutoff opens with speed (higher = less lag on fast motion, more jitter). Tune min_cutoff first with
the face still, then beta while it moves.

Lag. With beta = 0 the filter is a fixed exponential smoother, a = a(min_cutoff) at Te = 1/freq,
and after a step it has covered 1 - (1 - a)^n of the step n frames later; :meth:`lag_frames` gives
the n for a fraction (default 0.9). That is an upper bound for beta > 0: a larger cutoff only raises
a. Defaults (min_cutoff 1 Hz, 30 fps): a = 0.173, 90% of a step after 13 frames (0.43 s), 63%
after 6 frames; with beta = 0.05 s/px a 10 px jump reaches 90% in 4 frames while still-face jitter
stays ~6x below the raw input's (benchmarks/filter_lag.py, 1 px noise). Each coordinate is filtered
on its own (the paper's scalar filter, vectorised).
"""

from __future__ import annotations

import math

import numpy as np

from distill.errors import DataError


def smoothing_factor(cutoff_hz, period_s):
    """a(fc) = 1 / (1 + tau / Te), tau = 1 / (2 pi fc); works on floats and arrays."""
    tau = 1.0 / (2.0 * math.pi * cutoff_hz)
    return 1.0 / (1.0 + tau / period_s)


class OneEuroFilter:
    """Filter a stream of (K, 2) landmark arrays (any fixed shape works). ``reset()`` between tracks."""

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.0, d_cutoff: float = 1.0, freq: float = 30.0):
        for name, value in (("min_cutoff", min_cutoff), ("d_cutoff", d_cutoff), ("freq", freq)):
            if not value > 0:
                raise DataError(f"OneEuroFilter: {name} must be > 0, got {value}")
        if beta < 0:
            raise DataError(f"OneEuroFilter: beta must be >= 0, got {beta}")
        self.min_cutoff, self.beta = float(min_cutoff), float(beta)
        self.d_cutoff, self.freq = float(d_cutoff), float(freq)
        self.reset()

    def reset(self) -> None:
        """Forget the track: the next call returns its input unchanged."""
        self._x = None       # last filtered value, same shape as the input
        self._dx = None      # last smoothed speed (units per second)
        self._t = None       # last timestamp (s)

    def __call__(self, points: np.ndarray, t: float | None = None) -> np.ndarray:
        """Filter one frame. t: its timestamp in seconds (default: 1 / freq after the last one)."""
        x = np.asarray(points, dtype=np.float64)
        if self._x is None or self._x.shape != x.shape:
            # a new track (or a different point count): nothing to smooth against yet
            self._x, self._dx = x.copy(), np.zeros_like(x)
            self._t = 0.0 if t is None else float(t)
            return x.astype(np.float32)
        t = self._t + 1.0 / self.freq if t is None else float(t)
        period = t - self._t
        if not period > 0:
            raise DataError(f"OneEuroFilter: timestamps must increase, got {t} after {self._t}")
        dx = (x - self._x) / period
        self._dx = self._dx + smoothing_factor(self.d_cutoff, period) * (dx - self._dx)
        cutoff = self.min_cutoff + self.beta * np.abs(self._dx)
        self._x = self._x + smoothing_factor(cutoff, period) * (x - self._x)
        self._t = t
        return self._x.astype(np.float32)

    def lag_frames(self, fraction: float = 0.9) -> int:
        """Frames (at ``freq``) until the output covers ``fraction`` of a step, for beta = 0.

        An upper bound when beta > 0. Solves 1 - (1 - a)^n >= fraction for the smallest integer n.
        """
        if not 0 < fraction < 1:
            raise DataError(f"lag_frames: fraction must be in (0, 1), got {fraction}")
        a = smoothing_factor(self.min_cutoff, 1.0 / self.freq)
        return math.ceil(math.log(1.0 - fraction) / math.log(1.0 - a) - 1e-9)
