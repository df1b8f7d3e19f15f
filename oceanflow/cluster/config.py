"""Profiles: ``oceanflow.yaml`` beside this module merged with the user's through ``dask.config``,
and the settings :func:`oceanflow.cluster.start` would use, checked before anything starts."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import dask.config
import yaml

from .base import Settings
from .kinds import BATCH_SYSTEMS, KINDS, STARTERS
from .units import parse_memory, parse_walltime

CONFIG_FILE = Path(__file__).with_name("oceanflow.yaml")

#: Counts that start nothing at 0, and counts for which 0 makes sense.
_AT_LEAST_ONE = ("jobs", "workers", "threads", "cores", "maximum")
_AT_LEAST_ZERO = ("minimum", "wait")


@functools.cache
def register_defaults() -> None:
    """Ship ``oceanflow.yaml`` as dask.config defaults, and write a commented copy to
    ``~/.config/dask/`` if none is there, as dask-jobqueue does with ``jobqueue.yaml``;
    on first use of the profiles, not on import."""
    dask.config.ensure_file(source=str(CONFIG_FILE))
    with open(CONFIG_FILE) as f:
        dask.config.update_defaults(yaml.safe_load(f))


def _underscored(settings: dict | None) -> Settings:
    return {str(k).replace("-", "_"): v for k, v in (settings or {}).items()}


def profiles() -> dict[str, Settings]:
    """The named cluster profiles: shipped defaults merged with the user's
    ``~/.config/dask/oceanflow.yaml`` (any dask config path or ``DASK_CONFIG``).

    Keys are returned with underscores (``log_directory``), whichever spelling
    the YAML used; every batch system's profile starts from ``batch-defaults``.

    >>> profiles()["slurm"]["memory"]
    '4GiB'
    """
    register_defaults()
    shipped_and_own = dask.config.get("oceanflow.cluster.profiles", None) or {}
    found = {str(name): _underscored(settings) for name, settings in shipped_and_own.items()}
    batch = _underscored(dask.config.get("oceanflow.cluster.batch-defaults", None))
    for kind in BATCH_SYSTEMS:
        found[kind] = {"kind": kind, **batch, **found.get(kind, {})}
    return found


def resolve(kind: str = "local", *, profile: str | None = None, **overrides: Any) -> tuple[str, Settings]:
    """``(kind, settings)`` that :func:`oceanflow.cluster.start` would use, checked.

    ``kind`` may also name a profile (so a command line's ``--cluster NAME``
    takes either).  A profile's own ``kind`` wins over the default ``"local"``.
    Raises ``ValueError`` naming the setting and the fix.
    """
    available = profiles()
    if profile is None and kind not in KINDS and kind in available:
        kind, profile = "local", kind
    named: Settings = {}
    if profile is not None:
        if profile not in available:
            raise ValueError(
                f"unknown cluster profile {profile!r}: the profiles are {sorted(available)} (shipped ones merged "
                "with ~/.config/dask/oceanflow.yaml); define it there under oceanflow.cluster.profiles"
            )
        named = available[profile]
        own_kind = named.get("kind", kind)
        if kind not in ("local", own_kind):
            raise ValueError(f"profile {profile!r} is of kind {own_kind!r}, not {kind!r}: pass one of them only")
        kind = own_kind
    if kind not in KINDS:
        raise ValueError(
            f"unknown cluster kind {kind!r}: choose one of {', '.join(KINDS)}, "
            f"or a profile name from oceanflow.cluster.profiles(): {', '.join(sorted(available))}"
        )
    settings = {**available.get(kind, {}), **named, **_underscored(overrides)}
    settings.pop("kind", None)
    check(settings)
    STARTERS[kind].check(settings)
    return kind, settings


def check(s: Settings) -> None:
    """Refuse malformed sizes and counts that could start no worker, whatever the kind."""
    if s.get("memory") is not None:
        parse_memory(s["memory"])
    if s.get("walltime") is not None:
        parse_walltime(s["walltime"])
    for key in _AT_LEAST_ONE + _AT_LEAST_ZERO:
        value, least = s.get(key), 1 if key in _AT_LEAST_ONE else 0
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < least):
            fix = " (for workers only as work arrives: minimum=0, maximum=N)" if key in ("jobs", "workers") else ""
            raise ValueError(f"cluster setting {key}={value!r} must be a whole number >= {least}{fix}")
    if s.get("maximum") is not None and (s.get("minimum") or 0) > s["maximum"]:
        raise ValueError(
            f"minimum={s['minimum']} exceeds maximum={s['maximum']}: adaptive scaling needs minimum <= maximum"
        )
    timeout = s.get("timeout")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0):
        raise ValueError(f"cluster setting timeout={timeout!r} must be a number of seconds > 0")
