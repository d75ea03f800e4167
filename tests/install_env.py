"""An environment as the README's install makes it, simulated in this one: every module whose
distributions the project's own requirements (without the test extra) do not pull in is
refused, so that a test finds a requirement that only the test extra happens to provide."""

from __future__ import annotations

import os
import sys
from importlib.metadata import PackageNotFoundError, distribution, packages_distributions
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

SUPPORT = Path(__file__).resolve().parent / "support"


def required_distributions(
    root: str = "imprint-workflow", extras: frozenset = frozenset()
) -> set[str]:
    """Canonical names of ``root`` and of everything its requirements install, transitively."""
    found: set[str] = set()
    seen: set[tuple[str, frozenset]] = set()
    pending = [(root, extras)]
    while pending:
        name, wanted = pending.pop()
        if (canonicalize_name(name), wanted) in seen:
            continue
        seen.add((canonicalize_name(name), wanted))
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            continue  # a requirement for another platform or Python
        found.add(canonicalize_name(dist.metadata["Name"]))
        for line in dist.requires or []:
            requirement = Requirement(line)
            environments = [{"extra": extra} for extra in wanted] or [{"extra": ""}]
            if requirement.marker and not any(
                requirement.marker.evaluate(env) for env in environments
            ):
                continue
            pending.append((requirement.name, frozenset(requirement.extras)))
    return found


def blocked_modules(allowed: set[str]) -> list[str]:
    """Top-level modules that only distributions outside ``allowed`` provide."""
    return sorted(
        module
        for module, dists in packages_distributions().items()
        if not {canonicalize_name(dist) for dist in dists} & allowed
        and module not in sys.stdlib_module_names
    )


def readme_install_env() -> dict[str, str]:
    """os.environ for a subprocess that sees only what `pip install -e .` installs."""
    env = dict(os.environ)
    env["IMPRINT_BLOCKED_MODULES"] = ",".join(blocked_modules(required_distributions()))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SUPPORT), env.get("PYTHONPATH")]))
    return env
