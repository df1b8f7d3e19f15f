"""Packaging: every library oceanflow imports is declared; one that only one command needs is an extra
whose absence that command reports in one line."""

import ast
import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def requirement_name(requirement):
    return re.split(r"[\s<>=!~\[;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def imported_distributions():
    """``{distribution: {module files that import it}}`` for the third-party imports in oceanflow/."""
    owners = importlib.metadata.packages_distributions()
    found = {}
    for path in sorted((ROOT / "oceanflow").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top in ("oceanflow", "__future__"):
                    continue
                for dist in owners.get(top, [top]):
                    found.setdefault(dist.lower().replace("_", "-"), set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_import_is_a_declared_dependency_or_an_extra():
    core = {requirement_name(r) for r in PROJECT["dependencies"]}
    extras = {name: {requirement_name(r) for r in reqs} for name, reqs in PROJECT["optional-dependencies"].items()}
    imported = imported_distributions()
    assert {"cftime", "psutil", "pyyaml", "dask-jobqueue", "numba"} <= set(imported)  # the scan sees them
    optional = set(imported) - core
    assert optional == {"matplotlib"}, {dist: imported[dist] for dist in optional}
    assert "oceanflow/demo.py" in imported["matplotlib"]
    for extra in ("plot", "test", "notebooks"):
        assert "matplotlib" in extras[extra]


def test_every_module_imports_without_the_optional_libraries():
    code = (
        "import sys, importlib, pkgutil; sys.modules['matplotlib'] = None; import oceanflow; "
        "[importlib.import_module(m.name) for m in pkgutil.walk_packages(oceanflow.__path__, 'oceanflow.') "
        "if m.name != 'oceanflow.__main__']"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, capture_output=True)


def test_one_version_source():
    assert PROJECT["dynamic"] == ["version"] and "version" not in PROJECT
    import oceanflow

    assert importlib.metadata.version("oceanflow") == oceanflow.__version__


def cli_without_matplotlib(tmp_path, *args):
    """The oceanflow command, run with matplotlib impossible to import."""
    code = "import sys; sys.modules['matplotlib'] = None; from oceanflow.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )


def test_the_demo_without_matplotlib_says_which_extra_in_one_line(tmp_path):
    run = cli_without_matplotlib(tmp_path, "demo", "--size", "tiny", "--dir", "out")
    assert run.returncode == 1
    assert run.stderr.splitlines() == [
        "oceanflow: error: the demo draws its figure with matplotlib: pip install 'oceanflow[plot]'"
    ]
    assert not (tmp_path / "out").exists()


def test_mhw_plot_without_matplotlib_says_which_extra_before_any_work(tmp_path):
    run = cli_without_matplotlib(tmp_path, "mhw", "missing.zarr", "-o", "m.zarr", "--plot=-30,110")
    assert run.returncode == 2
    assert run.stderr.splitlines() == ["oceanflow: error: --plot draws with matplotlib: pip install 'oceanflow[plot]'"]
