"""The package's import graph: no cycles between modules, and no import from a lower layer to a higher one.

Every module under speedrun/ is parsed with `ast` and every `import` and `from ... import`
statement counts: at module level, inside functions (a lazy import is still a dependency), and
inside `if TYPE_CHECKING:` blocks (no exemption: a type a lower layer names from a higher one
is still an upward dependency). `from pkg import name` is an edge to `pkg.name` where that is a
module, else to `pkg`. Only static import statements are read (no `importlib.import_module`
strings), and importing `a.b.c` is an edge to `a.b.c` alone, not to the package `a.b` that Python
also initialises on the way (a package's __init__ that imports its submodules would otherwise put
every module of the package in one cycle with it).

The layers, lowest first (README, "Layout"): a module may import its own layer and the ones below.

- `speedrun` (the package's __init__: the version), then `text` (formatters; imports nothing of
  speedrun), then `errors` (SpeedrunError; its caret rendering uses text);
- `domain`: the vocabulary every layer shares: run records, parameter names and values,
  hardware classes, the MFU and statistics definitions;
- `query` (the `--where` language), `tracking` (storage), `outputs` (files commands write;
  guards the database, so above tracking), `notebook` (log and notebook parsers);
- `training`, `recipes` (built from training's pieces);
- `analysis`, then `sweep`: a sweep optimises one of analysis's metrics and its answer is
  summarised with analysis's verdicts, so analysis sits below sweep, not above;
- `ui`, `cli`, `__main__`.

A module's private names (a leading underscore) are its own: no other module of the package imports one
(`from m import _name`) or reaches one through the module (`m._name`); a name another module uses is public.
Tests may use private names.

No exemptions (`REGISTRY_EDGES` is empty): the recipe registry's cycle ended when `Recipe` moved
into speedrun/recipes/recipe.py; an exemption added later must make a cycle, or the test fails.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "speedrun"

LAYERS: tuple[tuple[str, ...], ...] = (
    ("speedrun",),
    ("speedrun.text",),
    ("speedrun.errors",),
    ("speedrun.domain",),
    ("speedrun.query",),
    ("speedrun.tracking",),
    ("speedrun.outputs",),
    ("speedrun.notebook",),
    ("speedrun.training",),
    ("speedrun.recipes",),
    ("speedrun.analysis",),
    ("speedrun.sweep",),
    ("speedrun.ui",),
    ("speedrun.cli",),
    ("speedrun.__main__",),
)

# (importer prefix, imported module): edges left out of the cycle check (see the docstring).
REGISTRY_EDGES: tuple[tuple[str, str], ...] = ()


def _exempt(a: str, b: str) -> bool:
    return any(a.startswith(prefix) and b == target for prefix, target in REGISTRY_EDGES)


def modules(package: Path = PACKAGE) -> dict[str, tuple[Path, bool]]:
    """Every module of the package: dotted name -> (file, is a package's __init__)."""
    found = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        found[".".join(parts)] = (path, is_package)
    return found


def _known(name: str, known: dict) -> str | None:
    """`name`, or the longest prefix of it that is a module of the package (None: not ours)."""
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def _source(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The module a `from ... import` reads from, relative imports resolved."""
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def edges(known: dict[str, tuple[Path, bool]]) -> dict[tuple[str, str], int]:
    """(importer, imported) -> the line of the first such import, for imports within the package."""
    found: dict[tuple[str, str], int] = {}
    for module, (path, is_package) in known.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                source = _source(module, is_package, node)
                targets = [f"{source}.{alias.name}" if f"{source}.{alias.name}" in known else source
                           for alias in node.names]
            for target in targets:
                resolved = _known(target, known)
                if resolved is not None and resolved != module:
                    found.setdefault((module, resolved), node.lineno)
    return found


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_uses(known: dict[str, tuple[Path, bool]]) -> list[str]:
    """"module:line uses other._name" for each private name of a module used by another module."""
    found: list[str] = []
    for module, (path, is_package) in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        bound: dict[str, str] = {}  # a local name -> the module of the package it stands for
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname and alias.name in known:
                        bound[alias.asname] = alias.name
                    elif not alias.asname and alias.name.split(".")[0] in known:
                        bound[alias.name.split(".")[0]] = alias.name.split(".")[0]
            elif isinstance(node, ast.ImportFrom):
                source = _source(module, is_package, node)
                for alias in node.names:
                    if f"{source}.{alias.name}" in known:
                        bound[alias.asname or alias.name] = f"{source}.{alias.name}"
                    elif _private(alias.name) and source in known and source != module:
                        found.append(f"{module}:{node.lineno} uses {source}.{alias.name}")
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Attribute) and _private(node.attr)):
                continue
            chain, base = [], node.value
            while isinstance(base, ast.Attribute):
                chain.append(base.attr)
                base = base.value
            if isinstance(base, ast.Name) and base.id in bound:
                owner = ".".join([bound[base.id], *reversed(chain)])
                if owner in known and owner != module:
                    found.append(f"{module}:{node.lineno} uses {owner}.{node.attr}")
    return found


def layer_of(module: str) -> int | None:
    """The index of the module's layer (the longest matching prefix), None if no layer names it."""
    best, best_len = None, -1
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_len:
                best, best_len = index, len(prefix)
    return best


def components(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(component)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (a path that ends where it starts) per strongly connected component of more than one module."""
    found = []
    for component in components(graph):
        start = min(component)
        # breadth-first within the component: the shortest way from `start` back to itself
        previous: dict[str, str] = {}
        frontier = [start]
        while frontier and start not in previous:
            following = []
            for v in frontier:
                for w in sorted(graph[v] & component):
                    if w not in previous:
                        previous[w] = v
                        following.append(w)
            frontier = following
        path = [start]
        v = previous[start]
        while v != start:
            path.append(v)
            v = previous[v]
        path.append(start)
        found.append(path[::-1])
    return sorted(found)


def _graph() -> tuple[dict[str, set[str]], dict[tuple[str, str], int]]:
    known = modules()
    found = edges(known)
    graph: dict[str, set[str]] = defaultdict(set)
    for module in known:
        graph[module]
    for a, b in found:
        graph[a].add(b)
    return graph, found


def test_the_reader_finds_every_kind_of_import(tmp_path):
    """Module level, inside a function, under TYPE_CHECKING, relative, `from pkg import module`,
    `from module import name`; and a cycle through them is named."""
    files = {
        "__init__.py": "",
        "a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import b\n",
        "b.py": "import os\n\ndef f():\n    from . import c\n",
        "c.py": "import pkg.a\n",
        "sub/__init__.py": "from pkg.sub.d import thing\n",
        "sub/d.py": "from ..a import thing\nfrom pkg import sub\n",
    }
    for name, text in files.items():
        (tmp_path / "pkg" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "pkg" / name).write_text(text)
    found = edges(modules(tmp_path / "pkg"))
    assert sorted(found) == [("pkg.a", "pkg.b"), ("pkg.b", "pkg.c"), ("pkg.c", "pkg.a"), ("pkg.sub", "pkg.sub.d"),
                             ("pkg.sub.d", "pkg.a"), ("pkg.sub.d", "pkg.sub")]
    graph: dict[str, set[str]] = defaultdict(set)
    for a, b in found:
        graph[a].add(b)
    assert cycles(graph) == [["pkg.a", "pkg.b", "pkg.c", "pkg.a"], ["pkg.sub", "pkg.sub.d", "pkg.sub"]]


def test_every_module_has_a_layer():
    unplaced = [m for m in modules() if layer_of(m) is None]
    assert not unplaced, f"modules in no layer (add them to LAYERS and the README's layout): {unplaced}"


def test_no_import_cycles():
    graph, lines = _graph()
    exempted = [(a, b) for a in graph for b in graph[a] if _exempt(a, b)]
    for a, b in exempted:
        graph[a].discard(b)
    found = cycles(graph)
    described = [" -> ".join(f"{a} (line {lines[(a, b)]})" for a, b in zip(path, path[1:])) + f" -> {path[-1]}"
                 for path in found]
    assert not found, "import cycles between modules:\n" + "\n".join(described)
    for a, b in exempted:  # an exemption that no longer closes a cycle is stale
        graph[a].add(b)
    stale = [f"{a} -> {b}" for a, b in exempted if not any({a, b} <= c for c in components(graph))]
    assert not stale, f"REGISTRY_EDGES exempts edges that make no cycle any more (delete them): {stale}"


def test_no_import_from_a_lower_layer_to_a_higher_one():
    graph, lines = _graph()
    upward = sorted(
        f"{a} (layer {LAYERS[layer_of(a)][0]}, line {line}) imports {b} (layer {LAYERS[layer_of(b)][0]})"
        for (a, b), line in lines.items()
        if layer_of(a) is not None and layer_of(b) is not None and layer_of(b) > layer_of(a)
    )
    assert not upward, "upward imports:\n" + "\n".join(upward)


def test_the_reader_finds_private_names_used_across_modules(tmp_path):
    files = {
        "__init__.py": "",
        "a.py": "_hidden = 1\n__version__ = '1'\n\ndef _own():\n    return _hidden\n",
        "b.py": ("from pkg.a import _hidden\nfrom pkg import a\nimport pkg.a\nimport pkg.a as alias\n"
                 "from pkg.a import __version__\nx = a._hidden + pkg.a._own() + alias._hidden + a.__version__\n"
                 "y = a.public._attr\n"),
        "sub/__init__.py": "from ..a import _own\n",
    }
    for name, text in files.items():
        (tmp_path / "pkg" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "pkg" / name).write_text(text)
    assert sorted(private_uses(modules(tmp_path / "pkg"))) == [
        "pkg.b:1 uses pkg.a._hidden", "pkg.b:6 uses pkg.a._hidden", "pkg.b:6 uses pkg.a._hidden", "pkg.b:6 uses pkg.a._own",
        "pkg.sub:1 uses pkg.a._own",
    ]


def test_no_module_uses_another_modules_private_names():
    found = private_uses(modules())
    assert not found, "private names used across modules (make them public, or move them):\n" + "\n".join(found)
