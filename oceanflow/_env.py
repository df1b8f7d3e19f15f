"""Switches read from ``OCEANFLOW_*`` environment variables, all with one set of values.

On: ``1``, ``true``, ``yes``, ``on``; off: ``0``, ``false``, ``no``, ``off``
(any case, spaces around ignored); unset or empty: the switch's default.  Any
other value is refused with an error naming the variable and these values,
rather than silently read as on or off.  docs/install.rst lists the variables.

Example
-------
>>> import os
>>> os.environ["EXAMPLE_SWITCH"] = " Off "
>>> switch("EXAMPLE_SWITCH", default=True, what="the example")
False
>>> del os.environ["EXAMPLE_SWITCH"]
"""

from __future__ import annotations

import os

__all__ = ["OFF", "ON", "switch"]

#: Values that switch on or off (compared after ``strip().lower()``).
ON, OFF = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def switch(name: str, *, default: bool, what: str) -> bool:
    """Whether the environment variable ``name`` switches ``what`` on (see the module for the values).

    Raises ``ValueError``, naming ``name``, ``what`` and the accepted values, for any other value.
    """
    raw = os.environ.get(name, "")
    value = raw.strip().lower()
    if value in ON:
        return True
    if value in OFF:
        return False
    if not value:
        return default
    raise ValueError(
        f"{name}={raw!r} is not understood: set it to 0 (or false, no, off) to switch {what} off, "
        f"or to 1 (true, yes, on) to switch it on; unset or empty, it is {'on' if default else 'off'}"
    )
