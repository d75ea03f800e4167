"""Which library code a workflow script runs, and a hash of it, read from the source.

Snakemake tracks a rule's script, not what the script imports. Each rule therefore passes
``code_hash(script)`` as a ``param``: a hash of the script and of every module of this package
that it can run, found by following its imports through the source (:mod:`ast`). Editing a
module reruns exactly the stages whose scripts reach it, with no list to keep by hand.

The imports are followed per name, not per module, because the package imports lazily inside
functions (so that a job does not pay for scikit-learn or torchvision it does not need):
``from imprint.stages import run_nc1`` reaches the module-level imports of ``imprint.stages``,
the imports inside ``run_nc1`` and those of the module-level functions, classes and constants
that ``run_nc1`` names, transitively; a whole-module import (``import imprint.x``) reaches all of
``imprint.x``. :mod:`modulefinder` only works per module, which would make every stage depend on
everything that ``imprint.stages`` imports in any of its functions; hence this small walker.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

PACKAGE = __name__.split(".")[0]
PACKAGE_DIR = Path(__file__).resolve().parent
#: The symbol that stands for "the whole module" (every import, at any depth).
WHOLE = "*"
#: The symbol that stands for "the module's top level only" (what importing it executes).
TOP = ""


@dataclass
class _Module:
    top_imports: list[tuple[str, str]] = field(default_factory=list)
    all_imports: list[tuple[str, str]] = field(default_factory=list)
    # top-level name -> (imports inside its definition, top-level names it refers to)
    symbols: dict[str, tuple[list[tuple[str, str]], set[str]]] = field(default_factory=dict)


def module_file(module: str) -> Path | None:
    """The source file of a module of this package, or None for any other module."""
    parts = module.split(".")
    if parts[0] != PACKAGE:
        return None
    path = PACKAGE_DIR.joinpath(*parts[1:])
    if path.with_suffix(".py").is_file():
        return path.with_suffix(".py")
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    return None


def _imports(node: ast.AST, module: str) -> list[tuple[str, str]]:
    """(module, symbol) pairs of this package that the import statements under ``node`` load."""
    found = []
    for statement in ast.walk(node):
        if isinstance(statement, ast.Import):
            found += [(alias.name, WHOLE) for alias in statement.names]
        elif isinstance(statement, ast.ImportFrom):
            base = statement.module or ""
            if statement.level:
                path = module_file(module)
                package = (
                    module if path and path.name == "__init__.py" else module.rpartition(".")[0]
                )
                base = importlib.util.resolve_name("." * statement.level + base, package)
            for alias in statement.names:
                submodule = f"{base}.{alias.name}"
                if module_file(submodule) is not None:  # `from package import module`
                    found.append((submodule, WHOLE))
                else:
                    found.append((base, WHOLE if alias.name == "*" else alias.name))
    return [(name, symbol) for name, symbol in found if module_file(name) is not None]


def _names(node: ast.AST) -> set[str]:
    return {child.id for child in ast.walk(node) if isinstance(child, ast.Name)}


def _assigned(statement: ast.stmt) -> list[str]:
    targets = []
    if isinstance(statement, ast.Assign):
        targets = statement.targets
    elif isinstance(statement, ast.AnnAssign | ast.AugAssign):
        targets = [statement.target]
    return [
        name.id for target in targets for name in ast.walk(target) if isinstance(name, ast.Name)
    ]


@functools.cache
def _parse(module: str) -> _Module:
    tree = ast.parse(module_file(module).read_text(), filename=str(module_file(module)))
    info = _Module(all_imports=_imports(tree, module))
    for statement in tree.body:
        if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            # A function's decorators, defaults and annotations run at import time, its body
            # when called: both count for the symbol.
            info.symbols[statement.name] = (_imports(statement, module), _names(statement))
        elif isinstance(statement, ast.Import | ast.ImportFrom):
            info.top_imports += _imports(statement, module)
        else:
            # Other top-level statements (constants, registries, `if TYPE_CHECKING:` blocks)
            # run on import; a constant also stands for what its value names.
            for name in _assigned(statement):
                info.symbols[name] = ([], _names(statement))
            info.top_imports += [
                pair for pair in _imports(statement, module) if not _under_type_checking(statement)
            ]
    return info


def _under_type_checking(statement: ast.stmt) -> bool:
    return isinstance(statement, ast.If) and "TYPE_CHECKING" in _names(statement.test)


def reached_modules(script: str | Path) -> list[str]:
    """The modules of this package that ``script`` can run, directly or through other modules,
    sorted by name."""
    tree = ast.parse(Path(script).read_text(), filename=str(script))
    pending = _imports(tree, "__main__")
    seen: set[tuple[str, str]] = set()
    while pending:
        module, symbol = pending.pop()
        if (module, symbol) in seen:
            continue
        seen.add((module, symbol))
        info = _parse(module)
        parts = module.split(".")
        # Importing a module executes its packages' __init__ first.
        pending += [(".".join(parts[:depth]), TOP) for depth in range(1, len(parts))]
        pending += info.top_imports
        if symbol == WHOLE:
            pending += info.all_imports
        elif symbol != TOP:
            pending += _symbol_imports(module, symbol)
    return sorted({module for module, _ in seen})


def _symbol_imports(module: str, symbol: str) -> list[tuple[str, str]]:
    """The imports that using ``symbol`` of ``module`` can execute: those inside its definition
    and inside the module's other top-level names that it refers to, transitively."""
    info = _parse(module)
    if symbol not in info.symbols:
        # A name the module imported itself (a re-export) or defines dynamically.
        return info.all_imports
    imports, todo, done = [], [symbol], set()
    while todo:
        name = todo.pop()
        if name in done or name not in info.symbols:
            continue
        done.add(name)
        own_imports, referenced = info.symbols[name]
        imports += own_imports
        todo += referenced
    return imports


def code_hash(script: str | Path) -> str:
    """A short hash of ``script`` and of the source of every module it reaches."""
    digest = hashlib.sha256(Path(script).read_bytes())
    for module in reached_modules(script):
        digest.update(module.encode())
        digest.update(module_file(module).read_bytes())
    return digest.hexdigest()[:16]
