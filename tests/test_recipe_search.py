"""Recipe names resolve through $DISTILL_RECIPES, ./recipes, then the shipped recipes; `distill recipes`
says where each one comes from."""

from __future__ import annotations

import pytest

from distill.cli import main
from distill.config import load_recipe
from distill.errors import ConfigError
from distill.recipe_search import SHIPPED, find_recipe, list_recipes, search_path


def _recipe(root, name: str, description: str):
    path = root / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'description: "{description}"\ntask: heatmap\ntrainer: {{max_steps: 7}}\n')
    return path


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    """Run from an empty working folder with no $DISTILL_RECIPES: only the shipped recipes are found."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv("DISTILL_RECIPES", raising=False)
    return work


def test_shipped_recipes_are_found_from_any_folder(elsewhere):
    assert [origin for origin, _ in search_path()] == ["shipped"]
    assert find_recipe("synthface/teacher") == SHIPPED / "synthface" / "teacher.yaml"
    assert load_recipe("synthface/teacher.yaml").name == "synthface/teacher"


def test_own_recipes_by_name_from_the_working_folder_and_the_env_path(elsewhere, tmp_path, monkeypatch):
    _recipe(elsewhere / "recipes", "mine/small", "from cwd")
    _recipe(elsewhere / "recipes", "synthface/teacher", "a local teacher")
    team = tmp_path / "team"
    _recipe(team, "mine/small", "from the team folder")
    _recipe(team, "team/big", "only the team has it")
    monkeypatch.setenv("DISTILL_RECIPES", f"{team}{__import__('os').pathsep}{tmp_path / 'missing'}")

    found = list_recipes()
    assert found["mine/small"].origin == "$DISTILL_RECIPES" and found["mine/small"].shadows == ("./recipes",)
    assert found["team/big"].origin == "$DISTILL_RECIPES"
    assert found["synthface/teacher"].origin == "./recipes" and found["synthface/teacher"].shadows == ("shipped",)
    assert found["synthface/student"].origin == "shipped" and not found["synthface/student"].shadows
    cfg = load_recipe("mine/small")
    assert cfg.name == "mine/small" and cfg.description == "from the team folder" and cfg.trainer.max_steps == 7


def test_unknown_name_lists_the_known_ones_and_the_folders_searched(elsewhere):
    with pytest.raises(ConfigError, match=r"synthface/teacher.*searched .*recipes"):
        find_recipe("synthface/nope")


def test_cli_recipes_shows_where_each_comes_from(elsewhere, capsys):
    _recipe(elsewhere / "recipes", "mine/small", "my own small run")
    assert main(["recipes"]) == 0
    rows = {line.split()[1]: line for line in capsys.readouterr().out.splitlines()
            if line.startswith("│ ") and "/" in line.split()[1]}
    assert "./recipes" in rows["mine/small"] and "my own small run" in rows["mine/small"]
    assert "shipped" in rows["synthface/student_from_teacher"]
