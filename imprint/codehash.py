"""Which library code a workflow script runs, and a hash of it, read from the source.

Snakemake tracks a rule's script, not what the script imports. Each rule therefore passes
``code_hash(script)`` as a ``param``: a hash of the script and of every module of this package
that it can run, found by following its imports through the source (:mod:`ast`). Editing a
module reruns exactly the stages whose scripts reach it, with no list to keep by hand.

The imports are followed per name, not per module, because the package imports lazily inside
functions (so that a job does not pay for scikit-learn or torchvision it does not need):
``from imprint.stages import run_nc1`` reaches the top level of ``imprint.stages`` (the top
level of each module it imports), the imports inside ``run_nc1`` and those of the module-level
functions, classes and constants that ``run_nc1`` names, transitively, also where they were
imported from another module of the package; a whole-module import (``import imprint.x``)
reaches all of ``imprint.x``. A function a module imports at its top but that no reached code
names is not reached: a statistics job that imports ``imprint.grid`` for its column names does
not run k-means. A function registered with a decorator (``@register_gen(...)``, which stores
it in ``GEN_REGISTRY``) is reached where reached code dispatches through the registry, not
where a list of names derived from it is read. :mod:`modulefinder` only works per module,
which would make every stage depend on everything that ``imprint.stages`` imports in any of
its functions; hence this small walker.
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
    #: what importing the module executes: the modules its top level imports (their top level,
    #: or all of a module imported whole) and the names its unassigned statements use
    top_imports: list[tuple[str, str]] = field(default_factory=list)
    all_imports: list[tuple[str, str]] = field(default_factory=list)
    # top-level name -> (imports inside its definition, top-level names it refers to)
    symbols: dict[str, tuple[list[tuple[str, str]], set[str]]] = field(default_factory=dict)
    #: a name bound by a top-level ``from package.x import name`` -> (package.x, name): its
    #: definition is reached only where code that is reached refers to the name
    imported_names: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: names that top-level statements other than definitions and assignments use on import
    import_time_names: set[str] = field(default_factory=set)
    #: a registry (a top-level name that a registration decorator of the module refers to) ->
    #: the functions registered into it with ``@decorator(...)``
    registered: dict[str, list[str]] = field(default_factory=dict)
    #: top-level functions and classes (code that can call what a registry holds)
    definitions: set[str] = field(default_factory=set)


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
            info.definitions.add(statement.name)
        elif isinstance(statement, ast.ImportFrom):
            for alias, (target, symbol) in zip(
                statement.names, _aliased_imports(statement, module), strict=True
            ):
                if target is None:
                    continue  # not this package
                if symbol == alias.name:
                    # Importing a function or constant runs the module's top level; its own
                    # code runs only where something reached uses the name.
                    info.top_imports.append((target, TOP))
                    info.imported_names[alias.asname or alias.name] = (target, symbol)
                else:
                    info.top_imports.append((target, symbol))
        elif isinstance(statement, ast.Import):
            info.top_imports += _imports(statement, module)
        else:
            # Other top-level statements (constants, registries, `if TYPE_CHECKING:` blocks)
            # run on import; a constant also stands for what its value names.
            assigned = _assigned(statement)
            for name in assigned:
                info.symbols[name] = ([], _names(statement))
            if not _under_type_checking(statement):
                info.top_imports += _imports(statement, module)
                if not assigned:  # e.g. a call at import time: what it names runs now
                    info.import_time_names |= _names(statement)
    _find_registries(tree, info)
    return info


def _find_registries(tree: ast.Module, info: _Module) -> None:
    """Registrations: a top-level function decorated with ``@register(...)``, where
    ``register`` is a function of the same module, goes into the top-level variables whose
    items ``register`` sets (its registry: ``GEN_REGISTRY[name] = ...``). Code that looks a
    function up in a registry names the registry, not the function; :func:`_symbol_imports`
    therefore reaches every registered function where a reached function or class names the
    registry (a constant derived from it, such as a tuple of names, reads only what the entries
    say about themselves)."""
    functions = [
        statement
        for statement in tree.body
        if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    ]
    # a registration function -> the top-level variables it stores entries into
    registries = {
        function.name: _stored_into(function) & info.symbols.keys() - info.definitions
        for function in functions
    }
    for statement in functions:
        for decorator in statement.decorator_list:
            if not (isinstance(decorator, ast.Call) and isinstance(decorator.func, ast.Name)):
                continue
            for registry in registries.get(decorator.func.id, ()):
                info.registered.setdefault(registry, []).append(statement.name)


def _stored_into(function: ast.AST) -> set[str]:
    """Names whose items ``function`` sets (``NAME[key] = value``): the registries it fills."""
    return {
        target.value.id
        for node in ast.walk(function)
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name)
    }


def _aliased_imports(statement: ast.ImportFrom, module: str) -> list[tuple[str | None, str]]:
    """Per name of a ``from ... import`` statement, the (module, symbol) pair :func:`_imports`
    gives for it, or (None, "") for a module outside this package."""
    pairs = []
    for alias in statement.names:
        single = ast.ImportFrom(module=statement.module, names=[alias], level=statement.level)
        found = _imports(single, module)
        pairs.append(found[0] if found else (None, ""))
    return pairs


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
        for name in info.import_time_names:
            pending += _symbol_imports(module, name)
        if symbol == WHOLE:
            pending += info.all_imports
        elif symbol != TOP:
            pending += _symbol_imports(module, symbol)
    return sorted({module for module, _ in seen})


def _symbol_imports(module: str, symbol: str) -> list[tuple[str, str]]:
    """The imports that using ``symbol`` of ``module`` can execute: those inside its definition
    and inside the module's other top-level names that it refers to, transitively."""
    info = _parse(module)
    if symbol not in info.symbols and symbol not in info.imported_names:
        # A name the module defines dynamically (or a class attribute's name): all of it.
        return info.all_imports
    imports, todo, done = [], [symbol], set()
    while todo:
        name = todo.pop()
        if name in done:
            continue
        done.add(name)
        if name in info.imported_names:  # a name imported at the top and used here
            imports.append(info.imported_names[name])
        elif name in info.symbols:
            own_imports, referenced = info.symbols[name]
            imports += own_imports
            todo += referenced
            if name in info.definitions:  # code that may call what a registry holds
                for registry in referenced & info.registered.keys():
                    todo += info.registered[registry]
    return imports


def code_hash(script: str | Path) -> str:
    """A short hash of ``script`` and of the source of every module it reaches."""
    digest = hashlib.sha256(Path(script).read_bytes())
    for module in reached_modules(script):
        digest.update(module.encode())
        digest.update(module_file(module).read_bytes())
    return digest.hexdigest()[:16]
