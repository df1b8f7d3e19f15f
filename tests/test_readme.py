"""README's example runs as printed, and CI runs README's test command."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_python_example_runs_and_finds_the_built_in_trend(tmp_path, monkeypatch, capsys):
    from oceanflow import datasets

    code = re.search(r"## Example\n\n```python\n(.*?)```", README, re.S).group(1)
    assert len(code.strip().splitlines()) <= 10
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    per_year = float(capsys.readouterr().out.split()[0])
    assert abs(per_year - datasets.SST_TREND) < 0.002
    assert (tmp_path / "anomaly.zarr").is_dir()


def test_ci_runs_the_readme_test_command():
    block = re.search(r"## Run the tests\n\n```bash\n(.*?)\n```", README, re.S).group(1)
    install_and_test = block.split("&& ", 2)[-1]  # after creating and activating the venv
    assert install_and_test == 'pip install -e ".[test]" && python -m pytest'
    assert 'python -m pip install --quiet -e ".[test]" && python -m pytest' in (ROOT / ".ci" / "run").read_text()


def test_demo_command_is_the_console_script():
    block = re.search(r"## Run the demonstration.*?```bash\n(.*?)\n```", README, re.S).group(1)
    assert block.endswith('pip install -e ".[plot]" && oceanflow demo')
    assert 'oceanflow = "oceanflow.cli:main"' in (ROOT / "pyproject.toml").read_text()
