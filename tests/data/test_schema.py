from pathlib import Path

import numpy as np
import pytest

from distill.data import SCHEMAS, get_schema, load_schema
from distill.data.schema import validate_flip_perm
from distill.errors import DataError

MEAN_FACE = Path(__file__).resolve().parents[2] / "distill" / "assets" / "mean_face_68_3d.txt"


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_flip_perm_is_an_involution(name):
    s = SCHEMAS[name]
    perm = np.array(s.flip_perm)
    assert len(perm) == s.num_points
    assert sorted(perm.tolist()) == list(range(s.num_points))
    assert (perm[perm] == np.arange(s.num_points)).all()


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_flip_swaps_the_five_point_sides_and_the_normaliser_pair(name):
    """Left eye <-> right eye and left <-> right mouth corner; the nose stays."""
    s = SCHEMAS[name]
    perm = s.flip_perm
    left_eye, right_eye, nose, mouth_l, mouth_r = s.five_point
    assert sorted(perm[i] for i in left_eye) == sorted(right_eye)
    assert sorted(perm[i] for i in right_eye) == sorted(left_eye)
    assert sorted(perm[i] for i in nose) == sorted(nose)
    assert sorted(perm[i] for i in mouth_l) == sorted(mouth_r)
    if s.norm_pair is not None:
        a, b = s.norm_pair
        assert perm[a] == b and perm[b] == a


@pytest.mark.parametrize("name", ["ibug68", "wflw98"])
def test_flip_maps_each_right_group_onto_its_left_group(name):
    s = SCHEMAS[name]
    sides = [g[len("right_"):] for g in s.groups if g.startswith("right_")]
    assert {"eye", "brow"} <= set(sides)
    for part in sides:
        right, left = s.groups[f"right_{part}"], s.groups[f"left_{part}"]
        assert sorted(s.flip_perm[i] for i in right) == sorted(left), part
    for g, idx in s.groups.items():  # central groups map onto themselves
        if not g.startswith(("right_", "left_")):
            assert sorted(s.flip_perm[i] for i in idx) == sorted(idx), g


def test_ibug68_flip_on_the_mirrored_mean_face():
    """Mirror the frontal mean face, permute: every point lands back on its original."""
    face = np.loadtxt(MEAN_FACE, comments="#")[:, :2]  # (68, 2) frontal projection
    assert face.shape == (68, 2)
    s = SCHEMAS["ibug68"]
    mirrored = face.copy()
    mirrored[:, 0] = 2 * face[:, 0].mean() - face[:, 0]
    flipped = mirrored[list(s.flip_perm)]
    iod = np.linalg.norm(face[36] - face[45])
    err = np.linalg.norm(flipped - face, axis=1) / iod
    assert err.max() < 0.05  # the mean face is symmetric to ~3% of the inter-ocular distance
    # and the eyes really swap: the mirrored right eye sits on the left eye
    right, left = list(s.groups["right_eye"]), list(s.groups["left_eye"])
    assert np.linalg.norm(mirrored[right].mean(0) - face[left].mean(0)) / iod < 0.05
    # a wrong permutation (identity) would be far off
    assert (np.linalg.norm(mirrored - face, axis=1) / iod).max() > 0.5


def test_validate_flip_perm_messages():
    assert validate_flip_perm([1, 0, 2], 3) == ""
    assert "involution" in validate_flip_perm([1, 2, 0], 3)
    assert "out of range" in validate_flip_perm([0, 5, 2], 3)
    assert "entries" in validate_flip_perm([0, 1], 3)


def test_schemas_are_hashable():
    assert len({SCHEMAS["ibug68"], SCHEMAS["ibug68"], SCHEMAS["wflw98"]}) == 2


GOOD = """\
name: my7
num_points: 7
flip_pairs: [[0, 1], [2, 3]]
normaliser: {pair: [0, 1]}
groups: {eyes: [0, 1]}
five_point: [[0], [1], [4], [2], [3]]
"""


def test_custom_schema_yaml_loads(tmp_path):
    path = tmp_path / "my7.yaml"
    path.write_text(GOOD)
    s = get_schema(str(path))
    assert s.name == "my7" and s.num_points == 7
    assert s.flip_perm == (1, 0, 3, 2, 4, 5, 6)
    assert s.norm_pair == (0, 1)
    assert s.groups == {"eyes": (0, 1)}
    five = s.to_five(np.arange(14, dtype=np.float32).reshape(7, 2))
    assert five[2].tolist() == [8.0, 9.0]


@pytest.mark.parametrize("text, key", [
    ("name: a\nnum_points: 3\nflip_perm: [1, 2, 0]\nnormaliser: {pair: [0, 1]}\n", "flip_perm"),  # not an involution
    ("name: a\nnum_points: 3\nflip_pairs: [[0, 3]]\nnormaliser: {pair: [0, 1]}\n", "flip_pairs[0]"),  # out of range
    ("name: a\nnum_points: 3\nflip_perm: [0, 1, 7]\nnormaliser: {pair: [0, 1]}\n", "flip_perm"),  # out of range
    ("name: a\nnum_points: 3\nnormaliser: {pair: [0, 1]}\ncolour: red\n", "colour"),  # unknown key
    ("name: a\nnum_points: 3\nnormaliser: {pair: [0, 9]}\n", "normaliser.pair"),
    ("name: a\nnum_points: 3\nnormaliser: {pair: [1, 1]}\n", "normaliser.pair"),  # zero normaliser
    ("name: a\nnum_points: 3\nnormaliser: {pair: [0, 1]}\ngroups: [0, 1]\n", "groups"),
    ("name: a\nnum_points: 3\nnormaliser: {pair: [0, 1]}\nfive_point: [[0], [1], [], [2], [2]]\n", "five_point"),
    ("name: a\nnum_points: 0\nnormaliser: {pair: [0, 1]}\n", "num_points"),
    ("name: a\nnormaliser: {pair: [0, 1]}\n", "num_points"),  # missing
])
def test_bad_custom_schema_names_file_and_key(tmp_path, text, key):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(DataError) as e:
        load_schema(path)
    assert str(path) in str(e.value) and f"'{key}'" in str(e.value)


def test_unknown_schema_name():
    with pytest.raises(DataError, match="ibug68"):
        get_schema("ibug67")
