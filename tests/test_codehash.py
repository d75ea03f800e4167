"""imprint.codehash: which library code a script can run, followed per imported name."""

import shutil

import pytest

from imprint import codehash
from imprint.codehash import code_hash, reached_modules
from tests.conftest import REPO


def script(tmp_path, source: str):
    path = tmp_path / "job.py"
    path.write_text(source)
    return path


def test_a_named_function_reaches_its_own_lazy_imports_and_not_its_neighbours(tmp_path):
    # run_nc1 imports imprint.nc inside its body; run_imprinting, beside it, imports imprint.grid
    reached = reached_modules(script(tmp_path, "from imprint.stages import logged, run_nc1\n"))
    assert reached == ["imprint", "imprint.io", "imprint.nc", "imprint.stages"]


def test_a_whole_module_import_reaches_every_import_of_that_module(tmp_path):
    reached = reached_modules(script(tmp_path, "import imprint.stages\n"))
    assert {
        "imprint.nc",
        "imprint.grid",
        "imprint.gen",
        "imprint.figures",
        "imprint.stats",
        "imprint.tasks",
        "imprint.datasets",
        "imprint.models",
        "imprint.embed",
    } <= set(reached)


def test_names_a_function_refers_to_are_followed_transitively(tmp_path):
    # run_figure -> read_table (same module) and FIGURES -> plot functions -> imprint.stats
    reached = reached_modules(script(tmp_path, "from imprint.stages import run_figure\n"))
    assert {"imprint.figures", "imprint.stats", "imprint.grid"} <= set(reached)
    assert "imprint.nc" not in reached


@pytest.fixture
def package_copy(tmp_path, monkeypatch):
    package = tmp_path / "imprint"
    shutil.copytree(REPO / "imprint", package, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(codehash, "PACKAGE_DIR", package)
    codehash._parse.cache_clear()
    yield package
    codehash._parse.cache_clear()


def test_relative_and_package_imports_resolve(tmp_path, package_copy):
    (package_copy / "extra.py").write_text("from .nc import nc1\nfrom . import tasks\n")
    reached = reached_modules(script(tmp_path, "from imprint.extra import nc1\n"))
    assert reached == ["imprint", "imprint.extra", "imprint.nc", "imprint.tasks"]


def test_the_hash_changes_with_the_code_a_script_reaches_and_only_with_it(tmp_path, package_copy):
    job = script(tmp_path, "from imprint.stages import logged, run_nc1\n")
    before = code_hash(job)
    with open(package_copy / "grid.py", "a") as handle:  # not reached by run_nc1
        handle.write("\n# an edit\n")
    codehash._parse.cache_clear()
    assert code_hash(job) == before
    with open(package_copy / "nc.py", "a") as handle:
        handle.write("\n# an edit\n")
    codehash._parse.cache_clear()
    assert code_hash(job) != before
    job.write_text(job.read_text() + "# an edit of the script\n")
    assert code_hash(job) != before


def test_an_import_added_inside_a_function_is_followed(tmp_path, package_copy):
    job = script(tmp_path, "from imprint.stages import logged, run_nc1\n")
    assert "imprint.tasks" not in reached_modules(job)
    source = (package_copy / "nc.py").read_text()
    (package_copy / "nc.py").write_text(
        source.replace(
            "def nc1(",
            "def nc1(*args):\n    from imprint.tasks import label_map  # noqa: F401\n"
            "    return _nc1(*args)\n\n\ndef _nc1(",
            1,
        )
    )
    codehash._parse.cache_clear()
    assert "imprint.tasks" in reached_modules(job)


def test_the_package_has_no_import_cycles():
    """Counting imports inside functions too (stats and figures once imported each other)."""
    modules = [
        "imprint" if path.stem == "__init__" else f"imprint.{path.stem}"
        for path in (REPO / "imprint").glob("*.py")
    ]
    graph = {
        module: {target for target, _ in codehash._parse(module).all_imports} - {module}
        for module in modules
    }
    graph["imprint"] = set()  # the package's lazy attributes import submodules on demand

    def reaches(start, goal, seen=()):
        return any(
            nxt == goal or (nxt not in seen and reaches(nxt, goal, (*seen, nxt)))
            for nxt in graph.get(start, ())
        )

    cycles = [module for module in modules if reaches(module, module)]
    assert cycles == []


def test_a_function_imported_at_the_top_is_reached_only_where_reached_code_names_it(
    tmp_path, package_copy
):
    """Statistics jobs import imprint.grid for its column names; grid's top level imports
    generate_proxies, whose k-means they never run."""
    (package_copy / "extra.py").write_text(
        "from .gen import generate_proxies as make\n"
        "COLUMNS = ('gen',)\n\n\n"
        "def build():\n    return make\n"
    )
    columns = reached_modules(script(tmp_path, "from imprint.extra import COLUMNS\n"))
    assert "imprint.gen" in columns  # its top level runs on import
    assert "imprint.kmeans" not in columns
    assert "imprint.kmeans" in reached_modules(
        script(tmp_path, "from imprint.extra import build\n")
    )
    # ... and where the module imported whole
    assert "imprint.kmeans" in reached_modules(script(tmp_path, "import imprint.extra\n"))


def test_a_call_at_import_time_reaches_what_it_calls(tmp_path, package_copy):
    (package_copy / "extra.py").write_text(
        "from .gen import generate_proxies\n\nif True:\n    generate_proxies\nCOLUMNS = 1\n"
    )
    assert "imprint.kmeans" in reached_modules(
        script(tmp_path, "from imprint.extra import COLUMNS\n")
    )


def test_a_registered_function_is_reached_where_code_dispatches_through_its_registry(
    tmp_path, package_copy
):
    """GEN methods are looked up in GEN_REGISTRY, never named: a grid job, which dispatches
    through the registry, reaches what every registered method imports (k-means); a job that
    reads only the names derived from the registry does not."""
    (package_copy / "extra.py").write_text(
        "REGISTRY = {}\n\n\n"
        "def register(name):\n"
        "    def decorate(function):\n"
        "        REGISTRY[name] = function\n"
        "        return function\n\n"
        "    return decorate\n\n\n"
        "@register('centres')\n"
        "def centres():\n"
        "    from .kmeans import kmeans\n\n"
        "    return kmeans\n\n\n"
        "NAMES = tuple(REGISTRY)\n\n\n"
        "def dispatch(name):\n"
        "    return REGISTRY[name]()\n"
    )
    assert "imprint.kmeans" in reached_modules(
        script(tmp_path, "from imprint.extra import dispatch\n")
    )
    assert "imprint.kmeans" not in reached_modules(
        script(tmp_path, "from imprint.extra import NAMES\n")
    )
    grid_job = reached_modules(REPO / "scripts" / "run_imprinting.py")
    assert {"imprint.kmeans", "imprint.medoids"} <= set(grid_job)
    assert "imprint.kmeans" not in reached_modules(REPO / "scripts" / "summarize.py")
