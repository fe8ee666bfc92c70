"""The wheel: it carries every package and every recipe, and an install of it alone (no source tree on
the path) lists the recipes and dry-runs one.

The wheel is built offline (``--no-build-isolation``: setuptools and wheel come with the dev extra) and
installed with ``--target`` into a folder that goes first on PYTHONPATH; the test checks that the
``distill`` it runs is that copy, not the checkout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=600, **kw)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    # built from a copy: an in-tree build keeps build/lib/, where a module deleted since stays and ships
    src = out / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for name in ("distill", "recipes"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    done = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out),
                 str(src)])
    assert done.returncode == 0, done.stderr[-2000:]
    (path,) = out.glob("distill-*.whl")
    return path


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory):
    """(site folder holding the installed wheel, environment that puts it first, an empty working folder)."""
    site = tmp_path_factory.mktemp("site")
    done = _run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target", str(site),
                 str(wheel)])
    assert done.returncode == 0, done.stderr[-2000:]
    env = {**os.environ, "PYTHONPATH": str(site), "WANDB_MODE": "offline"}
    env.pop("DISTILL_RECIPES", None)
    return site, env, tmp_path_factory.mktemp("elsewhere")


def test_the_wheel_carries_every_package_the_assets_and_the_recipes(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    packages = [p.parent.relative_to(ROOT).as_posix() for p in (ROOT / "distill").rglob("__init__.py")]
    missing = [p for p in packages if f"{p}/__init__.py" not in names]
    assert not missing, f"packages missing from the wheel (add them to pyproject.toml): {missing}"
    recipes = [f"distill/recipes/{p.relative_to(ROOT / 'recipes').as_posix()}"
               for p in (ROOT / "recipes").glob("*/*.yaml")]
    assert recipes and not [r for r in recipes if r not in names]
    assert "distill/assets/mean_face_68_3d.txt" in names


def test_an_installed_wheel_lists_and_runs_the_recipes(installed):
    site, env, work = installed
    where = _run([sys.executable, "-c", "import distill; print(distill.__file__)"], cwd=work, env=env)
    assert Path(where.stdout.strip()).is_relative_to(site), where.stdout + where.stderr  # not the checkout

    listed = _run([str(site / "bin" / "distill"), "recipes"], cwd=work, env=env)
    assert listed.returncode == 0, listed.stderr
    assert "synthface/teacher" in listed.stdout and "wflw/student_from_teacher" in listed.stdout
    assert "shipped" in listed.stdout and str(ROOT / "recipes") not in listed.stdout

    dry = _run([str(site / "bin" / "distill"), "train", "synthface/teacher", "--dry-run",
                f"data.root={work / 'synthface'}", "data.synth_num=12", "data.synth_num_test=4",
                "data.synth_size=64", "model.args={num_stacks: 1, channels: 16}", "data.batch_size=4",
                f"output.root={work / 'checkpoints'}"], cwd=work, env=env)
    assert dry.returncode == 0, dry.stderr[-2000:]
    assert "dry run: loss=" in dry.stdout and (work / "synthface" / "train").is_dir()
