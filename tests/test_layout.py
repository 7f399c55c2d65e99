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
