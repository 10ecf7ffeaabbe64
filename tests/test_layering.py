"""The layers of vgraph point one way (ops <- nn <- models <- tasks <- train/runs <- cli), and
no module imports itself round a cycle. Lazy imports inside functions count too."""
from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "vgraph"
SCRIPTS = PKG.parent / "scripts"

BASE = {"errors", "paths", "__version__"}  # vgraph.__version__ is a root attribute
# what each layer may import (besides BASE and itself)
ALLOWED = {
    "ops": set(),
    "nn": {"ops"},
    "data": {"ops"},
    "chem": {"ops", "data"},
    "metrics": {"ops", "data", "chem"},
    "models": {"nn", "ops", "chem"},
    "hub": {"models", "nn", "ops", "data", "chem", "train"},
    "tasks": {"models", "nn", "ops", "data", "chem", "metrics", "hub"},
    "train": {"ops"},
    "runs": {"train", "nn", "data", "metrics"},
    "cli": {"ops", "nn", "data", "chem", "metrics", "models", "hub", "tasks", "train", "runs"},
}


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    me = _module_name(path)
    pkg = me if path.name == "__init__.py" else me.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")
                base = base[:len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            found.append((mod, node.lineno))
            # `from vgraph.nn import conv` may name a submodule
            found += [(f"{mod}.{a.name}", node.lineno) for a in node.names]
    return [(m, line) for m, line in found if m == "vgraph" or m.startswith("vgraph.")]


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PKG.rglob("*.py")}


def test_every_module_is_in_a_known_layer():
    unknown = sorted({_layer(m) for m in _modules() if _layer(m) and _layer(m) not in ALLOWED
                      and _layer(m) not in BASE})
    assert not unknown, f"modules outside the layer map: {unknown} (add them to ALLOWED)"


def test_no_import_from_a_higher_layer():
    bad = []
    for mod, path in sorted(_modules().items()):
        src = _layer(mod)
        if src is None or src in BASE:  # vgraph/__init__ re-exports lazily; base imports nothing
            if src in BASE:
                bad += [f"{path.name}:{line} imports {m}" for m, line in _imports(path)
                        if _layer(m) not in BASE and _layer(m) is not None]
            continue
        for target, line in _imports(path):
            dst = _layer(target)
            if dst is None or dst == src or dst in BASE:
                continue
            if dst not in ALLOWED[src]:
                bad.append(f"{path.relative_to(PKG.parent)}:{line} ({src}) imports {target} ({dst})")
    assert not bad, "imports against the layering:\n" + "\n".join(bad)


def test_no_import_cycles_between_modules():
    modules = _modules()
    graph = {}
    for mod, path in modules.items():
        targets = set()
        for target, _ in _imports(path):
            # resolve `pkg.name` that is an attribute, not a module, to the package
            while target not in modules and "." in target:
                target = target.rsplit(".", 1)[0]
            if target in modules and target != mod:
                targets.add(target)
        graph[mod] = targets
    # a package's __init__ re-exporting its own submodules is not a cycle worth failing on,
    # but a submodule that imports back through another package's module is
    for mod in graph:
        graph[mod] = {t for t in graph[mod] if not (mod.startswith(t + ".") and
                                                     modules[t].name == "__init__.py")}
    color, cycles = {}, []

    def visit(node, stack):
        color[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if color.get(nxt) == 1:
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif color.get(nxt) is None:
                visit(nxt, stack)
        stack.pop()
        color[node] = 2

    for mod in sorted(graph):
        if color.get(mod) is None:
            visit(mod, [])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_scripts_use_the_public_api_only():
    bad = []
    for path in sorted(SCRIPTS.glob("*.py")):
        text = path.read_text()
        if "sys.path.insert" in text:
            bad.append(f"{path.name}: sys.path.insert")
    assert not bad, "\n".join(bad)


def test_training_scripts_are_thin():
    long = [f"{p.name}: {len(p.read_text().splitlines())} lines"
            for p in sorted(SCRIPTS.glob("train_*.py")) if len(p.read_text().splitlines()) > 120]
    assert not long, "scripts/train_*.py must stay <= 120 lines:\n" + "\n".join(long)
