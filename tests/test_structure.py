"""The layers of the code base, read from the imports of every module.

A component never imports another component (what two components share lives once in the
kernel), and the kernel never imports the services that run it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KERNEL = ROOT / "kernel"
COMPONENTS = KERNEL / "components"


def imported_modules(path: Path) -> list[str]:
    """Every module the file at `path` imports, absolute, including imports inside functions."""
    package = ".".join(path.relative_to(ROOT).parts[:-1])
    return imported_by(path.read_text(encoding="utf-8"), package)


def imported_by(source: str, package: str) -> list[str]:
    """Every module `source` imports when it sits in `package` (relative imports resolved)."""
    tree = ast.parse(source)
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            names.append(module)
            # `from kernel.components import vert_lr` imports a component too.
            names.extend(f"{module}.{alias.name}" for alias in node.names)
    return names


def test_no_component_imports_another_component() -> None:
    # Prepare
    components = sorted(p.name for p in COMPONENTS.iterdir() if (p / "__init__.py").is_file())
    assert len(components) > 10

    # Execute
    crossings: list[str] = []
    for name in components:
        for path in sorted((COMPONENTS / name).rglob("*.py")):
            for module in imported_modules(path):
                parts = module.split(".")
                if parts[:2] == ["kernel", "components"] and len(parts) > 2 and parts[2] != name:
                    crossings.append(f"{path.relative_to(ROOT)} imports {module}")

    # Assert
    assert crossings == []


def test_imports_are_read_in_every_form() -> None:
    # Prepare: a module of HorzLR borrowing other components' blocks in each way Python allows.
    source = (
        "from kernel.components.vert_lr import optimizer\n"
        "import kernel.components.distribution.sums\n"
        "def later():\n"
        "    from ..woe.woe import WOE\n"
    )

    # Execute
    names = imported_by(source, "kernel.components.horz_lr")

    # Assert
    assert "kernel.components.vert_lr.optimizer" in names
    assert "kernel.components.distribution.sums" in names
    assert "kernel.components.woe.woe" in names


def test_kernel_never_imports_services() -> None:
    # Execute
    offenders = [
        f"{path.relative_to(ROOT)} imports {module}"
        for path in sorted(KERNEL.rglob("*.py"))
        for module in imported_modules(path)
        if module == "services" or module.startswith("services.")
    ]

    # Assert
    assert offenders == []


def test_every_type_ignore_names_its_code_and_reason() -> None:
    # Prepare: the code mypy holds to strict mode.
    paths = sorted([*KERNEL.rglob("*.py"), *(ROOT / "services" / "common").rglob("*.py")])

    # Execute
    bare = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in paths
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if "type: ignore" in line and not re.search(r"# type: ignore\[[a-z-]+(, *[a-z-]+)*\]  # \S", line)
    ]

    # Assert
    assert bare == []


def test_the_logistic_link_is_written_once() -> None:
    # Prepare: the two ways this code base writes the sigmoid and the log-loss of a raw score.
    forms = ("np.tanh(0.5", "np.logaddexp(0.0")

    # Execute
    copies = [
        f"{path.relative_to(ROOT)}: {form}"
        for path in sorted(KERNEL.rglob("*.py"))
        if path.parent.name != "blocks"
        for form in forms
        if form in path.read_text(encoding="utf-8")
    ]

    # Assert: everything else imports kernel.blocks.link.
    assert copies == []


def import_graph(packages: tuple[str, ...]) -> dict[str, set[str]]:
    """Module -> the modules of `packages` it imports (a package's own ancestors left out: Python
    imports them first anyway); imports under `if TYPE_CHECKING:` are not run and not counted."""
    modules: dict[str, Path] = {}
    for top in packages:
        for path in sorted((ROOT / top).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                node.body = []
        deps: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and all(f"{node.module}.{a.name}" in modules for a in node.names):
                # `from package import submodule`: only the submodules count.
                found = [f"{node.module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import | ast.ImportFrom):
                found = imported_by(ast.unparse(node), package)
            else:
                continue
            deps.update(m for m in found if m in modules and m != name and not name.startswith(m + "."))
        graph[name] = deps
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_cycles_are_found_in_an_import_graph() -> None:
    # Prepare: a -> b -> c -> a, and d -> a outside the loop.
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}

    # Execute / Assert
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_in_kernel_and_services() -> None:
    # Prepare: every import, also those inside functions (a lazy import hides a cycle, it does not remove it).
    graph = import_graph(("kernel", "services"))
    assert graph["services.transfer.lane"] >= {"kernel.federation.wire.lane"}

    # Execute / Assert
    assert cycles(graph) == []
