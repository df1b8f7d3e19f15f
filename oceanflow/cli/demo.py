"""``oceanflow demo``: sample data, a climatology, anomalies and density, and a figure."""

from __future__ import annotations

from pathlib import Path

from ._common import UsageError

DEMO_DIR = "oceanflow-demo"
HELP = "generate sample data; compute a climatology, anomalies and density; write Zarr outputs and a PNG figure"
EXAMPLES = """examples:
  oceanflow demo                       # ./oceanflow-demo, small sample (about 30 MB)
  oceanflow demo -d /tmp/demo --size tiny --overwrite"""


def arguments(parser) -> None:
    parser.add_argument("-d", "--dir", default=DEMO_DIR, type=Path, help=f"output directory (default: ./{DEMO_DIR})")
    parser.add_argument(
        "--size",
        choices=("tiny", "small", "medium"),
        default="small",
        help="tiny: 10-degree grid, 3 years; small (default): 1 degree, 10 years; medium: 1 degree, 30 years",
    )


def check(args) -> None:
    if args.dir.exists() and not args.dir.is_dir():
        raise UsageError(f"{args.dir} exists and is not a directory; choose another with --dir")


def run(args, operation) -> None:
    from oceanflow import demo

    demo.run(args.dir, size=args.size, overwrite=args.overwrite, quiet=args.quiet)
