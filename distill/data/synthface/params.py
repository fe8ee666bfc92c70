"""SynthFace parameters: what one face is, how it is drawn at random, and its mirror image.

A :class:`FaceParams` holds every choice behind one image (shape, pose, look, light, occluder,
degradation, background), so rendering is a pure function of it. :func:`sample_params` draws one from
a numpy Generator with the hard cases in the proportions of :class:`HardCases`; the attribute flags are
then read off the drawn values by :func:`attribute_flags` (thresholds in ``FLAG_RULES``), so a flag
always means what the image shows.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from distill.data.synthface.backgrounds import BACKGROUNDS
from distill.data.synthface.shape import ASYMMETRIC, EXPRESSION, FLIP68, IDENTITY

# WFLW's six flags (SUBSET_NAMES), as decided here from the drawn values (also written to meta.json).
FLAG_RULES = {
    "pose": "|yaw| > 45 or |pitch| > 25 or |roll| > 30 (degrees)",
    "expression": "mouth_open > 0.45 or smile > 0.6 or an eye closed > 0.7 or brows_up > 0.6",
    "illumination": "hard light: side light with ambient < 0.35, low light (gain < 0.55), or a colour cast > 0.2",
    "makeup": "lipstick / eye shadow / eyeliner drawn",
    "occlusion": "an occluder hides at least one of the 68 points",
    "blur": "motion blur length >= 3 px or defocus sigma >= 1 px (at 128 px; scaled with the image)",
}


@dataclass(frozen=True)
class HardCases:
    """Shares of faces that get each hard case (independent draws)."""

    pose_tail: float = 0.20      # yaw drawn uniformly in +-75 instead of N(0, 15); half that for pitch/roll tails
    expression: float = 0.15
    illumination: float = 0.28
    makeup: float = 0.10
    occlusion: float = 0.30
    blur: float = 0.28
    noise: float = 0.15          # sensor noise (always added to low-light faces as well)
    jpeg: float = 0.10           # strong JPEG artefacts
    accessories: bool = True     # glasses, beards, hair styles (not flagged)

    @classmethod
    def none(cls) -> "HardCases":
        """Frontal-ish, neutral, well lit, unoccluded, sharp: for tests and the easy subset."""
        return cls(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, accessories=False)


@dataclass
class Look:
    skin: tuple                  # BGR 0..255 floats
    hair: tuple
    hair_style: str              # "bald" | "short" | "long"
    iris: tuple
    lips: tuple
    clothes: tuple
    beard: bool = False
    glasses: bool = False
    lipstick: tuple | None = None
    eye_shadow: tuple | None = None
    eyeliner: bool = False
    blush: float = 0.0


@dataclass
class Light:
    direction: tuple = (0.0, -0.5, -1.0)   # toward the light, camera frame (x right, y down, z away)
    ambient: float = 0.55
    diffuse: float = 0.55
    gain: float = 1.0                     # exposure; < 0.55 is low light
    cast: tuple = (1.0, 1.0, 1.0)          # BGR multipliers
    gradient: float = 0.0                  # scene light fall-off across the image, along the light's x/y


@dataclass
class Occluder:
    kind: str                    # "hand" | "mask" | "bar" | "object" | "sunglasses" | "hair"
    anchor: int                  # 68-point index it is centred on
    angle: float                 # degrees, image plane
    size: float                  # relative to the face box side
    offset: tuple                # (dx, dy) relative to the face box side
    colour: tuple
    seed: int                    # shape details


@dataclass
class Degrade:
    blur_kind: str = "none"      # "none" | "motion" | "defocus"
    blur: float = 0.0            # motion length or defocus sigma in px at 128 px
    blur_angle: float = 0.0
    noise: float = 0.0           # Gaussian sigma on 0..255
    jpeg: int = 0                # quality of a re-encode, 0 = none


@dataclass
class FaceParams:
    identity: np.ndarray         # (len(IDENTITY),) standard deviations
    expression: np.ndarray       # (len(EXPRESSION),)
    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0
    distance: float = 4.0        # camera distance in units of 150 mm (perspective strength)
    face_frac: float = 0.6       # longer side of the 98-point box / image side
    place_x: float = 0.5         # where the box sits in the free room, 0..1
    place_y: float = 0.5
    shift_x: float = 0.0         # extra sub-pixel shift (stability groups)
    shift_y: float = 0.0
    look: Look = None
    light: Light = field(default_factory=Light)
    occluder: Occluder | None = None
    degrade: Degrade = field(default_factory=Degrade)
    background: str = "gradient"
    seed: int = 0                # pixel-level randomness (textures, noise)


# ----------------------------------------------------------------------------- palettes (BGR)
SKIN = np.array([[205, 220, 245], [170, 195, 235], [130, 165, 215], [95, 130, 185], [65, 95, 145], [45, 65, 100]])
HAIR = np.array([[25, 25, 30], [30, 45, 70], [45, 75, 120], [110, 170, 215], [40, 70, 170], [170, 170, 175]])
IRIS = np.array([[30, 50, 80], [20, 30, 45], [160, 110, 60], [90, 130, 70], [50, 100, 120]])
LIPSTICK = np.array([[45, 35, 200], [50, 25, 140], [160, 110, 235], [120, 50, 130], [50, 40, 70], [60, 110, 230]])
EYE_SHADOW = np.array([[170, 90, 40], [140, 60, 120], [50, 80, 110], [35, 35, 35], [80, 140, 60], [70, 170, 210]])


_PALETTES: dict[int, list] = {}


def _mix(palette: np.ndarray, t: float) -> tuple:
    """Linear interpolation along a palette, t in [0, 1] (plain floats: this runs a few times per face)."""
    rows = _PALETTES.get(id(palette))
    if rows is None:
        rows = _PALETTES[id(palette)] = palette.astype(float).tolist()
    x = float(t) * (len(rows) - 1)
    i = min(int(x), len(rows) - 2)
    f = x - i
    a, b = rows[i], rows[i + 1]
    return (a[0] * (1 - f) + b[0] * f, a[1] * (1 - f) + b[1] * f, a[2] * (1 - f) + b[2] * f)


class _Draws:
    """The random numbers of one face, drawn from its Generator in two blocks (uniforms and standard
    normals) and handed out in order: one call per block instead of ~60 scalar calls. The blocks
    are sized for the longest path through :func:`sample_params`; unused numbers are simply dropped."""

    __slots__ = ("_u", "_z")

    def __init__(self, rng: np.random.Generator, uniforms: int = 112, normals: int = 8):
        self._u = iter(rng.random(uniforms).tolist())
        self._z = iter(rng.standard_normal(normals).tolist())

    def random(self) -> float:
        return next(self._u)

    def uniform(self, low: float, high: float) -> float:
        return low + (high - low) * next(self._u)

    def normal(self, sd: float) -> float:
        return sd * next(self._z)

    def integer(self, n: int) -> int:
        """Uniform in range(n)."""
        return min(int(next(self._u) * n), n - 1)

    def order(self, n: int) -> list[int]:
        """A random permutation of range(n) (the order of n uniforms)."""
        keys = [next(self._u) for _ in range(n)]
        return sorted(range(n), key=keys.__getitem__)


def _pick(d: _Draws, options, p) -> str:
    """One of ``options`` with probabilities ``p`` from a single uniform draw."""
    u, acc = d.random(), 0.0
    for option, q in zip(options, p):
        acc += q
        if u < acc:
            return option
    return options[-1]


def _tail(d: _Draws, p: float, sd: float, clip: float, wide: float) -> float:
    """Long-tailed angle: N(0, sd) clipped to +-clip, or with probability p uniform in +-wide."""
    wide_draw, z = d.random() < p, d.normal(sd)     # both drawn always: a fixed count per angle
    if wide_draw:
        return d.uniform(-wide, wide)
    return min(max(z, -clip), clip)


_EXPRESSION_KINDS = ("mouth_open", "smile", "closed", "wink", "brows_up")


def _expression(d: _Draws, hard: bool) -> np.ndarray:
    e = dict(mouth_open=d.uniform(0, 0.25) * (d.random() < 0.5), smile=d.uniform(0, 0.45),
             close_right=0.0, close_left=0.0, brows_up=d.uniform(0, 0.35),
             gaze_x=min(max(d.normal(0.35), -1.0), 1.0), gaze_y=min(max(d.normal(0.25), -1.0), 1.0))
    if d.random() < 0.05:  # a half blink
        e["close_right"] = e["close_left"] = d.uniform(0, 0.4)
    if hard:
        order = d.order(len(_EXPRESSION_KINDS))
        for i in order[: 1 + d.integer(2)]:
            k = _EXPRESSION_KINDS[i]
            if k == "closed":
                e["close_right"] = e["close_left"] = d.uniform(0.75, 1.0)
            elif k == "wink":
                e["close_right" if d.random() < 0.5 else "close_left"] = d.uniform(0.8, 1.0)
            elif k == "mouth_open":
                e[k] = d.uniform(0.5, 1.0)
            else:
                e[k] = d.uniform(0.65, 1.0)
    return np.array([e[k] for k in EXPRESSION], dtype=np.float64)


def _look(d: _Draws, hard: HardCases) -> Look:
    skin = _mix(SKIN, d.random())
    lips = (skin[0] * 0.72, skin[1] * 0.62, skin[2] * 0.88)
    look = Look(skin=skin, hair=_mix(HAIR, d.random()),
                hair_style=_pick(d, ("bald", "short", "long"), (0.1, 0.55, 0.35)),
                iris=_mix(IRIS, d.random()), lips=lips,
                clothes=(d.uniform(20, 235), d.uniform(20, 235), d.uniform(20, 235)))
    if hard.accessories:
        look.beard = d.random() < 0.12
        look.glasses = d.random() < 0.12
    else:
        look.hair_style = "short"
    if d.random() < hard.makeup:
        look.lipstick = _mix(LIPSTICK, d.random())
        if d.random() < 0.7:
            look.eye_shadow = _mix(EYE_SHADOW, d.random())
        look.eyeliner = d.random() < 0.6
        look.blush = d.uniform(0.1, 0.35)
    return look


_LIGHT_KINDS = ("side", "low", "cast")


def _light(d: _Draws, hard: bool) -> Light:
    light = Light(direction=(d.uniform(-0.5, 0.5), d.uniform(-0.8, -0.2), -1.0),
                  ambient=d.uniform(0.45, 0.65), diffuse=d.uniform(0.4, 0.6), gain=d.uniform(0.85, 1.1),
                  cast=(1.0 + d.uniform(-0.06, 0.06), 1.0 + d.uniform(-0.06, 0.06), 1.0 + d.uniform(-0.06, 0.06)),
                  gradient=d.uniform(0.0, 0.15))
    if hard:
        order = d.order(len(_LIGHT_KINDS))
        for i in order[: 1 + d.integer(2)]:
            k = _LIGHT_KINDS[i]
            if k == "side":
                sx = (-1.0 if d.random() < 0.5 else 1.0) * d.uniform(0.9, 1.8)
                light.direction = (sx, d.uniform(-0.6, 0.3), -d.uniform(0.2, 0.7))
                light.ambient, light.diffuse = d.uniform(0.12, 0.3), d.uniform(0.8, 1.1)
                light.gradient = d.uniform(0.3, 0.6)
            elif k == "low":
                light.gain = d.uniform(0.22, 0.5)
            else:
                light.cast = tuple(min(max(1.0 + (-1.0 if d.random() < 0.5 else 1.0) * d.uniform(0.25, 0.45), 0.4), 1.6)
                                   for _ in range(3))
    return light


OCCLUDER_KINDS = ("hand", "mask", "bar", "object", "sunglasses", "hair")
_ANCHORS = {"hand": [8, 30, 33, 37, 44, 48, 51, 54, 57, 3, 13, 5, 11], "object": list(range(68)),
            "bar": [37, 44, 27, 30, 51, 57], "mask": [30], "sunglasses": [27], "hair": [37, 44, 19, 24]}


def _occluder(d: _Draws) -> Occluder:
    kind = _pick(d, OCCLUDER_KINDS, (0.3, 0.15, 0.15, 0.2, 0.1, 0.1))
    anchors = _ANCHORS[kind]
    anchor = int(anchors[d.integer(len(anchors))])
    colour = (d.uniform(10, 245), d.uniform(10, 245), d.uniform(10, 245))
    return Occluder(kind=kind, anchor=anchor, angle=d.uniform(-60, 60), size=d.uniform(0.25, 0.5),
                    offset=(d.normal(0.05), d.normal(0.05)), colour=colour, seed=d.integer(2**31))


def sample_params(rng: np.random.Generator, hard: HardCases = HardCases(),
                  backgrounds: tuple[str, ...] = tuple(BACKGROUNDS)) -> FaceParams:
    """Draw one face. ``backgrounds``: the family names to choose from (see backgrounds.BACKGROUNDS).

    Takes exactly two blocks of numbers from ``rng`` (112 uniforms, 26 normals, whatever the path), so
    what ``rng`` draws next (the pixel randomness) starts at the same place for every face."""
    d = _Draws(rng, normals=8 + len(IDENTITY))
    identity = np.array([min(max(d.normal(1.0), -2.5), 2.5) for _ in IDENTITY])
    p = FaceParams(
        identity=identity,
        expression=_expression(d, d.random() < hard.expression),
        yaw=_tail(d, hard.pose_tail, 15.0, 40.0, 75.0),
        pitch=_tail(d, hard.pose_tail / 2, 8.0, 22.0, 40.0),
        roll=_tail(d, hard.pose_tail / 2, 8.0, 25.0, 45.0),
        distance=d.uniform(2.5, 8.0), face_frac=d.uniform(0.38, 0.68),
        place_x=d.random(), place_y=d.random(),
        look=_look(d, hard),
        light=_light(d, d.random() < hard.illumination),
        occluder=_occluder(d) if d.random() < hard.occlusion else None,
        background=str(backgrounds[d.integer(len(backgrounds))]),
        seed=d.integer(2**31),
    )
    g = p.degrade
    if d.random() < hard.blur:
        g.blur_kind = "motion" if d.random() < 0.5 else "defocus"
        g.blur = d.uniform(3.5, 9.0) if g.blur_kind == "motion" else d.uniform(1.0, 2.5)
        g.blur_angle = d.uniform(0, 180)
    if d.random() < hard.noise or p.light.gain < 0.55:
        g.noise = d.uniform(4.0, 14.0)
    if d.random() < hard.jpeg:
        g.jpeg = 15 + d.integer(35)
    return p


def attribute_flags(p: FaceParams, occluded_points: int) -> dict[str, int]:
    """WFLW's six flags read off the drawn values (``FLAG_RULES``)."""
    e = dict(zip(EXPRESSION, p.expression))
    cast = max(abs(c - 1.0) for c in p.light.cast)
    return {
        "pose": int(abs(p.yaw) > 45 or abs(p.pitch) > 25 or abs(p.roll) > 30),
        "expression": int(e["mouth_open"] > 0.45 or e["smile"] > 0.6 or max(e["close_right"], e["close_left"]) > 0.7
                          or e["brows_up"] > 0.6),
        "illumination": int(p.light.ambient < 0.35 or p.light.gain < 0.55 or cast > 0.2),
        "makeup": int(p.look.lipstick is not None or p.look.eye_shadow is not None or p.look.eyeliner),
        "occlusion": int(occluded_points > 0),
        "blur": int((p.degrade.blur_kind == "motion" and p.degrade.blur >= 3.0)
                    or (p.degrade.blur_kind == "defocus" and p.degrade.blur >= 1.0)),
    }


def mirror_params(p: FaceParams) -> FaceParams:
    """The parameters of the horizontally mirrored face: yaw, roll, gaze and placement negated, the
    asymmetric identity components negated, the eyes swapped; light, occluder and blur mirrored too.
    Background textures and noise are not mirrored (they come from the same seed)."""
    identity = p.identity.copy()
    for k in ASYMMETRIC:
        identity[IDENTITY.index(k)] *= -1.0
    e = p.expression.copy()
    r, l = EXPRESSION.index("close_right"), EXPRESSION.index("close_left")
    e[r], e[l] = p.expression[l], p.expression[r]
    e[EXPRESSION.index("gaze_x")] *= -1.0
    light = dataclasses.replace(p.light, direction=(-p.light.direction[0],) + tuple(p.light.direction[1:]))
    occ = p.occluder
    if occ is not None:
        occ = dataclasses.replace(occ, anchor=int(FLIP68[occ.anchor]), angle=-occ.angle,
                                  offset=(-occ.offset[0], occ.offset[1]))
    degrade = dataclasses.replace(p.degrade, blur_angle=180.0 - p.degrade.blur_angle)
    return dataclasses.replace(p, identity=identity, expression=e, yaw=-p.yaw, roll=-p.roll,
                               place_x=1.0 - p.place_x, shift_x=-p.shift_x, light=light, occluder=occ,
                               degrade=degrade)
