"""The library's import graph — every import, those inside functions included, since an import moved
into a function still makes a cycle: there is none (issue 32). The last one ran through the package
itself (provenance read ``__version__`` from it: now ``eyegen_lib.version``), checkpoint ↔ provenance
(``provenance_differences`` now lives beside ``config_differences`` in checkpoint) and the data readers
telling the notebook's record what they read (``data.errors`` imported ``record``; the record now
registers itself with ``listen_for_data_sources``)."""
import ast
from pathlib import Path

LIBRARY = Path(__file__).resolve().parents[1] / "eyegen_lib"


def _modules() -> dict[str, Path]:
    modules = {}
    for path in LIBRARY.rglob("*.py"):
        parts = path.relative_to(LIBRARY.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - (node.level - 1)] if node.level else []
            target = ".".join(base + ([node.module] if node.module else [])) if node.level else (node.module or "")
            for alias in node.names:
                child = f"{target}.{alias.name}"
                found.add(child if child in modules else target)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m in modules and m != name}


def _in_cycles(graph: dict[str, set[str]]) -> set[str]:
    """Modules in a strongly connected component of more than one module (Tarjan)."""
    index, low, stack, on_stack, caught = {}, {}, [], set(), set()

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                caught.update(component)

    for v in graph:
        if v not in index:
            visit(v)
    return caught


def test_no_import_cycles():
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    assert graph["eyegen_lib.cli"] >= {"eyegen_lib.cli_types", "eyegen_lib.runner"}, "the graph is read"
    caught = _in_cycles(graph)
    assert not caught, f"these modules sit in an import cycle: {sorted(caught)}"
    # a data reader tells the running notebook's record what it read without importing the record
    assert "eyegen_lib.record" not in graph["eyegen_lib.data.errors"]


def test_the_cycle_finder_finds_a_cycle():
    assert _in_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == {"a", "b", "c"}
    assert _in_cycles({"a": {"b"}, "b": set()}) == set()
