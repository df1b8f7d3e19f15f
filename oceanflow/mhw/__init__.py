"""Marine heatwaves and cold spells (Hobday et al. 2016, 2018) on whole grids.

The definitions are those of the reference implementation,
`ecjoliver/marineHeatWaves <https://github.com/ecjoliver/marineHeatWaves>`_
(``detect``, ``blockAverage``, ``meanTrend``), applied to every pixel:

* :func:`thresholds`: the seasonal climatology ``seas`` and the threshold
  ``thresh`` over a 366-day climatological year;
* :func:`detect`: daily ``intensity``, ``category`` and ``event`` number,
  one kernel pass over each pixel's series;
* :func:`events`: the reference's properties of every event of every pixel;
* :func:`summary`: the reference's block averages per period and their
  linear trends.

Conventions of the climatological year (as the reference's):

* day of year in a leap year: 29 February is day 60 and 1 March day 61 in
  every year (standard, gregorian, proleptic_gregorian, julian, noleap,
  365_day, all_leap, 366_day calendars alike); 29 February is never a centre of
  the pooling window, its values are pooled by its neighbours, and its
  climatology and threshold are the mean of 28 February's and 1 March's
  (before smoothing); in noleap/365_day years there is no 29 February to
  detect on, but day 60 is filled all the same;
* 360_day: a climatological year of 360 days, day ``30 * (month - 1) + day``
  (oceanflow's day of year for that calendar); every day is a centre, none is
  filled (the reference does not handle this calendar);
* the pool of a day of year: the values of the ``window`` time steps centred
  on each of its days in the base period (the window reaches outside the base
  period, cut only at the ends of the series), NaN dropped; ``seas`` is its
  mean, ``thresh`` its ``pctile`` percentile (``np.percentile``'s default,
  linear interpolation, Hyndman and Fan type 7); both are then smoothed by a
  circular running mean of ``smooth`` days;
* cold spells (``cold=True``): computed on ``-sst`` as the reference does, so
  the threshold is the ``100 - pctile`` percentile.

Example
-------
>>> import oceanflow
>>> from oceanflow import datasets, mhw
>>> sst = datasets.sst(years=3, freq="day", resolution=60)        # degC, (time, lat, lon)
>>> found = mhw.detect(sst, pctile=90)                              # warns: base shorter than 30 years
>>> sorted(found.data_vars)
['category', 'event', 'intensity', 'seas', 'thresh']
>>> table = mhw.events(found)                                       # one row per event and pixel
>>> int(table.sizes["event"]) == int(found.event.max())
True
"""

import logging

from ._definitions import CATEGORY_NAMES as CATEGORY_NAMES
from ._detection import detect, thresholds
from ._events import events
from ._plot import CATEGORY_COLOURS as CATEGORY_COLOURS
from ._plot import plot
from ._save import save
from ._setup import MINIMUM_BASE_YEARS as MINIMUM_BASE_YEARS
from ._setup import RECOMMENDED_BASE_YEARS as RECOMMENDED_BASE_YEARS
from ._setup import BaseLengthWarning
from ._summary import summary
from ._summary import years_per_block as years_per_block

__all__ = ["thresholds", "detect", "events", "summary", "save", "plot", "BaseLengthWarning"]

# Kept for compatibility: ``oceanflow.mhw.logger`` was a public module attribute before
# the package split; it is the same logger that _blocks.py and _save.py get by name.
logger = logging.getLogger("oceanflow.mhw")
