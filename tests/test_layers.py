"""No import cycle between any two files of `gateway/`.

`lint-imports` (the contract in pyproject.toml, run by `make lint`) checks the layers
between packages; this test checks files. It reads every module with `ast` and counts
every `gateway.*` import — at module level, inside functions, and under
`if TYPE_CHECKING:` — because each one is a dependency a reader has to follow, and a
cycle of them means neither file can be understood (or tested) without the other.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "gateway"

#: Cycles known and accepted for now, each as the set of its modules. Keep it empty: a
#: cycle that another branch still has goes here by name, with the lead emptying it at
#: merge — never weaken the search instead.
ALLOWED_CYCLES: frozenset[frozenset[str]] = frozenset()


def modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _imported(node: ast.AST, module: str, is_package: bool) -> Iterator[str]:
    """The dotted names an import statement asks for (a module, or a name in a module)."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
        if node.level:
            base = module.split(".") if is_package else module.split(".")[:-1]
            base = base[: len(base) - (node.level - 1)]
            origin = ".".join([*base, node.module] if node.module else base)
        else:
            origin = node.module or ""
        for alias in node.names:
            yield f"{origin}.{alias.name}"  # `from a import b`: the module a.b, or a itself
            yield origin


def import_graph() -> dict[str, set[str]]:
    known = modules()
    graph: dict[str, set[str]] = {name: set() for name in known}
    for name, path in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            for target in _imported(node, name, path.name == "__init__.py"):
                while target and target not in known:  # a name inside a module
                    target = target.rpartition(".")[0]
                if target and target != name and target.startswith("gateway"):
                    graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_graph_sees_every_kind_of_import() -> None:
    graph = import_graph()
    assert "gateway.services" in graph["gateway.signals.views"]  # module level
    assert "gateway.bootstrap" in graph["gateway.cli"]  # inside a function
    assert "gateway.policy.active" in graph["gateway.services"]  # under TYPE_CHECKING


def test_the_cycle_finder_finds_cycles() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [["a", "b", "c"]]


def test_no_import_cycle_between_files() -> None:
    found = [c for c in cycles(import_graph()) if frozenset(c) not in ALLOWED_CYCLES]
    assert found == [], "import cycles between files: " + "; ".join(" <-> ".join(c) for c in found)


def test_the_allow_list_names_only_cycles_that_exist() -> None:
    present = {frozenset(c) for c in cycles(import_graph())}
    assert present >= ALLOWED_CYCLES, "remove fixed cycles from ALLOWED_CYCLES"
