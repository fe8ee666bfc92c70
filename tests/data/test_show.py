"""`distill data show` and draw_grid: a valid PNG of the expected size, colours that mean something."""

import cv2
import numpy as np
import pytest

from distill.cli import main
from distill.data.dataset import LandmarkDataset
from distill.data.formats import Sample, ScanReport
from distill.data.show import HIDDEN, SECOND, VISIBLE, draw_grid, point_colours, show_dataset
from distill.errors import DataError


def make_samples(folder, n):
    rng = np.random.default_rng(0)
    samples = []
    for i in range(n):
        cv2.imwrite(str(folder / f"{i}.png"), rng.integers(0, 120, size=(60, 60, 3), dtype=np.uint8))
        pts = rng.uniform(15, 45, size=(5, 2)).astype(np.float32)
        samples.append(Sample(folder / f"{i}.png", pts, np.array([1, 1, 1, 1, 0], np.float32), None, {"pose": i % 2}))
    return samples


def test_draw_grid_size_and_colours():
    images = [np.zeros((20, 20, 3), np.uint8) for _ in range(5)]
    pts = [np.array([[5.0, 5.0], [14.0, 14.0]]) for _ in range(5)]
    vis = [np.array([1, 0])] * 5
    second = [np.array([[5.0, 14.0]])] + [None] * 4
    grid = draw_grid(images, pts, vis, cols=3, points2_list=second, cell=40, gap=2)
    assert grid.shape == (2 * 40 + 2, 3 * 40 + 4, 3) and grid.dtype == np.uint8
    # tile 0: points scaled x2 (pixel-centre convention): (5, 5) -> (10.5, 10.5)
    assert tuple(grid[10, 10]) == VISIBLE or tuple(grid[11, 11]) == VISIBLE
    assert tuple(grid[29, 29]) == HIDDEN or tuple(grid[28, 28]) == HIDDEN
    assert tuple(grid[29, 10]) == SECOND or tuple(grid[28, 11]) == SECOND
    # tile 4 (row 1, col 1) has no second set
    assert not np.all(grid[42 + 28, 42 + 11] == SECOND)
    with pytest.raises(DataError):
        draw_grid([], [])


@pytest.mark.parametrize("augment", [False, True])
def test_show_dataset_writes_png_of_expected_size(tmp_path, augment):
    samples = make_samples(tmp_path, 7)
    out = show_dataset(samples, tmp_path / "grid" / "show.png", num=5, augment=augment, size=64, seed=1)
    img = cv2.imread(str(out))
    assert img is not None and img.shape == (2 * 64 + 2, 3 * 64 + 4, 3)  # 5 cells -> 3 cols x 2 rows
    for colour in point_colours(5)[:4]:  # every visible point in its own colour (the hidden fifth: a ring)
        assert (np.abs(img.astype(int) - colour) <= 2).all(axis=2).any(), colour
    assert not list((tmp_path / "grid").glob("*.tmp"))


def test_flipped_tiles_are_marked_and_wrong_flip_pairs_show(tmp_path):
    from distill.data.augment import AugmentConfig
    from distill.data.schema import SCHEMAS, LandmarkSchema

    samples = make_samples(tmp_path, 4)
    flip = AugmentConfig(flip_prob=1.0, scale=(1.0, 1.0), rotation_deg=0.0, shift=0.0, color_jitter=0.0, contrast=0.0,
                         brightness=0.0, gamma=(1.0, 1.0), blur_prob=0.0, noise_std=0.0, jpeg_prob=0.0,
                         occlusion_prob=0.0)
    none = LandmarkSchema("five_noflip", 5, (0, 1, 2, 3, 4), (0, 1))
    grids = {}
    for schema in (SCHEMAS["five"], none):
        ds = LandmarkDataset(samples, schema, 64, augment=flip)
        grids[schema.name] = cv2.imread(str(show_dataset(ds, tmp_path / f"{schema.name}.png", num=4)))
    assert not np.array_equal(grids["five"], grids["five_noflip"])  # the eye colours change sides
    plain = cv2.imread(str(show_dataset(LandmarkDataset(samples, "five", 64), tmp_path / "plain.png", num=4)))
    corner = (slice(0, 14), slice(0, 60))
    assert (grids["five"][corner] == 0).mean() > 0.3 and (plain[corner] == 0).mean() < 0.3  # the "flipped" label


def test_show_dataset_subset_and_dataset_input(tmp_path):
    samples = make_samples(tmp_path, 6)
    out = show_dataset(samples, tmp_path / "pose.png", num=16, subset="pose", size=32)
    assert cv2.imread(str(out)).shape == (2 * 32 + 2, 2 * 32 + 2, 3)  # 3 pose samples -> 2 x 2 grid
    with pytest.raises(DataError, match="subset"):
        show_dataset(samples, tmp_path / "none.png", subset="blur")
    ds = LandmarkDataset(samples, "five", 48)
    assert cv2.imread(str(show_dataset(ds, tmp_path / "ds.png", num=1))).shape == (48, 48, 3)


def test_cli_data_show(tmp_path, monkeypatch):
    samples = make_samples(tmp_path, 4)
    seen = {}

    def fake_load_samples(fmt, path, schema=None, split=None, strict=False, images_root=None):
        seen.update(fmt=fmt, path=path, schema=schema)
        return samples, ScanReport(total=len(samples))

    monkeypatch.setattr("distill.data.show.load_samples", fake_load_samples)
    out = tmp_path / "cli.png"
    assert main(["data", "show", str(tmp_path), "--out", str(out), "--num", "4", "--augment"]) == 0
    assert seen == {"fmt": "auto", "path": str(tmp_path), "schema": None}
    assert cv2.imread(str(out)).shape == (2 * 160 + 2, 2 * 160 + 2, 3)


def test_cli_data_show_says_why_nothing_loaded(tmp_path, capsys):
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((32, 32, 3), np.uint8))
    (tmp_path / "a.pts").write_text("version: 1\nn_points: 68\n{\n1 2\n")  # truncated: no closing brace
    assert main(["data", "show", str(tmp_path), "--out", str(tmp_path / "x.png"), "--format", "300w"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "skipped 1" in err and "a.pts" in err and "closing brace" in err


def test_cli_unwritable_output_is_one_line(tmp_path, monkeypatch, capsys):
    samples = make_samples(tmp_path, 2)
    monkeypatch.setattr("distill.data.show.load_samples", lambda *a, **k: (samples, ScanReport(total=len(samples))))
    blocker = tmp_path / "file"
    blocker.write_text("")
    # the output's parent is a file: an OSError, reported as one line with exit code 2 (no traceback)
    assert main(["data", "show", str(tmp_path), "--out", str(blocker / "x.png"), "--schema", "five"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("distill data: error:") and "\n" not in err
