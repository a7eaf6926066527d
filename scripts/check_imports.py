"""Check the shape of a package's imports: no cycle, no unexplained import inside a function.

``python scripts/check_imports.py [PACKAGE_DIR]`` (default ``flask_wikimedia``), run by
``make lint``. Static (``ast``), so it sees every import whether or not it runs:

* **Cycles.** An edge A -> B for each module-level import of package module B by module A
  (``from . import x`` counts as an import of ``x`` when ``x`` is a submodule, else of the
  package). Imports under ``if TYPE_CHECKING:`` are
  left out: they never run. Any strongly connected component with more than one module (or a
  module importing itself) is a cycle.
* **Function-level imports.** An import inside a function or method is allowed only with a
  comment on its line or the line above that starts with ``# optional:`` and says why (a
  genuinely optional dependency, or an expensive one only some paths need); anything else is
  usually a cycle being dodged.

Exit status 0 when clean, 1 with one line per problem otherwise.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

OPTIONAL_MARK = "# optional:"


def module_name(package_dir: Path, path: Path) -> str:
    """The dotted name of ``path`` inside the package rooted at ``package_dir``."""
    parts = [package_dir.name, *path.relative_to(package_dir).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(current: str, is_package: bool, level: int, target: str | None) -> str:
    """The absolute module name of a (possibly relative) import in module ``current``."""
    if level == 0:
        return target or ""
    base = current.split(".")
    if not is_package:
        base = base[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join([*base, target] if target else base)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _module_level_imports(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    """Imports that run when the module is imported: the top level and the blocks of top-level
    ``if``/``try``/``with`` statements, except ``if TYPE_CHECKING:``."""
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If):
            if not _is_type_checking(node.test):
                yield from _module_level_imports(node.body)
            yield from _module_level_imports(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody):
                yield from _module_level_imports(block)
            for handler in node.handlers:
                yield from _module_level_imports(handler.body)
        elif isinstance(node, ast.With):
            yield from _module_level_imports(node.body)


def _function_imports(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    for func in ast.walk(tree):
        if isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            for node in ast.walk(func):
                if isinstance(node, ast.Import | ast.ImportFrom):
                    yield node


def _target(name: str, modules: set[str]) -> str | None:
    """The package module an import of ``name`` names: the longest prefix of ``name`` that is
    one of ``modules`` (``a.b.func`` names ``a.b``), or None for an outside import."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        candidate = ".".join(parts[:i])
        if candidate in modules:
            return candidate
    return None


def import_graph(package_dir: Path) -> tuple[dict[str, set[str]], list[str]]:
    """The module-level import edges among the package's modules, and the unexplained
    function-level imports (``path:line: ...``)."""
    files = {module_name(package_dir, p): p for p in sorted(package_dir.rglob("*.py"))}
    modules = set(files)
    edges: dict[str, set[str]] = {name: set() for name in modules}
    problems: list[str] = []
    for name, path in files.items():
        source = path.read_text(encoding="utf-8")
        lines = source.splitlines()
        tree = ast.parse(source, filename=str(path))
        is_package = path.name == "__init__.py"
        for node in _module_level_imports(tree.body):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                # ``from . import x`` names submodule ``x`` if there is one, else the package.
                base = _resolve(name, is_package, node.level, node.module)
                targets = [f"{base}.{alias.name}" for alias in node.names]
            for target in targets:
                # Only the module named: importing ``a.b`` also runs ``a/__init__``, but a
                # package is always being imported before its submodules, so that implied edge
                # is no cycle; an explicit ``from a import name`` is one.
                module = _target(target, modules)
                if module is not None and module != name:
                    edges[name].add(module)
        for node in _function_imports(tree):
            here = lines[node.lineno - 1]
            above = lines[node.lineno - 2] if node.lineno > 1 else ""
            if OPTIONAL_MARK not in here and not above.strip().startswith(OPTIONAL_MARK):
                problems.append(
                    f"{path}:{node.lineno}: import inside a function without an "
                    f"'{OPTIONAL_MARK} why' comment: {ast.unparse(node)}"
                )
    return edges, problems


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in edges.get(node, ()):
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def check(package_dir: Path) -> list[str]:
    """Every problem in the package at ``package_dir``, one line each."""
    edges, problems = import_graph(package_dir)
    for component in cycles(edges):
        problems.append("import cycle among: " + " <-> ".join(component))
    return problems


def main(argv: list[str]) -> int:
    package_dir = Path(argv[1] if len(argv) > 1 else "flask_wikimedia")
    problems = check(package_dir)
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} import problem(s) in {package_dir}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
