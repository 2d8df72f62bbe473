"""The ``segpipe`` package has no import cycle between its modules, and no arrow back up its layers.

Imports are read with :mod:`ast` from the source, not executed. Every import counts: at module level
and inside functions (a function-level import is still an arrow between two modules; it only hides a
cycle until the function runs). ``import a.b`` and ``from a import b`` point at the submodule
``a.b`` when it exists, else at the package ``a``. The implicit import of a module's parent packages
is not counted (a package's ``__init__`` importing its own children is the normal layout).
"""

from __future__ import annotations

import ast
from pathlib import Path

import segpipe

ROOT = Path(segpipe.__file__).parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _resolve(name: str, known: dict[str, Path]) -> str | None:
    """``name`` or its nearest enclosing module that is part of segpipe."""
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def import_graph() -> dict[str, set[str]]:
    """module -> the segpipe modules it imports (anywhere in its source)."""
    known = _modules()
    graph: dict[str, set[str]] = {}
    for mod, path in known.items():
        is_pkg = path.name == "__init__.py"
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative: from the module's own package upwards
                    base = mod.split(".") if is_pkg else mod.split(".")[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    prefix = ".".join(base + ([node.module] if node.module else []))
                else:
                    prefix = node.module or ""
                names = [f"{prefix}.{alias.name}" for alias in node.names] + [prefix]
                # ``from pkg import sub`` -> pkg.sub; ``from pkg import name`` -> pkg
                names = [n for n in names[:-1] if n in known] or [prefix]
            else:
                continue
            for name in names:
                target = _resolve(name, known)
                if target is not None and target != mod:
                    targets.add(target)
        graph[mod] = targets
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
        work = [(start, iter(sorted(graph[start])))]
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
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
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


def test_the_graph_sees_real_imports() -> None:
    """The reader finds arrows of each kind (so an empty result below means something)."""
    graph = import_graph()
    assert "segpipe.training.loop" in graph["segpipe.training.launch"]  # module level
    assert "segpipe.training.launch" in graph["segpipe.training"]  # a package's __init__
    assert "segpipe.visualize" in graph["segpipe.cli.visualize"]  # inside a function
    assert "segpipe.training.distributed" in graph["segpipe.training.launch"]  # from pkg import sub


def test_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_segpipe_has_no_import_cycle() -> None:
    found = cycles(import_graph())
    assert found == [], "import cycles (module-level and function-level imports): " + "; ".join(
        " <-> ".join(c) for c in found
    )


#: ARCHITECTURE.md's layers, top first: a module imports only from its own layer or those below,
#: at module level or inside a function (a function-level import is an arrow all the same). Each
#: entry is a top-level module or package of segpipe; one not listed is a stage (the middle layer).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("cli", "__main__"),
    (),  # the stages: training, export, tensorrt, deploy, visualize, evaluate, benchmark, info...
    ("runtime", "data", "imagesize", "machine"),
    ("models", "palette"),
    (
        "options",
        "schema",
        "modelinfo",
        "utils",
        "progress",
        "units",
        "outpaths",
        "timing",
        "metrics",
        "_optional",
    ),
    ("errors", "segpipe"),  # segpipe: the root package (its version)
)
STAGES = 1


def layer(module: str) -> int:
    """The layer of a segpipe module (0: the top, the CLI)."""
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else parts[0]
    return next((i for i, names in enumerate(LAYERS) if top in names), STAGES)


def upward_arrows(graph: dict[str, set[str]]) -> list[str]:
    """``a -> b`` for every import of a module ``b`` in a layer above ``a``'s."""
    return sorted(f"{a} -> {b}" for a, targets in graph.items() for b in targets if layer(b) < layer(a))


def test_the_layer_check_finds_an_arrow_back_up() -> None:
    assert layer("segpipe.options.engine") > layer("segpipe.tensorrt.shapes") > layer("segpipe.cli.app")
    graph = {"segpipe.options.engine": {"segpipe.tensorrt.shapes", "segpipe.errors"}}
    assert upward_arrows(graph) == ["segpipe.options.engine -> segpipe.tensorrt.shapes"]
    assert upward_arrows({"segpipe.tensorrt.shapes": {"segpipe.options.shapes"}}) == []


def test_segpipe_has_no_arrow_back_up_the_layers() -> None:
    found = upward_arrows(import_graph())
    assert found == [], (
        "imports back up the layers (ARCHITECTURE.md; move what is shared down): " + "; ".join(found)
    )
