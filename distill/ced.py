"""Cumulative error distribution (CED): the curve, its normalised area (AUC), failure rate, a plot.

Definitions (../shared/reference/landmarks.md), over per-image NMEs e_1..e_N:
    CED(x) = #{i : e_i <= x} / N
    FR@t   = #{i : e_i > t} / N = 1 - CED(t)
    AUC@t  = (1/t) * integral_0^t CED(x) dx
The reference code of the field samples CED at x = 0, step, 2*step, ..., t (step 1e-4) and integrates
with Simpson's rule; :func:`simpson` reproduces that without scipy at run time.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np


def _as_numpy(values) -> np.ndarray:
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    return np.asarray(values, dtype=np.float64).reshape(-1)


def ced_curve(per_image_nme, max_x: float = 0.10, step: float = 1e-4) -> tuple[np.ndarray, np.ndarray]:
    """(x, y): x = 0, step, ..., max_x (float64) and y = CED(x), the fraction of images with NME <= x."""
    nme = np.sort(_as_numpy(per_image_nme))
    n = int(round(max_x / step))
    # Multiples of step (not a running sum) so the grid hits max_x exactly and matches across calls.
    x = np.arange(n + 1, dtype=np.float64) * step
    y = np.searchsorted(nme, x, side="right") / max(len(nme), 1)
    return x, y


def simpson(y: np.ndarray, dx: float) -> float:
    """Composite Simpson's rule for samples y_0..y_n at equal spacing dx.

    Even n: (dx/3) * (y_0 + 4 y_1 + 2 y_2 + ... + 4 y_{n-1} + y_n). Odd n: Simpson on the first n-1
    intervals plus the last interval from the parabola through the last three samples,
    dx * (5 y_n + 8 y_{n-1} - y_{n-2}) / 12 (as scipy.integrate.simpson does since 1.11).
    """
    y = np.asarray(y, dtype=np.float64)
    n = len(y) - 1
    if n < 1:
        return 0.0
    if n == 1:
        return float(dx * (y[0] + y[1]) / 2)  # one interval: the trapezoid is all there is
    m = n if n % 2 == 0 else n - 1
    total = dx / 3 * (y[0] + 4 * y[1:m:2].sum() + 2 * y[2:m - 1:2].sum() + y[m])
    if m != n:
        total += dx * (5 * y[n] + 8 * y[n - 1] - y[n - 2]) / 12
    return float(total)


def fr_auc(per_image_nme, threshold: float, step: float = 1e-4) -> tuple[float, float]:
    """(FR@t, AUC@t) as fractions in [0, 1]; NaN for both when there are no images."""
    if len(_as_numpy(per_image_nme)) == 0:
        return float("nan"), float("nan")
    x, y = ced_curve(per_image_nme, threshold, step)
    return float(1.0 - y[-1]), simpson(y, step) / threshold


def plot_ced(curves: dict, out_png: str | Path, max_x: float = 0.10, step: float = 1e-4) -> Path:
    """Draw one CED curve per entry of ``curves`` (name -> per-image NMEs) into ``out_png``.

    The legend carries each curve's NME and AUC@max_x. Uses the Agg canvas directly (no pyplot state,
    safe in worker processes) and writes a temporary file that is renamed into place.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    out_png = Path(out_png)
    fig = Figure(figsize=(5, 4), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for name, nme in curves.items():
        x, y = ced_curve(nme, max_x, step)
        _, auc = fr_auc(nme, max_x, step)
        ax.plot(x * 100, y, label=f"{name} (NME {_as_numpy(nme).mean() * 100:.2f}%, AUC {auc:.3f})")
    ax.set_xlim(0, max_x * 100)
    ax.set_ylim(0, 1)
    ax.set_xlabel("NME (%)")
    ax.set_ylabel("fraction of images")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()

    out_png.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out_png.name}.", suffix=".tmp", dir=out_png.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            fig.savefig(f, format="png")
        os.replace(tmp, out_png)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out_png
