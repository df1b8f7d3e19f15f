"""numba's on-disk cache of the kernels (:mod:`oceanflow.kernels._cache`): a kernel cached before one of
the modules it imports changed is compiled again from the new source, in a fresh process, instead of
loading its old machine code (numba alone stamps a kernel's cache with its own file only)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import oceanflow

# A kernel of its own module that orders the two rows of each column with sorting.py's compare_exchange.
_PROBE = '''
from ._declare import gufunc
from .sorting import compare_exchange


@gufunc("(r,c)->(r,c)", "void({t}[:, ::1], {t}[:, ::1])", fastmath=False)
def ordered(x, out):
    """Rows 0 and 1 of ``x`` ordered column by column (row 2: scratch)."""
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            out[i, j] = x[i, j]
    compare_exchange(out, 0, 1, out[2])
'''

_CHILD = """
import json
import numpy as np
from oceanflow.kernels._probe import ordered
x = np.array([[3.0, -1.0, 2.0, 5.0], [1.0, 4.0, 2.0, -6.0], [0.0, 0.0, 0.0, 0.0]])
print(json.dumps(ordered(x)[:2].tolist()))
"""

_LESSER_FIRST = "        low[j] = u if u < w else w\n        s[b, j] = w if u < w else u\n"
_GREATER_FIRST = "        low[j] = w if u < w else u\n        s[b, j] = u if u < w else w\n"


def _run(root: Path, where: str) -> tuple[list, str]:
    """The probe kernel's rows in a fresh process on the copied package under ``root``, with numba's
    cache log; the cache beside the sources (``__pycache__``) or in ``NUMBA_CACHE_DIR``."""
    env = dict(os.environ, PYTHONPATH=str(root), OCEANFLOW_NUMBA_CACHE="1", NUMBA_DEBUG_CACHE="1")
    env.pop("NUMBA_CACHE_DIR", None)
    if where == "NUMBA_CACHE_DIR":
        env["NUMBA_CACHE_DIR"] = str(root / "numba-cache")
    child = subprocess.run([sys.executable, "-c", _CHILD], env=env, cwd=root, capture_output=True, text=True)
    assert child.returncode == 0, child.stderr[-2000:]
    *log, rows = child.stdout.strip().splitlines()
    return json.loads(rows), "\n".join(log)


@pytest.mark.parametrize("where", ["__pycache__", "NUMBA_CACHE_DIR"])
def test_a_kernel_is_compiled_again_when_only_a_module_it_imports_changes(tmp_path, where):
    package = tmp_path / "oceanflow"
    source = Path(oceanflow.__file__).parent
    shutil.copytree(source / "kernels", package / "kernels", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(source / "_env.py", package / "_env.py")
    (package / "__init__.py").write_text("")
    (package / "kernels" / "_probe.py").write_text(_PROBE)
    x = np.array([[3.0, -1.0, 2.0, 5.0], [1.0, 4.0, 2.0, -6.0]])

    first, log = _run(tmp_path, where)
    assert first == np.sort(x, axis=0).tolist()
    assert "data saved" in log and "data loaded" not in log
    again, log = _run(tmp_path, where)
    assert again == first
    assert "data loaded" in log and "data saved" not in log  # the cache is used

    helper = package / "kernels" / "sorting.py"
    text = helper.read_text()
    assert _LESSER_FIRST in text
    helper.write_text(text.replace(_LESSER_FIRST, _GREATER_FIRST))  # the kernel's own file unchanged
    changed, log = _run(tmp_path, where)
    assert changed == np.sort(x, axis=0)[::-1].tolist(), "the kernel's old machine code was loaded"
    assert "data saved" in log
    cache = package / "kernels" / "__pycache__" if where == "__pycache__" else tmp_path / "numba-cache"
    indexes = list(tmp_path.rglob("*.nbi"))
    assert indexes and all(cache in index.parents for index in indexes)  # where numba itself keeps them
