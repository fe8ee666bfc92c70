"""Where a recipe name is looked up, and what `distill recipes` lists.

A recipe is addressed by ``<folder>/<name>`` (``synthface/teacher`` is ``synthface/teacher.yaml`` under
a recipe root). The roots, searched in this order, the first that has a name wins:

    1. each folder in $DISTILL_RECIPES (a path list, separated like $PATH)
    2. ./recipes in the working directory
    3. the recipes shipped with the package: the repository's recipes/ folder, which the wheel carries
       as the package data ``distill.recipes`` (so an installed distill has them too)

A folder is searched once: in a clone, ./recipes is the shipped folder and is listed as "shipped".
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

import distill.recipes
from distill.errors import ConfigError

SHIPPED = Path(distill.recipes.__file__).resolve().parent
ENV = "DISTILL_RECIPES"


@dataclass(frozen=True)
class RecipeFile:
    name: str                  # <folder>/<stem>
    path: Path
    origin: str                # "$DISTILL_RECIPES", "./recipes" or "shipped"
    shadows: tuple[str, ...] = field(default=())  # origins of later roots with the same name


def search_path() -> list[tuple[str, Path]]:
    """(origin, folder) of every recipe root, in search order, each folder once."""
    roots = [("$DISTILL_RECIPES", Path(p)) for p in os.environ.get(ENV, "").split(os.pathsep) if p]
    roots += [("./recipes", Path("recipes")), ("shipped", SHIPPED)]
    seen, out = set(), []
    for origin, folder in roots:
        key = folder.resolve() if folder.is_dir() else None
        if key is None or key in seen or (origin != "shipped" and key == SHIPPED):
            continue
        seen.add(key)
        out.append((origin, folder))
    return out


def list_recipes() -> dict[str, RecipeFile]:
    """Recipe name -> the file the name resolves to (the first root that has it), sorted by name."""
    found: dict[str, RecipeFile] = {}
    for origin, root in search_path():
        for p in sorted(root.glob("*/*.yaml")):
            name = f"{p.parent.name}/{p.stem}"
            if name in found:
                first = found[name]
                found[name] = RecipeFile(first.name, first.path, first.origin, first.shadows + (origin,))
            else:
                found[name] = RecipeFile(name, p, origin)
    return dict(sorted(found.items()))


def find_recipe(name: str) -> Path:
    """``synthface/teacher`` (``.yaml`` optional) -> its path; ConfigError listing the names otherwise."""
    recipes = list_recipes()
    key = name.removesuffix(".yaml").removesuffix(".yml")
    if key in recipes:
        return recipes[key].path
    roots = ", ".join(str(root) for _, root in search_path()) or "none"
    raise ConfigError(f"recipe {name!r}: no such file and no recipe of that name (known: "
                      f"{', '.join(recipes) or 'none'}; searched {roots})")


def describe(path: Path) -> str:
    """The recipe's ``description:`` line ('' when it has none or the file does not parse)."""
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return ""
    return str(raw.get("description", "")) if isinstance(raw, dict) else ""
