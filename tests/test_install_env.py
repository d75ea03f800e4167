"""The simulated README install (tests/install_env.py) really hides the test extra."""

import subprocess
import sys

from tests.install_env import readme_install_env, required_distributions


def imports_in_readme_install(module: str) -> bool:
    result = subprocess.run(
        [sys.executable, "-c", f"import {module}"],
        env=readme_install_env(),
        capture_output=True,
        text=True,
    )
    return result.returncode == 0


def test_the_test_extra_is_not_importable_there():
    assert not imports_in_readme_install("pytest")
    assert not imports_in_readme_install("xdist")


def test_what_the_project_requires_is_importable_there():
    assert {"snakemake", "torch", "pygments"} <= required_distributions()
    assert imports_in_readme_install("pygments")  # snakemake[reports]: `snakemake --report`
    assert imports_in_readme_install("imprint.stages")


def test_a_hidden_module_is_not_found_there_as_if_not_installed():
    # torch probes optional modules with find_spec: it must answer None, not raise
    result = subprocess.run(
        [sys.executable, "-c", "import importlib.util; print(importlib.util.find_spec('pytest'))"],
        env=readme_install_env(),
        capture_output=True,
        text=True,
    )
    assert result.stdout.strip() == "None", result.stderr
