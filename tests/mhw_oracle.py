"""Test oracle: the marine-heatwave definitions of Hobday et al. (2016, 2018) as the
reference implementation (ecjoliver/marineHeatWaves ``detect``, ``blockAverage``,
``meanTrend``) defines them, for ONE series, in plain NumPy.

Written from those definitions, independently of oceanflow's kernels, and kept
in the tests.  Conventions (read from the reference):

* climatological year of 366 days: each date's day is its day of year in a
  leap year (1 March = 61 in every year); in the 360_day calendar (which the
  reference does not support) oceanflow's convention ``30 * (month - 1) + day``
  on a 360-day year is used instead;
* base period ``(first year, last year)``: from the first step of the first
  year to the last step of the last year; the window around each of its days
  reaches outside it (cut only at the ends of the series);
* the pool of a day of year: the values of the ``window`` steps centred on
  each of its days (NaN dropped); threshold ``np.percentile(pool, pctile)``
  (linear), climatology ``np.mean(pool)``; 29 February (day 60) is no centre:
  it is the mean of 28 February and 1 March; then both are smoothed by a
  circular running mean of ``smooth`` days (over the valid days only when some
  are NaN);
* cold spells: everything on ``-temp``, intensities (not their variability,
  not the rates) negated at the end;
* missing values are set to the climatology before detection;
* runs above the threshold of at least ``min_duration`` steps are events;
  consecutive events at most ``max_gap`` days apart are joined.
"""

from __future__ import annotations

import datetime

import numpy as np

PROPERTIES = (
    "duration",
    "intensity_max",
    "intensity_mean",
    "intensity_var",
    "intensity_cumulative",
    "intensity_max_relThresh",
    "intensity_mean_relThresh",
    "intensity_var_relThresh",
    "intensity_cumulative_relThresh",
    "intensity_max_abs",
    "intensity_mean_abs",
    "intensity_var_abs",
    "intensity_cumulative_abs",
    "rate_onset",
    "rate_decline",
    "category",
    "duration_moderate",
    "duration_strong",
    "duration_severe",
    "duration_extreme",
)
NEGATED_WHEN_COLD = tuple(
    f"intensity_{kind}{suffix}" for kind in ("max", "mean", "cumulative") for suffix in ("", "_relThresh", "_abs")
)


def day_of_year(months, days, calendar="standard"):
    """Day in the 366-day climatological year (360-day year for 360_day)."""
    if calendar == "360_day":
        return 30 * (np.asarray(months) - 1) + np.asarray(days)
    return np.array([datetime.date(2012, m, d).timetuple().tm_yday for m, d in zip(months, days, strict=True)])


def circular_running_mean(values, width):
    """The reference's ``runavg``: the series repeated three times, convolved with
    ``width`` equal weights, the middle third kept."""
    n = len(values)
    tripled = np.concatenate([values, values, values])
    return np.convolve(tripled, np.ones(width) / width, mode="same")[n : 2 * n]


def climatology(temp, doy, years, *, base=None, pctile=90, window=11, smooth=31, ndays=366):
    """Seasonal climatology and threshold (ndays,) of one series (already flipped for cold spells)."""
    half = (window - 1) // 2
    base = base or (years[0], years[-1])
    first = np.flatnonzero(years == base[0])[0]
    last = np.flatnonzero(years == base[1])[-1]
    seas = np.full(ndays, np.nan)
    thresh = np.full(ndays, np.nan)
    leap = ndays == 366
    for d in range(1, ndays + 1):
        if leap and d == 60:
            continue
        centres = first + np.flatnonzero(doy[first : last + 1] == d)
        if centres.size == 0:
            continue
        steps = (centres[:, None] + np.arange(-half, half + 1)[None, :]).ravel()
        steps = steps[(steps >= 0) & (steps < temp.size)]
        pool = temp[steps]
        pool = pool[~np.isnan(pool)]
        if pool.size:
            thresh[d - 1] = np.percentile(pool, pctile)
            seas[d - 1] = np.mean(pool)
    if leap:
        thresh[59] = 0.5 * thresh[58] + 0.5 * thresh[60]
        seas[59] = 0.5 * seas[58] + 0.5 * seas[60]
    if smooth and smooth > 1:
        for series in (thresh, seas):
            valid = ~np.isnan(series)
            if valid.any():
                series[valid] = circular_running_mean(series[valid], smooth)
    return seas, thresh


def detect(
    dates,
    temp,
    *,
    calendar="standard",
    base=None,
    pctile=90,
    window=11,
    smooth=31,
    min_duration=5,
    join_gaps=True,
    max_gap=2,
    cold=False,
):
    """Events of one daily series.

    ``dates`` is a sequence of (year, month, day).  Returns ``(events, clim)``:
    ``events`` a list of dicts (``index_start``, ``index_end``, ``index_peak``
    and :data:`PROPERTIES`), ``clim`` a dict of the climatological year
    (``seas_year``, ``thresh_year``) and the daily ``seas``, ``thresh``,
    ``intensity``, ``category`` (0 outside events) and ``event`` (1, 2, ...;
    0 outside events).
    """
    years = np.array([y for y, _, _ in dates])
    doy = day_of_year([m for _, m, _ in dates], [d for _, _, d in dates], calendar)
    ndays = 360 if calendar == "360_day" else 366
    temp = np.array(temp, dtype=np.float64 if np.asarray(temp).dtype != np.float32 else np.float32)
    sign = -1.0 if cold else 1.0
    flipped = sign * temp
    seas_year, thresh_year = climatology(
        flipped, doy, years, base=base, pctile=pctile, window=window, smooth=smooth, ndays=ndays
    )
    seas = seas_year[doy - 1]
    thresh = thresh_year[doy - 1]
    filled = np.where(np.isnan(flipped), seas, flipped)
    events, daily_event, daily_category = find_events(
        filled, seas, thresh, min_duration=min_duration, join_gaps=join_gaps, max_gap=max_gap
    )
    if cold:
        for ev in events:
            for name in NEGATED_WHEN_COLD:
                ev[name] = -ev[name]
    clim = {
        "seas_year": sign * seas_year,
        "thresh_year": sign * thresh_year,
        "seas": sign * seas,
        "thresh": sign * thresh,
        "intensity": temp - sign * seas,
        "category": daily_category,
        "event": daily_event,
    }
    return events, clim


def find_events(filled, seas, thresh, *, min_duration=5, join_gaps=True, max_gap=2):
    """Events of a gap-free (filled) series above ``thresh``: (events, daily event, daily category)."""
    runs = _runs((filled - thresh) > 0)
    kept = [(s, e) for s, e in runs if e - s + 1 >= min_duration]
    if join_gaps:
        joined = []
        for s, e in kept:
            if joined and s - joined[-1][1] - 1 <= max_gap:
                joined[-1] = (joined[-1][0], e)
            else:
                joined.append((s, e))
        kept = joined
    n = filled.size
    events = []
    daily_event = np.zeros(n, np.int32)
    daily_category = np.zeros(n, np.int8)
    for number, (s, e) in enumerate(kept, start=1):
        events.append(_properties(filled, seas, thresh, s, e, n))
        daily_event[s : e + 1] = number
        with np.errstate(divide="ignore", invalid="ignore"):
            norm = (filled[s : e + 1] - thresh[s : e + 1]) / (thresh[s : e + 1] - seas[s : e + 1])
        daily_category[s : e + 1] = np.clip(np.nan_to_num(np.floor(1.0 + norm), nan=0.0), 0, 4)
    return events, daily_event, daily_category


def _runs(mask):
    """(start, end) of each run of True, end inclusive."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1, strict=True))


def _properties(temp, seas, thresh, start, end, n):
    """Properties of the event [start, end] of the (flipped, filled) series."""
    t, s, th = temp[start : end + 1], seas[start : end + 1], thresh[start : end + 1]
    rel_seas = t - s
    rel_thresh = t - th
    norm = (t - th) / (th - s)
    peak = int(np.argmax(rel_seas))
    ev = {"index_start": start, "index_end": end, "index_peak": start + peak, "duration": end - start + 1}
    for suffix, series in (("", rel_seas), ("_relThresh", rel_thresh), ("_abs", t)):
        ev[f"intensity_max{suffix}"] = series[peak]
        ev[f"intensity_mean{suffix}"] = series.mean()
        ev[f"intensity_var{suffix}"] = np.sqrt(series.var())
        ev[f"intensity_cumulative{suffix}"] = series.sum()
    cats = np.floor(1.0 + norm)
    ev["category"] = int(min(cats[int(np.argmax(norm))], 4))
    ev["duration_moderate"] = int(np.sum(cats == 1))
    ev["duration_strong"] = int(np.sum(cats == 2))
    ev["duration_severe"] = int(np.sum(cats == 3))
    ev["duration_extreme"] = int(np.sum(cats >= 4))
    top = rel_seas[peak]
    if start > 0:
        before = 0.5 * (rel_seas[0] + temp[start - 1] - seas[start - 1])
        ev["rate_onset"] = (top - before) / (peak + 0.5)
    else:
        ev["rate_onset"] = (top - rel_seas[0]) / (1.0 if peak == 0 else peak)
    if end < n - 1:
        after = 0.5 * (rel_seas[-1] + temp[end + 1] - seas[end + 1])
        ev["rate_decline"] = (top - after) / (end - start - peak + 0.5)
    else:
        # the reference compares the peak's offset in the event with the series' last index
        steps = 1.0 if peak == n - 1 else end - start - peak
        with np.errstate(divide="ignore", invalid="ignore"):
            ev["rate_decline"] = np.float64(top - rel_seas[-1]) / steps
    return ev


def block_average(years, events, block_years=1, event_days=None):
    """The reference's ``blockAverage`` over blocks of ``block_years`` years
    (from the first year), for the properties oceanflow's ``summary`` gives.

    ``event_days``: daily event numbers (0 outside), for ``total_days``.
    ``total_icum`` is assigned to the block of the event's start year.
    """
    years = np.asarray(years)
    first = years.min()
    nblocks = int(np.ceil((years.max() - first + 1) / block_years))
    out = {name: np.zeros(nblocks) for name in ("count", "total_days", "total_icum")}
    sums = {name: np.zeros(nblocks) for name in ("duration", "intensity_max", "intensity_mean", "intensity_cumulative")}
    largest = np.full(nblocks, np.nan)
    for ev in events:
        b = (years[ev["index_start"]] - first) // block_years
        out["count"][b] += 1
        out["total_icum"][b] += ev["intensity_cumulative"]
        for name in sums:
            sums[name][b] += ev[name]
        peak = ev["intensity_max"]
        if np.isnan(largest[b]) or abs(peak) > abs(largest[b]):
            largest[b] = peak
    if event_days is not None:
        block = (years - first) // block_years
        for b in range(nblocks):
            out["total_days"][b] = np.sum((block == b) & (np.asarray(event_days) > 0))
    with np.errstate(invalid="ignore"):
        for name, total in sums.items():
            out[name] = total / np.where(out["count"] > 0, out["count"], np.nan)
    out["intensity_max_max"] = largest
    out["years_centre"] = first + block_years * np.arange(nblocks) + 0.5 * (block_years - 1)
    return out


def trend(years_centre, values):
    """The reference's ``meanTrend`` slope: least squares over the non-NaN blocks (per year)."""
    valid = ~np.isnan(values)
    if valid.sum() < 2:
        return np.nan
    x = years_centre - years_centre.mean()
    design = np.stack([np.ones(valid.sum()), x[valid]], axis=1)
    return np.linalg.lstsq(design, values[valid], rcond=None)[0][1]
