"""`distill data check`: a schema's flip pairs against the faces' own mirror symmetry."""

from __future__ import annotations

import pytest

from distill.cli import main
from distill.data.flip_check import check_flip
from distill.data.formats import load_samples
from distill.data.schema import SCHEMAS, LandmarkSchema


@pytest.fixture(scope="module")
def faces(synth_root):
    return load_samples("synthface", synth_root, split="train")[0]


def _swapped(base: LandmarkSchema, a: int, b: int) -> LandmarkSchema:
    """``base`` with the partners of points a and b exchanged (a wrong pair on each side)."""
    perm = list(base.flip_perm)
    pa, pb = perm[a], perm[b]
    perm[a], perm[b], perm[pa], perm[pb] = pb, pa, b, a
    return LandmarkSchema("swapped", base.num_points, tuple(perm), base.norm_pair)


def test_the_built_in_pairs_agree_with_the_faces(faces):
    assert check_flip(faces, SCHEMAS["ibug68"]).suspicious == []


def test_a_swapped_pair_is_named_with_the_partner_the_faces_vote_for(faces):
    result = check_flip(faces, _swapped(SCHEMAS["ibug68"], 36, 39))  # 36 <-> 42, 39 <-> 45: eye corners crossed
    got = {s["point"]: (s["schema_partner"], s["data_partner"]) for s in result.suspicious}
    assert got == {36: (42, 45), 39: (45, 42), 42: (36, 39), 45: (39, 36)}
    assert "point 36: the schema says 42, its reflection lands on 45" in result.summary()


def test_missing_pairs_are_found_too(faces):
    result = check_flip(faces, LandmarkSchema("noflip", 68, tuple(range(68)), (36, 45)))
    voted = {s["point"]: s["data_partner"] for s in result.suspicious}
    assert voted[0] == 16 and voted[36] == 45 and voted[48] == 54 and 27 not in voted  # the nose bridge is its own


def test_cli_exit_code_says_whether_the_pairs_hold(synth_root, tmp_path, capsys):
    assert main(["data", "check", str(synth_root / "train")]) == 0
    assert "every flip pair agrees" in capsys.readouterr().out
    schema = tmp_path / "noflip.yaml"
    schema.write_text("name: noflip\nnum_points: 68\nnormaliser: {pair: [36, 45]}\n")
    assert main(["data", "check", str(synth_root / "train"), "--schema", str(schema)]) == 1
    assert "point 0: the schema says 0, its reflection lands on 16" in capsys.readouterr().out
