"""The import graph of the backend (``backend/lagc_hand``), read with ``ast``
(module-level and function-level imports alike): no cycles, and no stage
imports one that runs after it or a front end.

Layers, lowest first (a unit may import only units of a lower layer):

  errors, quiet (log filtering), the package root  <  video, handmodel  <  net  <  engines  <  tracking
  <  refine  <  placement  <  fitting  <  cleanup  <  options, progress  <  pipeline  <  api
  <  synth  <  batch, server  <  commands  <  cli

The stage order is the data flow (video -> engines -> tracking -> placement ->
fitting -> cleanup); handmodel is the hand-model library the fit uses, net the
network the lagc engine runs; synth renders test clips; batch, server,
commands and cli are front ends that nothing below imports.  Also: the add-on's
``core`` is numpy and the standard library only (Blender runs it).
"""
from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "backend" / "lagc_hand"

LAYERS: list[set[str]] = [
    {"errors", "quiet", "lagc_hand"}, {"video", "handmodel"}, {"net"}, {"engines"}, {"tracking"}, {"refine"}, {"placement"},
    {"fitting"}, {"cleanup"}, {"options", "progress"}, {"pipeline"}, {"api"}, {"synth"}, {"batch", "server"},
    {"commands"}, {"cli"},
]
LEVEL = {unit: i for i, layer in enumerate(LAYERS) for unit in layer}


def _modules(root: Path, top: str) -> dict[str, Path]:
    out = {}
    for f in root.rglob("*.py"):
        parts = [top, *f.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = f
    return out


def _imports(name: str, path: Path, top: str) -> set[str]:
    """Dotted names imported anywhere in the module (relative imports resolved)."""
    found = set()
    is_pkg = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = name.split(".") if is_pkg else name.split(".")[:-1]
                pkg = pkg[:len(pkg) - node.level + 1]
                base = ".".join(pkg + ([base] if base else []))
            # "from pkg import name" imports pkg.name when that is a module, else pkg:
            # import_graph() maps each to the longest module name that exists.
            found |= {f"{base}.{a.name}" for a in node.names}
    return found


def import_graph() -> dict[str, set[str]]:
    """module -> backend modules it imports (each import mapped to the longest existing module name)."""
    mods = _modules(PACKAGE, "lagc_hand")
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in mods.items():
        for target in _imports(name, path, "lagc_hand"):
            if target.split(".")[0] != "lagc_hand":
                continue
            while target not in mods:
                target = target.rsplit(".", 1)[0]
            # A parent package's __init__ runs before any of its modules, so it is not an edge
            # of its own; only what the import names is.
            if target != name:
                graph[name].add(target)
    for name in mods:
        graph.setdefault(name, set())
    return graph


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "lagc_hand"


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan, iterative)."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
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
    return out


def test_every_unit_has_a_layer():
    units = {_unit(m) for m in import_graph()}
    assert units <= set(LEVEL), f"new top-level units need a layer here: {sorted(units - set(LEVEL))}"


def test_no_import_cycles():
    graph = import_graph()
    assert _cycles(graph) == []
    units: dict[str, set[str]] = defaultdict(set)
    for a, targets in graph.items():
        units[_unit(a)] |= {_unit(b) for b in targets if _unit(b) != _unit(a)}
    assert _cycles(dict(units)) == []


def test_no_upward_imports():
    upward = sorted(f"{a} -> {b}" for a, targets in import_graph().items() for b in targets
                    if _unit(a) != _unit(b) and LEVEL[_unit(b)] >= LEVEL[_unit(a)])
    assert upward == [], "imports of a later stage or a front end:\n" + "\n".join(upward)


def test_the_checker_sees_function_level_and_relative_imports(tmp_path):
    """The graph is not vacuous: it finds imports inside functions and relative ones."""
    graph = import_graph()
    assert "lagc_hand.pipeline" in graph["lagc_hand.api"]
    assert {"lagc_hand.fitting.fit"} <= graph["lagc_hand.fitting.motion"]
    f = tmp_path / "m.py"
    f.write_text("def late():\n    from ..server import app\n    import lagc_hand.cli\n")
    assert {"lagc_hand.server.app", "lagc_hand.cli"} <= _imports("lagc_hand.fitting.m", f, "lagc_hand")
    cyc = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(cyc) == [["a", "b", "c"]]


def test_addon_core_is_numpy_and_stdlib_only():
    core = REPO / "blender_addon" / "core"
    allowed = set(sys.stdlib_module_names) | {"numpy", "__future__"}
    bad = []
    for name, path in _modules(core, "lagc_hand_blender.core").items():
        for target in _imports(name, path, "lagc_hand_blender.core"):
            top = target.split(".")[0]
            if top not in allowed and not target.startswith("lagc_hand_blender.core"):
                bad.append(f"{name} -> {target}")
    assert bad == []
