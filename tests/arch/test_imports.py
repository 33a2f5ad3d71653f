"""The architecture, checked from the source: moola's subsystems import only from the ones below
them (LAYERS), nothing in ``moola/`` imports Prefect or ``flows``, no import circle, each
third-party library the orchestrator alone needs is imported in one module, and a function-local
import of moola's own code is one of the few that keep a heavy or optional package off a path.

Every import counts, including those inside functions: a lazy import is still a dependency.
Imports under ``if TYPE_CHECKING:`` do not run: a type named in a signature (moola.pods.runner
takes the Settings built at an entry point above it)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "moola"


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _type_checking_only(tree: ast.AST) -> set[int]:
    """ids of the import nodes under ``if TYPE_CHECKING:``."""
    return {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
            for stmt in node.body for n in ast.walk(stmt)}


def imports_of(path: Path) -> set[str]:
    """Absolute names of every module ``path`` imports (``from x import y`` counts x.y when x.y is a module)."""
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    out = set()
    tree = ast.parse(path.read_text(), str(path))
    skip = _type_checking_only(tree)
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out.add(target)
            out.update(f"{target}.{a.name}" for a in node.names)
    return out


def graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in PKG.rglob("*.py")}
    g = {}
    for name, path in files.items():
        g[name] = {t for t in imports_of(path) if t in files and t != name}
    return g


def find_cycle(g: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in sorted(g[n]):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state and (c := visit(m)):
                return c
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(g):
        if n not in state and (c := visit(n)):
            return c
    return None


def test_no_import_circle_in_moola():
    cycle = find_cycle(graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_moola_never_imports_prefect_or_flows():
    bad = {}
    for p in PKG.rglob("*.py"):
        hits = sorted(t for t in imports_of(p) if t.split(".")[0] in ("prefect", "flows"))
        if hits:
            bad[str(p.relative_to(ROOT))] = hits
    assert bad == {}


def test_the_checker_finds_a_circle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


# Each line imports only from lines below it; a line with two names holds two peers that do not
# import each other. (STYLE.md, "A layout that shows the architecture".)
LAYERS = [
    ["cli"],           # the `moola` command
    ["settings"],      # the orchestrator's Settings, built at entry points
    ["pods"],          # RunPod: the one pod lifecycle
    ["remote"],        # how a gate call runs elsewhere: runners, ssh, bundle
    ["decide"],        # pure policy: the decision, its evidence, re-validation
    ["registry"],      # versions, production pointer, history
    ["serve"],         # load a sealed classifier and predict
    ["gates"],         # what a pod runs
    ["train", "evaluation"],
    ["models"],        # nn.Modules beside their configs
    ["data"],          # schema, load, split, Gate 0
    ["core"],          # errors, files, seal, version: stdlib only
]
RANK = {name: len(LAYERS) - i for i, names in enumerate(LAYERS) for name in names}


def subsystem(module: str) -> str | None:
    """moola.x.y -> x (None for the package root, which holds only __version__)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def direction_violations(g: dict[str, set[str]]) -> list[str]:
    bad = []
    for a, targets in sorted(g.items()):
        for b in sorted(targets):
            la, lb = subsystem(a), subsystem(b)
            if la is None or lb is None or la == lb:
                continue
            if RANK[lb] >= RANK[la]:
                bad.append(f"{a} -> {b} ({la} may import only {', '.join(n for n in RANK if RANK[n] < RANK[la])})")
    return bad


def test_every_subsystem_is_in_the_table():
    on_disk = {p.name for p in PKG.iterdir() if (p / "__init__.py").is_file()} | {
        p.stem for p in PKG.glob("*.py") if p.stem != "__init__"}
    assert on_disk == set(RANK)


def test_imports_point_down_only():
    assert direction_violations(graph()) == []


def test_the_direction_checker_finds_an_upward_import():
    g = {"moola.gates.context": {"moola.decide.decision", "moola.core.errors"}, "moola.core.errors": set()}
    assert direction_violations(g) == [
        "moola.gates.context -> moola.decide.decision (gates may import only train, evaluation, models, data, core)"]


def third_party_importers(lib: str) -> list[str]:
    return sorted(str(p.relative_to(ROOT)) for d in ("moola", "flows") for p in (ROOT / d).rglob("*.py")
                  if any(t == lib or t.startswith(lib + ".") for t in imports_of(p)))


def test_each_orchestrator_library_is_imported_in_one_module():
    """Its errors are mapped to moola's in that module; nothing else sees the library's types."""
    owners = {lib: third_party_importers(lib) for lib in
              ("paramiko", "runpod", "filelock", "pydantic_settings", "matplotlib", "psutil", "requests")}
    assert owners == {"paramiko": ["moola/remote/ssh.py"], "runpod": ["moola/pods/api.py"],
                      "filelock": ["moola/registry/store.py"], "pydantic_settings": ["moola/settings.py"],
                      "matplotlib": ["flows/report.py"], "psutil": ["flows/worker.py"],
                      "requests": ["moola/pods/api.py"]}


# The function-local imports of moola's own code that stay, and why. Everything else is at the top.
LAZY = {
    # the `moola` command loads a subcommand's code when it runs: `moola gate run` on a pod has no
    # ssh, RunPod SDK or pydantic-settings, and `moola --help` / `moola registry` need no torch
    "moola/cli/main.py": "*",
    "moola/cli/registry.py": "*",
    # the worker imports the runners (moola.pods.runner): the in-process one pulls torch only when it runs
    "moola/remote/runner.py": {"moola.gates.config", "moola.gates.run"},
    # Prefect loads the worker's module in every process that loads collections: pandas (Gate 0)
    # only when the worker checks a run's data
    "flows/worker.py": {"moola.data.validate"},
    # the report's tasks import this module in the worker (the prefect.collections entry point):
    # scikit-learn (2 s) only when a reliability diagram is drawn
    "flows/report.py": {"moola.evaluation.metrics"},
    # sktime and numba (seconds to import) only for the nightly challenger
    "moola/decide/revalidate.py": {"moola.models.minirocket"},
}


def local_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    out = set()
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            out |= {n.module for n in ast.walk(fn) if isinstance(n, ast.ImportFrom) and n.module
                    and n.module.split(".")[0] in ("moola", "moola_flows", "flows") and n.module != "moola"}
    return out


def test_function_local_imports_are_only_the_listed_ones():
    bad = {}
    for d in ("moola", "flows"):
        for p in (ROOT / d).rglob("*.py"):
            rel = str(p.relative_to(ROOT))
            allowed = LAZY.get(rel, set())
            extra = sorted(m for m in local_imports(p) if allowed != "*" and m not in allowed)
            if extra:
                bad[rel] = extra
    assert bad == {}
