"""``python -m oceanflow``: the ``oceanflow`` command."""

from .cli import main

raise SystemExit(main())
