"""Check a schema's flip permutation on the data itself (``distill data check``).

A wrong ``flip_pairs`` breaks nothing visibly: training runs, but every flipped crop teaches the model to
swap the two sides of the face. The points themselves say what the mirror partner of each one is: a face
is close to mirror-symmetric, so reflecting its points across the face's midline lands each point on or
near its partner. Per labelled sample:

    1. find the face's mirror line from the points alone: reflections (improper rigid transforms, Kabsch
       with the determinant forced to -1) refitted a few times onto each point's nearest reflected
       neighbour, on the better half of the points, from two starts (the schema's pairs, and the vertical
       line through the points' centre) keeping the one that fits best, so wrong pairs cannot pull it;
    2. reflect every point across that line: its reflection should land on its schema partner. It is
       doubted on this face when some other point lies closer to the reflection by more than ``tol`` of
       the face's size. The default, 0.1, passes iBUG's and WFLW's own pairs on SynthFace (at 0.05-0.08 the
       points near the midline, nose and lips, are doubted: their neighbours are closer than that), and
       still catches a pair off by one eye corner or two jaw points.

Over the samples, a point doubted on most of them is suspicious; the report names the partner the data
votes for. Faces turned far from the camera are not symmetric in the image (a turned nose tip lies off the
midline, nearer a nostril than its own reflection), so only the more symmetric half of the faces votes: those
whose mirror line fits their points best (lowest median distance from a reflected point to its nearest
point, in face sizes). That keeps AFLW-19's sparse nose (tip and two wings) from being doubted on
turned faces, while a swapped pair is doubted on the frontal ones just the same.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from distill.data.formats import Sample
from distill.data.schema import LandmarkSchema
from distill.errors import DataError


def fit_reflection(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """(N, 2) points and their mirror partners -> (2, 3) the reflection ``[R | t]`` (det R = -1) that best
    maps src onto dst in the least-squares sense."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    u, _, vt = np.linalg.svd(s.T @ d)                  # cross-covariance (2, 2)
    flip = np.diag([1.0, -1.0])                        # the smallest singular direction takes the sign
    rot = vt.T @ flip @ u.T                            # det = -1: a reflection
    if np.linalg.det(rot) > 0:                         # u or vt carried a reflection of its own
        rot = vt.T @ u.T
    return np.hstack([rot, (mu_d - rot @ mu_s)[:, None]])


def mirror_line(points: np.ndarray, perm: tuple[int, ...], rounds: int = 5) -> np.ndarray:
    """(K, 2) points of one face -> the (2, 3) reflection across its mirror line (module docstring, 1)."""
    half = max(3, len(points) // 2)
    centre = points.mean(0)
    starts = [fit_reflection(points, points[list(perm)]),
              np.array([[-1.0, 0.0, 2 * centre[0]], [0.0, 1.0, 0.0]])]   # the vertical line through the centre
    best, best_err = None, np.inf
    for m in starts:
        for _ in range(rounds):
            dist = np.linalg.norm((points @ m[:, :2].T + m[:, 2])[:, None] - points[None], axis=-1)  # (K, K)
            nearest = dist.argmin(1)                                           # (K,)
            keep = np.argsort(dist[np.arange(len(points)), nearest])[:half]
            m = fit_reflection(points[keep], points[nearest[keep]])
        dist = np.linalg.norm((points @ m[:, :2].T + m[:, 2])[:, None] - points[None], axis=-1)
        err = float(np.median(dist.min(1)))
        if err < best_err:
            best, best_err = m, err
    return best


def doubted(points: np.ndarray, perm: tuple[int, ...], tol: float) -> tuple[np.ndarray, np.ndarray, float]:
    """(K, 2) points of one face -> ((K,) bool whether each point's reflection lands on another point
    clearly closer than its schema partner, (K,) the index of the point it lands nearest, how far the face
    is from mirror-symmetric: the median distance from a reflection to its nearest point, in face sizes)."""
    m = mirror_line(points, perm)
    dist = np.linalg.norm((points @ m[:, :2].T + m[:, 2])[:, None] - points[None], axis=-1)   # (K, K)
    size = float(np.sqrt(np.prod(np.ptp(points, axis=0)).clip(min=1e-9)))
    k = np.arange(len(points))
    return dist[k, list(perm)] - dist.min(1) > tol * size, dist.argmin(1), float(np.median(dist.min(1))) / size


@dataclass
class FlipCheck:
    """What the data says about a schema's flip permutation."""

    schema: str
    samples: int             # faces checked
    voters: int              # the more symmetric half of them, whose doubts count
    suspicious: list[dict]   # {"point", "schema_partner", "data_partner", "agreement"} per doubtful point

    def summary(self) -> str:
        if not self.suspicious:
            return (f"schema {self.schema}: every flip pair agrees with the data ({self.samples} faces, "
                    f"the {self.voters} most symmetric voting)")
        lines = [f"schema {self.schema}: {len(self.suspicious)} point(s) whose mirror partner the data doubts "
                 f"({self.samples} faces, the {self.voters} most symmetric voting):"]
        for s in self.suspicious:
            lines.append(f"  point {s['point']}: the schema says {s['schema_partner']}, its reflection lands on "
                         f"{s['data_partner']} in {100 * (1 - s['agreement']):.0f}% of the faces")
        return "\n".join(lines)


def check_flip(samples: list[Sample], schema: LandmarkSchema, tol: float = 0.1, min_agreement: float = 0.5,
               max_samples: int = 500) -> FlipCheck:
    """Check ``schema.flip_perm`` on (up to ``max_samples``) labelled samples: a point doubted (see
    :func:`doubted`, ``tol`` of the face size) on more than ``1 - min_agreement`` of the more symmetric half
    of them is suspicious."""
    faces = [np.asarray(s.points, np.float64) for s in samples if s.points is not None][:max_samples]
    faces = [p for p in faces if p.shape == (schema.num_points, 2) and np.isfinite(p).all()]
    if not faces:
        raise DataError(f"schema {schema.name}: no labelled face with all {schema.num_points} points to check on")
    found = [doubted(p, schema.flip_perm, tol) for p in faces]
    asymmetry = np.array([a for _, _, a in found])                                 # (N,)
    voters = np.argsort(asymmetry, kind="stable")[: (len(found) + 1) // 2]         # the more symmetric half
    doubts = np.stack([found[i][0] for i in voters])                               # (N/2, K) bool
    nearest = np.stack([found[i][1] for i in voters])                              # (N/2, K)
    agreement = 1.0 - doubts.mean(0)                                               # (K,)
    suspicious = []
    for i in np.flatnonzero(agreement < min_agreement):
        voted = Counter(nearest[doubts[:, i], i].tolist()).most_common(1)[0][0]
        suspicious.append({"point": int(i), "schema_partner": int(schema.flip_perm[i]), "data_partner": int(voted),
                           "agreement": float(agreement[i])})
    return FlipCheck(schema.name, len(faces), len(voters), suspicious)
