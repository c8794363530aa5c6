"""The library's import graph — every import, those inside functions included, since an import moved
into a function still makes a cycle: there is none, and every module sits in one of four layers and
imports only from its own layer or those below (issue 32): ``core`` < ``science`` < ``runs`` < ``suite``. The last one ran through the package
itself (provenance read ``__version__`` from it: now ``eyegen_lib.core.version``), checkpoint ↔ provenance
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


LAYERS = ("core", "science", "runs", "suite")


def _function_level(tree: ast.AST) -> set[int]:
    """ids of the import statements inside a function."""
    return {id(node) for fn in ast.walk(tree) if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef))
            for node in ast.walk(fn) if isinstance(node, (ast.Import, ast.ImportFrom))}


def _imports(name: str, path: Path, modules: dict[str, Path], *, only_in_functions: bool = False) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    tree = ast.parse(path.read_text())
    inside = _function_level(tree)
    for node in ast.walk(tree):
        if only_in_functions and id(node) not in inside:
            continue
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


def _layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else None


def _upward(graph: dict[str, set[str]]) -> list[str]:
    """Imports from a module of one layer into a higher layer."""
    return sorted(f"{m} → {t}" for m, targets in graph.items() for t in targets
                  if _layer(m) is not None and _layer(t) is not None and _layer(t) > _layer(m))


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def test_no_import_cycles():
    graph = _graph()
    assert graph["eyegen_lib.suite.cli"] >= {"eyegen_lib.core.cli_types", "eyegen_lib.suite.runner"}, "the graph is read"
    caught = _in_cycles(graph)
    assert not caught, f"these modules sit in an import cycle: {sorted(caught)}"
    # a data reader tells the running notebook's record what it read without importing the record
    assert "eyegen_lib.runs.record" not in graph["eyegen_lib.science.data.errors"]


def test_the_cycle_finder_finds_a_cycle():
    assert _in_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == {"a", "b", "c"}
    assert _in_cycles({"a": {"b"}, "b": set()}) == set()


def test_every_module_sits_in_a_layer_and_imports_nothing_from_a_higher_one():
    graph = _graph()
    loose = sorted(m for m in graph if m != "eyegen_lib" and _layer(m) is None)   # the package root is the façade
    assert not loose, f"modules outside the layers {LAYERS}: {loose}"
    assert graph["eyegen_lib.science.models.gaze_estimator"] >= {"eyegen_lib.core.training"}, "the graph is read"
    upward = _upward(graph)
    assert not upward, f"imports into a higher layer: {upward}"


def test_the_layer_check_finds_an_upward_import():
    graph = {"eyegen_lib.science.protocols": {"eyegen_lib.runs.provenance", "eyegen_lib.core.profiles"},
             "eyegen_lib.suite.cli": {"eyegen_lib.runs.registry"}}
    assert _upward(graph) == ["eyegen_lib.science.protocols → eyegen_lib.runs.provenance"]


def test_library_imports_sit_inside_functions_only_to_keep_the_cli_quick_to_start():
    """An import moved into a function hides the graph: only the command line defers its subcommands'
    modules (``eyegen --help`` and ``eyegen list`` answer without importing the models, papermill or nbconvert),
    and ``eyegen zoo`` defers the notebook runner (papermill, nbconvert) to ``zoo spread``."""
    modules = _modules()
    deferred = {name: _imports(name, path, modules, only_in_functions=True) for name, path in modules.items()}
    deferred = {name: targets for name, targets in deferred.items() if targets}
    assert set(deferred) <= {"eyegen_lib.suite.cli", "eyegen_lib.suite.zoo_cli"}, sorted(deferred)
    assert deferred.get("eyegen_lib.suite.zoo_cli", set()) <= {"eyegen_lib.suite.runner"}
