"""The public :func:`~oceanflow.mhw.thresholds` and :func:`~oceanflow.mhw.detect`."""

from __future__ import annotations

import inspect

import xarray as xr

from ._setup import _as_series, _check_detection, _Setup


def thresholds(
    sst: xr.DataArray | xr.Dataset,
    *,
    base: tuple | None = None,
    pctile: float = 90,
    window: int = 11,
    smooth: int | None = 31,
    cold: bool = False,
) -> xr.Dataset:
    """Seasonal climatology and threshold of Hobday et al. (2016), per pixel.

    Parameters
    ----------
    sst : xarray.DataArray (or a Dataset with one data variable)
        Daily values (e.g. degC) on consecutive days, with a ``time``
        coordinate in any CF calendar; NumPy- or dask-backed, any chunking.
    base : (first year, last year), optional
        Base (climatology) period, whole years, e.g. ``(1983, 2012)``
        (``"1983"`` or dates work too: their years count); default: every
        year of the data.  At least 3 complete years; a warning below 30.
    pctile : float
        Threshold percentile, in (0, 100); cold spells use ``100 - pctile``.
    window : int
        Width (odd, in days) of the pooling window around each day of the
        year: the reference's ``2 * windowHalfWidth + 1``.
    smooth : int or None
        Width (odd, in days) of the circular running mean applied to both
        curves: the reference's ``smoothPercentileWidth``; None (or 1): no
        smoothing (``smoothPercentile=False``).
    cold : bool
        Cold spells: the threshold below the climatology.

    Returns
    -------
    xarray.Dataset
        ``seas`` and ``thresh`` (float64, units of ``sst``) over
        ``dayofyear`` (366 days: 1 March = 61; 360 in the 360_day calendar)
        and the other dimensions of ``sst``, in memory: computed at this call,
        one task per spatial block reading its pixels' whole series once (each
        day's pool gathered and its percentile selected exactly).  A pixel
        whose every value is NaN (land) gets NaN, silently.

    Examples
    --------
    >>> clim = oceanflow.mhw.thresholds(sst, base=(1983, 2012))  # doctest: +SKIP
    """
    sst = _as_series(sst, "sst")
    setup = _Setup(sst, base=base, pctile=pctile, window=window, smooth=smooth, cold=cold)
    return setup.thresholds(sst).compute()


def detect(
    sst: xr.DataArray | xr.Dataset,
    clim: xr.Dataset | None = None,
    *,
    base: tuple | None = None,
    pctile: float = 90,
    window: int = 11,
    smooth: int | None = 31,
    min_duration: int = 5,
    join_gaps: bool = True,
    max_gap: int = 2,
    cold: bool = False,
) -> xr.Dataset:
    """Marine heatwaves (or cold spells) of every pixel, day by day.

    Parameters
    ----------
    sst : xarray.DataArray (or a Dataset with one data variable)
        As for :func:`thresholds`.
    clim : xarray.Dataset, optional
        ``seas`` and ``thresh`` from :func:`thresholds` (matched to ``sst`` by
        coordinate labels); computed from ``sst`` (with ``base``,
        ``pctile``, ``window``, ``smooth``) when not given, lazily, in the
        same graph as the detection: the input's chunks are read once and feed
        both the thresholds' tasks and the detection's.  ``pctile`` must
        exceed 50 here: the categories are multiples of ``thresh - seas``.
    min_duration : int
        Shortest event, in days (``minDuration``), at least 1.
    join_gaps : bool
        Join events separated by at most ``max_gap`` days (``joinAcrossGaps``).
    max_gap : int
        Longest gap joined, in days (``maxGap``).
    cold : bool
        Detect cold spells (``coldSpells``): runs below the threshold.

    Returns
    -------
    xarray.Dataset
        On the grid and time axis of ``sst`` (lazy when ``sst`` is dask-backed,
        time whole in each chunk): ``intensity`` (``sst - seas``, NaN where
        ``sst`` is), ``category`` (int8: 0 none or outside events, 1
        moderate, 2 strong, 3 severe, 4 extreme: ``floor(1 + (sst - thresh)
        / (thresh - seas))`` capped at 4, on event days) and ``event`` (int32:
        the event's number within its pixel, 1, 2, ...; 0 outside events),
        plus ``seas`` and ``thresh`` over ``dayofyear``; the parameters are
        in the attributes.  A missing value counts as the climatology (it
        ends an event, or sits in a joined gap), as in the reference.

    Examples
    --------
    >>> found = oceanflow.mhw.detect(sst, base=(1983, 2012))             # doctest: +SKIP
    >>> mhw_days = (found.event > 0).resample(time="YS").sum()           # doctest: +SKIP
    """
    options = {"base": base, "pctile": pctile, "window": window, "smooth": smooth, "cold": cold}
    detection = {"min_duration": min_duration, "join_gaps": join_gaps, "max_gap": max_gap}
    sst, setup, clim = _detection_setup(sst, clim, options, detection)
    return setup.detect(sst, clim, **detection)[0]


def _detection_setup(sst, clim, options, detection):
    """The checked ``(sst, setup, clim)`` of :func:`detect` (and of ``save``, which asks
    :meth:`_Setup.detect` for the summary's columns and the event tables too).
    Called directly by the public function (warnings point at the caller)."""
    sst = _as_series(sst, "sst")
    _check_detection(detection["min_duration"], detection["max_gap"])
    setup = _Setup(sst, **options, check_base=clim is None, stacklevel=5)
    if setup.pctile <= 50:
        raise ValueError(
            f"pctile={options['pctile']!r}: the categories (Hobday et al. 2018) are multiples of thresh - seas, "
            "so detection needs a threshold beyond the climatology, pctile > 50; for cold spells pass cold=True "
            "(pctile=90 takes the 10th percentile); for a low threshold alone use oceanflow.mhw.thresholds"
        )
    if clim is not None:  # (else computed lazily in the detection's own tasks, from the same read of the data)
        clim = setup.checked_clim(sst, clim)
    return sst, setup, clim


def _detect_defaults():
    """:func:`detect`'s keyword defaults, the one place they are written."""
    parameters = inspect.signature(detect).parameters.values()
    return {p.name: p.default for p in parameters if p.kind is p.KEYWORD_ONLY}
