"""SynthFace on disk: determinism, the 300W + WFLW layouts, the sidecar, stability sets, the yardstick."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from distill.data.formats import SUBSET_NAMES, read_300w, read_pts, read_wflw, write_pts
from distill.data.synthface import generate
from distill.data.synthface.yardstick import mean_shape_nme

RECORD_KEYS = {"image", "visibility", "visibility98", "attributes", "yaw", "pitch", "roll", "mask", "group", "frame",
               "split"}


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def small_set(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "set"
    return generate(out, num=8, seed=3, size=64, workers=1, num_test=3, stability=2, progress=False)


def test_same_seed_same_bytes_whatever_the_workers(tmp_path, small_set):
    again = generate(tmp_path / "w2", num=8, seed=3, size=64, workers=2, num_test=3, stability=2, progress=False)
    a, b = files(small_set), files(again)
    assert sorted(a) == sorted(b)
    assert not [name for name in a if a[name] != b[name]]
    assert not list(small_set.rglob("*.tmp"))                     # atomic writes leave no temp files
    other = generate(tmp_path / "s4", num=8, seed=4, size=64, workers=1, num_test=3, stability=0, progress=False)
    c = files(other)
    assert c["train/000000.pts"] != a["train/000000.pts"]
    assert c["train/000000.jpg"] != a["train/000000.jpg"]


def test_a_face_does_not_depend_on_the_batch_it_is_rendered_in(tmp_path, small_set, monkeypatch):
    from distill.data.synthface import writer

    monkeypatch.setattr(writer, "CHUNK", 3)          # other batches: faces posed with other neighbours
    again = generate(tmp_path / "c3", num=8, seed=3, size=64, workers=1, num_test=3, stability=2, progress=False)
    a, b = files(small_set), files(again)
    assert sorted(a) == sorted(b)
    assert not [name for name in a if a[name] != b[name]]
    longer = files(generate(tmp_path / "n20", num=20, seed=3, size=64, workers=1, num_test=3, progress=False))
    for name in ("train/000000.jpg", "train/000007.pts", "masks/train/000005.png"):
        assert longer[name] == a[name]


def test_layout_loads_through_the_300w_and_wflw_readers(small_set):
    records = [json.loads(line) for line in (small_set / "annotations.jsonl").read_text().splitlines()]
    assert [r["split"] for r in records].count("train") == 8 and [r["split"] for r in records].count("test") == 3
    for r in records:
        assert set(r) - {"stability_kind"} == RECORD_KEYS
        assert len(r["visibility"]) == 68 and len(r["visibility98"]) == 98 and set(r["attributes"]) == set(SUBSET_NAMES)
        assert (small_set / r["image"]).is_file() and (small_set / r["image"]).with_suffix(".pts").is_file()
        mask = cv2.imread(str(small_set / r["mask"]), cv2.IMREAD_UNCHANGED)
        assert mask.shape == (64, 64) and mask.max() == 255 and mask.min() == 0

    train = sorted(read_300w(small_set / "train"), key=lambda s: str(s.image_path))
    assert len(train) == 8
    by_image = {r["image"]: r for r in records}
    for s in train:
        rel = f"train/{Path(s.image_path).name}"
        np.testing.assert_array_equal(s.points, read_pts(small_set / rel.replace(Path(rel).suffix, ".pts")))
        np.testing.assert_array_equal(s.visibility, by_image[rel]["visibility"])   # sidecar merged
        assert s.attributes["yaw"] == by_image[rel]["yaw"]

    for split, n in (("train", 8), ("test", 3)):
        lines = (small_set / "wflw" / f"list_98pt_{split}.txt").read_text().splitlines()
        assert len(lines) == n and all(len(line.split()) == 207 for line in lines)
        samples = read_wflw(small_set / "wflw" / f"list_98pt_{split}.txt", images_root=small_set)
        assert len(samples) == n
        for line, s in zip(lines, samples):
            tokens = line.split()
            p68 = read_pts(small_set / Path(tokens[-1]).with_suffix(".pts"))
            # the 98 share the 68's lips, nose and even jaw points (interpolation in 3D before projection)
            np.testing.assert_allclose(s.points[76:96], p68[48:68], atol=1e-4)
            np.testing.assert_allclose(s.points[51:60], p68[27:36], atol=1e-4)
            np.testing.assert_allclose(s.points[0:33:2], p68[0:17], atol=1e-4)
            x0, y0, x1, y1 = (int(t) for t in tokens[196:200])
            assert x0 <= s.points[:, 0].min() and x1 >= s.points[:, 0].max()
            assert y0 <= s.points[:, 1].min() and y1 >= s.points[:, 1].max()
            assert [s.attributes[f] for f in SUBSET_NAMES] == [int(t) for t in tokens[200:206]]


def test_stability_groups(small_set):
    records = [json.loads(line) for line in (small_set / "annotations.jsonl").read_text().splitlines()]
    stab = [r for r in records if r["split"] == "stability"]
    static = [r for r in stab if r["stability_kind"] == "static"]
    video = [r for r in stab if r["stability_kind"] == "video"]
    assert len(static) == 2 and len(video) == 16
    assert [r["frame"] for r in video] == list(range(16)) and len({r["group"] for r in video}) == 1
    # a static group: same face and pose, other background, moved by a sub-pixel shift only
    a, b = (read_pts(small_set / Path(r["image"]).with_suffix(".pts")) for r in static)
    shift = b - a
    assert np.abs(shift - shift.mean(axis=0)).max() < 1e-3 and 0 < np.abs(shift.mean(axis=0)).max() < 1.0
    ia, ib = (cv2.imread(str(small_set / r["image"])) for r in static)
    assert np.abs(ia.astype(int) - ib.astype(int)).mean() > 2          # background and light differ
    # a video: the pose drifts slowly (no jump between frames)
    yaws = np.array([r["yaw"] for r in video])
    assert np.abs(np.diff(yaws)).max() < 6 and np.ptp(yaws) > 1
    meta = json.loads((small_set / "meta.json").read_text())
    assert meta["seed"] == 3 and meta["stability"]["renders_per_static_group"] == 2
    assert set(meta["flag_rules"]) == set(SUBSET_NAMES)


def test_mean_shape_yardstick_on_a_hand_made_set(tmp_path):
    rng = np.random.default_rng(0)
    shape = rng.uniform(0, 1, (68, 2))
    shape[36], shape[45] = (0.2, 0.4), (0.8, 0.4)
    lines = []
    for split, n in (("train", 4), ("test", 3)):
        (tmp_path / split).mkdir()
        for i in range(n):
            pts = shape * rng.uniform(40, 80) + rng.uniform(0, 20, 2)      # the same shape in another box
            if split == "test" and i == 2:
                pts = pts.copy()
                pts[0] += (6.0, 0.0)                                       # one point off by 6 px
            write_pts(tmp_path / split / f"{i:06d}.pts", pts)
            flags = {f: int(split == "test" and i == 2 and f == "pose") for f in SUBSET_NAMES}
            lines.append(json.dumps({"image": f"{split}/{i:06d}.png", "attributes": flags, "split": split}))
    (tmp_path / "annotations.jsonl").write_text("\n".join(lines) + "\n")
    res = mean_shape_nme(tmp_path)
    assert res["easy"]["count"] == 2 and res["easy"]["nme"] < 1e-5
    assert res["pose"]["count"] == 1 and res["pose"]["nme"] > 1e-3
    assert res["all"]["nme"] == pytest.approx(res["pose"]["nme"] / 3, rel=1e-3)


def test_generated_set_yardstick_runs(small_set):
    res = mean_shape_nme(small_set)
    assert res["all"]["count"] == 3 and 0.0 < res["all"]["nme"] < 1.0


def test_cli_data_synth(tmp_path):
    from distill.cli import main

    assert main(["data", "synth", "--out", str(tmp_path / "c"), "--num", "3", "--num-test", "1", "--size", "64",
                 "--workers", "1"]) == 0
    assert len(list((tmp_path / "c" / "train").glob("*.pts"))) == 3
    assert main(["data", "synth", "--out", str(tmp_path / "d"), "--num", "-1"]) == 2


def test_fast_writers_match_the_library_formats(tmp_path):
    from distill.data.synthface.numtext import pts_bytes
    from distill.data.synthface.writer import png_gray

    rng = np.random.default_rng(0)
    for k in range(20):
        pts = rng.uniform(-3, 300, (68, 2)).astype(np.float32)
        pts[0] = (0.0, 1e-3 * k)
        write_pts(tmp_path / "a.pts", pts)
        assert pts_bytes(pts) == (tmp_path / "a.pts").read_bytes()          # the same bytes as write_pts
    mask = rng.integers(0, 256, (37, 53)).astype(np.uint8)
    (tmp_path / "m.png").write_bytes(png_gray(mask))
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "m.png"), cv2.IMREAD_UNCHANGED), mask)


def test_batched_pts_text_matches_write_pts(tmp_path):
    """The exact shortest-repr path of pts_bytes_many (values in [1, 10^4)) and its repr fallback."""
    from distill.data.synthface.numtext import pts_bytes_many

    rng = np.random.default_rng(7)
    sets = [rng.uniform(1, 130, (68, 2)), rng.uniform(1, 9998, (68, 2)),
            np.round(rng.uniform(1, 200, (68, 2)) * 8) / 8, np.round(rng.uniform(1, 200, (68, 2)) * 100) / 100,
            rng.integers(1, 300, (68, 2)).astype(float), rng.uniform(-2, 3, (68, 2)), np.zeros((0, 2))]
    sets += [rng.uniform(1, 130, (68, 2)) for _ in range(200)]
    sets = [p.astype(np.float32) for p in sets]
    expected = []
    for p in sets:
        write_pts(tmp_path / "a.pts", p)
        expected.append((tmp_path / "a.pts").read_bytes())
    assert pts_bytes_many(sets[:7]) == expected[:7]
    assert pts_bytes_many(sets[7:]) == expected[7:]                      # all on the fast path
    for p, e in zip(sets[:6], expected):
        assert pts_bytes_many([p]) == [e]


def test_a_failed_generate_leaves_nothing_behind(tmp_path, monkeypatch):
    from distill.data.synthface import writer

    real = writer.render_chunk

    def failing(setup, jobs):
        if any(job.index == 2 for job in jobs):
            raise RuntimeError("boom")
        return real(setup, jobs)

    monkeypatch.setattr(writer, "render_chunk", failing)
    with pytest.raises(RuntimeError, match="boom"):
        generate(tmp_path / "set", num=4, seed=0, size=64, workers=1, num_test=1, progress=False)
    assert list(tmp_path.iterdir()) == []        # no half-written set and no staging folder


def _dead_pid() -> int:
    import subprocess

    done = subprocess.Popen(["true"])
    done.wait()
    return done.pid


def test_a_used_folder_is_refused_and_overwrite_replaces_it_whole(tmp_path):
    from distill.errors import DataError

    out = generate(tmp_path / "set", num=4, seed=0, size=64, workers=1, num_test=1, stability=2, progress=False)
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    with pytest.raises(DataError, match="not empty; pass overwrite=True"):
        generate(out, num=4, seed=1, size=64, workers=1, num_test=1, progress=False)
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before  # refused: untouched
    generate(out, num=4, seed=1, size=64, workers=1, num_test=1, progress=False, overwrite=True)
    assert not (out / "stability").exists()  # the old seed's stability set went with it
    assert json.loads((out / "meta.json").read_text())["seed"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]  # no old copy or staging folder left


def test_a_killed_generate_s_staging_folder_is_removed_by_the_next(tmp_path):
    stale = tmp_path / f".set.{_dead_pid()}.tmp"
    (stale / "train").mkdir(parents=True)
    (stale / "train" / "000000.png").write_bytes(b"half a set")
    generate(tmp_path / "set", num=2, seed=0, size=64, workers=1, num_test=1, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]
