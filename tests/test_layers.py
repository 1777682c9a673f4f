"""The package's architecture as a rule that can fail: imports run one way, from higher layers
to lower ones, and no module imports itself back through others (imports inside functions
count: they close a circle just as well, only later)."""

from __future__ import annotations

import ast
from pathlib import Path

import dltips

SRC = Path(dltips.__file__).resolve().parent

# Lowest first. A module may import its own layer or a lower one, never a higher one.
LAYERS = (
    ("dltips.checks", "dltips.config.errors"),
    ("dltips.data", "dltips.nn", "dltips.optim", "dltips.early_stopping"),
    ("dltips.config",),
    ("dltips.run",),
    ("dltips.observe",),
    ("dltips.engine",),
    ("dltips.train",),
    ("dltips.launch",),
)


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(name: str) -> int:
    for rank, prefixes in enumerate(LAYERS):
        if any(name == p or name.startswith(p + ".") for p in prefixes):
            return rank
    raise AssertionError(f"{name} is in no layer: add it to LAYERS")


def run_as_program(node: ast.AST) -> bool:
    """`if __name__ == "__main__":` runs only when the file is the program, never on import."""
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and isinstance(test, ast.Compare) and getattr(test.left, "id", "") == "__name__"


def imports(path: Path) -> set[str]:
    """Every dltips module the file imports, anywhere in it."""
    found, todo = set(), [ast.parse(path.read_text())]
    while todo:
        node = todo.pop()
        if run_as_program(node):
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {f"{node.module}.{a.name}" for a in node.names} | {node.module}
        todo.extend(ast.iter_child_nodes(node))
    return {name for name in found if name.split(".")[0] == "dltips"}


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in SRC.rglob("*.py")}
    # `from dltips.run import checkpoint` names a module; `from dltips.run.report import read` a function.
    return {name: {m for m in imports(path) if m in modules and m != name} for name, path in modules.items()}


def test_imports_run_from_higher_layers_to_lower_ones():
    upward = [f"{a} -> {b}" for a, targets in graph().items() for b in targets if layer(b) > layer(a)]
    assert upward == []


def test_no_import_circles():
    edges = graph()
    # A package's __init__ re-exporting its modules is not a circle through them.
    edges = {a: {b for b in bs if not a.startswith(b + ".")} for a, bs in edges.items()}
    circles, state = [], {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(edges[node]):
            if state.get(nxt) == "open":
                circles.append(" -> ".join(path[path.index(nxt) :] + [nxt]))
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for start in sorted(edges):
        if start not in state:
            visit(start, [start])
    assert circles == []


def test_the_lecture_is_not_installed():
    assert not (SRC / "lecture").exists()
