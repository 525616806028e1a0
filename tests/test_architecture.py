"""The layout stays readable as it grows (docs/ARCHITECTURE.md): dependencies point one way,
no module imports another app inside a function, no two modules import each other, and
no app outgrows the rest."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Bottom to top: an app may import the apps before it, never one after it.
LAYERS = (
    "core",
    "workspaces",
    "attributes",
    "contacts",
    "identity",
    "helpdesk",
    "transfers",
    "webhooks",
    "demo",
)
# The project package wires everything together (settings, URLs) and may import any app.
PROJECT = "config"
BIGGEST_APP_SHARE = 0.35


@dataclass
class Module:
    name: str
    app: str
    path: Path
    # (imported module, line, inside a function)
    imports: list[tuple[str, int, bool]] = field(default_factory=list)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> dict[str, Module]:
    found: dict[str, Module] = {}
    for app in (*LAYERS, PROJECT):
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            found[_module_name(path)] = Module(_module_name(path), app, path)
    for module in found.values():
        tree = ast.parse(module.path.read_text(), filename=str(module.path))
        in_function: set[int] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                in_function.update(id(n) for n in ast.walk(node) if n is not node)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                # `from contacts import services` imports the module contacts.services.
                targets = [
                    f"{node.module}.{alias.name}"
                    if f"{node.module}.{alias.name}" in found
                    else node.module
                    for alias in node.names
                ]
            else:
                continue
            for target in targets:
                if target.split(".")[0] in (*LAYERS, PROJECT):
                    module.imports.append((target, node.lineno, id(node) in in_function))
    return found


def _where(module: Module, line: int) -> str:
    return f"{module.path.relative_to(ROOT)}:{line}"


def test_no_app_imports_an_app_above_it():
    rank = {app: index for index, app in enumerate(LAYERS)}
    upward = [
        f"{_where(m, line)} ({m.app} imports {target})"
        for m in modules().values()
        if m.app != PROJECT
        for target, line, _ in m.imports
        if rank.get(target.split(".")[0], len(LAYERS)) > rank[m.app]
    ]
    assert upward == []


def test_no_module_imports_another_app_inside_a_function():
    hidden = [
        f"{_where(m, line)} imports {target}"
        for m in modules().values()
        for target, line, inside in m.imports
        if inside and target.split(".")[0] != m.app
    ]
    assert hidden == []


def test_no_two_modules_import_each_other():
    graph = {
        name: {t for t, _, _ in m.imports if t in modules() and t != name}
        for name, m in modules().items()
    }
    # Tarjan's strongly connected components: any with two modules or more is a cycle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(name: str) -> None:
        index[name] = low[name] = len(index)
        stack.append(name)
        on_stack.add(name)
        for target in graph[name]:
            if target not in index:
                visit(target)
                low[name] = min(low[name], low[target])
            elif target in on_stack:
                low[name] = min(low[name], index[target])
        if low[name] == index[name]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == name:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for name in graph:
        if name not in index:
            visit(name)
    assert cycles == []


def test_no_app_holds_more_than_35_percent_of_the_code():
    lines = dict.fromkeys((*LAYERS, PROJECT), 0)
    for module in modules().values():
        lines[module.app] += len(module.path.read_text().splitlines())
    total = sum(lines.values())
    biggest = max(LAYERS, key=lines.__getitem__)
    assert lines[biggest] / total <= BIGGEST_APP_SHARE, (biggest, lines[biggest], total)


def test_the_checks_see_every_app_and_its_imports():
    # Guards the guards: a typo in LAYERS or a parser change must not make them vacuous.
    assert {m.app for m in modules().values()} == {*LAYERS, PROJECT}
    assert len(modules()) > 100
    identity_hooks = {target for target, _, _ in modules()["identity.hooks"].imports}
    assert "contacts.models" in identity_hooks
    # The spawned loader's worker sets Django up first, then imports its own app's module.
    assert ("demo.copying", True) in {
        (target, inside) for target, _, inside in modules()["demo.load_worker"].imports
    }
