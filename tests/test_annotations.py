"""The public API is fully annotated: every function, method and property reachable from a public
``__all__`` names the types of its parameters and of its result (mypy checks that they agree)."""

import importlib
import inspect

import pytest

#: The public namespaces; a function added to any of their ``__all__`` is checked with no list to update.
PUBLIC = [
    "oceanflow",
    "oceanflow.eos",
    "oceanflow.mhw",
    "oceanflow.datasets",
    "oceanflow.chunking",
    "oceanflow.cluster",
]


def unannotated(function):
    """The parameters (and ``return``) of ``function`` without an annotation."""
    signature = inspect.signature(function)
    missing = [
        p.name
        for p in signature.parameters.values()
        if p.annotation is inspect.Parameter.empty and p.name not in ("self", "cls")
    ]
    if signature.return_annotation is inspect.Signature.empty:
        missing.append("return")
    return missing


def public_callables(module_name):
    """(qualified name, function) for each function in the module's ``__all__`` and each public method,
    ``__init__`` and property of its classes that oceanflow defines."""
    module = importlib.import_module(module_name)
    for name in module.__all__:
        obj = getattr(module, name)
        if inspect.isclass(obj):
            if not obj.__module__.startswith("oceanflow"):
                continue
            for klass in obj.__mro__:
                if not klass.__module__.startswith("oceanflow"):
                    continue
                for attr, value in vars(klass).items():
                    if attr.startswith("_") and attr != "__init__":
                        continue
                    if isinstance(value, property):
                        value = value.fget
                    elif isinstance(value, (classmethod, staticmethod)):
                        value = value.__func__
                    if inspect.isfunction(value):
                        yield f"{module_name}.{name}.{attr}", value
        elif inspect.isfunction(obj) or (callable(obj) and not isinstance(obj, (int, float, str, tuple, dict))):
            yield f"{module_name}.{name}", obj


@pytest.mark.parametrize("module_name", PUBLIC)
def test_public_api_is_annotated(module_name):
    found = list(public_callables(module_name))
    assert found, f"{module_name}.__all__ names no function"
    missing = {name: unannotated(f) for name, f in found if unannotated(f)}
    assert not missing, f"annotate these public functions (parameters and return): {missing}"


def test_the_check_sees_a_missing_annotation():
    def half(x: float, y):
        return x / 2

    assert unannotated(half) == ["y", "return"]
