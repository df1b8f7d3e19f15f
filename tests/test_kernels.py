"""The gufunc declaration layer: lazy per-dtype compilation, layouts, errors."""

import numpy as np
import pytest

from oceanflow.kernels import COMPILE_SECONDS, Kernel, gufunc
from oceanflow.kernels.polynomials import horner, horner_varying


def test_kernels_compile_lazily_per_dtype_and_record_the_time():
    assert isinstance(horner, Kernel) and horner.layout == "(n),(m)->(n)"
    ufunc = horner.for_dtype("float32")
    assert horner.for_dtype(np.float32) is ufunc
    result = ufunc(np.arange(4, dtype="f4"), np.array([2, 1], dtype="f4"))
    assert result.dtype == np.float32
    np.testing.assert_array_equal(result, np.polyval([2, 1], np.arange(4)))


def test_a_kernel_compiles_on_its_first_call_only_and_records_how_long_it_took():
    @gufunc("(n)->(n)", "void({t}[::1], {t}[::1])", cache=False)
    def negate_for_this_test(x, out):
        for i in range(x.shape[0]):
            out[i] = -x[i]

    key = ("negate_for_this_test", "float64")
    assert key not in COMPILE_SECONDS  # declaring compiles nothing
    np.testing.assert_array_equal(negate_for_this_test(np.arange(3.0)), -np.arange(3.0))
    seconds = COMPILE_SECONDS[key]
    assert seconds > 0 and ("negate_for_this_test", "float32") not in COMPILE_SECONDS
    negate_for_this_test(np.arange(3.0))
    assert COMPILE_SECONDS[key] == seconds  # the second call reuses the compiled loop


def test_integer_dtypes_are_refused_with_a_fix():
    with pytest.raises(TypeError, match="astype"):
        horner.for_dtype("int64")


def test_kernel_broadcasts_loop_dimensions_like_a_numpy_gufunc():
    x = np.linspace(-1, 1, 12).reshape(3, 4)
    c = np.broadcast_to(np.arange(1.0, 4.0)[:, None], (3, 3, 4))  # stride-0 coefficients
    np.testing.assert_allclose(horner_varying(x, c), np.polyval([1.0, 2.0, 3.0], x))


def test_a_new_kernel_is_one_loop_plus_one_declaration():
    def triple(x, out):
        for i in range(x.shape[0]):
            out[i] = 3 * x[i]

    kernel = gufunc("(n)->(n)", "void({t}[::1], {t}[::1])", cache=False)(triple)
    np.testing.assert_array_equal(kernel(np.arange(3.0)), [0.0, 3.0, 6.0])


def test_strided_input_to_a_contiguous_kernel_is_made_contiguous():
    x = np.linspace(-1, 1, 400)[::2]  # strided view: the [::1] kernel must not read it as contiguous
    np.testing.assert_allclose(horner(x, np.array([1.0, 2.0, 3.0])), np.polyval([1.0, 2.0, 3.0], x))
    with pytest.raises(ValueError, match="C-contiguous"):
        horner(x, np.array([1.0, 2.0]), np.empty(400)[::2])


_CACHE_PROBE = """
import importlib, pkgutil, numba, oceanflow.kernels as kernels
from numba.core.dispatcher import Dispatcher
for info in pkgutil.iter_modules(kernels.__path__):
    module = importlib.import_module(f"oceanflow.kernels.{info.name}")
    for name, obj in vars(module).items():
        if isinstance(obj, Dispatcher) and obj.__module__ == module.__name__:
            print(f"{info.name}.{name}", type(obj._cache).__name__)
        elif isinstance(obj, kernels.Kernel):
            print(f"{info.name}.{name}", obj.cache)
"""


@pytest.mark.parametrize("setting, expected", [("0", {"NullCache", "False"}), ("1", {"FunctionCache", "True"})])
def test_every_jitted_function_honours_oceanflow_numba_cache(setting, expected):
    """kernels/climatology.py hard-coded cache=True; every njit helper and gufunc now follows the setting."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "OCEANFLOW_NUMBA_CACHE": setting}
    run = subprocess.run([sys.executable, "-c", _CACHE_PROBE], env=env, capture_output=True, text=True, check=True)
    found = dict(line.rsplit(" ", 1) for line in run.stdout.splitlines())
    assert "climatology._start" in found and "fitting._solve" in found and "polynomials.horner" in found
    assert set(found.values()) == expected, found


_HELPER_PROBE = """
from oceanflow.kernels import mhw, sorting
mhw.pooled_climatology.for_dtype("float32")
for helper in (mhw._pool_stats, sorting.load_sorted, sorting.merge_smallest):
    print(helper.__name__, len(helper.overloads), helper.signatures)
"""


def test_the_thresholds_kernel_compiles_each_of_its_helpers_once():
    """A helper first called with a literal (``s = 0``) was compiled for ``Literal[int](0)`` and again
    for int64: a second compilation of the same code within the first result's compile time.  (In a
    fresh interpreter, cache off: a kernel loaded from the cache compiles no helper.)"""
    import os
    import subprocess
    import sys

    env = {**os.environ, "OCEANFLOW_NUMBA_CACHE": "0"}
    run = subprocess.run([sys.executable, "-c", _HELPER_PROBE], env=env, capture_output=True, text=True, check=True)
    counts = {line.split()[0]: line.split(maxsplit=2)[1:] for line in run.stdout.splitlines()}
    assert set(counts) == {"_pool_stats", "load_sorted", "merge_smallest"}
    assert all(count == "1" for count, _ in counts.values()), counts
