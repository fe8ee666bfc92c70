"""The shipped recipes: YAML files only, <dataset>/<name>.yaml. Installed as the package data
``distill.recipes``; `distill recipes` lists them (docs/recipes.md says how to add your own)."""
