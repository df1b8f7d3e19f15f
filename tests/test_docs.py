"""The documentation builds with warnings as errors, and documents what the package offers."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def html(tmp_path_factory):
    pytest.importorskip("sphinx")
    out = tmp_path_factory.mktemp("html")
    run = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", str(ROOT / "docs"), str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr
    return out


def test_api_reference_covers_the_public_api(html):
    import oceanflow
    from oceanflow import datasets, eos, mhw

    documented = set(re.findall(r'id="(oceanflow\.[\w.]+)"', (html / "api.html").read_text()))
    expected = {f"oceanflow.{name}" for name in oceanflow.__all__ if callable(getattr(oceanflow, name))}
    expected |= {f"oceanflow.eos.{name}" for name in eos.__all__}
    expected |= {f"oceanflow.datasets.{name}" for name in datasets.__all__}
    expected |= {f"oceanflow.mhw.{name}" for name in mhw.__all__}
    assert expected <= documented, sorted(expected - documented)


def test_cli_reference_is_the_commands_own_help(html):
    from oceanflow.cli import COMMANDS

    text = (html / "cli.html").read_text()
    for name in COMMANDS:
        assert f'id="oceanflow-{name}"' in text
        assert f"usage: oceanflow {name}" in text
    assert "--overwrite" in text and "examples:" in text


def test_user_guide_pages_exist(html):
    for page in ("install", "concepts", "chunking", "climatology", "mhw", "eos", "hpc", "cli", "notebooks"):
        assert (html / f"{page}.html").exists()


def test_bad_input_table_lists_every_case_with_its_message(html):
    import sys

    sys.path.insert(0, str(ROOT / "tests"))
    from bad_inputs import CASES

    text = html_text(html / "bad_inputs.html")
    assert f"inputs tried: {len(CASES)}; clear errors: {len(CASES)}; silent results: 0; hangs: 0" in text
    for case in CASES:
        assert case.input in text, case.input
    assert "chunk size 0 for dimension 'time' is not allowed" in text  # the messages, verbatim


def html_text(path):
    import html as html_module

    return html_module.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", path.read_text())))


def test_architecture_and_readme_name_files_that_exist():
    """Every file or folder named in docs/architecture.md and README's Layout is in the tree."""
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    paths = set(tracked) | {str(Path(p).parent) + "/" for p in tracked}
    layout = re.search(r"## Layout\n(.*?)(\n## |\Z)", (ROOT / "README.md").read_text(), re.S).group(1)
    text = (ROOT / "docs" / "architecture.md").read_text() + layout
    names = set(re.findall(r"`([\w./]+(?:\.py|\.yaml|/))`", text))
    assert len(names) > 40
    missing = sorted(n for n in names if not any(p == n or p.endswith("/" + n) for p in paths))
    assert not missing, f"named but not in the tree: {missing}"
