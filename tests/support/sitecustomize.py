"""Imported at start-up when this folder is on PYTHONPATH: the top-level modules named in
IMPRINT_BLOCKED_MODULES (comma-separated) behave as if they were not installed: importing one
fails, ``importlib.util.find_spec`` answers None for it (as for a module that is not
installed: torch probes optional modules so), and module discovery (pkgutil, which Snakemake's
plugin registries use) does not list it."""

import importlib.abc
import importlib.util
import os
import pkgutil
import sys

BLOCKED = frozenset(filter(None, os.environ.get("IMPRINT_BLOCKED_MODULES", "").split(",")))


class _Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(
                f"No module named {fullname!r} (blocked by the test)", name=fullname
            )
        return None


_iter_modules = pkgutil.iter_modules


def _iter_unblocked_modules(path=None, prefix=""):
    for module in _iter_modules(path, prefix):
        if path is not None or module.name not in BLOCKED:
            yield module


_find_spec = importlib.util.find_spec


def _find_unblocked_spec(name, package=None):
    if name.partition(".")[0] in BLOCKED:
        return None
    return _find_spec(name, package)


if BLOCKED:
    sys.meta_path.insert(0, _Refuse())
    pkgutil.iter_modules = _iter_unblocked_modules
    importlib.util.find_spec = _find_unblocked_spec
