"""The package's shape: no import cycle, layers that import only downwards, modules of a size a
reader can hold. Imports are read from the source (lazy and type-checking ones included), so a
cycle hidden inside a function still fails here."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "src"
PACKAGE = ROOT / "cdvkit"


def modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def imports_of(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The cdvkit modules ``name`` imports; ``from pkg import sub`` counts as importing the
    submodule only, so a package importing its own modules is no cycle."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            subs = [f"{module}.{a.name}" for a in node.names if f"{module}.{a.name}" in known]
            found.update(subs or ([module] if module in known else []))
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in known)
    found.discard(name)
    return found


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports_of(name, path, known) for name, path in known.items()}


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in g[v]:
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

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def reachable(g: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for w in g[todo.pop()]:
            if w not in seen:
                seen.add(w)
                todo.append(w)
    return seen


def test_no_import_cycle() -> None:
    assert cycles(graph()) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_lower_layers_never_import_upper_ones() -> None:
    g = graph()
    upper = ("cdvkit.executors", "cdvkit.cli", "cdvkit.runs")
    for low in ("cdvkit.data", "cdvkit.models", "cdvkit.store", "cdvkit.search"):
        for name in (n for n in g if n == low or n.startswith(low + ".")):
            bad = {m for m in reachable(g, name) if m.startswith(upper)}
            assert not bad, f"{name} reaches {sorted(bad)}"
    # Executors only execute: what a job does comes from the package that defines the job.
    for name in (n for n in g if n.startswith("cdvkit.executors")):
        bad = {
            m for m in reachable(g, name) if m.startswith(("cdvkit.search", "cdvkit.evaluation"))
        }
        assert not bad, f"{name} reaches {sorted(bad)}"
    # Reports read a run; they never need to know how it was executed.
    for name in (n for n in g if n.startswith("cdvkit.reporting")):
        assert not {m for m in reachable(g, name) if m.startswith("cdvkit.executors")}, name


MAX_LINES = 450


def test_no_module_is_over_450_lines() -> None:
    # A module past this size has stopped having one job; split it rather than raise the limit.
    sizes = {
        path.relative_to(ROOT.parent).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
        for path in sorted(PACKAGE.rglob("*.py"))
    }
    over = [f"{name} ({n} lines)" for name, n in sizes.items() if n > MAX_LINES]
    assert not over, f"modules over {MAX_LINES} lines: {', '.join(over)}"


# --- task shapes are parts ----------------------------------------------------------------------

SHAPE_NAMES = {"multiple_choice", "numeric", "short_answer"}
SHAPE_CONSTANTS = {"MULTIPLE_CHOICE", "NUMERIC", "SHORT_ANSWER", "FREE_TASKS", "TASKS"}


def _names_a_shape(node: ast.AST) -> bool:
    """A shape's name as a string, one of the names' constants, or a collection holding one."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value in SHAPE_NAMES
    if isinstance(node, ast.Name | ast.Attribute):
        return (node.id if isinstance(node, ast.Name) else node.attr) in SHAPE_CONSTANTS
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return any(_names_a_shape(e) for e in node.elts)
    if isinstance(node, ast.Starred):
        return _names_a_shape(node.value)
    return False


def shape_comparisons(path: Path) -> list[str]:
    """Where a module tells task shapes apart by name: a comparison (==, !=, in, not in, a
    match case) or a dict keyed by a shape's name."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Compare):
            named = [node.left, *node.comparators]
        elif isinstance(node, ast.MatchValue):
            named = [node.value]
        elif isinstance(node, ast.Dict):
            named = [k for k in node.keys if k is not None]
        else:
            continue
        if any(_names_a_shape(n) for n in named):
            found.append(f"{path.name}:{node.lineno}")
    return found


def test_only_a_task_shape_tells_shapes_apart() -> None:
    # Anything that differs between shapes is the shape's (cdvkit.tasks): a new shape is one
    # module, with nothing elsewhere to find and change.
    tasks = PACKAGE / "tasks"
    found = [
        hit
        for path in sorted(PACKAGE.rglob("*.py"))
        if tasks not in path.parents
        for hit in shape_comparisons(path)
    ]
    assert not found, f"shape names compared outside cdvkit/tasks: {', '.join(found)}"


def test_the_shape_check_finds_a_comparison(tmp_path: Path) -> None:
    src = tmp_path / "m.py"
    src.write_text(
        "def f(q, t):\n"
        "    if q.task == 'numeric':\n        return 1\n"
        "    if t in (MULTIPLE_CHOICE, 'x'):\n        return 2\n"
        "    return {'short_answer': 3}\n"
    )
    assert shape_comparisons(src) == ["m.py:2", "m.py:4", "m.py:6"]


def test_data_knows_no_shape_and_models_no_data() -> None:
    g = graph()
    for name in (n for n in g if n.startswith("cdvkit.data")):
        assert not {m for m in g[name] if m.startswith("cdvkit.tasks")}, name
    for name in (n for n in g if n.startswith("cdvkit.models")):
        assert not {m for m in g[name] if m.startswith("cdvkit.data")}, name
