"""Landmark accuracy: NME / FR / AUC as a torchmetrics Metric, per attribute subset, and stability.

NME of one image = mean over points of ||pred_k - gt_k|| / d, with d the image's normaliser
(inter-ocular distance, inter-pupil distance, or sqrt(w*h) of the ground-truth box). The data set's NME
is the MEAN of the per-image NMEs, not the error pooled over all points and images, so a small face
weighs as much as a large one. Over the per-image NMEs e_1..e_N (docs/landmarks.md):

    CED(x) = #{i : e_i <= x} / N                 cumulative error distribution
    FR@t   = #{i : e_i > t} / N = 1 - CED(t)     failure rate
    AUC@t  = (1/t) * integral_0^t CED(x) dx      sampled at x = 0, step, ..., t (step 1e-4) and
                                                 integrated with Simpson's rule, as the field's
                                                 reference code does (:func:`simpson`, no scipy)

All values are fractions (0.045, not 4.5%).

    metric = LandmarkNME("ibug68")                      # inter-ocular (the schema's default)
    metric = LandmarkNME("ibug68", norm="inter_pupil")  # another normaliser of that schema
    metric = LandmarkNME("box")                         # sqrt(w*h) of the GT points' box, any K
    metric.update(pred, target, subsets=flags)          # (B, K, 2) each, flags (B, A) bool
    metric.compute()["nme"], metric.compute()["fr@0.10/pose"]

The states are per-image lists reduced by concatenation, so under DDP every process ends with all
images (torchmetrics gathers them) and merging two metrics equals measuring once.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torchmetrics import Metric
from torchmetrics.utilities.data import dim_zero_cat

from distill.data.formats import SUBSET_NAMES
from distill.data.schema import LandmarkSchema, get_schema
from distill.errors import ConfigError, DataError
from distill.io import temp_path

NORMS = ("inter_ocular", "inter_pupil", "box")


# ----------------------------------------------------------------------------- CED, FR, AUC
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

    The x axis reaches past where the curves flatten: to the 95th percentile of every NME given, rounded up to
    0.05, at least ``max_x`` (dotted: the AUC's range). The legend, below the axes so it hides no curve, carries
    each curve's NME and AUC@max_x. Uses the Agg canvas directly (no pyplot state, safe in worker processes)
    and writes a temporary file that is renamed into place.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    out_png = Path(out_png)
    values = np.concatenate([_as_numpy(nme).reshape(-1) for nme in curves.values()] or [np.zeros(0)])
    values = values[np.isfinite(values)]
    x_end = max_x if values.size == 0 else min(1.0, max(max_x, math.ceil(np.quantile(values, 0.95) / 0.05) * 0.05))
    fig = Figure(figsize=(5.5, 4.5), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for name, nme in curves.items():
        x, y = ced_curve(nme, x_end, step)
        _, auc = fr_auc(nme, max_x, step)
        ax.plot(x, y, label=f"{name} (NME {_as_numpy(nme).mean():.4f}, AUC@{max_x:g} {auc:.3f})")
    if x_end > max_x:
        ax.axvline(max_x, color="0.5", linestyle=":", linewidth=1)
    ax.set_xlim(0, x_end)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("NME (fraction of the normaliser)")
    ax.set_ylabel("fraction of images")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.15), fontsize=8, frameon=False)
    fig.tight_layout()

    out_png.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(out_png)
    try:
        fig.savefig(tmp, format="png", bbox_inches="tight")  # the legend sits below the axes
        tmp.replace(out_png)
    finally:
        tmp.unlink(missing_ok=True)
    return out_png


# ----------------------------------------------------------------------------- NME
def _key(t: float) -> str:
    """0.1 -> '0.10', 0.08 -> '0.08', 0.035 -> '0.035': the literature's two-decimal style when exact."""
    s = f"{t:.2f}"
    return s if abs(float(s) - t) < 1e-12 else f"{t:g}"


def _cat(state) -> torch.Tensor | None:
    """A list state (or a tensor after DDP sync) -> one tensor; None when nothing was measured."""
    if isinstance(state, list) and not state:
        return None
    return dim_zero_cat(state)


def _centroid_distance(points: torch.Tensor, a: tuple[int, ...], b: tuple[int, ...]) -> torch.Tensor:
    """(B, K, 2) -> (B,) distance between the centroids of index groups a and b."""
    return (points[:, list(a)].mean(dim=1) - points[:, list(b)].mean(dim=1)).norm(dim=-1)


def box_size(points: torch.Tensor) -> torch.Tensor:
    """(B, K, 2) -> (B,) sqrt(w * h) of each image's point bounding box (AFLW-19's normaliser)."""
    wh = points.amax(dim=1) - points.amin(dim=1)  # (B, 2)
    return wh.clamp_min(0).prod(dim=-1).sqrt()


class LandmarkNME(Metric):
    """NME, FR@t and AUC@t over a data set, overall and per attribute subset.

    Args:
        schema_or_norm: a LandmarkSchema, a schema name (``"ibug68"``, ``"wflw98"``, ...) or YAML path;
            or ``"box"`` alone for the schema-free box normaliser.
        norm: ``"inter_ocular"`` (the schema's ``norm_pair``), ``"inter_pupil"`` (the schema's
            ``norm_pair_alt["inter_pupil"]`` centroids) or ``"box"``; default: the schema's own
            (``"box"`` for ``norm_box`` schemas such as aflw19).
        subset_names: names of the columns of ``subsets`` given to :meth:`update`.
        thresholds: t of FR@t and AUC@t.
        visible_only: measure each image over its visible points only (``visibility`` in update). Off by
            default: the published NMEs of 300W, WFLW and COFW are over all points, occluded ones included.
        step: the CED sampling step of the AUC integral.
    """

    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    def __init__(self, schema_or_norm: LandmarkSchema | str = "ibug68", norm: str | None = None,
                 subset_names: tuple[str, ...] = SUBSET_NAMES, thresholds: tuple[float, ...] = (0.08, 0.10),
                 visible_only: bool = False, step: float = 1e-4, **kwargs) -> None:
        super().__init__(**kwargs)
        if isinstance(schema_or_norm, str) and schema_or_norm in NORMS:
            if norm is not None and norm != schema_or_norm:
                raise ConfigError(f"LandmarkNME: normaliser given twice ({schema_or_norm!r} and norm={norm!r})")
            schema, norm = None, schema_or_norm
        else:
            try:
                schema = get_schema(schema_or_norm)
            except DataError as e:
                raise ConfigError(f"LandmarkNME: {e}; or a normaliser alone: 'box'") from None
        if norm is None:
            norm = "box" if schema.norm_pair is None else "inter_ocular"
        if norm not in NORMS:
            raise ConfigError(f"LandmarkNME: key 'norm' must be one of {', '.join(NORMS)}, got {norm!r}")
        if norm != "box" and schema is None:
            raise ConfigError(f"LandmarkNME: norm {norm!r} needs a schema, e.g. LandmarkNME('ibug68', norm={norm!r})")
        if norm == "inter_ocular" and schema.norm_pair is None:
            raise ConfigError(f"LandmarkNME: schema {schema.name!r} has no inter-ocular pair; use norm='box'")
        if norm == "inter_pupil" and "inter_pupil" not in schema.norm_pair_alt:
            raise ConfigError(f"LandmarkNME: schema {schema.name!r} defines no inter_pupil normaliser "
                              f"(it has: {', '.join(schema.norm_pair_alt) or 'none'})")
        self.schema, self.norm = schema, norm
        self.subset_names = tuple(subset_names)
        self.thresholds = tuple(float(t) for t in thresholds)
        self.visible_only, self.step = visible_only, step
        self.add_state("image_nme", default=[], dist_reduce_fx="cat")  # (N,)
        self.add_state("point_err", default=[], dist_reduce_fx="cat")  # (N, K) normalised, NaN = not measured
        self.add_state("subset_flags", default=[], dist_reduce_fx="cat")  # (N, A) float 0/1

    def normaliser(self, target: torch.Tensor) -> torch.Tensor:
        """(B, K, 2) ground truth -> (B,) this metric's normaliser d of each image."""
        if self.norm == "box":
            return box_size(target)
        if self.norm == "inter_pupil":
            a, b = self.schema.norm_pair_alt["inter_pupil"]
            return _centroid_distance(target, a, b)
        a, b = self.schema.norm_pair
        return _centroid_distance(target, (a,), (b,))

    def update(self, pred: torch.Tensor, target: torch.Tensor, subsets: torch.Tensor | None = None,
               norm: torch.Tensor | None = None, visibility: torch.Tensor | None = None) -> None:
        """pred, target (B, K, 2) in the same pixel frame; subsets (B, A) bool; norm (B,) overrides the
        computed normaliser (e.g. the dataset's box size in that frame); visibility (B, K), used only
        with ``visible_only``."""
        if pred.shape != target.shape or pred.dim() != 3 or pred.shape[-1] != 2:
            raise DataError(f"LandmarkNME.update: pred {tuple(pred.shape)} and target {tuple(target.shape)} "
                            "must both be (B, K, 2)")
        b, k, _ = pred.shape
        if self.schema is not None and k != self.schema.num_points:
            raise DataError(f"LandmarkNME.update: {k} points, schema {self.schema.name!r} has "
                            f"{self.schema.num_points}")
        pred, target = pred.detach().float(), target.detach().float()
        d = self.normaliser(target) if norm is None else torch.as_tensor(norm, dtype=torch.float32,
                                                                         device=pred.device).reshape(-1)
        if d.shape != (b,):
            raise DataError(f"LandmarkNME.update: norm has shape {tuple(d.shape)}, expected ({b},)")
        if not bool((d > 0).all()):
            bad = int((d > 0).logical_not().nonzero()[0])
            raise DataError(f"LandmarkNME.update: normaliser ({self.norm}) is {float(d[bad])} for image {bad} "
                            "of the batch; NME needs a positive distance")

        err = (pred - target).norm(dim=-1) / d[:, None]  # (B, K)
        if self.visible_only and visibility is not None:
            vis = visibility.to(err.device).reshape(b, k) > 0
            # An image with no visible point is measured over all of them rather than dropped silently.
            vis = vis | ~vis.any(dim=1, keepdim=True)
            err = torch.where(vis, err, torch.full_like(err, float("nan")))
        self.image_nme.append(err.nanmean(dim=1))
        self.point_err.append(err)

        a = len(self.subset_names)
        if subsets is None:
            flags = torch.zeros(b, a, device=err.device)
        else:
            flags = torch.as_tensor(subsets, device=err.device)
            if flags.shape != (b, a):
                raise DataError(f"LandmarkNME.update: subsets has shape {tuple(flags.shape)}, expected ({b}, {a}) "
                                f"for {', '.join(self.subset_names)}")
            flags = flags.float()
        self.subset_flags.append(flags)

    def per_image_nme(self) -> torch.Tensor:
        """(N,) the NME of every image seen so far (for CED curves and per-image analysis)."""
        nme = _cat(self.image_nme)
        return torch.zeros(0) if nme is None else nme

    def _summary(self, nme: torch.Tensor, suffix: str = "") -> dict:
        out = {f"nme{suffix}": float(nme.mean())}
        for t in self.thresholds:
            fr, auc = fr_auc(nme, t, self.step)
            out[f"fr@{_key(t)}{suffix}"] = fr
            out[f"auc@{_key(t)}{suffix}"] = auc
        return out

    def compute(self) -> dict:
        """{"nme", "fr@t", "auc@t" (floats), "per_point_nme" ((K,) tensor), "count" (int), and for each
        subset with at least one image "nme/<name>", "fr@t/<name>", "auc@t/<name>"}. NaN when empty."""
        nme = _cat(self.image_nme)
        if nme is None:
            empty = self._summary(torch.full((1,), float("nan")))
            return {**{key: float("nan") for key in empty}, "per_point_nme": torch.zeros(0), "count": 0}
        out = self._summary(nme)
        out["per_point_nme"] = _cat(self.point_err).nanmean(dim=0)
        out["count"] = int(nme.numel())
        flags = _cat(self.subset_flags) > 0  # (N, A)
        for col, name in enumerate(self.subset_names):
            selected = nme[flags[:, col]]
            if selected.numel():
                out.update(self._summary(selected, f"/{name}"))
                out[f"count/{name}"] = int(selected.numel())
        return out


# ----------------------------------------------------------------------------- stability
def _norms(norm, n: int, what: str) -> torch.Tensor:
    d = torch.as_tensor(norm, dtype=torch.float64).reshape(-1)
    d = d.expand(n) if d.numel() == 1 else d
    if d.shape != (n,) or not bool((d > 0).all()):
        raise DataError(f"{what}: norm must be one positive value or {n} positive values, got {tuple(d.shape)}")
    return d


def stability_std(preds, norms) -> float:
    """Spread of predictions over renders of the same face, as a fraction of the normaliser.

    preds (G, F, K, 2): G groups of F renders of one face (same landmarks, different nuisances:
    lighting, noise, small shifts undone by the affine); norms (G,) each group's normaliser. For each
    group and point, std = sqrt(var_x + var_y) over the F renders (population variance, i.e. the RMS
    distance to the group's mean prediction); divided by the group's normaliser, then averaged over
    groups and points. 0 means the model answers identically whatever the nuisance.
    """
    p = torch.as_tensor(preds, dtype=torch.float64)
    if p.dim() != 4 or p.shape[-1] != 2 or p.shape[1] < 2:
        raise DataError(f"stability_std: preds must be (G, F>=2, K, 2), got {tuple(p.shape)}")
    std = p.var(dim=1, unbiased=False).sum(dim=-1).sqrt()  # (G, K)
    return float((std / _norms(norms, p.shape[0], "stability_std")[:, None]).mean())


def frame_jitter(preds, gts, norm) -> float:
    """Frame-to-frame motion not explained by the true motion, as a fraction of the normaliser.

    preds, gts (T, K, 2) a video's predictions and ground truth; norm one value or (T,) per frame.
    mean over t = 1..T-1 and points of ||(p_t - p_{t-1}) - (g_t - g_{t-1})|| / norm_t. A constant
    offset (a biased but steady model) gives 0; a model that trembles around the truth does not.
    """
    p = torch.as_tensor(preds, dtype=torch.float64)
    g = torch.as_tensor(gts, dtype=torch.float64)
    if p.shape != g.shape or p.dim() != 3 or p.shape[-1] != 2 or p.shape[0] < 2:
        raise DataError(f"frame_jitter: preds {tuple(p.shape)} and gts {tuple(g.shape)} must be (T>=2, K, 2)")
    d = _norms(norm, p.shape[0], "frame_jitter")
    residual = (p[1:] - p[:-1]) - (g[1:] - g[:-1])  # (T-1, K, 2)
    return float((residual.norm(dim=-1) / d[1:, None]).mean())
