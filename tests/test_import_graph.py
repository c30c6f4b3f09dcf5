"""The packages' import directions, read from the source tree (every import, function-local ones included)."""

import ast
from pathlib import Path

import pytest

from helpers import ROOT

# Which project packages each package may import. core, the bottom layer (errors, checkpoint files, hashing,
# devices, the CPU allocator, resources, image files), imports none; the leaves import only core; restoring a photo
# never loads the training engine; evaluation takes the torchvision compatibility fix from losses (beside the VGG
# loss that needs it too); nothing imports release or the scripts.
ALLOWED = {
    "core": set(),
    "nets": {"core"},
    "losses": {"core"},
    "datasets": {"core"},
    "restore": {"core", "nets", "datasets"},
    "evaluation": {"core", "datasets", "nets", "losses"},
    "baselines": {"core", "datasets", "nets", "restore"},
    "gan": {"core", "nets", "losses", "datasets", "restore", "evaluation"},
    "release": {"core", "nets", "datasets", "restore", "evaluation"},
}
SCRIPTS = {"train_gan", "infer", "evaluate", "demo"}
PACKAGES = set(ALLOWED) | {"bench"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Absolute names of every project module ``path`` imports (at top level or inside a function)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            found.add(target)
            # "from pkg import module" imports a module too
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return {m for m in found if m.split(".")[0] in PACKAGES | SCRIPTS}


def project_modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            modules[module_name(path)] = path
    for script in SCRIPTS:
        modules[script] = ROOT / f"{script}.py"
    return modules


MODULES = project_modules()


def graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports (names that are not modules, such as functions, dropped)."""
    return {name: {m for m in imports_of(path) if m in MODULES and m != name} for name, path in MODULES.items()}


def test_every_package_imports_only_what_it_may():
    wrong = []
    for name, targets in graph().items():
        top = name.split(".")[0]
        if top == "bench":
            allowed = set(ALLOWED) - {"release"} | {"bench"}
        elif top in SCRIPTS:
            allowed = set(ALLOWED) | {top}
        else:
            allowed = ALLOWED[top] | {top}
        wrong += [f"{name} imports {target}" for target in sorted(targets) if target.split(".")[0] not in allowed]
    assert not wrong, "\n".join(wrong)


def find_cycle(edges: dict[str, set[str]]) -> list[str]:
    """One import cycle as a list of modules (first repeated at the end), or [] when there is none."""
    state, stack = {}, []

    def visit(node: str) -> list[str]:
        state[node] = "open"
        stack.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == "open":
                return stack[stack.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        stack.pop()
        state[node] = "done"
        return []

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return []


def test_no_module_imports_itself_through_others():
    edges = graph()
    # A package's __init__ importing its own modules is how a package is made; only cycles between modules count.
    for name in edges:
        if MODULES[name].name == "__init__.py":
            edges[name] = {m for m in edges[name] if not m.startswith(name + ".")}
    cycle = find_cycle(edges)
    assert not cycle, " -> ".join(cycle)


@pytest.mark.parametrize("edges, expected", [
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c", "a"]),
    ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
])
def test_the_cycle_finder_finds_cycles(edges, expected):
    assert find_cycle(edges) == expected


def test_the_graph_sees_function_local_and_relative_imports():
    edges = graph()
    assert "core.errors" in edges["core.checkpoint"]  # from .errors import ...
    assert "restore.inference" in edges["infer"]  # inside main()
    assert "nets" in edges["restore.generator"]
