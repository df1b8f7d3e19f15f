"""Count the values outside a range in one pass (the range checks of ``oceanflow.eos.validity``).

One read of the data, no temporaries (NumPy's ``((x < low) | (x > high)).sum()``
makes three arrays); NaN is never counted.

Example
-------
>>> import numpy as np
>>> int(count_outside(np.array([-1.0, 0.5, np.nan, 3.0]), 0.0, 1.0))
2
"""

from ._declare import gufunc


@gufunc("(n),(),()->()", "void({t}[::1], float64, float64, int64[:])")
def count_outside(values, low, high, out):
    """out = how many of ``values`` are below ``low`` or above ``high``."""
    count = 0
    for i in range(values.shape[0]):
        v = values[i]
        count += (v < low) | (v > high)
    out[0] = count


#: Every kernel of this module by name.
KERNELS = {"count_outside": count_outside}
