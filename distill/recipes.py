"""The shipped recipes: ``recipes/<dataset>/<name>.yaml`` beside the package, addressed by
``<dataset>/<name>`` (e.g. ``synthface/teacher``). `distill recipes` lists them with the one-line
``description:`` each carries.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from distill.errors import ConfigError

# The repository's recipes/ folder (the package is installed editable, so it sits beside distill/).
RECIPES_DIR = Path(__file__).resolve().parent.parent / "recipes"


def list_recipes(root: Path = RECIPES_DIR) -> dict[str, Path]:
    """Shipped recipe name -> YAML path, sorted by name."""
    if not root.is_dir():
        return {}
    return {f"{p.parent.relative_to(root).as_posix()}/{p.stem}": p for p in sorted(root.glob("*/*.yaml"))}


def find_recipe(name: str, root: Path = RECIPES_DIR) -> Path:
    """``synthface/teacher`` (``.yaml`` optional) -> its path; ConfigError listing the names otherwise."""
    recipes = list_recipes(root)
    key = name.removesuffix(".yaml").removesuffix(".yml")
    if key in recipes:
        return recipes[key]
    raise ConfigError(f"recipe {name!r}: no such file and not a shipped recipe "
                      f"(shipped: {', '.join(recipes) or 'none found in ' + str(root)})")


def describe(path: Path) -> str:
    """The recipe's ``description:`` line ('' when it has none or the file does not parse)."""
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return ""
    return str(raw.get("description", "")) if isinstance(raw, dict) else ""
