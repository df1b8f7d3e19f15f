"""The active ``distributed`` client, asked in one place (chunk sizes, saving and progress follow it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from distributed import Client


def active_client() -> Client | None:
    """The current ``distributed`` client, or None (also when distributed is not installed)."""
    try:
        from distributed import get_client

        return get_client()
    except (ImportError, ValueError):
        return None
