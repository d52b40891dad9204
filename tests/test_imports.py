"""The package's import structure: no cycles between pipeline modules, and no module importing
another module's private (``_underscore``) names.

Why: a cycle (the Dask backend once reached into ``pipeline.run``, which imports it) makes import
order matter and hides what depends on what; a private name used elsewhere is a second owner of
something meant to have one. Checked twice: by the project's shared tool when ``../shared``
sits beside the checkout, and by a small AST walk of our own that needs nothing else.
Imports inside functions count: they are dependencies all the same, only deferred.
"""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "pipeline"
SHARED_CHECK = ROOT.parent / "shared" / "tools" / "import_check.py"


def module_names() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name, not ``__init__``)."""
    mods = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = ("pipeline",) + path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = path
    return mods


def _absolute(module: str, path: Path, node: ast.ImportFrom) -> str:
    """The absolute module an ``ImportFrom`` names (``from ..x import y`` inside a subpackage)."""
    if not node.level:
        return node.module or ""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    parts = package.split(".")
    parts = parts[:len(parts) - node.level + 1]
    return ".".join(parts + ([node.module] if node.module else []))


def import_graph() -> tuple[dict[str, set[str]], list[str]]:
    """Edges module -> package modules it imports (anywhere in the file), and private-name imports.

    ``from . import __version__`` is an edge to the package ``pipeline`` itself, whose ``__init__``
    imports ``pipeline.run``: such an edge closes a cycle too, so it is kept.
    """
    mods = module_names()
    edges: dict[str, set[str]] = {m: set() for m in mods}
    private: list[str] = []
    for module, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                base = _absolute(module, path, node)
                if not base.startswith("pipeline"):
                    continue
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    target = full if full in mods else base
                    if target in mods and target != module:
                        edges[module].add(target)
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        private.append(f"{module}: from {base} import {alias.name}")
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name in mods and alias.name != module:
                        edges[module].add(alias.name)
    return edges, private


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                # a group held together only by the package __init__ re-exporting a submodule
                # that imports nothing back from the others is no cycle of two real modules
                real = [m for m in group if m != "pipeline"]
                if len(group) > 1 and len(real) > 1:
                    found.append(sorted(group))
    return found


def test_the_checker_sees_a_cycle_and_a_private_import() -> None:
    """The check itself can fail: a made-up graph with a cycle is reported, one without is not."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set(), "pipeline": {"a"}}) == []
    tree = ast.parse("def f():\n    from .run import _now\n")
    node = next(n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom))
    assert _absolute("pipeline.execution.dask", PACKAGE / "execution" / "dask.py", node) \
        == "pipeline.execution.run"
    assert node.names[0].name.startswith("_")


def test_the_graph_includes_function_level_imports() -> None:
    """run.py imports the Dask executor only inside functions; that edge must be in the graph."""
    edges, _ = import_graph()
    assert "pipeline.execution.dask" in edges["pipeline.run"]
    assert "pipeline.execution" in edges["pipeline.execution.dask"]


def test_stage_modules_never_fork_touch_the_collector_or_import_the_execution_machinery() -> None:
    """A stage computes and writes its fields: fork, gc and the forked machinery live only in
    pipeline/execution/ (a stage may ask it one thing: where it runs, for a note)."""
    from pipeline.stages import REGISTRY

    for name, where in REGISTRY.items():
        module = where.partition(":")[0]
        path = PACKAGE / (module.split(".", 1)[1].replace(".", "/") + ".py")
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = _absolute(module, path, node)
                imported.update(f"{base}.{alias.name}" for alias in node.names)
        banned = {m for m in imported if m.split(".")[0] in ("gc", "multiprocessing", "joblib")
                  or m.startswith(("pipeline.execution.forked", "pipeline.execution.collector",
                                   "pipeline.execution.dask", "os.fork"))}
        assert not banned, (name, banned)
        assert "os.fork" not in path.read_text(encoding="utf-8") and "gc.disable" not in path.read_text(encoding="utf-8")


def test_no_import_cycles_among_pipeline_modules() -> None:
    edges, _ = import_graph()
    assert cycles(edges) == []


def test_no_module_imports_another_modules_private_names() -> None:
    _, private = import_graph()
    assert private == []


@pytest.mark.skipif(not SHARED_CHECK.is_file(), reason="../shared/tools/import_check.py not beside the checkout")
def test_shared_import_check_passes() -> None:
    proc = subprocess.run([sys.executable, str(SHARED_CHECK), str(ROOT)], capture_output=True, text=True,
                          timeout=120)
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["cycles"] == [] and report["n_private"] == 0, report
    assert proc.returncode == 0
