"""Files in and out: atomic writes, and the image files the library reads and writes."""

from pathlib import Path

import numpy as np
import pytest

from distill.errors import DataError
from distill.io import IMAGE_SUFFIXES, atomic_write_json, atomic_write_text, read_image, write_image


def test_atomic_write_replaces_whole_and_leaves_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "deep" / "out.txt"
    atomic_write_text(path, "first")
    atomic_write_json(path, {"b": 1, "a": [1, 2]})
    assert path.read_text().startswith('{\n  "a"') and sorted(p.name for p in path.parent.iterdir()) == ["out.txt"]

    def fail(self, target):
        raise OSError("disk full")

    monkeypatch.setattr(Path, "replace", fail)  # the write dies before the rename
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(path, "second")
    assert '"b": 1' in path.read_text() and sorted(p.name for p in path.parent.iterdir()) == ["out.txt"]


@pytest.mark.parametrize("suffix", IMAGE_SUFFIXES)
def test_every_image_suffix_is_one_opencv_writes_and_reads(tmp_path, suffix):
    yy, xx = np.mgrid[0:12, 0:16]
    image = np.stack([xx * 10, yy * 12, xx + yy], -1).astype(np.uint8)  # (12, 16, 3) smooth BGR
    if suffix == ".pgm":  # the gray format
        image = image[..., 0]
    back = read_image(write_image(tmp_path / f"a{suffix}", image))
    assert back.shape == (12, 16, 3) and back.dtype == np.uint8
    want = np.repeat(image[..., None], 3, -1) if image.ndim == 2 else image
    lossy = suffix in (".jpg", ".jpeg", ".webp")
    assert np.abs(back.astype(int) - want).mean() <= (6 if lossy else 0)


def test_gray_images_come_back_as_three_channels(tmp_path):
    path = write_image(tmp_path / "g.png", np.full((5, 7), 80, np.uint8))
    assert read_image(path).shape == (5, 7, 3)


def test_bad_image_files_are_one_data_error_naming_the_file(tmp_path):
    with pytest.raises(DataError, match="none.png: image not found"):
        read_image(tmp_path / "none.png")
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(DataError, match="text.png: not a PNG"):
        read_image(tmp_path / "text.png")
    with pytest.raises(DataError, match="suffix '.xyz'"):
        write_image(tmp_path / "out.xyz", np.zeros((4, 4, 3), np.uint8))
    assert not list(tmp_path.glob("*out*"))


def test_stale_temp_files_of_dead_processes_go_and_live_ones_stay(tmp_path):
    import os
    import subprocess

    from distill.io import remove_stale_temps, temp_path

    done = subprocess.Popen(["true"])
    done.wait()
    dead = [tmp_path / f".last.{done.pid}.tmp.ckpt", tmp_path / f".q.int8.{done.pid}.tmp"]
    (dead[1]).mkdir()
    (dead[1] / "q.onnx").write_bytes(b"x")
    dead[0].write_bytes(b"x")
    live = temp_path(tmp_path / "best.ckpt")  # this process's own
    live.write_bytes(b"x")
    kept = [tmp_path / "last.ckpt", tmp_path / ".hidden.txt", tmp_path / f".notes.{done.pid}.txt"]
    for p in kept:
        p.write_bytes(b"x")
    assert sorted(remove_stale_temps(tmp_path)) == sorted(dead)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in [live, *kept])
    assert live.name == f".best.{os.getpid()}.tmp.ckpt"
