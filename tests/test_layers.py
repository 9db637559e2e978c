"""Imports run down the layers only, and no module imports itself back through others.

Every module of ``itt/`` and ``hydra_plugins/`` is parsed (``ast``, nothing imported); each
``import``/``from ... import`` of a project module counts, at the top of a file or inside a
function alike (a deferred import is still a dependency). The layers, top to bottom:

    entry points (train, report, status, select, pretrain, plan, hydra_plugins, the
      ``python -m`` commands of data, assets and metrics, the selection driver)
    → cell
    → builders / evaluation / stage1_cache / stages
    → tasks / pretraining
    → models
    → data (with assets, the offline suite data reads)
    → metrics (with reporting's tables and statistics and selection's rankings: files and
      arrays in, numbers out)
    → records / schema / errors / utils / config / task_types and the pure content helpers
      (itt.data.fingerprint and the smoke suite it generates before hashing, which the
      config hash of records reads)

A module may import its own layer or a lower one. tasks and pretraining sit above models
(models never import either), so a model card that is pretrained on first use is resolved
by itt.builders, not by itt.models.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# (layer name, module prefixes); a module's layer is that of its longest matching prefix.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("entry", ("itt.train", "itt.report", "itt.status", "itt.select", "itt.pretrain", "itt.plan",
               "hydra_plugins", "itt.data.check", "itt.assets.__main__", "itt.metrics.xtreme_r",
               "itt.selection")),
    ("cell", ("itt.cell",)),
    ("builders", ("itt.builders", "itt.evaluation", "itt.stage1_cache", "itt.stages")),
    ("tasks/pretraining", ("itt.tasks", "itt.pretraining")),
    ("models", ("itt.models",)),
    ("data", ("itt.data", "itt.assets")),
    ("metrics", ("itt.metrics", "itt.reporting", "itt.selection.ranking")),
    ("base", ("itt", "itt.records", "itt.schema", "itt.errors", "itt.utils", "itt.config", "itt.cli_errors",
              "itt.task_types", "itt.hub", "itt.wandb_offline", "itt.warnings_filter",
              "itt.data.fingerprint", "itt.data.smoke")),
]


def _modules() -> dict[str, Path]:
    out = {}
    for base in ("itt", "hydra_plugins"):
        for path in (ROOT / base).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The project module ``name`` loads (a package for ``pkg.attr``), or None."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph(modules: dict[str, Path]) -> dict[str, dict[str, int]]:
    """module -> {imported project module: line of the first such import}."""
    graph: dict[str, dict[str, int]] = {}
    for mod, path in modules.items():
        edges: dict[str, int] = {}
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative import: resolve against this module's package
                    anchor = package.split(".")
                    anchor = anchor[:len(anchor) - (node.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [f"{base}.{a.name}" for a in node.names]
            for t in targets:
                hit = _resolve(t, modules)
                if hit and hit != mod:
                    edges.setdefault(hit, node.lineno)
        graph[mod] = edges
    return graph


def layer_of(mod: str) -> int:
    best, level = -1, None
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            # "itt" names the package's own __init__ only: a new top-level module gets a layer on purpose.
            if (mod == p or (p != "itt" and mod.startswith(p + "."))) and len(p) > best:
                best, level = len(p), i
    if level is None:
        raise AssertionError(f"{mod} has no layer: add it to LAYERS in tests/test_layers.py")
    return level


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(graph[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(graph.get(w, {}))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, dict[str, int]]:
    return import_graph(_modules())


def test_every_module_has_a_layer(graph):
    for mod in graph:
        layer_of(mod)


def upward(graph: dict[str, dict[str, int]]) -> list[str]:
    """Every import of a module in a higher layer, as a readable line."""
    return [f"{mod} ({LAYERS[layer_of(mod)][0]}) imports {dep} ({LAYERS[layer_of(dep)][0]}) at line {line}"
            for mod, deps in graph.items() for dep, line in deps.items() if layer_of(dep) < layer_of(mod)]


def test_no_import_runs_up_a_layer(graph):
    assert not upward(graph), "\n".join(upward(graph))


def test_no_import_cycle(graph):
    assert not cycles(graph), cycles(graph)


def test_the_checks_catch_what_they_should():
    """The checks fail on a cycle and an upward import (the two faults they were written for:
    tasks/base <-> tasks/common, data.loading -> tasks, models.encoder -> pretraining)."""
    fake = {"itt.tasks.base": {"itt.tasks.common": 1}, "itt.tasks.common": {"itt.tasks.base": 2},
            "itt.data.loading": {"itt.tasks": 3}, "itt.tasks": {}, "itt.models.encoder": {"itt.pretraining.build": 4},
            "itt.pretraining.build": {"itt.models.tiny": 5}, "itt.models.tiny": {}}
    assert cycles(fake) == [["itt.tasks.base", "itt.tasks.common"]]
    assert upward(fake) == ["itt.data.loading (data) imports itt.tasks (tasks/pretraining) at line 3",
                            "itt.models.encoder (models) imports itt.pretraining.build (tasks/pretraining) at line 4"]
    assert layer_of("itt.data.fingerprint") > layer_of("itt.metrics.xtreme_tasks")  # most specific prefix wins
    with pytest.raises(AssertionError, match="itt.newmodule has no layer"):
        layer_of("itt.newmodule")


def test_the_graph_reads_deferred_and_relative_imports(tmp_path):
    pkg = tmp_path / "itt"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from . import b\n")
    (pkg / "sub" / "a.py").write_text("def f():\n    from itt.sub.b import g\n    return g\n")
    (pkg / "sub" / "b.py").write_text("from .a import f\nimport itt\n")
    mods = {"itt": pkg / "__init__.py", "itt.sub": pkg / "sub" / "__init__.py",
            "itt.sub.a": pkg / "sub" / "a.py", "itt.sub.b": pkg / "sub" / "b.py"}
    g = import_graph(mods)
    assert g["itt.sub.a"] == {"itt.sub.b": 2} and g["itt.sub.b"] == {"itt.sub.a": 1, "itt": 2}
    assert g["itt.sub"] == {"itt.sub.b": 1}
    assert cycles(g) == [["itt.sub.a", "itt.sub.b"]]
