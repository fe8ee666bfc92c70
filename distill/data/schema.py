"""Landmark schemas: how many points, how they mirror, how NME is normalised, how they group.

A schema is the one place that knows what point 36 *means*. Readers check point counts against
it, augmentation uses its flip permutation, metrics use its normaliser, the cascade uses its
5-point derivation. Built-ins follow docs/landmarks.md; a user's own point set is
a small YAML file loaded by :func:`load_schema` (validated, errors name the file and the key).

Custom schema YAML::

    name: my21
    num_points: 21
    flip_pairs: [[0, 5], [1, 4], [2, 3]]      # unlisted points map to themselves
    normaliser: {pair: [6, 11]}                # or {box: true} for sqrt(w*h) of the GT box
    groups: {left_eye: [6, 7, 8]}              # optional
    five_point: [[6, 7, 8], [9, 10, 11], [13], [15], [17]]   # optional: each of the 5 is a mean
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from distill.errors import DataError


def _rng(a: int, b: int) -> list[int]:
    """Inclusive index range in either direction: _rng(16, 0) = [16, 15, ..., 0]."""
    step = 1 if b >= a else -1
    return list(range(a, b + step, step))


def _pairs_to_perm(n: int, pairs: list[tuple[int, int]]) -> tuple[int, ...]:
    perm = list(range(n))
    for a, b in pairs:
        perm[a], perm[b] = b, a
    return tuple(perm)


@dataclass(frozen=True)
class LandmarkSchema:
    """A point set.

    flip_perm: after a horizontal flip, new point i takes old point ``flip_perm[i]``.
    norm_pair: the two indices whose distance normalises NME (inter-ocular by default);
        ``None`` with ``norm_box=True`` means sqrt(w*h) of the ground-truth box (AFLW-19).
    norm_pair_alt: other normalisers in use (e.g. inter-pupil), each a pair of index groups whose
        centroids are measured.
    five_point: five index groups; the mean of each gives the 5-point layout (left eye centre,
        right eye centre, nose tip, left mouth corner, right mouth corner; "left" = image left).
    """

    name: str
    num_points: int
    flip_perm: tuple[int, ...]
    norm_pair: tuple[int, int] | None
    norm_box: bool = False
    # dicts are left out of the hash so a schema can key a cache (frozen dataclasses hash every field)
    groups: dict[str, tuple[int, ...]] = field(default_factory=dict, hash=False)
    five_point: tuple[tuple[int, ...], ...] | None = None
    norm_pair_alt: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        problems = validate_flip_perm(self.flip_perm, self.num_points)
        if problems:
            raise DataError(f"schema {self.name!r}: flip_perm {problems}")

    def to_five(self, points: np.ndarray) -> np.ndarray:
        """(..., K, 2) -> (..., 5, 2) by averaging each of the five index groups."""
        if self.five_point is None:
            raise DataError(f"schema {self.name!r} defines no 5-point derivation")
        pts = np.asarray(points, dtype=np.float32)
        return np.stack([pts[..., list(g), :].mean(axis=-2) for g in self.five_point], axis=-2)

    def normaliser(self, points: np.ndarray, box: np.ndarray | None = None) -> float:
        """The NME normaliser of one (K, 2) ground truth: inter-ocular distance or sqrt(box area)."""
        if self.norm_pair is not None:
            a, b = self.norm_pair
            return float(np.linalg.norm(points[a] - points[b]))
        if box is None:
            x1, y1 = points.min(axis=0)
            x2, y2 = points.max(axis=0)
        else:
            x1, y1, x2, y2 = box
        return float(np.sqrt(max(x2 - x1, 0.0) * max(y2 - y1, 0.0)))


def validate_flip_perm(perm, n: int) -> str:
    """'' when ``perm`` is a permutation of range(n) that is its own inverse, else what is wrong."""
    perm = list(perm)
    if len(perm) != n:
        return f"has {len(perm)} entries, expected {n}"
    bad = [p for p in perm if not isinstance(p, (int, np.integer)) or not 0 <= p < n]
    if bad:
        return f"has entries out of range 0..{n - 1}: {bad[:5]}"
    not_inv = [i for i in range(n) if perm[perm[i]] != i]
    if not_inv:
        return f"is not an involution (perm[perm[i]] != i at i={not_inv[:5]})"
    return ""


IBUG68 = LandmarkSchema(
    name="ibug68",
    num_points=68,
    flip_perm=tuple(
        _rng(16, 0) + _rng(26, 17) + [27, 28, 29, 30] + _rng(35, 31)
        + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]
        + _rng(54, 48) + _rng(59, 55) + _rng(64, 60) + [67, 66, 65]
    ),
    norm_pair=(36, 45),
    groups={
        "jaw": tuple(_rng(0, 16)), "right_brow": tuple(_rng(17, 21)), "left_brow": tuple(_rng(22, 26)),
        "nose_bridge": tuple(_rng(27, 30)), "lower_nose": tuple(_rng(31, 35)),
        "right_eye": tuple(_rng(36, 41)), "left_eye": tuple(_rng(42, 47)),
        "outer_lips": tuple(_rng(48, 59)), "inner_lips": tuple(_rng(60, 67)),
    },
    five_point=(tuple(_rng(36, 41)), tuple(_rng(42, 47)), (30,), (48,), (54,)),
    norm_pair_alt={"inter_pupil": (tuple(_rng(36, 41)), tuple(_rng(42, 47)))},
)

WFLW98 = LandmarkSchema(
    name="wflw98",
    num_points=98,
    flip_perm=tuple(
        _rng(32, 0) + [46, 45, 44, 43, 42, 50, 49, 48, 47, 37, 36, 35, 34, 33, 41, 40, 39, 38]
        + [51, 52, 53, 54] + _rng(59, 55) + _rng(72, 68) + [75, 74, 73] + _rng(64, 60) + [67, 66, 65]
        + _rng(82, 76) + _rng(87, 83) + _rng(92, 88) + [95, 94, 93] + [97, 96]
    ),
    norm_pair=(60, 72),
    groups={
        "jaw": tuple(_rng(0, 32)), "right_brow": tuple(_rng(33, 41)), "left_brow": tuple(_rng(42, 50)),
        "nose_bridge": tuple(_rng(51, 54)), "lower_nose": tuple(_rng(55, 59)),
        "right_eye": tuple(_rng(60, 67)), "left_eye": tuple(_rng(68, 75)),
        "outer_lips": tuple(_rng(76, 87)), "inner_lips": tuple(_rng(88, 95)), "pupils": (96, 97),
    },
    five_point=((96,), (97,), (54,), (76,), (82,)),
    norm_pair_alt={"inter_pupil": ((96,), (97,))},
)

# COFW's 29 points: brows 0-7, eye corners 8-11, lids 12-15, pupils 16-17, nose 18-21,
# mouth 22-27, chin 28. Swaps as used by HRNet/mmpose.
COFW29 = LandmarkSchema(
    name="cofw29",
    num_points=29,
    flip_perm=_pairs_to_perm(29, [(0, 1), (2, 3), (4, 6), (5, 7), (8, 9), (10, 11), (12, 14),
                                  (13, 15), (16, 17), (18, 19), (22, 23)]),
    norm_pair=(8, 9),
    groups={"brows": tuple(_rng(0, 7)), "eyes": tuple(_rng(8, 17)), "nose": tuple(_rng(18, 21)),
            "mouth": tuple(_rng(22, 27)), "chin": (28,)},
    five_point=((16,), (17,), (20,), (22,), (23,)),
    norm_pair_alt={"inter_pupil": ((16,), (17,))},
)

# AFLW-19: brows 0-5, eyes 6-11 (corner, centre, corner), nose 12-14, mouth 15-17, chin 18.
AFLW19 = LandmarkSchema(
    name="aflw19",
    num_points=19,
    flip_perm=_pairs_to_perm(19, [(0, 5), (1, 4), (2, 3), (6, 11), (7, 10), (8, 9), (12, 14), (15, 17)]),
    norm_pair=None,
    norm_box=True,
    groups={"brows": tuple(_rng(0, 5)), "eyes": tuple(_rng(6, 11)), "nose": (12, 13, 14),
            "mouth": (15, 16, 17), "chin": (18,)},
    five_point=((7,), (10,), (13,), (15,), (17,)),
)

FIVE = LandmarkSchema(
    name="five",
    num_points=5,
    flip_perm=(1, 0, 2, 4, 3),
    norm_pair=(0, 1),
    groups={"eyes": (0, 1), "nose": (2,), "mouth": (3, 4)},
    five_point=((0,), (1,), (2,), (3,), (4,)),
)

SCHEMAS: dict[str, LandmarkSchema] = {s.name: s for s in (IBUG68, WFLW98, COFW29, AFLW19, FIVE)}


def _int_list(value, path: Path, key: str) -> list[int]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise DataError(f"{path}: key '{key}' must be a list of integers, got {value!r}")
    return list(value)


def load_schema(path: str | Path) -> LandmarkSchema:
    """Read a custom schema YAML (see module docstring); raises DataError naming file and key."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{path}: schema file not found") from None
    except yaml.YAMLError as e:
        raise DataError(f"{path}: not valid YAML ({e})") from None
    if not isinstance(raw, dict):
        raise DataError(f"{path}: expected a mapping with keys name, num_points, flip_pairs, normaliser")
    known = {"name", "num_points", "flip_pairs", "flip_perm", "normaliser", "groups", "five_point"}
    unknown = sorted(set(raw) - known)
    if unknown:
        hint = " (the key is spelt 'normaliser')" if unknown[0] in ("normalizer", "normalize", "normalise") else ""
        raise DataError(f"{path}: unknown key '{unknown[0]}'{hint} (known: {', '.join(sorted(known))})")
    for key in ("name", "num_points", "normaliser"):
        if key not in raw:
            raise DataError(f"{path}: missing key '{key}'")
    n = raw["num_points"]
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise DataError(f"{path}: key 'num_points' must be a positive integer, got {n!r}")

    if "flip_perm" in raw:
        perm = _int_list(raw["flip_perm"], path, "flip_perm")
        key = "flip_perm"
    else:
        pairs = raw.get("flip_pairs", []) or []
        if not isinstance(pairs, list) or not all(isinstance(p, list) and len(p) == 2 for p in pairs):
            raise DataError(f"{path}: key 'flip_pairs' must be a list of [i, j] pairs")
        perm = list(range(n))
        for i, (a, b) in enumerate(pairs):
            _int_list([a, b], path, f"flip_pairs[{i}]")
            if not (0 <= a < n and 0 <= b < n):
                raise DataError(f"{path}: key 'flip_pairs[{i}]' = [{a}, {b}] out of range 0..{n - 1}")
            perm[a], perm[b] = b, a
        key = "flip_pairs"
    problem = validate_flip_perm(perm, n)
    if problem:
        raise DataError(f"{path}: key '{key}': the flip permutation {problem}")

    norm = raw["normaliser"]
    norm_pair, norm_box = None, False
    if isinstance(norm, dict) and "pair" in norm:
        pair = _int_list(norm["pair"], path, "normaliser.pair")
        if len(pair) != 2 or not all(0 <= p < n for p in pair) or pair[0] == pair[1]:
            raise DataError(f"{path}: key 'normaliser.pair' must be two different indices in 0..{n - 1}, got {pair}")
        norm_pair = (pair[0], pair[1])
    elif isinstance(norm, dict) and norm.get("box") is True:
        norm_box = True
    else:
        raise DataError(f"{path}: key 'normaliser' must be {{pair: [i, j]}} or {{box: true}}, got {norm!r}")

    groups = {}
    if not isinstance(raw.get("groups") or {}, dict):
        raise DataError(f"{path}: key 'groups' must be a mapping name -> list of indices")
    for g, idx in (raw.get("groups") or {}).items():
        idx = _int_list(idx, path, f"groups.{g}")
        if not all(0 <= i < n for i in idx):
            raise DataError(f"{path}: key 'groups.{g}' has indices out of range 0..{n - 1}")
        groups[str(g)] = tuple(idx)

    five = None
    if raw.get("five_point") is not None:
        fp = raw["five_point"]
        if not isinstance(fp, list) or len(fp) != 5:
            raise DataError(f"{path}: key 'five_point' must be a list of 5 index lists")
        five = tuple(tuple(_int_list(g, path, f"five_point[{i}]")) for i, g in enumerate(fp))
        if not all(five) or not all(0 <= i < n for g in five for i in g):
            raise DataError(f"{path}: key 'five_point' needs 5 non-empty groups of indices in 0..{n - 1}")

    return LandmarkSchema(name=str(raw["name"]), num_points=n, flip_perm=tuple(perm), norm_pair=norm_pair,
                          norm_box=norm_box, groups=groups, five_point=five)


def get_schema(name_or_path: str | LandmarkSchema) -> LandmarkSchema:
    """A built-in by name, or a custom schema YAML by path."""
    if isinstance(name_or_path, LandmarkSchema):
        return name_or_path
    if name_or_path in SCHEMAS:
        return SCHEMAS[name_or_path]
    if str(name_or_path).endswith((".yaml", ".yml")):
        return load_schema(name_or_path)
    raise DataError(f"unknown schema {name_or_path!r}: use one of {', '.join(SCHEMAS)} or a .yaml path")
