"""Sphinx configuration: user guide and API reference from the docstrings (no network access)."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # document this checkout, not another installed copy
sys.path.insert(0, str(Path(__file__).parent / "_ext"))

import oceanflow  # noqa: E402

project = "oceanflow"
author = "oceanflow developers"
release = version = oceanflow.__version__
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "myst_parser",
    "oceanflow_cli",
    "oceanflow_statistics",
    "oceanflow_bad_inputs",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
napoleon_numpy_docstring = True
napoleon_google_docstring = False
napoleon_use_rtype = False
autodoc_member_order = "bysource"
autodoc_typehints = "none"
autodoc_default_options = {"members": True, "undoc-members": False}
default_role = "py:obj"
nitpicky = False
exclude_patterns = ["_build"]
html_theme = "alabaster"
html_static_path = []
