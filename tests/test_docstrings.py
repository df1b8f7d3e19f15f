"""Every docstring example in the package runs and shows what it says."""

import doctest
import importlib
import pkgutil

import pytest

import oceanflow

MODULES = sorted(
    m.name for m in pkgutil.walk_packages(oceanflow.__path__, "oceanflow.") if m.name != "oceanflow.__main__"
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
