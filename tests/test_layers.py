"""The floors of the code run one way: each package imports only the floors below it,
and no two modules import each other, directly or round a loop; and no source file
grows past 600 lines (one job per module).

Read from the source (every import statement, also those inside functions), so a
lazy import that runs back up counts as much as one at the top of a file.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# floor of each first-party package; a package may import its own and lower floors
FLOORS = {"zh": 0, "index": 1, "prompts": 1, "rag": 2, "api": 3, "eval": 3, "cli": 4}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {
        _module_name(path): path
        for package in FLOORS
        for path in sorted((ROOT / package).rglob("*.py"))
    }


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """First-party modules that ``path`` imports (a name taken from a package resolves
    to its submodule when there is one of that name)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [
                f"{node.module}.{alias.name}"
                if f"{node.module}.{alias.name}" in modules
                else node.module
                for alias in node.names
            ]
        else:
            continue
        found.update(name for name in names if name.split(".")[0] in FLOORS)
    return found


GRAPH = {name: _imports(path, _modules()) for name, path in _modules().items()}


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_imports_only_its_own_floor_or_lower(module: str) -> None:
    floor = FLOORS[module.split(".")[0]]
    upward = sorted(
        target
        for target in GRAPH[module]
        if target.split(".")[0] != module.split(".")[0] and FLOORS[target.split(".")[0]] >= floor
    )
    assert upward == [], f"{module} imports a floor at or above its own"


def test_no_import_cycles() -> None:
    # a package's __init__ that hands on its submodules' names is left out, as it
    # imports what imports it by construction (``from rag.embed import X``)
    graph = {
        name: {t for t in targets if t in GRAPH and ROOT.joinpath(*t.split(".")).is_dir() is False}
        for name, targets in GRAPH.items()
        if not ROOT.joinpath(*name.split(".")).is_dir()
    }
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert cycles == []


MAX_LINES = 600


@pytest.mark.parametrize("module", sorted(_modules()))
def test_source_file_is_at_most_600_lines(module: str) -> None:
    lines = _modules()[module].read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_LINES, f"{module}: {lines} lines; split it along a seam"
