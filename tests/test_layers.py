"""The package's import graph, read from the source (function-local imports included): no cycle, no
import upward in the layer order, no module reaching for another module's ``_private`` name.

    python tests/test_layers.py     prints the layers, their modules and the imports between layers
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "distill"

# Bottom to top; a module may import its own layer and the ones below. The first matching prefix decides.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("errors, io", ("distill", "distill.errors", "distill.io", "distill.recipes")),
    ("data", ("distill.data",)),
    ("models, decode, losses, metrics, checkpoint, config",
     ("distill.models", "distill.decode", "distill.losses", "distill.metrics", "distill.checkpoint", "distill.config",
      "distill.config_docs", "distill.recipe_search")),
    ("training", ("distill.training",)),
    ("deploy", ("distill.deploy",)),
    ("evaluate", ("distill.evaluate",)),
    ("study", ("distill.study",)),
    ("cli", ("distill.cli",)),
]


def module_files(package: Path) -> dict[str, Path]:
    """distill.x.y -> its file (a package is its __init__.py)."""
    out = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    # the shipped recipes: the repository's recipes/ folder, installed as the data package distill.recipes
    recipes = package.parent / "recipes" / "__init__.py"
    if recipes.is_file():
        out["distill.recipes"] = recipes
    return out


def layer_of(module: str) -> int:
    best = None
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and (best is None or len(p) > len(best[1])):
                best = (i, p)
    if best is None:
        raise AssertionError(f"{module}: in no layer of tests/test_layers.py (add it to LAYERS)")
    return best[0]


def imports(module: str, path: Path, known: set[str]):
    """(target module, imported names, line) for every import in the file, and the aliases bound to modules."""
    tree = ast.parse(path.read_text(), str(path))
    is_package = path.name == "__init__.py"
    found, aliases = [], {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "distill":
                    found.append((a.name, [], node.lineno))
                    if a.asname:
                        aliases[a.asname] = a.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                pkg = module.split(".") if is_package else module.split(".")[:-1]
                pkg = pkg[: len(pkg) - (node.level - 1)]
                base = ".".join(pkg + ([base] if base else []))
            if base.split(".")[0] != "distill":
                continue
            plain = []
            for a in node.names:
                sub = f"{base}.{a.name}"
                if sub in known:  # `from distill.data import pose`: the module itself
                    found.append((sub, [], node.lineno))
                    aliases[a.asname or a.name] = sub
                else:
                    plain.append(a.name)
            if plain:
                found.append((base, plain, node.lineno))
    return tree, found, aliases


def graph(package: Path = PACKAGE):
    files = module_files(package)
    known = set(files)
    edges, problems = defaultdict(set), []
    for module, path in files.items():
        tree, found, aliases = imports(module, path, known)
        where = path.relative_to(package.parent)
        for target, names, line in found:
            if target not in known:
                problems.append(f"{where}:{line}: imports {target}, which is not a module of the package")
                continue
            if target != module:
                edges[module].add(target)
            if layer_of(target) > layer_of(module):
                problems.append(f"{where}:{line}: {module} ({LAYERS[layer_of(module)][0]}) imports {target} "
                                f"({LAYERS[layer_of(target)][0]}), a layer above it")
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            if private and target != module:
                problems.append(f"{where}:{line}: imports the private {', '.join(private)} of {target}")
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                    and node.attr.startswith("_") and not node.attr.startswith("__")
                    and aliases[node.value.id] != module):
                problems.append(f"{where}:{node.lineno}: uses the private {node.attr} of {aliases[node.value.id]}")
    return files, edges, problems


def cycles(edges) -> list[list[str]]:
    """Every strongly connected component with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_every_module_sits_in_a_layer_and_imports_nothing_above_it_nor_anything_private():
    _, _, problems = graph()
    assert not problems, "\n".join(problems)


def test_the_import_graph_has_no_cycle():
    _, edges, _ = graph()
    found = cycles(edges)
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def test_the_checker_sees_what_it_must_refuse(tmp_path):
    # the three rules on a small package laid out like distill: a cycle, an upward and a private import
    fake = {"__init__.py": "", "errors.py": "", "cli.py": "", "data/__init__.py": "",
            "data/a.py": "from distill.data import b\n",
            "data/b.py": "def f():\n    from distill.data.a import _helper\n    import distill.cli\n"}
    for name, text in fake.items():
        (tmp_path / "distill" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "distill" / name).write_text(text)
    _, edges, problems = graph(tmp_path / "distill")
    assert cycles(edges) == [["distill.data.a", "distill.data.b"]]
    assert len(problems) == 2
    assert "private _helper of distill.data.a" in problems[0] or "private _helper of distill.data.a" in problems[1]
    assert any("imports distill.cli (cli), a layer above it" in p for p in problems)


def report() -> str:
    files, edges, problems = graph()
    by_layer = defaultdict(list)
    for m in files:
        by_layer[layer_of(m)].append(m)
    lines = []
    for i, (name, _) in enumerate(LAYERS):
        down = sorted({LAYERS[layer_of(t)][0] for m in by_layer[i] for t in edges.get(m, ()) if layer_of(t) < i})
        lines.append(f"{i} {name}: {len(by_layer[i])} modules; imports from: {', '.join(down) or '-'}")
    n = sum(len(v) for v in edges.values())
    lines.append(f"{len(files)} modules, {n} imports between them, {len(cycles(edges))} cycles, "
                 f"{len(problems)} upward or private imports")
    return "\n".join(lines + problems)


if __name__ == "__main__":
    print(report())
