"""``oceanflow mhw``: marine heatwaves or cold spells (Hobday et al. 2016, 2018) of a daily variable."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

from ._common import UsageError, add_inputs, open_input, say, with_time

HELP = "marine heatwaves or cold spells (Hobday et al. 2016, 2018) of daily sea surface temperature"
EXAMPLES = """examples:
  oceanflow mhw sst_*.nc -o mhw.zarr --base 1983 2012
  oceanflow mhw sst.zarr -o mhw.zarr --events --summary YS      # also mhw_events.zarr and mhw_summary.zarr
  oceanflow mhw sst.zarr -o cold.zarr --cold --plot=-30,110     # and cold.png: the pixel nearest 30S 110E
  oceanflow mhw sst.zarr -o mhw.zarr --plot @10,25               # the pixel at positions 10, 25"""


def arguments(parser: argparse.ArgumentParser) -> None:
    add_inputs(parser)
    parser.add_argument(
        "--base",
        nargs=2,
        type=int,
        metavar=("FIRST", "LAST"),
        help="base period, whole years, e.g. 1983 2012 (default: every year of the input)",
    )
    parser.add_argument("--cold", action="store_true", help="cold spells instead of heatwaves")
    parser.add_argument("--pctile", type=float, default=90, help="threshold percentile (default: 90)")
    parser.add_argument("--window", type=int, default=11, help="pooling window, days, odd (default: 11)")
    parser.add_argument("--smooth", type=int, default=31, help="running-mean width, days, odd; 1: none (default: 31)")
    parser.add_argument("--min-duration", type=int, default=5, help="shortest event, days (default: 5)")
    parser.add_argument("--max-gap", type=int, default=2, help="longest gap joined, days (default: 2)")
    parser.add_argument("--no-join", action="store_true", help="do not join events across short gaps")
    parser.add_argument(
        "--events", action="store_true", help="also write the events' properties to OUT_events (.zarr or .nc)"
    )
    parser.add_argument(
        "--summary",
        metavar="FREQ",
        help="also write block averages and trends to OUT_summary: YS (years) or e.g. 5YS",
    )
    parser.add_argument(
        "--plot",
        metavar="LAT,LON|@Y,X",
        help="also draw the classic figure of one pixel to OUT.png: nearest to LAT,LON, or at positions @Y,X",
    )


def check(args: argparse.Namespace) -> None:
    from oceanflow.mhw import years_per_block

    if args.plot is not None:
        pixel_of(args.plot)
        if importlib.util.find_spec("matplotlib") is None:
            raise UsageError("--plot draws with matplotlib: pip install 'oceanflow[plot]'")
    if args.summary is not None:
        try:
            years_per_block(args.summary)
        except ValueError as err:
            raise UsageError(f"--summary: {err}") from None


def pixel_of(text: str) -> tuple[str, tuple[float, float]]:
    """``--plot``: ``LAT,LON`` (nearest) or ``@Y,X`` (positions) -> (kind, (a, b))."""
    by_position = text.startswith("@")
    parts = text.lstrip("@").split(",")
    try:
        if len(parts) != 2:
            raise ValueError
        first, second = (float(int(p)) if by_position else float(p) for p in parts)
    except ValueError:
        raise UsageError(
            f"--plot {text!r}: give LAT,LON (e.g. -30,110) or pixel positions @Y,X (e.g. @10,25)"
        ) from None
    return ("position" if by_position else "nearest"), (first, second)


def sibling(output: Path, tag: str, suffix: str | None = None) -> Path:
    """``out.zarr`` -> ``out_TAG.zarr`` (or ``out.SUFFIX`` without a tag)."""
    name = f"{output.stem}_{tag}" if tag else output.stem
    return output.with_name(name + (suffix or output.suffix))


def run(args: argparse.Namespace, operation: str) -> None:
    import oceanflow
    from oceanflow import mhw

    ds = with_time(open_input(args), "mhw")
    if len(ds.data_vars) != 1:
        raise UsageError(
            f"the input has {len(ds.data_vars)} variables along time ({', '.join(ds.data_vars)}); choose one with --var"
        )
    sst = ds[next(iter(ds.data_vars))]
    options = {
        "base": tuple(args.base) if args.base else None,
        "pctile": args.pctile,
        "window": args.window,
        "smooth": args.smooth,
        "cold": args.cold,
    }
    # thresholds, detection, summary and events in the same tasks: one read of the input, none of the output
    written = mhw.save(
        sst,
        args.output,
        events=sibling(args.output, "events") if args.events else None,
        summary=sibling(args.output, "summary") if args.summary else None,
        freq=args.summary or "YS",
        overwrite=args.overwrite,
        progress=not args.quiet,
        operation=operation,
        **options,
        min_duration=args.min_duration,
        join_gaps=not args.no_join,
        max_gap=args.max_gap,
    )
    say(args.quiet, "\n".join(f"wrote {p}" for p in written.values()))
    if not args.plot:
        return
    _plot(oceanflow.open_dataset(args.output), sst, args)


def _plot(written, sst, args):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from oceanflow import mhw

    kind, (a, b) = pixel_of(args.plot)
    space = [d for d in written["intensity"].dims if d != "time"]
    if kind == "position" or not {"lat", "lon"} <= set(written.coords):
        if len(space) != 2:
            raise UsageError(f"--plot needs two spatial dimensions, the data have {space}")
        pixel = dict(zip(space, (int(a), int(b)), strict=True))
    else:
        pixel = {"lat": a, "lon": b}
    ax = mhw.plot(written, sst, **pixel)
    path = sibling(args.output, "", ".png")
    ax.figure.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(ax.figure)
    say(args.quiet, f"wrote {path}")
